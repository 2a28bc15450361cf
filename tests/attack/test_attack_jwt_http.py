"""Signed-token attacks (J01-J25) against the HTTP API, on every strategy that verifies JWTs.

Each hostile token is sent as ``Authorization: Bearer`` to ``GET /auth/me``; the answer must
be a clean 401 (never a 500, never an identity). Every table has a positive control built by
the same forging helper, so a broken helper cannot make the rejections pass vacuously.
Token-level parsing (Wycheproof, PyJWT interop) is covered in tests/test_jws.py and friends.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

from satchel.errors import ConfigurationError
from satchel.jose import claims as claims_mod
from satchel.jose.jwk import P256_ORDER, ES256Key, HS256Key, SigningKey
from satchel.jose.keyset import KeySet

from .conftest import Server, ServerFactory, assert_clean_error

JWT_STRATEGIES = ["jwt", "hybrid"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def keyset_of(server: Server) -> KeySet:
    keys = server.auth.keys
    assert keys is not None
    return keys.keyset


def policy_of(server: Server) -> claims_mod.ClaimsPolicy:
    strategy: Any = server.auth.strategy
    # JWTStrategy.policy; the hybrid strategy keeps the access-token policy as .claims.
    policy = getattr(strategy, "claims", None)
    if not isinstance(policy, claims_mod.ClaimsPolicy):
        policy = getattr(strategy, "policy", None)
    if not isinstance(policy, claims_mod.ClaimsPolicy):
        pytest.skip("strategy exposes no ClaimsPolicy")
    return policy


def good_claims(server: Server, **changes: Any) -> dict[str, Any]:
    """The claims of a genuine token of this server (so every strategy's own claims are
    present), with ``changes`` applied; ``_DROP`` removes a claim."""
    real = getattr(server, "real_claims", None)
    if real is not None:
        claims = dict(real)
    else:
        claims = claims_mod.build_claims(
            policy_of(server),
            sub=server.users["alice"],
            now=server.clock(),
            ttl=300,
            roles=["admin"],
            sid="attacker-chosen-sid",
            extra={"preferred_username": "alice"},
        )
    for name, value in changes.items():
        if value is _DROP:
            claims.pop(name, None)
        else:
            claims[name] = value
    return claims


_DROP = object()


def forge(
    server: Server,
    *,
    header: dict[str, Any] | None = None,
    claims: dict[str, Any] | None = None,
    key: SigningKey | None = None,
    raw_header: bytes | None = None,
    raw_payload: bytes | None = None,
) -> str:
    """A compact JWS signed with ``key`` (default: the server's active key) over any header."""
    key = key or keyset_of(server).active
    hdr = {"alg": key.alg, "kid": key.kid, "typ": policy_of(server).token_type}
    hdr.update(header or {})
    h = b64(raw_header if raw_header is not None else dumps(hdr))
    p = b64(raw_payload if raw_payload is not None else dumps(claims or good_claims(server)))
    return f"{h}.{p}.{b64(key.sign(f'{h}.{p}'.encode()))}"


def mac(secret: bytes, text: str) -> str:
    m = hmac.HMAC(secret, hashes.SHA256())
    m.update(text.encode())
    return b64(m.finalize())


def hs256_with(server: Server, secret: bytes, **header: Any) -> str:
    hdr = {"alg": "HS256", "kid": keyset_of(server).active.kid, "typ": policy_of(server).token_type}
    hdr.update(header)
    signing_input = f"{b64(dumps(hdr))}.{b64(dumps(good_claims(server)))}"
    return f"{signing_input}.{mac(secret, signing_input)}"


async def me(server: Server, token: str) -> httpx.Response:
    return await server.client.get("/auth/me", headers={"authorization": f"Bearer {token}"})


async def assert_rejected(server: Server, token: str) -> None:
    response = await me(server, token)
    assert response.status_code < 500, response.text
    assert response.status_code == 401, (response.status_code, response.text[:200])
    assert "Traceback" not in response.text
    assert token[:40] not in response.text or len(token) < 40


@pytest.fixture(params=JWT_STRATEGIES)
async def jwt_server(request: pytest.FixtureRequest, make_server: ServerFactory) -> Server:
    server = await make_server(request.param)
    payload = (await server.bearer_token()).split(".")[1]
    server.real_claims = json.loads(base64.urlsafe_b64decode(payload + "=="))  # type: ignore[attr-defined]
    return server


async def test_forging_helper_positive_control(jwt_server: Server) -> None:
    response = await me(jwt_server, forge(jwt_server))
    assert response.status_code == 200, response.text
    assert response.json()["user_id"] == jwt_server.users["alice"]


# --- J01 / J02 / J05: alg and signature -------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE", ""])
@pytest.mark.parametrize("signature", ["", "copied"])
async def test_J01_alg_none_rejected(jwt_server: Server, alg: str, signature: str) -> None:
    good = forge(jwt_server)
    h = b64(dumps({"alg": alg, "kid": keyset_of(jwt_server).active.kid, "typ": "at+jwt"}))
    p = good.split(".")[1]
    sig = good.split(".")[2] if signature == "copied" else ""
    await assert_rejected(jwt_server, f"{h}.{p}.{sig}")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.rsplit(".", 1)[0] + ".",
        lambda t: t.rsplit(".", 1)[0],
        lambda t: t[:-10],
        lambda t: ".".join(t.split(".")[1:]),
    ],
    ids=["empty-sig", "missing-segment", "truncated", "no-header"],
)
async def test_J02_broken_signature_rejected(
    jwt_server: Server, mangle: Callable[[str], str]
) -> None:
    await assert_rejected(jwt_server, mangle(forge(jwt_server)))


