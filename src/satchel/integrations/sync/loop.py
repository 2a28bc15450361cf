"""One private event loop per process, in a daemon thread, for synchronous callers.

Synchronous frameworks (Flask, Django under WSGI) call satchel's async core through this
loop: :meth:`LoopThread.run` submits a coroutine with ``asyncio.run_coroutine_threadsafe``
and waits for it, so any number of request threads (gunicorn ``gthread``) share one loop,
one set of store connections and one revocation subscription. Never an event loop per
request, never a nested one.

- **Lazy, fork-aware.** Nothing starts until the first call. gunicorn forks its workers, and
  a thread does not survive ``fork()``: a child forgets the parent's loop (``os.register_at_fork``)
  and starts its own on first use.
- **Liveness.** A heartbeat on the loop moves :attr:`LoopThread.trusted_until` forward every
  ``beat_interval``. Revocation events are applied on this loop, so a loop that stopped or
  hangs (a blocking call on it) may be missing some: callers trust in-memory caches only
  while ``monotonic() < trusted_until`` (``stale_after``, 1 s by default, the same order as
  the Redis bus's own ping bound).
- **Crash.** If the loop ever stops unexpectedly (an exception escaping it), every waiting
  call fails at once with :class:`StoreUnavailable` (503), ``on_death`` is called and the next
  :meth:`start` builds a new loop. A hung loop is never replaced (a thread cannot be killed):
  calls time out with 503 until it answers again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
import time
import weakref
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from satchel.errors import ConfigurationError, StoreUnavailable

logger = logging.getLogger("satchel.integrations.sync")

T = TypeVar("T")

DEFAULT_BEAT_INTERVAL = 0.1
DEFAULT_STALE_AFTER = 1.0
_STOP_TIMEOUT = 5.0

_RUNNERS: weakref.WeakSet[LoopThread] = weakref.WeakSet()
# Loops inherited from a parent process: never run again here, kept referenced so their
# pending tasks are not garbage-collected with "Task was destroyed" noise.
_ORPHANS: list[object] = []


class LoopThread:
    """A private asyncio loop in a daemon thread; see the module docstring.

    ``on_death`` runs (in the dying thread) when the loop stops without :meth:`stop`;
    ``on_fork`` runs in a forked child, which must drop everything bound to the old loop.
    """

    def __init__(
        self,
        name: str = "satchel-loop",
        *,
        beat_interval: float = DEFAULT_BEAT_INTERVAL,
        stale_after: float = DEFAULT_STALE_AFTER,
        on_death: Callable[[], None] | None = None,
        on_fork: Callable[[], None] | None = None,
    ) -> None:
        if not 0 < beat_interval < stale_after:
            raise ConfigurationError("beat_interval must be positive and below stale_after.")
        self.name = name
        self.beat_interval = float(beat_interval)
        self.stale_after = float(stale_after)
        #: Callers trust caches fed by this loop while ``time.monotonic()`` is below this.
        self.trusted_until = 0.0
        #: Loops started in this process (more than one: a crash was survived).
        self.starts = 0
        self._on_death = on_death
        self._on_fork = on_fork
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._inflight: set[concurrent.futures.Future[Any]] = set()
        _RUNNERS.add(self)

    def __repr__(self) -> str:
        return f"LoopThread({self.name!r}, running={self.running}, starts={self.starts})"

    @property
    def running(self) -> bool:
        """True while the loop thread exists and runs."""
        thread = self._thread
        return self._loop is not None and thread is not None and thread.is_alive()

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The running loop, if any (for ``call_soon_threadsafe`` and the like)."""
        return self._loop

    def in_loop_thread(self) -> bool:
        """True when called from the loop's own thread."""
        thread = self._thread
        return thread is not None and thread.ident == threading.get_ident()

    # --- life cycle -------------------------------------------------------------------------

    def start(self) -> asyncio.AbstractEventLoop:
        """The running loop, starting a new thread first when there is none (or it died)."""
        with self._lock:
            if self.running:
                assert self._loop is not None
                return self._loop
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            # Each loop has its own set: a dying loop fails its own callers, not the next's.
            inflight: set[concurrent.futures.Future[Any]] = set()
            thread = threading.Thread(
                target=self._main, args=(loop, ready, inflight), name=self.name, daemon=True
            )
            self._loop, self._thread, self._inflight = loop, thread, inflight
            self.trusted_until = time.monotonic() + self.stale_after
            thread.start()
            if not ready.wait(_STOP_TIMEOUT):
                raise StoreUnavailable("The authentication loop did not start.")
            self.starts += 1
            return loop

    def _main(
        self,
        loop: asyncio.AbstractEventLoop,
        ready: threading.Event,
        inflight: set[concurrent.futures.Future[Any]],
    ) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(ready.set)
        beat = loop.create_task(self._beat(), name="satchel-loop-heartbeat")
        try:
            loop.run_forever()
        except BaseException as exc:  # logged; callers are failed below and may restart
            logger.error("satchel event loop stopped: %s", type(exc).__name__, exc_info=exc)
        finally:
            beat.cancel()
            self._finish(loop, inflight)

    async def _beat(self) -> None:
        while True:
            self.trusted_until = time.monotonic() + self.stale_after
            await asyncio.sleep(self.beat_interval)

    def _finish(
        self, loop: asyncio.AbstractEventLoop, inflight: set[concurrent.futures.Future[Any]]
    ) -> None:
        """In the loop thread, after ``run_forever`` returned: fail callers, clean up."""
        died = self._loop is loop
        if died:
            self.trusted_until = 0.0
            self._loop = None
            logger.error("satchel event loop ended unexpectedly; the next call starts a new one")
            if self._on_death is not None:
                self._on_death()
        # Cancelled tasks fail their callers (CancelledError, which run() answers as 503)...
        with contextlib.suppress(Exception):
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in tasks:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
        # ...and so do calls this loop will never run.
        for future in list(inflight):
            if not future.done():
                with contextlib.suppress(concurrent.futures.InvalidStateError):
                    future.set_exception(StoreUnavailable("The authentication loop stopped."))
        inflight.clear()

    def stop(self, cleanup: Coroutine[Any, Any, Any] | None = None) -> None:
        """Run ``cleanup`` on the loop (bounded), then stop the loop and join its thread."""
        with self._lock:
            loop, thread = self._loop, self._thread
            if (
                loop is not None
                and cleanup is not None
                and self.running
                and not self.in_loop_thread()
            ):
                future = asyncio.run_coroutine_threadsafe(cleanup, loop)
                try:
                    future.result(_STOP_TIMEOUT)
                except Exception as exc:  # closing must go on; the reason is logged
                    logger.warning("satchel cleanup failed: %s", type(exc).__name__)
            elif cleanup is not None:
                cleanup.close()
            self._loop = None
            self.trusted_until = 0.0
            if loop is None or thread is None:
                return
            loop.call_soon_threadsafe(loop.stop)
        if thread is not threading.current_thread():
            thread.join(_STOP_TIMEOUT)
            if not thread.is_alive():
                loop.close()

    def forget(self) -> None:
        """After ``fork()``: the parent's thread is gone in this process; start afresh."""
        if self._loop is not None:
            _ORPHANS.append(self._loop)
        self._lock = threading.Lock()  # it may have been held by a thread that is gone
        self._loop, self._thread = None, None
        self.trusted_until = 0.0
        self.starts = 0
        self._inflight = set()
        if self._on_fork is not None:
            self._on_fork()

    # --- calls ------------------------------------------------------------------------------

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the loop (which must be running) from any other thread."""
        loop = self._loop
        if loop is None or self.in_loop_thread():
            coro.close()
            if loop is not None:
                raise ConfigurationError("A blocking satchel call was made on its own loop.")
            raise StoreUnavailable("The authentication loop is not running.")
        inflight = self._inflight
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        inflight.add(future)
        future.add_done_callback(inflight.discard)
        return future

    def run(self, coro: Coroutine[Any, Any, T], timeout: float) -> T:
        """Run ``coro`` on the loop and wait for its result; 503 past ``timeout`` seconds."""
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            if future.done():  # finished just now, or the coroutine's own TimeoutError
                return future.result()
            future.cancel()
            raise StoreUnavailable("The authentication service did not answer in time.") from None
        except concurrent.futures.CancelledError:
            raise StoreUnavailable("The authentication call was cancelled.") from None

    async def arun(self, coro: Coroutine[Any, Any, T], limit: float) -> T:
        """:meth:`run` for a caller on another event loop (Django under ASGI): awaits, never
        blocks that loop."""
        future = asyncio.wrap_future(self.submit(coro))
        timer = asyncio.timeout(limit)
        try:
            async with timer:
                return await future
        except TimeoutError:
            if timer.expired():
                raise StoreUnavailable(
                    "The authentication service did not answer in time."
                ) from None
            raise


def _after_fork_in_child() -> None:
    for runner in list(_RUNNERS):
        runner.forget()


os.register_at_fork(after_in_child=_after_fork_in_child)
