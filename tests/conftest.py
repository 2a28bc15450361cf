"""Shared fixtures: real service URLs, per-run namespaces, a manual clock and store factories.

- ``run_id`` (session): unique per test run and worker, e.g. ``"3fa2c1d04812"`` (hex + pid);
  use it to namespace anything you create in a shared service.
- ``redis_url`` / ``database_url`` (session): ``SATCHEL_TEST_REDIS_URL`` /
  ``SATCHEL_TEST_DATABASE_URL`` (defaults: local Redis db 0, local PostgreSQL ``test``),
  checked once per session. Unreachable: the test is skipped with a loud reason, or fails
  when ``CI=true``.
- ``manual_clock``: a :class:`~satchel.clock.ManualClock` at 1_800_000_000 s.
- ``blackhole_port``: a local TCP port that accepts and never answers (hung service).
- ``make_stores``: ``await make_stores(kind, **open_stores_options) -> Stores`` with kind one
  of ``memory``, ``sqlite``, ``redis``, ``postgres`` or ``postgres+redis`` (users and keys in
  PostgreSQL, sessions in Redis), ``redis-cluster`` (the ``redis_cluster`` below) or
  ``postgres-pgbouncer`` (PostgreSQL through the ``pgbouncer`` below). Each call gets a fresh
  SQLite file / Redis key prefix / PostgreSQL schema; everything is closed and deleted after
  the test.
- ``redis_cluster`` (session): a real 6-node Redis Cluster (3 masters, 3 replicas) started
  on free loopback ports once per run and worker (``tests/redis_cluster.py``).
- ``pgbouncer`` (session): a real PgBouncer in transaction pooling mode in front of
  ``database_url`` (``tests/pgbouncer.py``).
  Both skip loudly when the binaries are missing, and fail when ``CI=true``.
- ``make_app``: ``await make_app(kind, strategy=..., **settings) -> RunningApp``, the server
  app over such a fresh store with its lifespan running (tests/apps.py tells the rest).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from apps import Apps
from backends import Backends
from helpers import MakeStores
from satchel.clock import ManualClock
from satchel.stores import Stores, open_stores, redact_url

if TYPE_CHECKING:
    from pgbouncer import LocalPgBouncer
    from redis_cluster import LocalCluster

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


def service_unreachable(name: str, url: str, exc: BaseException) -> None:
    """Skip loudly (or fail on CI) because a required service is down."""
    message = f"{name} NOT REACHABLE at {redact_url(url)}: {type(exc).__name__}: {exc}"
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def run_id() -> str:
    """Unique per run and per xdist worker."""
    return f"{uuid.uuid4().hex[:8]}{os.getpid()}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL, verified with a PING once per session."""
    import redis

    url = os.environ.get("SATCHEL_TEST_REDIS_URL", DEFAULT_REDIS_URL)
    try:
        client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        service_unreachable("REDIS", url, exc)
    return url


@pytest.fixture(scope="session")
def database_url() -> str:
    """The test PostgreSQL URL, verified with ``SELECT 1`` once per session."""
    import asyncpg

    url = os.environ.get("SATCHEL_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)

    async def probe() -> None:
        conn = await asyncpg.connect(url, timeout=2)
        try:
            await conn.fetchval("SELECT 1")
        finally:
            await conn.close()

    try:
        # A thread of its own: the fixture may be requested from inside a running loop.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(lambda: asyncio.run(probe())).result()
    except Exception as exc:
        service_unreachable("POSTGRESQL", url, exc)
    return url


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[LocalCluster]:
    """A 6-node Redis Cluster of this run and worker; stopped at the end of the session."""
    import redis_cluster as rc

    missing = rc.available()
    if missing is not None:
        service_unreachable("REDIS CLUSTER", "redis+cluster://", FileNotFoundError(missing))
    try:
        cluster = rc.LocalCluster().start()
    except Exception as exc:
        service_unreachable("REDIS CLUSTER", "redis+cluster://", exc)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def pgbouncer(database_url: str) -> Iterator[LocalPgBouncer]:
    """PgBouncer (transaction pooling) in front of ``database_url``, for this session."""
    import pgbouncer as pgb

    if not pgb.available():
        service_unreachable("PGBOUNCER", "pgbouncer", FileNotFoundError("pgbouncer binary"))
    try:
        bouncer = pgb.LocalPgBouncer(database_url).start()
    except Exception as exc:
        service_unreachable("PGBOUNCER", "pgbouncer", exc)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@pytest.fixture
def manual_clock() -> ManualClock:
    """A clock that only moves with ``advance``; start 1_800_000_000."""
    return ManualClock()


@pytest.fixture
async def make_stores(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeStores]:
    """Factory of fresh, isolated stores; see the module docstring."""
    backends = Backends(request, tmp_path)
    opened: list[Stores] = []

    async def make(kind: str = "memory", **options: Any) -> Stores:
        prefix, schema = options.pop("prefix", None), options.pop("schema", None)
        backend = backends.fresh(kind, prefix=prefix, schema=schema)
        if backend.prefix is not None:
            options["prefix"] = backend.prefix
        if backend.schema is not None:
            options["schema"] = backend.schema
        stores = await open_stores(backend.store, sessions_url=backend.sessions_store, **options)
        opened.append(stores)
        return stores

    yield make
    for stores in opened:
        await stores.close()
    await backends.drop()


@pytest.fixture
async def make_app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Apps]:
    """The one way to run the server app in a test; see tests/apps.py."""
    apps = Apps(Backends(request, tmp_path))
    yield apps
    await apps.aclose()


@pytest.fixture
async def blackhole_port() -> AsyncIterator[int]:
    """A local TCP port that accepts connections and never answers (a hung server)."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield port
    server.close()
    for writer in held:
        writer.close()
    await server.wait_closed()
