"""What happens between "stop serving" and "close the stores" on a graceful shutdown.

The server stops accepting connections on SIGTERM and lets in-flight requests finish within
``SATCHEL_SHUTDOWN_TIMEOUT`` (uvicorn's graceful shutdown, see :mod:`satchel.server.runner`).
Then :func:`drain` settles what may still be writing, before :meth:`Auth.close` closes the
stores:

- every part of the :class:`~satchel.auth.Auth` that keeps writes pending (a batch of
  throttled last-seen updates, a mail queue) offers an async ``flush()``; each is awaited;
- store calls a request abandoned at its deadline finish their clean-up
  (:func:`satchel.stores.deadline.settle`).

Today the strategies write last-seen updates inline, before the response (a request that was
answered has written its touch), so finishing in-flight requests finishes them; ``flush()``
is the hook for any part that defers a write.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from satchel.stores.deadline import settle

if TYPE_CHECKING:
    from satchel.auth import Auth

logger = logging.getLogger("satchel.shutdown")


@runtime_checkable
class Flushable(Protocol):
    """A part with writes pending until :meth:`flush` (awaited before the stores close)."""

    async def flush(self) -> None:
        """Write everything pending now."""
        ...


def _parts(auth: Auth) -> list[object]:
    parts: list[object] = [auth.strategy, auth.users, auth.throttle, auth.bus, auth.keys]
    for name in ("mail", "mailer", "outbox"):  # a mail queue, where an Auth has one
        parts.append(getattr(auth, name, None))
    return parts


async def drain(auth: Auth, limit: float) -> None:
    """Flush every :class:`Flushable` part of ``auth`` and settle abandoned store calls,
    within ``limit`` seconds in all; what is left after that is logged, not awaited."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    seen: list[object] = []
    for part in _parts(auth):
        if part is None or not isinstance(part, Flushable) or any(part is s for s in seen):
            continue
        seen.append(part)
        try:
            async with asyncio.timeout(max(0.0, deadline - loop.time())):
                await part.flush()
        except TimeoutError:
            logger.warning("shutdown: %s did not flush in time", type(part).__name__)
        except Exception as exc:  # a failed flush must not keep the stores open
            logger.warning("shutdown: %s flush failed: %s", type(part).__name__, type(exc).__name__)
    left = await settle(max(0.0, deadline - loop.time()))
    if left:
        logger.warning("shutdown: %d store call(s) still cleaning up; closing anyway", left)
