"""satchel on Litestar, through Litestar's own test client: logins over cookie and bearer,
CSRF, roles, logout, revoke-others, refresh and the JSON errors, for every strategy."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from litestar import Litestar, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi import OpenAPIConfig
from litestar.testing import AsyncTestClient

import stepup_flow
from api_flows import Reply
from apps import PASSWORD, Apps
from satchel.clock import ManualClock
from satchel.config.build import build_auth
from satchel.identity import Identity
from satchel.integrations.litestar import (
    SatchelAuth,
    login_required,
    require_fresh,
    roles_required,
)

BASE = "https://testserver.local"
SAME_ORIGIN = {"origin": BASE, "sec-fetch-site": "same-origin"}
STRATEGIES = ["session", "jwt", "hybrid"]
ROOT = Path(__file__).resolve().parent.parent


@get("/hello")
async def hello(request: Request[Identity, Any, Any]) -> dict[str, str]:
    return {"hello": request.user.username}


@get("/admin", guards=[roles_required("admin")])
async def admin(identity: NamedDependency[Identity]) -> dict[str, str]:
    return {"admin": identity.username}


@post("/notes", status_code=201)
async def add_note(identity: NamedDependency[Identity]) -> dict[str, str]:
    return {"by": identity.username}


@get("/public/who")
async def who(optional_identity: NamedDependency[Identity | None]) -> dict[str, str | None]:
    return {"who": optional_identity.username if optional_identity else None}


@get("/open", opt={"exclude_from_auth": True})
async def open_route() -> dict[str, bool]:
    return {"open": True}


@get("/members", opt={"exclude_from_auth": True}, guards=[login_required])
async def members(identity: NamedDependency[Identity]) -> dict[str, str]:
    return {"member": identity.username}


@get("/fresh", guards=[require_fresh()])
async def fresh(identity: NamedDependency[Identity]) -> dict[str, str]:
    return {"fresh": identity.username}


@get("/fresh-minute", guards=[require_fresh(max_age=60)])
async def fresh_minute(identity: NamedDependency[Identity]) -> dict[str, str]:
    return {"fresh": identity.username}


@get("/boom")
async def boom() -> None:
    raise RuntimeError("secret detail that must not leak")


ROUTES = [hello, admin, add_note, who, open_route, members, fresh, fresh_minute, boom]


@dataclass
class LitestarApp:
    client: AsyncTestClient[Litestar]
    app: Litestar
    config: SatchelAuth
    clock: ManualClock

    @contextlib.asynccontextmanager
    async def fresh(self) -> AsyncIterator[AsyncTestClient[Litestar]]:
        """A second browser (its own cookie jar) on the running app (its lifespan runs once,
        in the main client)."""
        client = AsyncTestClient(self.app, base_url=BASE)
        # Not entered, which would run the lifespan again: it borrows the running client's
        # portal, so its requests reach the app on the app's own loop.
        client.blocking_portal = self.client.blocking_portal
        yield client

    async def login(self, client: Any = None, username: str = "alice") -> httpx.Response:
        response = await (client or self.client).post(
            "/auth/login", json={"username": username, "password": PASSWORD}, headers=SAME_ORIGIN
        )
        assert response.status_code == 200, response.text
        return response

    async def token(self, username: str = "alice") -> dict[str, Any]:
        async with self.fresh() as client:  # no cookie jar: an API client
            response = await client.post(
                "/auth/token",
                data={"grant_type": "password", "username": username, "password": PASSWORD},
            )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


@contextlib.asynccontextmanager
async def running(app: Litestar) -> AsyncIterator[AsyncTestClient[Litestar]]:
    """Litestar's test client on ``app``, its lifespan running.

    The client runs the app (lifespan and requests) on an event loop of its own, in a
    portal thread: whatever holds connections (the Auth built from settings) must be
    created there, by the lifespan; code of the test reaches it with ``in_app``.
    """
    async with AsyncTestClient(app, base_url=BASE) as client:
        yield client


def in_app(client: AsyncTestClient[Litestar], fn: Any, *args: Any) -> Any:
    """Run ``await fn(*args)`` on the app's own event loop."""
    return client.blocking_portal.call(fn, *args)


