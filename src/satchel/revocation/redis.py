"""Revocation bus on Redis pub/sub (channel ``<prefix>:revocations``).

The subscriber owns one dedicated connection and never lets the client reconnect it behind
our back: redis-py would silently re-subscribe, and the messages published in between would
be lost without anyone flushing a cache. So the client has no retries, and any error —
or a PING not answered within ``ping_timeout`` — ends the subscription: the bus turns
unhealthy, and the next confirmed subscription flushes every cache before it turns healthy.

Publishing uses a separate small pool with a ``publish_timeout`` per command.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import redis.asyncio as aioredis
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

logger = logging.getLogger("satchel.revocation")


class _Lost(Exception):
    """The subscription stopped answering."""


class RedisBus(BusBase):
    """Revocations over Redis pub/sub; see the module docstring for the health rules."""

    kind = "redis"

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "satchel",
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
        if not prefix or any(ch.isspace() for ch in prefix):
            raise ConfigurationError("The Redis key prefix must be non-empty without spaces.")
        self.channel = f"{prefix}:revocations"
        no_retry = Retry(NoBackoff(), 0)
        try:
            self._publisher = aioredis.Redis.from_url(
                url,
                socket_timeout=publish_timeout,
                socket_connect_timeout=connect_timeout,
                retry=no_retry,
                max_connections=8,
            )
            # Reads on the subscriber wait for messages, so only the connect is bounded here;
            # liveness comes from the PING cycle.
            self._subscriber = aioredis.Redis.from_url(
                url,
                socket_timeout=None,
                socket_connect_timeout=connect_timeout,
                retry=no_retry,
                max_connections=1,
                # Lets operators (and fault tests) find this subscriber in CLIENT LIST.
                client_name=self.client_name,
            )
        except (ValueError, TypeError) as exc:
            raise ConfigurationError("Invalid Redis URL for the revocation bus.") from exc
        self._pubsub: Any = None

    @property
    def client_name(self) -> str:
        """CLIENT SETNAME of the subscriber connection: ``satchel-bus:<channel>``."""
        return f"satchel-bus:{self.channel}"

    def __repr__(self) -> str:
        return f"RedisBus(channel={self.channel!r}, healthy={self.healthy})"

    async def _send(self, message: str) -> None:
        await self._publisher.publish(self.channel, message)

    async def _subscription(self) -> None:
        loop = asyncio.get_running_loop()
        pubsub: Any = self._subscriber.pubsub()
        self._pubsub = pubsub
        try:
            async with asyncio.timeout(self.connect_timeout):
                await pubsub.subscribe(self.channel)
                while True:  # the confirmation is the first reply on the connection
                    msg = await pubsub.get_message(timeout=self.connect_timeout)
                    if msg is not None and msg.get("type") == "subscribe":
                        break
            self._connected()
            next_ping = loop.time() + self.ping_interval
            pong_due: float | None = None
            while True:
                now = loop.time()
                if pong_due is not None and now >= pong_due:
                    raise _Lost()
                if pong_due is None and now >= next_ping:
                    await pubsub.ping()
                    pong_due = now + self.ping_timeout
                deadline = pong_due if pong_due is not None else next_ping
                msg = await pubsub.get_message(timeout=max(0.0, deadline - loop.time()))
                if msg is None:
                    continue
                kind = msg.get("type")
                if kind == "message":
                    self._on_message(msg["data"])
                elif kind == "pong":
                    self._alive()
                    pong_due = None
                    next_ping = loop.time() + self.ping_interval
                elif kind == "unsubscribe":
                    raise _Lost()
        finally:
            self._lost()
            self._pubsub = None
            # Close by dropping the socket: an UNSUBSCRIBE round trip could hang on a dead link.
            await quietly(pubsub.aclose(), 0.5)
            await quietly(self._subscriber.connection_pool.disconnect(), 0.5)

    async def _release(self) -> None:
        await quietly(self._publisher.aclose(), 1.0)
        await quietly(self._subscriber.aclose(), 1.0)
