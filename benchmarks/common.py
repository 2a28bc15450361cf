"""Shared pieces of the benchmark harness: settings, timers and the result container."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import secrets
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/test"


class BenchError(RuntimeError):
    """A benchmark could not run as configured (message is shown in the report)."""


def require_loopback(url: str) -> str:
    """Refuse any service URL that is not on this machine: benchmarks load loopback only."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return url
    try:
        if ipaddress.ip_address(host).is_loopback:
            return url
    except ValueError:
        pass
    raise BenchError(f"benchmarks only talk to loopback services, not {host!r}")


@dataclass(frozen=True, slots=True)
class Settings:
    """How much work each part of a run does (``--quick`` shrinks everything)."""

    quick: bool
    workdir: Path
    redis_url: str
    database_url: str
    run_id: str
    micro_min_time: float  # seconds one timed repeat should last at least
    micro_repeats: int  # best of this many repeats
    micro_max_seconds: float  # hard bound on one micro benchmark
    wrk_seconds: int
    wrk_connections: int
    wrk_threads: int
    wrk_passes: int
    scale_sessions: int
    scale_lookups: int
    import_users: int  # lines of the `satchel users import` benchmark
    soak_seconds: float = 0.0  # the memory soak (0: not measured)

    @classmethod
    def make(cls, *, quick: bool, workdir: Path, soak_seconds: float | None = None) -> Settings:
        redis_url = os.environ.get(
            "SATCHEL_BENCH_REDIS_URL", os.environ.get("SATCHEL_TEST_REDIS_URL", DEFAULT_REDIS_URL)
        )
        database_url = os.environ.get(
            "SATCHEL_BENCH_DATABASE_URL",
            os.environ.get("SATCHEL_TEST_DATABASE_URL", DEFAULT_DATABASE_URL),
        )
        return cls(
            quick=quick,
            workdir=workdir,
            redis_url=require_loopback(redis_url),
            database_url=require_loopback(database_url),
            run_id=secrets.token_hex(4),
            micro_min_time=0.02 if quick else 0.2,
            micro_repeats=3 if quick else 7,
            micro_max_seconds=2.0 if quick else 20.0,
            wrk_seconds=1 if quick else 5,
            wrk_connections=32,
            wrk_threads=1,
            wrk_passes=1 if quick else 2,
            scale_sessions=2_000 if quick else 1_000_000,
            scale_lookups=500 if quick else 20_000,
            import_users=500 if quick else 100_000,
            soak_seconds=(0.0 if quick else 120.0) if soak_seconds is None else soak_seconds,
        )

    @property
    def redis_prefix(self) -> str:
        """Key prefix owned by this run (removed afterwards)."""
        return f"satchel_bench_{self.run_id}"


# --- timing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Timing:
    """Per-operation cost: the best repeat (what the code costs) and the median."""

    best_ns: float
    median_ns: float
    number: int
    repeats: int

    @property
    def best_us(self) -> float:
        return self.best_ns / 1000.0


def _calibrate(run_once: Callable[[int], float], min_time: float, max_seconds: float) -> int:
    """Smallest loop count whose run lasts ``min_time``, as timeit's autorange does."""
    number = 1
    started = time.perf_counter()
    while True:
        elapsed = run_once(number)
        if elapsed >= min_time or number >= 10_000_000:
            return number
        if time.perf_counter() - started > max_seconds / 4:
            return number
        # Aim straight for the target instead of only multiplying by ten.
        factor = min_time / elapsed if elapsed > 0 else 10.0
        number = max(number + 1, min(number * 10, int(number * factor * 1.2) + 1))


def summarise(times: list[float], number: int) -> Timing:
    """Best and median per operation of repeats of ``number`` operations each."""
    per_op = [t / number * 1e9 for t in times]
    return Timing(min(per_op), statistics.median(per_op), number, len(per_op))


