"""Revocation events and the bus that pushes them to every server process.

Strategies cache verified credentials in memory and keep per-process sets of revoked
sessions and per-user "valid after" instants. The bus is what makes that safe: every
revocation is published, every process applies it, and a cache is trusted only while the
bus is healthy. After a reconnect the bus calls the reset callbacks, because messages
missed while disconnected cannot be known.
"""

from __future__ import annotations

import enum
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger("satchel.revocation")


class RevocationKind(enum.StrEnum):
    """What a revocation event ends."""

    SESSION = "session"  # one session (logout, revoke one, eviction, refresh-token reuse)
    USER = "user"  # every credential of a user issued before ``valid_after``


@dataclass(frozen=True, slots=True)
class RevocationEvent:
    """A revocation to apply everywhere.

    ``until`` bounds how long a process must remember it: no credential it blocks can be
    valid after that instant.
    """

    kind: RevocationKind
    subject: str  # session id or user id
    until: float
    valid_after: float = 0.0

    def to_json(self) -> str:
        """Wire form (JSON, never pickle)."""
        return json.dumps(
            {"k": self.kind.value, "s": self.subject, "u": self.until, "v": self.valid_after},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | bytes) -> RevocationEvent | None:
        """Parse a wire message; None (and a log line) for anything malformed."""
        try:
            data: Any = json.loads(raw)
            return cls(
                kind=RevocationKind(data["k"]),
                subject=str(data["s"]),
                until=float(data["u"]),
                valid_after=float(data.get("v", 0.0)),
            )
        except (ValueError, KeyError, TypeError):
            logger.warning("ignored malformed revocation message (%d bytes)", len(raw))
            return None


Listener = Callable[[RevocationEvent], None]
ResetListener = Callable[[], None]


class RevocationBus(Protocol):
    """Publish/subscribe channel for revocation events."""

    #: True when delivery reaches every process that may hold a cache (the memory backend
    #: in one process, Redis pub/sub, PostgreSQL LISTEN/NOTIFY). False for "no bus".
    covers_all_processes: bool

    @property
    def healthy(self) -> bool:
        """True while the subscription is connected; caches are trusted only then."""
        ...

    def subscribe(self, listener: Listener, on_reset: ResetListener | None = None) -> None:
        """Call ``listener`` for each event; ``on_reset`` after a reconnect (flush caches)."""
        ...

    async def publish(self, event: RevocationEvent) -> None:
        """Deliver ``event`` to every subscriber, including this process's, before returning."""
        ...

    async def start(self) -> None:
        """Connect the subscription."""
        ...

    async def close(self) -> None:
        """Disconnect."""
        ...


class LocalBus:
    """In-process delivery: correct when there is exactly one process (the memory store)."""

    covers_all_processes = True

    def __init__(self) -> None:
        self._listeners: list[Listener] = []
        self._resets: list[ResetListener] = []
        self.received = 0

    @property
    def healthy(self) -> bool:
        return True

    def subscribe(self, listener: Listener, on_reset: ResetListener | None = None) -> None:
        self._listeners.append(listener)
        if on_reset is not None:
            self._resets.append(on_reset)

    async def publish(self, event: RevocationEvent) -> None:
        self.received += 1
        for listener in self._listeners:
            listener(event)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None


class NullBus(LocalBus):
    """No cross-process delivery (e.g. several processes on one SQLite file).

    Events still reach this process's own listeners, but ``healthy`` is False so strategies
    never trust a cache and read the store on every request.
    """

    covers_all_processes = False

    @property
    def healthy(self) -> bool:
        return False
