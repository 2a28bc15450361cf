"""The Redis connection of the store: a fail-fast client, the startup check, error mapping.

Every Redis failure (connection refused, timeout, ...) surfaces as
:class:`~satchel.errors.StoreUnavailable` so requests fail closed with a 503.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeAlias, TypeVar, cast

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.commands.core import AsyncScript
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from satchel.errors import ConfigurationError, StoreUnavailable
from satchel.stores.redis_cluster_client import ClusterScript

logger = logging.getLogger("satchel.stores")

T = TypeVar("T")
#: A single-node client or a cluster client: both speak the commands the store uses.
AnyRedis: TypeAlias = aioredis.Redis | RedisCluster
DEFAULT_TIMEOUT = 0.5
# RedisClusterException (no slot map, every seed unreachable) is not a RedisError.
_FAILURES = (RedisError, RedisClusterException, OSError, TimeoutError)


def connect(
    url: str,
    *,
    socket_timeout: float = DEFAULT_TIMEOUT,
    socket_connect_timeout: float = DEFAULT_TIMEOUT,
    max_connections: int | None = None,
) -> aioredis.Redis:
    """A client on ``url`` (``redis://`` or ``rediss://``) with short, fail-fast timeouts.

    A dropped pooled connection is retried once at once (Redis restarted); timeouts are not
    retried, so a slow Redis costs at most ``socket_timeout`` per command. Nothing connects
    until the first command.
    """
    try:
        return aioredis.Redis.from_url(
            url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_connect_timeout,
            retry=Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
            max_connections=max_connections,
            decode_responses=False,
        )
    except (ValueError, TypeError) as exc:
        raise ConfigurationError("Invalid Redis URL.") from exc


@asynccontextmanager
async def unavailable() -> AsyncIterator[None]:
    """Turn any Redis failure inside the block into :class:`StoreUnavailable`."""
    try:
        yield
    except _FAILURES as exc:
        logger.warning("Redis store error: %s", type(exc).__name__)
        raise StoreUnavailable() from exc


def register_script(client: AnyRedis, script: str) -> AsyncScript | ClusterScript:
    """A callable ``script(keys=[...], args=[...])`` on either client: redis-py's script on
    one node, :class:`ClusterScript` on a cluster (it survives a failover's empty cache)."""
    if isinstance(client, RedisCluster):
        return ClusterScript(client, script)
    return AsyncScript(cast(Any, client), script)


async def aw(value: Awaitable[T] | T) -> T:
    """Await a redis.asyncio command result (its type hints also allow a plain value)."""
    if inspect.isawaitable(value):
        return await value
    return value


async def check(client: AnyRedis) -> None:
    """Ping the server and warn if its eviction policy could drop satchel keys (F13)."""
    async with unavailable():
        await aw(client.ping())
    try:
        config = await aw(client.config_get("maxmemory-policy"))
    except _FAILURES:
        return  # CONFIG is often disabled on managed Redis; the warning is best effort
    warn_eviction_policy(config)


def warn_eviction_policy(config: Any) -> None:
    """Warn when a ``CONFIG GET maxmemory-policy`` answer lets Redis evict satchel keys."""
    if not isinstance(config, dict):
        return
    # Key type varies with the client version and protocol (bytes or str).
    policy = config.get(b"maxmemory-policy", config.get("maxmemory-policy"))
    name = policy.decode() if isinstance(policy, bytes) else str(policy or "")
    if name and name != "noeviction" and not name.startswith("volatile-"):
        logger.warning(
            "Redis maxmemory-policy is %r: under memory pressure Redis may evict satchel "
            "keys (users, keys, session indexes). Use noeviction or a volatile-* policy.",
            name,
        )


def glob_escape(text: str) -> str:
    """``text`` as a literal in a SCAN ``MATCH`` pattern."""
    return "".join("\\" + ch if ch in "*?[]\\" else ch for ch in text)


async def close(client: AnyRedis) -> None:
    """Close the connection pool, ignoring a server that is already gone."""
    try:
        await client.aclose()
    except (RedisError, OSError):
        logger.debug("ignoring error while closing the Redis client")
