"""Fresh, isolated backends for a test: a new SQLite file, Redis key prefix or PostgreSQL
schema per call, deleted afterwards (``make_stores`` and ``make_app`` both draw on these)."""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

KINDS = (
    "memory",
    "sqlite",
    "redis",
    "postgres",
    "postgres+redis",
    "redis-cluster",
    "postgres-pgbouncer",
)
_counter = itertools.count()


@dataclass(frozen=True)
class Backend:
    """Where one fresh backend lives: the store URL(s) and its namespace."""

    store: str
    sessions_store: str | None = None
    prefix: str | None = None
    schema: str | None = None

    def settings(self) -> dict[str, Any]:
        """The :class:`Settings` fields that point at this backend."""
        out: dict[str, Any] = {"store": self.store}
        if self.sessions_store is not None:
            out["sessions_store"] = self.sessions_store
        if self.prefix is not None:
            out["key_prefix"] = self.prefix
        if self.schema is not None:
            out["pg_schema"] = self.schema
        return out


class Backends:
    """Hands out fresh, isolated backends and deletes them on :meth:`drop`.

    The service URLs are looked up only when a test asks for that kind, so an unreachable
    Redis skips (or, on CI, fails) only the tests that need it.
    """

    def __init__(self, request: pytest.FixtureRequest, tmp: Path) -> None:
        self._request = request
        self.tmp = tmp
        self.run_id: str = request.getfixturevalue("run_id")
        self._cleanups: list[Callable[[], Awaitable[None]]] = []

    def fresh(
        self,
        kind: str,
        *,
        prefix: str | None = None,
        schema: str | None = None,
        address: tuple[str, int] | None = None,
    ) -> Backend:
        """A new backend of ``kind``; ``address`` reaches it through a proxy at host:port."""
        n = next(_counter)
        if kind == "memory":
            return Backend("memory://")
        if kind == "sqlite":
            return Backend(f"sqlite:///{self.tmp / f'satchel-{n}.db'}")
        if kind not in KINDS:
            raise ValueError(f"unknown store kind {kind!r}")
        # Settings accept only [A-Za-z0-9_] prefixes and lower-case schemas.
        prefix = prefix if prefix is not None else f"satchel_test_{self.run_id}_{n}"
        schema = schema if schema is not None else f"satchel_test_{self.run_id}_{n}"
        if kind == "redis-cluster":
            url = self._request.getfixturevalue("redis_cluster").url
            self._cleanups.append(lambda: _drop_cluster_prefix(url, prefix))
            return Backend(url, prefix=prefix)
        if kind == "postgres-pgbouncer":
            direct = self._request.getfixturevalue("database_url")
            bounced = self._request.getfixturevalue("pgbouncer").url
            self._cleanups.append(lambda: drop_schema(direct, schema))
            return Backend(bounced, prefix=prefix, schema=schema)
        redis = self._request.getfixturevalue("redis_url") if "redis" in kind else None
        pg = self._request.getfixturevalue("database_url") if "postgres" in kind else None
        if redis is not None:
            self._cleanups.append(lambda: drop_redis_prefix(redis, prefix))
        if pg is not None:
            self._cleanups.append(lambda: drop_schema(pg, schema))
        main = pg or redis
        assert main is not None
        if address is not None:
            main = _via(main, address)
        return Backend(
            main,
            sessions_store=redis if kind == "postgres+redis" else None,
            prefix=prefix,
            schema=schema,
        )

    async def drop(self) -> None:
        for cleanup in self._cleanups:
            await cleanup()
        self._cleanups.clear()


def _via(url: str, address: tuple[str, int]) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)
    host = f"{address[0]}:{address[1]}"
    netloc[-1] = host
    return urlunsplit(parts._replace(netloc="@".join(netloc)))


async def drop_redis_prefix(url: str, prefix: str) -> None:
    """Delete every key under ``prefix:`` (glob characters in the prefix are literal)."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        pattern = prefix.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")
        pattern = pattern.replace("[", "\\[").replace("]", "\\]") + ":*"
        batch: list[bytes] = []
        async for key in client.scan_iter(match=pattern, count=10_000):
            batch.append(key)
            if len(batch) >= 500:
                await client.delete(*batch)
                batch.clear()
        if batch:
            await client.delete(*batch)
    finally:
        await client.aclose()


async def _drop_cluster_prefix(url: str, prefix: str) -> None:
    from redis_cluster import drop_prefix

    await drop_prefix(url, prefix)


async def drop_schema(url: str, schema: str) -> None:
    """``DROP SCHEMA ... CASCADE``."""
    import asyncpg

    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()
