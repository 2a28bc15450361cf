"""Fixtures of the attack suite: the reference server in-process, per strategy, plus the
hypothesis profiles (short by default, long with ``SATCHEL_FUZZ=long``)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.throttle import LoginThrottle
from satchel.clock import ManualClock
from satchel.config.build import ConfiguredAuth, build_auth
from satchel.config.settings import Settings
from satchel.errors import ConfigurationError
from satchel.server import create_app

settings.register_profile(
    "short", max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile(
    "long", max_examples=5_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("long" if os.environ.get("SATCHEL_FUZZ") == "long" else "short")

PASSWORD = "correct horse battery"
BASE = "https://testserver"
ORIGIN = BASE
COOKIE = "__Host-satchel"
STRATEGIES = ("session", "jwt", "hybrid")


@dataclass
class Server:
    client: httpx.AsyncClient
    auth: ConfiguredAuth
    clock: ManualClock
    strategy: str
    users: dict[str, str] = field(default_factory=dict)  # username -> user id

    def fresh_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """A second browser: same app, separate cookie jar."""
        return httpx.AsyncClient(transport=self.client._transport, base_url=BASE, **kwargs)

    async def cookie_login(
        self, client: httpx.AsyncClient | None = None, username: str = "alice"
    ) -> httpx.Response:
        client = client or self.client
        response = await client.post(
            "/auth/login",
            json={"username": username, "password": PASSWORD},
            headers={"origin": ORIGIN, "sec-fetch-site": "same-origin"},
        )
        assert response.status_code == 200, response.text
        return response

    async def bearer_token(self, username: str = "alice") -> str:
        async with self.fresh_client() as client:
            response = await client.post(
                "/auth/token", data={"username": username, "password": PASSWORD}
            )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token


ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture
async def make_server(tmp_path: Path) -> AsyncIterator[ServerFactory]:
    hasher = PasswordHasher.insecure_fast_for_tests()
    stack: list[tuple[Any, httpx.AsyncClient]] = []

    async def factory(strategy: str = "session", **overrides: Any) -> Server:
        options: dict[str, Any] = {"store": "memory://", "strategy": strategy}
        if strategy != "session":
            options["jwt_alg"] = "ES256"
        options.update(overrides)
        settings_ = Settings(**options)
        clock = ManualClock()
        try:
            auth = await build_auth(settings_, clock=clock, hasher=hasher)
        except ConfigurationError as exc:
            if "not available" in exc.detail:
                pytest.skip(f"{strategy} strategy not wired into build_auth yet: {exc.detail}")
            raise
        if auth.throttle is None:
            auth.throttle = LoginThrottle(clock=clock)
        users = {}
        for name, roles in (("alice", ["admin"]), ("bob", []), ("carol", [])):
            users[name] = (await auth.users.create_user(name, PASSWORD, roles=roles)).id
        app = create_app(settings_, auth=auth)
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE)
        stack.append((lifespan, client))
        return Server(client, auth, clock, strategy, users)

    yield factory
    for lifespan, client in reversed(stack):
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
    hasher.close()


@pytest.fixture(params=STRATEGIES)
def strategy(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
async def server(make_server: ServerFactory, strategy: str) -> Server:
    return await make_server(strategy)


@pytest.fixture
async def session_server(make_server: ServerFactory) -> Server:
    return await make_server("session")


def assert_clean_error(response: httpx.Response, status: int, code: str | None = None) -> None:
    """A short JSON error with the expected status; never a 500, never a trace."""
    assert response.status_code < 500, response.text
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}
    if code is not None:
        assert body["error"] == code, body
    assert "Traceback" not in response.text
    assert len(response.content) < 1000
