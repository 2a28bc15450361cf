"""DPoP (RFC 9449) end to end in process: token requests with proofs made by joserfc (an
independent JOSE library) get bound tokens, protected routes demand a matching proof, and
every way of breaking a proof is refused with the RFC's error code."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest

from apps import BASE, Apps, RunningApp
from dpop_client import DPoPKey, hs256_proof, none_proof
from satchel.audit import AuditEvent
from satchel.ops.metrics import Metrics

PASSWORD = "correct horse battery"
GRANT = {"grant_type": "password", "username": "alice", "password": PASSWORD}
TOKEN_URL = f"{BASE}/auth/token"
ME_URL = f"{BASE}/auth/me"
CHALLENGE_ALGS = 'algs="ES256 EdDSA"'


def claims_of(token: str) -> dict[str, Any]:
    """A JWT's payload, read without verifying (the server verified it)."""
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


async def dpop_token(app: RunningApp, key: DPoPKey, **form: str) -> httpx.Response:
    proof = key.proof("POST", TOKEN_URL, now=app.clock())
    async with app.fresh_client() as client:
        return await client.post("/auth/token", data=form or GRANT, headers={"DPoP": proof})


async def me(
    app: RunningApp, token: str, proof: str | None, scheme: str = "DPoP"
) -> httpx.Response:
    headers = {"authorization": f"{scheme} {token}"}
    if proof is not None:
        headers["DPoP"] = proof
    async with app.fresh_client() as client:
        return await client.get("/auth/me", headers=headers)


def assert_refused(response: httpx.Response, code: str, status: int = 401) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code, response.text
    if status == 401:
        challenge = response.headers["www-authenticate"]
        assert challenge.startswith("DPoP ") and f'error="{code}"' in challenge
        assert CHALLENGE_ALGS in challenge


@pytest.fixture(params=["session", "jwt", "hybrid"])
async def app(make_app: Apps, request: pytest.FixtureRequest) -> RunningApp:
    return await make_app(
        strategy=request.param, transports="bearer", users={"alice": []}, password=PASSWORD
    )


async def bound(app: RunningApp, key: DPoPKey) -> dict[str, Any]:
    response = await dpop_token(app, key)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["token_type"] == "DPoP"
    return body


# --- issuing and using a bound token -------------------------------------------------------------


@pytest.mark.parametrize("alg", ["ES256", "EdDSA"])
async def test_password_grant_binds_the_token_and_a_proof_opens_the_route(
    app: RunningApp, alg: str
) -> None:
    key = DPoPKey(alg)
    body = await bound(app, key)
    token = body["access_token"]
    if app.strategy == "session":  # opaque: the binding lives on the session record
        record = await app.auth.strategy.store.get(token.split(".")[0])  # type: ignore[attr-defined]
        assert record is not None and record.data["jkt"] == key.jkt
    else:
        assert claims_of(token)["cnf"] == {"jkt": key.jkt}
    ok = await me(app, token, key.proof("GET", ME_URL, now=app.clock(), access_token=token))
    assert ok.status_code == 200, ok.text
    assert ok.json()["username"] == "alice"


async def test_a_bound_token_presented_as_bearer_is_refused(app: RunningApp) -> None:
    key = DPoPKey()
    token = (await bound(app, key))["access_token"]
    proof = key.proof("GET", ME_URL, now=app.clock(), access_token=token)
    response = await me(app, token, proof, scheme="Bearer")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"


async def test_a_bound_token_without_a_proof_is_refused(app: RunningApp) -> None:
    token = (await bound(app, DPoPKey()))["access_token"]
    assert_refused(await me(app, token, None), "invalid_dpop_proof")


async def test_without_a_proof_the_token_stays_bearer(app: RunningApp) -> None:
    token = await app.bearer_token()
    assert (await me(app, token, None, scheme="Bearer")).status_code == 200
    # ...and an unbound token is not accepted under the DPoP scheme.
    key = DPoPKey()
    proof = key.proof("GET", ME_URL, now=app.clock(), access_token=token)
    assert (await me(app, token, proof)).json()["error"] == "invalid_token"


