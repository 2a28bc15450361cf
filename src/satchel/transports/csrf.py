"""Cross-site request forgery protection for the cookie transport.

Bearer requests need none: a browser never attaches an ``Authorization`` header on its own.
A cookie it does attach, so every unsafe request (POST, PUT, PATCH, DELETE) that carries the
session cookie, and every login (login CSRF), goes through :meth:`CSRFProtect.check`:

1. ``Sec-Fetch-Site``, when present, must be ``same-origin`` or ``none`` (``same-site`` only
   when configured), unless ``Origin`` is a configured trusted origin; anything else is 403.
2. ``Origin``, when present, must equal the request's own origin or a configured trusted
   origin exactly (scheme, host and port); ``null``, look-alikes and the wrong scheme are 403.
3. A request a browser can send cross-site *without* a CORS preflight (a form post:
   ``application/x-www-form-urlencoded``, ``multipart/form-data`` or ``text/plain``) must
   also carry a signed token, in the ``csrf_token`` form field or the ``X-CSRF-Token`` header.
4. A token that is present is always verified; a wrong one is never ignored.

Requests with neither ``Sec-Fetch-Site`` nor ``Origin`` (policy ``headerless="allow"``, the
default): a form post still needs the token by rule 3; a JSON or bodyless request is allowed,
because no current browser sends an unsafe cross-site request without an ``Origin`` header,
and a cross-site ``application/json`` request needs a preflight the server never grants.
``headerless="reject"`` refuses such requests unless they carry a valid token.

Tokens are ``nonce.mac``: HMAC-SHA256 under a server secret over a binding — the session
handle for a logged-in caller, or the value of a pre-session cookie for the login form — and
a fresh random nonce, so the token changes on every render (no BREACH-style reuse) and one
session's token is worthless in another. The secret is shared by every process through the
key store (``set_secret_if_absent("csrf", ...)``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Collection, Iterable, Mapping
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from satchel.errors import ConfigurationError, CSRFError, InvalidCredential
from satchel.identity import Identity
from satchel.jose import b64
from satchel.stores.base import KeyStore
from satchel.transports.base import HeaderPairs, RawHeaders, header_values

# _find_cookie is the cookie transport's strict parser (duplicates are an error); reused so
# the pre-session cookie is read with exactly the same rules as the session cookie.
from satchel.transports.cookie import _find_cookie

#: Name of the secret in the key store.
SECRET_NAME: Final = "csrf"  # noqa: S105 - a lookup name, not the secret
MIN_SECRET_BYTES: Final = 32
#: Form field and header that carry the token.
FORM_FIELD: Final = "csrf_token"
HEADER: Final = "x-csrf-token"
#: Pre-session cookie that binds the login form's token (``__Host-`` when Secure).
PRESESSION_COOKIE: Final = "__Host-satchel-csrf"
INSECURE_PRESESSION_COOKIE: Final = "satchel_csrf"

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
#: Content types a browser may send cross-site without a preflight (the CORS "simple" ones).
SIMPLE_CONTENT_TYPES: Final = frozenset(
    {"application/x-www-form-urlencoded", "multipart/form-data", "text/plain"}
)

Headerless = Literal["allow", "reject"]

_NONCE_BYTES = 16
_MAC_BYTES = 32
_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}")
_MAX_TOKEN = 128
_MAX_ORIGIN = 512
_CONTEXT = b"satchel-csrf-v1\x00"
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SAME_ORIGIN_SITES = frozenset({b"same-origin", b"none"})


def _b64d(text: str) -> bytes | None:
    try:
        return b64.decode(text)
    except ValueError:
        return None


def parse_origin(value: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` of a serialised origin, or None when it is not one.

    Only ``http``/``https`` origins without user info, path, query or fragment qualify; the
    host is lower-cased and the default port made explicit so comparisons are exact.
    """
    if not value or len(value) > _MAX_ORIGIN or not value.isascii() or not value.isprintable():
        return None
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if scheme not in _DEFAULT_PORTS or not host or parts.username is not None:
        return None
    if parts.path or parts.query or parts.fragment or parts.password is not None:
        return None
    if " " in value or "\\" in value:
        return None
    return scheme, host, port if port is not None else _DEFAULT_PORTS[scheme]


def scope_origin(scope: Mapping[str, Any]) -> str | None:
    """The origin an ASGI request was addressed to (``scheme://host[:port]``), if known.

    Built from the ``Host`` header and the scope's scheme; behind a TLS-terminating proxy
    the scheme is right only when the server trusts that proxy's forwarded headers.
    """
    scheme = str(scope.get("scheme") or "http").lower()
    if scheme in ("ws", "wss"):
        scheme = "https" if scheme == "wss" else "http"
    hosts = header_values(scope.get("headers") or (), b"host")
    if len(hosts) != 1:
        return None
    try:
        host = hosts[0].decode("ascii")
    except UnicodeDecodeError:
        return None
    origin = f"{scheme}://{host}"
    return origin if parse_origin(origin) is not None else None


