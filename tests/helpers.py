"""Helpers shared by the store and bus tests (import as ``from helpers import ...``)."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from satchel.revocation.base import RevocationBus, RevocationEvent
from satchel.stores import SessionRecord, Stores

HOUR = 3600.0
#: ``await make_stores(kind, **open_stores_options)``: the conftest fixture's type.
MakeStores = Callable[..., Awaitable[Stores]]


def make_session(
    now: float,
    *,
    user: str = "u1",
    sid: str | None = None,
    idle: float = HOUR,
    absolute: float = 24 * HOUR,
    **fields: Any,
) -> SessionRecord:
    """A fresh session created at ``now`` with a random id and secret hash."""
    return SessionRecord(
        id=sid or secrets.token_urlsafe(32),
        user_id=user,
        secret_hash=hashlib.sha256(secrets.token_bytes(32)).digest(),
        created_at=now,
        last_seen_at=now,
        idle_expires_at=now + idle,
        absolute_expires_at=now + absolute,
        **fields,
    )


async def until(
    predicate: Callable[[], bool], timeout: float = 3.0, *, step: float = 0.005
) -> float:
    """Wait until ``predicate()`` holds; return the seconds it took (fail after ``timeout``)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(step)
    return time.monotonic() - start


class Recorder:
    """A bus listener that keeps the events it got and counts its resets."""

    def __init__(self) -> None:
        self.events: list[RevocationEvent] = []
        self.resets = 0

    def __call__(self, event: RevocationEvent) -> None:
        self.events.append(event)

    def reset(self) -> None:
        self.resets += 1


@asynccontextmanager
async def started(*buses: RevocationBus) -> AsyncIterator[None]:
    """Start ``buses`` in order; close every one of them on the way out."""
    try:
        for bus in buses:
            await bus.start()
        yield
    finally:
        for bus in buses:
            await bus.close()
