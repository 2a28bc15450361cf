"""How synchronous callers reach the async core: the figures behind docs/architecture.md
("Synchronous frameworks").

``python -m benchmarks.sync_driver [--quick]`` prints one table. Two designs are compared on
the same machine in the same run:

- **loop thread** (what satchel does): the steady state is answered in the request thread by
  ``Strategy.authenticate_cached``; everything else is a coroutine submitted to one private
  event loop per process (``asyncio.run_coroutine_threadsafe``) and waited for;
- **sync store drivers** (the alternative): the same strategies over blocking drivers
  (redis-py, stdlib sqlite3) called in the request thread. Its cache path would be the same
  pure function; its miss path is the in-loop cost minus the async store reads plus the same
  commands through the blocking driver, each measured here.

Every contender runs in many short batches (about 5 ms each), interleaved round-robin with
the others of its group; the figure is the best batch. On a shared 2-core machine a long
batch almost always contains someone else's work, a short one often does not, so the best
short batch is the closest to what the code itself costs. Redis must be reachable
(``SATCHEL_BENCH_REDIS_URL``, loopback only).
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

from benchmarks.common import Settings

PASSWORD = "correct horse battery"
THREADS = 8
BATCH_SECONDS = 0.005

Row = tuple[str, str]
Batch = Callable[[int], float]  # runs n operations, returns the seconds they took


def _fmt(seconds: float) -> str:
    return f"{seconds * 1e6:8.2f} µs"


def _in_thread(fn: Callable[[], object]) -> Batch:
    def batch(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            fn()
        return time.perf_counter() - started

    return batch


def _on_loop(sync: Any, make: Callable[[], Coroutine[Any, Any, Any]]) -> Batch:
    """A batch awaited on the loop itself (one hop per batch, not per operation)."""

    async def run(n: int) -> float:
        started = time.perf_counter()
        for _ in range(n):
            await make()
        return time.perf_counter() - started

    def batch(n: int) -> float:
        elapsed: float = sync.run(run(n), timeout=120)
        return elapsed

    return batch


def race(contenders: dict[str, Batch], rounds: int) -> dict[str, float]:
    """Best seconds per operation of each contender over ``rounds`` interleaved batches."""
    sizes: dict[str, int] = {}
    for name, batch in contenders.items():
        n = 1
        while True:
            elapsed = batch(n)
            if elapsed >= BATCH_SECONDS or n >= 1_000_000:
                break
            n = max(n + 1, int(n * min(10.0, BATCH_SECONDS / max(elapsed, 1e-7) * 1.2)))
        sizes[name] = n
    best = {name: float("inf") for name in contenders}
    for _ in range(rounds):
        for name, batch in contenders.items():
            best[name] = min(best[name], batch(sizes[name]) / sizes[name])
    return best


def _threads_throughput(fn: Callable[[], object], seconds: float, runs: int) -> float:
    """Best calls per second of ``fn`` from THREADS threads at once (a gthread worker)."""
    best = 0.0
    for _ in range(runs):
        counts = [0] * THREADS
        stop = time.perf_counter() + seconds

        def work(i: int, counts: list[int] = counts, stop: float = stop) -> None:
            while time.perf_counter() < stop:
                fn()
                counts[i] += 1

        threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        best = max(best, sum(counts) / seconds)
    return best


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


class Bench:
    """One run: its settings and how hard to push."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rounds = 8 if settings.quick else 60
        self.seconds = 0.3 if settings.quick else 1.0
        self.runs = 1 if settings.quick else 3

    def empty_hop(self) -> list[Row]:
        """What one trip to the loop and back costs by itself."""
        sync = _sync_auth(self.settings, "session", "memory://")
        try:
            sync.auth  # noqa: B018 - start it

            async def nothing() -> None:
                return None

            best = race({"hop": _in_thread(lambda: sync.run(nothing()))}, self.rounds)
            hops = _threads_throughput(lambda: sync.run(nothing()), self.seconds, self.runs)
            return [
                ("one hop to the loop and back (empty coroutine)", _fmt(best["hop"])),
                (f"{THREADS} threads hopping at once (hops/s)", f"{hops:10.0f}"),
            ]
        finally:
            sync.close()

    def cached(self, strategy: str) -> list[Row]:
        """The steady state: a repeated credential, cache trusted (memory store)."""
        sync = _sync_auth(self.settings, strategy, "memory://")
        try:
            token, headers = _login(sync)
            sync.resolve(headers)
            verifier = sync.auth.strategy
            best = race(
                {
                    "cached": _in_thread(lambda: verifier.authenticate_cached(token)),
                    "resolve": _in_thread(lambda: sync.resolve(headers)),
                    "loop": _on_loop(sync, lambda: verifier.authenticate(token)),
                    "hop": _in_thread(lambda: sync.run(verifier.authenticate(token))),
                },
                self.rounds,
            )
            threaded = _threads_throughput(lambda: sync.resolve(headers), self.seconds, self.runs)
            return [
                (f"{strategy}: authenticate_cached() (pure)", _fmt(best["cached"])),
                (f"{strategy}: SyncAuth.resolve() (in the thread)", _fmt(best["resolve"])),
                (f"{strategy}: await authenticate() on the loop (ASGI)", _fmt(best["loop"])),
                (f"{strategy}: hopping to the loop for it instead", _fmt(best["hop"])),
                (f"{strategy}: {THREADS} threads, resolve() (calls/s)", f"{threaded:10.0f}"),
            ]
        finally:
            sync.close()

    def redis_miss(self) -> list[Row]:
        """Session strategy on Redis, cache off: every call reads the session and the user."""
        import redis

        sync = _sync_auth(self.settings, "session", "redis", cache=False)
        try:
            token, headers = _login(sync)
            sid = token.split(".", 1)[0]
            user_id = sync.resolve(headers).identity.user_id
            prefix = sync.settings.key_prefix
            session_key, user_key = f"{prefix}:s:{sid}", f"{prefix}:user:{user_id}"
            client = redis.Redis.from_url(self.settings.redis_url, max_connections=THREADS * 2)
            assert client.exists(session_key) and client.exists(user_key)
            verifier, store, users = sync.auth.strategy, sync.auth.strategy.store, sync.auth.users

            async def async_reads() -> object:
                return await store.get(sid), await users.store.get_user(user_id)

            def sync_reads() -> object:
                return client.hgetall(session_key), client.get(user_key)

            best = race(
                {
                    "loop": _on_loop(sync, lambda: verifier.authenticate(token)),
                    "reads": _on_loop(sync, async_reads),
                    "resolve": _in_thread(lambda: sync.resolve(headers)),
                    "redis-py": _in_thread(sync_reads),
                },
                max(4, self.rounds // 3),
            )
            estimate = best["loop"] - best["reads"] + best["redis-py"]
            threaded = _threads_throughput(lambda: sync.resolve(headers), self.seconds, self.runs)
            blocking = _threads_throughput(sync_reads, self.seconds, self.runs)
            for key in client.scan_iter(f"{prefix}:*"):
                client.delete(key)
            client.close()
            return [
                ("redis miss: await authenticate() on the loop", _fmt(best["loop"])),
                ("redis miss: of it, the two async store reads", _fmt(best["reads"])),
                ("redis miss: SyncAuth.resolve() (hop + the above)", _fmt(best["resolve"])),
                ("redis miss: the same two commands with redis-py", _fmt(best["redis-py"])),
                ("redis miss: a sync driver (pure work + redis-py)", _fmt(estimate)),
                (f"redis miss: {THREADS} threads, resolve() (calls/s)", f"{threaded:10.0f}"),
                (f"redis miss: {THREADS} threads, redis-py reads (calls/s)", f"{blocking:10.0f}"),
            ]
        finally:
            sync.close()

    def sqlite_miss(self) -> list[Row]:
        """SQLite: the store calls sqlite3 on the loop already, so only the hop differs."""
        with tempfile.TemporaryDirectory() as tmp:
            store = f"sqlite:///{Path(tmp) / 'bench.db'}"
            sync = _sync_auth(self.settings, "session", store, cache=False)
            try:
                token, headers = _login(sync)
                verifier = sync.auth.strategy
                best = race(
                    {
                        "loop": _on_loop(sync, lambda: verifier.authenticate(token)),
                        "resolve": _in_thread(lambda: sync.resolve(headers)),
                    },
                    max(4, self.rounds // 3),
                )
                return [
                    (
                        "sqlite miss: await authenticate() on the loop (= a sync driver)",
                        _fmt(best["loop"]),
                    ),
                    ("sqlite miss: SyncAuth.resolve() (hop + the above)", _fmt(best["resolve"])),
                ]
            finally:
                sync.close()

    def flask(self) -> list[Row]:
        """In-process Flask requests (test client): plain Flask against satchel's views."""
        from flask import Flask

        from satchel.integrations.flask import Satchel, current_identity, login_required

        sync = _sync_auth(self.settings, "jwt", "memory://")
        app, plain = Flask("bench"), Flask("plain")
        Satchel(app, sync=sync)

        @app.get("/open")
        def open_view() -> dict[str, str]:
            return {"hello": "world"}

        @app.get("/hello")
        @login_required
        def hello() -> dict[str, str]:
            return {"hello": current_identity.username}

        @plain.get("/open")
        def plain_view() -> dict[str, str]:
            return {"hello": "world"}

        try:
            _, headers = _login(sync)
            bearer = {"Authorization": headers[0][1].decode()}
            client, bare = app.test_client(), plain.test_client()
            assert client.get("/hello", headers=bearer).status_code == 200
            best = race(
                {
                    "plain Flask, open view": _in_thread(lambda: bare.get("/open")),
                    # The test client's own cost of sending the header, for a fair baseline.
                    "plain Flask, open view, same header": _in_thread(
                        lambda: bare.get("/open", headers=bearer)
                    ),
                    "with satchel, open view": _in_thread(lambda: client.get("/open")),
                    "with satchel, protected view": _in_thread(
                        lambda: client.get("/hello", headers=bearer)
                    ),
                },
                max(4, self.rounds // 2),
            )
            base = best["plain Flask, open view"]
            return [
                (f"flask test client: {name}", f"{_fmt(cost)}  ({base / cost:.2f}× plain)")
                for name, cost in best.items()
            ]
        finally:
            sync.close()


def main(argv: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        bench = Bench(Settings.make(quick="--quick" in argv, workdir=Path(tmp)))
        rows = bench.empty_hop()
        for strategy in ("session", "jwt", "hybrid"):
            rows += bench.cached(strategy)
        rows += bench.redis_miss() + bench.sqlite_miss() + bench.flask()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
