"""Stateless DPoP nonces (RFC 9449 §8, §9): an HMAC-authenticated issue time.

A nonce is ``base64url(issued_at as 8 bytes || HMAC-SHA256(secret, issued_at)[:16])``: any
process holding the secret (kept in the key store, so every process shares it) checks it
without a store read. It proves a proof was made after the nonce was issued, which bounds
how far ahead a stolen key's holder could have pre-computed proofs; replay stays the job of
the ``jti`` cache.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import struct
from typing import Final

from satchel.errors import ConfigurationError
from satchel.jose import b64

#: Key-store secret name of the nonce key.
SECRET_NAME: Final = "dpop-nonce-key"  # noqa: S105 - a name, not a secret
_MAC_BYTES: Final = 16


class NonceKey:
    """Issues and checks nonces valid ``lifetime`` seconds from issue."""

    __slots__ = ("_secret", "lifetime")

    def __init__(self, secret: bytes, lifetime: float = 300.0) -> None:
        if len(secret) < 32:
            raise ConfigurationError("The DPoP nonce key needs at least 32 bytes.")
        if not 0 < lifetime <= 86_400:
            raise ConfigurationError("The DPoP nonce lifetime must be 1 second to 1 day.")
        self._secret = bytes(secret)
        self.lifetime = float(lifetime)

    def __repr__(self) -> str:
        return f"NonceKey(lifetime={self.lifetime})"

    def _mac(self, stamp: bytes) -> bytes:
        return hmac.new(self._secret, stamp, hashlib.sha256).digest()[:_MAC_BYTES]

    def issue(self, now: float) -> str:
        """A nonce issued at ``now`` (whole seconds)."""
        stamp = struct.pack(">Q", max(0, math.floor(now)))
        return b64.encode(stamp + self._mac(stamp))

    def valid(self, nonce: str | None, now: float) -> bool:
        """True for a nonce of this key issued at most ``lifetime`` seconds ago."""
        if nonce is None:
            return False
        try:
            raw = b64.decode(nonce)
        except ValueError:
            return False
        if len(raw) != 8 + _MAC_BYTES or not hmac.compare_digest(raw[8:], self._mac(raw[:8])):
            return False
        issued: int = struct.unpack(">Q", raw[:8])[0]
        return issued - 1 <= now <= issued + self.lifetime
