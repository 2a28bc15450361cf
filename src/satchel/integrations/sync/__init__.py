"""satchel for synchronous frameworks: one private event loop per process drives the async
core; a repeated credential is answered in the calling thread from memory.

- :class:`SyncAuth` — the process's :class:`~satchel.Auth` for request threads:
  :meth:`~SyncAuth.resolve` (a request's identity), :meth:`~SyncAuth.call` (any coroutine of
  the core), :meth:`~SyncAuth.handle` (the JSON API routes);
- :class:`LoopThread` — the loop itself (lazy, fork-aware, heartbeat, crash recovery);
- :class:`Resolution` — what authenticating a request found.

See ``docs/architecture.md`` ("Synchronous frameworks") for the design and its figures.
"""

from satchel.integrations.sync.driver import ANONYMOUS, Resolution, SyncAuth
from satchel.integrations.sync.loop import LoopThread

__all__ = ["ANONYMOUS", "LoopThread", "Resolution", "SyncAuth"]
