"""The Flask integration through Flask's own test client: the shared API flows
(tests/api_flows.py) for the session, jwt and hybrid strategies, the app's own views, and the
same answers as the FastAPI reference server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, request
from flask.testing import FlaskClient

import api_flows
import stepup_flow
from api_flows import BASE, EVIL, ORIGIN, PASSWORD, Reply, assert_error, bearer, login, token
from apps import Apps
from backends import Backends
from satchel.accounts.passwords import PasswordHasher
from satchel.clock import ManualClock
from satchel.config.settings import Settings
from satchel.errors import ConfigurationError
from satchel.integrations.flask import (
    Satchel,
    csrf_exempt,
    current_identity,
    fresh_login_required,
    login_required,
    optional_identity,
    roles_required,
)

STRATEGIES = ("session", "jwt", "hybrid")
HASHER = PasswordHasher.insecure_fast_for_tests()


class FlaskBrowser:
    """One browser: a Flask test client (its own cookie jar) over https."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Reply:
        options: dict[str, Any] = {"headers": dict(headers or {}), "base_url": BASE}
        if json is not None:
            options["json"] = json
        elif data is not None:
            options["data"] = data
        elif content is not None:
            options["data"] = content
        if content_type is not None:
            options["content_type"] = content_type
        # The test client replaces a Cookie header with its jar's; a raw one needs no jar.
        raw_cookie = any(name.lower() == "cookie" for name in options["headers"])
        client = self.app.test_client(use_cookies=False) if raw_cookie else self.client
        response = client.open(path, method=method, **options)
        return Reply(response.status_code, list(response.headers.items()), response.get_data())


def make_app(ext: Satchel) -> Flask:
    app = Flask(__name__)
    ext.init_app(app)

    @app.get("/hello")
    @login_required
    def hello() -> dict[str, str]:
        return {"hello": current_identity.username}

    @app.get("/admin")
    @roles_required("admin")
    def admin() -> dict[str, str]:
        return {"admin": current_identity.username}

    @app.get("/fresh")
    @fresh_login_required()
    def fresh() -> dict[str, str]:
        return {"fresh": current_identity.username}

    @app.get("/fresh-minute")
    @fresh_login_required(max_age=60)
    def fresh_minute() -> dict[str, str]:
        return {"fresh": current_identity.username}

    @app.get("/public")
    def public() -> dict[str, str | None]:
        identity = optional_identity()
        return {"user": identity.username if identity else None}

    @app.post("/notes")
    @login_required
    def notes() -> dict[str, str]:
        return {"note": request.get_json(silent=True) or request.form.get("text", "")}

    @app.post("/webhook")
    @csrf_exempt
    def webhook() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/form")
    def form() -> dict[str, str]:
        return {"csrf_token": ext.csrf_token()}

    return app


@dataclass
class FlaskRig:
    strategy: str
    ext: Satchel
    app: Flask
    clock: ManualClock
    users: dict[str, str] = field(default_factory=dict)

    def client(self) -> FlaskBrowser:
        return FlaskBrowser(self.app)

    def create_user(self, username: str, roles: Sequence[str] = ()) -> str:
        user = self.ext.sync.call(lambda a: a.users.create_user(username, PASSWORD, list(roles)))
        self.users[username] = user.id
        return user.id

    def reauthenticate(self, access_token: str) -> str:
        return stepup_flow.renew(self.ext.sync, access_token)


@pytest.fixture
def make_rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    backends = Backends(request, tmp_path)
    made: list[FlaskRig] = []

    def make(strategy: str = "session", store: str = "memory", **overrides: Any) -> FlaskRig:
        settings = Settings(
            **{**backends.fresh(store).settings(), "strategy": strategy, **overrides}
        )
        clock = ManualClock()
        ext = Satchel(settings=settings, hasher=HASHER, clock=clock)
        rig = FlaskRig(strategy, ext, make_app(ext), clock)
        made.append(rig)
        return rig

    yield make
    for rig in made:
        rig.ext.sync.close()
    asyncio.run(backends.drop())


@pytest.fixture(params=STRATEGIES)
def rig(request: pytest.FixtureRequest, make_rig: Any) -> FlaskRig:
    made: FlaskRig = make_rig(request.param)
    return made


@pytest.mark.parametrize(
    "flow",
    [
        api_flows.cookie_login,
        api_flows.bearer_login,
        api_flows.csrf,
        api_flows.roles,
        api_flows.logout,
        api_flows.revoke_others,
        api_flows.errors,
    ],
    ids=lambda f: f.__name__,
)
def test_flow(rig: FlaskRig, flow: Any) -> None:
    flow(rig)


@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
def test_refresh(make_rig: Any, strategy: str) -> None:
    api_flows.refresh(make_rig(strategy))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_fresh_login_required(make_rig: Any, strategy: str) -> None:
    stepup_flow.step_up(make_rig(strategy, access_ttl=900))


