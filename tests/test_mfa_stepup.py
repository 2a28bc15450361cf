"""Step-up: every identity's auth_time, the fresh-only routes answering RFC 9470, and
POST /auth/reauthenticate renewing auth_time on the same session."""

from __future__ import annotations

import pytest

from apps import Apps
from mfahelpers import code, enroll_totp, password_step, post

STEP_UP = 'Bearer error="insufficient_user_authentication"'


@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
async def test_a_stale_session_is_sent_to_reauthenticate(make_app: Apps, strategy: str) -> None:
    app = await make_app(strategy=strategy, users={"alice": []}, access_ttl=900)
    await app.login()
    app.clock.advance(301)
    stale = await post(app, "/auth/mfa/recovery-codes")
    assert stale.status_code == 401
    assert stale.json()["error"] == "reauthentication_required"
    assert stale.json()["max_age"] == 300
    challenge = stale.headers["www-authenticate"]
    assert challenge.startswith(STEP_UP) and 'max_age="300"' in challenge

    before = (await app.client.get("/auth/me")).json()
    renewed = await post(app, "/auth/reauthenticate", {"password": app.password})
    assert renewed.status_code == 200, renewed.text
    after = renewed.json()
    assert after["session_id"] == before["session_id"]  # the same session
    assert after["auth_time"] == int(app.clock()) > before["auth_time"]
    assert (await app.client.get("/auth/me")).json()["auth_time"] == int(app.clock())
    assert (await post(app, "/auth/mfa/recovery-codes")).status_code == 200


@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
async def test_bearer_reauthentication_returns_a_new_access_token(
    make_app: Apps, strategy: str
) -> None:
    app = await make_app(strategy=strategy, users={"alice": []}, access_ttl=900)
    token = await app.bearer_token()
    app.clock.advance(400)
    headers = {"authorization": f"Bearer {token}"}
    stale = await app.client.post("/auth/mfa/recovery-codes", headers=headers)
    assert stale.status_code == 401 and STEP_UP in stale.headers["www-authenticate"]
    renewed = await app.client.post(
        "/auth/reauthenticate", json={"password": app.password}, headers=headers
    )
    assert renewed.status_code == 200, renewed.text
    body = renewed.json()
    assert "refresh_token" not in body and body["access_token"] != token
    fresh = {"authorization": f"Bearer {body['access_token']}"}
    assert (await app.client.post("/auth/mfa/recovery-codes", headers=fresh)).status_code == 200
    # The old token still works, but it is not fresh.
    assert (await app.client.post("/auth/mfa/recovery-codes", headers=headers)).status_code == 401


async def test_reauthentication_with_a_totp_code(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    secret, _ = await enroll_totp(app)
    app.clock.advance(400)
    wrong = await post(app, "/auth/reauthenticate", {"code": "123456"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_code"
    ok = await post(app, "/auth/reauthenticate", {"code": code(app, secret)})
    assert ok.status_code == 200
    assert {"pwd", "otp", "mfa"} <= set(ok.json()["amr"])


async def test_a_wrong_password_does_not_renew(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    app.clock.advance(400)
    wrong = await post(app, "/auth/reauthenticate", {"password": "not the password"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_login"
    assert (await post(app, "/auth/mfa/recovery-codes")).status_code == 401
    none = await post(app, "/auth/reauthenticate", {})
    assert none.status_code == 401


async def test_factor_removal_needs_a_fresh_login(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    secret, _ = await enroll_totp(app)
    app.clock.advance(301)
    refused = await app.client.delete(
        "/auth/mfa/totp", headers={"origin": app.base_url, "sec-fetch-site": "same-origin"}
    )
    assert refused.status_code == 401 and refused.json()["error"] == "reauthentication_required"
    assert (await app.client.get("/auth/mfa")).json()["totp"] is True
    assert (await post(app, "/auth/reauthenticate", {"code": code(app, secret)})).status_code == 200
    done = await app.client.delete(
        "/auth/mfa/totp", headers={"origin": app.base_url, "sec-fetch-site": "same-origin"}
    )
    assert done.status_code == 204
    assert (await app.client.get("/auth/mfa")).json()["totp"] is False


async def test_setup_needs_a_fresh_login(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    app.clock.advance(301)
    assert (await post(app, "/auth/mfa/totp/setup")).status_code == 401


async def test_password_change_needs_a_fresh_login(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    app.clock.advance(301)
    body = {"current_password": app.password, "new_password": "a different long passphrase 7"}
    stale = await post(app, "/auth/password", body)
    assert stale.status_code == 401 and stale.json()["error"] == "reauthentication_required"
    assert (await post(app, "/auth/reauthenticate", {"password": app.password})).status_code == 200
    assert (await post(app, "/auth/password", body)).status_code == 200


async def test_fresh_age_is_a_setting(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, fresh_age=60)
    await app.login()
    app.clock.advance(61)
    stale = await post(app, "/auth/mfa/recovery-codes")
    assert 'max_age="60"' in stale.headers["www-authenticate"]


async def test_enrollment_is_walked_through_at_sign_in(make_app: Apps) -> None:
    app = await make_app(mfa="required_for_admins", users={"root": ["admin"], "alice": []})
    await app.login("alice")  # not an admin: the password is enough
    async with app.fresh_client() as browser:
        step = await password_step(app, "root", client=browser)
        assert step["enrollment_required"] is True and step["methods"] == ["totp", "passkey"]
        token = step["mfa_token"]
        # An enrolment token cannot skip the enrolment.
        skip = await post(
            app, "/auth/mfa/verify", {"mfa_token": token, "code": "123456"}, client=browser
        )
        assert skip.status_code == 401 and skip.json()["error"] == "invalid_mfa_token"
        setup = await post(app, "/auth/mfa/totp/setup", {"mfa_token": token}, client=browser)
        assert setup.status_code == 200
        secret = setup.json()["secret"]
        done = await post(
            app,
            "/auth/mfa/totp/confirm",
            {"mfa_token": token, "code": code(app, secret)},
            client=browser,
        )
        assert done.status_code == 200, done.text
        assert len(done.json()["recovery_codes"]) == 10
        me = await browser.get("/auth/me")
        assert me.status_code == 200 and me.json()["username"] == "root"
        # Used up.
        again = await post(
            app,
            "/auth/mfa/totp/confirm",
            {"mfa_token": token, "code": code(app, secret)},
            client=browser,
        )
        assert again.status_code == 401
    app.clock.advance(30)
    async with app.fresh_client() as browser:
        step = await password_step(app, "root", client=browser)
        assert step["enrollment_required"] is False and "totp" in step["methods"]


async def test_required_for_everyone(make_app: Apps) -> None:
    app = await make_app(mfa="required", users={"alice": []})
    step = await password_step(app, "alice")
    assert step["enrollment_required"] is True
