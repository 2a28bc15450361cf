"""Logs: JSON lines that parse, request ids taken or made and echoed, every audit event and
every error path logged without a secret, and the scrubber behind all of it."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from apps import Apps
from dbsc_client import DbscBrowser, SessionKey
from procs import PrivateRedis, SatchelServer, TcpProxy, satchel_cli
from satchel.audit import AuditEvent
from satchel.ops.logging import JsonFormatter, TextFormatter, scrub
from satchel.strategies.base import LoginContext

SRC = Path(__file__).resolve().parent.parent / "src" / "satchel"
DBSC = "dbsc."
PASSWORD = "correct horse battery"
NEW_PASSWORD = "a different long passphrase"


class Capture(logging.Handler):
    """Every record at DEBUG: its raw text and its JSON line."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.raw: list[str] = []
        self.lines: list[str] = []
        self.json = JsonFormatter()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(("httpx", "httpcore")):
            return  # the test's client, not the server
        text = record.getMessage() + " " + repr(getattr(record, "satchel_event", ""))
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        self.raw.append(text)
        self.lines.append(self.json.format(record))

    def parsed(self) -> list[dict[str, object]]:
        return [json.loads(line) for line in self.lines]

    def assert_clean(self, secrets: list[str]) -> None:
        assert self.lines, "nothing was logged"
        for line in self.lines:
            data = json.loads(line)
            assert {"time", "level", "event", "logger", "message"} <= set(data)
            assert "\n" not in line
        everything = "\n".join(self.raw + self.lines)
        for secret in secrets:
            assert secret and secret not in everything, f"a {len(secret)}-char secret leaked"


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    saved = root.level
    root.setLevel(logging.DEBUG)
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)


def audit_event_names() -> set[str]:
    """Every audit event name the source can emit (the ``AuditEvent("...")`` literals)."""
    names: set[str] = set()
    pattern = re.compile(r'AuditEvent\(\s*("[\w.]+"(?:\s+if\s+\w+\s+else\s+"[\w.]+")?)')
    for path in SRC.rglob("*.py"):
        for match in pattern.finditer(path.read_text()):
            names.update(re.findall(r'"([\w.]+)"', match.group(1)))
    return names


async def test_every_audit_event_is_a_json_line_without_secrets(
    make_app: Apps, capture: Capture
) -> None:
    app = await make_app(
        "memory",
        strategy="hybrid",
        jwt_alg="ES256",
        log_format="json",
        refresh_grace=0,
        login_account_limit=2,
        users={"alice": ["admin"], "bob": [], "carol": [], "dave": []},
        password=PASSWORD,
    )
    auth, client = app.auth, app.client
    secrets: list[str] = [PASSWORD, NEW_PASSWORD, "wrong password 1"]

    async def token(username: str) -> dict[str, str]:
        response = await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": username, "password": PASSWORD},
            headers={"x-request-id": "req-login-1"},
        )
        assert response.status_code == 200, response.text
        assert response.headers["x-request-id"] == "req-login-1"
        body: dict[str, str] = response.json()
        secrets.extend([body["access_token"], body["refresh_token"]])
        return body

    first = await token("alice")
    unproven = await client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        headers={"dpop": "not.a.proof"},
    )
    assert unproven.status_code == 400 and unproven.json()["error"] == "invalid_dpop_proof"
    for _ in range(3):  # two failures, then throttled
        await client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "bob", "password": "wrong password 1"},
        )
    rotated = await client.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert rotated.status_code == 200
    secrets.extend(rotated.json()[k] for k in ("access_token", "refresh_token"))
    app.clock.advance(1)  # past the (zero) grace window
    reused = await client.post("/auth/refresh", data={"refresh_token": first["refresh_token"]})
    assert reused.status_code == 401  # theft: the family ends

    second, third = await token("alice"), await token("alice")
    bearer = {"authorization": f"Bearer {second['access_token']}"}
    await client.post("/auth/sessions/revoke-others", headers=bearer)
    await client.post("/auth/logout", headers=bearer)
    carol = await token("carol")
    carol_auth = {"authorization": f"Bearer {carol['access_token']}"}
    wrong = await client.post(
        "/auth/password",
        json={"current_password": "wrong password 1", "new_password": NEW_PASSWORD},
        headers=carol_auth,
    )
    assert wrong.status_code == 401
    changed = await client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        headers=carol_auth,
    )
    assert changed.status_code == 200
    secrets.append(changed.json()["access_token"])
    result = await auth.login("dave", PASSWORD, LoginContext())
    secrets.append(result.credentials.access_token)
    await auth.revoke_session(result.identity.session_id or "", user_id=app.users["dave"])
    await auth.revoke_user_sessions(app.users["alice"])
    await auth.set_roles(app.users["bob"], ["auditor"])
    await auth.set_disabled(app.users["bob"], True)
    await auth.set_disabled(app.users["bob"], False)
    del third

    records = capture.parsed()
    seen = {str(r["event"]) for r in records if r["logger"] == "satchel.audit"}
    # Device binding needs the session strategy: the DBSC test below drives those.
    expected = {name for name in audit_event_names() if not name.startswith(DBSC)}
    assert expected, "no audit event found in the source"
    assert expected <= seen, f"not driven by this test: {sorted(expected - seen)}"
    login = next(r for r in records if r["event"] == "login.success")
    assert login["request_id"] == "req-login-1"
    assert login["username"] == "alice" and login["level"] == "info"
    assert {"user_id", "session", "ip"} <= set(login)
    capture.assert_clean(secrets)


