"""DBSC proofs: the JWTs of ``Secure-Session-Response`` (draft dbsc-1, "DBSC Proof JWT").

A proof is a compact JWS with ``typ: dbsc+jwt`` and ``alg`` ES256 or RS256 (``none`` is
never accepted); its payload's ``jti`` is the server's challenge. At registration the header
carries the new public key as ``jwk``; at refresh it must not, and the signature must verify
with the key registered for the session.

The compact form is read with the same strict pieces as satchel's own tokens
(:mod:`satchel.jose.jws`: canonical base64url, UTF-8 JSON objects without duplicate members)
and keys are built by the strict JWK parser (:func:`satchel.jose.jwk.key_from_jwk`, RSA at
least 2048 bits, EC on P-256 only); signatures are checked by ``cryptography``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from satchel.dbsc.errors import InvalidProof, WrongKey
from satchel.dbsc.headers import ALGORITHMS, MAX_PROOF
from satchel.errors import ConfigurationError, InvalidToken
from satchel.jose import b64
from satchel.jose.jwk import SigningKey, key_from_jwk
from satchel.jose.jws import _TOKEN_RE, _object, _segment

TYP: Final = "dbsc+jwt"
MAX_JTI: Final = 256
MAX_AUTHORIZATION: Final = 2048

# RFC 7638 §3.2: the required members of each key type, the only ones hashed or kept.
_REQUIRED: Final = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n")}
_KTY_OF: Final = {"ES256": "EC", "RS256": "RSA"}
# Private members: a key that shows them is not a device-bound key.
_PRIVATE: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# Members that point at or carry other keys and extensions we do not implement.
_REFUSED: Final = frozenset({"crit", "b64", "jku", "x5u", "x5c", "x5t", "x5t#S256", "enc", "zip"})


@dataclass(frozen=True, slots=True)
class DeviceKey:
    """A session's registered public key: its algorithm, public JWK and RFC 7638 thumbprint."""

    alg: str
    jwk: dict[str, str]
    thumbprint: str

    def verifier(self) -> SigningKey:
        """A verify-only key object."""
        return _key(self.jwk, self.alg)

    def to_data(self) -> dict[str, Any]:
        """The JSON form kept in the session record."""
        return {"alg": self.alg, "jwk": dict(self.jwk), "jkt": self.thumbprint}

    @classmethod
    def from_data(cls, data: object) -> DeviceKey | None:
        """The key kept by :meth:`to_data`; None when ``data`` is not one."""
        if not isinstance(data, Mapping):
            return None
        alg, jwk, jkt = data.get("alg"), data.get("jwk"), data.get("jkt")
        if alg not in ALGORITHMS or not isinstance(jwk, Mapping) or not isinstance(jkt, str):
            return None
        return cls(alg, {str(k): str(v) for k, v in jwk.items()}, jkt)


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof whose signature checked out: the challenge it answers and, at registration,
    the key it introduced."""

    jti: str
    key: DeviceKey | None
    authorization: str | None


def thumbprint(jwk: Mapping[str, str]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url) of a public EC or RSA key."""
    members = _REQUIRED.get(str(jwk.get("kty")))
    if members is None:
        raise InvalidProof("Unsupported session key type.")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return b64.encode(hashlib.sha256(canonical.encode("utf-8")).digest())


def _key(jwk: Mapping[str, Any], alg: str) -> SigningKey:
    try:
        key = key_from_jwk(jwk, kid="dbsc")
    except ConfigurationError as exc:
        raise InvalidProof(exc.detail) from None
    if key.alg != alg:
        raise InvalidProof("The session key does not match the proof's algorithm.")
    return key


def _public_jwk(value: object, alg: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidProof("The registration proof needs the public key as 'jwk'.")
    if not _PRIVATE.isdisjoint(value):
        raise InvalidProof("The session key must be a public key.")
    if value.get("kty") != _KTY_OF[alg]:
        raise InvalidProof("The session key does not match the proof's algorithm.")
    members = _REQUIRED[_KTY_OF[alg]]
    if not all(isinstance(value.get(m), str) for m in members):
        raise InvalidProof("The session key is incomplete.")
    return {m: value[m] for m in members}


def _parts(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes]:
    """Header, payload, signing input and signature of a compact JWS (nothing verified)."""
    if len(token) > MAX_PROOF:
        raise InvalidProof("The proof is too long.")
    match = _TOKEN_RE.fullmatch(token)
    if match is None:
        raise InvalidProof("The proof is not a compact JWS.")
    end_header, end_payload = match.end(1), match.end(2)
    raw = token.encode("ascii")
    std = raw.translate(b64.TO_STANDARD)
    try:
        header = _object(_segment(std[:end_header], token[end_header - 1], "header"), "header")
        payload = _object(
            _segment(std[end_header + 1 : end_payload], token[end_payload - 1], "payload"),
            "payload",
        )
        signature = _segment(std[end_payload + 1 :], token[-1], "signature")
    except InvalidToken as exc:
        raise InvalidProof(exc.detail) from None
    return header, payload, raw[:end_payload], signature


def _checked(token: str) -> tuple[dict[str, Any], dict[str, Any], bytes, bytes, str]:
    header, payload, signing_input, signature = _parts(token)
    if header.get("typ") != TYP:
        raise InvalidProof("The proof's typ must be dbsc+jwt.")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise InvalidProof("The proof must be signed with ES256 or RS256.")
    if not _REFUSED.isdisjoint(header):
        raise InvalidProof("The proof header carries an unsupported member.")
    jti = payload.get("jti")
    if type(jti) is not str or not jti or len(jti) > MAX_JTI:
        raise InvalidProof("The proof needs the challenge as 'jti'.")
    auth = payload.get("authorization")
    if auth is not None and (type(auth) is not str or len(auth) > MAX_AUTHORIZATION):
        raise InvalidProof("The proof's authorization must be text.")
    return header, payload, signing_input, signature, str(alg)


def verify_registration(token: str) -> Proof:
    """A registration proof: self-signed by the public key in its ``jwk`` header."""
    header, payload, signing_input, signature, alg = _checked(token)
    jwk = _public_jwk(header.get("jwk"), alg)
    if not _key(jwk, alg).verify(signing_input, signature):
        raise InvalidProof("The proof's signature does not verify with its key.")
    key = DeviceKey(alg, jwk, thumbprint(jwk))
    return Proof(payload["jti"], key, payload.get("authorization"))


def verify_refresh(token: str, registered: DeviceKey) -> Proof:
    """A refresh proof: no ``jwk``, signed by the session's registered key."""
    header, payload, signing_input, signature, alg = _checked(token)
    if "jwk" in header:
        raise InvalidProof("A refresh proof must not carry a key.")
    if alg != registered.alg or not registered.verifier().verify(signing_input, signature):
        raise WrongKey("The proof is not signed by this session's key.")
    return Proof(payload["jti"], None, payload.get("authorization"))
