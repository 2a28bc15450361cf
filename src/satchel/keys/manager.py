"""Signing keys, key sets and their persistence.

Every key object is bound to exactly one JWS algorithm when it is built; a token header can
only *name* a key (``kid``), never choose how it is verified (checklist J03/J04). Supported:
``EdDSA`` (Ed25519, the default), ``ES256`` (P-256, raw ``r||s`` signatures), ``RS256``
(RSA >= 2048 bits) and ``HS256`` (secret >= 32 bytes; never published in a JWKS).

Private material lives only inside the key objects and in :class:`StoredKey` records handed
to a :class:`KeyStore`; no ``repr`` or error message contains it.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hmac
import json
import logging
import math
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
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

from satchel.clock import Clock, system_clock
from satchel.errors import ConfigurationError
from satchel.stores.base import KeyState, KeyStore, StoredKey

logger = logging.getLogger("satchel.keys")

#: Algorithms satchel signs and verifies.
ALGORITHMS = ("EdDSA", "ES256", "RS256", "HS256")
DEFAULT_ALG = "EdDSA"
#: RFC 7518 §3.2: the HMAC key must be at least as long as the hash output.
MIN_HMAC_SECRET = 32
MIN_RSA_BITS = 2048
MAX_KID_LENGTH = 128

#: Order of the P-256 group; raw ECDSA ``r`` and ``s`` must lie in ``[1, n-1]`` (J20).
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551

#: Secret name used to agree on the very first key when several processes start at once.
# A stored record name: kept as first released, whatever the module is called now.
INITIAL_KEY_RECORD = "satchel.jwt.initial-key"


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64d(text: object, what: str) -> bytes:
    if not isinstance(text, str) or not text or "=" in text:
        raise ConfigurationError(f"{what}: expected unpadded base64url text.")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ConfigurationError(f"{what}: invalid base64url.") from None


def _check_kid(kid: object) -> str:
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
        self.kid = _check_kid(kid)
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

    def _verify_only(self) -> ConfigurationError:
        return ConfigurationError(f"Key {self.kid!r} is verify-only.")

    def to_stored(self, state: KeyState, not_after: float | None = None) -> StoredKey:
        """The record to persist (contains private material: the store must protect it)."""
        if not self.can_sign:
            raise self._verify_only()
        return StoredKey(
            kid=self.kid,
            alg=self.alg,
            material=self._material(),
            state=state,
            created_at=self.created_at,
            not_after=not_after,
        )

    @staticmethod
    def from_stored(stored: StoredKey) -> SigningKey:
        """Rebuild a key from its stored record; ConfigurationError if it is unusable."""
        cls = _BY_ALG.get(stored.alg)
        if cls is None:
            raise ConfigurationError(f"Stored key {stored.kid!r} has unsupported alg.")
        return cls._from_material(stored.kid, stored.material, stored.created_at)

    @classmethod
    @abstractmethod
    def _from_material(cls, kid: str, material: str, created_at: float) -> SigningKey: ...

    def __repr__(self) -> str:
        kind = "private" if self.can_sign else "public"
        return f"{type(self).__name__}(kid={self.kid!r}, alg={self.alg!r}, {kind})"


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
            raise self._verify_only()
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
            raise self._verify_only()
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
            "x": _b64e(raw),
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
            raise self._verify_only()
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
            "x": _b64e(numbers.x.to_bytes(32, "big")),
            "y": _b64e(numbers.y.to_bytes(32, "big")),
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
            raise self._verify_only()
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
            "n": _b64e(numbers.n.to_bytes(self._size, "big")),
            "e": _b64e(numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")),
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
        return _b64e(self._secret)

    @classmethod
    def _from_material(cls, kid: str, material: str, created_at: float) -> HS256Key:
        return cls(kid, _b64d(material, f"Stored key {kid!r}"), created_at=created_at)


_BY_ALG: dict[str, type[SigningKey]] = {
    "EdDSA": Ed25519Key,
    "ES256": ES256Key,
    "RS256": RS256Key,
    "HS256": HS256Key,
}


def generate_key(
    alg: str = DEFAULT_ALG, *, kid: str | None = None, created_at: float = 0.0
) -> SigningKey:
    """A new key for ``alg`` (one of :data:`ALGORITHMS`)."""
    if alg == "EdDSA":
        return Ed25519Key.generate(kid, created_at)
    if alg == "ES256":
        return ES256Key.generate(kid, created_at)
    if alg == "RS256":
        return RS256Key.generate(kid, created_at)
    if alg == "HS256":
        return HS256Key.generate(kid, created_at)
    raise ConfigurationError(f"Unsupported signing algorithm; use one of {', '.join(ALGORITHMS)}.")


def _jwk_int(jwk: Mapping[str, Any], name: str, size: int | None = None) -> int:
    raw = _b64d(jwk.get(name), f"JWK member {name!r}")
    if size is not None and len(raw) != size:
        raise ConfigurationError(f"JWK member {name!r} has the wrong length.")
    return int.from_bytes(raw, "big")


def key_from_jwk(jwk: Mapping[str, Any], *, kid: str | None = None) -> SigningKey:
    """A verify-only key (or an HS256 key) from a JWK, checked strictly.

    ``use`` must be ``sig`` and ``key_ops`` must contain ``verify`` when present; ``alg``,
    when present, must match the key type exactly. Private members of asymmetric keys are
    ignored: the result only verifies.
    """
    if not isinstance(jwk, Mapping):
        raise ConfigurationError("A JWK must be a JSON object.")
    use = jwk.get("use")
    if use is not None and use != "sig":
        raise ConfigurationError("JWK is not a signature key (use).")
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        raise ConfigurationError("JWK is not a verification key (key_ops).")
    kty, crv = jwk.get("kty"), jwk.get("crv")
    if kty == "OKP" and crv == "Ed25519":
        cls: type[SigningKey] = Ed25519Key
    elif kty == "EC" and crv == "P-256":
        cls = ES256Key
    elif kty == "RSA":
        cls = RS256Key
    elif kty == "oct":
        cls = HS256Key
    else:
        raise ConfigurationError("Unsupported JWK key type or curve.")
    alg = jwk.get("alg")
    if alg is not None and alg != cls.alg:
        raise ConfigurationError("JWK alg does not match its key type.")
    key_id = _check_kid(kid if kid is not None else jwk.get("kid"))
    try:
        if cls is Ed25519Key:
            x = _b64d(jwk.get("x"), "JWK member 'x'")
            return Ed25519Key(key_id, public=Ed25519PublicKey.from_public_bytes(x))
        if cls is ES256Key:
            nums = ec.EllipticCurvePublicNumbers(
                _jwk_int(jwk, "x", 32), _jwk_int(jwk, "y", 32), ec.SECP256R1()
            )
            return ES256Key(key_id, public=nums.public_key())
        if cls is RS256Key:
            rsa_nums = rsa.RSAPublicNumbers(_jwk_int(jwk, "e"), _jwk_int(jwk, "n"))
            return RS256Key(key_id, public=rsa_nums.public_key())
    except ValueError:
        raise ConfigurationError("JWK does not describe a valid public key.") from None
    return HS256Key(key_id, _b64d(jwk.get("k"), "JWK member 'k'"))


class KeySet:
    """The keys a process verifies with, and the one it signs with.

    Each entry carries ``not_after``: a previous key verifies until that instant and is
    ignored afterwards. ``get`` never falls back to another key (J06). ``active_not_after``
    is set for a signing key that is already superseded by a published successor.
    """

    __slots__ = ("_active", "_entries")

    def __init__(
        self,
        active: SigningKey | None = None,
        previous: Iterable[tuple[SigningKey, float | None]] = (),
        *,
        active_not_after: float | None = None,
    ) -> None:
        self._entries: dict[str, tuple[SigningKey, float]] = {}
        self._active = active
        if active is not None:
            if not active.can_sign:
                raise active._verify_only()
            until = math.inf if active_not_after is None else float(active_not_after)
            self._entries[active.kid] = (active, until)
        for key, not_after in previous:
            if key.kid in self._entries:
                raise ConfigurationError(f"Duplicate key id {key.kid!r} in key set.")
            self._entries[key.kid] = (key, math.inf if not_after is None else float(not_after))

    @classmethod
    def verify_only(cls, keys: Iterable[SigningKey]) -> KeySet:
        """A set that verifies with ``keys`` and cannot sign."""
        return cls(None, ((k, None) for k in keys))

    @property
    def active(self) -> SigningKey:
        """The signing key."""
        if self._active is None:
            raise ConfigurationError("This key set has no signing key.")
        return self._active

    def get(self, kid: str, now: float) -> SigningKey | None:
        """The key named ``kid`` if it may verify at ``now``; None otherwise."""
        entry = self._entries.get(kid)
        if entry is None or now > entry[1]:
            return None
        return entry[0]

    def not_after(self, kid: str) -> float:
        """Until when ``kid`` verifies (``inf`` for current keys, ``-inf`` when unknown)."""
        entry = self._entries.get(kid)
        return -math.inf if entry is None else entry[1]

    def kids(self) -> list[str]:
        """Every key id in the set."""
        return list(self._entries)

    def jwks(self, now: float | None = None) -> dict[str, list[dict[str, Any]]]:
        """The public JWKS (RFC 7517 §5). Secret keys never appear; expired ones neither."""
        keys = []
        for key, not_after in self._entries.values():
            if now is not None and now > not_after:
                continue
            jwk = key.public_jwk()
            if jwk is not None:
                keys.append(jwk)
        return {"keys": keys}

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        active = self._active.kid if self._active else None
        return f"KeySet(active={active!r}, kids={list(self._entries)!r})"


def _stored_to_json(stored: StoredKey) -> bytes:
    return json.dumps(
        {
            "kid": stored.kid,
            "alg": stored.alg,
            "material": stored.material,
            "created_at": stored.created_at,
        },
        separators=(",", ":"),
    ).encode("utf-8")


def _stored_from_json(raw: bytes) -> StoredKey:
    try:
        data = json.loads(raw)
        return StoredKey(
            kid=_check_kid(data["kid"]),
            alg=str(data["alg"]),
            material=str(data["material"]),
            state=KeyState.ACTIVE,
            created_at=float(data["created_at"]),
        )
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError("The stored initial signing key is corrupt.") from None


#: Default seconds between publishing a new key and signing with it: twice the strategies'
#: default ``key_reload_interval`` (60 s), so every node has re-read the keys in between.
DEFAULT_PUBLISH_DELAY = 120.0


class KeyRole(enum.StrEnum):
    """What a stored key does at a given instant (derived, never stored)."""

    SIGNING = "signing"  # signs new tokens (exactly one key) and verifies
    PENDING = "pending"  # published and verifying; signs from ``signs_from``
    VERIFYING = "verifying"  # verifies only, until ``not_after`` (if set)
    EXPIRED = "expired"  # past ``not_after``: neither signs nor verifies
    RETIRED = "retired"  # never used again


@dataclass(frozen=True, slots=True)
class KeyStatus:
    """The role of one stored key at one instant; carries no key material."""

    kid: str
    alg: str
    state: KeyState
    role: KeyRole
    created_at: float
    not_after: float | None
    signs_from: float | None = None


def _order(record: StoredKey) -> tuple[float, bool, str]:
    # Age order. A rotation demotes every ACTIVE key, so on equal creation times the
    # ACTIVE one is the newer; the kid only makes the order total.
    return (record.created_at, record.state is KeyState.ACTIVE, record.kid)


def _usable(record: StoredKey, now: float) -> bool:
    return record.state is not KeyState.RETIRED and (
        record.not_after is None or now <= record.not_after
    )


def signing_record(
    records: Iterable[StoredKey], now: float, publish_delay: float
) -> StoredKey | None:
    """The record that signs at ``now`` under the publish-before-sign rule (F14).

    A key is published when it is stored; it may sign from ``created_at + publish_delay``,
    by which time every node has re-read the store and accepts it. The newest usable key
    past that point signs. While no usable key is past it (the very first key, or a
    rotation right after it), the oldest usable key signs: it is the one every node knows.
    """
    usable = [r for r in records if _usable(r, now)]
    if not usable:
        return None
    published = [r for r in usable if r.created_at + publish_delay <= now]
    if published:
        return max(published, key=_order)
    return min(usable, key=_order)


def key_statuses(records: Sequence[StoredKey], now: float, publish_delay: float) -> list[KeyStatus]:
    """The role of every record at ``now`` (same order as ``records``)."""
    signer = signing_record(records, now, publish_delay)
    statuses = []
    for record in records:
        signs_from = None
        if record.state is KeyState.RETIRED:
            role = KeyRole.RETIRED
        elif not _usable(record, now):
            role = KeyRole.EXPIRED
        elif record is signer:
            role = KeyRole.SIGNING
        elif signer is not None and _order(record) > _order(signer):
            # Newer than the signer means not yet past its publish delay.
            role, signs_from = KeyRole.PENDING, record.created_at + publish_delay
        else:
            role = KeyRole.VERIFYING
        statuses.append(
            KeyStatus(
                kid=record.kid,
                alg=record.alg,
                state=record.state,
                role=role,
                created_at=record.created_at,
                not_after=record.not_after,
                signs_from=signs_from,
            )
        )
    return statuses


def _fingerprint(records: Iterable[StoredKey]) -> tuple[tuple[str, str, str, float, Any], ...]:
    return tuple(sorted((r.kid, r.alg, r.state.value, r.created_at, r.not_after) for r in records))


class KeyManager:
    """Loads, creates and rotates the signing keys kept in a :class:`KeyStore`.

    Keys are generated once and never silently regenerated. The first key is agreed
    through ``set_secret_if_absent`` so processes starting together end up with the same
    key, and signs at once. A rotated-in key is published first and signs only after
    ``publish_delay`` (see :func:`signing_record`); until then the old key keeps signing.
    ``publish_delay`` must be at least the ``key_reload_interval`` of every node.
    """

    def __init__(
        self,
        store: KeyStore,
        clock: Clock = system_clock,
        *,
        alg: str = DEFAULT_ALG,
        overlap: float = 86_400.0,
        publish_delay: float = DEFAULT_PUBLISH_DELAY,
    ) -> None:
        if alg not in ALGORITHMS:
            raise ConfigurationError(
                f"Unsupported signing algorithm; use one of {', '.join(ALGORITHMS)}."
            )
        self.store = store
        self.clock = clock
        self.alg = alg
        self.overlap = _seconds("Key overlap", overlap)
        self.publish_delay = _seconds("Key publish delay", publish_delay)
        # Records that loaded, their key objects, and the set built for the current signer.
        self._records: list[StoredKey] | None = None
        self._keys: dict[str, SigningKey] = {}
        self._keyset: KeySet | None = None
        self._fingerprint: tuple[Any, ...] = ()
        self._reported: tuple[Any, ...] | None = None
        self._loaded_at = -math.inf

    @property
    def keyset(self) -> KeySet:
        """The last loaded keys, signing with the key that signs now (no store read)."""
        if self._records is None:
            raise ConfigurationError("Signing keys are not loaded; call load_or_create().")
        signer = signing_record(self._records, self.clock(), self.publish_delay)
        if signer is None:
            raise ConfigurationError("No usable signing key is loaded; rotate the keys.")
        if self._keyset is None or self._keyset.active.kid != signer.kid:
            self._keyset = KeySet(
                self._keys[signer.kid],
                ((self._keys[r.kid], r.not_after) for r in self._records if r is not signer),
                active_not_after=signer.not_after,
            )
        return self._keyset

    async def status(self) -> list[KeyStatus]:
        """Every stored key, oldest first, with what it does now (signing, pending, ...)."""
        return key_statuses(await self.store.list_keys(), self.clock(), self.publish_delay)

    async def list(self) -> list[StoredKey]:
        """Every stored key, oldest first (records hide their material in ``repr``)."""
        return await self.store.list_keys()

    async def load_or_create(self, alg: str | None = None) -> KeySet:
        """Load the stored keys, creating the first one if the store has none.

        Raises ConfigurationError when the newest active key uses another algorithm than
        ``alg`` (change algorithms with :meth:`rotate`), or when keys exist but none is active.
        """
        alg = alg or self.alg
        stored = await self.store.list_keys()
        if not stored:
            candidate = generate_key(alg, created_at=self.clock()).to_stored(KeyState.ACTIVE)
            raw = await self.store.set_secret_if_absent(
                INITIAL_KEY_RECORD, _stored_to_json(candidate)
            )
            winner = _stored_from_json(raw)
            await self.store.save_key(winner)
            stored = await self.store.list_keys()
        newest = self._load(stored)
        if newest.alg != alg:
            raise ConfigurationError(
                f"The stored signing key uses {newest.alg}, not {alg}; rotate the keys "
                "to change algorithm."
            )
        return self.keyset

    async def reload(self) -> KeySet:
        """Re-read the store (after a rotation by another process)."""
        self._load(await self.store.list_keys())
        return self.keyset

    async def refresh(self, max_age: float) -> bool:
        """Re-read the store if the keys were loaded more than ``max_age`` seconds ago.

        Keeps a node's view at most ``max_age`` old, so it learns of a rotation before the
        new key signs. A failed read keeps the loaded keys (logged) and is retried after
        ``max_age``. Returns True when the loaded keys changed since the previous call, by
        this re-read or any other (a :meth:`rotate` through this manager included), so the
        caller can drop what it derived from them.
        """
        now = self.clock()
        if self._records is not None and now - self._loaded_at >= max_age:
            try:
                self._load(await self.store.list_keys())
            except Exception as exc:
                self._loaded_at = now
                logger.warning(
                    "signing keys not refreshed, keeping loaded ones: %s", type(exc).__name__
                )
        changed = self._fingerprint != self._reported
        self._reported = self._fingerprint
        return changed

    async def rotate(
        self, alg: str | None = None, overlap: float | None = None, *, immediate: bool = False
    ) -> KeySet:
        """Publish a new key that signs once ``publish_delay`` has passed (F14).

        The current ACTIVE keys become PREVIOUS and verify until the new key starts signing
        plus ``overlap``. The new key is saved before the old ones are demoted, so an
        interruption leaves two verifying keys rather than none. Previous keys past their
        ``not_after`` are retired. ``immediate`` is for a compromised key: every other key
        is retired at once (their tokens stop verifying) and the new key signs now; nodes
        that have not reloaded reject its tokens until they do.
        """
        now = self.clock()
        overlap = self.overlap if overlap is None else _seconds("Key overlap", overlap)
        stored = await self.store.list_keys()
        current = [k for k in stored if k.state is KeyState.ACTIVE]
        if alg is None:
            alg = max(current, key=_order).alg if current else self.alg
        fresh = generate_key(alg, created_at=now)
        await self.store.save_key(fresh.to_stored(KeyState.ACTIVE))
        switch = now + self.publish_delay
        for key in stored:
            if immediate and key.state is not KeyState.RETIRED:
                key.state, key.not_after = KeyState.RETIRED, min(key.not_after or now, now)
            elif key.state is KeyState.ACTIVE:
                key.state, key.not_after = KeyState.PREVIOUS, switch + overlap
            elif key.state is KeyState.PREVIOUS and (key.not_after or 0.0) < now:
                key.state = KeyState.RETIRED
            else:
                continue
            await self.store.save_key(key)
        logger.info(
            "signing key published: kid=%s alg=%s signs from %s",
            fresh.kid,
            alg,
            "now" if immediate else f"{switch:.0f}",
        )
        return await self.reload()

    def _load(self, stored: Sequence[StoredKey]) -> StoredKey:
        """Replace the loaded keys; returns the newest ACTIVE record (the rotation target)."""
        now = self.clock()
        active = [k for k in stored if k.state is KeyState.ACTIVE]
        if not active:
            raise ConfigurationError("No active signing key is stored; rotate the keys.")
        newest = max(active, key=_order)
        keys = {newest.kid: SigningKey.from_stored(newest)}
        records = [newest]
        for record in stored:
            if record is newest or not _usable(record, now):
                continue
            try:
                keys[record.kid] = SigningKey.from_stored(record)
            except ConfigurationError as exc:
                # A damaged old key only costs the tokens it signed; the newest active key
                # decides whether the process can start.
                logger.error("skipped unusable stored key %s: %s", record.kid, exc.detail)
                continue
            records.append(record)
        self._records, self._keys, self._keyset = records, keys, None
        self._fingerprint = _fingerprint(stored)
        if self._reported is None:
            self._reported = self._fingerprint
        self._loaded_at = now
        return newest

    def __repr__(self) -> str:
        return f"KeyManager(alg={self.alg!r}, loaded={self._records is not None})"


def _seconds(what: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < math.inf:
        raise ConfigurationError(f"{what} must be a finite non-negative number of seconds.")
    return float(value)
