"""PostgreSQL-only behaviour: schema and migrations, timeouts, outages, mixed deployments."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from helpers import MakeStores, make_session
from satchel.errors import ConfigurationError, StoreUnavailable
from satchel.stores import SessionRecord, UserRecord, open_store, open_stores
from satchel.stores.postgres import IMPORT_BATCH, PostgresStore
from satchel.stores.postgres_schema import MIGRATIONS
from satchel.stores.redis import RedisStore

pytestmark = pytest.mark.postgres

NOW = 1_800_000_000.0


def session(now: float = NOW, **fields: Any) -> SessionRecord:
    return make_session(now, **fields)


@pytest.fixture
async def schema(database_url: str, run_id: str) -> Any:
    name = f"satchel_pgtest_{run_id}_{secrets.token_hex(3)}"
    yield name
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        await conn.close()


async def test_concurrent_startup_migrates_once(database_url: str, schema: str) -> None:
    stores = await asyncio.gather(
        *(PostgresStore.connect(database_url, schema=schema, max_size=2) for _ in range(6))
    )
    try:
        rows = await stores[0].pool.fetch(
            f'SELECT version FROM "{schema}".schema_migrations ORDER BY version'
        )
        assert [r["version"] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
        assert await stores[0].migrate() == len(MIGRATIONS)
        indexes = {
            r["indexdef"]
            for r in await stores[0].pool.fetch(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = $1 AND tablename = 'sessions'",
                schema,
            )
        }
        assert any("(user_id, created_at)" in d for d in indexes)
        assert any("(expires_at)" in d for d in indexes)
        assert any("(id)" in d for d in indexes)
    finally:
        for store in stores:
            await store.close()


async def test_newer_schema_is_a_configuration_error(database_url: str, schema: str) -> None:
    store = await PostgresStore.connect(database_url, schema=schema)
    await store.pool.execute(
        f'INSERT INTO "{schema}".schema_migrations (version) VALUES ($1)', len(MIGRATIONS) + 1
    )
    await store.close()
    with pytest.raises(ConfigurationError, match="newer"):
        await PostgresStore.connect(database_url, schema=schema)


@pytest.mark.parametrize("bad", ["Bad", "x-y", 'x"; DROP SCHEMA public; --', "", "1abc", "a" * 64])
async def test_schema_name_must_be_an_identifier(database_url: str, bad: str) -> None:
    with pytest.raises(ConfigurationError):
        await PostgresStore.connect(database_url, schema=bad)


async def test_dead_port_is_store_unavailable_quickly() -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await open_store("postgresql://postgres@127.0.0.1:1/test")
    assert time.monotonic() - started < 1.0


async def test_hung_server_is_store_unavailable_after_connect_timeout(
    blackhole_port: int,
) -> None:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        await PostgresStore.connect(
            f"postgresql://postgres@127.0.0.1:{blackhole_port}/test", connect_timeout=0.3
        )
    assert time.monotonic() - started < 2.0


async def test_unknown_role_is_configuration_error_without_password(database_url: str) -> None:
    parts = urlsplit(database_url)
    url = parts._replace(
        netloc=f"no_such_role_x:hunter2@{parts.hostname}:{parts.port or 5432}"
    ).geturl()
    with pytest.raises((ConfigurationError, StoreUnavailable)) as info:
        await open_store(url)
    assert "hunter2" not in str(info.value)


async def test_F06_slow_statement_times_out_and_pool_recovers(
    database_url: str, schema: str
) -> None:
    store = await PostgresStore.connect(
        database_url, schema=schema, command_timeout=0.3, max_size=2
    )
    rec = session()
    await store.create(rec, now=NOW)
    blocker = await asyncpg.connect(database_url)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute(f'LOCK TABLE "{schema}".sessions IN ACCESS EXCLUSIVE MODE')
        for _ in range(3):  # more attempts than pool connections: nothing may leak
            started = time.monotonic()
            with pytest.raises(StoreUnavailable):
                await store.get(rec.id)
            assert time.monotonic() - started < 1.5
        await tx.rollback()
        got = await store.get(rec.id)
        assert got is not None and got.id == rec.id
    finally:
        await blocker.close()
        await store.close()


async def test_closed_pool_is_store_unavailable(database_url: str, schema: str) -> None:
    store = await PostgresStore.connect(database_url, schema=schema)
    await store.close()
    with pytest.raises(StoreUnavailable):
        await store.get("x")


async def test_mixed_deployment_users_in_postgres_sessions_in_redis(
    make_stores: MakeStores,
) -> None:
    stores = await make_stores("postgres+redis")
    assert isinstance(stores.sessions, RedisStore)
    assert isinstance(stores.users, PostgresStore) and stores.keys is stores.users
    pg = stores.users
    rec = session()
    await stores.sessions.create(rec, now=NOW)
    assert await stores.sessions.get(rec.id) is not None
    assert await pg.pool.fetchval(f'SELECT count(*) FROM "{pg.schema}".sessions') == 0
    assert await pg.get_secret("pepper") is None
    assert await stores.keys.set_secret_if_absent("pepper", b"p") == b"p"


async def test_open_stores_closes_main_when_sessions_backend_fails(
    database_url: str, schema: str
) -> None:
    with pytest.raises(StoreUnavailable):
        await open_stores(database_url, schema=schema, sessions_url="redis://127.0.0.1:1/0")
    conn = await asyncpg.connect(database_url)
    try:
        # Only our probe connection remains for this schema's application: the pool was closed.
        open_pools = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND query LIKE $1",
            f"%{schema}%",
        )
    finally:
        await conn.close()
    assert open_pools == 0


OLD_USER = (
    '{"id":"u-old","username":"Old","username_key":"old","password_hash":"$argon2id$x",'
    '"roles":["admin"],"disabled":false,"created_at":1.0,"updated_at":2.0,"valid_after":0.0}'
)


async def test_existing_schema_gains_email_and_claims_columns(
    database_url: str, schema: str
) -> None:
    """A schema as the satchel with only the first migration left it upgrades in place."""
    s = f'"{schema}"'
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(f"CREATE SCHEMA {s}")
        await conn.execute(
            f"CREATE TABLE {s}.schema_migrations"
            " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for statement in MIGRATIONS[0]:
            await conn.execute(statement.format(s=s))
        await conn.execute(f"INSERT INTO {s}.schema_migrations (version) VALUES (1)")
        await conn.execute(
            f"INSERT INTO {s}.users (id, username_key, record) VALUES ($1, $2, $3::jsonb)",
            "u-old",
            "old",
            OLD_USER,
        )
    finally:
        await conn.close()
    store = await PostgresStore.connect(database_url, schema=schema)
    try:
        columns = {
            r["column_name"]
            for r in await store.pool.fetch(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_schema = $1 AND table_name = 'users'",
                schema,
            )
        }
        assert {"email", "email_key", "claims"} <= columns
        old = await store.get_user("u-old")
        assert old is not None and old.roles == ["admin"]
        assert old.email is None and old.claims == {}
        old.email, old.claims = "Old@Example.com", {"tenant_id": 3}
        await store.update_user(old)
        found = await store.get_user_by_email("OLD@example.com")
        assert found is not None and found.claims == {"tenant_id": 3}
    finally:
        await store.close()


async def test_create_users_failing_midway_leaves_nothing(make_stores: MakeStores) -> None:
    """A row PostgreSQL refuses in a late batch rolls back the batches before it."""
    store = (await make_stores("postgres")).users
    users = [
        UserRecord(id=f"id{i}", username=f"u{i}", username_key=f"u{i}", password_hash="h")
        for i in range(IMPORT_BATCH + 10)
    ]
    users[-1].username = users[-1].username_key = "nul\x00byte"  # text cannot hold NUL
    with pytest.raises(StoreUnavailable):
        await store.create_users(users)
    assert await store.list_users() == []
    assert await store.get_user("id0") is None


async def test_a_missing_database_is_named_with_the_fix(database_url: str) -> None:
    """Not an outage (503) but an operator's mistake: which database, on which host, and how
    to create it."""
    from urllib.parse import urlsplit, urlunsplit

    from satchel.errors import ConfigurationError
    from satchel.stores.postgres import PostgresStore

    missing = urlunsplit(urlsplit(database_url)._replace(path="/satchel_no_such_db_42"))
    with pytest.raises(ConfigurationError) as caught:
        await PostgresStore.connect(missing)
    detail = caught.value.detail
    assert "satchel_no_such_db_42" in detail and "does not exist" in detail
    assert "createdb" in detail