# --- broken proofs --------------------------------------------------------------------------


def _bad_proofs(key: DPoPKey, token: str, now: float) -> dict[str, str]:
    other = DPoPKey()
    private = {**key.key.as_dict(private=True)}
    return {
        "htm": key.proof("POST", ME_URL, now=now, access_token=token),
        "htu": key.proof("GET", f"{BASE}/auth/other", now=now, access_token=token),
        "htu_host": key.proof(
            "GET", "https://elsewhere.example/auth/me", now=now, access_token=token
        ),
        "ath": key.proof("GET", ME_URL, now=now, access_token=token + "x"),
        "ath_missing": key.proof("GET", ME_URL, now=now),
        "iat_expired": key.proof("GET", ME_URL, now=now - 61, access_token=token),
        "iat_future": key.proof("GET", ME_URL, now=now + 30, access_token=token),
        "hs256": hs256_proof(key.public_jwk, "GET", ME_URL, now),
        "none": none_proof(key.public_jwk, "GET", ME_URL, now),
        "none_signed": none_proof(key.public_jwk, "GET", ME_URL, now) + "AAAA",
        "private_jwk": key.proof(
            "GET", ME_URL, now=now, access_token=token, header={"jwk": private}
        ),
        "typ": key.proof("GET", ME_URL, now=now, access_token=token, header={"typ": "JWT"}),
        "other_key": other.proof("GET", ME_URL, now=now, access_token=token),
        "not_a_jws": "not-a-proof",
    }


#: Each broken proof and the reason its refusal is audited (and counted) under.
REASONS = {
    "htm": "htm",
    "htu": "htu",
    "htu_host": "htu",
    "ath": "ath",
    "ath_missing": "ath",
    "iat_expired": "iat",
    "iat_future": "iat",
    "hs256": "alg",
    "none": "malformed",  # the empty signature segment: not even a JWS
    "none_signed": "alg",
    "private_jwk": "private_key",
    "typ": "typ",
    "other_key": "jkt",
    "not_a_jws": "malformed",
}


@pytest.mark.parametrize("case", sorted(REASONS))
async def test_broken_proofs_are_refused_with_invalid_dpop_proof(make_app: Apps, case: str) -> None:
    app = await make_app(
        strategy="jwt", transports="bearer", users={"alice": []}, password=PASSWORD
    )
    key = DPoPKey()
    token = (await bound(app, key))["access_token"]
    events: list[AuditEvent] = []

    async def hook(event: AuditEvent) -> None:
        events.append(event)

    app.auth.audit.hook = hook
    response = await me(app, token, _bad_proofs(key, token, app.clock())[case])
    assert_refused(response, "invalid_dpop_proof")
    failures = [e for e in events if e.name == "dpop.failure"]
    assert len(failures) == 1 and failures[0].user_id == app.users["alice"]
    assert failures[0].reason == REASONS[case]


async def test_a_replayed_proof_is_refused(app: RunningApp) -> None:
    key = DPoPKey()
    token = (await bound(app, key))["access_token"]
    proof = key.proof("GET", ME_URL, now=app.clock(), access_token=token)
    assert (await me(app, token, proof)).status_code == 200
    assert_refused(await me(app, token, proof), "invalid_dpop_proof")
    # A fresh proof (new jti) for the same request is fine.
    again = key.proof("GET", ME_URL, now=app.clock(), access_token=token)
    assert (await me(app, token, again)).status_code == 200


async def test_htu_is_compared_normalised(app: RunningApp) -> None:
    key = DPoPKey()
    token = (await bound(app, key))["access_token"]
    url = "HTTPS://TestServer:443/auth/%6De?query=ignored#fragment"
    proof = key.proof("GET", url, now=app.clock(), access_token=token)
    assert (await me(app, token, proof)).status_code == 200


