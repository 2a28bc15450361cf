"""Services the benchmark starts itself: a 6-node Redis Cluster and a PgBouncer.

Both are started on first use (free loopback ports, a temporary directory), shared by every
phase of the run, and stopped by :func:`stop_all` (called from the run's clean-up). They
come from the same helpers as the tests (``tests/redis_cluster.py``, ``tests/pgbouncer.py``),
loaded by path like ``tests/procs.py``. When a binary is missing the phase that needs it is
skipped with the reason (:class:`~benchmarks.common.BenchError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, Settings

_TESTS = Path(__file__).resolve().parent.parent / "tests"
_running: dict[str, Any] = {}


def _load(name: str) -> Any:
    """``tests/<name>.py`` as a module (cached in ``sys.modules`` under a private name)."""
    key = f"satchel_test_{name}"
    if key in sys.modules:
        return sys.modules[key]
    path = _TESTS / f"{name}.py"
    spec = importlib.util.spec_from_file_location(key, path)
    if spec is None or spec.loader is None:
        raise BenchError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


def redis_cluster() -> Any:
    """The run's Redis Cluster (a ``LocalCluster``: ``.url``, ``.masters()``, ...)."""
    if "cluster" not in _running:
        helpers = _load("redis_cluster")
        missing = helpers.available()
        if missing:
            raise BenchError(f"Redis Cluster needs {missing}")
        _running["cluster"] = helpers.LocalCluster().start()
    return _running["cluster"]


def pgbouncer(database_url: str) -> Any:
    """The run's PgBouncer in transaction mode in front of ``database_url`` (``.url``)."""
    if "pgbouncer" not in _running:
        helpers = _load("pgbouncer")
        if not helpers.available():
            raise BenchError("PgBouncer is not installed (apt-get install pgbouncer)")
        # A pool as large as the benchmark's widest store pool: the figures are about the
        # pooler's protocol cost, not about queueing for a server connection.
        _running["pgbouncer"] = helpers.LocalPgBouncer(database_url, pool_size=10).start()
    return _running["pgbouncer"]


def scaled_out_settings(kind: str, settings: Settings) -> dict[str, Any]:
    """satchel settings of the scaled-out columns (``benchmarks.satchel_side.CONFIGS``).

    ``redis-cluster``: sessions (and the sharded-pub/sub bus) on the run's Redis Cluster,
    users and keys in the SQLite file as in the Redis columns. ``pgbouncer``: everything in
    PostgreSQL through PgBouncer in transaction mode, the LISTEN/NOTIFY bus direct.
    """
    if kind == "redis-cluster":
        return {"sessions_store": redis_cluster().url}
    return {
        "store": pgbouncer(settings.database_url).url,
        "bus_url": settings.database_url,
        "pg_schema": pgbouncer_schema(settings),
    }


def pgbouncer_schema(settings: Settings) -> str:
    """The PostgreSQL schema of the PgBouncer column (dropped by :func:`cleanup`)."""
    return f"satchel_bench_{settings.run_id}_pgb"


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def cleanup(settings: Settings) -> None:
    """Drop the PgBouncer column's schema and stop the services (the cluster's data goes
    with its processes)."""
    if "pgbouncer" in _running:
        drop = _drop_schema(settings.database_url, pgbouncer_schema(settings))
        with contextlib.suppress(Exception):
            asyncio.run(asyncio.wait_for(drop, 30))
    stop_all()


def stop_all() -> None:
    """Stop whatever was started (idempotent)."""
    while _running:
        _, service = _running.popitem()
        service.stop()
