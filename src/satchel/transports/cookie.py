"""The cookie transport: the credential rides in an HttpOnly cookie.

Defaults follow RFC 6265bis and ASVS V3: ``__Host-`` name, ``Secure``, ``HttpOnly``,
``SameSite=Lax``, ``Path=/`` and no ``Domain``. A credential the user asked to remember
("remember this device") gets ``Max-Age`` equal to its lifetime; any other is a
browser-session cookie (no ``Max-Age``, no ``Expires``), which the browser forgets when it
closes, so a shared computer does not stay signed in. Anything weaker has to be asked for
explicitly, and combinations browsers would drop or that defeat the prefix are
configuration errors.

The ``Cookie`` header is parsed here rather than by a framework because duplicates matter:
two cookies with our name (a subdomain or a path-scoped cookie can plant one) make the
request ambiguous, and it is rejected rather than resolved by order (S11).
"""

from __future__ import annotations

import re

from satchel.errors import ConfigurationError, InvalidCredential
from satchel.transports.base import HeaderPairs, IssuedCredentials, RawHeaders, Transport

HOST_NAME = "__Host-satchel"
INSECURE_NAME = "satchel_session"
SECURE_REFRESH_NAME = "__Secure-satchel-refresh"
INSECURE_REFRESH_NAME = "satchel_refresh"

#: Longest credential accepted from a cookie (checked before anything else looks at it).
MAX_VALUE_LENGTH = 8192

_SAME_SITE = {"lax": "Lax", "strict": "Strict", "none": "None"}
# RFC 9110 token, the grammar of a cookie name.
_NAME_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Path and Domain values must not be able to end the attribute or the header.
_ATTR_RE = re.compile(r"[\x21-\x3a\x3c-\x7e]+")
# Credentials satchel issues are base64url segments joined by dots; nothing else is ours.
_VALUE_RE = re.compile(rb"[A-Za-z0-9_\-.]+")
_VALUE_STR_RE = re.compile(r"[A-Za-z0-9_\-.]+")

_NO_STORE = ("cache-control", "no-store")
_OWS = b" \t"
_SEMI = ord(";")
_EQ = ord("=")


class CookieTransport(Transport):
    """Credential in a cookie; an optional second cookie carries the refresh token."""

    name = "cookie"

    def __init__(
        self,
        name: str | None = None,
        *,
        secure: bool = True,
        http_only: bool = True,
        same_site: str = "lax",
        path: str = "/",
        domain: str | None = None,
        refresh_name: str | None = None,
        refresh_path: str = "/auth/refresh",
    ) -> None:
        if not isinstance(same_site, str) or same_site.lower() not in _SAME_SITE:
            raise ConfigurationError("same_site must be 'lax', 'strict' or 'none'.")
        same_site_attr = _SAME_SITE[same_site.lower()]
        if same_site_attr == "None" and not secure:
            raise ConfigurationError("SameSite=None requires Secure cookies.")
        _check_path("path", path)
        _check_path("refresh_path", refresh_path)
        if domain is not None and (not domain or not _ATTR_RE.fullmatch(domain)):
            raise ConfigurationError("domain must be a plain host name.")
        if name is None:
            # __Host- demands Path=/ and no Domain; fall back to __Secure- when either is set.
            if not secure:
                name = INSECURE_NAME
            elif path == "/" and domain is None:
                name = HOST_NAME
            else:
                name = "__Secure-satchel"
        if refresh_name is None:
            refresh_name = SECURE_REFRESH_NAME if secure else INSECURE_REFRESH_NAME
        for label, value, value_path in (
            ("name", name, path),
            ("refresh_name", refresh_name, refresh_path),
        ):
            _check_name(label, value, secure=secure, path=value_path, domain=domain)
        if name == refresh_name:
            raise ConfigurationError("name and refresh_name must differ.")

        self.cookie_name = name
        self.refresh_name = refresh_name
        self.secure = secure
        self.http_only = http_only
        self.same_site = same_site_attr
        self.path = path
        self.domain = domain
        self.refresh_path = refresh_path
        self._name_b = name.encode("ascii")
        self._refresh_name_b = refresh_name.encode("ascii")
        self._access_tail = "; " + "; ".join(self.attributes())
        # Cookies that only mean something beside ours (DBSC's bound cookie): sign-out
        # clears them too, wherever it happens.
        self._companions: list[tuple[str, str]] = []
        self._refresh_tail = "; " + "; ".join(self.attributes(refresh=True))

    def __repr__(self) -> str:
        return (
            f"CookieTransport(name={self.cookie_name!r}, secure={self.secure}, "
            f"same_site={self.same_site!r}, path={self.path!r}, domain={self.domain!r})"
        )

    # --- reading ----------------------------------------------------------------------------

    def extract(self, headers: RawHeaders) -> str | None:
        """The access credential from our cookie; None when absent.

        Raises :class:`InvalidCredential` for two cookies of our name (across any number of
        ``Cookie`` headers) or a value outside the credential alphabet.
        """
        return _find_cookie(headers, self._name_b)

    def extract_refresh(self, headers: RawHeaders) -> str | None:
        """The refresh credential from the refresh cookie; same strictness as :meth:`extract`."""
        return _find_cookie(headers, self._refresh_name_b)

    # --- writing ----------------------------------------------------------------------------

    def login_headers(self, issued: IssuedCredentials) -> HeaderPairs:
        """``Set-Cookie`` for the credential (and the refresh token when there is one);
        persistent only when ``issued.remember`` (see the module docstring)."""
        out: HeaderPairs = [("set-cookie", self.set_cookie_value(issued))]
        if issued.refresh_token is not None:
            refresh_age = issued.refresh_expires_in if issued.remember else None
            out.append(
                (
                    "set-cookie",
                    self._set(
                        self.refresh_name, issued.refresh_token, refresh_age, self._refresh_tail
                    ),
                )
            )
        out.append(_NO_STORE)
        return out

    def logout_headers(self) -> HeaderPairs:
        """Clear both cookies with the attributes they were set with, and forbid caching."""
        return [
            ("set-cookie", f"{self.cookie_name}=; Max-Age=0{self._access_tail}"),
            ("set-cookie", f"{self.refresh_name}=; Max-Age=0{self._refresh_tail}"),
            *self._companions,
            _NO_STORE,
        ]

    def clear_with_logout(self, header: tuple[str, str]) -> None:
        """Add a companion cookie's clearing ``Set-Cookie`` to :meth:`logout_headers`."""
        if header not in self._companions:
            self._companions.append(header)

    def set_cookie_value(self, issued: IssuedCredentials) -> str:
        """The ``Set-Cookie`` value for the access credential alone."""
        max_age = issued.expires_in if issued.remember else None
        return self._set(self.cookie_name, issued.access_token, max_age, self._access_tail)

    def attributes(self, *, refresh: bool = False) -> list[str]:
        """The attributes after ``Max-Age`` on the access (or the refresh) cookie, in the
        order ``Set-Cookie`` carries them: ``["Path=/", "Secure", ...]``."""
        parts = [f"Path={self.refresh_path if refresh else self.path}"]
        if self.domain is not None:
            parts.append(f"Domain={self.domain}")
        if self.secure:
            parts.append("Secure")
        if self.http_only:
            parts.append("HttpOnly")
        parts.append(f"SameSite={self.same_site}")
        return parts

    @staticmethod
    def _set(name: str, value: str, max_age: int | None, tail: str) -> str:
        # A value outside the alphabet could inject attributes or headers: never emit it.
        if len(value) > MAX_VALUE_LENGTH or not _VALUE_STR_RE.fullmatch(value):
            raise ConfigurationError("credential is not cookie-safe")
        age = "" if max_age is None else f"; Max-Age={max(0, int(max_age))}"
        return f"{name}={value}{age}{tail}"


