"""What the Redis and PostgreSQL revocation buses share: listeners, health, resets, counters.

A bus is *healthy* only between "the subscription is confirmed" and "something went wrong
with it". Strategies trust their caches only while it is healthy, so every path that can
lose a message must flip it to False first, and every path back to healthy must flush the
caches (the reset listeners) before it flips to True: messages sent while the subscription
was down cannot be known.

On the wire an event is ``<origin>|<event JSON>``. ``origin`` is random per bus instance, so
a process ignores the echo of its own publications (it already applied them synchronously
in :meth:`publish`, before they went out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass

from satchel.errors import ConfigurationError, StoreUnavailable
from satchel.revocation.base import Listener, ResetListener, RevocationEvent

logger = logging.getLogger("satchel.revocation")

#: Messages longer than this are dropped unread (ours are ~150 bytes).
MAX_MESSAGE = 4096

DEFAULT_PUBLISH_TIMEOUT = 1.0
DEFAULT_CONNECT_TIMEOUT = 1.0
DEFAULT_PING_INTERVAL = 1.0
DEFAULT_PING_TIMEOUT = 0.5
BACKOFF_START = 0.05
BACKOFF_MAX = 2.0


@dataclass(slots=True)
class BusCounters:
    """What a bus did since it was created (tests, benchmarks, ``/debug/counters``)."""

    published: int = 0  # events this process sent
    publish_failures: int = 0  # publications that raised StoreUnavailable
    received: int = 0  # events from other processes applied here
    malformed: int = 0  # messages ignored because they did not parse
    connects: int = 0  # confirmed subscriptions, the first one included
    disconnects: int = 0  # subscriptions lost (the bus turned unhealthy)
    resets: int = 0  # reset notifications sent to listeners (after a reconnect)

    def snapshot(self) -> dict[str, int]:
        """A copy as a dict."""
        return asdict(self)


def check_timing(**values: float) -> None:
    """Raise :class:`ConfigurationError` unless every value is a finite positive number."""
    for name, value in values.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not 0 < value < float("inf")
        ):
            raise ConfigurationError(f"The bus setting {name} must be a positive number.")


class BusBase:
    """Listener bookkeeping and the connection supervisor loop of a remote bus.

    Subclasses implement :meth:`_subscription` (connect, confirm, call :meth:`_connected`,
    then return only when the subscription is lost) and :meth:`_send`.
    """

    covers_all_processes = True
    kind = "remote"

    def __init__(
        self,
        *,
        publish_timeout: float = DEFAULT_PUBLISH_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        ping_interval: float = DEFAULT_PING_INTERVAL,
        ping_timeout: float = DEFAULT_PING_TIMEOUT,
    ) -> None:
        check_timing(
            publish_timeout=publish_timeout,
            connect_timeout=connect_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
        )
        self.publish_timeout = float(publish_timeout)
        self.connect_timeout = float(connect_timeout)
        self.ping_interval = float(ping_interval)
        self.ping_timeout = float(ping_timeout)
        self.counters = BusCounters()
        self.origin = secrets.token_hex(8)
        self._listeners: list[Listener] = []
        self._resets: list[ResetListener] = []
        self._healthy = False
        self._ever_connected = False
        self._task: asyncio.Task[None] | None = None
        self._first: asyncio.Event | None = None
        self._closing = False
        #: ``time.monotonic()`` when the channel last proved alive (confirmed, a message, a
        #: ping answered, a poll done); the metrics' lag is the time since.
        self.alive_at = -math.inf

    # --- the RevocationBus protocol ------------------------------------------------------------

    @property
    def healthy(self) -> bool:
        """True while the subscription is confirmed connected; caches are trusted only then."""
        return self._healthy

    @property
    def worst_case_staleness(self) -> float:
        """Seconds a silently dead subscription can go unnoticed (one ping cycle).

        A process whose subscription dies without a reset (a black-holed network) keeps
        trusting its cache until the next ping fails; after that every request reads the
        store. Revocations published while it is healthy arrive within milliseconds.
        """
        return self.ping_interval + self.ping_timeout

    def subscribe(self, listener: Listener, on_reset: ResetListener | None = None) -> None:
        """Call ``listener`` for each event; ``on_reset`` after every reconnect."""
        self._listeners.append(listener)
        if on_reset is not None:
            self._resets.append(on_reset)

    async def publish(self, event: RevocationEvent) -> None:
        """Apply ``event`` here, then send it to every other process.

        Raises :class:`StoreUnavailable` when it cannot be sent in ``publish_timeout``; the
        caller reports the failure and a retry is safe (applying an event twice is a no-op).
        """
        self._deliver(event)
        try:
            async with asyncio.timeout(self.publish_timeout):
                await self._send_event(event, f"{self.origin}|{event.to_json()}")
        except Exception as exc:
            self.counters.publish_failures += 1
            logger.warning("revocation publish failed: %s", type(exc).__name__)
            raise StoreUnavailable("The revocation could not be broadcast; retry.") from exc
        self.counters.published += 1

    async def start(self) -> None:
        """Start the subscriber and wait up to ``connect_timeout`` for the first subscription.

        A bus that cannot connect yet does not stop the server: it stays unhealthy (every
        request reads the store) and keeps retrying in the background.
        """
        if self._task is not None:
            return
        self._closing = False
        self._first = asyncio.Event()
        self._task = asyncio.create_task(self._supervise(), name=f"satchel-{self.kind}-bus")
        try:
            async with asyncio.timeout(self.connect_timeout + 0.5):
                await self._first.wait()
        except TimeoutError:
            logger.warning("%s revocation bus not connected yet; caches stay off", self.kind)

    async def close(self) -> None:
        """Stop the subscriber and release connections."""
        self._closing = True
        self._healthy = False
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._release()

    # --- for subclasses -------------------------------------------------------------------------

    async def _send(self, message: str) -> None:
        raise NotImplementedError

    async def _send_event(self, event: RevocationEvent, message: str) -> None:
        """Send one wire ``message`` (the encoded ``event``); buses storing more override it."""
        await self._send(message)

    async def _subscription(self) -> None:
        raise NotImplementedError

    async def _release(self) -> None:
        """Close publishing connections (after the subscriber stopped)."""
        return None

    def _alive(self) -> None:
        """The channel just proved it works (see :attr:`alive_at`)."""
        self.alive_at = time.monotonic()

    def _connected(self) -> None:
        """The subscription is confirmed: flush caches if messages may have been missed."""
        self._alive()
        self.counters.connects += 1
        if self._ever_connected:
            self.counters.resets += 1
            for reset in self._resets:
                _safely(reset)
        self._ever_connected = True
        self._healthy = True
        if self._first is not None:
            self._first.set()
        logger.info("%s revocation bus subscribed", self.kind)

    def _lost(self) -> None:
        """The subscription can no longer be trusted (idempotent)."""
        if self._healthy:
            self.counters.disconnects += 1
        self._healthy = False

    def _on_message(self, raw: str | bytes) -> None:
        """Apply one message from the channel (ignoring our own echoes)."""
        self._alive()
        if len(raw) > MAX_MESSAGE:
            self.counters.malformed += 1
            logger.warning("ignored oversized revocation message (%d bytes)", len(raw))
            return
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        origin, sep, body = text.partition("|")
        if not sep:
            self.counters.malformed += 1
            logger.warning("ignored malformed revocation message (%d bytes)", len(raw))
            return
        if origin == self.origin:
            return
        event = RevocationEvent.from_json(body)
        if event is None:
            self.counters.malformed += 1
            return
        self.counters.received += 1
        self._deliver(event)

    def _deliver(self, event: RevocationEvent) -> None:
        for listener in self._listeners:
            _safely(listener, event)

    async def _supervise(self) -> None:
        """Keep a subscription open; back off between attempts; never trust a broken one."""
        delay = BACKOFF_START
        while not self._closing:
            try:
                await self._subscription()
                delay = BACKOFF_START  # it was up; reconnect promptly
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("%s revocation bus: %s", self.kind, type(exc).__name__)
            finally:
                self._lost()
            if self._closing:
                break
            # Jitter keeps a fleet of servers from reconnecting in lock-step after an outage.
            await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311
            delay = min(BACKOFF_MAX, delay * 2)


def _safely(callback: Callable[..., None], *args: object) -> None:
    # A failing listener must not stop delivery to the others or kill the subscriber.
    try:
        callback(*args)
    except Exception:
        logger.exception("revocation listener failed")


async def quietly(operation: Awaitable[object], limit: float) -> None:
    """Await a clean-up step, giving up after ``limit`` seconds and ignoring its errors."""
    try:
        async with asyncio.timeout(limit):
            await operation
    except Exception as exc:  # the connection is being dropped anyway
        logger.debug("bus clean-up step failed: %s", type(exc).__name__)