def time_sync(fn: Callable[[], object], settings: Settings, *, number: int | None = None) -> Timing:
    """Best of ``settings.micro_repeats`` repeats of calling ``fn`` in a tight loop."""

    def run_once(n: int) -> float:
        perf = time.perf_counter
        t0 = perf()
        for _ in range(n):
            fn()
        return perf() - t0

    if number is None:
        number = _calibrate(run_once, settings.micro_min_time, settings.micro_max_seconds)
    times: list[float] = []
    deadline = time.perf_counter() + settings.micro_max_seconds
    for _ in range(settings.micro_repeats):
        times.append(run_once(number))
        if time.perf_counter() > deadline:
            break
    return summarise(times, number)


def time_group(fns: dict[str, Callable[[], object]], settings: Settings) -> dict[str, Timing]:
    """:func:`time_sync` for several contenders, repeats interleaved round-robin.

    Drifting machine load (other processes on a shared box) then hits every contender alike,
    which keeps the ratios within a group honest.
    """

    def runner(fn: Callable[[], object]) -> Callable[[int], float]:
        def run_once(n: int) -> float:
            perf = time.perf_counter
            t0 = perf()
            for _ in range(n):
                fn()
            return perf() - t0

        return run_once

    runners = {name: runner(fn) for name, fn in fns.items()}
    numbers = {
        name: _calibrate(run, settings.micro_min_time, settings.micro_max_seconds)
        for name, run in runners.items()
    }
    times: dict[str, list[float]] = {name: [] for name in fns}
    deadline = time.perf_counter() + settings.micro_max_seconds * max(1, len(fns))
    for _ in range(settings.micro_repeats):
        for name, run in runners.items():
            times[name].append(run(numbers[name]))
        if time.perf_counter() > deadline:
            break
    return {name: summarise(times[name], numbers[name]) for name in fns}


async def time_async(
    fn: Callable[[], Awaitable[object]], settings: Settings, *, number: int | None = None
) -> Timing:
    """:func:`time_sync` for coroutines, awaited one after another on the running loop."""

    async def run_once(n: int) -> float:
        perf = time.perf_counter
        t0 = perf()
        for _ in range(n):
            await fn()
        return perf() - t0

    if number is None:
        number = 1
        started = time.perf_counter()
        while True:
            elapsed = await run_once(number)
            if elapsed >= settings.micro_min_time or number >= 1_000_000:
                break
            if time.perf_counter() - started > settings.micro_max_seconds / 4:
                break
            factor = settings.micro_min_time / elapsed if elapsed > 0 else 10.0
            number = max(number + 1, min(number * 10, int(number * factor * 1.2) + 1))
    times: list[float] = []
    deadline = time.perf_counter() + settings.micro_max_seconds
    for _ in range(settings.micro_repeats):
        times.append(await run_once(number))
        if time.perf_counter() > deadline:
            break
    return summarise(times, number)


async def time_group_async(
    fns: dict[str, Callable[[], Awaitable[object]]],
    settings: Settings,
    *,
    after: Mapping[str, Callable[[], Awaitable[object]]] | None = None,
) -> dict[str, Timing]:
    """:func:`time_group` for coroutines.

    ``after[name]``, when given, runs after every timed loop of that contender, outside the
    timing (e.g. to undo what the loop created so the next loop starts from the same state).
    """
    hooks = after or {}

    def runner(
        fn: Callable[[], Awaitable[object]], hook: Callable[[], Awaitable[object]] | None
    ) -> Callable[[int], Awaitable[float]]:
        async def run_once(n: int) -> float:
            perf = time.perf_counter
            t0 = perf()
            for _ in range(n):
                await fn()
            elapsed = perf() - t0
            if hook is not None:
                await hook()
            return elapsed

        return run_once

    runners = {name: runner(fn, hooks.get(name)) for name, fn in fns.items()}
    numbers: dict[str, int] = {}
    for name, run in runners.items():
        number = 1
        started = time.perf_counter()
        while True:
            elapsed = await run(number)
            if elapsed >= settings.micro_min_time or number >= 1_000_000:
                break
            if time.perf_counter() - started > settings.micro_max_seconds / 4:
                break
            factor = settings.micro_min_time / elapsed if elapsed > 0 else 10.0
            number = max(number + 1, min(number * 10, int(number * factor * 1.2) + 1))
        numbers[name] = number
    times: dict[str, list[float]] = {name: [] for name in fns}
    deadline = time.perf_counter() + settings.micro_max_seconds * max(1, len(fns))
    for _ in range(settings.micro_repeats):
        for name, run in runners.items():
            times[name].append(await run(numbers[name]))
        if time.perf_counter() > deadline:
            break
    return {name: summarise(times[name], numbers[name]) for name in fns}


