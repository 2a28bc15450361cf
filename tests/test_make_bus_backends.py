"""make_bus takes the channel namespace from the opened session store, by its type."""

from __future__ import annotations

import pytest

from helpers import MakeStores
from satchel.revocation import make_bus
from satchel.revocation.postgres import PostgresBus, channel_for
from satchel.revocation.redis import RedisBus
from satchel.stores import MemoryStore
from satchel.stores.postgres import PostgresStore
from satchel.stores.redis import RedisStore


def test_redis_bus_uses_the_redis_store_prefix_else_the_setting() -> None:
    backend = RedisStore.from_url("redis://127.0.0.1:1/0", prefix="{tenant2}")  # not connected
    bus = make_bus("redis", store="redis://127.0.0.1:1/0", sessions_backend=backend)
    assert isinstance(bus, RedisBus) and bus.channel == "{tenant2}:revocations"
    # Sessions elsewhere (memory here): the configured prefix names the channel.
    other = make_bus(
        "redis",
        store="memory://",
        redis_url="redis://127.0.0.1:1/0",
        prefix="app",
        sessions_backend=MemoryStore(),
    )
    assert isinstance(other, RedisBus) and other.channel == "app:revocations"


@pytest.mark.postgres
async def test_postgres_bus_shares_the_store_schema_and_pool(
    make_stores: MakeStores, database_url: str
) -> None:
    store = (await make_stores("postgres")).sessions
    assert isinstance(store, PostgresStore)
    bus = make_bus("auto", store=database_url, sessions_backend=store)
    assert isinstance(bus, PostgresBus)
    assert bus.channel == channel_for(store.schema)
    assert bus._pool is store.pool and not bus._owns_pool


@pytest.mark.postgres
@pytest.mark.redis
async def test_postgres_bus_with_sessions_in_redis_uses_the_prefix(
    make_stores: MakeStores, database_url: str
) -> None:
    stores = await make_stores("postgres+redis")
    assert isinstance(stores.sessions, RedisStore)
    bus = make_bus(
        "postgres", store=database_url, prefix="Tenant3", sessions_backend=stores.sessions
    )
    assert isinstance(bus, PostgresBus)
    assert bus.channel == channel_for("tenant3") and bus._owns_pool
