"""SQLite-only behaviour, plus URL parsing in ``open_stores``."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest

from helpers import make_session
from satchel.errors import ConfigurationError, SessionLimitExceeded, StoreUnavailable
from satchel.stores import (
    MemoryStore,
    OnExceed,
    RotateOutcome,
    SessionRecord,
    SQLiteStore,
    open_store,
    open_stores,
    redact_url,
    sqlite_path,
)
from satchel.stores.sqlite_schema import MIGRATIONS

NOW = 1_800_000_000.0


def session(now: float = NOW, **fields: Any) -> SessionRecord:
    return make_session(now, **fields)


@pytest.fixture
async def db_path(tmp_path: Path) -> Path:
    return tmp_path / "auth.db"


async def test_file_is_created_private(db_path: Path) -> None:
    store = SQLiteStore.open(str(db_path))
    try:
        assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
        await store.create(session(), now=NOW)
        wal = Path(f"{db_path}-wal")
        assert wal.exists()
        assert stat.S_IMODE(wal.stat().st_mode) == 0o600
    finally:
        await store.close()


async def test_loose_permissions_are_tightened(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db_path.touch()
    os.chmod(db_path, 0o644)
    with caplog.at_level(logging.WARNING, logger="satchel.stores"):
        store = SQLiteStore.open(str(db_path))
    await store.close()
    assert stat.S_IMODE(db_path.stat().st_mode) == 0o600
    assert any("permissions" in r.getMessage() for r in caplog.records)


async def test_pragmas_wal_normal_busy_timeout(db_path: Path) -> None:
    store = SQLiteStore.open(str(db_path), busy_timeout=1.5)
    try:
        conn = store._conn
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 1500
    finally:
        await store.close()


async def test_migrations_recorded_once_and_indexes_exist(db_path: Path) -> None:
    for _ in range(2):
        store = SQLiteStore.open(str(db_path))
        versions = [v for (v,) in store._conn.execute("SELECT version FROM schema_migrations")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
        await store.close()
    conn = sqlite3.connect(db_path)
    try:
        indexes = {
            row[0]: row[1]
            for row in conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'")
        }
    finally:
        conn.close()
    assert "user_id" in (indexes["sessions_user"] or "")
    assert "expires_at" in (indexes["sessions_expiry"] or "")


async def test_newer_schema_is_a_configuration_error(db_path: Path) -> None:
    store = SQLiteStore.open(str(db_path))
    store._conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (len(MIGRATIONS) + 1,))
    await store.close()
    with pytest.raises(ConfigurationError, match="newer"):
        SQLiteStore.open(str(db_path))


async def test_missing_directory_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Cannot open"):
        await open_store(f"sqlite:///{tmp_path}/no/such/dir/auth.db")


async def test_two_processes_share_one_file(db_path: Path) -> None:
    """Two stores on one file behave like two server processes."""
    a, b = SQLiteStore.open(str(db_path)), SQLiteStore.open(str(db_path))
    try:
        rec = session(refresh_hash=b"r" * 32)
        await a.create(rec, max_per_user=1, on_exceed=OnExceed.DENY, now=NOW)
        got = await b.get(rec.id)
        assert got is not None and got.secret_hash == rec.secret_hash
        with pytest.raises(SessionLimitExceeded):
            await b.create(session(), max_per_user=1, on_exceed=OnExceed.DENY, now=NOW)
        assert (
            await b.rotate_refresh(
                rec.id, presented_hash=b"r" * 32, successor_hash=b"s" * 32, now=NOW, grace=5
            )
            is RotateOutcome.ROTATED
        )
        assert (
            await a.rotate_refresh(
                rec.id, presented_hash=b"r" * 32, successor_hash=b"s" * 32, now=NOW, grace=5
            )
            is RotateOutcome.GRACE
        )
        first = await a.set_secret_if_absent("pepper", b"from-a")
        assert await b.set_secret_if_absent("pepper", b"from-b") == first == b"from-a"
        await b.delete(rec.id)
        assert await a.get(rec.id) is None
    finally:
        await a.close()
        await b.close()


async def test_write_lock_held_elsewhere_is_store_unavailable(db_path: Path) -> None:
    store = SQLiteStore.open(str(db_path), busy_timeout=0.05)
    rec = session()
    await store.create(rec, now=NOW)
    other = sqlite3.connect(db_path, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreUnavailable):
            await store.create(session(), now=NOW)
        # WAL readers are not blocked by the writer.
        assert await store.get(rec.id) is not None
        other.execute("ROLLBACK")
        await store.create(session(), now=NOW)
        assert len(await store.list_user("u1")) == 2
    finally:
        other.close()
        await store.close()


async def test_closed_store_raises_store_unavailable(db_path: Path) -> None:
    store = SQLiteStore.open(str(db_path))
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get("x")


async def test_in_memory_database() -> None:
    store = SQLiteStore.open(":memory:")
    try:
        rec = session()
        await store.create(rec, now=NOW)
        assert await store.get(rec.id) is not None
    finally:
        await store.close()


# --- open_stores URLs ---------------------------------------------------------------------


def test_sqlite_path_forms() -> None:
    assert sqlite_path("sqlite:///satchel.db") == "satchel.db"
    assert sqlite_path("sqlite:///data/satchel.db") == "data/satchel.db"
    assert sqlite_path("sqlite:////var/lib/satchel.db") == "/var/lib/satchel.db"
    assert sqlite_path("SQLITE:///x.db") == "x.db"
    for bad in (
        "sqlite://",
        "sqlite:///",
        "sqlite://host/x.db",
        "sqlite:x.db",
        "sqlite:///a?mode=ro",
    ):
        with pytest.raises(ConfigurationError):
            sqlite_path(bad)


async def test_open_stores_sqlite_relative_and_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rel = await open_stores("sqlite:///rel.db")
    absolute = await open_stores(f"sqlite:///{tmp_path}/abs.db")
    try:
        assert isinstance(rel.sessions, SQLiteStore)
        assert rel.sessions is rel.users is rel.keys
        assert (tmp_path / "rel.db").exists() and (tmp_path / "abs.db").exists()
    finally:
        await rel.close()
        await absolute.close()


async def test_open_stores_memory_and_mixed_local(tmp_path: Path) -> None:
    stores = await open_stores(f"sqlite:///{tmp_path}/u.db", sessions_url="memory://")
    try:
        assert isinstance(stores.sessions, MemoryStore)
        assert isinstance(stores.users, SQLiteStore) and stores.keys is stores.users
    finally:
        await stores.close()
    with pytest.raises(ConfigurationError):
        await open_stores("memory://somewhere")


@pytest.mark.parametrize(
    "url",
    [
        "mysql://admin:hunter2@db.example/auth",
        "hunter2",
        "",
        "http://user:hunter2@example.com/",
        "redis+sentinel://:hunter2@host/0",
        "admin:hunter2@db.example/auth",
    ],
)
async def test_bad_url_is_configuration_error_without_password(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        await open_stores(url)
    assert "hunter2" not in str(info.value)
    assert "hunter2" not in info.value.detail


def test_redact_url() -> None:
    assert redact_url("redis://:s3cret@host:6379/0") == "redis://:***@host:6379/0"
    assert redact_url("postgresql://app:s3cret@db/auth") == "postgresql://app:***@db/auth"
    assert redact_url("postgresql://app@db/auth") == "postgresql://app@db/auth"
    assert redact_url("redis://host:notaport") == "redis://host:notaport"


# --- upgrading an existing file -----------------------------------------------------------

OLD_USER = (
    '{"id":"u-old","username":"Old","username_key":"old","password_hash":"$argon2id$x",'
    '"roles":["admin"],"disabled":false,"created_at":1.0,"updated_at":2.0,"valid_after":0.0}'
)


def _old_database(path: Path, versions: int) -> None:
    """A file as the satchel that knew only the first ``versions`` migrations left it."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute(
            "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
        )
        for version, statements in enumerate(MIGRATIONS[:versions], start=1):
            for statement in statements:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, 0)", (version,))
        conn.execute(
            "INSERT INTO users (id, username_key, record) VALUES (?, ?, ?)",
            ("u-old", "old", OLD_USER),
        )
    finally:
        conn.close()


