"""Revocation bus on the SQLite file itself: a ``revocations`` table every process polls.

Publishing inserts ``<origin>|<event JSON>`` into ``revocations`` (created by the SQLite
store's migrations) after applying the event locally. Each process runs one poll task on
the event loop: ``SELECT seq, event FROM revocations WHERE seq > ?`` every
``poll_interval``. Like the store, it calls :mod:`sqlite3` synchronously; a poll of an
empty tail is a point query on the rowid and costs microseconds.

Why this is safe: SQLite has a single writer, so ``seq`` (AUTOINCREMENT) is assigned in
commit order and a reader never sees a row with a higher ``seq`` before every lower one is
committed — a poll that continues from the last ``seq`` it saw cannot skip an event. The
table is durable, so even a poll that comes late reads everything published meanwhile.

Health is a freshness bound: the bus is healthy only while the last successful poll began
at most ``max_staleness`` (3 × ``poll_interval`` by default) ago. A failed poll ends the
subscription at once (the connection is dropped and reopened with back-off); a poll loop
that stalls (a blocked event loop) simply ages out. Either way the first successful poll
afterwards calls the reset listeners (caches are flushed) before the bus counts as healthy
again, exactly like the Redis and PostgreSQL buses after a reconnect.

Rows whose ``until`` has passed are pruned every ``prune_every`` polls, and only once they
have been in the table for a whole prune period, so every healthy process has read them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from pathlib import Path

from satchel.clock import Clock, system_clock
from satchel.errors import ConfigurationError
from satchel.revocation.base import RevocationEvent
from satchel.revocation.remote import DEFAULT_PUBLISH_TIMEOUT, BusBase, _safely, check_timing

logger = logging.getLogger("satchel.revocation")

DEFAULT_POLL_INTERVAL = 0.05
#: A poll older than this many intervals means the loop is not keeping up: stop trusting.
STALENESS_INTERVALS = 3
DEFAULT_PRUNE_EVERY = 200
#: A stall shorter than this is an event-loop hiccup (start-up imports, a burst of CPU work):
#: caches are still flushed, but it is not worth an operator's attention.
STALL_WARNING_SECONDS = 1.0
#: At most one stall warning per this many seconds; the others go to the debug log.
STALL_WARNING_EVERY = 60.0

_INSERT = "INSERT INTO revocations (event, until) VALUES (?, ?)"
_POLL = "SELECT seq, event FROM revocations WHERE seq > ? ORDER BY seq"
_MAX_SEQ = "SELECT coalesce(max(seq), 0) FROM revocations"
_PRUNE = "DELETE FROM revocations WHERE until < ? AND seq <= ?"


class SQLiteBus(BusBase):
    """Revocations through the ``revocations`` table of the SQLite file at ``path``.

    The file must already exist and be migrated (open it with
    :class:`~satchel.stores.sqlite.SQLiteStore` first); the bus never creates it, so a
    deleted file turns the bus unhealthy instead of silently starting an empty one.
    ``clock`` is the clock the strategies compute ``until`` with (pruning compares to it).
    """

    kind = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        max_staleness: float | None = None,
        prune_every: int = DEFAULT_PRUNE_EVERY,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        clock: Clock = system_clock,
    ) -> None:
        staleness = STALENESS_INTERVALS * poll_interval if max_staleness is None else max_staleness
        check_timing(poll_interval=poll_interval, max_staleness=staleness)
        super().__init__(
            publish_timeout=publish_timeout,
            connect_timeout=publish_timeout,
            ping_interval=poll_interval,
            ping_timeout=staleness,
        )
        if path == ":memory:" or not path:
            raise ConfigurationError("The SQLite revocation bus needs a database file path.")
        if isinstance(prune_every, bool) or not isinstance(prune_every, int) or prune_every < 1:
            raise ConfigurationError("The bus setting prune_every must be a positive integer.")
        self.path = os.path.abspath(path)
        self.poll_interval = float(poll_interval)
        self.max_staleness = float(staleness)
        self.prune_every = prune_every
        self.clock = clock
        #: Rows this process deleted because their ``until`` had passed.
        self.pruned = 0
        self._conn: sqlite3.Connection | None = None
        self._seq: int | None = None  # highest seq read; None until the first connection
        self._prune_mark = 0  # rows up to this seq have been visible for a prune period
        self._polls = 0
        self._polled_at = -float("inf")  # monotonic start of the last successful poll
        self._warned_at = -float("inf")  # monotonic time of the last stall warning

    def __repr__(self) -> str:
        return f"SQLiteBus(path={self.path!r}, healthy={self.healthy})"

    @property
    def healthy(self) -> bool:
        """True while the subscription is up and the last poll is at most ``max_staleness`` old."""
        return self._healthy and time.monotonic() - self._polled_at <= self.max_staleness

    @property
    def worst_case_staleness(self) -> float:
        """Seconds a stalled or failing poll loop can go unnoticed (``max_staleness``).

        While healthy, another process's revocation is applied here at the next poll, at
        most ``poll_interval`` after it was committed (plus the request in progress).
        """
        return self.max_staleness

    # --- connection -----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            # mode=rw: never create the file. A store deleted under a running server must
            # make this bus fail (and caches stop), not poll a fresh empty database.
            uri = f"{Path(self.path).as_uri()}?mode=rw"
            conn = sqlite3.connect(
                uri, uri=True, isolation_level=None, check_same_thread=False, cached_statements=8
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @property
    def _busy_ms(self) -> int:
        return int(self.publish_timeout * 1000)

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error as exc:  # being discarded anyway
                logger.debug("closing the bus connection failed: %s", type(exc).__name__)

    # --- publish ----------------------------------------------------------------------------------

    async def _send_event(self, event: RevocationEvent, message: str) -> None:
        self._connection().execute(_INSERT, (message, event.until))

    # --- subscription -----------------------------------------------------------------------------

    async def _subscription(self) -> None:
        try:
            conn = self._connection()
            started = time.monotonic()
            (top,) = conn.execute(_MAX_SEQ).fetchone()
            if self._seq is None or top < self._seq:
                # First start: earlier events are irrelevant (nothing is cached yet). A
                # lower maximum means the table was recreated; the reset below covers it.
                self._seq = int(top)
                self._prune_mark = self._seq
            else:
                # Reconnect: catch up on what was published meanwhile (the reset follows).
                self._poll(conn)
            self._polled_at = started
            self._connected()
            while True:
                await asyncio.sleep(self.poll_interval)
                self._poll(conn)
        finally:
            self._lost()
            self._drop_connection()

    def _poll(self, conn: sqlite3.Connection) -> None:
        """Apply every row after ``_seq``; raises on any database error."""
        started = time.monotonic()
        rows = conn.execute(_POLL, (self._seq,)).fetchall()
        for seq, raw in rows:
            self._seq = int(seq)
            self._on_message(raw if isinstance(raw, str | bytes) else str(raw))
        if self._healthy and started - self._polled_at > self.max_staleness:
            # The loop stalled past the bound and callers already stopped trusting caches;
            # treat it like a reconnect so they are flushed before trust resumes.
            self.counters.disconnects += 1
            self.counters.resets += 1
            self._log_stall(started, started - self._polled_at)
            for reset in self._resets:
                _safely(reset)
        self._polled_at = self.alive_at = started
        self._polls += 1
        if self._polls % self.prune_every == 0:
            self._prune(conn)

    def _log_stall(self, now: float, stalled: float) -> None:
        # The flush itself is what keeps caches safe; the log line is for an operator, who
        # needs to hear about a loop blocked for seconds, not every 0.2 s start-up hiccup.
        level = logging.DEBUG
        if stalled >= STALL_WARNING_SECONDS and now - self._warned_at >= STALL_WARNING_EVERY:
            level = logging.WARNING
            self._warned_at = now
        logger.log(
            level,
            "sqlite revocation bus: the event loop was blocked for %.2fs (no poll); caches flushed",
            stalled,
        )

    def _prune(self, conn: sqlite3.Connection) -> None:
        # Never wait for the write lock here: another process will prune if we cannot.
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            self.pruned += conn.execute(_PRUNE, (self.clock(), self._prune_mark)).rowcount
        except sqlite3.OperationalError as exc:
            logger.debug("revocations prune skipped: %s", exc)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
        self._prune_mark = self._seq or 0

    async def _release(self) -> None:
        self._drop_connection()
