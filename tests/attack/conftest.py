"""Fixtures of the attack suite: the reference server in-process, per strategy, plus the
hypothesis profiles (short by default, long with ``SATCHEL_FUZZ=long``)."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, settings

from apps import Apps, RunningApp

from .log_guard import log_guard  # noqa: F401 - autouse: every log line checked for secrets

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


#: The reference server in-process; ``users`` holds alice (admin), bob and carol.
Server = RunningApp
ServerFactory = Callable[..., Awaitable[Server]]
USERS = {"alice": ["admin"], "bob": [], "carol": []}


@pytest.fixture
def make_server(make_app: Apps) -> ServerFactory:
    """``await make_server(strategy, **settings)``: memory store, ES256 for signed tokens."""

    async def factory(strategy: str = "session", **overrides: Any) -> Server:
        if strategy != "session":
            overrides.setdefault("jwt_alg", "ES256")
        store = overrides.pop("store", "memory")
        return await make_app(
            store, strategy=strategy, users=USERS, password=PASSWORD, base_url=BASE, **overrides
        )

    return factory


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
    # The OAuth 2.0 token endpoint adds the RFC 6749 error_description (the same text).
    assert set(body) in ({"error", "detail"}, {"error", "error_description", "detail"})
    if code is not None:
        assert body["error"] == code, body
    assert "Traceback" not in response.text
    assert len(response.content) < 1000
