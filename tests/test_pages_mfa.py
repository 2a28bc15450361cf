"""The second-factor pages, driven in-process like a browser: the second step of a sign-in,
the enrolment walk-through, the security page, step-up, and an admin's reset."""

from __future__ import annotations

import html
import logging
import re

import httpx
import pyotp
import pytest

from apps import Apps, RunningApp

PASSWORD = "correct horse battery"
BASE = "https://testserver"
SAME_ORIGIN = {"origin": BASE, "sec-fetch-site": "same-origin"}
BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
USERS = {"root": ["admin"], "alice": []}


def field(page: httpx.Response, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert match, f"the page has no {name} field"
    return html.unescape(match.group(1))


def secret_of(page: httpx.Response) -> str:
    match = re.search(r'id="totp-secret">([A-Z2-7]+)<', page.text)
    assert match, "no TOTP key on the page"
    return match.group(1)


def codes_of(page: httpx.Response) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]+)</code></li>", page.text)


async def submit(
    client: httpx.AsyncClient, path: str, page: httpx.Response, **data: str
) -> httpx.Response:
    """Post a form of ``page`` (its CSRF token) as a same-origin browser."""
    return await client.post(
        path, data={"csrf_token": field(page, "csrf_token"), **data}, headers=SAME_ORIGIN
    )


async def sign_in(client: httpx.AsyncClient, username: str = "alice") -> httpx.Response:
    page = await client.get("/login")
    return await submit(client, "/login", page, username=username, password=PASSWORD)


def now_code(app: RunningApp, secret: str) -> str:
    return str(pyotp.TOTP(secret).at(app.clock()))


async def enroll_on_security_page(
    app: RunningApp, client: httpx.AsyncClient
) -> tuple[str, list[str]]:
    security = await client.get("/security")
    assert security.status_code == 200 and "Set up an authenticator app" in security.text
    setup = await submit(client, "/security/totp", security)
    assert setup.status_code == 200 and "<svg" in setup.text
    secret = secret_of(setup)
    done = await submit(
        client, "/security/totp/confirm", setup, code=now_code(app, secret), secret=secret
    )
    assert done.status_code == 200 and "shown only now" in done.text
    app.clock.advance(30)
    return secret, codes_of(done)


@pytest.fixture
async def app(make_app: Apps) -> RunningApp:
    return await make_app("sqlite", users=USERS, password=PASSWORD)


def browser(app: RunningApp) -> httpx.AsyncClient:
    return app.fresh_client(headers=BROWSER)


async def test_sign_in_with_a_code_from_the_app(app: RunningApp) -> None:
    client = browser(app)
    assert (await sign_in(client)).status_code == 303
    secret, codes = await enroll_on_security_page(app, client)
    assert len(codes) == 10
    other = browser(app)
    step = await sign_in(other)
    assert step.status_code == 200 and "Confirm it is you" in step.text
    assert "Use a recovery code" in step.text
    assert "__Host-satchel" not in other.cookies  # no session before the second factor
    wrong = await submit(
        other, "/login/mfa", step, mfa_token=field(step, "mfa_token"), code="000000"
    )
    assert wrong.status_code == 401 and "not valid" in wrong.text
    done = await submit(
        other, "/login/mfa", wrong, mfa_token=field(wrong, "mfa_token"), code=now_code(app, secret)
    )
    assert done.status_code == 303 and done.headers["location"] == "/"
    assert (await other.get("/security")).status_code == 200


async def test_sign_in_with_a_recovery_code(app: RunningApp) -> None:
    client = browser(app)
    await sign_in(client)
    _, codes = await enroll_on_security_page(app, client)
    other = browser(app)
    step = await sign_in(other)
    done = await submit(
        other, "/login/mfa", step, mfa_token=field(step, "mfa_token"), recovery_code=codes[0]
    )
    assert done.status_code == 303
    third = browser(app)
    step = await sign_in(third)
    again = await submit(
        third, "/login/mfa", step, mfa_token=field(step, "mfa_token"), recovery_code=codes[0]
    )
    assert again.status_code == 401


