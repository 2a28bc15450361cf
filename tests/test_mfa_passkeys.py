"""Passkeys through the API with a software authenticator: registration, usernameless
sign-in, passkey as second factor and for step-up, naming and removal."""

from __future__ import annotations

from typing import Any

import pytest

from apps import Apps, RunningApp
from mfahelpers import password_step, post
from softauthn import SoftAuthenticator

ORIGIN = "https://testserver"
SETTINGS: dict[str, Any] = {"webauthn_rp_id": "testserver", "webauthn_origins": ORIGIN}


async def register(
    app: RunningApp, device: SoftAuthenticator, name: str = "Laptop", client: Any = None
) -> dict[str, Any]:
    options = (await post(app, "/auth/passkeys/register/options", client=client)).json()
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    done = await post(
        app,
        "/auth/passkeys/register",
        {"credential": device.create(options), "name": name},
        client=client,
    )
    assert done.status_code == 201, done.text
    body: dict[str, Any] = done.json()
    return body


async def passkey_login(app: RunningApp, device: SoftAuthenticator, client: Any, **kw: Any) -> Any:
    options = (await post(app, "/auth/passkeys/login/options", client=client)).json()
    assert options["allowCredentials"] == []  # usernameless
    return await post(
        app, "/auth/passkeys/login", {"credential": device.get(options, **kw)}, client=client
    )


@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
async def test_register_then_sign_in_without_a_username(make_app: Apps, strategy: str) -> None:
    app = await make_app(strategy=strategy, users={"alice": []}, **SETTINGS)
    await app.login()
    device = SoftAuthenticator(ORIGIN)
    key = await register(app, device)
    assert key["name"] == "Laptop" and key["synced"] is False
    listed = (await app.client.get("/auth/passkeys")).json()["passkeys"]
    assert [k["id"] for k in listed] == [key["id"]]
    async with app.fresh_client() as browser:
        done = await passkey_login(app, device, browser)
        assert done.status_code == 200, done.text
        assert done.json()["username"] == "alice"
        assert set(done.json()["amr"]) == {"hwk", "mfa"}
        me = await browser.get("/auth/me")
        assert me.status_code == 200 and set(me.json()["amr"]) == {"hwk", "mfa"}


async def test_synced_passkey_is_a_software_key(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, **SETTINGS)
    await app.login()
    device = SoftAuthenticator(ORIGIN, counter_step=0, synced=True)
    assert (await register(app, device))["synced"] is True
    async with app.fresh_client() as browser:
        first = await passkey_login(app, device, browser)
        assert first.status_code == 200 and set(first.json()["amr"]) == {"swk", "mfa"}
        # A counter that stays at 0 is no counter: not a regression.
        assert (await passkey_login(app, device, browser)).status_code == 200


async def test_passkey_as_second_factor(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, **SETTINGS)
    await app.login()
    device = SoftAuthenticator(ORIGIN)
    await register(app, device)
    async with app.fresh_client() as browser:
        step = await password_step(app, client=browser)
        assert step["methods"][0] == "passkey"
        token = step["mfa_token"]
        options = (
            await post(app, "/auth/passkeys/login/options", {"mfa_token": token}, client=browser)
        ).json()
        assert len(options["allowCredentials"]) == 1
        done = await post(
            app,
            "/auth/passkeys/login",
            {"credential": device.get(options), "mfa_token": token},
            client=browser,
        )
        assert done.status_code == 200, done.text
        assert set(done.json()["amr"]) == {"pwd", "hwk", "mfa"}


async def test_passkey_step_up(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, **SETTINGS)
    await app.login()
    device = SoftAuthenticator(ORIGIN)
    await register(app, device)
    app.clock.advance(400)
    assert (await post(app, "/auth/mfa/recovery-codes")).status_code == 401
    options = (await post(app, "/auth/passkeys/reauthenticate/options")).json()
    renewed = await post(app, "/auth/reauthenticate", {"passkey": device.get(options)})
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["auth_time"] == int(app.clock())
    assert (await post(app, "/auth/mfa/recovery-codes")).status_code == 200


async def test_rename_and_remove(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, **SETTINGS)
    await app.login()
    device = SoftAuthenticator(ORIGIN)
    key = await register(app, device)
    headers = {"origin": app.base_url, "sec-fetch-site": "same-origin"}
    renamed = await app.client.post(
        f"/auth/passkeys/{key['id']}/name", json={"name": "Phone"}, headers=headers
    )
    assert renamed.status_code == 204
    assert (await app.client.get("/auth/passkeys")).json()["passkeys"][0]["name"] == "Phone"
    removed = await app.client.delete(f"/auth/passkeys/{key['id']}", headers=headers)
    assert removed.status_code == 204
    assert (await app.client.get("/auth/passkeys")).json()["passkeys"] == []
    async with app.fresh_client() as browser:
        refused = await passkey_login(app, device, browser)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_code"
    missing = await app.client.delete(f"/auth/passkeys/{key['id']}", headers=headers)
    assert missing.status_code == 404


async def test_enrollment_with_a_passkey_at_sign_in(make_app: Apps) -> None:
    app = await make_app(mfa="required", users={"alice": []}, **SETTINGS)
    device = SoftAuthenticator(ORIGIN)
    async with app.fresh_client() as browser:
        step = await password_step(app, client=browser)
        token = step["mfa_token"]
        options = (
            await post(app, "/auth/passkeys/register/options", {"mfa_token": token}, client=browser)
        ).json()
        done = await post(
            app,
            "/auth/passkeys/register",
            {"credential": device.create(options), "mfa_token": token},
            client=browser,
        )
        assert done.status_code == 200, done.text
        assert (await browser.get("/auth/me")).status_code == 200