async def test_J02_empty_bearer_rejected(jwt_server: Server) -> None:
    response = await jwt_server.client.get("/auth/me", headers={"authorization": "Bearer "})
    assert_clean_error(response, 401)


@pytest.mark.parametrize("alg", ["es256", "ES256 ", "ES256\u0000", 123, None, [], ["ES256"]])
async def test_J05_alg_spelling_rejected(jwt_server: Server, alg: Any) -> None:
    await assert_rejected(jwt_server, forge(jwt_server, header={"alg": alg}))


# --- J03 / J04 / J08: key confusion -------------------------------------------------------------


def public_encodings(key: SigningKey) -> dict[str, bytes]:
    jwk = key.public_jwk()
    assert jwk is not None
    public: Any = getattr(key, "_public", None) or getattr(key, "public_key", None)
    if callable(public):
        public = public()
    if public is None:  # fall back to rebuilding from the JWK
        x = int.from_bytes(base64.urlsafe_b64decode(jwk["x"] + "=="), "big")
        y = int.from_bytes(base64.urlsafe_b64decode(jwk["y"] + "=="), "big")
        public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "pem-spki": pem,
        "pem-crlf": pem.replace(b"\n", b"\r\n"),
        "pem-space": b"  " + pem + b"\n\n",
        "der": public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        ),
        "x962-point": public.public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        ),
        "openssh": public.public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        ),
        "jwk": dumps(jwk),
        "jwks": dumps({"keys": [jwk]}),
    }


async def test_J03_hs256_with_public_key_as_secret_rejected(jwt_server: Server) -> None:
    active = keyset_of(jwt_server).active
    if active.alg == "HS256":
        pytest.skip("an HS256 server has no public key")
    encodings = public_encodings(active)
    assert len(encodings) == 8
    for name, secret in encodings.items():
        response = await me(jwt_server, hs256_with(jwt_server, secret))
        assert response.status_code == 401, name


async def test_J04_wrong_key_family_rejected(jwt_server: Server) -> None:
    kid = keyset_of(jwt_server).active.kid
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    hdr = {"alg": "RS256", "kid": kid, "typ": "at+jwt"}
    signing_input = f"{b64(dumps(hdr))}.{b64(dumps(good_claims(jwt_server)))}"
    from cryptography.hazmat.primitives.asymmetric import padding

    sig = rsa_key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    await assert_rejected(jwt_server, f"{signing_input}.{b64(sig)}")
    # The right family with another key under our kid.
    other = ES256Key.generate(kid=kid)
    await assert_rejected(jwt_server, forge(jwt_server, key=other))


