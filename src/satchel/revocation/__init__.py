"""Revocation buses that reach every server process, and the rule that picks one.

- :class:`~satchel.revocation.redis.RedisBus` — Redis pub/sub, for deployments with Redis.
- :class:`~satchel.revocation.postgres.PostgresBus` — ``LISTEN``/``NOTIFY``, PostgreSQL only.
- :class:`~satchel.revocation.sqlite.SQLiteBus` — a polled table in the SQLite file, for every
  process (and the CLI) sharing that file.
- :class:`~satchel.revocation.base.LocalBus` — one process (the memory store).
- :class:`~satchel.revocation.base.NullBus` — no delivery (``bus=none``): caches stay off.

Consistency bound (what a successful revocation guarantees): the revoking call returns
only after the store write *and* the publish succeeded; every process with a healthy
subscription drops the credential when the message arrives (about a millisecond on Redis
and PostgreSQL, see ``docs/benchmarks.md``; on SQLite at the next poll, within
``poll_interval`` — 50 ms by default — plus the request in progress). A process whose
subscription died silently trusts its cache for at most ``ping_interval + ping_timeout``
(1.5 s by default; on SQLite ``3 × poll_interval``, 0.15 s, after its last successful poll)
before it notices and turns to per-request store reads. If the publish fails, the call raises
:class:`~satchel.errors.StoreUnavailable` *after* the store write (the store is the source
of truth, so the credential is dead on every uncached path); the caller should retry, and
meanwhile a process that cached the credential may accept it until its cache entry expires:
at most the cache TTL (``SATCHEL_CACHE_TTL``, 5 s by default). Those two numbers are the
worst case.
"""

from __future__ import annotations

from satchel.clock import Clock, system_clock
from satchel.errors import ConfigurationError
from satchel.revocation.base import LocalBus, NullBus, RevocationBus
from satchel.revocation.remote import BusBase, BusCounters
from satchel.revocation.sqlite import DEFAULT_POLL_INTERVAL
from satchel.stores.base import SessionStore

__all__ = ["BusBase", "BusCounters", "bus_kind_for", "make_bus"]

BUS_KINDS = ("auto", "redis", "postgres", "sqlite", "local", "none")


def _scheme(url: str | None) -> str:
    if not url or ":" not in url:
        return ""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    if scheme in ("redis", "rediss", "unix"):
        return "redis" if scheme != "unix" else ""
    return scheme


def bus_kind_for(
    store: str, sessions_store: str | None = None, redis_url: str | None = None
) -> str:
    """The bus ``auto`` picks: ``redis``, ``postgres``, ``sqlite``, ``local`` or ``none``.

    Redis whenever Redis is in the deployment (explicit ``redis_url`` or a redis store);
    PostgreSQL when a PostgreSQL store is the only shared backend; the SQLite file's table
    when a SQLite store is; in-process delivery for a memory-only deployment; otherwise none
    (caches off, every request reads the store).
    """
    kinds = {_scheme(store), _scheme(sessions_store) if sessions_store else _scheme(store)}
    if redis_url or "redis" in kinds:
        return "redis"
    if "postgres" in kinds:
        return "postgres"
    if "sqlite" in kinds:
        return "sqlite"
    if kinds == {"memory"}:
        return "local"
    return "none"


def make_bus(
    kind: str,
    *,
    store: str,
    sessions_store: str | None = None,
    redis_url: str | None = None,
    prefix: str = "satchel",
    sessions_backend: SessionStore | None = None,
    poll_interval: float = DEFAULT_POLL_INTERVAL,
    clock: Clock = system_clock,
) -> RevocationBus:
    """Build (without connecting) the bus of ``kind`` (or the ``auto`` choice).

    ``sessions_backend`` is the opened session store: a :class:`~satchel.stores.redis.RedisStore`
    lends its key ``prefix``, a :class:`~satchel.stores.postgres.PostgresStore` its ``schema``
    and ``pool``, so the channel matches the data it guards (the store classes are imported
    only for the bus that needs their driver anyway).
    ``poll_interval`` and ``clock`` configure the SQLite bus (``clock`` is the strategies'
    clock, which stamps each event's ``until``).
    """
    if kind not in BUS_KINDS:
        raise ConfigurationError(f"Unknown revocation bus {kind!r}; use one of {BUS_KINDS}.")
    if kind == "auto":
        kind = bus_kind_for(store, sessions_store, redis_url)
    if kind == "local":
        return LocalBus()
    if kind == "none":
        return NullBus()
    if kind == "sqlite":
        from satchel.stores import sqlite_path

        url = next((u for u in (sessions_store, store) if u and _scheme(u) == "sqlite"), None)
        if url is None:
            raise ConfigurationError("The sqlite revocation bus needs a sqlite:/// store.")
        path = sqlite_path(url)
        if path == ":memory:":
            return LocalBus()  # a private in-memory database has exactly one process
        from satchel.revocation.sqlite import SQLiteBus

        return SQLiteBus(path, poll_interval=poll_interval, clock=clock)
    if kind == "redis":
        url = redis_url or next(
            (u for u in (sessions_store, store) if u and _scheme(u) == "redis"), None
        )
        if url is None:
            raise ConfigurationError("The redis revocation bus needs SATCHEL_REDIS_URL.")
        from satchel.revocation.redis import RedisBus
        from satchel.stores.redis import RedisStore

        if isinstance(sessions_backend, RedisStore):
            prefix = sessions_backend.prefix
        return RedisBus(url, prefix=prefix)
    dsn = next((u for u in (sessions_store, store) if u and _scheme(u) == "postgres"), None)
    if dsn is None:
        raise ConfigurationError("The postgres revocation bus needs a postgresql:// store.")
    from satchel.revocation.postgres import PostgresBus
    from satchel.stores.postgres import PostgresStore

    if isinstance(sessions_backend, PostgresStore):
        return PostgresBus(dsn, schema=sessions_backend.schema, pool=sessions_backend.pool)
    return PostgresBus(dsn, schema=prefix.lower())
