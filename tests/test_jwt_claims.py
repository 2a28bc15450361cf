"""JWT claim rules: time windows, types, issuer, audience and token type (J09-J14, J24, J25)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import pytest

from satchel.errors import ConfigurationError, ExpiredCredential, InvalidToken
from satchel.jose import claims as jwt
from satchel.jose.claims import ACCESS_TOKEN_TYPE, REFRESH_TOKEN_TYPE, ClaimsPolicy
from satchel.jose.jwk import Ed25519Key, HS256Key, SigningKey
from satchel.jose.keyset import KeySet

NOW = 1_800_000_000
LEEWAY = 30
POLICY = ClaimsPolicy(
    issuer="https://auth.example", audience="api", leeway=LEEWAY, max_lifetime=3600
)
KEY = Ed25519Key.generate("k1")
KEYSET = KeySet(KEY)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token_with(
    claims: dict[str, Any],
    *,
    typ: Any = ACCESS_TOKEN_TYPE,
    key: SigningKey = KEY,
    raw: bytes | None = None,
) -> str:
    """A validly signed token carrying exactly ``claims`` (or the raw payload bytes)."""
    header: dict[str, Any] = {"alg": key.alg, "kid": key.kid}
    if typ is not None:
        header["typ"] = typ
    body = raw if raw is not None else json.dumps(claims).encode()
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(body)}"
    return f"{signing_input}.{b64(key.sign(signing_input.encode()))}"


def base_claims(**changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "iss": "https://auth.example",
        "aud": "api",
        "sub": "user-1",
        "iat": NOW - 60,
        "exp": NOW + 600,
        "jti": "j1",
        "sid": "s1",
        "roles": ["user"],
    }
    for name, value in changes.items():
        if value is _DROP:
            claims.pop(name)
        else:
            claims[name] = value
    return claims


_DROP = object()


def accepts(
    claims: dict[str, Any], now: float = NOW, policy: ClaimsPolicy = POLICY
) -> dict[str, Any]:
    return jwt.verify(token_with(claims), KEYSET, policy, now)


def refuses(
    claims: dict[str, Any],
    now: float = NOW,
    policy: ClaimsPolicy = POLICY,
    error: type[Exception] = InvalidToken,
) -> None:
    with pytest.raises(error):
        jwt.verify(token_with(claims), KEYSET, policy, now)


def test_issue_and_verify_roundtrip() -> None:
    token = jwt.issue(
        KEYSET,
        POLICY,
        sub="u1",
        now=NOW + 0.7,
        ttl=900,
        roles=["b", "a", "a"],
        sid="s",
        extra={"preferred_username": "alice"},
    )
    claims = jwt.verify(token, KEYSET, POLICY, NOW + 1)
    assert claims["sub"] == "u1" and claims["sid"] == "s" and claims["roles"] == ["a", "b"]
    assert claims["iat"] == NOW and claims["exp"] == NOW + 900
    assert claims["iss"] == POLICY.issuer and claims["aud"] == POLICY.audience
    assert isinstance(claims["jti"], str) and len(claims["jti"]) >= 22
    other = jwt.issue(KEYSET, POLICY, sub="u1", now=NOW, ttl=900)
    assert jwt.verify(other, KEYSET, POLICY, NOW)["jti"] != claims["jti"]


def test_issue_refuses_bad_arguments() -> None:
    with pytest.raises(ConfigurationError):
        jwt.issue(KEYSET, POLICY, sub="", now=NOW, ttl=60)
    with pytest.raises(ConfigurationError):
        jwt.issue(KEYSET, POLICY, sub="u", now=NOW, ttl=3601)
    with pytest.raises(ConfigurationError):
        jwt.issue(KEYSET, POLICY, sub="u", now=NOW, ttl=0)
    with pytest.raises(ConfigurationError):
        jwt.issue(KEYSET, POLICY, sub="u", now=NOW, ttl=60, extra={"exp": NOW + 10**6})


@pytest.mark.parametrize(
    "kwargs",
    [
        {"issuer": ""},
        {"audience": ""},
        {"token_type": ""},
        {"leeway": -1},
        {"leeway": 301},
        {"max_lifetime": 0},
        {"max_age": 0},
    ],
)
def test_policy_validation(kwargs: dict[str, Any]) -> None:
    values: dict[str, Any] = {"issuer": "i", "audience": "a", **kwargs}
    with pytest.raises(ConfigurationError):
        ClaimsPolicy(**values)


# --- J09 / J10 ----------------------------------------------------------------------------


def test_J09_exp_edges() -> None:
    accepts(base_claims(exp=NOW - LEEWAY + 1))
    accepts(base_claims(exp=NOW - LEEWAY))
    refuses(base_claims(exp=NOW - LEEWAY - 1), error=ExpiredCredential)
    refuses(base_claims(exp=_DROP))
    refuses(base_claims(exp=None))


def test_J09_lifetime_bound() -> None:
    accepts(base_claims(iat=NOW - 100, exp=NOW - 100 + 3600))
    refuses(base_claims(iat=NOW - 100, exp=NOW - 100 + 3601))
    refuses(base_claims(iat=NOW, exp=NOW))  # exp must follow iat
    refuses(base_claims(iat=NOW, exp=NOW - 1))
    refuses(base_claims(iat=_DROP))  # without iat the lifetime cannot be bounded


def test_J10_nbf_and_iat_in_the_future() -> None:
    accepts(base_claims(nbf=NOW + LEEWAY))
    refuses(base_claims(nbf=NOW + LEEWAY + 1))
    refuses(base_claims(nbf="soon"))
    # Documented policy: iat later than now + leeway is refused, within leeway accepted.
    accepts(base_claims(iat=NOW + LEEWAY, exp=NOW + 600))
    refuses(base_claims(iat=NOW + LEEWAY + 1, exp=NOW + 600))


def test_J10_max_age() -> None:
    policy = ClaimsPolicy(
        issuer="https://auth.example", audience="api", leeway=LEEWAY, max_lifetime=3600, max_age=300
    )
    accepts(base_claims(iat=NOW - 300 - LEEWAY), policy=policy)
    refuses(base_claims(iat=NOW - 300 - LEEWAY - 1), policy=policy, error=ExpiredCredential)


# --- J11 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [str(NOW + 600), True, False, None, [NOW + 600], {"t": 1}, -1, 10**15, 1e300],
    ids=["string", "true", "false", "null", "list", "object", "negative", "huge", "float-huge"],
)
@pytest.mark.parametrize("claim", ["exp", "iat", "nbf"])
def test_J11_timestamp_types(claim: str, value: Any) -> None:
    refuses(base_claims(**{claim: value}))


@pytest.mark.parametrize(
    "literal",
    [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"9" * 5000, b"true"],
)
def test_J11_non_finite_or_huge_literals(literal: bytes) -> None:
    body = json.dumps(base_claims(exp=0)).encode().replace(b'"exp": 0', b'"exp": ' + literal)
    assert literal in body
    with pytest.raises(InvalidToken):
        jwt.verify(token_with({}, raw=body), KEYSET, POLICY, NOW)


def test_J11_float_timestamps_are_numbers() -> None:
    accepts(base_claims(exp=NOW + 0.5, iat=NOW - 0.5))


@pytest.mark.parametrize(
    "changes",
    [
        {"sub": _DROP},
        {"sub": ""},
        {"sub": 1},
        {"sub": ["a"]},
        {"sub": "x" * 257},
        {"jti": 1},
        {"sid": 1},
        {"sid": ""},
        {"roles": "admin"},
        {"roles": [1]},
        {"roles": [""]},
        {"roles": ["r"] * 65},
        {"roles": None},
    ],
)
def test_other_claim_types(changes: dict[str, Any]) -> None:
    refuses(base_claims(**changes))


# --- J12 / J13 / J14 ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "iss",
    [
        "https://auth.example/",
        "https://auth.exampl",
        "https://auth.example.evil",
        "http://auth.example",
        "HTTPS://AUTH.EXAMPLE",
        " https://auth.example",
        "",
        None,
        ["https://auth.example"],
        1,
        _DROP,
    ],
)
def test_J12_issuer_exact_match(iss: Any) -> None:
    refuses(base_claims(iss=iss))


@pytest.mark.parametrize(
    "aud",
    [
        _DROP,
        "",
        "other",
        ["other"],
        [1],
        [],
        ["api", 1],
        ["api", ""],
        "API",
        "api ",
        None,
        {"a": "api"},
    ],
)
def test_J13_audience_rejected(aud: Any) -> None:
    refuses(base_claims(aud=aud))


def test_J13_audience_list_containing_ours() -> None:
    assert accepts(base_claims(aud=["other", "api"]))["aud"] == ["other", "api"]
    accepts(base_claims(aud=["api"]))


def test_J14_token_type_confusion() -> None:
    refresh_policy = ClaimsPolicy(
        issuer="https://auth.example",
        audience="api",
        token_type=REFRESH_TOKEN_TYPE,
        max_lifetime=86_400,
    )
    access = jwt.issue(KEYSET, POLICY, sub="u", now=NOW, ttl=60)
    refresh = jwt.issue(KEYSET, refresh_policy, sub="u", now=NOW, ttl=3600)
    assert jwt.verify(access, KEYSET, POLICY, NOW)
    assert jwt.verify(refresh, KEYSET, refresh_policy, NOW)
    with pytest.raises(InvalidToken):
        jwt.verify(refresh, KEYSET, POLICY, NOW)
    with pytest.raises(InvalidToken):
        jwt.verify(access, KEYSET, refresh_policy, NOW)
    for typ in (None, "JWT", "AT+JWT", "application/at+jwt ", "at+jwt\x00", 1, ["at+jwt"]):
        with pytest.raises(InvalidToken):
            jwt.verify(token_with(base_claims(), typ=typ), KEYSET, POLICY, NOW)


# --- J24 / J25 ----------------------------------------------------------------------------


@pytest.mark.parametrize("secret", [b"secret", b"12345", b"", b"password", b"your-256-bit-secret"])
def test_J24_tokens_macd_with_weak_secrets_rejected(secret: bytes) -> None:
    hs_keyset = KeySet(HS256Key.generate("hs"))
    header = {"alg": "HS256", "kid": "hs", "typ": ACCESS_TOKEN_TYPE}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(base_claims()).encode())}"
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidToken):
        jwt.verify(f"{signing_input}.{b64(mac)}", hs_keyset, POLICY, NOW)


def test_J25_key_of_another_issuer_or_environment() -> None:
    staging_key = Ed25519Key.generate("k1")  # same kid, different key
    staging = KeySet(staging_key)
    token = jwt.issue(staging, POLICY, sub="u", now=NOW, ttl=60)
    assert jwt.verify(token, staging, POLICY, NOW)
    with pytest.raises(InvalidToken):
        jwt.verify(token, KEYSET, POLICY, NOW)
    other_issuer = ClaimsPolicy(issuer="https://other.example", audience="api")
    foreign = jwt.issue(KEYSET, other_issuer, sub="u", now=NOW, ttl=60)
    with pytest.raises(InvalidToken):
        jwt.verify(foreign, KEYSET, POLICY, NOW)


def test_J25_previous_key_overlap_at_claims_layer() -> None:
    old, new = Ed25519Key.generate("old"), Ed25519Key.generate("new")
    token = jwt.issue(KeySet(old), POLICY, sub="u", now=NOW, ttl=600)
    rotated = KeySet(new, [(old, NOW + 100)])
    assert jwt.verify(token, rotated, POLICY, NOW + 100)["sub"] == "u"
    with pytest.raises(InvalidToken):
        jwt.verify(token, rotated, POLICY, NOW + 101)
    with pytest.raises(InvalidToken):
        jwt.verify(token, KeySet(new), POLICY, NOW)