async def test_htu_behind_a_proxy_is_the_public_url(make_app: Apps) -> None:
    app = await make_app(
        transports="bearer",
        users={"alice": []},
        password=PASSWORD,
        public_url="https://auth.example.com",
    )
    key = DPoPKey()
    form_proof = key.proof("POST", "https://auth.example.com/auth/token", now=app.clock())
    async with app.fresh_client() as client:
        response = await client.post("/auth/token", data=GRANT, headers={"DPoP": form_proof})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    # The address the app itself sees is not the one clients were given.
    seen = key.proof("GET", ME_URL, now=app.clock(), access_token=token)
    assert_refused(await me(app, token, seen), "invalid_dpop_proof")
    public = key.proof(
        "GET", "https://auth.example.com/auth/me", now=app.clock(), access_token=token
    )
    assert (await me(app, token, public)).status_code == 200


# --- the token endpoint ---------------------------------------------------------------------------


async def test_a_bad_proof_at_the_token_endpoint_is_400_invalid_dpop_proof(app: RunningApp) -> None:
    key = DPoPKey()
    wrong = key.proof("POST", f"{BASE}/auth/elsewhere", now=app.clock())
    async with app.fresh_client() as client:
        response = await client.post("/auth/token", data=GRANT, headers={"DPoP": wrong})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("strategy", ["hybrid", "jwt"])
async def test_refresh_tokens_are_bound_to_the_key(make_app: Apps, strategy: str) -> None:
    app = await make_app(
        strategy=strategy,
        transports="bearer",
        users={"alice": []},
        password=PASSWORD,
        refresh_grace=0,
    )
    key = DPoPKey()
    first = await bound(app, key)
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    # Another key's proof, or none: refused, and the refresh token is not used up.
    stolen = await dpop_token(app, DPoPKey(), **refresh)
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant", stolen.text
    async with app.fresh_client() as client:
        bare = await client.post("/auth/token", data=refresh)
    assert bare.status_code == 400 and bare.json()["error"] == "invalid_grant", bare.text
    renewed = await dpop_token(app, key, **refresh)
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert body["token_type"] == "DPoP"
    assert claims_of(body["access_token"])["cnf"] == {"jkt": key.jkt}


async def test_binding_failures_are_counted(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, password=PASSWORD)
    metrics = Metrics()
    metrics.attach(app.auth)
    key = DPoPKey()
    token = (await bound(app, key))["access_token"]
    await me(app, token, key.proof("GET", f"{BASE}/x", now=app.clock(), access_token=token))
    await me(app, token, None, scheme="Bearer")
    cookie = app.auth.transport("cookie").cookie_name  # type: ignore[attr-defined]
    async with app.fresh_client() as client:
        await client.get("/auth/me", headers={"cookie": f"{cookie}={token}"})
    expected = {"htu": 1, "bound_as_bearer": 1, "bound_as_cookie": 1}
    assert metrics.events.dpop_failures == expected


# --- modes and nonces ----------------------------------------------------------------------------


async def test_off_ignores_proofs_and_issues_bearer(make_app: Apps) -> None:
    app = await make_app(transports="bearer", users={"alice": []}, password=PASSWORD, dpop="off")
    response = await dpop_token(app, DPoPKey())
    assert response.status_code == 200 and response.json()["token_type"] == "Bearer"
    token = response.json()["access_token"]
    assert (await me(app, token, None, scheme="Bearer")).status_code == 200


async def test_required_refuses_bearer(make_app: Apps) -> None:
    app = await make_app(
        transports="bearer", users={"alice": []}, password=PASSWORD, dpop="required"
    )
    async with app.fresh_client() as client:
        response = await client.post("/auth/token", data=GRANT)
        assert response.status_code == 400 and response.json()["error"] == "invalid_dpop_proof"
        anonymous = await client.get("/auth/me")
    challenge = anonymous.headers["www-authenticate"]
    assert challenge == f'Bearer realm="satchel", DPoP {CHALLENGE_ALGS}'  # RFC 9449 §7.1
    key = DPoPKey()
    token = (await bound(app, key))["access_token"]
    assert (
        await me(app, token, key.proof("GET", ME_URL, now=app.clock(), access_token=token))
    ).status_code == 200


