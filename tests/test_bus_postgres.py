"""PostgresBus against the real PostgreSQL: LISTEN/NOTIFY delivery, health and resets.

Faults are injected on our own connections only (``pg_terminate_backend`` of this bus's
LISTEN backend) or through a cuttable proxy; the shared server is never stopped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest

from helpers import Recorder, started, until
from procs import TcpProxy
from satchel.errors import StoreUnavailable
from satchel.revocation.base import RevocationEvent, RevocationKind
from satchel.revocation.postgres import PostgresBus, channel_for

pytestmark = pytest.mark.postgres

FAST = {"ping_interval": 0.2, "ping_timeout": 0.2, "connect_timeout": 1.0, "publish_timeout": 0.5}


def event(subject: str = "s1") -> RevocationEvent:
    return RevocationEvent(RevocationKind.USER, subject, until=2_000_000_000.0, valid_after=5.0)


@pytest.fixture
def schema(run_id: str, request: pytest.FixtureRequest) -> str:
    return f"bus_{run_id}_{abs(hash(request.node.name)) % 10**6}"


@pytest.fixture
async def pair(database_url: str, schema: str) -> AsyncIterator[tuple[PostgresBus, PostgresBus]]:
    a = PostgresBus(database_url, schema=schema, **FAST)
    b = PostgresBus(database_url, schema=schema, **FAST)
    async with started(a, b):
        yield a, b


def test_channel_names_are_per_schema_and_bounded() -> None:
    assert channel_for("satchel") == "satchel:revocations"
    long_a, long_b = "a" * 60, "a" * 59 + "b"
    assert len(channel_for(long_a).encode()) <= 63
    assert channel_for(long_a) != channel_for(long_b)


async def test_R02_notify_reaches_other_process_once(pair: tuple[PostgresBus, PostgresBus]) -> None:
    a, b = pair
    seen_a, seen_b = Recorder(), Recorder()
    a.subscribe(seen_a, seen_a.reset)
    b.subscribe(seen_b, seen_b.reset)
    assert a.healthy and b.healthy
    await a.publish(event("u1"))
    assert [e.subject for e in seen_a.events] == ["u1"]  # applied here before returning
    await until(lambda: len(seen_b.events) == 1)
    assert seen_b.events[0] == event("u1")
    await asyncio.sleep(0.1)
    assert len(seen_a.events) == 1  # own echo ignored
    assert b.counters.received == 1 and a.counters.published == 1


async def test_other_schemas_do_not_hear_it(database_url: str, schema: str) -> None:
    a = PostgresBus(database_url, schema=schema + "_x", **FAST)
    b = PostgresBus(database_url, schema=schema + "_y", **FAST)
    seen = Recorder()
    b.subscribe(seen)
    async with started(a, b):
        await a.publish(event())
        await asyncio.sleep(0.2)
        assert seen.events == []


async def test_publishes_through_a_given_pool(database_url: str, schema: str) -> None:
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    a = PostgresBus(database_url, schema=schema, pool=pool, **FAST)
    b = PostgresBus(database_url, schema=schema, **FAST)
    seen = Recorder()
    b.subscribe(seen)
    try:
        async with started(a, b):
            await a.publish(event())
            await until(lambda: len(seen.events) == 1)
    finally:
        # The bus does not own a given pool: it is still usable after close().
        assert await pool.fetchval("SELECT 1") == 1
        await pool.close()


async def test_F04_terminated_listen_backend_turns_unhealthy_then_resets(
    pair: tuple[PostgresBus, PostgresBus], database_url: str
) -> None:
    a, b = pair
    seen = Recorder()
    b.subscribe(seen, seen.reset)
    pid = b.listen_pid
    assert pid is not None
    conn = await asyncpg.connect(database_url)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid) is True
    finally:
        await conn.close()
    await until(lambda: b.counters.disconnects == 1)
    await until(lambda: b.healthy and b.counters.connects == 2)
    assert seen.resets == 1 and b.listen_pid != pid
    await a.publish(event("after"))
    await until(lambda: [e.subject for e in seen.events] == ["after"])


async def test_F04_F03_cut_link_detected_publish_fails_then_recovers(
    database_url: str, schema: str
) -> None:
    rest = database_url.split("@", 1)[1]
    host, port = rest.split("/", 1)[0].rsplit(":", 1)
    proxy = TcpProxy(host, int(port)).start()
    proxied = database_url.replace(f"{host}:{port}", f"127.0.0.1:{proxy.port}")
    bus = PostgresBus(proxied, schema=schema, **FAST)
    seen = Recorder()
    bus.subscribe(seen, seen.reset)
    await bus.start()
    try:
        assert bus.healthy
        proxy.blackhole()
        took = await until(lambda: not bus.healthy, timeout=3)
        assert took <= bus.worst_case_staleness + 0.3
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await bus.publish(event())
        assert time.monotonic() - started < 1.5
        proxy.restore()
        await until(lambda: bus.healthy, timeout=5)
        assert seen.resets == 1
    finally:
        await bus.close()
        proxy.close()
