"""The Redis Cluster connection: ``redis+cluster://`` URLs and a fail-fast ``RedisCluster``.

URL form: ``redis+cluster://[[user]:password@]host:port[,host:port...]`` (``rediss+cluster://``
for TLS). The nodes listed are only the seeds: the client asks them for the slot map and
finds every master and replica itself, so naming two or three nodes is enough. No path,
query or fragment is accepted (a cluster has no database number).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError
from redis.exceptions import TimeoutError as RedisTimeoutError

from satchel.errors import ConfigurationError

SCHEMES = ("redis+cluster", "rediss+cluster")
_FORM = "redis+cluster://[:password@]host:port[,host:port...]"


@dataclass(frozen=True, slots=True)
class ClusterURL:
    """A parsed ``redis+cluster://`` URL (the password is kept out of the repr)."""

    nodes: tuple[tuple[str, int], ...]
    username: str | None
    password: str | None
    tls: bool

    def __repr__(self) -> str:
        return f"ClusterURL(nodes={self.nodes!r}, tls={self.tls})"


def is_cluster_url(url: str | None) -> bool:
    """True for ``redis+cluster://`` and ``rediss+cluster://`` URLs."""
    return bool(url) and str(url).split(":", 1)[0].lower() in SCHEMES


def parse(url: str) -> ClusterURL:
    """Split a cluster URL into its seed nodes and credentials; never echoes the URL."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ConfigurationError(f"A Redis Cluster URL looks like {_FORM}.")
    userinfo, at, hosts = rest.rpartition("@")
    if not at:
        hosts, userinfo = rest, ""
    hosts = hosts.removesuffix("/")
    if any(ch in hosts for ch in "/?#"):
        raise ConfigurationError("A Redis Cluster URL takes no path, options or fragment.")
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        try:
            # Each seed is parsed by urllib as the netloc of its own URL (IPv6 in brackets).
            parts = urlsplit(f"//{item.strip()}")
            host, port = parts.hostname, parts.port
        except ValueError:
            host, port = None, None
        if not host or port is None:
            raise ConfigurationError(f"Every Redis Cluster node needs host:port ({_FORM}).")
        nodes.append((host, port))
    username: str | None = None
    password: str | None = None
    if userinfo:
        name, colon, secret = userinfo.partition(":")
        username = unquote(name) or None
        password = unquote(secret) if colon else None
    return ClusterURL(tuple(nodes), username, password, scheme.lower() == "rediss+cluster")


def connect(
    url: str,
    *,
    socket_timeout: float,
    socket_connect_timeout: float,
    max_connections: int | None = None,
) -> RedisCluster:
    """A ``RedisCluster`` client on the seeds of ``url``; nothing connects before first use.

    A command that meets a dead node is retried twice, 20 then 40 ms apart (the slot map is
    refreshed in between), so a failover costs the requests of the gap a quick 503 rather
    than redis-py's default seconds of back-off; the deadline of each store call
    (``SATCHEL_STORE_TIMEOUT``) bounds the rest.
    """
    parsed = parse(url)
    retry = Retry(
        ExponentialBackoff(cap=0.1, base=0.02),
        2,
        supported_errors=(RedisConnectionError, RedisTimeoutError),
    )
    kwargs: dict[str, object] = {}
    if max_connections is not None:
        kwargs["max_connections"] = max_connections
    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in parsed.nodes],
        username=parsed.username,
        password=parsed.password,
        ssl=parsed.tls,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_connect_timeout,
        retry=retry,
        decode_responses=False,
        **kwargs,  # type: ignore[arg-type]
    )


class ClusterScript:
    """A Lua script run with EVALSHA on the node of its first key, EVAL when that node lacks it.

    Each node has its own script cache, which neither replication nor a failover carries
    over: a replica promoted to master knows none of the scripts. redis-py's own fallback
    loads the script on the masters of its current slot map (which may not list the new
    master yet) and retries EVALSHA once, so after a failover every call would fail with
    NOSCRIPT. Sending the source with EVAL instead reaches the node the key's slot points
    to, runs the script there and leaves it in that node's cache for the next EVALSHA.
    """

    def __init__(self, client: RedisCluster, script: str) -> None:
        self.client = client
        self.script = script
        self.sha = hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        try:
            return await self.client.evalsha(self.sha, len(keys), *keys, *args)  # type: ignore[misc]
        except NoScriptError:
            return await self.client.eval(self.script, len(keys), *keys, *args)  # type: ignore[misc]
