"""Attacks on passkeys: a replayed or another account's challenge, an assertion made for
another origin or RP ID, a cloned authenticator (sign-count regression), removal without a
fresh login."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from apps import Apps, RunningApp
from mfahelpers import password_step, post
from softauthn import Credential, SoftAuthenticator

ORIGIN = "https://testserver"
SETTINGS: dict[str, Any] = {"webauthn_rp_id": "testserver", "webauthn_origins": ORIGIN}


async def setup(make_app: Apps) -> tuple[RunningApp, SoftAuthenticator]:
    app = await make_app(users={"alice": [], "mallory": []}, **SETTINGS)
    await app.login()
    device = SoftAuthenticator(ORIGIN)
    options = (await post(app, "/auth/passkeys/register/options")).json()
    assert (
        await post(app, "/auth/passkeys/register", {"credential": device.create(options)})
    ).status_code == 201
    return app, device


async def login_options(app: RunningApp, client: Any) -> dict[str, Any]:
    result: dict[str, Any] = (await post(app, "/auth/passkeys/login/options", client=client)).json()
    return result


async def test_a_challenge_answers_once(make_app: Apps) -> None:
    app, device = await setup(make_app)
    async with app.fresh_client() as browser:
        options = await login_options(app, browser)
        assertion = device.get(options)
        assert (
            await post(app, "/auth/passkeys/login", {"credential": assertion}, client=browser)
        ).status_code == 200
        replay = await post(app, "/auth/passkeys/login", {"credential": assertion}, client=browser)
        assert replay.status_code == 401 and "challenge" in replay.json()["detail"]
        # A fresh signature over the used challenge is refused too.
        again = await post(
            app, "/auth/passkeys/login", {"credential": device.get(options)}, client=browser
        )
        assert again.status_code == 401


async def test_a_challenge_expires_after_five_minutes(make_app: Apps) -> None:
    app, device = await setup(make_app)
    async with app.fresh_client() as browser:
        options = await login_options(app, browser)
        app.clock.advance(301)
        late = await post(
            app, "/auth/passkeys/login", {"credential": device.get(options)}, client=browser
        )
        assert late.status_code == 401


async def test_a_made_up_challenge_is_refused(make_app: Apps) -> None:
    app, device = await setup(make_app)
    async with app.fresh_client() as browser:
        forged = {"challenge": "A" * 43}
        refused = await post(
            app, "/auth/passkeys/login", {"credential": device.get(forged)}, client=browser
        )
        assert refused.status_code == 401


async def test_another_accounts_registration_challenge_is_refused(make_app: Apps) -> None:
    app, device = await setup(make_app)
    async with app.fresh_client() as mallory:
        await app.login("mallory", client=mallory)
        theirs = (await post(app, "/auth/passkeys/register/options", client=mallory)).json()
        # Alice's session answers Mallory's challenge (a credential bound to Mallory's handle).
        stolen = await post(app, "/auth/passkeys/register", {"credential": device.create(theirs)})
        assert stolen.status_code == 401 and "another account" in stolen.json()["detail"]


async def test_a_second_factor_challenge_of_another_sign_in_is_refused(make_app: Apps) -> None:
    app, device = await setup(make_app)
    async with app.fresh_client() as one, app.fresh_client() as two:
        first = (await password_step(app, client=one))["mfa_token"]
        second = (await password_step(app, client=two))["mfa_token"]
        options = (
            await post(app, "/auth/passkeys/login/options", {"mfa_token": first}, client=one)
        ).json()
        crossed = await post(
            app,
            "/auth/passkeys/login",
            {"credential": device.get(options), "mfa_token": second},
            client=two,
        )
        assert crossed.status_code == 401
        # Nor is a usernameless challenge a second factor.
        plain = await login_options(app, two)
        mixed = await post(
            app,
            "/auth/passkeys/login",
            {"credential": device.get(plain), "mfa_token": second},
            client=two,
        )
        assert mixed.status_code == 401


async def test_an_assertion_for_another_origin_is_refused(make_app: Apps) -> None:
    app, device = await setup(make_app)
    async with app.fresh_client() as browser:
        options = await login_options(app, browser)
        phished = device.get(options, origin="https://testserver.evil.example")
        refused = await post(app, "/auth/passkeys/login", {"credential": phished}, client=browser)
        assert refused.status_code == 401 and refused.json()["error"] == "invalid_code"


async def test_an_assertion_for_another_rp_id_is_refused(make_app: Apps) -> None:
    app, device = await setup(make_app)
    async with app.fresh_client() as browser:
        options = await login_options(app, browser)
        other = device.get(options, rp_id="evil.example")
        refused = await post(app, "/auth/passkeys/login", {"credential": other}, client=browser)
        assert refused.status_code == 401


async def test_a_registration_for_another_origin_is_refused(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, **SETTINGS)
    await app.login()
    device = SoftAuthenticator(ORIGIN)
    options = (await post(app, "/auth/passkeys/register/options")).json()
    bad = device.create(options, origin="https://evil.example")
    assert (await post(app, "/auth/passkeys/register", {"credential": bad})).status_code == 401
    options = (await post(app, "/auth/passkeys/register/options")).json()
    bad = device.create(options, rp_id="evil.example")
    assert (await post(app, "/auth/passkeys/register", {"credential": bad})).status_code == 401
    assert (await app.client.get("/auth/passkeys")).json()["passkeys"] == []


async def test_sign_count_regression_flags_the_passkey(make_app: Apps) -> None:
    app, device = await setup(make_app)
    async with app.fresh_client() as browser:
        for _ in range(3):
            ok = await post(
                app,
                "/auth/passkeys/login",
                {"credential": device.get(await login_options(app, browser))},
                client=browser,
            )
            assert ok.status_code == 200
        # A clone of the authenticator, with the counter it had at the first sign-in.
        clone = device.get(await login_options(app, browser), counter=1)
        refused = await post(app, "/auth/passkeys/login", {"credential": clone}, client=browser)
        assert refused.status_code == 401 and "counter" in refused.json()["detail"]
        # Flagged: even the genuine device is refused until the user removes the passkey.
        genuine = device.get(await login_options(app, browser))
        assert (
            await post(app, "/auth/passkeys/login", {"credential": genuine}, client=browser)
        ).status_code == 401
    assert (await app.client.get("/auth/passkeys")).json()["passkeys"][0]["flagged"] is True


async def test_a_forged_signature_does_not_flag(make_app: Apps) -> None:
    app, device = await setup(make_app)
    async with app.fresh_client() as browser:
        # Same credential id and user handle, another key: a signature the server cannot
        # verify, with a counter that would look like a regression.
        real = device.credentials[0]
        impostor = Credential(
            real.credential_id,
            ec.generate_private_key(ec.SECP256R1()),
            real.rp_id,
            real.user_handle,
        )
        forged = device.get(await login_options(app, browser), credential=impostor, counter=0)
        assert (
            await post(app, "/auth/passkeys/login", {"credential": forged}, client=browser)
        ).status_code == 401
        good = device.get(await login_options(app, browser))
        assert (
            await post(app, "/auth/passkeys/login", {"credential": good}, client=browser)
        ).status_code == 200


async def test_passkey_removal_needs_a_fresh_login(make_app: Apps) -> None:
    app, _ = await setup(make_app)
    key = (await app.client.get("/auth/passkeys")).json()["passkeys"][0]["id"]
    app.clock.advance(301)
    headers = {"origin": app.base_url, "sec-fetch-site": "same-origin"}
    refused = await app.client.delete(f"/auth/passkeys/{key}", headers=headers)
    assert refused.status_code == 401 and refused.json()["error"] == "reauthentication_required"
    assert len((await app.client.get("/auth/passkeys")).json()["passkeys"]) == 1
    # Adding one needs a fresh login too.
    assert (await post(app, "/auth/passkeys/register/options")).status_code == 401
