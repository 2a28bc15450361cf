"""TOTP end to end through the API, with codes from pyotp: setup, confirmation, sign-in
with a second step, recovery codes, each code once, bearer and cookie clients."""

from __future__ import annotations

import pytest

from apps import Apps
from mfahelpers import code, enroll_totp, password_step, post


@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
async def test_totp_sign_in_end_to_end(make_app: Apps, strategy: str) -> None:
    app = await make_app(strategy=strategy, users={"alice": []})
    await app.login()
    secret, codes = await enroll_totp(app)
    assert len(codes) == 10 and len(set(codes)) == 10
    await post(app, "/auth/logout")
    app.client.cookies.clear()

    step = await password_step(app)
    assert step["methods"] == ["totp", "recovery_code"]
    assert step["enrollment_required"] is False
    # The password step set no credential.
    assert (await app.client.get("/auth/me")).status_code == 401

    done = await post(
        app, "/auth/mfa/verify", {"mfa_token": step["mfa_token"], "code": code(app, secret)}
    )
    assert done.status_code == 200, done.text
    assert set(done.json()["amr"]) == {"pwd", "otp", "mfa"}
    me = await app.client.get("/auth/me")
    assert me.status_code == 200 and set(me.json()["amr"]) == {"pwd", "otp", "mfa"}


async def test_mfa_status_and_setup_needs_confirmation(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    status = await app.client.get("/auth/mfa")
    assert status.json() == {
        "mode": "optional",
        "totp": False,
        "recovery_codes": 0,
        "passkeys": 0,
        "fresh_age": 300,
    }
    setup = await post(app, "/auth/mfa/totp/setup")
    body = setup.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/") and body["qr_svg"].startswith("<svg")
    # Not confirmed: signing in still needs the password only.
    assert (await app.client.get("/auth/mfa")).json()["totp"] is False
    async with app.fresh_client() as other:
        await app.login(client=other)
    wrong = await post(app, "/auth/mfa/totp/confirm", {"code": "000000"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_code"
    ok = await post(app, "/auth/mfa/totp/confirm", {"code": code(app, body["secret"])})
    assert ok.status_code == 200 and len(ok.json()["recovery_codes"]) == 10
    assert (await app.client.get("/auth/mfa")).json()["totp"] is True
    again = await post(app, "/auth/mfa/totp/setup")
    assert again.status_code == 409


async def test_each_code_works_once(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    secret, codes = await enroll_totp(app)
    used = code(app, secret)
    async with app.fresh_client() as one, app.fresh_client() as two:
        first = await password_step(app, client=one)
        ok = await post(
            app, "/auth/mfa/verify", {"mfa_token": first["mfa_token"], "code": used}, client=one
        )
        assert ok.status_code == 200
        second = await password_step(app, client=two)
        replay = await post(
            app, "/auth/mfa/verify", {"mfa_token": second["mfa_token"], "code": used}, client=two
        )
        assert replay.status_code == 401 and replay.json()["error"] == "invalid_code"
        # A recovery code works once, with any case and separators.
        rc = codes[0].upper().replace("-", " ")
        by_code = await post(
            app,
            "/auth/mfa/verify",
            {"mfa_token": second["mfa_token"], "recovery_code": rc},
            client=two,
        )
        assert by_code.status_code == 200, by_code.text
        third = await password_step(app, client=two)
        again = await post(
            app,
            "/auth/mfa/verify",
            {"mfa_token": third["mfa_token"], "recovery_code": codes[0]},
            client=two,
        )
        assert again.status_code == 401
    assert (await app.client.get("/auth/mfa")).json()["recovery_codes"] == 9


async def test_bearer_login_with_a_second_step(make_app: Apps) -> None:
    app = await make_app(strategy="hybrid", users={"alice": []})
    await app.login()
    secret, _ = await enroll_totp(app)
    async with app.fresh_client() as api:
        first = await api.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": app.password},
        )
        assert first.status_code == 403
        body = first.json()
        assert body["error"] == "mfa_required" and body["methods"][0] == "totp"
        assert body["error_description"] and body["mfa_required"] is True  # RFC 6749 shape too
        done = await api.post(
            "/auth/mfa/verify", json={"mfa_token": body["mfa_token"], "code": code(app, secret)}
        )
        assert done.status_code == 200, done.text
        token = done.json()["access_token"]
        assert "set-cookie" not in done.headers
        me = await api.get("/auth/me", headers={"authorization": f"Bearer {token}"})
        assert me.status_code == 200 and "otp" in me.json()["amr"]


async def test_regenerated_codes_replace_the_old_ones(make_app: Apps) -> None:
    app = await make_app(users={"alice": []})
    await app.login()
    _, old = await enroll_totp(app)
    new = await post(app, "/auth/mfa/recovery-codes")
    assert new.status_code == 200
    fresh = new.json()["recovery_codes"]
    assert len(fresh) == 10 and not set(fresh) & set(old)
    async with app.fresh_client() as other:
        step = await password_step(app, client=other)
        stale = await post(
            app,
            "/auth/mfa/verify",
            {"mfa_token": step["mfa_token"], "recovery_code": old[1]},
            client=other,
        )
        assert stale.status_code == 401
        ok = await post(
            app,
            "/auth/mfa/verify",
            {"mfa_token": step["mfa_token"], "recovery_code": fresh[1]},
            client=other,
        )
        assert ok.status_code == 200


async def test_mfa_off_asks_for_nothing_and_refuses_setup(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, mfa="off")
    await app.login()
    setup = await post(app, "/auth/mfa/totp/setup")
    assert setup.status_code == 403 and setup.json()["error"] == "mfa_disabled"


@pytest.mark.parametrize(
    "store",
    [
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ],
)
async def test_totp_sign_in_on_every_store(make_app: Apps, store: str) -> None:
    app = await make_app(store, strategy="hybrid", users={"alice": []})
    await app.login()
    secret, codes = await enroll_totp(app)
    async with app.fresh_client() as other:
        step = await password_step(app, client=other)
        ok = await post(
            app,
            "/auth/mfa/verify",
            {"mfa_token": step["mfa_token"], "code": code(app, secret)},
            client=other,
        )
        assert ok.status_code == 200
        step = await password_step(app, client=other)
        replay = await post(
            app,
            "/auth/mfa/verify",
            {"mfa_token": step["mfa_token"], "code": code(app, secret)},
            client=other,
        )
        assert replay.status_code == 401
        rc = await post(
            app,
            "/auth/mfa/verify",
            {"mfa_token": step["mfa_token"], "recovery_code": codes[3]},
            client=other,
        )
        assert rc.status_code == 200
