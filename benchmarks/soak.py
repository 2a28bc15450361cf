"""A bounded soak: ``satchel serve`` (hybrid) under load with steady logins, RSS sampled.

One server process (hybrid strategy, sessions in Redis, users and keys in a SQLite file) is
loaded by ``wrk`` on ``GET /auth/me`` for the whole soak while a client logs in a few times a
second (every login opens a session, so every per-process map that grows with sessions is
exercised). The server's resident set size is read from ``/proc`` every few seconds. After a
warm-up minute the RSS must stay flat: the least-squares slope over the rest of the soak is
reported and compared to :data:`FLAT_MIB_PER_MIN`.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, Results, Settings

Progress = Callable[[str], None]

USER = "soak-user"
PASSWORD = "soak-password-not-a-secret"
SAMPLE_EVERY = 5.0  # seconds between RSS samples
WARM_UP = 60.0  # seconds excluded from the flatness fit
LOGINS_PER_SECOND = 4.0
ACCESS_TTL = 30  # seconds; the default is 900, when the caches level off after 15 minutes
#: Growth after warm-up below this counts as flat (the leak that was fixed grew ~0.7 MiB/min).
FLAT_MIB_PER_MIN = 0.2


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (Linux ``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    raise BenchError(f"no VmRSS for process {pid}")


def slope_per_minute(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) samples, in MiB per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    if var == 0:
        return 0.0
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var * 60.0


def summarise(samples: list[tuple[float, float]], seconds: float) -> dict[str, Any]:
    """RSS at the end of each minute, the slope after warm-up and the verdict."""
    per_minute: list[float] = []
    minute = 60.0
    for t, mib in samples:
        if t >= minute:
            per_minute.append(round(mib, 2))
            minute += 60.0
    after = [(t, m) for t, m in samples if t >= min(WARM_UP, seconds / 3)]
    slope = slope_per_minute(after)
    return {
        "seconds": round(seconds, 1),
        "rss_mib_per_minute": per_minute,
        "rss_first_mib": round(samples[0][1], 2) if samples else None,
        "rss_last_mib": round(samples[-1][1], 2) if samples else None,
        "slope_mib_per_min_after_warm_up": round(slope, 3),
        "flat": slope < FLAT_MIB_PER_MIN,
        "samples": [(round(t, 1), round(m, 2)) for t, m in samples],
    }


def run_soak(settings: Settings, seconds: float, progress: Progress) -> dict[str, Any]:
    """Serve, load and log in for ``seconds``; the summary of :func:`summarise` plus load."""
    import httpx

    from benchmarks.e2e import ensure_wrk, parse_wrk
    from benchmarks.revocation import _procs

    missing = ensure_wrk()
    if missing:
        raise BenchError(missing)
    procs = _procs()
    env = {
        "SATCHEL_STRATEGY": "hybrid",
        "SATCHEL_STORE": f"sqlite:///{settings.workdir / 'soak.db'}",
        "SATCHEL_SESSIONS_STORE": settings.redis_url,
        "SATCHEL_REDIS_URL": settings.redis_url,
        "SATCHEL_KEY_PREFIX": f"{settings.redis_prefix}_soak",
        "SATCHEL_TRANSPORTS": "bearer",
        "SATCHEL_LOG_LEVEL": "warning",
        "SATCHEL_STORE_TIMEOUT": "10",
        # Every login caches its new access token until the token expires: with a lifetime
        # shorter than the warm-up, the caches reach their steady size inside it.
        "SATCHEL_ACCESS_TTL": str(ACCESS_TTL),
    }
    done = procs.satchel_cli(["users", "add", USER, "--password-stdin"], env, PASSWORD + "\n")
    if done.returncode != 0 and "exists" not in done.stderr:
        raise BenchError(f"could not create the soak user: {done.stderr.strip()[:200]}")
    server = procs.SatchelServer(env, "soak").start()
    stop = threading.Event()
    logins = {"ok": 0, "failed": 0}
    try:
        server.wait_ready()
        pid = server.proc.pid

        def login() -> str:
            response = httpx.post(
                f"{server.url}/auth/token",
                data={"grant_type": "password", "username": USER, "password": PASSWORD},
                timeout=10,
            )
            response.raise_for_status()
            token: str = response.json()["access_token"]
            return token

        segment = max(5, ACCESS_TTL - 10)  # each wrk run uses a token that outlives it
        totals = {"requests": 0.0, "seconds": 0.0, "non_2xx": 0.0}
        errors: list[str] = []

        def keep_loading() -> None:
            deadline = time.monotonic() + seconds
            while not stop.is_set():
                left = deadline - time.monotonic()
                if left < 1:
                    return
                length = int(min(segment, left))
                try:
                    token = login()
                except httpx.HTTPError as exc:
                    errors.append(f"login failed: {type(exc).__name__}")
                    return
                done = subprocess.run(
                    [
                        "wrk",
                        "-t1",
                        "-c32",
                        f"-d{length}s",
                        "--timeout",
                        "5s",
                        "-H",
                        f"Authorization: Bearer {token}",
                        f"{server.url}/auth/me",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=length + 30,
                    check=False,
                )
                if done.returncode != 0:
                    errors.append(f"wrk failed: {done.stderr.strip()[:200]}")
                    return
                load = parse_wrk(done.stdout)
                totals["requests"] += load.get("requests", 0.0)
                totals["seconds"] += length
                totals["non_2xx"] += load["non_2xx"]

        def keep_logging_in() -> None:
            while not stop.wait(1.0 / LOGINS_PER_SECOND):
                try:
                    login()
                    logins["ok"] += 1
                except httpx.HTTPError:
                    logins["failed"] += 1

        loader = threading.Thread(target=keep_loading, daemon=True)
        logger = threading.Thread(target=keep_logging_in, daemon=True)
        loader.start()
        logger.start()
        started = time.monotonic()
        samples: list[tuple[float, float]] = []
        while loader.is_alive():
            elapsed = time.monotonic() - started
            samples.append((elapsed, rss_mib(pid)))
            progress(f"soak {elapsed:.0f}/{seconds:.0f} s, RSS {samples[-1][1]:.1f} MiB")
            loader.join(SAMPLE_EVERY)
        stop.set()
        logger.join(15)
        samples.append((time.monotonic() - started, rss_mib(pid)))
    finally:
        stop.set()
        server.stop()
    if errors:
        raise BenchError(errors[0])
    summary = summarise(samples, seconds)
    summary.update(
        rps=round(totals["requests"] / totals["seconds"]) if totals["seconds"] else 0,
        non_2xx=int(totals["non_2xx"]),
        logins=logins["ok"],
        failed_logins=logins["failed"],
    )
    return summary


def run(settings: Settings, results: Results, progress: Progress) -> None:
    """The soak phase: ``settings.soak_seconds`` long (0 in quick mode: not measured)."""
    if settings.soak_seconds <= 0:
        results.skip("memory soak", "not measured in quick mode (satchel bench --soak)")
        return
    try:
        results.soak = run_soak(settings, settings.soak_seconds, progress)
    except Exception as exc:
        results.skip("memory soak", f"{type(exc).__name__}: {exc}")


def section(results: Results) -> str:
    """The report's memory section."""
    soak: dict[str, Any] = results.soak or {}
    if not soak:
        return (
            "Not measured in this run (`satchel bench --soak [--soak-seconds N]`; quick mode "
            "skips it). Every per-process cache and map has a stated bound: docs/memory.md."
        )
    minutes = ", ".join(f"{m:.1f}" for m in soak["rss_mib_per_minute"]) or "—"
    verdict = "flat" if soak["flat"] else "still growing"
    return (
        f"`satchel serve --strategy hybrid` (sessions in Redis) loaded by `wrk -c32` on "
        f"`GET /auth/me` for {soak['seconds']:.0f} s at {soak['rps']:,} req/s "
        f"({soak['non_2xx']} non-2xx) while a client logged in {LOGINS_PER_SECOND:g} times a "
        f"second ({soak['logins']} logins, {soak['failed_logins']} failed). Access tokens "
        f"live {ACCESS_TTL} s here, so the token caches (one entry per login until the token "
        "expires) reach their steady size within the warm-up minute; with the default 900 s "
        "they grow for 15 minutes, to at most 10,000 entries (docs/memory.md).\n\n"
        f"| | MiB |\n|---|---|\n| RSS at start | {soak['rss_first_mib']:.1f} |\n"
        f"| RSS at the end of each minute | {minutes} |\n"
        f"| RSS at the end | {soak['rss_last_mib']:.1f} |\n\n"
        f"Slope after the warm-up minute: {soak['slope_mib_per_min_after_warm_up']:+.3f} MiB/min "
        f"({verdict}; flat means under {FLAT_MIB_PER_MIN} MiB/min). The bound of every "
        "per-process cache and map: docs/memory.md."
    )
