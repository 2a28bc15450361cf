"""Fail-closed behaviour when a store or the revocation feed fails (checklist F01–F07, F10).

The server app runs in-process (httpx ASGITransport) on a real backend reached through a
cuttable proxy, or on a private redis-server: the machine's shared services are never
stopped. ``cut`` resets connections (a stopped server), ``blackhole`` swallows traffic
(a dead network: only time-outs can tell).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from apps import Apps, RunningApp
from procs import PrivateRedis, TcpProxy
from satchel.clock import system_clock
from satchel.config.build import ConfiguredAuth
from satchel.strategies.base import LoginContext

PASSWORD = "correct horse battery staple 1"
USER = "bob"


@dataclass
class Rig:
    app: RunningApp
    proxy: TcpProxy | None

    @property
    def auth(self) -> ConfiguredAuth:
        assert isinstance(self.app.auth, ConfiguredAuth)
        return self.app.auth

    @property
    def client(self) -> httpx.AsyncClient:
        return self.app.client

    async def token(self) -> str:
        result = await self.auth.login(USER, PASSWORD, LoginContext())
        return result.credentials.access_token

    async def me(self, token: str, *, cookie: bool = False) -> httpx.Response:
        if cookie:
            name = self.auth.transport_by_name["cookie"].cookie_name  # type: ignore[attr-defined]
            return await self.client.get("/auth/me", headers={"Cookie": f"{name}={token}"})
        return await self.client.get("/auth/me", headers={"Authorization": f"Bearer {token}"})

    async def logout(self, token: str) -> httpx.Response:
        return await self.client.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})

    async def login_http(self) -> httpx.Response:
        return await self.client.post(
            "/auth/token", data={"grant_type": "password", "username": USER, "password": PASSWORD}
        )


async def until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(0.005)


def assert_fail_closed(response: httpx.Response) -> None:
    """F01: 503 with Retry-After and the usual JSON error; no cookie change, no credential."""
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    assert "set-cookie" not in response.headers
    body = response.json()
    assert body["error"] == "store_unavailable"
    assert "access_token" not in body
    assert "Traceback" not in response.text


def _hostport(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port


async def make_rig(
    make_app: Apps, store: str, proxy: TcpProxy | None = None, **settings: Any
) -> Rig:
    """The server on ``store`` (a kind or a URL), reached through ``proxy`` when given."""
    app = await make_app(
        store,
        store_address=("127.0.0.1", proxy.port) if proxy is not None else None,
        clock=system_clock,  # bus health and store deadlines run on real time
        users={USER: []},
        password=PASSWORD,
        base_url="http://t",
        **settings,
    )
    return Rig(app, proxy)


async def close_rig(rig: Rig) -> None:
    if rig.proxy is not None:
        rig.proxy.restore()
    await rig.app.aclose()


@pytest.fixture
async def redis_rig(redis_url: str, make_app: Apps) -> AsyncIterator[Rig]:
    """Users, keys and sessions in the shared Redis, reached through a proxy; Redis bus."""
    proxy = TcpProxy(*_hostport(redis_url)).start()
    rig = await make_rig(
        make_app,
        "redis",
        proxy,
        transports=["cookie", "bearer"],
        cookie_secure=False,
        store_timeout=0.5,
    )
    try:
        yield rig
    finally:
        await close_rig(rig)
        proxy.close()


@pytest.fixture
async def postgres_rig(database_url: str, make_app: Apps) -> AsyncIterator[Rig]:
    """Everything in the shared PostgreSQL through a proxy; LISTEN/NOTIFY bus."""
    proxy = TcpProxy(*_hostport(database_url)).start()
    rig = await make_rig(make_app, "postgres", proxy, transports=["bearer"], store_timeout=0.5)
    try:
        yield rig
    finally:
        await close_rig(rig)
        proxy.close()


# --- Redis stopped / black-holed ----------------------------------------------------------


@pytest.mark.redis
async def test_F01_F07_redis_down_answers_503_then_same_sessions_work(redis_rig: Rig) -> None:
    rig = redis_rig
    assert rig.proxy is not None
    bearer, cookie = await rig.token(), await rig.token()
    assert (await rig.me(bearer)).status_code == 200
    assert (await rig.me(cookie, cookie=True)).status_code == 200

    rig.proxy.cut()
    await until(lambda: not rig.auth.bus.healthy)  # the cache is no longer trusted
    for _ in range(3):
        assert_fail_closed(await rig.me(bearer))
        assert_fail_closed(await rig.me(cookie, cookie=True))

    rig.proxy.restore()
    await until(lambda: rig.auth.bus.healthy, timeout=5)
    # F07: no mass logout; the very same credentials work again.
    assert (await rig.me(bearer)).status_code == 200
    assert (await rig.me(cookie, cookie=True)).status_code == 200


@pytest.mark.redis
async def test_F02_login_during_outage_issues_nothing(redis_rig: Rig) -> None:
    rig = redis_rig
    assert rig.proxy is not None
    user = await rig.auth.users.get_by_name(USER)
    rig.proxy.cut()
    for _ in range(3):
        assert_fail_closed(await rig.login_http())
    rig.proxy.restore()
    await until(lambda: rig.auth.bus.healthy, timeout=5)
    assert await rig.auth.strategy.list_sessions(user.id) == []
    assert (await rig.login_http()).status_code == 200


@pytest.mark.redis
async def test_F03_logout_during_outage_reports_failure_and_retry_is_idempotent(
    redis_rig: Rig,
) -> None:
    rig = redis_rig
    assert rig.proxy is not None
    token = await rig.token()
    assert (await rig.me(token)).status_code == 200
    rig.proxy.cut()
    await until(lambda: not rig.auth.bus.healthy)
    assert_fail_closed(await rig.logout(token))
    rig.proxy.restore()
    await until(lambda: rig.auth.bus.healthy, timeout=5)
    assert (await rig.me(token)).status_code == 200  # the failed logout did nothing
    assert (await rig.logout(token)).status_code == 204
    assert (await rig.me(token)).status_code == 401
    # Retrying a logout that already succeeded is harmless.
    again = await rig.client.post("/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert again.status_code == 204


@pytest.mark.redis
async def test_F01_redis_stopped_mid_traffic_never_500(redis_rig: Rig) -> None:
    rig = redis_rig
    assert rig.proxy is not None
    tokens = [await rig.token() for _ in range(4)]
    statuses: list[int] = []
    stop = asyncio.Event()

    async def traffic(token: str) -> None:
        while not stop.is_set():
            response = await rig.me(token, cookie=token == tokens[0])
            assert "set-cookie" not in response.headers
            statuses.append(response.status_code)
            await asyncio.sleep(0.002)

    workers = [asyncio.create_task(traffic(t)) for t in tokens]
    await asyncio.sleep(0.2)
    rig.proxy.cut()
    await asyncio.sleep(0.5)
    rig.proxy.restore()
    await until(lambda: rig.auth.bus.healthy, timeout=5)
    mark = len(statuses)
    await asyncio.sleep(0.3)
    stop.set()
    await asyncio.gather(*workers)
    assert set(statuses) <= {200, 503}
    assert 503 in statuses and 200 in statuses[:mark]
    assert set(statuses[mark:]) == {200}  # recovered by itself


@pytest.mark.redis
async def test_F06_blackholed_redis_ends_each_request_within_the_timeout(redis_rig: Rig) -> None:
    rig = redis_rig
    assert rig.proxy is not None
    tokens = [await rig.token() for _ in range(3)]
    rig.proxy.blackhole()
    await until(lambda: not rig.auth.bus.healthy, timeout=3)
    started = time.monotonic()
    responses = await asyncio.gather(*(rig.me(tokens[i % 3]) for i in range(40)))
    elapsed = time.monotonic() - started
    for response in responses:
        assert_fail_closed(response)
    # 40 concurrent requests, each bounded by the 0.5 s store time-out: no queueing behind
    # a stuck connection.
    assert elapsed < 2.0
    rig.proxy.restore()
    await until(lambda: rig.auth.bus.healthy, timeout=5)
    for token in tokens:
        assert (await rig.me(token)).status_code == 200


# --- PostgreSQL black-holed -----------------------------------------------------------------


@pytest.mark.postgres
async def test_F06_F07_blackholed_postgres_fails_fast_without_pool_deadlock(
    postgres_rig: Rig,
) -> None:
    rig = postgres_rig
    assert rig.proxy is not None
    token = await rig.token()
    assert (await rig.me(token)).status_code == 200
    rig.proxy.blackhole()
    await until(lambda: not rig.auth.bus.healthy, timeout=3)
    for _ in range(2):
        started = time.monotonic()
        # More concurrent requests than the pool has connections.
        responses = await asyncio.gather(*(rig.me(token) for _ in range(30)))
        assert time.monotonic() - started < 2.0
        for response in responses:
            assert_fail_closed(response)
    assert_fail_closed(await rig.login_http())
    rig.proxy.restore()
    await until(lambda: rig.auth.bus.healthy, timeout=5)
    deadline = time.monotonic() + 5
    status = 0
    while time.monotonic() < deadline:  # pooled connections that died are replaced
        status = (await rig.me(token)).status_code
        if status == 200:
            break
        assert status == 503
        await asyncio.sleep(0.1)
    assert status == 200


# --- the revocation feed killed on a private Redis ----------------------------------------


@pytest.fixture
def private_redis() -> Any:
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed: cannot run private-Redis fault tests")
    server = PrivateRedis()
    server.start()
    yield server
    server.stop()


@pytest.mark.redis
async def test_F04_killed_pubsub_switches_to_store_reads_and_flushes(
    private_redis: PrivateRedis, make_app: Apps
) -> None:
    settings: dict[str, Any] = {"transports": ["bearer"], "key_prefix": "f04"}
    a = await make_rig(make_app, private_redis.url, **settings)
    b_auth = await make_app.auth(private_redis.url, clock=system_clock, **settings)
    try:
        token, other = await a.token(), await a.token()
        for _ in range(2):
            assert (await a.me(token)).status_code == 200
            assert (await a.me(other)).status_code == 200
        counters = a.auth.strategy.counters
        assert counters.cache_hits >= 2

        watched: list[bool] = []
        watcher = asyncio.create_task(_watch(a, watched))
        private_redis.client_kill_pubsub()
        await until(lambda: False in watched, timeout=2)
        # While unhealthy every request reads the store.
        reads = counters.store_reads
        if not a.auth.bus.healthy:
            assert (await a.me(other)).status_code == 200
            assert counters.store_reads > reads
        # A revocation made elsewhere during the gap is honoured here.
        identity = await b_auth.strategy.authenticate(token)
        await b_auth.logout(identity)
        assert (await a.me(token)).status_code == 401
        await until(lambda: a.auth.bus.healthy, timeout=5)
        watcher.cancel()
        assert a.auth.bus.counters.resets >= 1  # type: ignore[attr-defined]
        assert counters.cache_flushes >= 1
        assert (await a.me(token)).status_code == 401
        assert (await a.me(other)).status_code == 200
    finally:
        await b_auth.close()
        await close_rig(a)


async def _watch(rig: Rig, out: list[bool]) -> None:
    while True:
        out.append(rig.auth.bus.healthy)
        await asyncio.sleep(0.001)


@pytest.mark.redis
async def test_F01_F07_private_redis_killed_and_restarted(
    private_redis: PrivateRedis, make_app: Apps
) -> None:
    """A real crash: requests fail closed, then recover once a new server is up (its data is
    gone: this instance keeps nothing, so the old session is unknown and logins work)."""
    rig = await make_rig(make_app, private_redis.url, transports=["bearer"], key_prefix="crash")
    try:
        token = await rig.token()
        assert (await rig.me(token)).status_code == 200
        private_redis.stop()
        await until(lambda: not rig.auth.bus.healthy)
        assert_fail_closed(await rig.me(token))
        assert_fail_closed(await rig.login_http())
        private_redis.start()
        await until(lambda: rig.auth.bus.healthy, timeout=5)
        assert (await rig.me(token)).status_code == 401
    finally:
        await close_rig(rig)