async def test_nonce_flow(make_app: Apps) -> None:
    app = await make_app(
        transports="bearer", users={"alice": []}, password=PASSWORD, dpop_nonce=True
    )
    key = DPoPKey()
    async with app.fresh_client() as client:
        first = await client.post(
            "/auth/token",
            data=GRANT,
            headers={"DPoP": key.proof("POST", TOKEN_URL, now=app.clock())},
        )
        assert first.status_code == 400 and first.json()["error"] == "use_dpop_nonce"
        nonce = first.headers["dpop-nonce"]
        proof = key.proof("POST", TOKEN_URL, now=app.clock(), nonce=nonce)
        issued = await client.post("/auth/token", data=GRANT, headers={"DPoP": proof})
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]
    # The resource asks for a nonce the same way; the current one works there too.
    app.clock.advance(400)  # past the nonce's lifetime (300 s)
    stale = key.proof("GET", ME_URL, now=app.clock(), access_token=token, nonce=nonce)
    response = await me(app, token, stale)
    assert_refused(response, "use_dpop_nonce")
    fresh = response.headers["dpop-nonce"]
    assert fresh != nonce
    ok = await me(
        app, token, key.proof("GET", ME_URL, now=app.clock(), access_token=token, nonce=fresh)
    )
    assert ok.status_code == 200, ok.text
    forged = fresh[:-2] + ("AA" if fresh[-2:] != "AA" else "BA")
    bad = key.proof("GET", ME_URL, now=app.clock(), access_token=token, nonce=forged)
    assert_refused(await me(app, token, bad), "use_dpop_nonce")


