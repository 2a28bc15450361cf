"""What operations features cost a request: metrics on against off, and the request id.

With metrics on, the only work on the request path is the store-call observer (a cached
credential makes no store call at all; one the cache does not answer makes two: session and
user). So the figure the target reads is measured directly: what the observer adds to one
store call (two clock reads and one observation, less the loop's own floor), times the two
calls of an uncached request.
Whole in-process requests (raw ASGI, no client) with metrics off and on are shown beside it,
cached and uncached, for scale; their difference is within the noise of a ~50 µs request.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from benchmarks.common import (
    MicroRow,
    Results,
    Settings,
    run_async,
    time_group,
    time_group_async,
)

Progress = Callable[[str], None]
GROUP = "metrics cost"
PASSWORD = "correct horse battery staple 7"
#: Store calls of a request whose credential the cache does not answer (session, user).
UNCACHED_STORE_CALLS = 2
OBSERVER = "observer: 2 clock reads + 1 observation"
FLOOR = "empty call (loop floor)"


def _row(name: str, best_ns: float, median_ns: float, number: int, repeats: int) -> MicroRow:
    return MicroRow(
        group=GROUP,
        name=name,
        best_ns=best_ns,
        median_ns=median_ns,
        number=number,
        repeats=repeats,
        kind="satchel",
    )


@contextlib.asynccontextmanager
async def _running(**overrides: Any) -> AsyncIterator[tuple[Any, bytes]]:
    """The reference server app, its lifespan running, and a bearer token for it."""
    from satchel.accounts.passwords import PasswordHasher
    from satchel.config.build import build_auth
    from satchel.config.settings import Settings as SatchelSettings
    from satchel.server import create_app
    from satchel.strategies.base import LoginContext

    settings = SatchelSettings(store="memory://", transports=["bearer"], **overrides)
    hasher = PasswordHasher.insecure_fast_for_tests()
    auth = await build_auth(settings, hasher=hasher)
    await auth.users.create_user("metrics-user", PASSWORD, ["user"])
    app = create_app(settings, auth=auth)
    try:
        async with app.router.lifespan_context(app):
            result = await auth.login("metrics-user", PASSWORD, LoginContext())
            yield app, result.credentials.access_token.encode()
    finally:
        hasher.close()


def _request(app: Any, token: bytes) -> Callable[[], Awaitable[object]]:
    """One ``GET /auth/me`` through the whole ASGI stack, answered in memory."""
    headers = [(b"host", b"bench"), (b"authorization", b"Bearer " + token)]

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] != 200:
            raise RuntimeError(f"benchmark request answered {message['status']}")

    async def call() -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/auth/me",
            "raw_path": b"/auth/me",
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 5000),
            "server": ("127.0.0.1", 8000),
        }
        await app(scope, receive, send)

    return call


async def _measure(settings: Settings, results: Results, progress: Progress) -> None:
    from satchel.ops.metrics import StoreCalls
    from satchel.stores.memory import MemoryStore

    progress("metrics: the store-call observer")
    # What "on" adds to a store call, alone: two clock reads and one observation. (Timing
    # whole store calls with and without it would bury it in a ~20 µs task-and-wait round.)
    observe = StoreCalls().observer("memory")
    operation = MemoryStore().get("missing-session")
    operation.close()  # only its name is read
    perf = time.perf_counter
    calls = time_group(
        {
            OBSERVER: lambda: observe(operation, perf() - perf(), "ok"),
            FLOOR: lambda: None,
        },
        settings,
    )
    token = "m" * 40
    progress("metrics: whole requests")
    async with (
        _running() as (off, off_token),
        _running(metrics_token=token) as (on, on_token),
        _running(cache=False) as (off_raw, off_raw_token),
        _running(cache=False, metrics_token=token) as (on_raw, on_raw_token),
    ):
        requests = await time_group_async(
            {
                "request (cached), metrics off": _request(off, off_token),
                "request (cached), metrics on": _request(on, on_token),
                "request (uncached), metrics off": _request(off_raw, off_raw_token),
                "request (uncached), metrics on": _request(on_raw, on_raw_token),
            },
            settings,
        )
    progress("request id middleware")
    from satchel.ops.logging import RequestIdMiddleware

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def nothing(message: Any) -> None:
        return None

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    wrapped = RequestIdMiddleware(bare)
    scope = {"type": "http", "headers": [(b"host", b"bench"), (b"accept", b"*/*")]}
    ids = await time_group_async(
        {
            "ASGI app alone": lambda: bare(scope, receive, nothing),
            "ASGI app + RequestIdMiddleware": lambda: wrapped(scope, receive, nothing),
        },
        settings,
    )
    for name, timing in {**calls, **requests, **ids}.items():
        results.micro.append(
            _row(name, timing.best_ns, timing.median_ns, timing.number, timing.repeats)
        )


def metrics_micro(settings: Settings, results: Results, progress: Progress) -> None:
    """The ``metrics cost`` group of the micro benchmarks."""
    run_async(_measure(settings, results, progress))


def metrics_cost_ns(results: Results) -> float | None:
    """Metrics' cost on the request path, ns: the observer's cost per store call times the
    store calls of an uncached request (a cached one makes none)."""
    on = results.micro_ns(GROUP, OBSERVER)
    floor = results.micro_ns(GROUP, FLOOR)
    if on is None or floor is None:
        return None
    return max(0.0, on - floor) * UNCACHED_STORE_CALLS