async def test_every_device_binding_event_is_a_json_line_without_secrets(
    make_app: Apps, capture: Capture
) -> None:
    app = await make_app("memory", log_format="json", users={"alice": []}, password=PASSWORD)
    browser = DbscBrowser(app.client)
    signed_in = await app.login()
    json_only = {"accept": "application/json"}
    unanswered = await app.client.post("/auth/dbsc/register", headers=json_only)
    assert unanswered.status_code == 400
    assert (await browser.register(signed_in)).status_code == 200
    assert (await browser.refresh_request("not.a.proof")).status_code in (400, 403)
    assert (await browser.refresh()).status_code == 200
    stolen = await browser.refresh(key=SessionKey())  # another key: the session ends
    assert stolen.status_code == 401
    records = capture.parsed()
    seen = {str(r["event"]) for r in records if r["logger"] == "satchel.audit"}
    expected = {name for name in audit_event_names() if name.startswith(DBSC)}
    assert expected, "no device-binding audit event found in the source"
    assert expected <= seen, f"not driven by this test: {sorted(expected - seen)}"
    secrets = [PASSWORD, *(value for value in app.client.cookies.values() if len(value) > 8)]
    capture.assert_clean(secrets)


@pytest.fixture
def redis_behind_proxy() -> Iterator[tuple[PrivateRedis, TcpProxy]]:
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis()
    redis.start()
    proxy = TcpProxy("127.0.0.1", redis.port).start()
    try:
        yield redis, proxy
    finally:
        proxy.close()
        redis.stop()


async def test_error_paths_log_no_secret(
    make_app: Apps, capture: Capture, redis_behind_proxy: tuple[PrivateRedis, TcpProxy]
) -> None:
    _redis, proxy = redis_behind_proxy
    app = await make_app(
        f"redis://127.0.0.1:{proxy.port}/0",
        strategy="session",
        cache=False,
        store_timeout=0.3,
        users={"alice": []},
        password=PASSWORD,
    )
    token = await app.bearer_token("alice")
    bearer = {"authorization": f"Bearer {token}"}

    async def hook(event: AuditEvent) -> None:  # an application hook that fails badly
        raise RuntimeError(f"could not forward {event.name} for token {token}")

    app.auth.audit.hook = hook
    other = await app.auth.login("alice", PASSWORD, LoginContext())  # the hook fails: logged
    secrets = [PASSWORD, token, token.split(".")[1], other.credentials.access_token]

    proxy.blackhole()  # a silent network: the deadline cuts the call
    assert (await app.client.get("/auth/me", headers=bearer)).status_code == 503
    proxy.cut()  # a stopped server: connection refused
    assert (await app.client.get("/auth/me", headers=bearer)).status_code == 503
    assert (await app.client.post("/auth/logout", headers=bearer)).status_code == 503
    proxy.restore()

    messages = " ".join(str(r["message"]) for r in capture.parsed())
    assert "store call exceeded" in messages  # the deadline path
    assert "store unavailable while verifying" in messages
    failed = next(r for r in capture.parsed() if "audit hook failed" in str(r["message"]))
    assert failed["level"] == "error" and failed["error"] == "RuntimeError"
    # The hook's own message held the token: the JSON line scrubbed it (raw text aside).
    assert token not in json.dumps(failed)
    raw_hook = [line for line in capture.raw if "could not forward" in line]
    capture.raw = [line for line in capture.raw if line not in raw_hook]
    capture.assert_clean(secrets)


