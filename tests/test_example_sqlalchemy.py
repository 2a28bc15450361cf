"""examples/sqlalchemy_users end to end: the application's own SQLAlchemy ``User`` table (integer
ids) behind satchel, on a real SQLite file and on PostgreSQL, with every strategy."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import update

from sqla_example import (
    PASSWORD,
    SAME_ORIGIN,
    Backend,
    RunningApp,
    User,
    open_backend,
    running_app,
    sign_in,
)

NEW_PASSWORD = "violet kettle orbit lantern"
#: Clients and the headers each one's requests need.
Signed = list[tuple[httpx.AsyncClient, dict[str, str]]]
TRANSPORTS = ["cookie", "bearer"]


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, run_id: str
) -> AsyncIterator[Backend]:
    url = request.getfixturevalue("database_url") if request.param == "postgres" else None
    async with open_backend(request.param, tmp_path, database_url=url, run_id=run_id) as opened:
        yield opened


@pytest.fixture(params=["session", "jwt", "hybrid"])
async def app(backend: Backend, request: pytest.FixtureRequest) -> AsyncIterator[RunningApp]:
    async with running_app(backend, strategy=request.param) as running:
        yield running


# --- signing in -----------------------------------------------------------------------------


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_signs_in_with_the_apps_integer_ids(app: RunningApp, transport: str) -> None:
    headers = await sign_in(app.client, transport, "alice")
    who = await app.client.get("/whoami", headers=headers)
    assert who.status_code == 200, who.text
    body = who.json()
    assert body["user_id"] == app.ids["alice"]
    assert body["user_id"].isdigit()  # the row's integer key, as a string
    assert body["username"] == "alice"
    assert body["roles"] == ["admin"]

    # The app reaches its own row from the identity.
    profile = await app.client.get("/profile", headers=headers)
    assert profile.status_code == 200, profile.text
    assert profile.json() == {
        "id": int(app.ids["alice"]),
        "username": "alice",
        "email": "alice@example.com",
        "tenant": 7,
    }
    me = (await app.client.get("/auth/me", headers=headers)).json()
    assert me["user_id"] == app.ids["alice"]
    assert me["transport"] == transport
    assert me["strategy"] == app.auth.strategy.name


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_identity_carries_the_apps_tenant_claim(app: RunningApp, transport: str) -> None:
    headers = await sign_in(app.client, transport, "alice")
    body = (await app.client.get("/whoami", headers=headers)).json()
    assert body["tenant_id"] == 7
    assert body["email"] == "alice@example.com"


# --- disabling ------------------------------------------------------------------------------


async def signed_in_everywhere(app: RunningApp, name: str) -> Signed:
    """``name`` signed in twice, a browser (cookie) and an API client (bearer), each having
    made one request (so every cache of the process holds the credential)."""
    browser = app.browser()
    api = app.browser()
    signed = [
        (browser, await sign_in(browser, "cookie", name)),
        (api, await sign_in(api, "bearer", name)),
    ]
    for client, headers in signed:
        assert (await client.get("/whoami", headers=headers)).status_code == 200
    return signed


async def assert_refused(clients: Signed) -> None:
    for client, headers in clients:
        response = await client.get("/whoami", headers=headers)
        assert response.status_code == 401, response.text
        assert set(response.json()) == {"error", "detail"}


async def test_disable_through_satchel_refuses_the_next_request(app: RunningApp) -> None:
    bob = app.ids["bob"]
    clients = await signed_in_everywhere(app, "bob")
    admin = await sign_in(app.client, "bearer", "alice")
    # Only an admin, and only within the admin's tenant.
    _, bob_headers = clients[1]
    forbidden = await app.client.post(
        f"/admin/users/{app.ids['carol']}/disable", headers=bob_headers
    )
    assert forbidden.status_code == 403
    other_tenant = await app.client.post(f"/admin/users/{app.ids['carol']}/disable", headers=admin)
    assert other_tenant.status_code == 404
    before = (await app.backend.row(bob)).valid_after

    response = await app.client.post(f"/admin/users/{bob}/disable", headers=admin)
    assert response.status_code == 204, response.text

    await assert_refused(clients)
    row = await app.backend.row(bob)
    assert row.is_active is False
    assert row.valid_after > before
    login = await app.client.post(
        "/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
    )
    assert login.status_code == 400
    assert login.json()["error"] == "invalid_grant"
    disabled = [e for e in app.events if e.name == "user.disabled"]
    assert [(e.user_id, e.actor) for e in disabled] == [(bob, app.ids["alice"])]


async def test_the_apps_admin_route_is_csrf_protected(app: RunningApp) -> None:
    await sign_in(app.client, "cookie", "alice")
    forged = await app.client.post(
        f"/admin/users/{app.ids['bob']}/disable",
        headers={"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
    )
    assert forged.status_code == 403
    assert forged.json()["error"] == "csrf_failed"
    assert (await app.backend.row(app.ids["bob"])).is_active is True


async def test_disable_in_the_apps_table_then_revoke(app: RunningApp) -> None:
    bob = app.ids["bob"]
    clients = await signed_in_everywhere(app, "bob")
    # The application's own admin tool writes the row directly ...
    async with app.backend.db.begin() as session:
        await session.execute(update(User).where(User.id == int(bob)).values(is_active=False))
    # ... then tells satchel, which moves valid_after and ends cached sessions and tokens in
    # every process.
    await app.auth.revoke_user_sessions(bob)

    await assert_refused(clients)
    row = await app.backend.row(bob)
    assert row.is_active is False
    assert row.valid_after > 0
    login = await app.client.post(
        "/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
    )
    assert login.status_code == 400
    assert ("revoke", bob) in [(e.name, e.user_id) for e in app.events]


# --- password change ------------------------------------------------------------------------


async def test_password_change_ends_the_other_sessions(app: RunningApp) -> None:
    bob = app.ids["bob"]
    others = await signed_in_everywhere(app, "bob")
    here = app.browser()
    await sign_in(here, "cookie", "bob")
    old_hash = (await app.backend.row(bob)).password_hash

    changed = await here.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=SAME_ORIGIN,
    )
    assert changed.status_code == 200, changed.text

    assert (await here.get("/whoami")).status_code == 200  # the caller got a new cookie
    await assert_refused(others)
    row = await app.backend.row(bob)
    assert row.password_hash != old_hash
    assert row.password_hash.startswith("$argon2id$")
    assert NEW_PASSWORD not in row.password_hash
    old = await app.client.post(
        "/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
    )
    assert old.status_code == 400
    new = await app.client.post(
        "/auth/token", data={"grant_type": "password", "username": "bob", "password": NEW_PASSWORD}
    )
    assert new.status_code == 200
    assert ("password.changed", bob) in [(e.name, e.user_id) for e in app.events]


# --- login protections (independent of the strategy) ----------------------------------------


async def test_thirty_wrong_passwords_reach_429(backend: Backend) -> None:
    async with running_app(backend) as app:
        statuses = []
        for _ in range(30):
            response = await app.client.post(
                "/auth/token",
                data={"grant_type": "password", "username": "alice", "password": "wrong password"},
            )
            statuses.append(response.status_code)
        assert statuses[0] == 400  # invalid_grant
        assert 429 in statuses
        # During the lockout the right password gets the same answer.
        right = await app.client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        )
        assert right.status_code == 429
        assert int(right.headers["retry-after"]) >= 1
        assert "throttled" in app.names()
        assert "login.success" not in app.names()


async def test_unknown_user_wrong_password_and_disabled_look_the_same(backend: Backend) -> None:
    async with running_app(backend) as app:
        await app.auth.set_disabled(app.ids["carol"], True)
        for route in ("/auth/login", "/auth/token"):
            answers = []
            for name, password in (("mallory", PASSWORD), ("alice", "wrong password"),
                                   ("carol", PASSWORD)):  # fmt: skip
                if route == "/auth/login":
                    response = await app.client.post(
                        route, json={"username": name, "password": password}, headers=SAME_ORIGIN
                    )
                else:
                    response = await app.client.post(
                        route, data={"username": name, "password": password}
                    )
                answers.append((response.status_code, response.json()))
            assert answers[0][0] == (401 if route == "/auth/login" else 400)
            assert answers[0] == answers[1] == answers[2]
        failures = [e for e in app.events if e.name == "login.failure"]
        assert {e.username for e in failures} == {"mallory", "alice", "carol"}
        assert all(e.reason == "invalid_login" for e in failures)


async def test_audit_events_name_the_apps_ids(backend: Backend) -> None:
    async with running_app(backend) as app:
        headers = await sign_in(app.client, "bearer", "bob")
        assert (await app.client.post("/auth/logout", headers=headers)).status_code == 204
        success = next(e for e in app.events if e.name == "login.success")
        assert (success.user_id, success.username) == (app.ids["bob"], "bob")
        logout = next(e for e in app.events if e.name == "logout")
        assert logout.user_id == app.ids["bob"]
        assert logout.session == success.session