async def test_J08_embedded_attacker_key_rejected(jwt_server: Server) -> None:
    attacker = ES256Key.generate(kid="attacker")
    jwk = attacker.public_jwk()
    await assert_rejected(jwt_server, forge(jwt_server, key=attacker, header={"jwk": jwk}))
    await assert_rejected(jwt_server, forge(jwt_server, key=attacker, header={"x5c": ["MIIB"]}))
    # Even with our own kid, an embedded key is never the verification key.
    same_kid = ES256Key.generate(kid=keyset_of(jwt_server).active.kid)
    await assert_rejected(jwt_server, forge(jwt_server, key=same_kid, header={"jwk": jwk}))


# --- J06 / J07: kid and remote key URLs ----------------------------------------------------------


@pytest.mark.parametrize(
    "kid",
    ["../../dev/null", "/dev/null", "", "' OR 1=1 --", "|sleep 10", "k" * 10_240, 123, {}],
    ids=["traversal", "devnull", "empty", "sql", "shell", "10kb", "int", "object"],
)
async def test_J06_hostile_kid_rejected(jwt_server: Server, kid: Any) -> None:
    await assert_rejected(jwt_server, forge(jwt_server, header={"kid": kid}))


async def test_J06_unknown_kid_never_falls_back(jwt_server: Server) -> None:
    active = keyset_of(jwt_server).active
    assert isinstance(active, ES256Key)
    # Signed with the real key but naming another kid: no default-key fallback.
    hdr = {"alg": "ES256", "kid": "unknown-kid", "typ": "at+jwt"}
    signing_input = f"{b64(dumps(hdr))}.{b64(dumps(good_claims(jwt_server)))}"
    await assert_rejected(jwt_server, f"{signing_input}.{b64(active.sign(signing_input.encode()))}")
    no_kid = {"alg": "ES256", "typ": "at+jwt"}
    signing_input = f"{b64(dumps(no_kid))}.{b64(dumps(good_claims(jwt_server)))}"
    await assert_rejected(jwt_server, f"{signing_input}.{b64(active.sign(signing_input.encode()))}")


