"""Interoperability with PyJWT in both directions, and PyJWT reading our JWKS."""

from __future__ import annotations

import time
from typing import Any

import jwt as pyjwt
import pytest

from satchel.errors import InvalidToken
from satchel.jose import claims as jwt
from satchel.jose.claims import ACCESS_TOKEN_TYPE, ClaimsPolicy
from satchel.jose.jwk import Ed25519Key, ES256Key, HS256Key, RS256Key, SigningKey
from satchel.jose.keyset import KeySet

NOW = 1_800_000_000
POLICY = ClaimsPolicy(issuer="https://auth.example", audience="api", max_lifetime=3600)
ALGS = ["EdDSA", "ES256", "RS256", "HS256"]


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {
        "EdDSA": Ed25519Key.generate("ed"),
        "ES256": ES256Key.generate("es"),
        "RS256": RS256Key.generate("rs", bits=2048),
        "HS256": HS256Key.generate("hs"),
    }


def pyjwt_verifier(key: SigningKey) -> Any:
    return key._secret if isinstance(key, HS256Key) else key._public  # type: ignore[attr-defined]


def pyjwt_signer(key: SigningKey) -> Any:
    return key._secret if isinstance(key, HS256Key) else key._private  # type: ignore[attr-defined]


def claims() -> dict[str, Any]:
    return {
        "iss": POLICY.issuer,
        "aud": POLICY.audience,
        "sub": "user-1",
        "iat": NOW,
        "exp": NOW + 600,
        "jti": "j-1",
        "sid": "s-1",
        "roles": ["admin", "user"],
    }


@pytest.mark.parametrize("alg", ALGS)
# PyJWT reads the wall clock, so tokens for it are issued at the real current time.
def test_pyjwt_verifies_our_tokens(alg: str, keys: dict[str, SigningKey]) -> None:
    key = keys[alg]
    token = jwt.issue(
        KeySet(key), POLICY, sub="user-1", now=time.time(), ttl=600, roles=["user"], sid="s-1"
    )
    decoded = pyjwt.decode(
        token,
        pyjwt_verifier(key),
        algorithms=[alg],
        audience="api",
        issuer=POLICY.issuer,
        options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
    )
    assert decoded["sub"] == "user-1" and decoded["sid"] == "s-1" and decoded["roles"] == ["user"]
    header = pyjwt.get_unverified_header(token)
    assert header == {"alg": alg, "kid": key.kid, "typ": ACCESS_TOKEN_TYPE}


@pytest.mark.parametrize("alg", ALGS)
def test_we_verify_pyjwt_tokens_in_our_profile(alg: str, keys: dict[str, SigningKey]) -> None:
    key = keys[alg]
    token = pyjwt.encode(
        claims(),
        pyjwt_signer(key),
        algorithm=alg,
        headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
    )
    assert jwt.verify(token, KeySet(key), POLICY, NOW + 10) == claims()


@pytest.mark.parametrize("alg", ALGS)
def test_pyjwt_tokens_outside_our_profile_are_refused(
    alg: str, keys: dict[str, SigningKey]
) -> None:
    key = keys[alg]
    keyset = KeySet(key)
    signer = pyjwt_signer(key)
    outside = [
        pyjwt.encode(claims(), signer, algorithm=alg, headers={"kid": key.kid}),  # typ "JWT"
        pyjwt.encode(claims(), signer, algorithm=alg, headers={"typ": ACCESS_TOKEN_TYPE}),  # no kid
        pyjwt.encode(
            {**claims(), "exp": NOW - 60},
            signer,
            algorithm=alg,
            headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
        ),
        pyjwt.encode(
            {**claims(), "aud": "other"},
            signer,
            algorithm=alg,
            headers={"kid": key.kid, "typ": ACCESS_TOKEN_TYPE},
        ),
    ]
    for token in outside:
        with pytest.raises(InvalidToken):
            jwt.verify(token, keyset, POLICY, NOW + 10)


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_pyjwt_reads_our_jwks(alg: str, keys: dict[str, SigningKey]) -> None:
    key = keys[alg]
    keyset = KeySet(key)
    jwk_set = pyjwt.PyJWKSet.from_dict(keyset.jwks())
    signing_key = jwk_set[key.kid]
    assert signing_key.algorithm_name == alg
    token = jwt.issue(keyset, POLICY, sub="user-1", now=time.time(), ttl=600)
    decoded = pyjwt.decode(token, signing_key.key, algorithms=[alg], audience="api")
    assert decoded["sub"] == "user-1"