async def test_existing_file_gains_email_and_claims_columns(db_path: Path) -> None:
    _old_database(db_path, versions=2)
    store = SQLiteStore.open(str(db_path))
    try:
        columns = {row[1] for row in store._conn.execute("PRAGMA table_info(users)")}
        assert {"email", "email_key", "claims"} <= columns
        versions = [v for (v,) in store._conn.execute("SELECT version FROM schema_migrations")]
        assert versions == list(range(1, len(MIGRATIONS) + 1))
        old = await store.get_user("u-old")
        assert old is not None and old.roles == ["admin"]
        assert old.email is None and old.claims == {}
        old.email, old.claims = "Old@Example.com", {"tenant_id": 3}
        await store.update_user(old)
        found = await store.get_user_by_email("old@example.com")
        assert found is not None and found.claims == {"tenant_id": 3}
    finally:
        await store.close()


def test_a_missing_folder_is_named_with_the_fix(tmp_path: Path) -> None:
    """An operator who mistypes the store path learns which folder is missing."""
    missing = tmp_path / "no" / "such" / "folder"
    with pytest.raises(ConfigurationError) as caught:
        SQLiteStore.open(str(missing / "satchel.db"))
    detail = caught.value.detail
    assert str(missing) in detail and "does not exist" in detail
