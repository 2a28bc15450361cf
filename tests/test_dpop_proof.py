"""The pure DPoP pieces: RFC 7638 thumbprints, htu normalisation, proof checks against
joserfc-made proofs, stateless nonces, and which scheme a binding allows."""

from __future__ import annotations

import time

import pytest

from dpop_client import DPoPKey
from satchel.dpop.binding import scheme_refusal
from satchel.dpop.nonce import NonceKey
from satchel.dpop.proof import DPoPProofError, access_token_hash, normalize_htu, verify_proof
from satchel.errors import ConfigurationError
from satchel.jose.jwk import thumbprint

URL = "https://api.example.com/resource"


def test_thumbprint_matches_the_rfc_7638_example() -> None:
    # RFC 7638 §3.1.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tS"
        "oc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65Y"
        "GjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrd"
        "kt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKn"
        "qDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
def test_thumbprint_agrees_with_joserfc(alg: str) -> None:
    key = DPoPKey(alg)
    assert thumbprint({**key.public_jwk, "kid": "ignored", "use": "sig"}) == key.jkt


def test_thumbprint_refuses_unknown_key_types() -> None:
    with pytest.raises(ConfigurationError):
        thumbprint({"kty": "oct", "k": "AAAA"})
    with pytest.raises(ConfigurationError):
        thumbprint({"kty": "EC", "crv": "P-256", "x": "AAAA"})


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("https://API.Example.COM/resource", URL),
        ("https://api.example.com:443/resource?x=1#frag", URL),
        ("http://api.example.com:80", "http://api.example.com/"),
        ("http://api.example.com:8080/a", "http://api.example.com:8080/a"),
        ("https://api.example.com/%7euser/%2f", "https://api.example.com/~user/%2F"),
        ("https://[::1]:8443/x", "https://[::1]:8443/x"),
    ],
)
def test_htu_normalisation(url: str, normal: str) -> None:
    assert normalize_htu(url) == normal


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "/relative", "https://user:pw@example.com/", "https://:80/"]
)
def test_htu_must_be_an_absolute_http_url(url: str) -> None:
    with pytest.raises(ValueError):
        normalize_htu(url)


def test_a_valid_proof_gives_the_key_thumbprint() -> None:
    key, now = DPoPKey(), time.time()
    token = "an.access.token"
    proof = key.proof("GET", URL, now=now, access_token=token, jti="j1")
    checked = verify_proof(proof, method="GET", url=URL, now=now, access_token=token)
    assert (checked.jkt, checked.jti, checked.nonce) == (key.jkt, "j1", None)
    assert access_token_hash(token) == key.proof.__globals__["ath"](token)


def test_the_iat_window() -> None:
    key, now = DPoPKey(), float(int(time.time()))  # proofs carry whole seconds
    old = key.proof("GET", URL, now=now - 60)
    assert verify_proof(old, method="GET", url=URL, now=now).jkt == key.jkt
    with pytest.raises(DPoPProofError) as err:
        verify_proof(old, method="GET", url=URL, now=now + 1)
    assert err.value.reason == "iat"
    ahead = key.proof("GET", URL, now=now + 5)
    assert verify_proof(ahead, method="GET", url=URL, now=now).jkt == key.jkt
    with pytest.raises(DPoPProofError):
        verify_proof(ahead, method="GET", url=URL, now=now - 1)


def test_htm_is_case_sensitive() -> None:
    key, now = DPoPKey(), time.time()
    with pytest.raises(DPoPProofError) as err:
        verify_proof(key.proof("get", URL, now=now), method="GET", url=URL, now=now)
    assert err.value.reason == "htm"


def test_a_tampered_payload_breaks_the_signature() -> None:
    key, now = DPoPKey(), time.time()
    header, payload, signature = key.proof("GET", URL, now=now).split(".")
    other = key.proof("POST", URL, now=now).split(".")[1]
    with pytest.raises(DPoPProofError) as err:
        verify_proof(f"{header}.{other}.{signature}", method="POST", url=URL, now=now)
    assert err.value.reason == "signature"
    assert payload != other


def test_nonces() -> None:
    nonces = NonceKey(b"k" * 32, lifetime=300)
    nonce = nonces.issue(1000.0)
    assert nonces.valid(nonce, 1000.0) and nonces.valid(nonce, 1300.0)
    assert not nonces.valid(nonce, 1301.0)
    assert not nonces.valid(nonce, 998.0)  # issued "in the future"
    assert not NonceKey(b"x" * 32).valid(nonce, 1000.0)  # another key
    assert not nonces.valid(nonce[:-1] + ("A" if nonce[-1] != "A" else "B"), 1000.0)
    assert not nonces.valid("not base64!", 1000.0) and not nonces.valid(None, 1000.0)
    with pytest.raises(ConfigurationError):
        NonceKey(b"short")


def test_scheme_refusals() -> None:
    assert scheme_refusal(None, False, "allowed") is None
    assert scheme_refusal("jkt", True, "allowed") is None
    assert scheme_refusal("jkt", True, "required") is None
    reasons = {
        (("jkt", False, "allowed")): "bound_as_bearer",
        (("jkt", False, "off")): "bound_as_bearer",  # a binding outlives a change of mode
        ((None, False, "required")): "bearer_refused",
        ((None, True, "allowed")): "unbound_token",
        (("jkt", True, "off")): "disabled",
    }
    for (jkt, dpop, mode), reason in reasons.items():
        refusal = scheme_refusal(jkt, dpop, mode)  # type: ignore[arg-type]
        assert refusal is not None and refusal.reason == reason
        assert refusal.code == "invalid_token" and refusal.status == 401
