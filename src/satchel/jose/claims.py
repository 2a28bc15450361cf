"""JWT claims (RFC 7519) on top of :mod:`satchel.jose.jws`: issue and verify, pure functions.

Profile (what :func:`verify` demands):

* header ``typ`` equals ``policy.token_type`` exactly, so an access token is never
  accepted where a refresh token is expected or the reverse (J14);
* ``iss`` is a string equal to ``policy.issuer`` (J12);
* ``aud`` is a non-empty string or a non-empty list of non-empty strings, containing
  ``policy.audience`` (J13);
* ``sub`` is a non-empty string; ``jti``, ``sid`` and the members of ``roles`` are
  strings when present;
* ``exp`` and ``iat`` are required, ``nbf`` optional; all three are finite numbers
  (booleans are not numbers) between 0 and :data:`MAX_TIMESTAMP` (J11);
* ``exp`` may lie at most ``leeway`` seconds in the past (J09), ``exp - iat`` may not
  exceed ``policy.max_lifetime``, ``exp`` must be after ``iat``;
* ``nbf`` may lie at most ``leeway`` seconds in the future (J10).

``iat`` in the future: a token whose ``iat`` is later than ``now + leeway`` is rejected.
Our own issuers never produce one, so it means clock skew beyond the tolerated leeway or a
forged lifetime (an ``iat`` pushed forward would otherwise stretch ``exp - iat`` checks and
"valid after" revocation). Within the leeway it is accepted, as with ``nbf``.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from satchel.errors import ConfigurationError, ExpiredCredential, InvalidToken
from satchel.jose import jws
from satchel.jose.keyset import KeySet

#: ``typ`` of access tokens (RFC 9068).
ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
#: ``typ`` of satchel refresh tokens, when they are JWTs.
REFRESH_TOKEN_TYPE = "satchel-rt+jwt"  # noqa: S105 - a media type
#: Latest acceptable timestamp (year 3000): larger numbers are nonsense, not "never".
MAX_TIMESTAMP = 32_503_680_000
#: Longest accepted string claim (sub, sid, jti, role names...).
MAX_CLAIM_TEXT = 256
MAX_ROLES = 64

#: Claims :func:`issue` sets itself; ``extra`` may not override them.
REGISTERED = frozenset({"iss", "aud", "sub", "iat", "exp", "nbf", "jti", "roles", "sid"})


@dataclass(frozen=True, slots=True)
class ClaimsPolicy:
    """What a verifier expects of a token's claims (all times in seconds)."""

    issuer: str
    audience: str
    leeway: float = 30.0
    #: Upper bound of ``exp - iat``.
    max_lifetime: float = 86_400.0
    #: Header ``typ`` this policy issues and accepts.
    token_type: str = ACCESS_TOKEN_TYPE
    #: When set, tokens whose ``iat`` is older than this are refused even if not expired.
    max_age: float | None = None

    def __post_init__(self) -> None:
        for name in ("issuer", "audience", "token_type"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value or len(value) > MAX_CLAIM_TEXT:
                raise ConfigurationError(f"ClaimsPolicy.{name} must be a non-empty string.")
        if not 0 <= self.leeway <= 300:
            raise ConfigurationError("ClaimsPolicy.leeway must be between 0 and 300 seconds.")
        if not 0 < self.max_lifetime <= 400 * 86_400:
            raise ConfigurationError("ClaimsPolicy.max_lifetime must be positive (<= 400 days).")
        if self.max_age is not None and self.max_age <= 0:
            raise ConfigurationError("ClaimsPolicy.max_age must be positive.")


def build_claims(
    policy: ClaimsPolicy,
    *,
    sub: str,
    now: float,
    ttl: float,
    roles: Iterable[str] = (),
    sid: str | None = None,
    extra: Mapping[str, Any] | None = None,
    jti: str | None = None,
) -> dict[str, Any]:
    """The claims :func:`issue` signs: ``iat`` is ``now`` rounded down, ``exp = iat + ttl``."""
    if not isinstance(sub, str) or not sub or len(sub) > MAX_CLAIM_TEXT:
        raise ConfigurationError("sub must be a non-empty string.")
    if not 0 < ttl <= policy.max_lifetime:
        raise ConfigurationError("ttl must be positive and within the policy's max_lifetime.")
    iat = math.floor(now)
    claims: dict[str, Any] = {
        "iss": policy.issuer,
        "aud": policy.audience,
        "sub": sub,
        "iat": iat,
        "exp": iat + max(1, math.floor(ttl)),
        "jti": jti or secrets.token_urlsafe(16),
        "roles": sorted(set(roles)),
    }
    if sid is not None:
        claims["sid"] = sid
    for name, value in (extra or {}).items():
        if name in REGISTERED:
            raise ConfigurationError(f"Claim {name!r} is set by issue() itself.")
        claims[name] = value
    return claims


def sign(keyset: KeySet, policy: ClaimsPolicy, claims: Mapping[str, Any]) -> str:
    """``claims`` as a token of ``policy.token_type`` signed by the active key."""
    return jws.encode({"typ": policy.token_type}, claims, keyset.active)


def issue(
    keyset: KeySet,
    policy: ClaimsPolicy,
    *,
    sub: str,
    now: float,
    ttl: float,
    roles: Iterable[str] = (),
    sid: str | None = None,
    extra: Mapping[str, Any] | None = None,
    jti: str | None = None,
) -> str:
    """A signed token for ``sub``, valid from ``now`` for ``ttl`` seconds (:func:`build_claims`)."""
    claims = build_claims(
        policy, sub=sub, now=now, ttl=ttl, roles=roles, sid=sid, extra=extra, jti=jti
    )
    return sign(keyset, policy, claims)


def _timestamp(value: object, name: str) -> float:
    # type() rather than isinstance(): bool is a subclass of int and must not pass (J11).
    if type(value) is not int and type(value) is not float:
        raise InvalidToken(f"Token lacks a valid {name} claim.")
    if not 0 <= value <= MAX_TIMESTAMP:  # the decoder already refused NaN and Infinity
        raise InvalidToken(f"Token {name} claim is out of range.")
    return float(value)


def _text(claims: Mapping[str, Any], name: str, required: bool) -> None:
    value = claims.get(name)
    if value is None and not required and name not in claims:
        return
    if type(value) is not str or not value or len(value) > MAX_CLAIM_TEXT:
        raise InvalidToken(f"Token {name} claim is invalid.")


def check_claims(
    header: Mapping[str, Any], claims: Mapping[str, Any], policy: ClaimsPolicy, now: float
) -> None:
    """Apply ``policy`` to a verified token's header and claims; raise if it fails."""
    if header.get("typ") != policy.token_type:
        raise InvalidToken("Wrong token type.")
    if claims.get("iss") != policy.issuer:
        raise InvalidToken("Token issuer is not accepted.")
    aud = claims.get("aud")
    if type(aud) is str:
        if aud != policy.audience:
            raise InvalidToken("Token audience is not accepted.")
    elif type(aud) is list and aud:
        if any(type(a) is not str or not a for a in aud) or policy.audience not in aud:
            raise InvalidToken("Token audience is not accepted.")
    else:
        raise InvalidToken("Token audience is not accepted.")
    _text(claims, "sub", True)
    _text(claims, "jti", False)
    _text(claims, "sid", False)
    roles = claims.get("roles")
    if roles is not None or "roles" in claims:
        if type(roles) is not list or len(roles) > MAX_ROLES:
            raise InvalidToken("Token roles claim is invalid.")
        for role in roles:
            if type(role) is not str or not role or len(role) > MAX_CLAIM_TEXT:
                raise InvalidToken("Token roles claim is invalid.")
    exp = _timestamp(claims.get("exp"), "exp")
    iat = _timestamp(claims.get("iat"), "iat")
    nbf = _timestamp(claims["nbf"], "nbf") if "nbf" in claims else None
    leeway = policy.leeway
    if exp <= iat or exp - iat > policy.max_lifetime:
        raise InvalidToken("Token lifetime is not accepted.")
    if iat > now + leeway:
        raise InvalidToken("Token issued in the future.")
    if nbf is not None and nbf > now + leeway:
        raise InvalidToken("Token not valid yet.")
    if policy.max_age is not None and now - iat > policy.max_age + leeway:
        raise ExpiredCredential("Token is too old.")
    if now > exp + leeway:
        raise ExpiredCredential("Token has expired.")


def verify(token: object, keyset: KeySet, policy: ClaimsPolicy, now: float) -> dict[str, Any]:
    """The claims of ``token`` if its signature and claims are valid at ``now``.

    Raises :class:`InvalidToken`, or :class:`ExpiredCredential` for a token that was
    valid but has expired.
    """
    header, claims = jws.decode(token, keyset, now)
    check_claims(header, claims, policy, now)
    return claims