async def test_J07_jku_x5u_make_no_connection(
    jwt_server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError("outbound connection attempted")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    for header in (
        {"jku": "http://127.0.0.1:1/jwks.json"},
        {"x5u": "http://127.0.0.1:1/cert.pem"},
        {"jku": "http://127.0.0.1:1/jwks.json", "kid": "remote"},
    ):
        await assert_rejected(jwt_server, forge(jwt_server, header=header))
    assert attempts == []


# --- J09 - J14: claims ---------------------------------------------------------------------------


async def test_J09_expiry_boundaries(jwt_server: Server) -> None:
    policy = policy_of(jwt_server)
    now = int(jwt_server.clock())
    leeway = int(policy.leeway)
    iat = now - 600
    await assert_rejected(
        jwt_server, forge(jwt_server, claims=good_claims(jwt_server, iat=iat, exp=now - leeway - 1))
    )
    ok = await me(
        jwt_server, forge(jwt_server, claims=good_claims(jwt_server, iat=iat, exp=now - leeway + 1))
    )
    assert ok.status_code == 200, ok.text
    await assert_rejected(jwt_server, forge(jwt_server, claims=good_claims(jwt_server, exp=_DROP)))
    too_long = good_claims(jwt_server, iat=now, exp=now + int(policy.max_lifetime) + 10)
    await assert_rejected(jwt_server, forge(jwt_server, claims=too_long))


async def test_J10_nbf_and_future_iat(jwt_server: Server) -> None:
    policy = policy_of(jwt_server)
    now = int(jwt_server.clock())
    leeway = int(policy.leeway)
    await assert_rejected(
        jwt_server, forge(jwt_server, claims=good_claims(jwt_server, nbf=now + leeway + 5))
    )
    # Documented policy: an iat further in the future than the leeway is refused (a token
    # from a node whose clock is ahead beyond the allowed skew, or a forged one).
    future = good_claims(jwt_server, iat=now + leeway + 5, exp=now + leeway + 300)
    await assert_rejected(jwt_server, forge(jwt_server, claims=future))
    within = good_claims(jwt_server, iat=now + leeway - 5, exp=now + 300)
    assert (await me(jwt_server, forge(jwt_server, claims=within))).status_code == 200


@pytest.mark.parametrize(
    "payload",
    [
        b'"exp":"1900000000"',
        b'"exp":true',
        b'"exp":Infinity',
        b'"exp":NaN',
        b'"exp":-Infinity',
        b'"exp":' + b"9" * 5000,
        b'"exp":-1',
        b'"exp":null',
        b'"exp":[1900000000]',
        b'"exp":1e400',
    ],
)
async def test_J11_claim_types_rejected(jwt_server: Server, payload: bytes) -> None:
    claims = good_claims(jwt_server, exp=_DROP)
    body = dumps(claims)[:-1] + b"," + payload + b"}"
    await assert_rejected(jwt_server, forge(jwt_server, raw_payload=body))


@pytest.mark.parametrize(
    "iss", ["satchel ", "satche", "satchell", "xsatchel", "SATCHEL", ["satchel"], None, 1]
)
async def test_J12_issuer_exact_match_only(jwt_server: Server, iss: Any) -> None:
    await assert_rejected(jwt_server, forge(jwt_server, claims=good_claims(jwt_server, iss=iss)))


@pytest.mark.parametrize("aud", [_DROP, "", "other", ["other"], [1], [], None])
async def test_J13_audience_rejected(jwt_server: Server, aud: Any) -> None:
    await assert_rejected(jwt_server, forge(jwt_server, claims=good_claims(jwt_server, aud=aud)))


async def test_J13_audience_list_containing_ours_accepted(jwt_server: Server) -> None:
    claims = good_claims(jwt_server, aud=["other", policy_of(jwt_server).audience])
    assert (await me(jwt_server, forge(jwt_server, claims=claims))).status_code == 200


@pytest.mark.parametrize("typ", ["satchel-rt+jwt", "JWT", "jwt", "", None, 1, _DROP])
async def test_J14_token_type_confusion_rejected(jwt_server: Server, typ: Any) -> None:
    header = {"typ": typ}
    if typ is _DROP:
        good = forge(jwt_server)
        hdr = {"alg": "ES256", "kid": keyset_of(jwt_server).active.kid}
        signing_input = f"{b64(dumps(hdr))}.{good.split('.')[1]}"
        sig = keyset_of(jwt_server).active.sign(signing_input.encode())
        await assert_rejected(jwt_server, f"{signing_input}.{b64(sig)}")
        return
    await assert_rejected(jwt_server, forge(jwt_server, header=header))


async def test_J14_refresh_token_as_access_rejected(make_server: ServerFactory) -> None:
    server = await make_server("hybrid")
    async with server.fresh_client() as client:
        response = await client.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": "alice",
                "password": "correct horse battery",
            },
        )
    assert response.status_code == 200
    refresh = response.json().get("refresh_token")
    assert refresh, "hybrid issues a refresh token"
    await assert_rejected(server, refresh)


# --- J15 - J23: structure and encoding ----------------------------------------


@pytest.mark.parametrize("crit", [["exp"], [], ["unknown"], "b64", ["b64"], None, {}])
async def test_J15_crit_rejected(jwt_server: Server, crit: Any) -> None:
    await assert_rejected(jwt_server, forge(jwt_server, header={"crit": crit}))


async def test_J16_unencoded_payload_rejected(jwt_server: Server) -> None:
    await assert_rejected(jwt_server, forge(jwt_server, header={"b64": False, "crit": ["b64"]}))
    await assert_rejected(jwt_server, forge(jwt_server, header={"b64": False}))


