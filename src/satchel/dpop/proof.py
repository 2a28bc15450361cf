"""A DPoP proof (RFC 9449 §4): parsed and verified without I/O.

Accepted: a compact JWS with ``typ: dpop+jwt``, ``alg`` ES256 or EdDSA (never a symmetric
algorithm or ``none``: the key travels in the proof, so only the signature by its private
half proves possession), a ``jwk`` header that is a public key only, and claims ``jti``,
``htm``, ``htu``, ``iat`` (and ``ath`` on resource requests, ``nonce`` when one is due).
Replay (the ``jti``) and nonces are the caller's: :mod:`satchel.dpop.guard`.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlsplit

from satchel.dpop.binding import ALGS, challenge
from satchel.errors import AuthenticationError, ConfigurationError, InvalidToken
from satchel.jose import b64, jws
from satchel.jose.jwk import SigningKey, key_from_jwk, thumbprint

PROOF_TYPE: Final = "dpop+jwt"
#: A proof is small (a header with a P-256 key and five claims); anything far larger is not one.
MAX_PROOF_LENGTH: Final = 4096
MAX_JTI: Final = 256
# Members only a private (or symmetric) JWK has: RFC 7517/7518 §6.2.2, §6.3.2, §6.4.
_PRIVATE_MEMBERS: Final = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
_KEY_TYPES: Final = {"ES256": ("EC", "P-256"), "EdDSA": ("OKP", "Ed25519")}
_DEFAULT_PORTS: Final = {"http": 80, "https": 443}
# Parsed public keys and their thumbprints by JWK text (bounded: cleared when full).
_KEYS: dict[str, tuple[SigningKey, str]] = {}
_MAX_KEYS: Final = 4096
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


class DPoPProofError(AuthenticationError):
    """The DPoP proof is missing, malformed or does not match the request."""

    code = "invalid_dpop_proof"

    def __init__(self, detail: str, reason: str = "malformed") -> None:
        super().__init__(detail)
        #: A short stable label for audit events and metrics (never client input).
        self.reason = reason

    def response_headers(self) -> list[tuple[str, str]]:
        return [("WWW-Authenticate", challenge(self.code, self.detail))]


class UseDPoPNonce(DPoPProofError):
    """The proof needs the server's current nonce (``DPoP-Nonce``); retry with it."""

    code = "use_dpop_nonce"

    def __init__(self, nonce: str) -> None:
        super().__init__("Retry with the DPoP-Nonce this answer carries.", "nonce")
        self.nonce = nonce

    def response_headers(self) -> list[tuple[str, str]]:
        return [*super().response_headers(), ("DPoP-Nonce", self.nonce)]


@dataclass(frozen=True, slots=True)
class Proof:
    """A verified proof: the key's thumbprint and the claims the caller still checks."""

    jkt: str
    jti: str
    iat: float
    nonce: str | None


def access_token_hash(token: str) -> str:
    """``ath``: base64url of SHA-256 of the access token's ASCII text (RFC 9449 §4.2)."""
    return b64.encode(hashlib.sha256(token.encode("ascii")).digest())


def _percent(match: re.Match[str]) -> str:
    char = chr(int(match.group(0)[1:], 16))
    return char if char in _UNRESERVED else match.group(0).upper()


