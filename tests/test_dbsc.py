"""Device Bound Session Credentials (W3C draft dbsc-1) end to end: a test client plays the
browser's part (tests/dbsc_client.py) against the reference server, on every store.

Sign-in offers DBSC; registration binds the session to the browser's key and sets the
short-lived bound cookie; once bound, the session cookie alone authenticates nothing; the
refresh answers 403 and a challenge, then renews the bound cookie for a proof signed by the
registered key only. Browsers that never register keep working as before.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from apps import Apps, RunningApp
from dbsc_client import DbscBrowser, SessionKey, challenge_of, registration_of
from mfahelpers import code, enroll_totp, password_step, post
from satchel.dbsc.proof import thumbprint

BOUND = "__Host-satchel-bound"
SESSION = "__Host-satchel"


@pytest.fixture(params=["memory", "sqlite", "redis", "postgres"])
def store(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


async def me(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/auth/me")


def thief(app: RunningApp, victim: httpx.AsyncClient) -> httpx.AsyncClient:
    """Another machine holding only the victim's long-lived session cookie."""
    value = victim.cookies.get(SESSION)
    assert value
    return app.fresh_client(headers={"cookie": f"{SESSION}={value}"})


async def bound_app(make_app: Apps, store: str = "memory", **options: Any) -> RunningApp:
    return await make_app(store, users={"alice": []}, **options)


# --- the whole flow, on every store -----------------------------------------------------------


async def test_sign_in_register_expire_refresh(make_app: Apps, store: str) -> None:
    app = await bound_app(make_app, store)
    signed_in = await app.login()
    offer = registration_of(signed_in)
    assert offer["algorithms"] == ["ES256", "RS256"]
    assert offer["path"] == "/auth/dbsc/register"
    sid = (await me(app.client)).json()["session_id"]

    browser = DbscBrowser(app.client)
    registered = await browser.register(signed_in)
    assert registered.status_code == 200, registered.text
    assert registered.headers["cache-control"] == "no-store"
    assert registered.json() == {
        "session_identifier": sid,
        "refresh_url": "/auth/dbsc/refresh",
        "scope": {
            "include_site": False,
            "origin": "https://testserver",
            "scope_specification": [{"type": "exclude", "domain": "*", "path": "/static"}],
        },
        "credentials": [
            {
                "type": "cookie",
                "name": BOUND,
                "attributes": "Path=/; Secure; HttpOnly; SameSite=Lax",
            }
        ],
        "allowed_refresh_initiators": [],
    }
    set_cookie = registered.headers["set-cookie"]
    assert set_cookie.startswith(f"{BOUND}=") and "Max-Age=600" in set_cookie
    assert (await me(app.client)).status_code == 200

    # The long-lived cookie alone, on another machine, no longer works.
    stolen = await me(thief(app, app.client))
    assert stolen.status_code == 401
    assert stolen.json()["error"] == "device_binding_required"

    # The bound cookie expires (the server's clock); the session needs a refresh.
    app.clock.advance(601)
    expired = await me(app.client)
    assert expired.status_code == 401 and expired.json()["error"] == "device_binding_required"

    asked = await browser.refresh_request()
    assert asked.status_code == 403
    assert asked.json()["error"] == "dbsc_proof_required"
    challenge, named = challenge_of(asked)
    assert named == sid
    proof = browser.proof(challenge, registration=False)
    renewed = await browser.refresh_request(proof)
    assert renewed.status_code == 200, renewed.text
    assert renewed.headers["set-cookie"].startswith(f"{BOUND}=")
    assert renewed.json()["session_identifier"] == sid
    assert (await me(app.client)).status_code == 200

    # The same proof again: its challenge is used up; a new one is offered, no cookie.
    replayed = await browser.refresh_request(proof)
    assert replayed.status_code == 403 and "set-cookie" not in replayed.headers
    assert challenge_of(replayed)[0] != challenge


