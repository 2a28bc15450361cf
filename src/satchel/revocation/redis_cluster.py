"""Revocation bus on a Redis Cluster: sharded pub/sub (``SPUBLISH``/``SSUBSCRIBE``, Redis 7).

Why sharded, not classic pub/sub. Measured first (``benchmarks/cluster_pubsub.py``: three
processes on a 3-master cluster, 1,000 publications, on this 2-core machine under load):
sharded delivered with a median of 0.35-0.40 ms and a 99th percentile of 2.3-13 ms, classic
with 0.6-15 ms and 39-41 ms. A classic ``PUBLISH`` reaches a subscriber on another node
only after a hop over the cluster bus, and every node receives a copy of every message;
a shard channel lives on the master of its slot, where both the publisher and every
subscriber connect. Failure points the same way. redis-py sends every publish, classic or
sharded, to the master of the channel's slot; a classic subscriber elsewhere keeps its own
connection when that master dies and would learn of it only at its next beat (below, up to
``ping_interval + ping_timeout``), trusting its cache meanwhile, whereas shard subscribers
all lose their connection with it (caches off at once, store reads), and a slot move sends
them ``SUNSUBSCRIBE`` (resubscribe, flush).
Sharded pub/sub needs Redis 7.0 or newer, which the store already requires.

Health is proven end to end rather than by a PING to the subscribed node: every
``ping_interval`` the bus publishes a beat through the cluster client (so along the route
every publisher takes, with its view of the slot map) on a channel of its own in the same
slot, ``{P:revocations}:beat:<origin>``, and the subscription must deliver it within
``ping_timeout``. A node that lost the slot, or a partition that leaves the subscription up
while publishes go elsewhere, fails the beat; the bus turns unhealthy, re-reads the slot
map, resubscribes on the new owner and flushes every cache (:mod:`satchel.revocation.remote`).
Beats go to one subscriber only, so they add no fan-out.

``sharded=False`` runs the same bus on classic pub/sub (each process subscribes on one
master chosen by its origin): kept for the measurement that made the choice.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from satchel.errors import ConfigurationError
from satchel.revocation.remote import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    DEFAULT_PUBLISH_TIMEOUT,
    BusBase,
    quietly,
)
from satchel.stores import redis_cluster_client

logger = logging.getLogger("satchel.revocation")

_BEAT = "beat:"


class _Lost(Exception):
    """The subscription stopped delivering."""


class RedisClusterBus(BusBase):
    """Revocations over a Redis Cluster; see the module docstring for the health rules."""

    kind = "redis-cluster"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "satchel",
        sharded: bool = True,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
    ) -> None:
        super().__init__(
            publish_timeout=publish_timeout,
            connect_timeout=connect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )
        if not prefix or any(ch.isspace() or ch in "{}" for ch in prefix):
            raise ConfigurationError(
                "The Redis key prefix must be non-empty, without spaces or braces."
            )
        self.sharded = sharded
        # One hash tag for the channel and the beats: one slot, one shard.
        self.channel = f"{{{prefix}:revocations}}"
        self.beat_channel = f"{self.channel}:beat:{self.origin}"
        self._seeds = redis_cluster_client.parse(url)
        self._cluster: RedisCluster = redis_cluster_client.connect(
            url, socket_timeout=publish_timeout, socket_connect_timeout=connect_timeout
        )
        self._beats = 0
        self.node: str | None = None  # host:port of the node subscribed to (tests, operators)

    @property
    def client_name(self) -> str:
        """CLIENT SETNAME of the subscriber connection: ``satchel-bus:<channel>``."""
        return f"satchel-bus:{self.channel}"

    def __repr__(self) -> str:
        mode = "sharded" if self.sharded else "classic"
        return f"RedisClusterBus(channel={self.channel!r}, {mode}, healthy={self.healthy})"

    async def _publish(self, channel: str, message: str) -> None:
        # redis-py routes both by the channel's slot (the async client has no spublish()).
        await self._cluster.execute_command(
            "SPUBLISH" if self.sharded else "PUBLISH", channel, message
        )

    async def _send(self, message: str) -> None:
        await self._publish(self.channel, message)

    async def _target(self) -> Any:
        """The node to subscribe on, from a freshly read slot map."""
        await self._cluster.initialize()
        # Re-read the slot map every time: a reconnect usually follows a failover.
        await self._cluster.nodes_manager.initialize()
        if self.sharded:
            return self._cluster.get_node_from_key(self.channel)
        primaries = sorted(self._cluster.get_primaries(), key=lambda n: n.name)
        return primaries[zlib.crc32(self.origin.encode()) % len(primaries)]

    async def _subscription(self) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(self.connect_timeout):
            node = await self._target()
        client = aioredis.Redis(
            host=node.host,
            port=node.port,
            username=self._seeds.username,
            password=self._seeds.password,
            ssl=self._seeds.tls,
            # Reads wait for messages; liveness comes from the beats.
            socket_timeout=None,
            socket_connect_timeout=self.connect_timeout,
            retry=Retry(NoBackoff(), 0),
            client_name=self.client_name,
        )
        pubsub: Any = client.pubsub()
        command = "SSUBSCRIBE" if self.sharded else "SUBSCRIBE"
        confirmation = command.lower()
        try:
            async with asyncio.timeout(self.connect_timeout):
                await pubsub.execute_command(command, self.channel, self.beat_channel)
                confirmed = 0
                while confirmed < 2:  # one confirmation per channel, first on the wire
                    msg = await pubsub.get_message(timeout=self.connect_timeout)
                    if msg is not None and msg.get("type") == confirmation:
                        confirmed += 1
            self.node = node.name
            self._connected()
            await self._listen(pubsub, loop)
        finally:
            self._lost()
            self.node = None
            await quietly(pubsub.aclose(), 0.5)
            await quietly(client.connection_pool.disconnect(), 0.5)
            await quietly(client.aclose(), 0.5)

    async def _listen(self, pubsub: Any, loop: asyncio.AbstractEventLoop) -> None:
        next_beat = loop.time() + self.ping_interval
        beat_due: float | None = None
        expected = b""
        # ``_closing`` as well as the cancellation: Python 3.11's asyncio.timeout can turn a
        # cancellation that races with its own expiry into a TimeoutError, which redis-py
        # reads as "no message yet"; the flag ends the loop within one beat anyway.
        while not self._closing:
            now = loop.time()
            if beat_due is not None and now >= beat_due:
                raise _Lost()
            if beat_due is None and now >= next_beat:
                self._beats += 1
                expected = f"{_BEAT}{self._beats}".encode()
                beat_due = now + self.ping_timeout
                async with asyncio.timeout(self.ping_timeout):
                    await self._publish(self.beat_channel, expected.decode())
            deadline = beat_due if beat_due is not None else next_beat
            msg = await pubsub.get_message(timeout=max(0.0, deadline - loop.time()))
            if msg is None:
                continue
            kind = msg.get("type")
            if kind in ("message", "smessage"):
                channel = msg.get("channel")
                if channel == self.beat_channel.encode():
                    if msg.get("data") == expected:
                        beat_due = None
                        next_beat = loop.time() + self.ping_interval
                else:
                    self._on_message(msg["data"])
            elif kind in ("unsubscribe", "sunsubscribe"):
                # A slot move (or a node turned replica) ends shard subscriptions this way.
                raise _Lost()

    async def _release(self) -> None:
        await quietly(self._cluster.aclose(), 1.0)
