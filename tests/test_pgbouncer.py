"""PostgreSQL through a real PgBouncer in transaction pooling mode (``pgbouncer`` fixture).

The store contract runs through it in ``test_store_contract.py`` (kind
``postgres-pgbouncer``). Here: why ``?pgbouncer=true`` is needed, the per-user limit under
concurrency with few server connections, the bus's direct connection, and real server
processes whose store goes through PgBouncer while the bus goes straight to PostgreSQL.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest

from helpers import MakeStores, Recorder, make_session, started, until
from pgbouncer import LocalPgBouncer
from procs import SatchelServer, free_port, satchel_cli, start_servers
from satchel.errors import ConfigurationError
from satchel.revocation import make_bus
from satchel.revocation.base import RevocationEvent, RevocationKind
from satchel.revocation.postgres import PostgresBus
from satchel.stores import OnExceed, open_store
from satchel.stores.postgres import PostgresStore
from satchel.stores.postgres_pool import split_pooler_option
from satchel.stores.postgres_schema import MIGRATIONS
from test_multiprocess import PASSWORD, USER, counters, login, me, rejected_within

pytestmark = pytest.mark.postgres


def test_the_option_is_satchels_and_is_removed_before_asyncpg_sees_it() -> None:
    url = "postgresql://app:pw@db:6432/main?sslmode=disable&pgbouncer=true"
    stripped, pooled = split_pooler_option(url)
    assert pooled and stripped == "postgresql://app:pw@db:6432/main?sslmode=disable"
    assert split_pooler_option("postgresql://db/main") == ("postgresql://db/main", False)
    assert split_pooler_option("postgresql://db/main?pgbouncer=0")[1] is False
    with pytest.raises(ConfigurationError):
        split_pooler_option("postgresql://db/main?pgbouncer=maybe")


async def test_session_limit_holds_under_concurrency_through_the_pooler(
    make_stores: MakeStores,
) -> None:
    store = (await make_stores("postgres-pgbouncer")).sessions
    assert isinstance(store, PostgresStore) and store.pooled
    now = 1_800_000_000.0
    records = [make_session(now + i / 1000, user="racer") for i in range(40)]
    results = await asyncio.gather(
        *(
            store.create(r, now=now + 1, max_per_user=3, on_exceed=OnExceed.EVICT_OLDEST)
            for r in records
        ),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException)]
    assert len(await store.list_user("racer")) == 3


async def test_concurrent_startups_migrate_once_through_the_pooler(
    pgbouncer: LocalPgBouncer, database_url: str
) -> None:
    schema = f"pgb_{uuid.uuid4().hex[:12]}"
    stores: list[Any] = []
    try:
        stores = await asyncio.gather(*(open_store(pgbouncer.url, schema=schema) for _ in range(4)))
        conn = await asyncpg.connect(database_url)
        try:
            versions = await conn.fetch(f'SELECT version FROM "{schema}".schema_migrations')
        finally:
            await conn.close()
        # Every migration applied exactly once, whichever of the four starters ran it.
        assert sorted(v[0] for v in versions) == list(range(1, len(MIGRATIONS) + 1))
    finally:
        for store in stores:
            await store.close()
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()


async def test_bus_refuses_to_listen_through_the_pooler(
    make_stores: MakeStores, pgbouncer: LocalPgBouncer
) -> None:
    store = (await make_stores("postgres-pgbouncer")).sessions
    with pytest.raises(ConfigurationError) as caught:
        make_bus("auto", store=pgbouncer.url, sessions_backend=store)
    assert "SATCHEL_BUS_URL" in caught.value.detail


async def test_bus_url_listens_and_notifies_directly(
    make_stores: MakeStores, pgbouncer: LocalPgBouncer, database_url: str
) -> None:
    store = (await make_stores("postgres-pgbouncer")).sessions
    assert isinstance(store, PostgresStore)
    one = make_bus("auto", store=pgbouncer.url, sessions_backend=store, bus_url=database_url)
    two = make_bus("auto", store=pgbouncer.url, sessions_backend=store, bus_url=database_url)
    assert isinstance(one, PostgresBus) and isinstance(two, PostgresBus)
    assert one._pool is not store.pool  # NOTIFY goes the direct way too
    heard = Recorder()
    two.subscribe(heard)
    async with started(one, two):
        assert one.healthy and two.healthy
        await one.publish(RevocationEvent(RevocationKind.SESSION, "s-1", 1e10))
        await until(lambda: [e.subject for e in heard.events] == ["s-1"])


# --- real server processes --------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(
    pgbouncer: LocalPgBouncer, database_url: str, run_id: str
) -> Iterator[list[SatchelServer]]:
    schema = f"pgb{run_id}"
    env = {
        "SATCHEL_STORE": pgbouncer.url,
        "SATCHEL_BUS_URL": database_url,
        "SATCHEL_PG_SCHEMA": schema,
        "SATCHEL_TRANSPORTS": "bearer",
        "SATCHEL_EXPOSE_COUNTERS": "true",
        "SATCHEL_CACHE_TTL": "60",
    }
    try:
        done = satchel_cli(["users", "add", USER, "--password-stdin"], env, PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        running = start_servers([env] * 3, ["A", "B", "C"])
        try:
            yield running
        finally:
            for server in running:
                server.stop()
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(database_url)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

        asyncio.run(drop())


@pytest.mark.slow
def test_servers_through_pgbouncer_with_a_direct_bus_revoke_everywhere(
    servers: list[SatchelServer],
) -> None:
    a, b, c = servers
    for server in servers:
        bus = counters(server)["bus"]
        assert bus["kind"] == "PostgresBus" and bus["healthy"] is True
    token = login(a)
    for server in servers:
        for _ in range(2):
            assert me(server, token).status_code == 200
    response = httpx.post(f"{c.url}/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204
    assert rejected_within(a, token)
    assert rejected_within(b, token)


@pytest.mark.slow
def test_server_without_bus_url_behind_pgbouncer_refuses_to_start(
    pgbouncer: LocalPgBouncer, database_url: str, run_id: str
) -> None:
    schema = f"pgbnobus{run_id}"
    env = {"SATCHEL_STORE": pgbouncer.url, "SATCHEL_PG_SCHEMA": schema}
    try:
        done = satchel_cli(["serve", "--port", str(free_port())], env, timeout=60)
    finally:

        async def drop() -> None:
            conn = await asyncpg.connect(database_url)
            try:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            finally:
                await conn.close()

        asyncio.run(drop())
    assert done.returncode == 2, done.stderr
    assert "SATCHEL_BUS_URL" in done.stderr
