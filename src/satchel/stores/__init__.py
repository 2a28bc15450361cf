"""Store backends and :func:`open_stores`, which builds them from a URL.

Supported URLs:

- ``memory://`` — in-process dictionaries (tests, single-process development).
- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — one local file.
- ``redis://[:password@]host[:port][/db]`` (or ``rediss://``) — needs ``satchel[redis]``.
- ``redis+cluster://[:password@]host:port[,host:port...]`` (or ``rediss+cluster://``) — a
  Redis Cluster, from any of its nodes (:mod:`satchel.stores.redis_cluster`).
- ``postgresql://user@host[:port]/db`` (or ``postgres://``) — needs ``satchel[postgres]``;
  add ``?pgbouncer=true`` when the URL points at PgBouncer in transaction pooling mode
  (:mod:`satchel.stores.postgres_pool`).

A typical scaled-out deployment keeps users and keys in PostgreSQL and sessions in Redis:
``open_stores("postgresql://...", sessions_url="redis://...")``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, TypeAlias
from urllib.parse import urlsplit

from satchel.errors import ConfigurationError
from satchel.stores.base import (
    BulkUserStore,
    CreateResult,
    EmailUserStore,
    KeyState,
    KeyStore,
    OnExceed,
    RotateOutcome,
    SessionRecord,
    SessionStore,
    StoredKey,
    Stores,
    UserRecord,
    UserStore,
)
from satchel.stores.memory import MemoryStore
from satchel.stores.sqlite import SQLiteStore

if TYPE_CHECKING:
    from satchel.stores.postgres import PostgresStore
    from satchel.stores.redis import RedisStore

    Backend: TypeAlias = MemoryStore | SQLiteStore | RedisStore | PostgresStore

__all__ = [
    "BulkUserStore",
    "CreateResult",
    "EmailUserStore",
    "KeyState",
    "KeyStore",
    "MemoryStore",
    "OnExceed",
    "RotateOutcome",
    "SQLiteStore",
    "SessionRecord",
    "SessionStore",
    "StoredKey",
    "Stores",
    "UserRecord",
    "UserStore",
    "open_store",
    "open_stores",
    "redact_url",
    "sqlite_path",
]


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return parts._replace(netloc=f"{user}:***@{netloc}").geturl()
    except ValueError:
        return "<unparseable URL>"


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///`` URL (three slashes: relative, four: absolute)."""
    if not url.lower().startswith("sqlite:///"):
        raise ConfigurationError(
            "A SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db."
        )
    path = url[len("sqlite:///") :]
    if not path or "?" in path or "#" in path:
        raise ConfigurationError(
            "A SQLite URL needs a file path and takes no options, e.g. sqlite:///satchel.db."
        )
    return path


async def open_store(
    url: str,
    *,
    prefix: str = "satchel",
    schema: str = "satchel",
    command_timeout: float | None = None,
) -> Backend:
    """Open one backend (implementing all three store protocols) from ``url``.

    ``prefix`` namespaces Redis keys, ``schema`` is the PostgreSQL schema and
    ``command_timeout`` bounds each Redis command or PostgreSQL statement (backend default
    when None). An
    unreachable Redis or PostgreSQL raises :class:`~satchel.errors.StoreUnavailable`.
    """
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "memory":
        if url.rstrip("/") not in ("memory:", "memory:/", "memory://"):
            raise ConfigurationError("A memory store URL is just 'memory://'.")
        return MemoryStore()
    if scheme == "sqlite":
        return SQLiteStore.open(sqlite_path(url))
    if scheme in ("redis", "rediss", "redis+cluster", "rediss+cluster"):
        kwargs: dict[str, Any] = {"prefix": prefix}
        if command_timeout is not None:
            kwargs.update(socket_timeout=command_timeout, socket_connect_timeout=command_timeout)
        store: RedisStore
        if scheme.endswith("+cluster"):
            cluster_mod = _optional("satchel.stores.redis_cluster", "redis")
            store = cluster_mod.RedisClusterStore.from_url(url, **kwargs)
        else:
            redis_mod = _optional("satchel.stores.redis", "redis")
            store = redis_mod.RedisStore.from_url(url, **kwargs)
        try:
            await store.check()
        except BaseException:
            await store.close()
            raise
        return store
    if scheme in ("postgresql", "postgres"):
        pg_mod = _optional("satchel.stores.postgres", "postgres")
        pg_kwargs: dict[str, Any] = {"schema": schema}
        if command_timeout is not None:
            pg_kwargs["command_timeout"] = command_timeout
        pg: PostgresStore = await pg_mod.PostgresStore.connect(url, **pg_kwargs)
        return pg
    # Only the scheme is echoed: the rest of a mistyped URL may hold a password.
    shown = f"scheme {scheme!r}" if scheme.isascii() and scheme.isalnum() else "URL"
    raise ConfigurationError(
        f"Unsupported store {shown}: expected memory://, sqlite:///path, "
        "redis://host, redis+cluster://host:port,... or postgresql://host."
    )


def _optional(module: str, extra: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ConfigurationError(
            f"This store needs an optional dependency: pip install 'satchel[{extra}]'."
        ) from exc


async def open_stores(
    url: str,
    *,
    sessions_url: str | None = None,
    prefix: str = "satchel",
    schema: str = "satchel",
    command_timeout: float | None = None,
) -> Stores:
    """Open the backend(s) named by ``url`` and return the three stores.

    ``sessions_url`` places sessions in a different backend (e.g. users and keys in
    PostgreSQL, sessions in Redis). ``prefix``, ``schema`` and ``command_timeout`` are
    passed to :func:`open_store`. A bad URL raises :class:`~satchel.errors.ConfigurationError`
    without echoing any password.
    """
    main = await open_store(url, prefix=prefix, schema=schema, command_timeout=command_timeout)
    if sessions_url is None or sessions_url == url:
        return Stores(sessions=main, users=main, keys=main)
    try:
        sessions = await open_store(
            sessions_url, prefix=prefix, schema=schema, command_timeout=command_timeout
        )
    except BaseException:
        await main.close()
        raise
    return Stores(sessions=sessions, users=main, keys=main)
