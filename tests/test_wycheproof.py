"""Wycheproof conformance (Apache-2.0 vectors in ../shared/vectors/wycheproof/ beside the repo).

Every JWS case whose algorithm satchel supports (EdDSA, ES256, RS256, HS256) runs through the
strict decoder with a key set built from the vector's JWK; the primitive vectors run through
the key classes' ``verify``. Where our stricter profile disagrees with a label, the case is
listed in ``JWS_DEVIATIONS`` with the reason, and the test checks that exactly those cases
deviate.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from satchel.errors import ConfigurationError, InvalidToken
from satchel.jose import jws
from satchel.jose.jwk import MIN_HMAC_SECRET, Ed25519Key, ES256Key, HS256Key, key_from_jwk
from satchel.jose.keyset import KeySet

# The vectors live in the project's shared folder, beside the repository's root.
_BESIDE_REPO = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "wycheproof"
VECTORS = Path(os.environ.get("SATCHEL_WYCHEPROOF_DIR", _BESIDE_REPO))
SUPPORTED = {"EdDSA", "ES256", "RS256", "HS256"}
# Key type (and curve) -> algorithm, for JWKs that carry no "alg".
INFERRED_ALG = {
    ("OKP", "Ed25519"): "EdDSA",
    ("EC", "P-256"): "ES256",
    ("RSA", None): "RS256",
    ("oct", None): "HS256",
}

#: tcId -> (our outcome, reason). Everything else must match the vector's label.
JWS_DEVIATIONS: dict[int, tuple[str, str]] = {
    259: ("reject", "empty payload segment: our profile requires three non-empty segments"),
    367: (
        "accept",
        "labelled invalidBase64Padding, but the published token is byte-identical "
        "to the valid tcId 357 (its padding was lost), so accepting it is correct",
    ),
    370: (
        "accept",
        "labelled invalidBase64PaddingInPayload, but byte-identical to the valid "
        "tcId 357 as published",
    ),
    372: (
        "reject",
        "labelled valid although '?' is inserted in the header: the strict "
        "[A-Za-z0-9_-] alphabet refuses it instead of skipping the character",
    ),
    373: ("reject", "labelled valid although '?' is inserted in the payload: strict alphabet"),
}


def load(name: str) -> dict[str, Any]:
    path = VECTORS / name
    if not path.exists():
        pytest.fail(f"Wycheproof vectors missing at {path}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def jws_cases() -> list[tuple[int, str, dict[str, Any], Any, bool]]:
    cases = []
    for group in load("json_web_signature_test.json")["testGroups"]:
        jwk = group.get("public") or group.get("private")
        alg = jwk.get("alg") or INFERRED_ALG.get((jwk.get("kty"), jwk.get("crv")))
        if alg not in SUPPORTED:
            continue
        for case in group["tests"]:
            cases.append((case["tcId"], alg, jwk, case["jws"], case["result"] == "valid"))
    return cases


JWS_CASES = jws_cases()


def test_jws_vector_coverage() -> None:
    algs = {alg for _, alg, *_ in JWS_CASES}
    # The JWS file has no EdDSA group; Ed25519 is covered by ed25519_test.json below.
    assert algs == SUPPORTED - {"EdDSA"}
    assert len(JWS_CASES) > 250  # the RS256, ES256 special-value and base64 groups are in
    ids = {tc for tc, *_ in JWS_CASES}
    assert set(JWS_DEVIATIONS) <= ids


def _outcome(jwk: dict[str, Any], token: Any) -> bool:
    try:
        keyset = KeySet.verify_only([key_from_jwk(jwk, kid=jwk.get("kid") or "none")])
    except ConfigurationError:
        return False  # e.g. a key marked use=enc is refused outright
    try:
        jws.decode_raw(token, keyset, 0.0)
    except InvalidToken:
        return False
    return True


@pytest.mark.parametrize(
    ("tc_id", "alg", "jwk", "token", "valid"),
    JWS_CASES,
    ids=[f"tc{c[0]}-{c[1]}" for c in JWS_CASES],
)
def test_json_web_signature(
    tc_id: int, alg: str, jwk: dict[str, Any], token: Any, valid: bool
) -> None:
    accepted = _outcome(jwk, token)
    if tc_id in JWS_DEVIATIONS:
        expected, reason = JWS_DEVIATIONS[tc_id]
        assert accepted == (expected == "accept"), reason
        assert accepted != valid, f"tc{tc_id} no longer deviates; drop it from JWS_DEVIATIONS"
    else:
        assert accepted == valid


def test_padding_deviations_are_byte_identical_to_a_valid_case() -> None:
    tokens = {tc: token for tc, _, _, token, _ in JWS_CASES}
    assert tokens[367] == tokens[357] and tokens[370] == tokens[357]


# --- primitive vectors through the key classes ---------------------------------------------


def primitive_cases(name: str) -> list[tuple[int, dict[str, Any], dict[str, Any]]]:
    return [
        (case["tcId"], group, case) for group in load(name)["testGroups"] for case in group["tests"]
    ]


ED25519 = primitive_cases("ed25519_test.json")
ECDSA = primitive_cases("ecdsa_secp256r1_sha256_p1363_test.json")
HMAC = [c for c in primitive_cases("hmac_sha256_test.json") if c[1]["tagSize"] == 256]


@pytest.mark.parametrize(("tc_id", "group", "case"), ED25519, ids=[f"tc{c[0]}" for c in ED25519])
def test_ed25519(tc_id: int, group: dict[str, Any], case: dict[str, Any]) -> None:
    public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(group["publicKey"]["pk"]))
    key = Ed25519Key("wycheproof", public=public)
    ok = key.verify(bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"]))
    assert ok == (case["result"] == "valid"), case["comment"]


@pytest.mark.parametrize(("tc_id", "group", "case"), ECDSA, ids=[f"tc{c[0]}" for c in ECDSA])
def test_ecdsa_p256_p1363(tc_id: int, group: dict[str, Any], case: dict[str, Any]) -> None:
    public = serialization.load_der_public_key(bytes.fromhex(group["publicKeyDer"]))
    assert isinstance(public, ec.EllipticCurvePublicKey)
    key = ES256Key("wycheproof", public=public)
    ok = key.verify(bytes.fromhex(case["msg"]), bytes.fromhex(case["sig"]))
    # "acceptable" cases do not occur in this file; valid must verify, invalid must not.
    assert case["result"] in ("valid", "invalid")
    assert ok == (case["result"] == "valid"), case["comment"]


@pytest.mark.parametrize(("tc_id", "group", "case"), HMAC, ids=[f"tc{c[0]}" for c in HMAC])
def test_hmac_sha256(tc_id: int, group: dict[str, Any], case: dict[str, Any]) -> None:
    secret = bytes.fromhex(case["key"])
    if len(secret) < MIN_HMAC_SECRET:
        # Below 256-bit keys satchel refuses the key itself (J24) rather than verifying.
        with pytest.raises(ConfigurationError):
            HS256Key("wycheproof", secret)
        return
    key = HS256Key("wycheproof", secret)
    ok = key.verify(bytes.fromhex(case["msg"]), bytes.fromhex(case["tag"]))
    assert ok == (case["result"] == "valid"), case["comment"]


def test_primitive_vector_coverage() -> None:
    assert len(ED25519) > 100 and len(ECDSA) > 200
    long_keys = [c for c in HMAC if len(c[2]["key"]) // 2 >= MIN_HMAC_SECRET]
    assert len(long_keys) > 50