def content_type(headers: RawHeaders) -> str | None:
    """The media type of the request body, lower-cased without parameters (None if absent)."""
    values = header_values(headers, b"content-type")
    if not values:
        return None
    return values[0].split(b";", 1)[0].strip().decode("latin-1").lower()


def is_unsafe(method: str) -> bool:
    """True for methods that may change state (everything but GET/HEAD/OPTIONS/TRACE)."""
    return method.upper() not in SAFE_METHODS


def binding_for(identity: Identity) -> str:
    """What a logged-in caller's token is bound to: the session handle (or, for a token
    without one, the user and the instant of the login)."""
    if identity.session_id:
        return f"s:{identity.session_id}"
    return f"u:{identity.user_id}:{int(identity.auth_time)}"


class CSRFProtect:
    """Checks unsafe cookie requests and issues the tokens forms and scripts send back.

    ``secret`` is at least 32 random bytes (use :meth:`load` to share one through the key
    store). ``trusted_origins`` are extra origins allowed besides the request's own.
    ``allow_same_site`` accepts ``Sec-Fetch-Site: same-site`` (sibling subdomains; off by
    default because a sibling may be less trustworthy). ``secure`` picks the ``__Host-``
    pre-session cookie; it must match the session cookie's ``Secure`` setting.
    """

    def __init__(
        self,
        secret: bytes,
        *,
        trusted_origins: Iterable[str] = (),
        allow_same_site: bool = False,
        headerless: Headerless = "allow",
        secure: bool = True,
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < MIN_SECRET_BYTES:
            raise ConfigurationError(f"The CSRF secret must be at least {MIN_SECRET_BYTES} bytes.")
        if headerless not in ("allow", "reject"):
            raise ConfigurationError("headerless must be 'allow' or 'reject'.")
        origins: set[tuple[str, str, int]] = set()
        for origin in trusted_origins:
            parsed = parse_origin(origin.rstrip("/"))
            if parsed is None:
                raise ConfigurationError("Each trusted origin must look like https://host[:port].")
            origins.add(parsed)
        self._secret = secret
        self.trusted_origins = frozenset(origins)
        self.allow_same_site = bool(allow_same_site)
        self.headerless: Headerless = headerless
        self.secure = bool(secure)
        self.cookie_name = PRESESSION_COOKIE if secure else INSECURE_PRESESSION_COOKIE
        self._cookie_b = self.cookie_name.encode("ascii")

    @classmethod
    async def load(
        cls,
        keys: KeyStore,
        *,
        trusted_origins: Iterable[str] = (),
        allow_same_site: bool = False,
        headerless: Headerless = "allow",
        secure: bool = True,
    ) -> CSRFProtect:
        """A protector whose secret is shared by every process through ``keys``."""
        secret = await keys.set_secret_if_absent(SECRET_NAME, secrets.token_bytes(32))
        return cls(
            secret,
            trusted_origins=trusted_origins,
            allow_same_site=allow_same_site,
            headerless=headerless,
            secure=secure,
        )

    def __repr__(self) -> str:
        return (
            f"CSRFProtect(trusted_origins={len(self.trusted_origins)}, "
            f"allow_same_site={self.allow_same_site}, headerless={self.headerless!r})"
        )

    # --- tokens -------------------------------------------------------------------------------

    def _mac(self, binding: str, nonce: bytes) -> bytes:
        message = _CONTEXT + binding.encode("utf-8") + b"\x00" + nonce
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def token(self, binding: str) -> str:
        """A fresh token bound to ``binding`` (see :func:`binding_for`, :meth:`login_binding`)."""
        nonce = secrets.token_bytes(_NONCE_BYTES)
        return f"{b64.encode(nonce)}.{b64.encode(self._mac(binding, nonce))}"

    def token_for(self, identity: Identity) -> str:
        """A token for forms and scripts of a logged-in caller."""
        return self.token(binding_for(identity))

    def verify_token(self, token: object, binding: str | None) -> bool:
        """True when ``token`` was issued by this server for ``binding``."""
        if binding is None or not isinstance(token, str) or len(token) > _MAX_TOKEN:
            return False
        if not _TOKEN_RE.fullmatch(token):
            return False
        nonce_text, mac_text = token.split(".", 1)
        nonce, mac = _b64d(nonce_text), _b64d(mac_text)
        if nonce is None or mac is None or len(nonce) != _NONCE_BYTES or len(mac) != _MAC_BYTES:
            return False
        return hmac.compare_digest(mac, self._mac(binding, nonce))

    # --- the pre-session cookie (login form) --------------------------------------------------

    def presession_nonce(self, headers: RawHeaders) -> str | None:
        """The pre-session cookie's value, or None when absent, duplicated or malformed."""
        try:
            return _find_cookie(headers, self._cookie_b)
        except InvalidCredential:
            return None

    def login_binding(self, headers: RawHeaders) -> str | None:
        """The binding of a login form's token: the pre-session cookie, if the request has one."""
        nonce = self.presession_nonce(headers)
        return f"p:{nonce}" if nonce is not None else None

    def login_form(self, headers: RawHeaders) -> tuple[str, HeaderPairs]:
        """The token to embed in a login form and the headers to send with the page.

        Reuses the browser's pre-session cookie when it has a valid one, so several open
        login tabs all keep working; otherwise sets a new one.
        """
        nonce = self.presession_nonce(headers)
        extra: HeaderPairs = []
        if nonce is None or len(nonce) < 32:
            nonce = secrets.token_urlsafe(32)
            extra.append(("set-cookie", self._presession_cookie(nonce)))
        # The token is specific to this browser; shared caches must not serve it to another.
        extra.append(("cache-control", "no-store"))
        return self.token(f"p:{nonce}"), extra

    def _presession_cookie(self, nonce: str) -> str:
        secure = "; Secure" if self.secure else ""
        return f"{self.cookie_name}={nonce}; Path=/{secure}; HttpOnly; SameSite=Lax"

    # --- the request check --------------------------------------------------------------------

    def origin_allowed(self, origin: str, own_origin: str | None) -> bool:
        """True when ``origin`` is the request's own origin or a trusted one, exactly."""
        parsed = parse_origin(origin)
        if parsed is None:
            return False
        if parsed in self.trusted_origins:
            return True
        own = parse_origin(own_origin) if own_origin else None
        return own is not None and parsed == own

    def _trusted_sender(self, origins: list[bytes]) -> bool:
        """True when the request's ``Origin`` is one of the configured trusted origins: its
        page may send requests from another site (that is what trusting it means)."""
        if not origins or not self.trusted_origins:
            return False
        try:
            parsed = parse_origin(origins[0].decode("ascii"))
        except UnicodeDecodeError:
            return False
        return parsed is not None and parsed in self.trusted_origins

    def check(
        self,
        method: str,
        headers: RawHeaders,
        *,
        own_origin: str | None,
        binding: str | None,
        form_token: str | None = None,
    ) -> None:
        """Raise :class:`CSRFError` (403) unless this cookie request may change state.

        ``binding`` is what the token must be bound to (:func:`binding_for` of the caller, or
        :meth:`login_binding` for a login); ``form_token`` is the ``csrf_token`` field of a
        form body, when the caller parsed one. Safe methods always pass.
        """
        if not is_unsafe(method):
            return
        fetch_sites = header_values(headers, b"sec-fetch-site")
        origins = header_values(headers, b"origin")
        if len(fetch_sites) > 1 or len(origins) > 1:
            raise CSRFError("Conflicting request origin headers.")
        if fetch_sites:
            site = fetch_sites[0].strip().lower()
            if (
                site not in _SAME_ORIGIN_SITES
                and not (self.allow_same_site and site == b"same-site")
                and not self._trusted_sender(origins)
            ):
                raise CSRFError("Cross-site request refused.")
        if origins:
            try:
                origin = origins[0].decode("ascii")
            except UnicodeDecodeError:
                raise CSRFError("Cross-site request refused.") from None
            if not self.origin_allowed(origin, own_origin):
                raise CSRFError("Cross-site request refused.")

        header_tokens = header_values(headers, HEADER.encode("ascii"))
        if len(header_tokens) > 1:
            raise CSRFError("The CSRF token was sent twice.")
        tokens: list[str] = []
        if header_tokens:
            try:
                tokens.append(header_tokens[0].decode("ascii"))
            except UnicodeDecodeError:
                raise CSRFError("Invalid CSRF token.") from None
        if form_token is not None:
            tokens.append(form_token)
        for token in tokens:
            if not self.verify_token(token, binding):
                raise CSRFError("Invalid CSRF token.")

        if tokens:
            return
        media = content_type(headers)
        if media in SIMPLE_CONTENT_TYPES:
            raise CSRFError("A CSRF token is required for form posts.")
        if not fetch_sites and not origins and self.headerless == "reject":
            raise CSRFError("The request does not say where it comes from.")


def needs_check(
    method: str, headers: RawHeaders, cookie_names: Collection[bytes], *, login: bool = False
) -> bool:
    """True when a request must pass :meth:`CSRFProtect.check`: an unsafe method that is a
    login or carries one of ``cookie_names`` (the session cookies), whoever else it carries.
    """
    if not is_unsafe(method):
        return False
    if login:
        return True
    for name in cookie_names:
        try:
            if _find_cookie(headers, name) is not None:
                return True
        except InvalidCredential:
            return True  # a duplicated or malformed session cookie is still a cookie request
    return False
