"""Redis Cluster only: the key layout, the spread over the masters, URLs, outages.

The store contract itself runs against the cluster in ``test_store_contract.py`` and
``test_store_users_contract.py`` (kind ``redis-cluster``). These tests use the session's
real 6-node cluster (``redis_cluster`` fixture: 3 masters, 3 replicas).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import pytest
import redis
from redis.crc import key_slot

from helpers import HOUR, MakeStores, make_session
from redis_cluster import LocalCluster
from satchel.clock import ManualClock
from satchel.errors import ConfigurationError, StoreUnavailable
from satchel.stores import open_store
from satchel.stores.redis_cluster import RedisClusterStore, escape_tag
from satchel.stores.redis_cluster_client import parse

pytestmark = pytest.mark.redis

SESSIONS = 3000
USERS = 1500
TOLERANCE = 0.15


@pytest.fixture
async def store(make_stores: MakeStores) -> RedisClusterStore:
    stores = await make_stores("redis-cluster")
    assert isinstance(stores.sessions, RedisClusterStore)
    return stores.sessions


def slot(key: str) -> int:
    return int(key_slot(key.encode()))


async def test_a_users_sessions_and_index_share_one_slot(
    store: RedisClusterStore, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    records = [make_session(now, user="alice") for _ in range(5)]
    for rec in records:
        await store.create(rec, now=now)
    index = store.index_key("alice")
    assert {slot(store.session_key("alice", r.id)) for r in records} == {slot(index)}
    for rec in records:
        assert await store.client.exists(store.session_key("alice", rec.id)) == 1
        # The pointer is hashed on the session id, so pointers spread by themselves.
        assert await store.owner(rec.id) == "alice"
    assert await store.client.zcard(index) == 5
    # Accounts and keys: one fixed tag per group, so their scripts stay in one slot.
    assert slot(store._user + "x") == slot(store._users) == slot(store._emails)
    assert slot(store._keys) == slot(store._secrets)


async def test_pointer_expires_with_the_absolute_timeout(
    store: RedisClusterStore, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    rec = make_session(now, idle=600, absolute=HOUR)
    await store.create(rec, now=now)
    pointer = store._pointer + rec.id
    assert await store.client.pexpiretime(pointer) == round((now + HOUR) * 1000)
    # touch moves the session's expiry, never past the pointer's.
    assert await store.touch(rec.id, last_seen_at=now + 10, idle_expires_at=now + 2 * HOUR)
    session_ttl = await store.client.pexpiretime(store.session_key(rec.user_id, rec.id))
    assert session_ttl == await store.client.pexpiretime(pointer)
    await store.delete(rec.id)
    assert await store.client.exists(pointer) == 0


async def test_eviction_and_revoke_all_remove_the_pointers(
    store: RedisClusterStore, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    first, second = make_session(now, user="bob"), make_session(now + 1, user="bob")
    await store.create(first, now=now)
    result = await store.create(second, now=now + 1, max_per_user=1)
    assert result.evicted == [first.id]
    assert await store.owner(first.id) is None
    third = make_session(now + 2, user="bob")
    await store.create(third, now=now + 2, max_per_user=2)
    assert sorted(await store.delete_user("bob")) == sorted([second.id, third.id])
    assert await store.owner(second.id) is None and await store.owner(third.id) is None


async def test_braces_and_percents_in_user_ids_cannot_merge_two_users(
    store: RedisClusterStore, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    # Without escaping, "ab}:s:x" would close the tag early and its index key would be the
    # session key of user "ab" with session id "x}".
    tricky = ["ab}:s:x", "ab", "a%7Db", "a}b", "{x}", "%"]
    made = {}
    for user in tricky:
        rec = make_session(now, user=user, sid=f"x}}{uuid.uuid4().hex}")
        await store.create(rec, now=now)
        made[user] = rec
    for user, rec in made.items():
        assert [r.id for r in await store.list_user(user)] == [rec.id]
        assert "}" not in escape_tag(user)
    listed = await store.list_all(limit=100)
    assert sorted(r.user_id for r in listed) == sorted(tricky)
    assert await store.purge_expired(now + 2 * 86_400) == len(tricky)


async def test_sessions_spread_evenly_over_the_three_masters(
    store: RedisClusterStore, redis_cluster: LocalCluster, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    users = [uuid.uuid4().hex for _ in range(USERS)]
    pipeline_size = 100
    records = [make_session(now, user=users[i % USERS]) for i in range(SESSIONS)]
    for start in range(0, SESSIONS, pipeline_size):
        for rec in records[start : start + pipeline_size]:
            await store.create(rec, now=now)
    counts: dict[int, int] = {}
    pattern = store._tag.replace("[", "\\[") + "*"
    for node in redis_cluster.masters():
        client = redis.Redis(port=node.port, socket_timeout=5)
        try:
            counts[node.port] = sum(
                1 for _ in client.scan_iter(match=pattern, count=1000, _type="hash")
            )
        finally:
            client.close()
    assert len(counts) == 3
    assert sum(counts.values()) == SESSIONS
    share = SESSIONS / 3
    spread = {port: round(n / share - 1, 3) for port, n in counts.items()}
    print(f"sessions per master: {counts} (deviation from a third: {spread})")
    assert all(abs(d) <= TOLERANCE for d in spread.values()), spread


# --- URLs and configuration ---------------------------------------------------------------


def test_cluster_url_names_seed_nodes_and_credentials() -> None:
    parsed = parse("redis+cluster://:s3cret@10.0.0.1:7000,[::1]:7001,node-c:7002/")
    assert parsed.nodes == (("10.0.0.1", 7000), ("::1", 7001), ("node-c", 7002))
    assert parsed.password == "s3cret" and parsed.username is None and not parsed.tls
    assert "s3cret" not in repr(parsed)
    assert parse("rediss+cluster://user:p%40ss@h:1").password == "p@ss"
    assert parse("rediss+cluster://user:p%40ss@h:1").tls


@pytest.mark.parametrize(
    "url",
    [
        "redis+cluster://",
        "redis+cluster://host",
        "redis+cluster://:hunter2@host:7000,other",
        "redis+cluster://:hunter2@host:7000/0",
        "redis+cluster://:hunter2@host:7000?ssl=true",
        "redis+cluster://:hunter2@host:notaport",
    ],
)
async def test_bad_cluster_urls_are_configuration_errors_without_the_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await open_store(url)
    assert "hunter2" not in str(caught.value.detail)


async def test_prefix_with_braces_is_refused(redis_cluster: LocalCluster) -> None:
    with pytest.raises(ConfigurationError):
        await open_store(redis_cluster.url, prefix="{satchel}")


async def test_dead_seeds_are_store_unavailable_quickly() -> None:
    from procs import free_port

    url = f"redis+cluster://127.0.0.1:{free_port()},127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await open_store(url, command_timeout=0.5)
    assert time.monotonic() - started < 3


async def test_three_seeds_are_enough_to_find_every_node(redis_cluster: LocalCluster) -> None:
    redis_cluster.wait_ok(30)  # a node restarted by a fault test has rejoined as a replica
    store: Any = await open_store(redis_cluster.seed_url, prefix=f"seed{uuid.uuid4().hex[:8]}")
    try:
        assert len(store.client.get_nodes()) == 6
        assert len(store.client.get_primaries()) == 3
    finally:
        await store.close()


async def test_scripts_run_on_a_promoted_replica_whose_script_cache_is_empty(
    store: RedisClusterStore, redis_cluster: LocalCluster, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    first = make_session(now, user="failover-user")
    await store.create(first, now=now)
    victim = redis_cluster.master_for_slot(slot(store.index_key("failover-user")))
    redis_cluster.kill(victim)
    try:
        # Keep the client busy through the gap, as a server under load is: it learns the
        # new slot map from its failures, not from a clean start.
        deadline = time.monotonic() + 20
        while True:
            try:
                if await store.touch(first.id, last_seen_at=now + 1, idle_expires_at=now + 600):
                    break
            except StoreUnavailable:
                assert time.monotonic() < deadline, "scripts never ran again after the failover"
            await asyncio.sleep(0.05)
        # Every script of the session path, on a master that had never seen any of them.
        second = make_session(now + 1, user="failover-user")
        await store.create(second, now=now + 1, max_per_user=5)
        assert [r.id for r in await store.list_user("failover-user")] == [first.id, second.id]
        assert await store.delete(second.id) is not None
        assert await store.delete_user("failover-user") == [first.id]
    finally:
        redis_cluster.restart(victim)
        redis_cluster.wait_ok(30)


async def test_login_throttle_counts_across_processes_on_the_cluster(
    redis_cluster: LocalCluster, manual_clock: ManualClock
) -> None:
    from satchel.accounts.throttle import LoginThrottle, LoginThrottled, ThrottlePolicy

    policy = ThrottlePolicy(account_limit=5, ip_limit=3)
    prefix = f"thr{uuid.uuid4().hex[:8]}"
    a = LoginThrottle.from_url(redis_cluster.url, policy, clock=manual_clock, prefix=prefix)
    b = LoginThrottle.from_url(redis_cluster.url, policy, clock=manual_clock, prefix=prefix)
    try:
        # Accounts and addresses hash to different slots; every counter is one key.
        for n in range(5):
            await (a if n % 2 else b).failure(f"user{n}", "192.0.2.7")
        with pytest.raises(LoginThrottled) as info:
            await a.check("someone", "192.0.2.7")
        assert info.value.scope == "ip"
        for _ in range(5):
            await b.failure("Alice", None)
        with pytest.raises(LoginThrottled) as info:
            await a.check("ALICE", "198.51.100.1")
        assert info.value.scope == "account"
        await a.check("bob", "198.51.100.1")
        manual_clock.advance(7201)
        await a.check("alice", "192.0.2.7")
    finally:
        await a.close()
        await b.close()


def test_throttle_cluster_url_errors_never_show_the_password() -> None:
    from satchel.accounts.throttle import LoginThrottle

    with pytest.raises(ConfigurationError) as info:
        LoginThrottle.from_url("redis+cluster://:hunter2@host-without-port")
    assert "hunter2" not in str(info.value)
