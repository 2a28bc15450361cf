"""Revocation bus on PostgreSQL ``LISTEN``/``NOTIFY`` for deployments without Redis.

The subscriber holds one dedicated connection (a pooled one would be handed to other work
and lose its LISTEN). Loss is detected two ways: asyncpg's termination listener fires when
the server closes the connection (restart, ``pg_terminate_backend``), and a ``SELECT 1``
every ``ping_interval`` must answer within ``ping_timeout`` (a black-holed network closes
nothing). Either ends the subscription; see :mod:`satchel.revocation.remote` for what follows.

Notifications are sent with ``pg_notify`` through a pool — the session store's pool when
given, else a small one of our own. Channel names are per schema, so deployments (and test
runs) sharing a database do not hear each other.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any

import asyncpg

from satchel.revocation.remote import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_PING_INTERVAL,
    DEFAULT_PING_TIMEOUT,
    DEFAULT_PUBLISH_TIMEOUT,
    BusBase,
    quietly,
)

logger = logging.getLogger("satchel.revocation")

_MAX_CHANNEL = 63  # NAMEDATALEN - 1; longer names are silently truncated by the server


def channel_for(schema: str) -> str:
    """The NOTIFY channel of ``schema`` (at most 63 bytes, distinct per schema)."""
    name = f"{schema}:revocations"
    if len(name.encode()) <= _MAX_CHANNEL:
        return name
    digest = hashlib.sha256(schema.encode()).hexdigest()[:12]
    return f"{schema[:36]}:{digest}:revocations"


class PostgresBus(BusBase):
    """Revocations over ``LISTEN``/``NOTIFY`` on ``channel_for(schema)``."""

    kind = "postgres"

    def __init__(
        self,
        dsn: str,
        *,
        schema: str = "satchel",
        pool: Any = None,
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
        self._dsn = dsn
        self.channel = channel_for(schema)
        self._pool: Any = pool
        self._owns_pool = pool is None
        self._pool_lock = asyncio.Lock()
        self._conn: Any = None

    def __repr__(self) -> str:
        return f"PostgresBus(channel={self.channel!r}, healthy={self.healthy})"

    @property
    def application_name(self) -> str:
        """``application_name`` of the LISTEN connection: ``satchel-bus <channel>``."""
        return f"satchel-bus {self.channel}"[:63]

    @property
    def listen_pid(self) -> int | None:
        """Server process id of the LISTEN connection (for operators and fault tests)."""
        conn = self._conn
        return int(conn.get_server_pid()) if conn is not None and not conn.is_closed() else None

    async def _get_pool(self) -> Any:
        if self._pool is None:
            async with self._pool_lock:
                if self._pool is None:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=1,
                        max_size=4,
                        timeout=self.connect_timeout,
                        command_timeout=self.publish_timeout,
                    )
        return self._pool

    async def _send(self, message: str) -> None:
        pool = await self._get_pool()
        await pool.execute("SELECT pg_notify($1, $2)", self.channel, message)

    async def _subscription(self) -> None:
        lost = asyncio.Event()
        conn = await asyncpg.connect(
            self._dsn,
            timeout=self.connect_timeout,
            # Lets operators (and fault tests) find this backend in pg_stat_activity.
            server_settings={"application_name": self.application_name},
        )
        self._conn = conn
        try:
            conn.add_termination_listener(lambda _conn: lost.set())
            async with asyncio.timeout(self.connect_timeout):
                await conn.add_listener(self.channel, self._notified)
            self._connected()
            while True:
                try:
                    async with asyncio.timeout(self.ping_interval):
                        await lost.wait()
                    return  # the server closed the connection
                except TimeoutError:
                    pass
                async with asyncio.timeout(self.ping_timeout):
                    await conn.fetchval("SELECT 1")
                self._alive()
        finally:
            self._lost()
            self._conn = None
            # terminate(), not close(): a graceful close waits on a link that may be dead.
            conn.terminate()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        self._on_message(payload)

    async def _release(self) -> None:
        if self._owns_pool and self._pool is not None:
            pool, self._pool = self._pool, None
            await quietly(pool.close(), 2.0)
