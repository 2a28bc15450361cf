"""A bounded queue of background jobs, with optional retries: work kept off the request path.

A request hands a job over with :meth:`JobQueue.submit`, which never waits and never
raises: when the queue is full or closed the job is dropped, logged and counted, and the
request answers as usual. Workers run jobs one at a time each; a job that raises is retried
after a growing delay (``retry_delay`` doubling, at most ``max_delay``) until ``attempts``
are used up, unless it raises :class:`PermanentFailure`. Every outcome is counted in
:attr:`JobQueue.stats`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

logger = logging.getLogger("satchel.jobs")

Job = Callable[[], Awaitable[None]]


class PermanentFailure(Exception):
    """Raised by a job that must not be retried (e.g. the recipient was refused)."""


@dataclass(slots=True)
class JobStats:
    """What a queue has done since it started."""

    submitted: int = 0
    done: int = 0
    retried: int = 0
    failed: int = 0
    dropped: int = 0


@dataclass(frozen=True, slots=True)
class _Item:
    job: Job
    label: str


class JobQueue:
    """``workers`` tasks draining a queue of at most ``max_size`` jobs."""

    def __init__(
        self,
        name: str,
        *,
        max_size: int = 1000,
        workers: int = 1,
        attempts: int = 1,
        retry_delay: float = 1.0,
        max_delay: float = 60.0,
    ) -> None:
        if max_size < 1 or workers < 1 or attempts < 1 or retry_delay < 0 or max_delay < 0:
            raise ValueError("max_size, workers and attempts must be positive, delays >= 0")
        self.name = name
        self.attempts = attempts
        self.retry_delay = retry_delay
        self.max_delay = max_delay
        self.stats = JobStats()
        self._queue: asyncio.Queue[_Item] = asyncio.Queue(max_size)
        self._workers = workers
        self._tasks: list[asyncio.Task[None]] = []
        self._closed = False

    def __repr__(self) -> str:
        return f"JobQueue({self.name!r}, pending={self._queue.qsize()})"

    def start(self) -> None:
        """Start the workers (idempotent); call from the running event loop."""
        if self._tasks or self._closed:
            return
        for n in range(self._workers):
            self._tasks.append(
                asyncio.get_running_loop().create_task(self._work(), name=f"{self.name}-{n}")
            )

    def submit(self, job: Job, label: str) -> bool:
        """Queue ``job`` (``label`` names it in logs, never a secret); False if dropped."""
        if self._closed:
            self.stats.dropped += 1
            logger.error("%s: closed, dropped %s", self.name, label)
            return False
        if not self._tasks:
            self.start()
        try:
            self._queue.put_nowait(_Item(job, label))
        except asyncio.QueueFull:
            self.stats.dropped += 1
            logger.error("%s: queue full, dropped %s", self.name, label)
            return False
        self.stats.submitted += 1
        return True

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1)."""
        return float(min(self.max_delay, self.retry_delay * 2 ** (attempt - 1)))

    async def _run(self, item: _Item) -> None:
        for attempt in range(1, self.attempts + 1):
            try:
                await item.job()
            except asyncio.CancelledError:
                raise
            except PermanentFailure as exc:
                self.stats.failed += 1
                logger.error("%s: %s failed, not retried: %s", self.name, item.label, exc)
                return
            except Exception as exc:
                if attempt < self.attempts:
                    self.stats.retried += 1
                    wait = self.delay(attempt)
                    logger.warning(
                        "%s: %s failed (attempt %d of %d, %s); retrying in %.1f s",
                        self.name,
                        item.label,
                        attempt,
                        self.attempts,
                        describe(exc),
                        wait,
                    )
                    await asyncio.sleep(wait)
                    continue
                self.stats.failed += 1
                logger.error(
                    "%s: %s failed after %d attempt(s), given up: %s",
                    self.name,
                    item.label,
                    attempt,
                    describe(exc),
                )
                return
            self.stats.done += 1
            return

    async def _work(self) -> None:
        while True:
            item = await self._queue.get()
            try:
                await self._run(item)
            except asyncio.CancelledError:
                self.stats.dropped += 1
                logger.error("%s: shut down before %s was done", self.name, item.label)
                raise
            finally:
                self._queue.task_done()

    async def join(self) -> None:
        """Wait until every queued job has finished (tests, orderly shutdown)."""
        await self._queue.join()

    async def close(self, grace: float = 5.0) -> None:
        """Refuse new jobs, give queued ones ``grace`` seconds, then stop the workers."""
        self._closed = True
        if self._tasks:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), grace)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        left = self._queue.qsize()
        if left:
            self.stats.dropped += left
            logger.error("%s: shut down with %d job(s) not done", self.name, left)


def describe(exc: BaseException) -> str:
    """An exception as logs show it: its type and, for SMTP replies, the reply code only
    (reply texts and messages may quote addresses or credentials)."""
    code = getattr(exc, "code", None)
    name = type(exc).__name__
    return f"{name} {code}" if isinstance(code, int) else name