def normalize_htu(url: str) -> str:
    """``url`` as :func:`verify_proof` compares it (RFC 3986 §6.2.2, §6.2.3; RFC 9449 §4.3).

    Scheme and host lower-cased, the scheme's default port dropped, an empty path made
    ``/``, percent-escapes of unreserved characters decoded (others upper-cased), query
    and fragment removed. ValueError when it is not an absolute http(s) URL.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        raise ValueError("not an absolute http(s) URL")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port  # ValueError for a port out of range
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _PERCENT.sub(_percent, parts.path) or "/"
    return f"{scheme}://{netloc}{path}"


def _public_jwk(header: dict[str, Any], alg: str) -> tuple[SigningKey, str]:
    jwk = header.get("jwk")
    if type(jwk) is not dict:
        raise DPoPProofError("The proof header needs a jwk object.", "jwk")
    if not _PRIVATE_MEMBERS.isdisjoint(jwk):
        raise DPoPProofError("The proof's jwk must be a public key only.", "private_key")
    kty, crv = _KEY_TYPES[alg]
    if jwk.get("kty") != kty or jwk.get("crv") != crv:
        raise DPoPProofError("The proof's jwk does not fit its alg.", "jwk")
    # A client signs every request with one key: its point is not rebuilt and checked again.
    # Keyed by the whole JWK, so a variant (another use, alg or kid) is parsed on its own.
    text = json.dumps(jwk, sort_keys=True, separators=(",", ":"))
    known = _KEYS.get(text)
    if known is not None:
        return known
    try:
        known = key_from_jwk(jwk, kid="dpop"), thumbprint(jwk)
    except ConfigurationError:
        raise DPoPProofError("The proof's jwk is not a valid public key.", "jwk") from None
    if len(_KEYS) >= _MAX_KEYS:
        _KEYS.clear()
    _KEYS[text] = known
    return known


def _text(claims: dict[str, Any], name: str, limit: int = MAX_JTI) -> str:
    value = claims.get(name)
    if type(value) is not str or not value or len(value) > limit:
        raise DPoPProofError(f"The proof needs a {name} claim.", "claims")
    return value


def verify_proof(
    proof: str,
    *,
    method: str,
    url: str,
    now: float,
    access_token: str | None = None,
    max_age: float = 60.0,
    future_skew: float = 5.0,
) -> Proof:
    """Check ``proof`` against the request (``method``, normalised ``url``) and ``now``.

    ``access_token`` is the token the request presents (its hash must be the ``ath``
    claim); None at the token endpoint, where no ``ath`` is expected. ``iat`` must lie in
    ``[now - max_age, now + future_skew]``. Raises :class:`DPoPProofError`.
    """
    try:
        header, claims, signing_input, signature = jws.split_unverified(proof, MAX_PROOF_LENGTH)
    except InvalidToken:
        raise DPoPProofError("The DPoP proof is not a compact JWS.") from None
    if header.get("typ") != PROOF_TYPE:
        raise DPoPProofError("The proof's typ must be dpop+jwt.", "typ")
    alg = header.get("alg")
    if alg not in ALGS:
        raise DPoPProofError("The proof's alg must be ES256 or EdDSA.", "alg")
    if "crit" in header:
        raise DPoPProofError("The proof header carries an unsupported member.", "header")
    key, jkt = _public_jwk(header, str(alg))
    if not key.verify(signing_input, signature):
        raise DPoPProofError("The proof's signature is invalid.", "signature")
    jti = _text(claims, "jti")
    if _text(claims, "htm", 16) != method:  # methods are case-sensitive (RFC 9110 §9.1)
        raise DPoPProofError("The proof's htm does not match the request method.", "htm")
    try:
        htu = normalize_htu(_text(claims, "htu", 2048))
    except ValueError:
        raise DPoPProofError("The proof's htu is not an http(s) URL.", "htu") from None
    if htu != normalize_htu(url):
        raise DPoPProofError("The proof's htu does not match the request URL.", "htu")
    iat = claims.get("iat")
    if type(iat) is not int and type(iat) is not float:
        raise DPoPProofError("The proof needs a numeric iat claim.", "claims")
    if not now - max_age <= iat <= now + future_skew:
        raise DPoPProofError("The proof's iat is outside the accepted window.", "iat")
    if access_token is not None and claims.get("ath") != access_token_hash(access_token):
        raise DPoPProofError("The proof's ath does not match the access token.", "ath")
    nonce = claims.get("nonce")
    if nonce is not None and (type(nonce) is not str or len(nonce) > MAX_JTI):
        raise DPoPProofError("The proof's nonce claim is malformed.", "nonce")
    return Proof(jkt=jkt, jti=jti, iat=float(iat), nonce=nonce)