async def test_J17_duplicate_members_rejected(jwt_server: Server) -> None:
    kid = keyset_of(jwt_server).active.kid
    dup_header = f'{{"alg":"ES256","kid":"{kid}","typ":"at+jwt","alg":"none"}}'.encode()
    await assert_rejected(jwt_server, forge(jwt_server, raw_header=dup_header))
    claims = dumps(good_claims(jwt_server))
    dup_payload = claims[:-1] + b',"sub":"admin"}'
    await assert_rejected(jwt_server, forge(jwt_server, raw_payload=dup_payload))


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: json.dumps({"payload": t.split(".")[1], "signatures": []}),
        lambda t: t + ".AAAA.BBBB",
        lambda t: t + ".AAAA",
        lambda t: t + ".",
        lambda t: t.replace(".", ". ", 1),
        lambda t: t[:10] + "=" + t[10:],
        lambda t: t[:10] + "+" + t[11:],
        lambda t: t[:10] + "/" + t[11:],
        lambda t: t[:10] + "?" + t[11:],
        lambda t: t[:10] + "\n" + t[10:],
    ],
    ids=[
        "json-serialization",
        "5-segments",
        "4-segments",
        "trailing-dot",
        "space",
        "pad",
        "plus",
        "slash",
        "question",
        "newline",
    ],
)
async def test_J18_serialisation_forms_rejected(
    jwt_server: Server, mangle: Callable[[str], str]
) -> None:
    token = mangle(forge(jwt_server))
    response = await jwt_server.client.get(
        "/auth/me", headers=[(b"authorization", b"Bearer " + token.encode())]
    )
    assert response.status_code == 401, response.text


async def test_J19_noncanonical_base64_rejected(jwt_server: Server) -> None:
    good = forge(jwt_server)
    h, p, s = good.split(".")
    await assert_rejected(jwt_server, f"{h}==.{p}.{s}")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # The 64-byte ES256 signature is 86 chars: the last one carries 2 unused bits.
    twin = alphabet[alphabet.index(s[-1]) ^ 1]
    assert base64.urlsafe_b64decode(s[:-1] + twin + "==") == base64.urlsafe_b64decode(s + "==")
    await assert_rejected(jwt_server, f"{h}.{p}.{s[:-1]}{twin}")


@pytest.mark.parametrize("case", ["zeros", "r0", "s0", "r1s1", "rn", "sn", "rn-1", "der", "65"])
async def test_J20_ecdsa_special_signatures_rejected(jwt_server: Server, case: str) -> None:
    good = forge(jwt_server)
    h, p, s = good.split(".")
    raw = base64.urlsafe_b64decode(s + "==")
    r, sv = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
    n = P256_ORDER
    values = {
        "zeros": (0, 0),
        "r0": (0, sv),
        "s0": (r, 0),
        "r1s1": (1, 1),
        "rn": (n, sv),
        "sn": (r, n),
        "rn-1": (n - 1, sv),
    }
    if case == "der":
        sig = encode_dss_signature(r, sv)
    elif case == "65":
        sig = raw + b"\x00"
    else:
        rr, ss = values[case]
        sig = rr.to_bytes(32, "big") + ss.to_bytes(32, "big")
    await assert_rejected(jwt_server, f"{h}.{p}.{b64(sig)}")


async def test_J21_revoked_token_twins_stay_rejected(jwt_server: Server) -> None:
    token = await jwt_server.bearer_token()
    assert (await me(jwt_server, token)).status_code == 200
    out = await jwt_server.client.post("/auth/logout", headers={"authorization": f"Bearer {token}"})
    assert out.status_code == 204
    await assert_rejected(jwt_server, token)
    h, p, s = token.split(".")
    raw = base64.urlsafe_b64decode(s + "==")
    if len(raw) == 64:
        r, sv = int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        high_s = r.to_bytes(32, "big") + (P256_ORDER - sv).to_bytes(32, "big")
        await assert_rejected(jwt_server, f"{h}.{p}.{b64(high_s)}")
    await assert_rejected(jwt_server, f"{h}.{p}.{s}=")


