"""Logs, audit events and refresh rotation (R01-R03).

Every log record of every logger is captured at DEBUG through a login, bad logins, a
refresh, a logout, a revoke, a password change and a 1 MB token; none may contain a
password, token, cookie value, session secret or key material.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest

from apps import Apps
from satchel.audit import AuditEvent, AuditLog
from satchel.errors import InvalidCredential
from satchel.strategies.base import LoginContext

from .conftest import COOKIE, ORIGIN, PASSWORD, Server, ServerFactory

SAME = {"origin": ORIGIN, "sec-fetch-site": "same-origin"}


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.lines.append(text + " " + repr(getattr(record, "satchel_event", "")))


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    names = [
        "",
        "satchel",
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "httpx",
        "httpcore",
        "fastapi",
        "starlette",
        "asyncio",
    ]
    saved = {n: logging.getLogger(n).level for n in names}
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


async def test_R03_no_secret_in_any_log_line(server: Server, capture: Capture) -> None:
    events: list[AuditEvent] = []

    async def hook(event: AuditEvent) -> None:
        events.append(event)

    server.auth.audit = AuditLog(hook)
    secrets_seen: list[str] = [PASSWORD, "wrong-password-123", "a brand new passphrase"]

    bad = await server.client.post(
        "/auth/login", json={"username": "alice", "password": "wrong-password-123"}, headers=SAME
    )
    assert bad.status_code == 401
    await server.client.post(
        "/auth/login", json={"username": "nobody\x1b[31m\n", "password": PASSWORD}, headers=SAME
    )
    await server.login()
    cookie = server.client.cookies.get(COOKIE)
    assert cookie
    secrets_seen.append(cookie)
    bearer = await server.bearer_token("bob")
    secrets_seen.append(bearer)
    token_response = await server.fresh_client().post(
        "/auth/token", data={"grant_type": "password", "username": "carol", "password": PASSWORD}
    )
    refresh = token_response.json().get("refresh_token")
    if refresh:
        secrets_seen.append(refresh)
        result = await server.auth.refresh(refresh, LoginContext())
        secrets_seen.append(result.credentials.access_token)
        if result.credentials.refresh_token:
            secrets_seen.append(result.credentials.refresh_token)
    huge = "A" * (1024 * 1024)
    r = await server.client.get(
        "/auth/me", headers={"authorization": f"Bearer {huge}", "cookie": ""}
    )
    assert r.status_code == 401
    changed = await server.client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
        headers=SAME,
    )
    assert changed.status_code == 200
    new_cookie = server.client.cookies.get(COOKIE)
    assert new_cookie
    secrets_seen.append(new_cookie)
    await server.auth.revoke_user_sessions(server.users["bob"], actor=None)
    out = await server.client.post("/auth/logout", headers=SAME)
    assert out.status_code == 204

    # Key material and server secrets.
    keys = server.auth.stores.keys
    for stored in await keys.list_keys():
        secrets_seen.append(
            stored.material.strip().splitlines()[1]
            if "-----" in stored.material
            else stored.material
        )
    for name in ("csrf", "refresh-pepper"):
        value = await keys.get_secret(name)
        if value:
            secrets_seen.append(value.hex())

    assert capture.lines, "nothing was logged at all"
    everything = "\n".join(capture.lines)
    for secret in secrets_seen:
        for piece in {secret, secret[:24], secret.split(".")[-1][:24]}:
            if len(piece) >= 12:
                assert piece not in everything, f"secret leaked ({len(piece)} chars)"
    assert all(len(line) < 2000 for line in capture.lines)
    assert "\x1b" not in everything and "nobody\\x1b" in everything

    names = {event.name for event in events}
    assert {"login.failure", "login.success", "logout", "revoke", "password.changed"} <= names
    if refresh:
        assert "refresh" in names
    assert "invalid_login" in {event.reason for event in events}


async def test_R03_throttled_event(server: Server, capture: Capture) -> None:
    events: list[AuditEvent] = []

    async def hook(event: AuditEvent) -> None:
        events.append(event)

    server.auth.audit = AuditLog(hook)
    for _ in range(21):
        await server.client.post(
            "/auth/login", json={"username": "alice", "password": "nope-nope-1"}, headers=SAME
        )
    assert any(e.name == "throttled" and e.reason == "ip" for e in events)
    assert any("throttled" in line for line in capture.lines)


async def test_R03_disable_and_revoke_events_name_the_actor(server: Server) -> None:
    events: list[AuditEvent] = []

    async def hook(event: AuditEvent) -> None:
        events.append(event)

    server.auth.audit = AuditLog(hook)
    await server.login()
    admin = (await server.client.get("/auth/me")).json()
    from satchel.identity import Identity

    actor = Identity(admin["user_id"], "alice", frozenset({"admin"}), "session", 0, 0)
    await server.auth.set_disabled(server.users["bob"], True, actor=actor)
    await server.auth.revoke_user_sessions(server.users["carol"], actor=actor)
    disabled = next(e for e in events if e.name == "user.disabled")
    assert disabled.actor == admin["user_id"] and disabled.user_id == server.users["bob"]
    revoke = next(e for e in events if e.name == "revoke")
    assert revoke.actor == admin["user_id"]


def test_R03_event_fields_escape_and_bound() -> None:
    event = AuditEvent("login.failure", username="evil\n\x00\u202e" + "x" * 5000)
    fields = event.fields()
    assert "\n" not in fields["username"] and "\x00" not in fields["username"]
    assert len(fields["username"]) < 300


async def test_R01_refresh_rotation_reuse_revokes_family(make_server: ServerFactory) -> None:
    server = await make_server("hybrid")
    events: list[AuditEvent] = []

    async def hook(event: AuditEvent) -> None:
        events.append(event)

    server.auth.audit = AuditLog(hook)
    # The strategy reports theft itself; give it the same log as the facade.
    server.auth.strategy.audit = server.auth.audit  # type: ignore[attr-defined]
    first = await server.auth.login("alice", PASSWORD, LoginContext())
    rt1 = first.credentials.refresh_token
    assert rt1
    second = await server.auth.refresh(rt1, LoginContext())
    rt2 = second.credentials.refresh_token
    assert rt2 and rt2 != rt1
    # A concurrent tab inside the grace window gets the same successor, never a second one.
    twin = await server.auth.refresh(rt1, LoginContext())
    assert twin.credentials.refresh_token == rt2
    grace = float(getattr(server.auth.strategy, "refresh_grace", 10.0))
    server.clock.advance(grace + 1)
    with pytest.raises(InvalidCredential):
        await server.auth.refresh(rt1, LoginContext())  # replay: theft
    with pytest.raises(InvalidCredential):
        await server.auth.refresh(rt2, LoginContext())  # the whole family is dead
    access = second.credentials.access_token
    r = await server.client.get("/auth/me", headers={"authorization": f"Bearer {access}"})
    assert r.status_code == 401
    assert any(e.name == "theft" for e in events)


async def test_R02_revoke_on_one_node_seen_by_another(
    make_server: ServerFactory, make_app: Apps
) -> None:
    # Two servers (two "nodes") over one SQLite file: B caches the session, and A's
    # revocation reaches B through the file's revocations table at B's next poll.
    a = await make_server("session", store="sqlite")
    token = await a.bearer_token()
    sid = token.split(".")[0]
    node_b = await make_app.auth(a.settings.store, strategy="session", clock=a.clock)
    assert (await node_b.strategy.authenticate(token)).user_id == a.users["alice"]
    await node_b.strategy.authenticate(token)  # now from B's cache
    await a.auth.revoke_session(sid)
    with pytest.raises(InvalidCredential):
        for _ in range(200):  # bounded: the bus polls every 50 ms
            await node_b.strategy.authenticate(token)
            await asyncio.sleep(0.01)