async def test_enrolment_walk_through_at_sign_in(make_app: Apps) -> None:
    app = await make_app("sqlite", users=USERS, password=PASSWORD, mfa="required_for_admins")
    client = browser(app)
    step = await sign_in(client, "root")
    assert step.status_code == 200 and "Set up a second factor" in step.text
    assert "Create a passkey" in step.text
    setup = await submit(
        client, "/login/enroll", step, mfa_token=field(step, "mfa_token"), next="/admin"
    )
    secret = secret_of(setup)
    bad = await submit(
        client,
        "/login/enroll/confirm",
        setup,
        mfa_token=field(setup, "mfa_token"),
        code="000000",
        secret=secret,
        next="/admin",
    )
    assert bad.status_code == 400 and secret_of(bad) == secret
    done = await submit(
        client,
        "/login/enroll/confirm",
        bad,
        mfa_token=field(bad, "mfa_token"),
        code=now_code(app, secret),
        secret=secret,
        next="/admin",
    )
    assert done.status_code == 200 and len(codes_of(done)) == 10
    assert "__Host-satchel" in client.cookies
    assert (await client.get("/admin")).status_code == 200


async def test_stale_session_confirms_before_changing_factors(app: RunningApp) -> None:
    client = browser(app)
    await sign_in(client)
    app.clock.advance(301)
    security = await client.get("/security")
    assert "Confirm it is you to add a passkey" in security.text
    moved = await submit(client, "/security/totp", security)
    assert (
        moved.status_code == 303 and moved.headers["location"] == "/reauthenticate?next=%2Fsecurity"
    )
    page = await client.get(moved.headers["location"])
    assert page.status_code == 200
    wrong = await submit(client, "/reauthenticate", page, password="nope", next="/security")
    assert wrong.status_code == 401
    ok = await submit(client, "/reauthenticate", wrong, password=PASSWORD, next="/security")
    assert ok.status_code == 303 and ok.headers["location"] == "/security"
    security = await client.get("/security")
    assert (await submit(client, "/security/totp", security)).status_code == 200


async def test_password_page_needs_a_fresh_sign_in(app: RunningApp) -> None:
    client = browser(app)
    await sign_in(client)
    app.clock.advance(301)
    page = await client.get("/password")
    assert page.status_code == 303 and page.headers["location"].startswith("/reauthenticate")


async def test_admin_resets_a_users_factors(
    app: RunningApp, caplog: pytest.LogCaptureFixture
) -> None:
    alice = browser(app)
    await sign_in(alice)
    await enroll_on_security_page(app, alice)
    admin = browser(app)
    step = await sign_in(admin, "root")
    assert step.status_code == 303
    admin_page = await admin.get("/admin")
    assert "Reset second factors" in admin_page.text
    caplog.set_level(logging.INFO, logger="satchel.audit")
    user_id = app.users["alice"]
    done = await submit(admin, f"/admin/users/{user_id}/mfa/reset", admin_page)
    assert done.status_code == 303 and "mfa-reset" in done.headers["location"]
    assert any(
        "mfa.reset" in r.getMessage() and f"actor={app.users['root']}" in r.getMessage()
        for r in caplog.records
    )
    # Alice signs in with her password alone again, and her old session has ended.
    assert (await alice.get("/security")).status_code == 303
    assert (await sign_in(browser(app))).status_code == 303


async def test_stale_admin_confirms_first(app: RunningApp) -> None:
    admin = browser(app)
    await sign_in(admin, "root")
    page = await admin.get("/admin")
    app.clock.advance(301)
    moved = await submit(admin, f"/admin/users/{app.users['alice']}/logout", page)
    assert moved.status_code == 303 and moved.headers["location"].startswith("/reauthenticate")


async def test_security_page_lists_and_manages(app: RunningApp) -> None:
    client = browser(app)
    await sign_in(client)
    page = await client.get("/security")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert 'data-passkey="register"' in page.text
    await enroll_on_security_page(app, client)
    page = await client.get("/security")
    assert "Remove authenticator app" in page.text and "10 unused codes" in page.text
    new = await submit(client, "/security/recovery-codes", page)
    assert len(codes_of(new)) == 10
    removed = await submit(client, "/security/totp/remove", page)
    assert removed.status_code == 303
    assert "Set up an authenticator app" in (await client.get("/security")).text