async def test_J22_huge_and_nested_tokens_rejected_fast(jwt_server: Server) -> None:
    huge = "A" * (1024 * 1024)
    await assert_rejected(jwt_server, f"{huge}.{huge}.{huge}"[: 1024 * 1024])
    await assert_rejected(jwt_server, "." * 1_000_000)
    nested = b'{"a":' * 100_000 + b"1" + b"}" * 100_000
    await assert_rejected(jwt_server, forge(jwt_server, raw_header=nested[:6000]))
    many = good_claims(jwt_server)
    many.update({f"c{i}": i for i in range(10_000)})
    await assert_rejected(jwt_server, forge(jwt_server, raw_payload=dumps(many)))
    deep_header = b'{"alg":"ES256","x":' + b"[" * 2000 + b"]" * 2000 + b"}"
    await assert_rejected(jwt_server, forge(jwt_server, raw_header=deep_header))


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig", "invalid"])
async def test_J23_header_encodings_rejected(jwt_server: Server, encoding: str) -> None:
    kid = keyset_of(jwt_server).active.kid
    text = json.dumps({"alg": "ES256", "kid": kid, "typ": "at+jwt"}, separators=(",", ":"))
    raw = (
        text.encode("utf-8")[:-1] + b',"x":"\xff\xfe"}'
        if encoding == "invalid"
        else text.encode(encoding)
    )
    await assert_rejected(jwt_server, forge(jwt_server, raw_header=raw))


# --- J24 / J25: keys ------------------------------------------------------------


def test_J24_weak_hmac_secret_is_a_configuration_error() -> None:
    for secret in (b"", b"secret", b"x" * 31):
        with pytest.raises(ConfigurationError):
            HS256Key("k1", secret)
    with pytest.raises(ConfigurationError):
        from satchel.jose.jwk import RS256Key

        small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
        RS256Key("k1", private=small)


async def test_J24_common_weak_secrets_rejected(make_server: ServerFactory) -> None:
    server = await make_server("jwt", jwt_alg="HS256")
    assert (await me(server, await server.bearer_token())).status_code == 200
    for secret in (b"secret", b"12345", b"password", b"", b"your-256-bit-secret", b"changeme"):
        await assert_rejected(server, hs256_with(server, secret))


async def test_J25_key_rotation_overlap(jwt_server: Server) -> None:
    keys = jwt_server.auth.keys
    assert keys is not None
    old_token = await jwt_server.bearer_token()
    old_kid = old_token.split(".")[0]
    await keys.rotate(overlap=600)
    # The new key is published first and signs only after the publish delay (F14).
    jwt_server.clock.advance(float(getattr(keys, "publish_delay", 0.0)) + 1)
    reload = getattr(jwt_server.auth.strategy, "reload_keys", None)
    if reload is not None:
        await reload()
    new_token = await jwt_server.bearer_token()
    assert new_token.split(".")[0] != old_kid  # another kid in the header
    assert (await me(jwt_server, new_token)).status_code == 200
    assert (await me(jwt_server, old_token)).status_code == 200  # inside the overlap
    jwt_server.clock.advance(601)
    await assert_rejected(jwt_server, old_token)  # overlap over (and expired anyway)
    assert (await me(jwt_server, await jwt_server.bearer_token())).status_code == 200


async def test_J25_key_from_another_deployment_rejected(
    jwt_server: Server, make_server: ServerFactory
) -> None:
    other = await make_server(jwt_server.strategy, issuer="other-env", audience="other-env")
    foreign = await other.bearer_token()
    await assert_rejected(jwt_server, foreign)
    # Even with our issuer and audience, another deployment's key is not ours.
    imposter = forge(jwt_server, key=keyset_of(other).active)
    await assert_rejected(jwt_server, imposter)


def test_J20_decode_dss_helper_is_consistent() -> None:
    # Guards the J20 table: DER <-> (r, s) round trip used above.
    assert decode_dss_signature(encode_dss_signature(5, 7)) == (5, 7)
