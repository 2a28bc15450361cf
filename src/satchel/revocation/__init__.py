"""Revocation buses that reach every server process, and the rule that picks one.

- :class:`~satchel.revocation.redis.RedisBus` — Redis pub/sub, for deployments with Redis.
- :class:`~satchel.revocation.redis_cluster.RedisClusterBus` — sharded pub/sub on a Redis
  Cluster (``redis+cluster://``).
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

__all__ = ["BusBase", "BusCounters", "bus_kind_for", "make_bus", "redis_bus"]

BUS_KINDS = ("auto", "redis", "postgres", "sqlite", "local", "none")


def _scheme(url: str | None) -> str:
    if not url or ":" not in url:
        return ""
    scheme = url.split(":", 1)[0].lower()
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        return "redis"
    if scheme == "unix":
        return ""
    return scheme


def bus_kind_for(
    store: str,
    sessions_store: str | None = None,
    redis_url: str | None = None,
    bus_url: str | None = None,
) -> str:
    """The bus ``auto`` picks: ``redis``, ``postgres``, ``sqlite``, ``local`` or ``none``.

    The scheme of ``bus_url`` when one is given; else Redis whenever Redis is in the
    deployment (explicit ``redis_url`` or a redis store); PostgreSQL when a PostgreSQL store
    is the only shared backend; the SQLite file's table when a SQLite store is; in-process
    delivery for a memory-only deployment; otherwise none (caches off, every request reads
    the store).
    """
    if bus_url and _scheme(bus_url) in ("redis", "postgres"):
        return _scheme(bus_url)
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
    bus_url: str | None = None,
) -> RevocationBus:
    """Build (without connecting) the bus of ``kind`` (or the ``auto`` choice).

    ``bus_url`` is the bus's own connection (``SATCHEL_BUS_URL``): a ``postgresql://`` URL
    straight to the server when the store goes through PgBouncer in transaction mode
    (``?pgbouncer=true``), because ``LISTEN`` needs a session of its own that a transaction
    pooler cannot keep; or a ``redis://`` / ``redis+cluster://`` URL for the channel.

    ``sessions_backend`` is the opened session store: a :class:`~satchel.stores.redis.RedisStore`
    lends its key ``prefix``, a :class:`~satchel.stores.postgres.PostgresStore` its ``schema``
    and ``pool``, so the channel matches the data it guards (the store classes are imported
    only for the bus that needs their driver anyway).
    ``poll_interval`` and ``clock`` configure the SQLite bus (``clock`` is the strategies'
    clock, which stamps each event's ``until``).
    """
    if kind not in BUS_KINDS:
        raise ConfigurationError(f"Unknown revocation bus {kind!r}; use one of {BUS_KINDS}.")
    if bus_url is not None and _scheme(bus_url) not in ("redis", "postgres"):
        raise ConfigurationError(
            "SATCHEL_BUS_URL must be a redis://, redis+cluster:// or postgresql:// URL."
        )
    if kind == "auto":
        kind = bus_kind_for(store, sessions_store, redis_url, bus_url)
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
    own = bus_url if bus_url is not None and _scheme(bus_url) == kind else None
    if kind == "redis":
        return _redis_bus(own or redis_url, store, sessions_store, prefix, sessions_backend)
    return _postgres_bus(own, store, sessions_store, prefix, sessions_backend)


def _redis_bus(
    url: str | None,
    store: str,
    sessions_store: str | None,
    prefix: str,
    sessions_backend: SessionStore | None,
) -> RevocationBus:
    url = url or next((u for u in (sessions_store, store) if u and _scheme(u) == "redis"), None)
    if url is None:
        raise ConfigurationError("The redis revocation bus needs SATCHEL_REDIS_URL.")
    from satchel.stores.redis import RedisStore

    if isinstance(sessions_backend, RedisStore):
        prefix = sessions_backend.prefix
    return redis_bus(url, prefix)


def redis_bus(url: str, prefix: str) -> RevocationBus:
    """The revocation channel named by ``prefix`` on a single Redis or a Redis Cluster."""
    if url.split(":", 1)[0].lower().endswith("+cluster"):
        from satchel.revocation.redis_cluster import RedisClusterBus

        return RedisClusterBus(url, prefix=prefix)
    from satchel.revocation.redis import RedisBus

    return RedisBus(url, prefix=prefix)


def _postgres_bus(
    bus_url: str | None,
    store: str,
    sessions_store: str | None,
    prefix: str,
    sessions_backend: SessionStore | None,
) -> RevocationBus:
    from satchel.stores.postgres_pool import is_pooled, split_pooler_option

    dsn = bus_url or next(
        (u for u in (sessions_store, store) if u and _scheme(u) == "postgres"), None
    )
    if dsn is None:
        raise ConfigurationError("The postgres revocation bus needs a postgresql:// store.")
    if is_pooled(dsn):
        raise ConfigurationError(
            "The postgres revocation bus needs a direct connection: LISTEN does not survive "
            "PgBouncer's transaction pooling. Set SATCHEL_BUS_URL to a postgresql:// URL "
            "that reaches the server itself (not ?pgbouncer=true)."
        )
    dsn = split_pooler_option(dsn)[0]
    from satchel.revocation.postgres import PostgresBus
    from satchel.stores.postgres import PostgresStore

    if isinstance(sessions_backend, PostgresStore):
        schema = sessions_backend.schema
        if bus_url is None and not sessions_backend.pooled:
            return PostgresBus(dsn, schema=schema, pool=sessions_backend.pool)
        # Its own small pool on the direct URL: NOTIFY goes the way LISTEN does.
        return PostgresBus(dsn, schema=schema)
    return PostgresBus(dsn, schema=prefix.lower())