@contextlib.asynccontextmanager
async def litestar_app(
    make_app: Apps, store: str = "memory", **overrides: Any
) -> AsyncIterator[LitestarApp]:
    settings = make_app.settings(store, **overrides)
    clock = ManualClock()
    auth = await build_auth(settings, clock=clock, hasher=make_app.hasher)
    await auth.users.create_user("alice", PASSWORD, ["user"])
    await auth.users.create_user("root", PASSWORD, ["admin"])
    config = SatchelAuth(settings=settings, auth=auth, exclude=["^/public"])
    app = Litestar(ROUTES, on_app_init=[config.on_app_init], openapi_config=OpenAPIConfig("t", "1"))
    async with running(app) as client:
        yield LitestarApp(client, app, config, clock)


@pytest.fixture(params=STRATEGIES)
async def ls(request: pytest.FixtureRequest, make_app: Apps) -> AsyncIterator[LitestarApp]:
    async with litestar_app(make_app, strategy=request.param) as running:
        yield running


def assert_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "detail"} and body["error"] == code, body
    return body


async def test_cookie_login_me_and_logout(ls: LitestarApp) -> None:
    assert_error(await ls.client.get("/hello"), 401, "not_authenticated")
    login = await ls.login()
    assert login.headers["cache-control"] == "no-store"
    assert "access_token" not in login.text  # a browser login never sees the credential
    cookie = ls.client.cookies.get("__Host-satchel")
    assert cookie
    assert (await ls.client.get("/hello")).json() == {"hello": "alice"}
    me = (await ls.client.get("/auth/me")).json()
    assert me["username"] == "alice" and me["transport"] == "cookie"
    out = await ls.client.post("/auth/logout", headers=SAME_ORIGIN)
    assert out.status_code == 204
    assert any("Max-Age=0" in c for c in out.headers.get_list("set-cookie"))
    assert_error(await ls.client.get("/hello"), 401, "not_authenticated")
    async with ls.fresh() as replay:  # the old cookie value is refused, not just forgotten
        replayed = await replay.get("/hello", headers={"cookie": f"__Host-satchel={cookie}"})
        assert replayed.status_code == 401


async def test_bearer_login_and_logout(ls: LitestarApp) -> None:
    body = await ls.token()
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    bearer = {"authorization": f"Bearer {body['access_token']}"}
    assert (await ls.client.get("/hello", headers=bearer)).json() == {"hello": "alice"}
    me = (await ls.client.get("/auth/me", headers=bearer)).json()
    assert me["transport"] == "bearer"
    # Bearer requests need no CSRF token, whatever their origin.
    created = await ls.client.post("/notes", headers={**bearer, "origin": "https://evil.example"})
    assert created.status_code == 201
    assert (await ls.client.post("/auth/logout", headers=bearer)).status_code == 204
    refused = await ls.client.get("/hello", headers=bearer)
    assert_error(refused, 401, "invalid_token")
    assert refused.headers["www-authenticate"].startswith("Bearer")


async def test_cross_site_form_post_is_refused(ls: LitestarApp) -> None:
    await ls.login()
    form = {"content-type": "application/x-www-form-urlencoded"}
    assert_error(await ls.client.post("/notes", content=b"x=1", headers=form), 403, "csrf_failed")
    evil = {"origin": "https://evil.example"}
    assert_error(await ls.client.post("/notes", headers=evil), 403, "csrf_failed")
    assert_error(
        await ls.client.post("/auth/logout", content=b"x=1", headers=form), 403, "csrf_failed"
    )
    assert_error(
        await ls.client.post(
            "/auth/sessions/revoke-others", headers={"sec-fetch-site": "cross-site"}
        ),
        403,
        "csrf_failed",
    )
    assert (await ls.client.get("/auth/me")).status_code == 200  # nothing changed
    # The session's own token makes the same form post pass.
    token = (await ls.client.get("/auth/csrf")).json()["csrf_token"]
    done = await ls.client.post("/notes", data={"csrf_token": token})
    assert done.status_code == 201, done.text
    assert (await ls.client.post("/auth/logout", data={"csrf_token": token})).status_code == 204
    assert (await ls.client.get("/auth/me")).status_code == 401


async def test_login_form_needs_its_token(ls: LitestarApp) -> None:
    creds = {"username": "alice", "password": PASSWORD}
    assert_error(await ls.client.post("/auth/login", data=creds), 403, "csrf_failed")
    token = (await ls.client.get("/auth/csrf")).json()["csrf_token"]  # sets the pre-session cookie
    done = await ls.client.post("/auth/login", data={**creds, "csrf_token": token})
    assert done.status_code == 200, done.text


async def test_roles(ls: LitestarApp) -> None:
    assert_error(await ls.client.get("/admin"), 401, "not_authenticated")
    await ls.login()
    assert_error(await ls.client.get("/admin"), 403, "forbidden")
    bearer = {"authorization": f"Bearer {(await ls.token('root'))['access_token']}"}
    async with ls.fresh() as root:
        assert (await root.get("/admin", headers=bearer)).json() == {"admin": "root"}


