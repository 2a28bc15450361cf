"""The bound cookie: the short-lived credential a DBSC session needs beside its session cookie.

Its value is ``<expiry>.<mac>``: the expiry in whole seconds and HMAC-SHA256, under a server
secret kept in the key store, over the session id, the thumbprint of the session's device
key and that expiry. Checking it reads no store, so a bound session costs its requests one
HMAC; a cookie minted for another session or another key, or past its expiry, is refused.
Its attributes are the session cookie's (``Path``, ``Domain``, ``Secure``, ``HttpOnly``,
``SameSite``), and its name follows the session cookie's prefix (``__Host-``,
``__Secure-`` or none), so it reaches exactly the requests the session cookie reaches.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Final

from satchel.errors import ConfigurationError
from satchel.jose import b64
from satchel.transports.base import RawHeaders
from satchel.transports.cookie import CookieTransport, _find_cookie

HOST_NAME: Final = "__Host-satchel-bound"
SECURE_NAME: Final = "__Secure-satchel-bound"
INSECURE_NAME: Final = "satchel_bound"
_VALUE: Final = re.compile(r"([0-9]{1,12})\.([A-Za-z0-9_-]{43})")
_MEMO_SIZE: Final = 4096


def bound_name(transport: CookieTransport) -> str:
    """The bound cookie's name for the session cookie of ``transport``."""
    if transport.cookie_name.startswith("__Host-"):
        return HOST_NAME
    if transport.secure:
        return SECURE_NAME
    return INSECURE_NAME


class BoundCookie:
    """Mints and checks the bound cookie of ``transport``'s sessions; ``ttl`` in seconds."""

    def __init__(self, transport: CookieTransport, key: bytes, ttl: int) -> None:
        if len(key) < 32:
            raise ConfigurationError("The bound cookie key needs at least 32 bytes.")
        if not 10 <= ttl <= 86_400:
            raise ConfigurationError("The bound cookie lifetime must be 10 s to 1 day.")
        self.name = bound_name(transport)
        if self.name in (transport.cookie_name, transport.refresh_name):
            raise ConfigurationError("The bound cookie name collides with the session cookie.")
        self.ttl = ttl
        self._key = hashlib.sha256(b"satchel-dbsc-cookie\0" + key).digest()
        self._name_b = self.name.encode("ascii")
        self._attributes = "; ".join(transport.attributes())
        transport.clear_with_logout(self.clear())
        # Values whose MAC checked out, and for what: a repeated cookie costs a dict lookup,
        # not an HMAC. Only ever filled after a successful check; cleared when full.
        self._verified: dict[str, tuple[str, str, int]] = {}

    def __repr__(self) -> str:
        return f"BoundCookie(name={self.name!r}, ttl={self.ttl})"

    @property
    def attributes(self) -> str:
        """The attributes a DBSC session's ``credentials`` entry names (no ``Max-Age``)."""
        return self._attributes

    def _mac(self, session_id: str, thumbprint: str, expires: int) -> str:
        message = f"{session_id}\n{thumbprint}\n{expires}".encode()
        return b64.encode(hmac.new(self._key, message, hashlib.sha256).digest())

    def set_cookie(self, session_id: str, thumbprint: str, now: float) -> tuple[str, str]:
        """``Set-Cookie`` for a fresh bound cookie of the session, valid ``ttl`` seconds."""
        expires = int(now) + self.ttl
        value = f"{expires}.{self._mac(session_id, thumbprint, expires)}"
        return ("set-cookie", f"{self.name}={value}; Max-Age={self.ttl}; {self._attributes}")

    def clear(self) -> tuple[str, str]:
        """``Set-Cookie`` that removes the bound cookie."""
        return ("set-cookie", f"{self.name}=; Max-Age=0; {self._attributes}")

    def valid(self, headers: RawHeaders, session_id: str, thumbprint: str, now: float) -> bool:
        """Whether the request carries a live bound cookie of this session and key.

        Raises :class:`~satchel.errors.InvalidCredential` for two cookies of its name.
        """
        value = _find_cookie(headers, self._name_b)
        if value is None:
            return False
        known = self._verified.get(value)
        if known is not None:  # this exact value passed its MAC check before
            return known[0] == session_id and known[1] == thumbprint and known[2] > now
        match = _VALUE.fullmatch(value)
        if match is None:
            return False
        expires = int(match.group(1))
        if expires <= now:
            return False
        expected = self._mac(session_id, thumbprint, expires)
        if not hmac.compare_digest(expected, match.group(2)):
            return False
        if len(self._verified) >= _MEMO_SIZE:
            self._verified.clear()
        self._verified[value] = (session_id, thumbprint, expires)
        return True
