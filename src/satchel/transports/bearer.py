"""The bearer transport: ``Authorization: Bearer <token>`` (RFC 6750 §2.1 only), and
``Authorization: DPoP <token>`` (RFC 9449 §7.1) when DPoP is on; the proof itself is checked
by :mod:`satchel.dpop.guard`.

Tokens in the query string or a form body (RFC 6750 §2.2/2.3) are deliberately not
supported: they leak into logs, history and Referer headers (S08).
"""

from __future__ import annotations

import re

from satchel.errors import (
    AmbiguousCredentials,
    AuthenticationError,
    ConfigurationError,
    ExpiredCredential,
    InvalidCredential,
    MissingCredential,
)
from satchel.transports.base import HeaderPairs, IssuedCredentials, RawHeaders, Transport

#: Longest token accepted (checked before any decoding; J22).
MAX_TOKEN_LENGTH = 8192

# token68 (RFC 9110 §11.2): one or more of these, then optional "=" padding. Checked with
# bytes.translate rather than a regex: it runs on every request and is several times faster.
_TOKEN68_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~+/"
# Characters allowed inside a quoted realm / error_description (RFC 6750 §3).
_QUOTABLE_RE = re.compile(r"[\x20\x21\x23-\x5b\x5d-\x7e]*")
_NOT_QUOTABLE_RE = re.compile(r"[^\x20\x21\x23-\x5b\x5d-\x7e]")
_MAX_DESCRIPTION = 200


# RFC 9449 §7.1: the DPoP challenge of a server accepting proofs by these algorithms.
_DPOP_CHALLENGE = 'DPoP algs="ES256 EdDSA"'


def dpop_scheme(headers: RawHeaders) -> bool:
    """True when the request's ``Authorization`` header uses the ``DPoP`` scheme."""
    for key, raw in headers:
        if key == b"authorization":
            return raw[:5].lower() == b"dpop "
    return False


class BearerTransport(Transport):
    """Credential in the ``Authorization`` header with the ``Bearer`` scheme (and ``DPoP``
    unless ``dpop`` is ``"off"``: ``SATCHEL_DPOP``)."""

    name = "bearer"

    def __init__(self, realm: str = "satchel", *, dpop: str = "off") -> None:
        if not isinstance(realm, str) or not realm or not _QUOTABLE_RE.fullmatch(realm):
            raise ConfigurationError("realm must be printable ASCII without quotes or '\\'.")
        if dpop not in ("off", "allowed", "required"):
            raise ConfigurationError("dpop must be off, allowed or required.")
        self.realm = realm
        self.dpop = dpop
        self._challenge = f'Bearer realm="{realm}"'
        self._schemes = (b"bearer ",) if dpop == "off" else (b"bearer ", b"dpop ")
        dpop_challenge = "" if dpop == "off" else f", {_DPOP_CHALLENGE}"
        self._anonymous = self._challenge + dpop_challenge

    def __repr__(self) -> str:
        return f"BearerTransport(realm={self.realm!r}, dpop={self.dpop!r})"

    def extract(self, headers: RawHeaders) -> str | None:
        """The bearer token, or None when there is no ``Authorization: Bearer`` header.

        Another scheme (``Basic``...) is not ours and reads as None. A ``Bearer`` header that
        is malformed, oversized or repeated raises :class:`InvalidCredential`.
        """
        value: bytes | None = None
        for key, raw in headers:
            if key == b"authorization":
                if value is not None:
                    raise InvalidCredential("The request carries two Authorization headers.")
                value = raw
        if value is None:
            return None
        # The scheme is case-insensitive and followed by exactly one space.
        if value[:7].lower() == b"bearer ":
            token = value[7:]
        elif value[:5].lower() == b"dpop " and len(self._schemes) == 2:
            token = value[5:]
        else:
            scheme = value.split(b" ", 1)[0].split(b"\t", 1)[0].lower() + b" "
            if scheme in self._schemes:  # the scheme alone, or a tab or second space after it
                raise InvalidCredential("Malformed bearer token.")
            return None  # another scheme (Basic, Digest, Bearerx...): not ours
        if len(token) > MAX_TOKEN_LENGTH:
            raise InvalidCredential("The bearer token is too long.")
        body = token.rstrip(b"=")
        if not body or body.translate(None, _TOKEN68_CHARS):
            raise InvalidCredential("Malformed bearer token.")
        return token.decode("ascii")

    def login_headers(self, issued: IssuedCredentials) -> HeaderPairs:
        """The token travels in the JSON body; the response must not be cached."""
        return [("cache-control", "no-store")]

    def logout_headers(self) -> HeaderPairs:
        """Nothing to clear on the client side; still never cache the response."""
        return [("cache-control", "no-store")]

    def challenge_headers(self, error: AuthenticationError | None) -> HeaderPairs:
        """``WWW-Authenticate`` per RFC 6750 §3.

        Without a presented credential only the realm is sent; a rejected credential adds
        ``error="invalid_token"`` and a short description.
        """
        own = error.response_headers() if error is not None else []
        if own:  # a DPoP refusal: its own challenge (and nonce)
            return [(name.lower(), value) for name, value in own]
        if error is None or isinstance(error, MissingCredential):
            # One header with both challenges (RFC 9110 §11.6.1): frameworks that keep
            # headers in a dict would drop a second WWW-Authenticate line.
            return [("www-authenticate", self._anonymous)]
        code = "invalid_request" if isinstance(error, AmbiguousCredentials) else "invalid_token"
        description = _describe(error)
        return [
            (
                "www-authenticate",
                f'{self._challenge}, error="{code}", error_description="{description}"',
            )
        ]


def _describe(error: AuthenticationError) -> str:
    text = "The access token expired" if isinstance(error, ExpiredCredential) else error.detail
    # The detail never holds a credential (errors.py contract); still bound and quote-safe it.
    text = _NOT_QUOTABLE_RE.sub("", text)[:_MAX_DESCRIPTION]
    return text or "The access token is invalid"
