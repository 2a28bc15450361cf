"""The Redis Cluster revocation bus on a real 6-node cluster: delivery, beats, failover, slot move.

Buses of one test share the session's cluster (``redis_cluster``) under a prefix of their
own. The fault tests kill or move the master that owns the channel's slot, then put the
cluster back in order (the killed node rejoins as a replica) for the tests after them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator

import pytest

from helpers import Recorder, until
from redis_cluster import LocalCluster, move_slot
from satchel.errors import ConfigurationError, StoreUnavailable
from satchel.revocation import bus_kind_for, make_bus
from satchel.revocation.base import RevocationEvent, RevocationKind
from satchel.revocation.redis_cluster import RedisClusterBus
from satchel.stores.redis_cluster import RedisClusterStore

pytestmark = [pytest.mark.redis, pytest.mark.slow]


def event(subject: str) -> RevocationEvent:
    return RevocationEvent(RevocationKind.SESSION, subject, time.time() + 60)


@pytest.fixture
async def buses(
    redis_cluster: LocalCluster,
) -> AsyncIterator[list[tuple[RedisClusterBus, Recorder]]]:
    prefix = f"bus{uuid.uuid4().hex[:10]}"
    made = []
    for _ in range(3):
        bus = RedisClusterBus(redis_cluster.url, prefix=prefix, ping_interval=0.2, ping_timeout=0.3)
        recorder = Recorder()
        bus.subscribe(recorder, recorder.reset)
        made.append((bus, recorder))
    try:
        for bus, _ in made:
            await bus.start()
        yield made
    finally:
        for bus, _ in made:
            await bus.close()


def channel_owner(cluster: LocalCluster, bus: RedisClusterBus) -> int:
    return cluster.master_for_slot(cluster.keyslot(bus.channel)).port


async def test_events_reach_every_other_process_and_beats_keep_it_healthy(
    buses: list[tuple[RedisClusterBus, Recorder]], redis_cluster: LocalCluster
) -> None:
    (a, ra), (_, rb), (_, rc) = buses
    assert all(bus.healthy for bus, _ in buses)
    # Sharded: every subscriber sits on the master of the channel's slot.
    owner = channel_owner(redis_cluster, a)
    assert {bus.node for bus, _ in buses} == {f"127.0.0.1:{owner}"}
    await a.publish(event("s1"))
    await until(lambda: len(rb.events) == 1 and len(rc.events) == 1)
    assert [e.subject for e in ra.events] == ["s1"]  # applied locally, echo ignored
    await asyncio.sleep(1.0)  # about five beats each
    for bus, recorder in buses:
        assert bus.healthy
        assert bus.counters.disconnects == 0 and bus.counters.malformed == 0
        assert recorder.resets == 0


async def test_killed_channel_master_turns_buses_unhealthy_then_resubscribes_and_flushes(
    buses: list[tuple[RedisClusterBus, Recorder]], redis_cluster: LocalCluster
) -> None:
    (a, _), (_, rb), _ = buses
    owner = redis_cluster.master_for_slot(redis_cluster.keyslot(a.channel))
    killed_at = time.monotonic()
    redis_cluster.kill(owner)
    try:
        # The subscriptions drop with the node: caches off at once, not after a ping.
        gap = await until(lambda: not any(bus.healthy for bus, _ in buses), timeout=1.0)
        assert gap < 0.5
        with pytest.raises(StoreUnavailable):
            await a.publish(event("during-the-gap"))
        # The replica takes over; every bus re-reads the slot map and subscribes there.
        await until(lambda: all(bus.healthy for bus, _ in buses), timeout=15.0)
        print(f"bus back {time.monotonic() - killed_at:.2f} s after the kill")
        new_owner = channel_owner(redis_cluster, a)
        assert new_owner != owner.port
        assert {bus.node for bus, _ in buses} == {f"127.0.0.1:{new_owner}"}
        for bus, recorder in buses:
            assert bus.counters.resets >= 1 and recorder.resets >= 1  # caches flushed
        await a.publish(event("after"))
        await until(lambda: [e.subject for e in rb.events][-1:] == ["after"])
    finally:
        redis_cluster.restart(owner)
        redis_cluster.wait_ok(30)


async def test_slot_move_resubscribes_on_the_new_owner(
    buses: list[tuple[RedisClusterBus, Recorder]], redis_cluster: LocalCluster
) -> None:
    (a, _), (_, rb), _ = buses
    slot = redis_cluster.keyslot(a.channel)
    owner = redis_cluster.master_for_slot(slot)
    target = next(n for n in redis_cluster.masters() if n.port != owner.port)
    try:
        move_slot(redis_cluster, slot, target)
        await until(
            lambda: all(bus.node == target.address and bus.healthy for bus, _ in buses),
            timeout=10.0,
        )
        for bus, recorder in buses:
            assert bus.counters.disconnects >= 1 and recorder.resets >= 1
        await a.publish(event("moved"))
        await until(lambda: [e.subject for e in rb.events][-1:] == ["moved"])
    finally:
        move_slot(redis_cluster, slot, owner)
        redis_cluster.wait_ok(30)


async def test_classic_mode_delivers_too(redis_cluster: LocalCluster) -> None:
    prefix = f"bus{uuid.uuid4().hex[:10]}"
    a = RedisClusterBus(redis_cluster.url, prefix=prefix, sharded=False)
    b = RedisClusterBus(redis_cluster.url, prefix=prefix, sharded=False)
    heard = Recorder()
    b.subscribe(heard)
    try:
        await a.start()
        await b.start()
        assert a.healthy and b.healthy
        await a.publish(event("classic"))
        await until(lambda: [e.subject for e in heard.events] == ["classic"])
    finally:
        await a.close()
        await b.close()


def test_make_bus_picks_the_cluster_bus_for_a_cluster_store(redis_cluster: LocalCluster) -> None:
    assert bus_kind_for("postgresql://db/x", redis_cluster.url) == "redis"
    store = RedisClusterStore.from_url(redis_cluster.url, prefix="tenant9")  # not connected
    bus = make_bus(
        "auto", store="postgresql://db/x", sessions_store=redis_cluster.url, sessions_backend=store
    )
    assert isinstance(bus, RedisClusterBus) and bus.channel == "{tenant9:revocations}"
    via_bus_url = make_bus("auto", store="sqlite:///x.db", bus_url=redis_cluster.url)
    assert isinstance(via_bus_url, RedisClusterBus)


def test_prefix_with_braces_or_bad_url_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        RedisClusterBus("redis+cluster://127.0.0.1:1", prefix="{x}")
    with pytest.raises(ConfigurationError) as caught:
        RedisClusterBus("redis+cluster://:hunter2@nohost")
    assert "hunter2" not in caught.value.detail
