"""JSON Web Algorithms (RFC 7518, RFC 8037): one :class:`SigningKey` class per algorithm.

``EdDSA`` (Ed25519, the default), ``ES256`` (P-256, raw ``r||s`` signatures), ``RS256``
(RSA >= 2048 bits) and ``HS256`` (secret >= 32 bytes; never published in a JWKS). Each
class signs and verifies in its algorithm's exact JWS encoding and writes its own public
JWK; the primitives are ``cryptography``'s.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from satchel.errors import ConfigurationError
from satchel.jose import b64
from satchel.jose.signing_key import (
    MIN_HMAC_SECRET,
    MIN_RSA_BITS,
    SigningKey,
    decode_member,
    new_kid,
)

#: Order of the P-256 group; raw ECDSA ``r`` and ``s`` must lie in ``[1, n-1]`` (J20).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class _PrivateHalf(Protocol):
    """What the private key types of ``cryptography`` offer in common."""

    def public_key(self) -> Any: ...

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes: ...


_Priv = TypeVar("_Priv", bound=_PrivateHalf)
_Pub = TypeVar("_Pub")


class _KeyPair(SigningKey, Generic[_Priv, _Pub]):
    """An asymmetric key: built from either half, signs only with the private one.

    The private half is stored as PKCS#8 PEM. Subclasses set the class attributes below and
    may check the public half (and derive their own state) in :meth:`_validate`.
    """

    #: The key's name in constructor errors.
    _name: ClassVar[str]
    #: What stored PEM material must load as, and its name in errors.
    _pem_type: ClassVar[type[Any]]
    _pem_name: ClassVar[str]

    __slots__ = ("_private", "_public")

    def __init__(
        self,
        kid: str,
        *,
        private: _Priv | None = None,
        public: _Pub | None = None,
        created_at: float = 0.0,
    ) -> None:
        super().__init__(kid, created_at)
        if private is not None:
            public = private.public_key()
        if public is None:
            raise ConfigurationError(f"An {self._name} key needs its private or public half.")
        self._private = private
        self._public: _Pub = public
        self._validate()

    def _validate(self) -> None:
        """Check ``_public`` (raising :class:`ConfigurationError`) and set per-key state."""

    @property
    def can_sign(self) -> bool:
        return self._private is not None

    def _material(self) -> str:
        if self._private is None:
            raise self.verify_only_error()
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    @classmethod
    def _from_material(cls, kid: str, material: str, created_at: float) -> Self:
        try:
            private = serialization.load_pem_private_key(material.encode("ascii"), password=None)
        except (ValueError, TypeError, UnicodeError, UnsupportedAlgorithm):
            raise ConfigurationError(
                f"Stored key {kid!r} is not a usable PKCS#8 PEM key."
            ) from None
        if not isinstance(private, cls._pem_type):
            raise ConfigurationError(f"Stored key {kid!r} is not an {cls._pem_name} key.")
        return cls(kid, private=private, created_at=created_at)


class Ed25519Key(_KeyPair[Ed25519PrivateKey, Ed25519PublicKey]):
    """EdDSA over Ed25519 (RFC 8037)."""

    alg = "EdDSA"
    kty = "OKP"
    _name = _pem_name = "Ed25519"
    _pem_type = Ed25519PrivateKey
    __slots__ = ()

    @classmethod
    def generate(cls, kid: str | None = None, created_at: float = 0.0) -> Ed25519Key:
        """A new random key."""
        return cls(kid or new_kid(), private=Ed25519PrivateKey.generate(), created_at=created_at)

    def sign(self, data: bytes) -> bytes:
        if self._private is None:
            raise self.verify_only_error()
        return self._private.sign(data)

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != 64:
            return False
        try:
            self._public.verify(signature, data)
        except InvalidSignature:
            return False
        return True

    def public_jwk(self) -> dict[str, Any]:
        raw = self._public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64.encode(raw),
            "kid": self.kid,
            "alg": self.alg,
            "use": "sig",
        }


class ES256Key(_KeyPair[ec.EllipticCurvePrivateKey, ec.EllipticCurvePublicKey]):
    """ECDSA over P-256 with SHA-256; signatures are raw 64-byte ``r||s`` (RFC 7518 §3.4)."""

    alg = "ES256"
    kty = "EC"
    _name = "ES256"
    _pem_type = ec.EllipticCurvePrivateKey
    _pem_name = "EC"
    __slots__ = ("_algorithm",)

    def _validate(self) -> None:
        if not isinstance(self._public.curve, ec.SECP256R1):
            raise ConfigurationError("An ES256 key must be on curve P-256.")
        self._algorithm = ec.ECDSA(hashes.SHA256())

    @classmethod
    def generate(cls, kid: str | None = None, created_at: float = 0.0) -> ES256Key:
        """A new random key."""
        private = ec.generate_private_key(ec.SECP256R1())
        return cls(kid or new_kid(), private=private, created_at=created_at)

    def sign(self, data: bytes) -> bytes:
        if self._private is None:
            raise self.verify_only_error()
        r, s = decode_dss_signature(self._private.sign(data, self._algorithm))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    def verify(self, data: bytes, signature: bytes) -> bool:
        # Only the raw form is accepted: DER, 65 bytes or out-of-range r/s never reach
        # OpenSSL (CVE-2022-21449 "psychic signatures" sent r = s = 0).
        if len(signature) != 64:
            return False
        r = int.from_bytes(signature[:32], "big")
        s = int.from_bytes(signature[32:], "big")
        if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
            return False
        try:
            self._public.verify(encode_dss_signature(r, s), data, self._algorithm)
        except InvalidSignature:
            return False
        return True

    def public_jwk(self) -> dict[str, Any]:
        numbers = self._public.public_numbers()
        return {
            "kty": "EC",
            "crv": "P-256",
            "x": b64.encode(numbers.x.to_bytes(32, "big")),
            "y": b64.encode(numbers.y.to_bytes(32, "big")),
            "kid": self.kid,
            "alg": self.alg,
            "use": "sig",
        }


class RS256Key(_KeyPair[rsa.RSAPrivateKey, rsa.RSAPublicKey]):
    """RSASSA-PKCS1-v1_5 with SHA-256; the modulus must have at least 2048 bits (J24)."""

    alg = "RS256"
    kty = "RSA"
    _name = "RS256"
    _pem_type = rsa.RSAPrivateKey
    _pem_name = "RSA"
    __slots__ = ("_hash", "_padding", "_size")

    def _validate(self) -> None:
        if self._public.key_size < MIN_RSA_BITS:
            raise ConfigurationError(f"RSA keys must have at least {MIN_RSA_BITS} bits.")
        self._size = (self._public.key_size + 7) // 8
        self._padding = padding.PKCS1v15()
        self._hash = hashes.SHA256()

    @classmethod
    def generate(
        cls, kid: str | None = None, created_at: float = 0.0, bits: int = 3072
    ) -> RS256Key:
        """A new random key."""
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        return cls(kid or new_kid(), private=private, created_at=created_at)

    def sign(self, data: bytes) -> bytes:
        if self._private is None:
            raise self.verify_only_error()
        return self._private.sign(data, self._padding, self._hash)

    def verify(self, data: bytes, signature: bytes) -> bool:
        if len(signature) != self._size:
            return False
        try:
            self._public.verify(signature, data, self._padding, self._hash)
        except InvalidSignature:
            return False
        return True

    def public_jwk(self) -> dict[str, Any]:
        numbers = self._public.public_numbers()
        return {
            "kty": "RSA",
            "n": b64.encode(numbers.n.to_bytes(self._size, "big")),
            "e": b64.encode(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
            "kid": self.kid,
            "alg": self.alg,
            "use": "sig",
        }


class HS256Key(SigningKey):
    """HMAC-SHA-256 with a secret of at least 32 bytes. Never appears in a JWKS."""

    alg = "HS256"
    kty = "oct"
    __slots__ = ("_secret",)

    def __init__(self, kid: str, secret: bytes, *, created_at: float = 0.0) -> None:
        super().__init__(kid, created_at)
        if not isinstance(secret, bytes | bytearray) or len(secret) < MIN_HMAC_SECRET:
            raise ConfigurationError(f"HS256 secrets must be at least {MIN_HMAC_SECRET} bytes.")
        self._secret = bytes(secret)

    @classmethod
    def generate(cls, kid: str | None = None, created_at: float = 0.0) -> HS256Key:
        """A new random 256-bit secret."""
        return cls(kid or new_kid(), secrets.token_bytes(32), created_at=created_at)

    @property
    def can_sign(self) -> bool:
        return True

    def sign(self, data: bytes) -> bytes:
        return hmac.digest(self._secret, data, "sha256")

    def verify(self, data: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(hmac.digest(self._secret, data, "sha256"), signature)

    def public_jwk(self) -> None:
        return None

    def _material(self) -> str:
        return b64.encode(self._secret)

    @classmethod
    def _from_material(cls, kid: str, material: str, created_at: float) -> HS256Key:
        return cls(kid, decode_member(material, f"Stored key {kid!r}"), created_at=created_at)


#: The class of each algorithm, for rebuilding stored keys.
BY_ALG: dict[str, type[SigningKey]] = {
    "EdDSA": Ed25519Key,
    "ES256": ES256Key,
    "RS256": RS256Key,
    "HS256": HS256Key,
}
