"""A per-call deadline in front of any store, so a slow or black-holed backend fails fast.

Drivers have their own socket and command time-outs, but not every wait is covered by them:
an asyncpg pool that is exhausted queues callers without limit, a call that makes several
round trips can spend each time-out in turn, and cancelling a query on a dead link waits
for the driver's clean-up. :class:`DeadlineStore` bounds the whole call: past ``timeout``
seconds the caller gets :class:`~satchel.errors.StoreUnavailable` at once, so the request
answers 503 within the time-out (checklist F06), while the cancelled call finishes its
clean-up in the background and returns its connection to the pool.

A write that times out may still have been applied by the server; every write the
strategies make is idempotent (delete, touch that never recreates), so the caller's retry
is safe.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from time import perf_counter
from typing import Any, TypeVar

from satchel.errors import ConfigurationError, NotSupported, StoreUnavailable
from satchel.stores.base import (
    CreateResult,
    OnExceed,
    RotateOutcome,
    SessionDataStore,
    SessionRecord,
    StoredKey,
    Stores,
    UserRecord,
)

logger = logging.getLogger("satchel.stores")

_T = TypeVar("_T")

#: Told of every bounded call once it ends: the awaited operation (a coroutine, whose
#: ``__name__`` is the store method), seconds taken, and ``ok``, ``error`` or ``timeout``.
CallObserver = Callable[[Awaitable[Any], float, str], None]


class DeadlineStore:
    """Wraps one backend (any of the three store protocols) with a per-call deadline.

    Calls the wrapped backend does not implement raise ``AttributeError`` as before.
    """

    def __init__(self, inner: Any, timeout: float) -> None:
        if (
            isinstance(timeout, bool)
            or not isinstance(timeout, int | float)
            or not 0 < timeout < float("inf")
        ):
            raise ConfigurationError("The store time-out must be a positive number of seconds.")
        self.inner: Any = inner
        self.timeout = float(timeout)
        self.timeouts = 0  # calls cut off by the deadline
        #: None unless metrics are on (satchel.ops.metrics): then each call is timed.
        self.observer: CallObserver | None = None

    def __repr__(self) -> str:
        return f"DeadlineStore({self.inner!r}, timeout={self.timeout})"

    async def _call(self, operation: Awaitable[_T]) -> _T:
        # A task rather than ``asyncio.timeout``: cancelling a driver call can itself block
        # (asyncpg sends a cancel request and resets the connection over the same dead
        # link), and the request must not wait for that clean-up.
        observer = self.observer
        started = perf_counter() if observer is not None else 0.0
        outcome = "error"
        task = asyncio.ensure_future(operation)
        try:
            try:
                done, _ = await asyncio.wait({task}, timeout=self.timeout)
            except asyncio.CancelledError:
                _abandon(task)
                raise
            if task in done:
                result = task.result()
                outcome = "ok"
                return result
            _abandon(task)
            self.timeouts += 1
            outcome = "timeout"
            logger.warning("store call exceeded %.2f s; failing closed", self.timeout)
            raise StoreUnavailable("The store did not answer in time.")
        finally:
            if observer is not None:
                observer(operation, perf_counter() - started, outcome)

    # --- SessionStore ---------------------------------------------------------------------

    async def create(
        self,
        record: SessionRecord,
        *,
        max_per_user: int | None = None,
        on_exceed: OnExceed = OnExceed.EVICT_OLDEST,
        now: float,
    ) -> CreateResult:
        return await self._call(
            self.inner.create(record, max_per_user=max_per_user, on_exceed=on_exceed, now=now)
        )

    async def get(self, session_id: str) -> SessionRecord | None:
        return await self._call(self.inner.get(session_id))

    async def touch(self, session_id: str, *, last_seen_at: float, idle_expires_at: float) -> bool:
        return await self._call(
            self.inner.touch(session_id, last_seen_at=last_seen_at, idle_expires_at=idle_expires_at)
        )

    async def update_data(self, session_id: str, data: dict[str, Any]) -> bool:
        if not isinstance(self.inner, SessionDataStore):
            raise NotSupported("This session store cannot record a renewed authentication.")
        return await self._call(self.inner.update_data(session_id, data))

    async def delete(self, session_id: str) -> SessionRecord | None:
        return await self._call(self.inner.delete(session_id))

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        return await self._call(self.inner.delete_user(user_id, keep=keep))

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        return await self._call(self.inner.list_user(user_id))

    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        return await self._call(self.inner.list_all(limit=limit, offset=offset))

    async def purge_expired(self, now: float) -> int:
        return await self._call(self.inner.purge_expired(now))

    async def rotate_refresh(
        self,
        session_id: str,
        *,
        presented_hash: bytes,
        successor_hash: bytes,
        now: float,
        grace: float,
    ) -> RotateOutcome:
        return await self._call(
            self.inner.rotate_refresh(
                session_id,
                presented_hash=presented_hash,
                successor_hash=successor_hash,
                now=now,
                grace=grace,
            )
        )

    # --- UserStore ------------------------------------------------------------------------

    async def create_user(self, user: UserRecord) -> None:
        await self._call(self.inner.create_user(user))

    async def get_user(self, user_id: str) -> UserRecord | None:
        return await self._call(self.inner.get_user(user_id))

    async def get_user_by_name(self, username_key: str) -> UserRecord | None:
        return await self._call(self.inner.get_user_by_name(username_key))

    async def get_user_by_email(self, email: str) -> UserRecord | None:
        return await self._call(self.inner.get_user_by_email(email))

    async def create_users(self, users: Sequence[UserRecord]) -> list[str]:
        """Insert many, with no overall deadline: an import is meant to take long.

        Each statement or script of it stays bounded by the driver's own time-out.
        """
        result: list[str] = await self.inner.create_users(users)
        return result

    async def update_user(self, user: UserRecord) -> None:
        await self._call(self.inner.update_user(user))

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[UserRecord]:
        return await self._call(self.inner.list_users(limit=limit, offset=offset))

    # --- KeyStore -------------------------------------------------------------------------

    async def list_keys(self) -> list[StoredKey]:
        return await self._call(self.inner.list_keys())

    async def save_key(self, key: StoredKey) -> None:
        await self._call(self.inner.save_key(key))

    async def get_secret(self, name: str) -> bytes | None:
        return await self._call(self.inner.get_secret(name))

    async def set_secret_if_absent(self, name: str, value: bytes) -> bytes:
        return await self._call(self.inner.set_secret_if_absent(name, value))

    async def close(self) -> None:
        """Closing is left to the owner of the wrapped stores (no deadline on shutdown)."""
        return None


_abandoned: set[asyncio.Future[Any]] = set()


def _abandon(task: asyncio.Future[Any]) -> None:
    """Cancel ``task`` and let it finish its clean-up in the background."""
    task.cancel()
    _abandoned.add(task)
    task.add_done_callback(_forget)


async def settle(limit: float) -> int:
    """Wait up to ``limit`` seconds for abandoned calls to finish their clean-up (before
    the stores close at shutdown); returns how many were still running at the end."""
    pending = set(_abandoned)
    if pending and limit > 0:
        await asyncio.wait(pending, timeout=limit)
    return sum(1 for task in pending if not task.done())


def _forget(task: asyncio.Future[Any]) -> None:
    _abandoned.discard(task)
    if not task.cancelled() and task.exception() is not None:
        logger.debug("abandoned store call ended with %s", type(task.exception()).__name__)


def with_deadline(stores: Stores, timeout: float) -> Stores:
    """``stores`` with every call bounded by ``timeout`` seconds.

    A backend that serves several roles gets one wrapper, so identity checks between the
    roles keep working. Closing the result closes nothing: close the original ``stores``.
    """
    wrapped: dict[int, DeadlineStore] = {}

    def wrap(store: object) -> DeadlineStore:
        if id(store) not in wrapped:
            wrapped[id(store)] = DeadlineStore(store, timeout)
        return wrapped[id(store)]

    return Stores(sessions=wrap(stores.sessions), users=wrap(stores.users), keys=wrap(stores.keys))
