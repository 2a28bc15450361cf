"""Sharded or classic pub/sub on Redis Cluster: the measurement behind the bus's choice.

Three processes each run a :class:`~satchel.revocation.redis_cluster.RedisClusterBus` on the
run's 6-node cluster (``benchmarks/services.py``), in one mode at a time. Process 0
publishes ``n`` revocations 5 ms apart, each carrying its ``time.monotonic_ns()`` send
instant (CLOCK_MONOTONIC: one clock for every process on the machine); processes 1 and 2
record the instant each one reached their listener. A sample is one delivery (publish call
started → listener called on another process), so it is the pub/sub path alone: no HTTP,
no store. In classic mode each process subscribes on a different master, as classic
subscribers may; in sharded mode all subscribe on the master of the channel's slot.

Results land in ``results.revocation`` under :data:`LABELS` (the report's revocation
table) with ``"scope": "bus"``.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import BenchError, Results, Settings

Progress = Callable[[str], None]

LABELS = {
    "sharded": "Redis Cluster bus alone, sharded (SSUBSCRIBE/SPUBLISH)",
    "classic": "Redis Cluster bus alone, classic (SUBSCRIBE/PUBLISH)",
}
GAP = 0.005  # seconds between publications
TIMEOUT = 60.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _worker(url: str, mode: str, prefix: str, role: int, n: int) -> list[float]:
    """One process: subscribe; process 0 publishes, the others return their delays (ms)."""
    from satchel.revocation.base import RevocationEvent, RevocationKind
    from satchel.revocation.redis_cluster import RedisClusterBus

    bus = RedisClusterBus(url, prefix=prefix, sharded=mode == "sharded")
    delays: list[float] = []
    done = asyncio.Event()

    def heard(event: RevocationEvent) -> None:
        if event.subject.startswith("t:"):
            delays.append((time.monotonic_ns() - int(event.subject[2:])) / 1e6)
            if len(delays) >= n:
                done.set()

    bus.subscribe(heard)
    await bus.start()
    if not bus.healthy:
        raise BenchError("the cluster bus did not subscribe")
    print("ready", flush=True)
    try:
        if role == 0:
            sys.stdin.readline()  # every process is subscribed
            for _ in range(n):
                sent = time.monotonic_ns()
                await bus.publish(RevocationEvent(RevocationKind.SESSION, f"t:{sent}", 1e10))
                await asyncio.sleep(GAP)
            return []
        async with asyncio.timeout(TIMEOUT):
            await done.wait()
        return delays
    finally:
        await bus.close()


def _spawn(url: str, mode: str, prefix: str, role: int, n: int) -> subprocess.Popen[str]:
    root = Path(__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(root / "src"), str(root)])}
    return subprocess.Popen(
        [sys.executable, "-m", "benchmarks.cluster_pubsub", url, mode, prefix, str(role), str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=root,
    )


def measure(url: str, mode: str, n: int, prefix: str) -> dict[str, Any]:
    """p50/p99/max ms of ``n`` publications delivered to two other processes."""
    procs = [_spawn(url, mode, prefix, role, n) for role in range(3)]
    try:
        for proc in procs:
            assert proc.stdout is not None
            if proc.stdout.readline().strip() != "ready":
                raise BenchError(f"a {mode} bus process did not start: {proc.communicate()[1]}")
        assert procs[0].stdin is not None
        procs[0].stdin.write("go\n")
        procs[0].stdin.flush()
        samples: list[float] = []
        for proc in procs:
            out, err = proc.communicate(timeout=TIMEOUT + 10)
            if proc.returncode != 0:
                raise BenchError(f"a {mode} bus process failed: {err.strip()[-300:]}")
            samples += json.loads(out.strip().splitlines()[-1])
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    if len(samples) < 2 * n:
        raise BenchError(f"{mode}: {2 * n - len(samples)} deliveries lost")
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(_percentile(samples, 0.99), 3),
        "max_ms": round(max(samples), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "samples": len(samples),
        "lost": 0,
        "processes": 3,
        "scope": "bus",
        "note": (
            f"3 processes on a 3-master cluster, {mode} pub/sub: publish on one →"
            " listener called on the two others (bus only, no HTTP)"
        ),
    }


def run(settings: Settings, results: Results, progress: Progress) -> None:
    """Both modes on the run's cluster, alternating, so machine load hits them alike."""
    from benchmarks import services

    n = 200 if settings.quick else 1000
    try:
        cluster = services.redis_cluster()
    except Exception as exc:
        results.skip("revocation / Redis Cluster bus", f"{type(exc).__name__}: {exc}")
        return
    rounds: dict[str, list[dict[str, Any]]] = {"sharded": [], "classic": []}
    for i in range(1 if settings.quick else 3):
        for mode in ("sharded", "classic"):
            progress(f"cluster pub/sub {mode} ({i + 1})")
            try:
                rounds[mode].append(measure(cluster.url, mode, n, f"ps{settings.run_id}{i}"))
            except Exception as exc:
                results.skip(f"revocation / {LABELS[mode]}", f"{type(exc).__name__}: {exc}")
    for mode, measured in rounds.items():
        if measured:
            # The round with the median p99 stands for the mode; every round is in "rounds".
            measured.sort(key=lambda r: r["p99_ms"])
            chosen = dict(measured[len(measured) // 2])
            chosen["rounds"] = [{k: r[k] for k in ("p50_ms", "p99_ms")} for r in measured]
            results.revocation[LABELS[mode]] = chosen


def main(argv: list[str]) -> int:
    url, mode, prefix, role, n = argv[0], argv[1], argv[2], int(argv[3]), int(argv[4])
    delays = asyncio.run(_worker(url, mode, prefix, role, n))
    print(json.dumps(delays), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