def _check_path(label: str, path: str) -> None:
    if not isinstance(path, str) or not path.startswith("/") or not _ATTR_RE.fullmatch(path):
        raise ConfigurationError(f"{label} must be an absolute path without ';' or spaces.")


def _check_name(label: str, name: str, *, secure: bool, path: str, domain: str | None) -> None:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise ConfigurationError(f"{label} is not a valid cookie name.")
    lowered = name.lower()
    if lowered.startswith("__host-"):
        if not name.startswith("__Host-"):
            raise ConfigurationError(f"{label}: write the prefix exactly as '__Host-'.")
        if not secure:
            raise ConfigurationError(f"{label}: '__Host-' cookies must be Secure.")
        if domain is not None:
            raise ConfigurationError(f"{label}: '__Host-' cookies cannot carry a Domain.")
        if path != "/":
            raise ConfigurationError(f"{label}: '__Host-' cookies must use Path=/.")
    elif lowered.startswith("__secure-"):
        if not name.startswith("__Secure-"):
            raise ConfigurationError(f"{label}: write the prefix exactly as '__Secure-'.")
        if not secure:
            raise ConfigurationError(f"{label}: '__Secure-' cookies must be Secure.")


def _find_cookie(headers: RawHeaders, name: bytes) -> str | None:
    """Our cookie's value from every ``Cookie`` header; None, or raise if ambiguous/bad.

    Same result as splitting each header on ``;`` and each pair at its first ``=``, but it
    only looks at the places where our name occurs: a pair is ours when the name starts it
    (after ``;`` and optional whitespace) and is followed by optional whitespace and ``=``.
    """
    found: bytes | None = None
    size = len(name)
    for key, raw in headers:
        if key != b"cookie":
            continue
        pos = raw.find(name)
        while pos != -1:
            end = pos + size
            before = pos
            while before and raw[before - 1] in _OWS:
                before -= 1
            after = end
            limit = len(raw)
            while after < limit and raw[after] in _OWS:
                after += 1
            if (before == 0 or raw[before - 1] == _SEMI) and after < limit and raw[after] == _EQ:
                if found is not None:
                    raise InvalidCredential("The request carries the session cookie twice.")
                stop = raw.find(b";", after)
                found = raw[after + 1 : limit if stop == -1 else stop].strip(_OWS)
            pos = raw.find(name, end)
    if not found:
        # Absent, or empty: an empty value is what a cleared cookie looks like.
        return None
    if len(found) > MAX_VALUE_LENGTH or not _VALUE_RE.fullmatch(found):
        raise InvalidCredential("Malformed session cookie.")
    return found.decode("ascii")
