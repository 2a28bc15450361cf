"""The signing-key contract every JWS algorithm class fulfils, and the rules on key ids.

Every key object is bound to exactly one JWS algorithm when it is built; a token header can
only *name* a key (``kid``), never choose how it is verified (checklist J03/J04). The
algorithm classes are in :mod:`satchel.jose.jwa`; :mod:`satchel.jose.jwk` builds them.

Private material lives only inside the key objects and in the :class:`StoredKey` records
they produce for a key store; no ``repr`` or error message contains it.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from satchel.errors import ConfigurationError
from satchel.jose import b64
from satchel.stores.base import KeyState, StoredKey

#: Algorithms satchel signs and verifies.
ALGORITHMS = ("EdDSA", "ES256", "RS256", "HS256")
DEFAULT_ALG = "EdDSA"
#: RFC 7518 §3.2: the HMAC key must be at least as long as the hash output.
MIN_HMAC_SECRET = 32
MIN_RSA_BITS = 2048
MAX_KID_LENGTH = 128


def decode_member(text: object, what: str) -> bytes:
    """The bytes of a base64url key member; ConfigurationError naming ``what`` otherwise.

    Canonical-only, through the one codec (:mod:`satchel.jose.b64`): a second spelling of
    the same key is refused like any other malformed text.
    """
    if not isinstance(text, str) or not text or "=" in text:
        raise ConfigurationError(f"{what}: expected unpadded base64url text.")
    try:
        return b64.decode(text)
    except ValueError:
        raise ConfigurationError(f"{what}: invalid base64url.") from None


def check_kid(kid: object) -> str:
    """``kid`` if it is 1-128 printable characters; ConfigurationError otherwise."""
    if not isinstance(kid, str) or not 0 < len(kid) <= MAX_KID_LENGTH or not kid.isprintable():
        raise ConfigurationError(f"A key id must be 1-{MAX_KID_LENGTH} printable characters.")
    return kid


def new_kid() -> str:
    """A fresh random key id (96 bits, base64url)."""
    return secrets.token_urlsafe(12)


class SigningKey(ABC):
    """A key bound to one JWS algorithm. Verify-only when built from public material."""

    alg: ClassVar[str]
    kty: ClassVar[str]

    __slots__ = ("created_at", "kid")

    def __init__(self, kid: str, created_at: float = 0.0) -> None:
        self.kid = check_kid(kid)
        self.created_at = float(created_at)

    @property
    @abstractmethod
    def can_sign(self) -> bool:
        """True when the private half is present."""

    @abstractmethod
    def sign(self, data: bytes) -> bytes:
        """The JWS signature of ``data`` (raises ConfigurationError on a verify-only key)."""

    @abstractmethod
    def verify(self, data: bytes, signature: bytes) -> bool:
        """True only for a valid signature in this algorithm's exact JWS encoding."""

    @abstractmethod
    def public_jwk(self) -> dict[str, Any] | None:
        """The public JWK (with ``kid``, ``alg``, ``use``), or None for secret keys."""

    @abstractmethod
    def _material(self) -> str:
        """Private material for storage."""

    def verify_only_error(self) -> ConfigurationError:
        """The error for signing (or storing) with a key that holds no private half."""
        return ConfigurationError(f"Key {self.kid!r} is verify-only.")

    def to_stored(self, state: KeyState, not_after: float | None = None) -> StoredKey:
        """The record to persist (contains private material: the store must protect it)."""
        if not self.can_sign:
            raise self.verify_only_error()
        return StoredKey(
            kid=self.kid,
            alg=self.alg,
            material=self._material(),
            state=state,
            created_at=self.created_at,
            not_after=not_after,
        )

    @classmethod
    @abstractmethod
    def _from_material(cls, kid: str, material: str, created_at: float) -> SigningKey: ...

    def __repr__(self) -> str:
        kind = "private" if self.can_sign else "public"
        return f"{type(self).__name__}(kid={self.kid!r}, alg={self.alg!r}, {kind})"
