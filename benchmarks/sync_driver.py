"""How synchronous callers reach the async core: the figures behind docs/architecture.md
("Synchronous frameworks").

``python -m benchmarks.sync_driver [--quick]`` prints one table. Two designs are compared on
the same machine in the same run:

- **loop thread** (what satchel does): the steady state is answered in the request thread by
  ``Strategy.authenticate_cached``; everything else is a coroutine submitted to one private
  event loop per process (``asyncio.run_coroutine_threadsafe``) and waited for;
- **sync store drivers** (the alternative): the same strategies over blocking drivers
  (redis-py, stdlib sqlite3) called in the request thread. Its cache path would be the same
  pure function; its miss path is estimated as the in-loop cost minus the async I/O plus the
  same commands through the blocking driver, each measured here.

Redis must be reachable (``SATCHEL_BENCH_REDIS_URL``, loopback only). Figures are the best of
N interleaved repeats; a 2-core shared machine moves them by 10-20 %.
"""

from __future__ import annotations

import secrets
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from benchmarks.common import Settings, time_group

PASSWORD = "correct horse battery"
THREADS = 8


def _fmt(ns: float) -> str:
    return f"{ns / 1000:8.2f} µs"


def _sync_auth(settings: Settings, strategy: str, store: str, **extra: Any) -> Any:
    from satchel.accounts.passwords import PasswordHasher
    from satchel.config.settings import Settings as SatchelSettings
    from satchel.integrations.sync import SyncAuth

    prefix = f"{settings.redis_prefix}_{secrets.token_hex(3)}"
    fields: dict[str, Any] = {"strategy": strategy, "key_prefix": prefix, **extra}
    fields["store"] = settings.redis_url if store == "redis" else store
    return SyncAuth(SatchelSettings(**fields), hasher=PasswordHasher.insecure_fast_for_tests())


def _login(sync: Any) -> tuple[str, list[tuple[bytes, bytes]]]:
    name = f"bench{secrets.token_hex(3)}"
    sync.call(lambda a: a.users.create_user(name, PASSWORD))
    token: str = sync.call(lambda a: a.login(name, PASSWORD)).credentials.access_token
    return token, [(b"authorization", f"Bearer {token}".encode())]


def _in_loop(sync: Any, make: Callable[[], Coroutine[Any, Any, Any]], n: int) -> float:
    """Per-call seconds of awaiting ``make()`` n times on the loop itself (no hop)."""

    async def run() -> float:
        started = time.perf_counter()
        for _ in range(n):
            await make()
        return (time.perf_counter() - started) / n

    best = min(sync.run(run(), timeout=120) for _ in range(5))
    return float(best)


