"""JSON Web Keys (RFC 7517): build, parse and name the keys satchel signs and verifies with.

This is the module to import key objects from: it gathers the key contract
(:mod:`satchel.jose.signing_key`) and the algorithm classes (:mod:`satchel.jose.jwa`), and
adds :func:`generate_key` and the strict JWK parser :func:`key_from_jwk`. Serialising is
each key's :meth:`~SigningKey.public_jwk`; a JWK Set is :meth:`KeySet.jwks
<satchel.jose.keyset.KeySet.jwks>`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from satchel.errors import ConfigurationError
from satchel.jose import b64
from satchel.jose.jwa import BY_ALG, P256_ORDER, Ed25519Key, ES256Key, HS256Key, RS256Key
from satchel.jose.signing_key import (
    ALGORITHMS,
    DEFAULT_ALG,
    MAX_KID_LENGTH,
    MIN_HMAC_SECRET,
    MIN_RSA_BITS,
    SigningKey,
    check_kid,
    decode_member,
    new_kid,
)
from satchel.stores.base import StoredKey

__all__ = [
    "ALGORITHMS",
    "DEFAULT_ALG",
    "MAX_KID_LENGTH",
    "MIN_HMAC_SECRET",
    "MIN_RSA_BITS",
    "P256_ORDER",
    "ES256Key",
    "Ed25519Key",
    "HS256Key",
    "RS256Key",
    "SigningKey",
    "check_kid",
    "generate_key",
    "key_from_jwk",
    "key_from_stored",
    "new_kid",
    "thumbprint",
]

# RFC 7638 §3.2: the required members of each key type, the only ones hashed.
_THUMBPRINT_MEMBERS: dict[str, tuple[str, ...]] = {
    "EC": ("crv", "kty", "x", "y"),
    "OKP": ("crv", "kty", "x"),
    "RSA": ("e", "kty", "n"),
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
    raw = decode_member(jwk.get(name), f"JWK member {name!r}")
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
    key_id = check_kid(kid if kid is not None else jwk.get("kid"))
    try:
        if cls is Ed25519Key:
            x = decode_member(jwk.get("x"), "JWK member 'x'")
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
    return HS256Key(key_id, decode_member(jwk.get("k"), "JWK member 'k'"))


def thumbprint(jwk: Mapping[str, Any]) -> str:
    """The RFC 7638 SHA-256 thumbprint of a public JWK, base64url (``cnf.jkt``, RFC 9449).

    Only the key type's required members count, as UTF-8 JSON with sorted names and no
    whitespace; ConfigurationError for an unknown key type or a member that is not text.
    """
    members = _THUMBPRINT_MEMBERS.get(str(jwk.get("kty")))
    if members is None:
        raise ConfigurationError("Unsupported JWK key type for a thumbprint.")
    required = {name: jwk.get(name) for name in members}
    if any(not isinstance(value, str) or not value for value in required.values()):
        raise ConfigurationError("JWK lacks a member its thumbprint needs.")
    text = json.dumps(required, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return b64.encode(hashlib.sha256(text.encode("utf-8")).digest())


def key_from_stored(stored: StoredKey) -> SigningKey:
    """Rebuild a key from its stored record; ConfigurationError if it is unusable."""
    cls = BY_ALG.get(stored.alg)
    if cls is None:
        raise ConfigurationError(f"Stored key {stored.kid!r} has unsupported alg.")
    return cls._from_material(stored.kid, stored.material, stored.created_at)