async def time_each_async(
    fns: Iterator[Callable[[], Awaitable[object]]], number: int, repeats: int
) -> Timing:
    """Time ``number`` distinct operations per repeat (first-seen credentials, one use each)."""
    times: list[float] = []
    for _ in range(repeats):
        batch = [next(fns) for _ in range(number)]
        perf = time.perf_counter
        t0 = perf()
        for op in batch:
            await op()
        times.append(perf() - t0)
    return summarise(times, number)


def percentiles(samples_ns: list[float]) -> dict[str, float]:
    """p50/p99/max in microseconds."""
    if not samples_ns:
        return {"p50_us": float("nan"), "p99_us": float("nan"), "max_us": float("nan")}
    ordered = sorted(samples_ns)
    last = len(ordered) - 1

    def pick(q: float) -> float:
        return ordered[min(last, round(q * last))] / 1000.0

    return {"p50_us": pick(0.50), "p99_us": pick(0.99), "max_us": ordered[-1] / 1000.0}


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (what uvicorn runs on), else the default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run_async(coro: Any) -> Any:
    """Run ``coro`` to completion on a fresh :func:`new_loop`."""
    with asyncio.Runner(loop_factory=new_loop) as runner:
        return runner.run(coro)


# --- results ----------------------------------------------------------------------------------


@dataclass(slots=True)
class MicroRow:
    """One micro measurement."""

    group: str  # e.g. "verify HS256"
    name: str  # e.g. "PyJWT"
    best_ns: float
    median_ns: float
    number: int
    repeats: int
    kind: str = "peer"  # peer | floor | satchel
    note: str = ""


@dataclass(slots=True)
class E2ERow:
    """One end-to-end app under wrk: every pass, and the best pass."""

    app: str
    kind: str  # baseline | peer | satchel
    framework: str
    passes: list[dict[str, float]] = field(default_factory=list)
    credential_bytes: int = 0
    error: str = ""

    @property
    def best(self) -> dict[str, float] | None:
        return max(self.passes, key=lambda p: p["rps"]) if self.passes else None


@dataclass(slots=True)
class Results:
    """Everything one run measured; serialised as docs/benchmarks.json."""

    quick: bool
    started_at: float
    environment: dict[str, Any] = field(default_factory=dict)
    micro: list[MicroRow] = field(default_factory=list)
    e2e: list[E2ERow] = field(default_factory=list)
    table: dict[str, dict[str, Any]] = field(default_factory=dict)
    scale: dict[str, Any] = field(default_factory=dict)
    revocation: dict[str, Any] = field(default_factory=dict)
    imports: dict[str, Any] = field(default_factory=dict)
    frameworks: list[E2ERow] = field(default_factory=list)  # the frameworks table's apps
    soak: dict[str, Any] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    durations: dict[str, float] = field(default_factory=dict)

    def skip(self, what: str, why: object) -> None:
        """Record a row that could not be measured, with the reason (shown in the report)."""
        self.skipped.append(f"{what}: {why}")

    def micro_ns(self, group: str, name: str) -> float | None:
        for row in self.micro:
            if row.group == group and row.name == name:
                return row.best_ns
        return None

    def e2e_row(self, app: str) -> E2ERow | None:
        for row in self.e2e:
            if row.app == app and row.passes:
                return row
        return None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for row, raw in zip(self.e2e, data["e2e"], strict=True):
            raw["best"] = row.best
        for row, raw in zip(self.frameworks, data["frameworks"], strict=True):
            raw["best"] = row.best
        return data


@contextmanager
def stopwatch(results: Results, name: str) -> Iterator[None]:
    """Record how long a phase of the run took."""
    t0 = time.perf_counter()
    try:
        yield
    finally:
        results.durations[name] = round(time.perf_counter() - t0, 2)
