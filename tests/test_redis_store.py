"""Redis-only behaviour: native expiry, key layout, memory, outages and the eviction warning."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Awaitable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from redis.crc import key_slot

from helpers import HOUR, MakeStores, make_session
from procs import TcpProxy
from satchel.clock import ManualClock
from satchel.errors import SessionLimitExceeded, StoreUnavailable
from satchel.stores import OnExceed, SessionRecord, open_store
from satchel.stores.redis import RedisStore

pytestmark = pytest.mark.redis


@pytest.fixture
async def store(make_stores: MakeStores) -> RedisStore:
    stores = await make_stores("redis")
    assert isinstance(stores.sessions, RedisStore)
    return stores.sessions


def session(now: float, *, absolute: float = 8 * HOUR, **fields: Any) -> SessionRecord:
    return make_session(now, absolute=absolute, **fields)


async def test_ttl_is_the_nearer_expiry(store: RedisStore, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    idle_first = session(now, idle=600, absolute=HOUR)
    absolute_first = session(now, idle=HOUR, absolute=600.5)
    for rec in (idle_first, absolute_first):
        await store.create(rec, now=now)
    c = store.client
    assert await c.pexpiretime(f"{store.prefix}:s:{idle_first.id}") == round((now + 600) * 1000)
    assert await c.pexpiretime(f"{store.prefix}:s:{absolute_first.id}") == round(
        (now + 600.5) * 1000
    )
    index_expiry = await c.pexpiretime(f"{store.prefix}:u:u1")
    assert index_expiry == round((now + 600.5) * 1000)


async def test_touch_moves_ttl_but_never_past_absolute(
    store: RedisStore, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    rec = session(now, idle=600, absolute=900)
    await store.create(rec, now=now)
    key = f"{store.prefix}:s:{rec.id}"
    assert await store.touch(rec.id, last_seen_at=now + 100, idle_expires_at=now + 700)
    assert await store.client.pexpiretime(key) == round((now + 700) * 1000)
    # Idle expiry beyond the absolute one: the key still dies at the absolute expiry.
    assert await store.touch(rec.id, last_seen_at=now + 500, idle_expires_at=now + 1100)
    assert await store.client.pexpiretime(key) == round((now + 900) * 1000)
    index_expiry = await store.client.pexpiretime(f"{store.prefix}:u:u1")
    assert index_expiry >= round((now + 900) * 1000)


async def test_touch_of_missing_key_creates_nothing(store: RedisStore) -> None:
    assert not await store.touch("gone", last_seen_at=1.0, idle_expires_at=2.0)
    assert await store.client.exists(f"{store.prefix}:s:gone") == 0


async def test_natively_expired_session_leaves_index_consistent(
    store: RedisStore, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    gone, kept = session(now), session(now + 1)
    await store.create(gone, now=now)
    await store.create(kept, now=now)
    # What Redis does when the TTL fires: the key vanishes, the index entry stays behind.
    await store.client.delete(f"{store.prefix}:s:{gone.id}")
    index = f"{store.prefix}:u:u1"
    assert await store.client.zcard(index) == 2

    assert [r.id for r in await store.list_user("u1")] == [kept.id]
    assert await store.delete_user("u1", keep=kept.id) == []  # nothing real was removed
    # The dangling entry does not count toward the limit.
    third = session(now + 2)
    await store.create(third, max_per_user=2, on_exceed=OnExceed.DENY, now=now + 2)
    with pytest.raises(SessionLimitExceeded):
        await store.create(session(now + 3), max_per_user=2, on_exceed=OnExceed.DENY, now=now + 3)
    assert set(await store.client.zrange(index, 0, -1)) == {kept.id.encode(), third.id.encode()}


async def test_purge_prunes_dangling_index_entries(
    store: RedisStore, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    rec = session(now, user="lonely")
    await store.create(rec, now=now)
    await store.client.delete(f"{store.prefix}:s:{rec.id}")
    assert await store.purge_expired(now) == 0  # it was already gone: not counted
    assert await store.client.exists(f"{store.prefix}:u:lonely") == 0


async def test_session_hash_memory_budget(
    make_stores: MakeStores, run_id: str, manual_clock: ManualClock
) -> None:
    # Same prefix length as the default "satchel", so the measurement matches production.
    stores = await make_stores("redis", prefix=f"s{run_id}"[:7])
    store = stores.sessions
    assert isinstance(store, RedisStore)
    rec = session(
        manual_clock.now + 0.123,
        user="0f8fad5b-d9cb-469f-a165-70867728950e",
        ip="203.0.113.7",
        refresh_hash=hashlib.sha256(b"r").digest(),
    )
    await store.create(rec, now=manual_clock.now)
    used = await store.client.memory_usage(f"{store.prefix}:s:{rec.id}", samples=0)
    assert used is not None and used <= 300, used


async def test_cluster_hash_tag_prefix_keeps_keys_in_one_slot(
    make_stores: MakeStores, run_id: str, manual_clock: ManualClock
) -> None:
    prefix = "{st" + run_id + "}"
    stores = await make_stores("redis", prefix=prefix)
    store = stores.sessions
    assert isinstance(store, RedisStore)
    rec = session(manual_clock.now)
    await store.create(rec, now=manual_clock.now)
    keys = [k async for k in store.client.scan_iter(match="{st" + run_id + "}*", count=10_000)]
    assert len(keys) == 2
    assert {key_slot(k) for k in keys} == {key_slot(prefix.encode())}
    got = await store.get(rec.id)
    assert got is not None and got.user_id == "u1"


async def test_glob_characters_in_prefix_do_not_leak_between_stores(
    make_stores: MakeStores, run_id: str, manual_clock: ManualClock
) -> None:
    wild = (await make_stores("redis", prefix=f"t{run_id}[*]")).sessions
    plain = (await make_stores("redis", prefix=f"t{run_id}x")).sessions
    await wild.create(session(manual_clock.now), now=manual_clock.now)
    await plain.create(session(manual_clock.now, user="u2"), now=manual_clock.now)
    assert [r.user_id for r in await wild.list_all()] == ["u1"]
    assert await wild.purge_expired(manual_clock.now + 10 * HOUR) == 1
    assert len(await plain.list_all()) == 1


async def test_F13_warns_on_allkeys_eviction_policy(
    store: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    config = await store.client.config_get("maxmemory-policy")
    original = config.get(b"maxmemory-policy", config.get("maxmemory-policy"))
    assert original
    try:
        await store.client.config_set("maxmemory-policy", "allkeys-lru")
        with caplog.at_level(logging.WARNING, logger="satchel.stores"):
            await store.check()
        assert any("allkeys-lru" in r.getMessage() for r in caplog.records)
        caplog.clear()
        await store.client.config_set("maxmemory-policy", "volatile-lru")
        with caplog.at_level(logging.WARNING, logger="satchel.stores"):
            await store.check()
        assert not [r for r in caplog.records if "maxmemory-policy" in r.getMessage()]
    finally:
        await store.client.config_set("maxmemory-policy", original)


async def _every_operation(store: RedisStore) -> list[Awaitable[Any]]:
    rec = session(1.0)
    return [
        store.check(),
        store.create(rec, now=1.0),
        store.get("x"),
        store.touch("x", last_seen_at=1.0, idle_expires_at=2.0),
        store.delete("x"),
        store.delete_user("u"),
        store.list_user("u"),
        store.list_all(),
        store.purge_expired(1.0),
        store.rotate_refresh("x", presented_hash=b"a", successor_hash=b"b", now=1.0, grace=1),
        store.get_user("u"),
        store.list_keys(),
        store.set_secret_if_absent("s", b"v"),
    ]


async def test_F01_dead_port_raises_store_unavailable_quickly() -> None:
    store = RedisStore.from_url("redis://127.0.0.1:1/0", prefix="dead")
    try:
        for op in await _every_operation(store):
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await op
            assert time.monotonic() - started < 1.0
    finally:
        await store.close()


async def test_open_store_on_dead_port_is_store_unavailable() -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await open_store("redis://127.0.0.1:1/0")
    assert time.monotonic() - started < 1.0


async def test_F06_hung_server_times_out_as_store_unavailable(blackhole_port: int) -> None:
    store = RedisStore.from_url(
        f"redis://127.0.0.1:{blackhole_port}/0",
        prefix="hung",
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
    )
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.get("anything")
        assert time.monotonic() - started < 1.5
    finally:
        await store.close()


@pytest.fixture
def proxy(redis_url: str) -> Iterator[TcpProxy]:
    target = urlsplit(redis_url)
    p = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    yield p
    p.close()


async def test_F07_sessions_survive_an_outage(
    proxy: TcpProxy, redis_url: str, run_id: str, manual_clock: ManualClock
) -> None:
    db = urlsplit(redis_url).path.strip("/") or "0"
    prefix = f"outage-{run_id}"
    store = RedisStore.from_url(f"redis://127.0.0.1:{proxy.port}/{db}", prefix=prefix)
    try:
        rec = session(manual_clock.now)
        await store.create(rec, now=manual_clock.now)
        proxy.cut()
        with pytest.raises(StoreUnavailable):
            await store.get(rec.id)
        with pytest.raises(StoreUnavailable):
            await store.delete(rec.id)
        proxy.restore()
        got = await store.get(rec.id)
        assert got is not None and got.id == rec.id
        assert await store.delete(rec.id) is not None
    finally:
        await store.delete_user("u1")
        await store.close()


async def test_times_are_kept_to_the_millisecond(
    store: RedisStore, manual_clock: ManualClock
) -> None:
    now = manual_clock.now + 0.1234567
    rec = session(now)
    await store.create(rec, now=now)
    got = await store.get(rec.id)
    assert got is not None
    assert got.created_at == manual_clock.now + 0.123
    assert got.idle_expires_at == manual_clock.now + 0.123 + HOUR
    raw = await store.client.hget(f"{store.prefix}:s:{rec.id}", "c")
    assert raw == str(round(now * 1000)).encode()
