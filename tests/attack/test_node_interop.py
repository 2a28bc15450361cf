"""Interop with Node's ``jsonwebtoken`` (the library the seed's examples use), both ways.

tests/node/ holds package.json, its lockfile and interop.js; the test installs the locked
dependencies with ``npm ci`` into a temporary directory once per session. Without node/npm
the tests are skipped loudly (and fail when CI=true).

Deviation: jsonwebtoken 9 does not implement EdDSA (its algorithm list is HS*, RS*, PS*,
ES*), so satchel's default EdDSA tokens cannot be checked by it; EdDSA interop is covered by
PyJWT in tests/test_jws.py. HS256, ES256 and RS256 are exercised here.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from satchel.errors import SatchelError
from satchel.jose import claims as claims_mod
from satchel.jose.jwk import ES256Key, HS256Key, RS256Key, SigningKey
from satchel.jose.keyset import KeySet

NODE_DIR = Path(__file__).resolve().parents[1] / "node"
ISSUER = "https://auth.example"
AUDIENCE = "api.example"
POLICY = claims_mod.ClaimsPolicy(issuer=ISSUER, audience=AUDIENCE, leeway=30)


def _missing(reason: str) -> None:
    message = f"NODE INTEROP NOT RUN: {reason}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def node_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        _missing("node and npm are not installed")
    target = tmp_path_factory.mktemp("node-interop")
    for name in ("package.json", "package-lock.json", "interop.js"):
        shutil.copy(NODE_DIR / name, target / name)
    result = subprocess.run(
        [str(npm), "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=target,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        _missing(f"npm ci failed: {result.stderr.strip()[-300:]}")
    return target


def run_node(node_dir: Path, request: dict[str, Any]) -> dict[str, Any]:
    result = subprocess.run(
        ["node", "interop.js"],
        cwd=node_dir,
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


def private_pem(key: SigningKey) -> str:
    private: Any = key._private  # type: ignore[attr-defined]
    return str(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
    )


def public_pem(key: SigningKey) -> str:
    public: Any = key._public  # type: ignore[attr-defined]
    return str(
        public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()
    )


def node_keys(key: SigningKey) -> tuple[Any, Any]:
    """(signing key, verification key) as interop.js takes them."""
    if isinstance(key, HS256Key):
        secret = {"secret_b64": base64.b64encode(key._secret).decode()}
        return secret, secret
    return private_pem(key), public_pem(key)


KEYS = {
    "HS256": lambda: HS256Key.generate(kid="hs"),
    "ES256": lambda: ES256Key.generate(kid="es"),
    "RS256": lambda: RS256Key.generate(kid="rs", bits=2048),
}


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_satchel_tokens_verify_in_jsonwebtoken(node_dir: Path, alg: str) -> None:
    key = KEYS[alg]()
    import time

    now = time.time()
    token = claims_mod.issue(
        KeySet(key), POLICY, sub="user-1", now=now, ttl=300, roles=["admin"], sid="s1"
    )
    _, verify_key = node_keys(key)
    answer = run_node(
        node_dir,
        {
            "op": "verify",
            "token": token,
            "key": verify_key,
            "alg": alg,
            "issuer": ISSUER,
            "audience": AUDIENCE,
        },
    )
    assert answer["ok"], answer
    assert answer["header"] == {"alg": alg, "kid": key.kid, "typ": "at+jwt"}
    assert answer["payload"]["sub"] == "user-1" and answer["payload"]["roles"] == ["admin"]
    # And a tampered one is refused there too (the check can fail).
    h, p, s = token.split(".")
    bad = run_node(
        node_dir,
        {
            "op": "verify",
            "token": f"{h}.{p}.{s[:-4]}AAAA",
            "key": verify_key,
            "alg": alg,
            "issuer": ISSUER,
            "audience": AUDIENCE,
        },
    )
    assert not bad["ok"]


@pytest.mark.parametrize("alg", sorted(KEYS))
def test_jsonwebtoken_tokens_verify_in_satchel(node_dir: Path, alg: str) -> None:
    import time

    key = KEYS[alg]()
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-2",
        "iat": now,
        "exp": now + 300,
        "jti": "j1",
        "sid": "s2",
        "roles": ["reader"],
    }
    sign_key, _ = node_keys(key)
    answer = run_node(
        node_dir,
        {
            "op": "sign",
            "claims": claims,
            "key": sign_key,
            "alg": alg,
            "kid": key.kid,
            "typ": "at+jwt",
        },
    )
    assert answer["ok"], answer
    verified = claims_mod.verify(answer["token"], KeySet(key), POLICY, time.time())
    assert verified["sub"] == "user-2" and verified["roles"] == ["reader"]
    # Signed with another key of the same kind under our kid: refused.
    other_sign, _ = node_keys(KEYS[alg]())
    forged = run_node(
        node_dir,
        {
            "op": "sign",
            "claims": claims,
            "key": other_sign,
            "alg": alg,
            "kid": key.kid,
            "typ": "at+jwt",
        },
    )
    with pytest.raises(SatchelError):
        claims_mod.verify(forged["token"], KeySet(key), POLICY, time.time())


def test_jsonwebtoken_cannot_downgrade_to_hs256_with_our_public_key(node_dir: Path) -> None:
    import time

    key = ES256Key.generate(kid="es")
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "x", "iat": now, "exp": now + 60}
    secret = {"secret_b64": base64.b64encode(public_pem(key).encode()).decode()}
    answer = run_node(
        node_dir,
        {
            "op": "sign",
            "claims": claims,
            "key": secret,
            "alg": "HS256",
            "kid": "es",
            "typ": "at+jwt",
        },
    )
    assert answer["ok"], answer
    with pytest.raises(SatchelError):
        claims_mod.verify(answer["token"], KeySet(key), POLICY, time.time())
