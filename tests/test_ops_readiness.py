"""``/readyz`` of a real ``satchel serve`` follows its store: a Redis or PostgreSQL of the test's
own is really stopped (503 naming it), then started again (200, the server never restarted).
``/healthz`` stays 200 throughout: liveness reads nothing."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from apps import Apps
from pgcluster import PrivatePostgres
from procs import PrivateRedis, SatchelServer

pytestmark = pytest.mark.slow


def wait_for(check: Callable[[], httpx.Response], status: int, within: float) -> httpx.Response:
    """Poll until the response has ``status``; the last response otherwise."""
    deadline = time.monotonic() + within
    while True:
        response = check()
        if response.status_code == status or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


def follow_outage(
    server: SatchelServer, stop: Callable[[], None], start: Callable[[], None], url: str
) -> None:
    def ready() -> httpx.Response:
        return httpx.get(f"{server.url}/readyz", timeout=5)

    first = ready()
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "ready"
    assert any(url in name for name in first.json()["checks"]), first.json()

    stop()
    down = wait_for(ready, 503, 10)
    assert down.status_code == 503, down.text
    body = down.json()
    assert body["error"] == "not_ready"
    assert url in body["detail"], body
    assert down.headers["retry-after"] == "1"
    assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200

    start()
    back = wait_for(ready, 200, 20)
    assert back.status_code == 200, back.text
    assert server.proc is not None and server.proc.poll() is None  # the same process


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed")
    redis = PrivateRedis()
    redis.start()
    try:
        yield redis
    finally:
        redis.stop()


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    why = PrivatePostgres.available()
    if why is not None:
        pytest.skip(f"no private PostgreSQL cluster: {why}")
    cluster = PrivatePostgres().init()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def test_readyz_follows_a_stopped_redis(private_redis: PrivateRedis) -> None:
    server = SatchelServer({"SATCHEL_STORE": private_redis.url}, "readyz-redis").start()
    try:
        server.wait_ready()
        follow_outage(server, private_redis.stop, private_redis.start, private_redis.url)
        # Once back, the revocation channel is reported too.
        checks = httpx.get(f"{server.url}/readyz", timeout=5).json()["checks"]
        assert checks["revocation channel (redis)"] == "ok"
    finally:
        server.stop()


def test_readyz_follows_a_stopped_postgresql(private_postgres: PrivatePostgres) -> None:
    server = SatchelServer({"SATCHEL_STORE": private_postgres.url}, "readyz-pg").start()
    try:
        server.wait_ready(timeout=30)
        follow_outage(server, private_postgres.stop, private_postgres.start, private_postgres.url)
    finally:
        server.stop()


async def test_readyz_names_each_store_and_the_channel(make_app: Apps) -> None:
    app = await make_app("postgres+redis")
    response = await app.client.get("/readyz")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert len(checks) == 3, checks  # sessions in Redis, users and keys in PostgreSQL, channel
    assert any(name.startswith("store sessions (redis://") for name in checks), checks
    assert any(name.startswith("store users+keys (postgresql://") for name in checks), checks
    assert checks["revocation channel (redis)"] == "ok"
    assert response.headers["cache-control"] == "no-store"
