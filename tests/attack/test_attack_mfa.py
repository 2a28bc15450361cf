"""Attacks on second factors and step-up: the mfa_token as a credential, brute force of
TOTP codes, replayed codes, a stale session on a fresh-only route, factor removal without
a fresh login, and nothing secret reaching the logs."""

from __future__ import annotations

import logging

import pytest

from apps import Apps
from mfahelpers import code, enroll_totp, password_step, post

COOKIE = "__Host-satchel"


@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
async def test_mfa_token_is_no_session_or_bearer_token(make_app: Apps, strategy: str) -> None:
    app = await make_app(strategy=strategy, users={"alice": []})
    await app.login()
    await enroll_totp(app)
    async with app.fresh_client() as attacker:
        token = (await password_step(app, client=attacker))["mfa_token"]
        as_bearer = await attacker.get("/auth/me", headers={"authorization": f"Bearer {token}"})
        assert as_bearer.status_code == 401
        attacker.cookies.set(COOKIE, token, domain="testserver")
        assert (await attacker.get("/auth/me")).status_code == 401
        attacker.cookies.clear()
        # Nor is it a refresh token, nor a step-up for anybody.
        refresh = await attacker.post("/auth/refresh", json={"refresh_token": token})
        assert refresh.status_code in (400, 401)
        reauth = await attacker.post(
            "/auth/reauthenticate",
            json={"password": app.password},
            headers={"authorization": f"Bearer {token}"},
        )
        assert reauth.status_code == 401


async def test_totp_brute_force_is_throttled(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    secret, _ = await enroll_totp(app)
    async with app.fresh_client() as attacker:
        token = (await password_step(app, client=attacker))["mfa_token"]
        for guess in range(5):
            wrong = await post(
                app,
                "/auth/mfa/verify",
                {"mfa_token": token, "code": f"{guess:06d}"},
                client=attacker,
            )
            assert wrong.status_code == 401
        # Over the limit: even the right code gets the same 429, with Retry-After.
        right = await post(
            app,
            "/auth/mfa/verify",
            {"mfa_token": token, "code": code(app, secret)},
            client=attacker,
        )
        assert right.status_code == 429 and int(right.headers["retry-after"]) > 0
        # A new mfa_token does not reset the account's counter.
        again = (await password_step(app, client=attacker))["mfa_token"]
        blocked = await post(
            app,
            "/auth/mfa/verify",
            {"mfa_token": again, "code": code(app, secret)},
            client=attacker,
        )
        assert blocked.status_code == 429
    app.clock.advance(1800)
    async with app.fresh_client() as user:
        token = (await password_step(app, client=user))["mfa_token"]
        ok = await post(
            app, "/auth/mfa/verify", {"mfa_token": token, "code": code(app, secret)}, client=user
        )
        assert ok.status_code == 200


async def test_reauthentication_codes_are_throttled_too(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    await enroll_totp(app)
    for guess in range(5):
        assert (
            await post(app, "/auth/reauthenticate", {"code": f"{guess:06d}"})
        ).status_code == 401
    assert (await post(app, "/auth/reauthenticate", {"code": "999999"})).status_code == 429


async def test_replayed_totp_code_is_refused(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    secret, _ = await enroll_totp(app)
    used = code(app, secret)
    async with app.fresh_client() as user, app.fresh_client() as thief:
        token = (await password_step(app, client=user))["mfa_token"]
        assert (
            await post(app, "/auth/mfa/verify", {"mfa_token": token, "code": used}, client=user)
        ).status_code == 200
        # The thief saw the code (shoulder surfing, a phishing proxy) and knows the password.
        stolen = (await password_step(app, client=thief))["mfa_token"]
        replay = await post(
            app, "/auth/mfa/verify", {"mfa_token": stolen, "code": used}, client=thief
        )
        assert replay.status_code == 401
        # An older code of the drift window is refused as well once a later one was used.
        older = code(app, secret, -30)
        assert (
            await post(app, "/auth/mfa/verify", {"mfa_token": stolen, "code": older}, client=thief)
        ).status_code == 401


async def test_mfa_token_is_single_use_and_short_lived(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    secret, _ = await enroll_totp(app)
    async with app.fresh_client() as user:
        token = (await password_step(app, client=user))["mfa_token"]
        assert (
            await post(
                app,
                "/auth/mfa/verify",
                {"mfa_token": token, "code": code(app, secret)},
                client=user,
            )
        ).status_code == 200
        app.clock.advance(30)
        reuse = await post(
            app, "/auth/mfa/verify", {"mfa_token": token, "code": code(app, secret)}, client=user
        )
        assert reuse.status_code == 401 and reuse.json()["error"] == "invalid_mfa_token"
        late = (await password_step(app, client=user))["mfa_token"]
        app.clock.advance(301)
        expired = await post(
            app, "/auth/mfa/verify", {"mfa_token": late, "code": code(app, secret)}, client=user
        )
        assert expired.status_code == 401 and expired.json()["error"] == "invalid_mfa_token"


async def test_password_change_voids_pending_logins(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    secret, _ = await enroll_totp(app)
    async with app.fresh_client() as thief:
        token = (await password_step(app, client=thief))["mfa_token"]
        app.clock.advance(1)
        change = {"current_password": app.password, "new_password": "a brand new passphrase 42"}
        assert (await post(app, "/auth/password", change)).status_code == 200
        late = await post(
            app, "/auth/mfa/verify", {"mfa_token": token, "code": code(app, secret)}, client=thief
        )
        assert late.status_code == 401


async def test_stale_session_gets_rfc_9470_challenge(make_app: Apps) -> None:
    app = await make_app(strategy="hybrid", users={"alice": []}, access_ttl=900)
    await app.login()
    app.clock.advance(600)
    response = await post(app, "/auth/mfa/recovery-codes")
    assert response.status_code == 401
    assert response.json()["error"] == "reauthentication_required"
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A more recent authentication is required", max_age="300"'
    )


async def test_factor_removal_without_fresh_login(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    await enroll_totp(app)
    app.clock.advance(301)
    # A stolen, older session cookie cannot strip the second factor or mint new codes.
    headers = {"origin": app.base_url, "sec-fetch-site": "same-origin"}
    assert (await app.client.delete("/auth/mfa/totp", headers=headers)).status_code == 401
    assert (await post(app, "/auth/mfa/recovery-codes")).status_code == 401
    assert (await app.client.get("/auth/mfa")).json()["totp"] is True


async def test_codes_and_tokens_stay_out_of_the_logs(
    make_app: Apps, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = await make_app(users={"alice": []})
    await app.login()
    secret, codes = await enroll_totp(app)
    async with app.fresh_client() as user:
        token = (await password_step(app, client=user))["mfa_token"]
        right = code(app, secret)
        await post(app, "/auth/mfa/verify", {"mfa_token": token, "code": "000000"}, client=user)
        await post(app, "/auth/mfa/verify", {"mfa_token": token, "code": right}, client=user)
    text = caplog.text
    for secret_value in (secret, token, *codes, app.password):
        assert secret_value not in text
    assert "login.mfa_required" in text and "mfa.failure" in text