@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
async def test_a_password_change_keeps_the_binding(make_app: Apps, strategy: str) -> None:
    app = await make_app(
        strategy=strategy, transports="bearer", users={"alice": []}, password=PASSWORD
    )
    key = DPoPKey()
    token = (await bound(app, key))["access_token"]
    url = f"{BASE}/auth/password"
    headers = {
        "authorization": f"DPoP {token}",
        "DPoP": key.proof("POST", url, now=app.clock(), access_token=token),
    }
    body = {"current_password": PASSWORD, "new_password": "an entirely new passphrase 42"}
    async with app.fresh_client() as client:
        changed = await client.post("/auth/password", json=body, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["token_type"] == "DPoP"
    renewed = changed.json()["access_token"]
    proof = key.proof("GET", ME_URL, now=app.clock(), access_token=renewed)
    assert (await me(app, renewed, proof)).status_code == 200
    assert (await me(app, renewed, None, scheme="Bearer")).status_code == 401


@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
async def test_a_step_up_renews_a_token_bound_to_the_same_key(
    make_app: Apps, strategy: str
) -> None:
    app = await make_app(
        strategy=strategy, transports="bearer", users={"alice": []}, password=PASSWORD
    )
    key = DPoPKey()
    token = (await bound(app, key))["access_token"]
    url = f"{BASE}/auth/reauthenticate"
    headers = {
        "authorization": f"DPoP {token}",
        "DPoP": key.proof("POST", url, now=app.clock(), access_token=token),
    }
    async with app.fresh_client() as client:
        renewed = await client.post(
            "/auth/reauthenticate", json={"password": PASSWORD}, headers=headers
        )
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["token_type"] == "DPoP"
    assert claims_of(renewed.json()["access_token"])["cnf"] == {"jkt": key.jkt}


async def test_a_login_with_a_second_factor_stays_bound_to_the_key(make_app: Apps) -> None:
    from mfahelpers import code, enroll_totp, post

    app = await make_app(strategy="jwt", users={"alice": []}, password=PASSWORD)
    await app.login()
    secret, _ = await enroll_totp(app)
    key = DPoPKey()
    step = await dpop_token(app, key)
    assert step.status_code in (400, 403) and step.json()["error"] == "mfa_required", step.text
    async with app.fresh_client() as client:
        done = await post(
            app,
            "/auth/mfa/verify",
            {"mfa_token": step.json()["mfa_token"], "code": code(app, secret)},
            client=client,
        )
    assert done.status_code == 200, done.text
    assert done.json()["token_type"] == "DPoP"
    token = done.json()["access_token"]
    assert claims_of(token)["cnf"] == {"jkt": key.jkt}
    assert (await me(app, token, None, scheme="Bearer")).status_code == 401


async def test_a_page_on_a_cors_origin_may_send_proofs_and_read_nonces(make_app: Apps) -> None:
    spa = "https://spa.example"
    app = await make_app(transports="bearer", users={"alice": []}, cors_origins=[spa])
    async with app.fresh_client() as client:
        preflight = await client.options(
            "/auth/me",
            headers={
                "origin": spa,
                "access-control-request-method": "GET",
                "access-control-request-headers": "authorization, dpop",
            },
        )
        answer = await client.get("/auth/me", headers={"origin": spa})
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "dpop" in [h.strip() for h in allowed.split(",")]
    exposed = answer.headers["access-control-expose-headers"].lower()
    assert "dpop-nonce" in [h.strip() for h in exposed.split(",")]


@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
async def test_a_bound_token_in_a_cookie_is_refused(make_app: Apps, strategy: str) -> None:
    app = await make_app(strategy=strategy, users={"alice": []}, password=PASSWORD)
    token = (await bound(app, DPoPKey()))["access_token"]
    cookie = app.auth.transport("cookie").cookie_name  # type: ignore[attr-defined]
    async with app.fresh_client() as client:
        response = await client.get("/auth/me", headers={"cookie": f"{cookie}={token}"})
    assert response.status_code == 401, response.text
    assert response.json()["error"] == "invalid_token"
    # Nor does the library's own entry point accept it without its proof.
    from satchel.dpop.binding import DPoPSchemeError

    with pytest.raises(DPoPSchemeError):
        await app.auth.authenticate([(b"authorization", f"DPoP {token}".encode())])


@pytest.mark.parametrize("case", ["hs256", "none_signed", "private_jwk", "iat_expired", "replay"])
async def test_broken_proofs_at_the_token_endpoint_are_400(make_app: Apps, case: str) -> None:
    app = await make_app(transports="bearer", users={"alice": []}, password=PASSWORD)
    key, now = DPoPKey(), app.clock()
    proofs = {
        "hs256": hs256_proof(key.public_jwk, "POST", TOKEN_URL, now),
        "none_signed": none_proof(key.public_jwk, "POST", TOKEN_URL, now) + "AAAA",
        "private_jwk": key.proof(
            "POST", TOKEN_URL, now=now, header={"jwk": key.key.as_dict(private=True)}
        ),
        "iat_expired": key.proof("POST", TOKEN_URL, now=now - 120),
        "replay": key.proof("POST", TOKEN_URL, now=now),
    }
    async with app.fresh_client() as client:
        if case == "replay":
            first = await client.post("/auth/token", data=GRANT, headers={"DPoP": proofs[case]})
            assert first.status_code == 200, first.text
        response = await client.post("/auth/token", data=GRANT, headers={"DPoP": proofs[case]})
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_dpop_proof"


async def test_two_proof_headers_are_refused(make_app: Apps) -> None:
    app = await make_app(transports="bearer", users={"alice": []}, password=PASSWORD)
    key = DPoPKey()
    token = (await bound(app, key))["access_token"]
    proof = key.proof("GET", ME_URL, now=app.clock(), access_token=token)
    other = key.proof("GET", ME_URL, now=app.clock(), access_token=token)
    headers = [("authorization", f"DPoP {token}"), ("dpop", proof), ("dpop", other)]
    async with app.fresh_client() as client:
        response = await client.get("/auth/me", headers=headers)
    assert_refused(response, "invalid_dpop_proof")


async def test_auth_refresh_refuses_a_bound_refresh_token(make_app: Apps) -> None:
    app = await make_app(
        strategy="hybrid", transports="bearer", users={"alice": []}, password=PASSWORD
    )
    key = DPoPKey()
    first = await bound(app, key)
    async with app.fresh_client() as client:
        response = await client.post(
            "/auth/refresh", json={"refresh_token": first["refresh_token"]}
        )
    assert response.status_code == 401, response.text
    # ...and the token endpoint still rotates it for the key's holder.
    refresh = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    assert (await dpop_token(app, key, **refresh)).status_code == 200
