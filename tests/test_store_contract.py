"""One contract for every store backend: memory, SQLite, Redis and PostgreSQL.

Each test runs against the four real backends (Redis and PostgreSQL skip loudly when the
service is down, and fail on CI). Times come from a manual clock, never from sleeping.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import secrets
import uuid
from pathlib import Path
from typing import Any

import pytest

from helpers import HOUR, MakeStores
from helpers import make_session as session
from satchel.clock import ManualClock
from satchel.errors import ConfigurationError, NotFound, SessionLimitExceeded, UserExists
from satchel.jose.b64 import encode as b64e
from satchel.stores import (
    KeyState,
    MemoryStore,
    OnExceed,
    RotateOutcome,
    SessionRecord,
    SQLiteStore,
    StoredKey,
    UserRecord,
)

STORE_KINDS = ("memory", "sqlite", "redis", "postgres", "redis-cluster", "postgres-pgbouncer")
#: The service each backend needs (its pytest mark).
SERVICE = {
    "redis": "redis",
    "postgres": "postgres",
    "redis-cluster": "redis",
    "postgres-pgbouncer": "postgres",
}


@pytest.fixture(
    params=[
        pytest.param(kind, marks=[getattr(pytest.mark, SERVICE[kind])] if kind in SERVICE else [])
        for kind in STORE_KINDS
    ]
)
async def store(request: pytest.FixtureRequest, make_stores: MakeStores) -> Any:
    """One backend object implementing SessionStore, UserStore and KeyStore."""
    stores = await make_stores(request.param)
    assert stores.sessions is stores.users is stores.keys
    return stores.sessions


def user_record(name: str, **fields: Any) -> UserRecord:
    return UserRecord(
        id=uuid.uuid4().hex,
        username=name,
        username_key=name.casefold(),
        password_hash="$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
        **fields,
    )


def ids(records: list[SessionRecord]) -> list[str]:
    return [r.id for r in records]


# --- sessions -----------------------------------------------------------------------------


async def test_create_get_round_trips_every_field(store: Any, manual_clock: ManualClock) -> None:
    # Millisecond-exact times: Redis keeps milliseconds (see test_redis_store).
    now = manual_clock.now + 0.123
    rec = session(
        now,
        ip="2001:db8::1",
        user_agent="Mozilla/5.0 (X11; Linux x86_64) ☃",
        data={"theme": "dark", "n": [1, 2.5, None], "nested": {"ok": True}},
        refresh_hash=b"\x00" * 32,
        refresh_prev_hash=b"\xff" * 32,
        refresh_rotated_at=now - 1.5,
        generation=7,
    )
    result = await store.create(rec, now=now)
    assert result.evicted == []
    got = await store.get(rec.id)
    assert got is not None
    assert dataclasses.asdict(got) == dataclasses.asdict(rec)


async def test_minimal_record_round_trips(store: Any, manual_clock: ManualClock) -> None:
    rec = session(manual_clock.now)
    await store.create(rec, now=manual_clock.now)
    got = await store.get(rec.id)
    assert got is not None
    assert dataclasses.asdict(got) == dataclasses.asdict(rec)


async def test_get_unknown_is_none(store: Any) -> None:
    assert await store.get("never-issued") is None


async def test_duplicate_session_id_is_refused(store: Any, manual_clock: ManualClock) -> None:
    rec = session(manual_clock.now)
    await store.create(rec, now=manual_clock.now)
    clash = session(manual_clock.now, sid=rec.id, user="someone-else")
    with pytest.raises(ValueError):
        await store.create(clash, now=manual_clock.now)
    got = await store.get(rec.id)
    assert got is not None and got.user_id == "u1"
    assert await store.list_user("someone-else") == []


async def test_touch_updates_activity_and_expiry(store: Any, manual_clock: ManualClock) -> None:
    rec = session(manual_clock.now)
    await store.create(rec, now=manual_clock.now)
    later = manual_clock.advance(600)
    assert await store.touch(rec.id, last_seen_at=later, idle_expires_at=later + HOUR) is True
    got = await store.get(rec.id)
    assert got is not None
    assert got.last_seen_at == later
    assert got.idle_expires_at == later + HOUR
    assert got.absolute_expires_at == rec.absolute_expires_at


async def test_touch_unknown_is_false(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    assert await store.touch("nope", last_seen_at=now, idle_expires_at=now + HOUR) is False
    assert await store.get("nope") is None


async def test_F10_touch_after_delete_does_not_resurrect(
    store: Any, manual_clock: ManualClock
) -> None:
    rec = session(manual_clock.now)
    await store.create(rec, now=manual_clock.now)
    await store.delete(rec.id)
    now = manual_clock.advance(1)
    assert await store.touch(rec.id, last_seen_at=now, idle_expires_at=now + HOUR) is False
    assert await store.get(rec.id) is None
    assert await store.list_user("u1") == []


async def test_delete_returns_record_and_is_idempotent(
    store: Any, manual_clock: ManualClock
) -> None:
    rec = session(manual_clock.now)
    other = session(manual_clock.now + 1)
    await store.create(rec, now=manual_clock.now)
    await store.create(other, now=manual_clock.now)
    removed = await store.delete(rec.id)
    assert removed is not None and removed.id == rec.id
    assert removed.secret_hash == rec.secret_hash
    assert await store.delete(rec.id) is None
    assert await store.get(rec.id) is None
    assert ids(await store.list_user("u1")) == [other.id]


async def test_delete_user_removes_all_or_all_but_keep(
    store: Any, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    mine = [session(now + i) for i in range(4)]
    theirs = session(now, user="u2")
    for rec in [*mine, theirs]:
        await store.create(rec, now=now)

    removed = await store.delete_user("u1", keep=mine[2].id)
    assert sorted(removed) == sorted(r.id for r in mine if r is not mine[2])
    assert ids(await store.list_user("u1")) == [mine[2].id]
    assert await store.get(mine[0].id) is None

    assert await store.delete_user("u1") == [mine[2].id]
    assert await store.list_user("u1") == []
    assert await store.delete_user("u1") == []
    assert ids(await store.list_user("u2")) == [theirs.id]


async def test_list_user_oldest_first_only_that_user(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    # Inserted out of order: listing must follow created_at, not insertion.
    recs = [session(now + t) for t in (30, 10, 20)]
    for rec in recs:
        await store.create(rec, now=now + 30)
    await store.create(session(now, user="u2"), now=now + 30)
    listed = await store.list_user("u1")
    assert [r.created_at for r in listed] == [now + 10, now + 20, now + 30]
    assert {r.user_id for r in listed} == {"u1"}
    assert await store.list_user("nobody") == []


async def test_list_all_newest_first_with_paging(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    recs = [session(now + i, user=f"user{i % 3}") for i in range(7)]
    for rec in recs:
        await store.create(rec, now=now + 7)
    newest_first = [r.id for r in reversed(recs)]
    assert ids(await store.list_all()) == newest_first
    assert ids(await store.list_all(limit=3)) == newest_first[:3]
    assert ids(await store.list_all(limit=3, offset=3)) == newest_first[3:6]
    assert ids(await store.list_all(limit=3, offset=6)) == newest_first[6:]
    assert await store.list_all(limit=3, offset=7) == []


async def test_purge_expired_idle_and_absolute(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    idle_gone = session(now, idle=60)
    absolute_gone = session(now, user="u2", idle=HOUR, absolute=120)
    alive = session(now, idle=HOUR)
    for rec in (idle_gone, absolute_gone, alive):
        await store.create(rec, now=now)

    assert await store.purge_expired(now + 59) == 0
    assert await store.purge_expired(now + 200) == 2
    assert await store.get(idle_gone.id) is None
    assert await store.get(absolute_gone.id) is None
    assert ids(await store.list_user("u1")) == [alive.id]
    assert await store.list_user("u2") == []
    assert await store.purge_expired(now + 200) == 0


async def test_purge_respects_touch(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    rec = session(now, idle=60)
    await store.create(rec, now=now)
    await store.touch(rec.id, last_seen_at=now + 50, idle_expires_at=now + 110)
    assert await store.purge_expired(now + 100) == 0
    assert await store.purge_expired(now + 110) == 1


# --- per-user limits ----------------------------------------------------------------------


async def test_S13_evict_oldest(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    first, second, third = (session(now + i) for i in range(3))
    for rec in (first, second):
        assert (await store.create(rec, max_per_user=2, now=now + 2)).evicted == []
    result = await store.create(third, max_per_user=2, on_exceed=OnExceed.EVICT_OLDEST, now=now + 2)
    assert result.evicted == [first.id]
    assert await store.get(first.id) is None
    assert ids(await store.list_user("u1")) == [second.id, third.id]


async def test_evict_oldest_by_created_at_not_insertion(
    store: Any, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    newer, older = session(now + 5), session(now + 1)
    await store.create(newer, max_per_user=2, now=now + 5)
    await store.create(older, max_per_user=2, now=now + 5)
    result = await store.create(session(now + 6), max_per_user=2, now=now + 6)
    assert result.evicted == [older.id]
    assert await store.get(newer.id) is not None


async def test_evicts_enough_when_limit_was_lowered(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    recs = [session(now + i) for i in range(4)]
    for rec in recs:
        await store.create(rec, now=now + 4)
    result = await store.create(session(now + 5), max_per_user=2, now=now + 5)
    assert result.evicted == [recs[0].id, recs[1].id, recs[2].id]
    assert len(await store.list_user("u1")) == 2


async def test_S13_deny_raises_and_writes_nothing(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    existing = [session(now + i) for i in range(2)]
    for rec in existing:
        await store.create(rec, max_per_user=2, on_exceed=OnExceed.DENY, now=now + 2)
    # An expired one would be cleaned up by a successful create; a denied one must not.
    stale = session(now - 10 * HOUR, idle=60)
    await store.create(stale, now=now - 10 * HOUR)
    before = ids(await store.list_user("u1"))
    extra = session(now + 3)
    with pytest.raises(SessionLimitExceeded):
        await store.create(extra, max_per_user=2, on_exceed=OnExceed.DENY, now=now + 3)
    assert await store.get(extra.id) is None
    assert ids(await store.list_user("u1")) == before


async def test_expired_sessions_do_not_count(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    for i in range(2):
        await store.create(session(now + i, idle=60), max_per_user=2, now=now + i)
    later = manual_clock.advance(HOUR)
    fresh = session(later)
    result = await store.create(fresh, max_per_user=2, on_exceed=OnExceed.DENY, now=later)
    assert result.evicted == []
    assert ids(await store.list_user("u1")) == [fresh.id]


async def test_limit_is_per_user(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    await store.create(session(now, user="a"), max_per_user=1, on_exceed=OnExceed.DENY, now=now)
    await store.create(session(now, user="b"), max_per_user=1, on_exceed=OnExceed.DENY, now=now)
    with pytest.raises(SessionLimitExceeded):
        await store.create(session(now, user="a"), max_per_user=1, on_exceed=OnExceed.DENY, now=now)


async def test_concurrent_creates_respect_limit(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now

    async def attempt(i: int) -> bool:
        try:
            await store.create(
                session(now + i), max_per_user=3, on_exceed=OnExceed.DENY, now=now + 20
            )
        except SessionLimitExceeded:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt(i) for i in range(15)))
    assert outcomes.count(True) == 3
    assert len(await store.list_user("u1")) == 3


@pytest.mark.parametrize("bad", [0, -1])
async def test_nonsensical_limit_is_a_configuration_error(
    store: Any, manual_clock: ManualClock, bad: int
) -> None:
    rec = session(manual_clock.now)
    with pytest.raises(ConfigurationError):
        await store.create(rec, max_per_user=bad, now=manual_clock.now)
    assert await store.get(rec.id) is None


# --- refresh rotation ---------------------------------------------------------------------

RT0, RT1, RT2 = (hashlib.sha256(f"rt{i}".encode()).digest() for i in range(3))


async def _with_refresh(store: Any, now: float) -> SessionRecord:
    rec = session(now, refresh_hash=RT0)
    await store.create(rec, now=now)
    return rec


async def test_R01_rotate_then_grace_then_reused(store: Any, manual_clock: ManualClock) -> None:
    rec = await _with_refresh(store, manual_clock.now)
    t1 = manual_clock.advance(10)
    outcome = await store.rotate_refresh(
        rec.id, presented_hash=RT0, successor_hash=RT1, now=t1, grace=5
    )
    assert outcome is RotateOutcome.ROTATED
    got = await store.get(rec.id)
    assert got is not None
    assert (got.refresh_hash, got.refresh_prev_hash) == (RT1, RT0)
    assert got.refresh_rotated_at == t1
    assert got.generation == 1

    # A concurrent tab presenting RT0 inside the grace window gets the same successor.
    same = await store.rotate_refresh(
        rec.id, presented_hash=RT0, successor_hash=RT1, now=t1 + 5, grace=5
    )
    assert same is RotateOutcome.GRACE
    # ...but never a different one.
    other = await store.rotate_refresh(
        rec.id, presented_hash=RT0, successor_hash=RT2, now=t1 + 1, grace=5
    )
    assert other is RotateOutcome.REUSED
    # After the window RT0 is a stolen token.
    late = await store.rotate_refresh(
        rec.id, presented_hash=RT0, successor_hash=RT1, now=t1 + 5.001, grace=5
    )
    assert late is RotateOutcome.REUSED
    got = await store.get(rec.id)
    assert got is not None and got.refresh_hash == RT1 and got.generation == 1

    # The current token still rotates normally.
    t2 = manual_clock.advance(60)
    again = await store.rotate_refresh(
        rec.id, presented_hash=RT1, successor_hash=RT2, now=t2, grace=5
    )
    assert again is RotateOutcome.ROTATED
    got = await store.get(rec.id)
    assert got is not None
    assert (got.refresh_hash, got.refresh_prev_hash, got.generation) == (RT2, RT1, 2)


async def test_rotate_unknown_and_garbage(store: Any, manual_clock: ManualClock) -> None:
    now = manual_clock.now
    assert (
        await store.rotate_refresh("nope", presented_hash=RT0, successor_hash=RT1, now=now, grace=5)
        is RotateOutcome.UNKNOWN
    )
    rec = await _with_refresh(store, now)
    garbage = secrets.token_bytes(32)
    assert (
        await store.rotate_refresh(
            rec.id, presented_hash=garbage, successor_hash=RT1, now=now, grace=5
        )
        is RotateOutcome.REUSED
    )
    got = await store.get(rec.id)
    assert got is not None and got.refresh_hash == RT0 and got.generation == 0


async def test_rotate_without_refresh_token_is_reused(
    store: Any, manual_clock: ManualClock
) -> None:
    rec = session(manual_clock.now)
    await store.create(rec, now=manual_clock.now)
    outcome = await store.rotate_refresh(
        rec.id, presented_hash=RT0, successor_hash=RT1, now=manual_clock.now, grace=5
    )
    assert outcome is RotateOutcome.REUSED
    got = await store.get(rec.id)
    assert got is not None and got.refresh_hash is None


async def test_rotate_expired_session_is_unknown(store: Any, manual_clock: ManualClock) -> None:
    rec = session(manual_clock.now, refresh_hash=RT0, idle=60)
    await store.create(rec, now=manual_clock.now)
    outcome = await store.rotate_refresh(
        rec.id, presented_hash=RT0, successor_hash=RT1, now=manual_clock.now + 60, grace=5
    )
    assert outcome is RotateOutcome.UNKNOWN
    got = await store.get(rec.id)
    assert got is not None and got.refresh_hash == RT0


async def test_rotate_after_delete_is_unknown(store: Any, manual_clock: ManualClock) -> None:
    rec = await _with_refresh(store, manual_clock.now)
    await store.delete(rec.id)
    outcome = await store.rotate_refresh(
        rec.id, presented_hash=RT0, successor_hash=RT1, now=manual_clock.now, grace=5
    )
    assert outcome is RotateOutcome.UNKNOWN
    assert await store.get(rec.id) is None


async def test_F09_twenty_parallel_rotations_one_winner(
    store: Any, manual_clock: ManualClock
) -> None:
    rec = await _with_refresh(store, manual_clock.now)
    now = manual_clock.advance(1)
    outcomes = await asyncio.gather(
        *(
            store.rotate_refresh(rec.id, presented_hash=RT0, successor_hash=RT1, now=now, grace=5)
            for _ in range(20)
        )
    )
    assert outcomes.count(RotateOutcome.ROTATED) == 1
    assert outcomes.count(RotateOutcome.GRACE) == 19
    got = await store.get(rec.id)
    assert got is not None
    assert (got.refresh_hash, got.generation) == (RT1, 1)


async def test_F09_parallel_rotations_with_distinct_successors(
    store: Any, manual_clock: ManualClock
) -> None:
    rec = await _with_refresh(store, manual_clock.now)
    now = manual_clock.advance(1)
    successors = [secrets.token_bytes(32) for _ in range(20)]
    outcomes = await asyncio.gather(
        *(
            store.rotate_refresh(rec.id, presented_hash=RT0, successor_hash=s, now=now, grace=5)
            for s in successors
        )
    )
    assert outcomes.count(RotateOutcome.ROTATED) == 1
    assert outcomes.count(RotateOutcome.REUSED) == 19
    winner = successors[outcomes.index(RotateOutcome.ROTATED)]
    got = await store.get(rec.id)
    assert got is not None and got.refresh_hash == winner and got.generation == 1


# --- users --------------------------------------------------------------------------------


async def test_user_create_and_lookup(store: Any) -> None:
    alice = user_record("Alice", roles=["admin", "ops"], created_at=1.5, valid_after=2.25)
    await store.create_user(alice)
    by_id = await store.get_user(alice.id)
    by_name = await store.get_user_by_name("alice")
    assert by_id is not None and by_name is not None
    assert dataclasses.asdict(by_id) == dataclasses.asdict(alice)
    assert dataclasses.asdict(by_name) == dataclasses.asdict(alice)
    assert await store.get_user("missing") is None
    assert await store.get_user_by_name("Alice") is None  # keys are already normalised


async def test_duplicate_username_key_is_user_exists(store: Any) -> None:
    first = user_record("Bob")
    await store.create_user(first)
    clash = user_record("BOB")
    with pytest.raises(UserExists):
        await store.create_user(clash)
    assert await store.get_user(clash.id) is None
    stored = await store.get_user_by_name("bob")
    assert stored is not None and stored.id == first.id


async def test_concurrent_duplicate_users_one_wins(store: Any) -> None:
    async def attempt() -> bool:
        try:
            await store.create_user(user_record("carol"))
        except UserExists:
            return False
        return True

    outcomes = await asyncio.gather(*(attempt() for _ in range(10)))
    assert outcomes.count(True) == 1
    assert len(await store.list_users()) == 1


async def test_update_user(store: Any) -> None:
    dave = user_record("Dave")
    await store.create_user(dave)
    dave.roles = ["admin"]
    dave.disabled = True
    dave.valid_after = 123.5
    dave.username, dave.username_key = "David", "david"
    await store.update_user(dave)
    got = await store.get_user(dave.id)
    assert got is not None and dataclasses.asdict(got) == dataclasses.asdict(dave)
    assert await store.get_user_by_name("dave") is None
    renamed = await store.get_user_by_name("david")
    assert renamed is not None and renamed.id == dave.id
    # The old name is free again.
    await store.create_user(user_record("dave"))


async def test_update_user_to_taken_name_or_missing(store: Any) -> None:
    erin, frank = user_record("erin"), user_record("frank")
    await store.create_user(erin)
    await store.create_user(frank)
    frank.username_key = "erin"
    with pytest.raises(UserExists):
        await store.update_user(frank)
    stored = await store.get_user_by_name("erin")
    assert stored is not None and stored.id == erin.id
    again = await store.get_user(frank.id)
    assert again is not None and again.username_key == "frank"
    with pytest.raises(NotFound):
        await store.update_user(user_record("ghost"))
    assert await store.get_user_by_name("ghost") is None


async def test_list_users_ordered_with_paging(store: Any) -> None:
    for name in ("mallory", "alice", "trent", "bob", "eve"):
        await store.create_user(user_record(name))
    names = [u.username for u in await store.list_users()]
    assert names == ["alice", "bob", "eve", "mallory", "trent"]
    assert [u.username for u in await store.list_users(limit=2, offset=1)] == ["bob", "eve"]
    assert await store.list_users(offset=5) == []


# --- keys and secrets ---------------------------------------------------------------------


async def test_keys_save_list_replace(store: Any) -> None:
    assert await store.list_keys() == []
    old = StoredKey("k-old", "EdDSA", "-----BEGIN PRIVATE KEY-----\nA\n", KeyState.ACTIVE, 10.0)
    new = StoredKey("k-new", "HS256", "c2VjcmV0LWtleS1tYXRlcmlhbA", KeyState.ACTIVE, 20.0)
    await store.save_key(new)
    await store.save_key(old)
    listed = await store.list_keys()
    assert [k.kid for k in listed] == ["k-old", "k-new"]
    assert dataclasses.asdict(listed[0]) == dataclasses.asdict(old)

    old.state, old.not_after = KeyState.PREVIOUS, 99.5
    await store.save_key(old)
    listed = await store.list_keys()
    assert len(listed) == 2
    assert (listed[0].state, listed[0].not_after) == (KeyState.PREVIOUS, 99.5)


async def test_secret_first_writer_wins(store: Any) -> None:
    assert await store.get_secret("pepper") is None
    first = secrets.token_bytes(32)
    assert await store.set_secret_if_absent("pepper", first) == first
    assert await store.set_secret_if_absent("pepper", secrets.token_bytes(32)) == first
    assert await store.get_secret("pepper") == first
    assert await store.get_secret("other") is None


async def test_secret_first_writer_wins_under_concurrency(store: Any) -> None:
    candidates = [secrets.token_bytes(32) for _ in range(20)]
    results = await asyncio.gather(*(store.set_secret_if_absent("csrf", c) for c in candidates))
    assert len(set(results)) == 1
    assert results[0] in candidates
    assert await store.get_secret("csrf") == results[0]


# --- corrupt records and what is stored (F12, S07) ----------------------------------------


async def corrupt_session(store: Any, session_id: str) -> None:
    """Overwrite a stored session with garbage, straight into the backend."""
    if isinstance(store, MemoryStore):
        store._sessions[session_id].blob = b'{"u": "u1", "h": 12'
    elif isinstance(store, SQLiteStore):
        store._conn.execute("UPDATE sessions SET data = '{not json' WHERE id = ?", (session_id,))
    elif type(store).__name__ == "RedisStore":
        await store.client.hset(f"{store.prefix}:s:{session_id}", "c", "yesterday")
    elif type(store).__name__ == "RedisClusterStore":
        key = store.session_key(await store.owner(session_id), session_id)
        await store.client.hset(key, "c", "yesterday")
    else:
        await store.pool.execute(
            f"UPDATE \"{store.schema}\".sessions SET data = '[1, 2]'::jsonb WHERE id = $1",
            session_id,
        )


async def corrupt_user(store: Any, user_id: str) -> None:
    """Overwrite a stored user with garbage, straight into the backend."""
    if isinstance(store, MemoryStore):
        store._users[user_id] = '{"id": 1}'
    elif isinstance(store, SQLiteStore):
        store._conn.execute("UPDATE users SET record = '[' WHERE id = ?", (user_id,))
    elif type(store).__name__ in ("RedisStore", "RedisClusterStore"):
        await store.client.set(f"{store._user}{user_id}", b"\x80\x81 not json")
    else:
        await store.pool.execute(
            f'UPDATE "{store.schema}".users SET record = \'{{"id": 5}}\'::jsonb WHERE id = $1',
            user_id,
        )


async def test_F12_corrupt_session_reads_as_none_and_logs(
    store: Any, manual_clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    now = manual_clock.now
    bad, good = session(now), session(now + 1)
    await store.create(bad, now=now)
    await store.create(good, now=now)
    await corrupt_session(store, bad.id)
    with caplog.at_level(logging.WARNING, logger="satchel.stores"):
        assert await store.get(bad.id) is None
        assert ids(await store.list_user("u1")) == [good.id]
        assert ids(await store.list_all()) == [good.id]
    corrupt_lines = [r for r in caplog.records if "corrupt session" in r.getMessage()]
    assert corrupt_lines
    assert all(bad.id not in r.getMessage() for r in caplog.records)
    # Deleting it still works, so an operator can clean up.
    await store.delete(bad.id)
    assert await store.get(bad.id) is None


async def test_F12_corrupt_user_reads_as_none(store: Any, caplog: pytest.LogCaptureFixture) -> None:
    user = user_record("zed")
    await store.create_user(user)
    await corrupt_user(store, user.id)
    with caplog.at_level(logging.WARNING, logger="satchel.stores"):
        assert await store.get_user(user.id) is None
        assert await store.get_user_by_name("zed") is None
        assert await store.list_users() == []
    assert any("corrupt user" in r.getMessage() for r in caplog.records)


async def dump_sessions(store: Any) -> bytes:
    """Everything the backend holds for sessions, as raw bytes."""
    if isinstance(store, MemoryStore):
        return b"\n".join(e.blob for e in store._sessions.values())
    if isinstance(store, SQLiteStore):
        store._conn.execute("PRAGMA wal_checkpoint(FULL)")
        path = Path(store.path)
        return b"".join(p.read_bytes() for p in (path, Path(f"{path}-wal")) if p.exists())
    if type(store).__name__ in ("RedisStore", "RedisClusterStore"):
        chunks: list[bytes] = []
        # The cluster layout also has keys starting with "{prefix:" (its hash tags).
        keys = [k async for k in store.client.scan_iter(match=f"{store.prefix}:*", count=10_000)]
        if type(store).__name__ == "RedisClusterStore":
            keys += [k async for k in store.client.scan_iter(match=f"{{{store.prefix}:*")]
        for key in keys:
            chunks.append(key)
            kind = await store.client.type(key)
            if kind == b"hash":
                for k, v in (await store.client.hgetall(key)).items():
                    chunks += [k, v]
            elif kind == b"zset":
                chunks += await store.client.zrange(key, 0, -1)
            elif kind == b"string":
                chunks.append(await store.client.get(key))
        return b"\n".join(chunks)
    rows = await store.pool.fetch(f'SELECT * FROM "{store.schema}".sessions')
    return b"\n".join(
        v if isinstance(v, bytes) else str(v).encode() for row in rows for v in row.values()
    )


async def test_S07_raw_secret_is_never_stored(store: Any, manual_clock: ManualClock) -> None:
    secret = f"PLAINTEXT-SECRET-{uuid.uuid4().hex}".encode()
    refresh = f"PLAINTEXT-REFRESH-{uuid.uuid4().hex}".encode()
    rec = session(manual_clock.now, refresh_hash=hashlib.sha256(refresh).digest())
    rec.secret_hash = hashlib.sha256(secret).digest()
    await store.create(rec, now=manual_clock.now)
    dump = await dump_sessions(store)
    assert rec.secret_hash in dump or b64e(rec.secret_hash).encode() in dump
    assert secret not in dump and refresh not in dump
    assert b"PLAINTEXT" not in dump


async def test_unicode_and_hostile_ids_are_plain_data(
    store: Any, manual_clock: ManualClock
) -> None:
    now = manual_clock.now
    hostile = ["'; DROP TABLE sessions; --", "a*b?[c]\\", "ünï:cødé", "x" * 300]
    for sid in hostile:
        await store.create(session(now, sid=sid, user=sid), now=now)
    for sid in hostile:
        got = await store.get(sid)
        assert got is not None and got.user_id == sid
        assert ids(await store.list_user(sid)) == [sid]
    assert await store.get("a*") is None
    assert len(await store.list_all(limit=100)) == len(hostile)
    assert await store.delete_user(hostile[0]) == [hostile[0]]
    assert len(await store.list_all(limit=100)) == len(hostile) - 1