def test_fresh_login_required_follows_the_fresh_age_setting(make_rig: Any) -> None:
    stepup_flow.fresh_age_setting(make_rig("hybrid", fresh_age=120))


def test_fresh_login_required_needs_its_parentheses() -> None:
    with pytest.raises(ConfigurationError, match=r"@fresh_login_required\(\)"):
        fresh_login_required(lambda: None)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="non-negative"):
        fresh_login_required(max_age=-1)


# --- the app's own views -----------------------------------------------------------------------


def test_app_views_are_csrf_checked_on_the_cookie_path(rig: FlaskRig) -> None:
    rig.create_user("alice")
    browser = rig.client()
    login(browser)
    assert_error(
        browser.request("POST", "/notes", data={"text": "x"}, headers=EVIL), 403, "csrf_failed"
    )
    assert_error(browser.request("POST", "/notes", data={"text": "x"}), 403, "csrf_failed")
    assert browser.request("POST", "/notes", json="hi", headers=ORIGIN).json() == {"note": "hi"}
    form_token = browser.request("GET", "/form").json()["csrf_token"]
    reply = browser.request("POST", "/notes", data={"text": "x", "csrf_token": form_token})
    assert reply.json() == {"note": "x"}
    reply = browser.request(
        "POST", "/notes", data={"text": "y"}, headers={"X-CSRF-Token": form_token}
    )
    assert reply.json() == {"note": "y"}
    assert browser.request("POST", "/webhook", data={"a": "b"}, headers=EVIL).json() == {"ok": True}
    # A bearer client is not a browser session: no check.
    access = token(rig.client())["access_token"]
    reply = rig.client().request(
        "POST", "/notes", data={"text": "z"}, headers={**EVIL, **bearer(access)}
    )
    assert reply.json() == {"note": "z"}


def test_csrf_can_be_left_to_the_app(make_rig: Any) -> None:
    made: FlaskRig = make_rig()
    made.ext.csrf = False
    made.create_user("alice")
    browser = made.client()
    login(browser)
    assert browser.request("POST", "/notes", data={"text": "x"}, headers=EVIL).status == 200
    # The /auth/* routes check it themselves all the same.
    assert_error(browser.request("POST", "/auth/logout", data={"a": "b"}, headers=EVIL), 403)


def test_a_stalled_loop_is_503_not_a_logout(make_rig: Any) -> None:
    made: FlaskRig = make_rig("session", cache=False)
    made.create_user("alice")
    browser = made.client()
    login(browser)
    loop = made.ext.sync.runner.loop
    assert loop is not None
    made.ext.sync.call_timeout = 0.3
    loop.call_soon_threadsafe(time.sleep, 1.0)  # a blocking call on the loop
    reply = browser.request("GET", "/hello")
    assert_error(reply, 503, "store_unavailable")
    assert reply.header("retry-after") == "1" and not reply.all("set-cookie")
    time.sleep(1.0)
    assert browser.request("GET", "/hello").status == 200


def test_a_cached_credential_needs_no_loop_hop(rig: FlaskRig) -> None:
    rig.create_user("alice")
    access = token(rig.client())["access_token"]
    client = rig.client()
    assert client.request("GET", "/hello", headers=bearer(access)).status == 200
    runner = rig.ext.sync.runner
    submitted: list[object] = []
    original = runner.submit

    def spy(coro: Any) -> Any:
        submitted.append(coro)
        return original(coro)

    runner.submit = spy  # type: ignore[method-assign]
    for _ in range(20):
        assert client.request("GET", "/hello", headers=bearer(access)).status == 200
    assert submitted == []
    rig.clock.advance(1)  # "valid after" admits a token issued at that very instant
    rig.ext.sync.call(lambda a: a.revoke_user_sessions(rig.users["alice"]))
    assert_error(client.request("GET", "/hello", headers=bearer(access)), 401)


# --- the same answers as the reference server --------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_errors_match_the_fastapi_server(
    make_app: Apps, make_rig: Any, strategy: str
) -> None:
    server = await make_app("memory", strategy=strategy, users={"alice": []}, password=PASSWORD)
    rig: FlaskRig = make_rig(strategy)
    rig.create_user("alice")
    browser = rig.client()
    for method, path, body, ctype, headers, _, _ in api_flows.ERRORS:
        if not path.startswith("/auth/"):
            continue  # the app's own views: the server has none
        sent = {**headers, **({"content-type": ctype} if ctype else {})}
        expected = await server.client.request(method, path, content=body, headers=sent)
        got = await asyncio.to_thread(
            browser.request, method, path, content=body or None, content_type=ctype, headers=headers
        )
        assert got.status == expected.status_code, (method, path, body[:40], got.body)
        assert got.json() == expected.json(), (method, path)
        for name in ("www-authenticate", "cache-control", "retry-after"):
            assert got.header(name) == expected.headers.get(name), (path, name)