async def test_revoke_others(ls: LitestarApp) -> None:
    await ls.login()
    async with ls.fresh() as other:
        await ls.login(other)
        bearer = {"authorization": f"Bearer {(await ls.token())['access_token']}"}
        sessions = (await ls.client.get("/auth/sessions")).json()
        assert len(sessions) == 3 and sum(s["current"] for s in sessions) == 1
        ended = await ls.client.post("/auth/sessions/revoke-others", headers=SAME_ORIGIN)
        assert ended.status_code == 200 and ended.json() == {"revoked": 2}
        assert (await other.get("/hello")).status_code == 401
        async with ls.fresh() as api:
            assert (await api.get("/hello", headers=bearer)).status_code == 401
        assert (await ls.client.get("/hello")).status_code == 200
        assert [s["current"] for s in (await ls.client.get("/auth/sessions")).json()] == [True]


async def test_revoke_one_session(ls: LitestarApp) -> None:
    await ls.login()
    async with ls.fresh() as other:
        victim = (await ls.login(other)).json()["session_id"]
        gone = await ls.client.delete(f"/auth/sessions/{victim}", headers=SAME_ORIGIN)
        assert gone.status_code == 204
        assert (await other.get("/auth/me")).status_code == 401
        again = await ls.client.delete(f"/auth/sessions/{victim}", headers=SAME_ORIGIN)
        assert_error(again, 404, "not_found")


async def test_json_errors(ls: LitestarApp) -> None:
    assert_error(await ls.client.get("/nowhere"), 404, "not_found")
    assert_error(await ls.client.put("/auth/me"), 405, "method_not_allowed")
    json_type = {"content-type": "application/json", **SAME_ORIGIN}
    bad = await ls.client.post("/auth/login", content=b"{nope", headers=json_type)
    assert_error(bad, 400, "invalid_request")
    assert_error(
        await ls.client.post("/auth/login", content=b"[1]", headers=json_type),
        400,
        "invalid_request",
    )
    missing = await ls.client.post("/auth/login", json={"username": "alice"}, headers=SAME_ORIGIN)
    assert "password" in assert_error(missing, 422, "invalid_request")["detail"]
    text = {"content-type": "text/plain", **SAME_ORIGIN}
    assert_error(
        await ls.client.post("/auth/login", content=b"hi", headers=text),
        415,
        "unsupported_media_type",
    )
    wrong = {"username": "alice", "password": "not it"}
    assert_error(
        await ls.client.post("/auth/login", json=wrong, headers=SAME_ORIGIN), 401, "invalid_login"
    )
    # The token endpoint answers as RFC 6749 says, as the FastAPI server does (docs/oauth.md).
    for form, code in (
        ({"username": "alice"}, "invalid_request"),
        ({**wrong, "grant_type": "code"}, "unsupported_grant_type"),
        ({**wrong, "grant_type": "password"}, "invalid_grant"),
    ):
        response = await ls.client.post("/auth/token", data=form)
        assert response.status_code == 400, response.text
        assert response.json()["error"] == code and response.json()["error_description"]
    forged = {"authorization": "Bearer not.a.token"}
    assert_error(await ls.client.get("/hello", headers=forged), 401, "invalid_token")
    assert_error(
        await ls.client.post("/auth/refresh", headers=SAME_ORIGIN), 401, "not_authenticated"
    )
    await ls.login()
    pw = await ls.client.post(
        "/auth/password", json={"current_password": PASSWORD, "x": 1}, headers=SAME_ORIGIN
    )
    assert_error(pw, 422, "invalid_request")
    crash = await ls.client.get("/boom")
    assert assert_error(crash, 500, "internal_error")["detail"] == "Internal server error."
    assert "secret detail" not in crash.text


async def test_exclusions_and_optional_identity(ls: LitestarApp) -> None:
    assert (await ls.client.get("/open")).json() == {"open": True}
    assert (await ls.client.get("/public/who")).json() == {"who": None}
    assert_error(await ls.client.get("/members"), 401, "not_authenticated")
    await ls.login()
    assert (await ls.client.get("/public/who")).json() == {"who": "alice"}
    assert (await ls.client.get("/members")).json() == {"member": "alice"}
    assert (await ls.client.get("/healthz")).json() == {"status": "ok"}
    keys = (await ls.client.get("/.well-known/jwks.json")).json()["keys"]
    assert keys if ls.config.running_auth.strategy.name != "session" else keys == []