def _threads_throughput(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second of ``fn`` from THREADS threads at once (a gthread worker)."""
    counts = [0] * THREADS
    stop = time.perf_counter() + seconds

    def work(i: int) -> None:
        while time.perf_counter() < stop:
            fn()
            counts[i] += 1

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / seconds


def cached_paths(settings: Settings) -> list[tuple[str, str]]:
    """The steady state: a repeated credential, cache trusted."""
    rows: list[tuple[str, str]] = []
    for strategy in ("session", "jwt", "hybrid"):
        rows.extend(_cached_path(settings, strategy))
    return rows


def _cached_path(settings: Settings, strategy: str) -> list[tuple[str, str]]:
    sync = _sync_auth(settings, strategy, "memory://")
    try:
        token, headers = _login(sync)
        sync.resolve(headers)
        verifier = sync.auth.strategy
        timings = time_group(
            {
                "cached": lambda: verifier.authenticate_cached(token),
                "resolve": lambda: sync.resolve(headers),
                "hop": lambda: sync.run(verifier.authenticate(token)),
            },
            settings,
        )
        in_loop = _in_loop(sync, lambda: verifier.authenticate(token), 20_000)
        seconds = 0.5 if settings.quick else 2.0
        threaded = _threads_throughput(lambda: sync.resolve(headers), seconds)
        return [
            (f"{strategy}: authenticate_cached() (pure)", _fmt(timings["cached"].best_ns)),
            (f"{strategy}: SyncAuth.resolve() (thread, no hop)", _fmt(timings["resolve"].best_ns)),
            (f"{strategy}: await authenticate() on the loop", _fmt(in_loop * 1e9)),
            (f"{strategy}: same, hopping to the loop per request", _fmt(timings["hop"].best_ns)),
            (f"{strategy}: {THREADS} threads, resolve() (calls/s)", f"{threaded:10.0f}"),
        ]
    finally:
        sync.close()


def miss_paths(settings: Settings) -> list[tuple[str, str]]:
    """A credential the cache cannot answer: session strategy, cache off, every call verifies."""
    import redis

    rows: list[tuple[str, str]] = []
    # Redis: two round trips per verification (the session hash, then the user).
    sync = _sync_auth(settings, "session", "redis", cache=False)
    try:
        token, headers = _login(sync)
        sid = token.split(".", 1)[0]
        user_id = sync.resolve(headers).identity.user_id
        client = redis.Redis.from_url(settings.redis_url)
        session_key = f"{sync.settings.key_prefix}:s:{sid}"
        user_key = f"{sync.settings.key_prefix}:user:{user_id}"
        assert client.exists(session_key) and client.exists(user_key), (session_key, user_key)

        def sync_reads() -> object:
            return client.hgetall(session_key), client.get(user_key)

        timings = time_group(
            {"resolve (hop)": lambda: sync.resolve(headers), "redis-py": sync_reads}, settings
        )
        strategy_obj = sync.auth.strategy
        in_loop = _in_loop(sync, lambda: strategy_obj.authenticate(token), 2_000)
        aio = sync.auth.strategy.store

        async def async_reads() -> object:
            return await aio.get(sid), await sync.auth.users.store.get_user(user_id)

        reads_in_loop = _in_loop(sync, async_reads, 2_000)
        estimate = in_loop - reads_in_loop + timings["redis-py"].best_ns / 1e9
        rows.append(("redis miss: await authenticate() on the loop", _fmt(in_loop * 1e9)))
        rows.append(("redis miss: of which the two async store reads", _fmt(reads_in_loop * 1e9)))
        rows.append(
            (
                "redis miss: SyncAuth.resolve() (hop + the above)",
                _fmt(timings["resolve (hop)"].best_ns),
            )
        )
        rows.append(
            ("redis miss: redis-py, the same two commands", _fmt(timings["redis-py"].best_ns))
        )
        rows.append(
            ("redis miss: sync-driver estimate (pure work + redis-py)", _fmt(estimate * 1e9))
        )
        seconds = 0.5 if settings.quick else 2.0
        pool_client = redis.Redis.from_url(settings.redis_url, max_connections=THREADS * 2)

        def pooled() -> object:
            return pool_client.hgetall(session_key), pool_client.get(user_key)

        rows.append(
            (
                f"redis miss: {THREADS} threads, resolve() (calls/s)",
                f"{_threads_throughput(lambda: sync.resolve(headers), seconds):10.0f}",
            )
        )
        rows.append(
            (
                f"redis miss: {THREADS} threads, redis-py pool (calls/s)",
                f"{_threads_throughput(pooled, seconds):10.0f}",
            )
        )
        client.close()
        pool_client.close()
        client = redis.Redis.from_url(settings.redis_url)
        for key in client.scan_iter(f"{sync.settings.key_prefix}:*"):
            client.delete(key)
        client.close()
    finally:
        sync.close()
    # SQLite: the store already calls sqlite3 synchronously on the loop; only the hop differs.
    with tempfile.TemporaryDirectory() as tmp:
        sync = _sync_auth(settings, "session", f"sqlite:///{Path(tmp) / 'bench.db'}", cache=False)
        try:
            token, headers = _login(sync)
            strategy_obj = sync.auth.strategy
            timings = time_group({"resolve": lambda: sync.resolve(headers)}, settings)
            in_loop = _in_loop(sync, lambda: strategy_obj.authenticate(token), 2_000)
            rows.append(
                (
                    "sqlite miss: await authenticate() on the loop (= a sync driver)",
                    _fmt(in_loop * 1e9),
                )
            )
            rows.append(
                (
                    "sqlite miss: SyncAuth.resolve() (hop + the above)",
                    _fmt(timings["resolve"].best_ns),
                )
            )
        finally:
            sync.close()
    return rows


def empty_hop(settings: Settings) -> list[tuple[str, str]]:
    """What one trip to the loop and back costs by itself."""
    sync = _sync_auth(settings, "session", "memory://")
    try:
        sync.auth  # noqa: B018 - start it

        async def nothing() -> None:
            return None

        timings = time_group({"hop": lambda: sync.run(nothing())}, settings)
        seconds = 0.5 if settings.quick else 2.0
        return [
            ("one hop to the loop and back (empty coroutine)", _fmt(timings["hop"].best_ns)),
            (
                f"{THREADS} threads hopping at once (hops/s)",
                f"{_threads_throughput(lambda: sync.run(nothing()), seconds):10.0f}",
            ),
        ]
    finally:
        sync.close()


def flask_requests(settings: Settings) -> list[tuple[str, str]]:
    """In-process Flask requests (test client): the framework's floor against a protected view."""
    from flask import Flask

    from satchel.integrations.flask import Satchel, current_identity, login_required

    sync = _sync_auth(settings, "jwt", "memory://")
    app = Flask("bench")
    Satchel(app, sync=sync)

    @app.get("/open")
    def open_view() -> dict[str, str]:
        return {"hello": "world"}

    @app.get("/hello")
    @login_required
    def hello() -> dict[str, str]:
        return {"hello": current_identity.username}

    plain = Flask("plain")

    @plain.get("/open")
    def plain_view() -> dict[str, str]:
        return {"hello": "world"}

    try:
        _, headers = _login(sync)
        bearer = {"Authorization": headers[0][1].decode()}
        client, bare = app.test_client(), plain.test_client()
        assert client.get("/hello", headers=bearer).status_code == 200
        timings = time_group(
            {
                "plain Flask": lambda: bare.get("/open"),
                "with satchel, open view": lambda: client.get("/open"),
                "with satchel, protected": lambda: client.get("/hello", headers=bearer),
            },
            settings,
        )
        base = timings["plain Flask"].best_ns
        return [
            (f"flask test client: {name}", f"{_fmt(t.best_ns)}  ({base / t.best_ns:.2f}× plain)")
            for name, t in timings.items()
        ]
    finally:
        sync.close()


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings.make(quick=quick, workdir=Path(tmp))
        rows = [
            *empty_hop(settings),
            *cached_paths(settings),
            *miss_paths(settings),
            *flask_requests(settings),
        ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