def test_json_lines_of_a_real_server(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'satchel.db'}"
    added = satchel_cli(
        ["users", "add", "alice", "--password-stdin", "--store", store], {}, PASSWORD + "\n"
    )
    assert added.returncode == 0, added.stderr
    server = SatchelServer(
        {
            "SATCHEL_STORE": store,
            "SATCHEL_LOG_FORMAT": "json",
            "SATCHEL_LOG_LEVEL": "info",
            "SATCHEL_ACCESS_LOG": "true",  # off by default
        },
        "json-logs",
    ).start()
    try:
        server.wait_ready()
        login = httpx.post(
            f"{server.url}/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
            headers={"x-request-id": "from-the-proxy-42"},
            timeout=10,
        )
        assert login.headers["x-request-id"] == "from-the-proxy-42"
        token = login.json()["access_token"]
        odd = httpx.get(f"{server.url}/auth/me?access_token={token}", timeout=5)
        assert odd.status_code == 401 and re.fullmatch(r"[0-9a-f]{16}", odd.headers["x-request-id"])
        forged = httpx.get(
            f"{server.url}/healthz", headers={"x-request-id": "a b\tc" + "x" * 200}, timeout=5
        )
        assert re.fullmatch(r"[0-9a-f]{16}", forged.headers["x-request-id"])
        httpx.post(
            f"{server.url}/auth/token",
            data={"grant_type": "password", "username": "alice", "password": "nope"},
        )
    finally:
        text = server.log()
        server.stop()
    lines = [line for line in text.splitlines() if line.startswith("{")]
    banner = [line for line in text.splitlines() if not line.startswith("{")]
    assert all(not line or line.startswith(("satchel ", "  ")) for line in banner), banner
    records = [json.loads(line) for line in lines]
    assert all({"time", "level", "event", "message"} <= set(r) for r in records)
    audit = next(r for r in records if r["event"] == "login.success")
    assert audit["request_id"] == "from-the-proxy-42"
    access = [r for r in records if r["event"] == "http.request"]
    assert any(r["request_id"] == "from-the-proxy-42" and r["status"] == 200 for r in access)
    assert any(r["path"] == "/auth/me?…" for r in access)  # the query string is cut
    assert any(r["event"] == "login.failure" for r in records)
    assert token not in text and token.split(".")[1] not in text and PASSWORD not in text


def test_scrub_removes_credential_shapes() -> None:
    jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2lnbmF0dXJl"
    session = "A" * 22 + "." + "b" * 43
    text = scrub(
        f"t={jwt} s={session} url=redis://:hunter22@db:6379/0 Authorization: Bearer abc.def "
        "cookie __Host-satchel=xyz; satchel_refresh=qqq "
        "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----"
    )
    for secret in (jwt, "b" * 43, "hunter22", "abc.def", "xyz", "qqq", "MIIB"):
        assert secret not in text
    assert "redis://:***@db:6379/0" in text and "[jwt]" in text and "[private key]" in text
    assert scrub("user_id=R6pSXJyyggcnj6e7 session=ljhOOsSAyeeBXGDk1tr1gA") == (
        "user_id=R6pSXJyyggcnj6e7 session=ljhOOsSAyeeBXGDk1tr1gA"
    )  # ids are not secrets


def test_text_lines_stay_one_line() -> None:
    record = logging.LogRecord(
        "satchel.x", logging.WARNING, __file__, 1, "a\nforged line", (), None
    )
    line = TextFormatter().format(record)
    assert "\n" not in line and "a\\n forged line" in line and " warning satchel.x: " in line
    as_json = json.loads(JsonFormatter().format(record))
    assert as_json["message"] == "a\nforged line" and as_json["level"] == "warning"


async def test_request_ids_come_with_json_logs_only(make_app: Apps) -> None:
    text = await make_app("memory")
    assert "x-request-id" not in (await text.client.get("/healthz")).headers
    json_app = await make_app("memory", log_format="json")
    kept = await json_app.client.get("/healthz", headers={"x-request-id": "lb-7f3a:1"})
    assert kept.headers["x-request-id"] == "lb-7f3a:1"
    made = [(await json_app.client.get("/healthz")).headers["x-request-id"] for _ in range(3)]
    assert len(set(made)) == 3 and all(re.fullmatch(r"[0-9a-f]{16}", m) for m in made)
    too_long = await json_app.client.get("/healthz", headers={"x-request-id": "x" * 129})
    assert too_long.headers["x-request-id"] != "x" * 129