async def test_password_change_ends_other_credentials(ls: LitestarApp) -> None:
    await ls.login()
    bearer = {"authorization": f"Bearer {(await ls.token())['access_token']}"}
    ls.clock.advance(1)  # a token of the very instant of the change would still count
    new = "a whole new battery staple"
    changed = await ls.client.post(
        "/auth/password",
        json={"current_password": PASSWORD, "new_password": new},
        headers=SAME_ORIGIN,
    )
    assert changed.status_code == 200, changed.text
    assert (await ls.client.get("/hello")).status_code == 200  # the caller got a new cookie
    async with ls.fresh() as api:
        assert (await api.get("/hello", headers=bearer)).status_code == 401


def as_reply(response: httpx.Response) -> Reply:
    return Reply(response.status_code, list(response.headers.multi_items()), response.content)


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_require_fresh(make_app: Apps, strategy: str) -> None:
    async with litestar_app(make_app, strategy=strategy, access_ttl=900) as ls:
        access = (await ls.token())["access_token"]
        await ls.login()  # the cookie browser: ls.client

        async def get(path: str, token: str | None = None) -> Reply:
            headers = {"authorization": f"Bearer {token}"} if token else {}
            async with ls.fresh() as client:
                return as_reply(await client.get(path, headers=headers))

        for path in ("/fresh", "/fresh-minute"):
            assert (await get(path, access)).json() == {"fresh": "alice"}
        assert (await ls.client.get("/fresh")).json() == {"fresh": "alice"}
        ls.clock.advance(61)
        stepup_flow.assert_stale(await get("/fresh-minute", access), 60)
        assert (await get("/fresh", access)).status == 200
        ls.clock.advance(240)
        stepup_flow.assert_stale(await get("/fresh", access), 300)
        stepup_flow.assert_stale(as_reply(await ls.client.get("/fresh")), 300)
        assert (await get("/hello", access)).status == 200
        assert (await ls.client.get("/hello")).status_code == 200

        anonymous, usual = await get("/fresh"), await get("/hello")
        assert anonymous.status == 401 and anonymous.json()["error"] == "not_authenticated"
        assert anonymous.header("www-authenticate") == usual.header("www-authenticate")
        assert "insufficient" not in (anonymous.header("www-authenticate") or "")
        assert (await get("/fresh", "not-a-token")).json()["error"] == "invalid_token"

        auth = ls.config.running_auth
        renewed = in_app(ls.client, stepup_flow.reauthenticate, auth, access)
        for path in ("/fresh", "/fresh-minute"):
            assert (await get(path, renewed)).json() == {"fresh": "alice"}
        if renewed != access:
            stepup_flow.assert_stale(await get("/fresh", access), 300)
        ls.clock.advance(61)
        stepup_flow.assert_stale(await get("/fresh-minute", renewed), 60)


async def test_require_fresh_follows_the_fresh_age_setting(make_app: Apps) -> None:
    async with litestar_app(make_app, strategy="hybrid", fresh_age=120) as ls:
        bearer = {"authorization": f"Bearer {(await ls.token())['access_token']}"}
        ls.clock.advance(100)
        assert (await ls.client.get("/fresh", headers=bearer)).status_code == 200
        stale = as_reply(await ls.client.get("/fresh-minute", headers=bearer))
        stepup_flow.assert_stale(stale, 60)
        ls.clock.advance(21)
        stepup_flow.assert_stale(as_reply(await ls.client.get("/fresh", headers=bearer)), 120)


@pytest.mark.parametrize("strategy", ["jwt", "hybrid"])
async def test_refresh(make_app: Apps, strategy: str) -> None:
    async with litestar_app(make_app, strategy=strategy, access_ttl=60) as ls:
        body = await ls.token()
        ls.clock.advance(100)  # past the access TTL and the jwt leeway
        old = {"authorization": f"Bearer {body['access_token']}"}
        assert_error(await ls.client.get("/hello", headers=old), 401, "token_expired")
        rotated = await ls.client.post(
            "/auth/refresh", json={"refresh_token": body["refresh_token"]}
        )
        assert rotated.status_code == 200, rotated.text
        new = {"authorization": f"Bearer {rotated.json()['access_token']}"}
        assert (await ls.client.get("/hello", headers=new)).status_code == 200
        # The browser's refresh cookie goes to /auth/refresh only; the route rotates it.
        await ls.login()
        ls.clock.advance(100)  # past the access TTL and the jwt leeway
        assert (await ls.client.get("/hello")).status_code == 401
        again = await ls.client.post("/auth/refresh", headers=SAME_ORIGIN)
        assert again.status_code == 200, again.text
        assert (await ls.client.get("/hello")).status_code == 200