async def test_the_device_key_is_listed_with_its_session(make_app: Apps) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    assert (await browser.register(await app.login())).status_code == 200
    listed = (await app.client.get("/auth/sessions")).json()
    assert listed[0]["device_key"] == {
        "alg": "ES256",
        "thumbprint": thumbprint(browser.key.jwk()),
        "registered": int(app.clock()),
    }
    page = await app.client.get("/devices", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert thumbprint(browser.key.jwk())[:16] in page.text
    assert "Device-bound" in page.text


# --- refusals ---------------------------------------------------------------------------------


async def test_a_proof_from_another_key_ends_the_session(
    make_app: Apps, caplog: pytest.LogCaptureFixture
) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    await browser.register(await app.login())
    caplog.set_level(logging.INFO, logger="satchel.audit")
    refused = await browser.refresh(key=SessionKey())
    assert refused.status_code == 401 and refused.json()["error"] == "dbsc_wrong_key"
    assert "set-cookie" not in refused.headers
    events = [r.getMessage().split()[0] for r in caplog.records if r.name == "satchel.audit"]
    assert "dbsc.wrong_key" in events and "revoke" in events
    # The session has ended: even the legitimate browser must sign in again.
    assert (await browser.refresh_request()).status_code == 401
    assert (await me(app.client)).status_code == 401


async def test_a_proof_from_another_key_can_be_only_refused(make_app: Apps) -> None:
    app = await bound_app(make_app, dbsc_end_on_wrong_key=False)
    browser = DbscBrowser(app.client)
    await browser.register(await app.login())
    assert (await browser.refresh(key=SessionKey())).status_code == 401
    assert (await browser.refresh()).status_code == 200  # the right key still works
    assert (await me(app.client)).status_code == 200


async def test_an_expired_challenge_is_refused(make_app: Apps) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    await browser.register(await app.login())
    challenge, _ = challenge_of(await browser.refresh_request())
    app.clock.advance(301)  # SATCHEL_DBSC_CHALLENGE_TTL
    late = await browser.refresh_request(browser.proof(challenge, registration=False))
    assert late.status_code == 403 and "set-cookie" not in late.headers


async def test_a_revoked_session_cannot_refresh(make_app: Apps) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    await browser.register(await app.login())
    challenge, _ = challenge_of(await browser.refresh_request())
    sid = browser.session_id
    assert sid is not None
    await app.auth.revoke_session(sid)
    ended = await browser.refresh_request(browser.proof(challenge, registration=False))
    assert ended.status_code == 401 and "set-cookie" not in ended.headers


async def test_signing_out_clears_the_bound_cookie_too(make_app: Apps) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    await browser.register(await app.login())
    assert app.client.cookies.get(BOUND)
    signed_out = await post(app, "/auth/logout")
    assert signed_out.status_code in (200, 204), signed_out.text
    cleared = signed_out.headers.get_list("set-cookie")
    assert any(c.startswith(f"{BOUND}=;") and "Max-Age=0" in c for c in cleared), cleared
    assert not app.client.cookies.get(BOUND)


async def test_a_refresh_proof_must_not_carry_a_key(make_app: Apps) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    await browser.register(await app.login())
    challenge, _ = challenge_of(await browser.refresh_request())
    carried = await browser.refresh_request(browser.proof(challenge, registration=True))
    assert carried.status_code == 400 and carried.json()["error"] == "invalid_dbsc_proof"


@pytest.mark.parametrize(
    ("proof", "code"),
    [
        ({"header": {"typ": "JWT"}}, "invalid_dbsc_proof"),
        ({"header": {"alg": "HS256"}}, "invalid_dbsc_proof"),
        ({"header": {"alg": "none"}}, "invalid_dbsc_proof"),
        ({"header": {"jwk": None}}, "invalid_dbsc_proof"),
        ({"header": {"jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}}, None),
        ({"header": {"alg": "RS256"}}, "invalid_dbsc_proof"),  # an EC key, named RS256
    ],
)
async def test_malformed_registrations_are_refused(
    make_app: Apps, proof: dict[str, Any], code: str | None
) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    refused = await browser.register(await app.login(), **proof)
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == (code or "invalid_dbsc_proof")
    assert "set-cookie" not in refused.headers
    assert (await me(app.client)).status_code == 200  # still an ordinary session


async def test_a_signature_by_another_key_than_the_jwk_is_refused(make_app: Apps) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    offer = registration_of(await app.login())
    other = SessionKey()
    forged = browser.proof(offer["challenge"], registration=True, key=other)
    head, body, signature = forged.split(".")
    honest = browser.proof(offer["challenge"], registration=True)
    swapped = f"{honest.split('.')[0]}.{body}.{signature}"  # the JWK of one, signed by another
    assert head != honest.split(".")[0]
    refused = await app.client.post(offer["path"], headers={"secure-session-response": swapped})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dbsc_proof"


async def test_a_registration_challenge_works_once_and_for_its_own_session(
    make_app: Apps,
) -> None:
    app = await bound_app(make_app)
    first = DbscBrowser(app.client)
    signed_in = await app.login()
    assert (await first.register(signed_in)).status_code == 200
    # Registering again (a new key over the same challenge) is refused: bound once.
    again = await DbscBrowser(app.client).register(signed_in)
    assert again.status_code == 400 and again.json()["error"] == "dbsc_not_registered"

    # Another browser's session cannot use this browser's challenge.
    other_client = app.fresh_client()
    other_login = await app.login(client=other_client)
    mine = registration_of(await app.login(client=app.fresh_client()))
    stolen = DbscBrowser(other_client)
    token = stolen.proof(mine["challenge"], registration=True)
    refused = await other_client.post(mine["path"], headers={"secure-session-response": token})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dbsc_proof"
    # ... and its own challenge still works.
    assert (await stolen.register(other_login)).status_code == 200


async def test_the_refresh_needs_the_session_cookie_and_its_own_id(make_app: Apps) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    await browser.register(await app.login())
    anonymous = await app.fresh_client().post(
        "/auth/dbsc/refresh", headers={"sec-secure-session-id": f'"{browser.session_id}"'}
    )
    assert anonymous.status_code == 401
    other = await app.client.post(
        "/auth/dbsc/refresh", headers={"sec-secure-session-id": '"another-session"'}
    )
    assert other.status_code == 400 and "secure-session-challenge" not in other.headers


async def test_an_unbound_session_has_nothing_to_refresh(make_app: Apps) -> None:
    app = await bound_app(make_app)
    await app.login()
    sid = (await me(app.client)).json()["session_id"]
    answer = await app.client.post("/auth/dbsc/refresh", headers={"sec-secure-session-id": sid})
    assert answer.status_code == 400 and answer.json()["error"] == "dbsc_not_registered"


# --- RS256 and browsers without DBSC -----------------------------------------------------------


async def test_an_rs256_session_key(make_app: Apps) -> None:
    app = await bound_app(make_app, "sqlite")
    browser = DbscBrowser(app.client, key=SessionKey("RS256"))
    assert (await browser.register(await app.login())).status_code == 200
    app.clock.advance(601)
    assert (await me(app.client)).status_code == 401
    assert (await browser.refresh()).status_code == 200
    assert (await me(app.client)).status_code == 200
    # An ES256 key cannot stand in for the registered RS256 one.
    assert (await browser.refresh(key=SessionKey("ES256"))).status_code == 401


async def test_a_browser_without_dbsc_works_as_before(make_app: Apps, store: str) -> None:
    app = await bound_app(make_app, store)
    signed_in = await app.login()
    assert "secure-session-registration" in signed_in.headers  # offered, ignored
    app.clock.advance(601)
    assert (await me(app.client)).status_code == 200  # no bound cookie is ever asked for
    assert (await me(thief(app, app.client))).status_code == 200  # as without DBSC
    listed = (await app.client.get("/auth/sessions")).json()
    assert listed[0]["device_key"] is None


async def test_dbsc_off_offers_nothing_and_serves_no_endpoint(make_app: Apps) -> None:
    app = await bound_app(make_app, dbsc="off")
    signed_in = await app.login()
    assert "secure-session-registration" not in signed_in.headers
    assert app.auth.dbsc is None
    assert (await app.client.post("/auth/dbsc/refresh")).status_code == 404


@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
async def test_signed_token_strategies_are_not_offered_dbsc(make_app: Apps, strategy: str) -> None:
    app = await bound_app(make_app, strategy=strategy)
    assert "secure-session-registration" not in (await app.login()).headers


async def test_the_pages_sign_in_offers_dbsc_and_binds(make_app: Apps) -> None:
    app = await bound_app(make_app)
    client = app.fresh_client()
    page = await client.get("/login")
    token = page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    signed_in = await client.post(
        "/login",
        data={"csrf_token": token, "username": "alice", "password": app.password},
        headers={"origin": app.base_url, "sec-fetch-site": "same-origin"},
    )
    assert signed_in.status_code == 303
    browser = DbscBrowser(client)
    assert (await browser.register(signed_in)).status_code == 200
    assert (await client.get("/devices")).status_code == 200
    app.clock.advance(601)
    # A DBSC browser refreshes before it sends a request that needs the expired cookie.
    assert (await browser.refresh()).status_code == 200
    assert (await client.get("/devices")).status_code == 200
    app.clock.advance(601)
    # Without the refresh the pages send the browser to sign in.
    assert (await client.get("/devices")).status_code in (302, 303)


# --- password change, metrics, other processes -------------------------------------------------


async def test_a_password_change_offers_dbsc_for_the_new_session(make_app: Apps) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    await browser.register(await app.login())
    changed = await app.client.post(
        "/auth/password",
        json={"current_password": app.password, "new_password": "an entirely new passphrase"},
        headers={"origin": app.base_url, "sec-fetch-site": "same-origin"},
    )
    assert changed.status_code == 200, changed.text
    # The old session ended with the password; the new one is unbound until it registers.
    assert (await me(app.client)).status_code == 200
    assert (await DbscBrowser(app.client).register(changed)).status_code == 200


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


async def test_binding_outcomes_and_failures_are_counted(make_app: Apps) -> None:
    token = "m" * 40
    app = await bound_app(make_app, metrics_token=token, dbsc_end_on_wrong_key=False)
    browser = DbscBrowser(app.client)
    bad = await DbscBrowser(app.client).register(await app.login(), header={"typ": "x"})
    assert bad.status_code == 400
    assert (await browser.register(await app.login())).status_code == 200
    app.clock.advance(601)
    assert (await me(app.client)).status_code == 401
    skipped = {"secure-session-skipped": f'unreachable;session_identifier="{browser.session_id}"'}
    assert (await app.client.get("/auth/me", headers=skipped)).status_code == 401
    assert (await browser.refresh(key=SessionKey())).status_code == 401
    assert (await browser.refresh()).status_code == 200
    scraped = await app.client.get("/metrics", headers={"authorization": f"Bearer {token}"})
    found = samples(scraped.text)
    for event in ("registered", "register_failed", "wrong_key", "refreshed"):
        assert found[("satchel_dbsc_events_total", (("event", event),))] == 1, [
            (k, v) for k, v in found.items() if "dbsc" in k[0]
        ]
    assert found[("satchel_dbsc_bound_cookie_rejected_total", (("reason", "missing"),))] == 1
    assert found[("satchel_dbsc_bound_cookie_rejected_total", (("reason", "skipped"),))] == 1


async def test_other_processes_stop_trusting_a_cached_unbound_session(make_app: Apps) -> None:
    """Two server processes over one store and one Redis bus: the one that did not see the
    registration has the session cached as unbound; the binding's event drops it."""
    first = await bound_app(make_app, "redis")
    second = await make_app(
        first.settings.store,
        redis_url=first.settings.redis_url,
        key_prefix=first.settings.key_prefix,
        clock=first.clock,
    )
    assert second.auth.bus is not None and second.auth.bus.covers_all_processes
    signed_in = await first.login()
    stolen = thief(second, first.client)
    assert (await me(stolen)).status_code == 200  # verified, and now cached, in `second`
    assert (await me(stolen)).status_code == 200
    assert (await DbscBrowser(first.client).register(signed_in)).status_code == 200
    for _ in range(200):  # the event crosses Redis pub/sub
        if (await me(stolen)).status_code == 401:
            break
        await asyncio.sleep(0.01)
    assert (await me(stolen)).json()["error"] == "device_binding_required"


@pytest.mark.parametrize(
    "headers",
    [
        [("secure-session-response", "not-a-jwt")],
        [("secure-session-response", '"unterminated')],
        [("secure-session-response", '"a.b.c" trailing')],
        [("secure-session-response", "x" * 9000)],
        [("secure-session-response", '"a.b.c"'), ("secure-session-response", '"a.b.c"')],
        [("secure-session-response", "\u00fc.\u00fc.\u00fc".encode())],
        [("secure-session-response", "e30.e30.AAAA")],  # {} {} : no typ, no alg
    ],
)
async def test_hostile_proofs_get_a_400(
    make_app: Apps, headers: list[tuple[str, str | bytes]]
) -> None:
    app = await bound_app(make_app)
    await app.login()
    for path in ("/auth/dbsc/register", "/auth/dbsc/refresh"):
        answer = await app.client.post(path, headers=httpx.Headers(headers))
        assert 400 <= answer.status_code < 500, answer.text
        assert "set-cookie" not in answer.headers
        assert set(answer.json()) == {"error", "detail"}


async def test_a_weak_rsa_key_is_refused(make_app: Apps) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    app = await bound_app(make_app)
    weak = SessionKey("RS256", rsa.generate_private_key(public_exponent=65537, key_size=1024))
    refused = await DbscBrowser(app.client, key=weak).register(await app.login())
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dbsc_proof"


async def test_a_private_jwk_is_refused(make_app: Apps) -> None:
    app = await bound_app(make_app)
    browser = DbscBrowser(app.client)
    leaky = {**browser.key.jwk(), "d": "AAAA"}
    refused = await browser.register(await app.login(), header={"jwk": leaky})
    assert refused.status_code == 400 and refused.json()["error"] == "invalid_dbsc_proof"


async def test_a_sign_in_with_a_second_factor_offers_dbsc(make_app: Apps) -> None:
    app = await bound_app(make_app)
    await app.login()
    secret, _ = await enroll_totp(app)
    other = app.fresh_client()
    step = await password_step(app, client=other)  # no session yet, so no offer
    done = await post(
        app,
        "/auth/mfa/verify",
        {"mfa_token": step["mfa_token"], "code": code(app, secret)},
        client=other,
    )
    assert done.status_code == 200, done.text
    browser = DbscBrowser(other)
    assert (await browser.register(done)).status_code == 200
    assert (await me(thief(app, other))).json()["error"] == "device_binding_required"


def test_the_bound_cookie_fits_one_session_one_key_until_it_expires() -> None:
    from satchel.dbsc.cookie import BoundCookie
    from satchel.transports.cookie import CookieTransport

    cookie = BoundCookie(CookieTransport(), b"k" * 32, 600)
    _, set_cookie = cookie.set_cookie("sid-a", "jkt-a", 1000.0)
    headers = [(b"cookie", set_cookie.split(";")[0].encode())]
    for _ in range(2):  # the second round is answered from the memo of checked values
        assert cookie.valid(headers, "sid-a", "jkt-a", 1599.0)
        assert not cookie.valid(headers, "sid-b", "jkt-a", 1599.0)
        assert not cookie.valid(headers, "sid-a", "jkt-b", 1599.0)
        assert not cookie.valid(headers, "sid-a", "jkt-a", 1600.0)
    other = BoundCookie(CookieTransport(), b"o" * 32, 600)  # another deployment's secret
    assert not other.valid(headers, "sid-a", "jkt-a", 1599.0)
