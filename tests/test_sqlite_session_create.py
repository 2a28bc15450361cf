"""SQLite ``create`` without a per-user limit: expired sessions of that user go in one
statement (the user's other sessions are never read), with the same outcome as the
limited path."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from satchel.stores import OnExceed, SessionRecord, SQLiteStore

NOW = 1_800_000_000.0


def record(user: str, created: float, lifetime: float) -> SessionRecord:
    return SessionRecord(
        id=secrets.token_urlsafe(16),
        user_id=user,
        secret_hash=hashlib.sha256(secrets.token_bytes(16)).digest(),
        created_at=created,
        last_seen_at=created,
        idle_expires_at=created + lifetime,
        absolute_expires_at=created + 10 * lifetime,
    )


async def test_unlimited_create_drops_only_that_users_expired_sessions(tmp_path: Path) -> None:
    store = SQLiteStore.open(str(tmp_path / "auth.db"))
    try:
        expired = record("alice", NOW - 100, 50)
        live = record("alice", NOW - 10, 3600)
        other_expired = record("bob", NOW - 100, 50)
        for old in (expired, live, other_expired):
            await store.create(old, now=old.created_at)
        fresh = record("alice", NOW, 3600)
        result = await store.create(fresh, now=NOW)
        assert result.evicted == []
        assert {s.id for s in await store.list_user("alice")} == {live.id, fresh.id}
        assert await store.get(expired.id) is None
        # Another user's expired session is left to purge_expired.
        assert await store.get(other_expired.id) is not None
    finally:
        await store.close()


async def test_unlimited_create_keeps_every_live_session(tmp_path: Path) -> None:
    store = SQLiteStore.open(str(tmp_path / "auth.db"))
    try:
        for i in range(50):
            await store.create(record("alice", NOW + i, 3600), now=NOW + i)
        assert len(await store.list_user("alice")) == 50
        limited = record("alice", NOW + 60, 3600)
        result = await store.create(
            limited, max_per_user=50, on_exceed=OnExceed.EVICT_OLDEST, now=NOW + 60
        )
        assert len(result.evicted) == 1
        assert len(await store.list_user("alice")) == 50
    finally:
        await store.close()
