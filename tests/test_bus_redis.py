"""RedisBus against real Redis: delivery, echo suppression, health, reconnect resets.

Delivery tests use the shared Redis with a per-test channel prefix. Fault tests use a private
``redis-server`` (killed, restarted, CLIENT KILL) or a cuttable proxy, never the shared one.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from helpers import Recorder, started, until
from procs import PrivateRedis, TcpProxy
from satchel.errors import ConfigurationError, StoreUnavailable
from satchel.revocation import bus_kind_for, make_bus
from satchel.revocation.base import NullBus, RevocationEvent, RevocationKind
from satchel.revocation.redis import RedisBus
from satchel.stores.redis import RedisStore

pytestmark = pytest.mark.redis

FAST = {"ping_interval": 0.2, "ping_timeout": 0.2, "connect_timeout": 0.5, "publish_timeout": 0.5}


def event(subject: str = "s1") -> RevocationEvent:
    return RevocationEvent(RevocationKind.SESSION, subject, until=2_000_000_000.0)


@pytest.fixture
def prefix(run_id: str, request: pytest.FixtureRequest) -> str:
    return f"bus{run_id}{abs(hash(request.node.name)) % 10**6}"


@pytest.fixture
async def pair(redis_url: str, prefix: str) -> AsyncIterator[tuple[RedisBus, RedisBus]]:
    a = RedisBus(redis_url, prefix=prefix, **FAST)
    b = RedisBus(redis_url, prefix=prefix, **FAST)
    async with started(a, b):
        yield a, b


@pytest.fixture
def private_redis() -> PrivateRedis:
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed: cannot run private-Redis fault tests")
    server = PrivateRedis()
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


async def test_R02_event_reaches_other_process_and_own_echo_is_ignored(
    pair: tuple[RedisBus, RedisBus],
) -> None:
    a, b = pair
    seen_a, seen_b = Recorder(), Recorder()
    a.subscribe(seen_a, seen_a.reset)
    b.subscribe(seen_b, seen_b.reset)
    assert a.healthy and b.healthy

    await a.publish(event("s1"))
    # The publisher applied it before returning; the other bus gets it over Redis.
    assert [e.subject for e in seen_a.events] == ["s1"]
    await until(lambda: len(seen_b.events) == 1)
    assert seen_b.events[0] == event("s1")
    await asyncio.sleep(0.1)  # the echo to ``a`` has arrived by now, and was dropped
    assert len(seen_a.events) == 1
    assert a.counters.published == 1 and a.counters.received == 0
    assert b.counters.received == 1
    assert seen_a.resets == seen_b.resets == 0


async def test_channels_are_isolated_by_prefix(redis_url: str, prefix: str) -> None:
    a = RedisBus(redis_url, prefix=prefix + "x", **FAST)
    b = RedisBus(redis_url, prefix=prefix + "y", **FAST)
    seen = Recorder()
    b.subscribe(seen)
    async with started(a, b):
        assert a.channel == f"{prefix}x:revocations"
        await a.publish(event())
        await asyncio.sleep(0.2)
        assert seen.events == []


async def test_malformed_and_oversized_messages_are_ignored(
    pair: tuple[RedisBus, RedisBus], redis_url: str
) -> None:
    _, b = pair
    seen = Recorder()
    b.subscribe(seen)
    raw = aioredis.Redis.from_url(redis_url)
    try:
        for junk in (b"no separator", b"origin|{not json", b"o|" + b"x" * 10_000, b"o|[1,2]"):
            await raw.publish(b.channel, junk)
        await raw.publish(b.channel, "someone|" + event("ok").to_json())
    finally:
        await raw.aclose()
    await until(lambda: len(seen.events) == 1)
    assert seen.events[0].subject == "ok"
    assert b.counters.malformed == 4
    assert b.healthy


async def test_failing_listener_does_not_stop_delivery(pair: tuple[RedisBus, RedisBus]) -> None:
    a, b = pair
    seen = Recorder()

    def broken(_: RevocationEvent) -> None:
        raise RuntimeError("listener bug")

    b.subscribe(broken)
    b.subscribe(seen)
    await a.publish(event())
    await until(lambda: len(seen.events) == 1)
    assert b.healthy


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError):
        RedisBus("redis://127.0.0.1:6379/0", prefix="has space")
    with pytest.raises(ConfigurationError):
        RedisBus("redis://127.0.0.1:6379/0", ping_interval=0)
    with pytest.raises(ConfigurationError):
        RedisBus("nonsense://", prefix="p")


async def test_F04_killed_subscription_turns_unhealthy_then_resets_on_reconnect(
    private_redis: PrivateRedis,
) -> None:
    bus = RedisBus(private_redis.url, prefix="p", **FAST)
    seen = Recorder()
    bus.subscribe(seen, seen.reset)
    await bus.start()
    try:
        assert bus.healthy and bus.counters.connects == 1 and seen.resets == 0
        states: list[bool] = []

        async def watch() -> None:
            while True:
                states.append(bus.healthy)
                await asyncio.sleep(0.001)

        watcher = asyncio.create_task(watch())
        assert private_redis.client_kill_pubsub() == 1
        await until(lambda: bus.counters.connects == 2)
        watcher.cancel()
        assert False in states  # it was not trusted during the gap
        assert bus.healthy
        assert seen.resets == 1 and bus.counters.resets == 1
        assert bus.counters.disconnects == 1
        # Delivery works on the new subscription.
        other = RedisBus(private_redis.url, prefix="p", **FAST)
        await other.start()
        try:
            await other.publish(event("after"))
            await until(lambda: [e.subject for e in seen.events] == ["after"])
        finally:
            await other.close()
    finally:
        await bus.close()


async def test_F03_publish_fails_closed_when_redis_is_down_and_recovers(
    private_redis: PrivateRedis,
) -> None:
    bus = RedisBus(private_redis.url, prefix="p", **FAST)
    seen = Recorder()
    bus.subscribe(seen, seen.reset)
    await bus.start()
    try:
        private_redis.stop()
        await until(lambda: not bus.healthy)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await bus.publish(event("lost"))
        assert time.monotonic() - started < 1.5
        assert bus.counters.publish_failures == 1
        # Local listeners still applied it (more conservative, never less).
        assert [e.subject for e in seen.events] == ["lost"]

        private_redis.start()
        await until(lambda: bus.healthy, timeout=5)
        assert seen.resets == 1
        await bus.publish(event("again"))  # the retry goes through
        assert bus.counters.published == 1
    finally:
        await bus.close()


async def test_F04_blackholed_link_is_detected_by_the_ping(redis_url: str, prefix: str) -> None:
    host_port = redis_url.split("//", 1)[1].split("/", 1)[0]
    host, port = host_port.rsplit(":", 1)
    proxy = TcpProxy(host, int(port)).start()
    bus = RedisBus(f"redis://127.0.0.1:{proxy.port}/0", prefix=prefix, **FAST)
    seen = Recorder()
    bus.subscribe(seen, seen.reset)
    await bus.start()
    try:
        assert bus.healthy
        proxy.blackhole()
        took = await until(lambda: not bus.healthy, timeout=3)
        assert took <= bus.worst_case_staleness + 0.3
        proxy.restore()
        await until(lambda: bus.healthy, timeout=5)
        assert seen.resets == 1
    finally:
        await bus.close()
        proxy.close()


async def test_start_without_redis_does_not_block_and_connects_later() -> None:
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()  # chosen port, not started yet
    bus = RedisBus(server.url, prefix="p", **FAST)
    seen = Recorder()
    bus.subscribe(seen, seen.reset)
    started = time.monotonic()
    await bus.start()
    try:
        assert time.monotonic() - started < 2.5
        assert not bus.healthy
        server.start()
        await until(lambda: bus.healthy, timeout=5)
        # First ever subscription: nothing can have been cached, so no reset is needed.
        assert seen.resets == 0 and bus.counters.connects == 1
    finally:
        await bus.close()
        server.stop()


@pytest.mark.parametrize(
    ("store", "sessions", "redis", "expected"),
    [
        ("memory://", None, None, "local"),
        ("sqlite:///x.db", None, None, "sqlite"),
        ("redis://h/0", None, None, "redis"),
        ("postgresql://h/db", None, None, "postgres"),
        ("postgres://h/db", None, None, "postgres"),
        ("postgresql://h/db", "redis://h/0", None, "redis"),
        ("sqlite:///x.db", None, "redis://h/0", "redis"),
        ("memory://", "sqlite:///x.db", None, "sqlite"),
        ("sqlite:///x.db", "postgresql://h/db", None, "postgres"),
    ],
)
def test_auto_bus_choice(
    store: str, sessions: str | None, redis: str | None, expected: str
) -> None:
    assert bus_kind_for(store, sessions, redis) == expected


def test_make_bus_builds_without_connecting_and_uses_the_store_namespace() -> None:
    backend = RedisStore.from_url("redis://127.0.0.1:1/0", prefix="tenant1")  # not connected
    bus = make_bus("auto", store="redis://127.0.0.1:1/0", sessions_backend=backend)
    assert isinstance(bus, RedisBus)
    assert bus.channel == "tenant1:revocations"
    assert not bus.healthy
    assert isinstance(make_bus("none", store="redis://127.0.0.1:1/0"), NullBus)
    with pytest.raises(ConfigurationError):
        make_bus("postgres", store="sqlite:///x.db")
    with pytest.raises(ConfigurationError):
        make_bus("carrier-pigeon", store="memory://")