async def test_in_place_refresh_when_the_refresh_cookie_goes_everywhere(make_app: Apps) -> None:
    async with litestar_app(make_app, strategy="hybrid", access_ttl=60) as ls:
        await ls.login()
        refresh = ls.client.cookies.get("__Secure-satchel-refresh")
        access = ls.client.cookies.get("__Host-satchel")
        ls.clock.advance(100)  # past the access TTL and the jwt leeway
        async with ls.fresh() as browser:  # as if the refresh cookie's path were "/"
            cookies = f"__Host-satchel={access}; __Secure-satchel-refresh={refresh}"
            response = await browser.get("/hello", headers={"cookie": cookies})
            assert response.status_code == 200, response.text
            assert len(response.headers.get_list("set-cookie")) == 2


async def test_openapi_declares_both_schemes(ls: LitestarApp) -> None:
    schema = (await ls.client.get("/schema/openapi.json")).json()
    schemes = schema["components"]["securitySchemes"]
    assert schemes["SessionCookie"] == {
        "type": "apiKey",
        "name": "__Host-satchel",
        "in": "cookie",
        "description": schemes["SessionCookie"]["description"],
    }
    assert schemes["BearerToken"]["type"] == "http" and schemes["BearerToken"]["scheme"] == "bearer"
    assert {"SessionCookie": []} in schema["security"] and {"BearerToken": []} in schema["security"]
    assert "/auth/login" in schema["paths"] and "/auth/sessions/revoke-others" in schema["paths"]


@pytest.mark.redis
async def test_shared_redis_store(make_app: Apps) -> None:
    """Two apps on one Redis deployment: a logout on one is refused by the other at once."""
    settings = make_app.settings("redis", strategy="hybrid")
    setup = await build_auth(settings, hasher=make_app.hasher)
    await setup.users.create_user("alice", PASSWORD)
    await setup.close()
    one = Litestar([hello], on_app_init=[SatchelAuth(settings=settings).on_app_init])
    two = Litestar([hello], on_app_init=[SatchelAuth(settings=settings).on_app_init])
    async with running(one) as first, running(two) as second:
        issued = await first.post(
            "/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        )
        assert issued.status_code == 200, issued.text
        bearer = {"authorization": f"Bearer {issued.json()['access_token']}"}
        assert (await second.get("/hello", headers=bearer)).json() == {"hello": "alice"}
        assert (await first.post("/auth/logout", headers=bearer)).status_code == 204
        for _ in range(100):  # pushed over the Redis bus, well under a second
            if (await second.get("/hello", headers=bearer)).status_code == 401:
                break
            await asyncio.sleep(0.01)
        assert_error(await second.get("/hello", headers=bearer), 401, "invalid_token")


# --- the README example -----------------------------------------------------------------------

README = (ROOT / "README.md").read_text(encoding="utf-8")


def litestar_example() -> str:
    section = README.split("## In your Litestar app", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match, "README lost its Litestar example"
    return match.group(1)


def test_readme_example_is_at_most_ten_lines() -> None:
    assert len([line for line in litestar_example().splitlines() if line.strip()]) <= 10


async def test_readme_example_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the example's relative SQLite file lands here
    # A real module: Litestar reads handler annotations through the handler's module.
    source = tmp_path / "readme_litestar.py"
    source.write_text(litestar_example(), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("readme_litestar", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "readme_litestar", module)
    spec.loader.exec_module(module)
    app = module.app
    async with running(app) as client:
        users = app.state.satchel_auth.users
        in_app(client, users.create_user, "alice", "correct horse battery")
        assert_error(await client.get("/hello"), 401, "not_authenticated")
        token = await client.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": "alice",
                "password": "correct horse battery",
            },
        )
        assert token.status_code == 200, token.text
        bearer = {"authorization": f"Bearer {token.json()['access_token']}"}
        assert (await client.get("/hello", headers=bearer)).json() == {"hello": "alice"}
    assert (tmp_path / "app.db").exists()


async def test_head_routes_are_not_skipped(make_app: Apps) -> None:
    from litestar import head

    @head("/probe")
    async def probe() -> None:
        return None

    settings = make_app.settings("memory")
    config = SatchelAuth(settings=settings)
    assert config.exclude_http_methods == ["OPTIONS"]
    async with running(Litestar([probe], on_app_init=[config.on_app_init])) as client:
        assert (await client.head("/probe")).status_code == 401
