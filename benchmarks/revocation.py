"""Revocation-to-refusal latency across three server processes (the seed table's last rows).

Three ``satchel serve`` processes (A, B, C) on loopback ports share their stores. For each
sample: log in on A, make A and B cache the session (two authenticated requests each),
log out on C, and from the moment C's logout *returned* poll A and B as fast as they answer
until both refuse the token. The sample is the later of the two refusals, so it includes
one request round trip (what a client would see), not just the pub/sub hop.

With ``strategy="hybrid"`` the credential is the bearer access token of ``POST /auth/token``:
a signed token that is still far from expiry when it is revoked, so A and B can only refuse
it from the revocation they were pushed (they verify it without reading the store). The same
holds for ``strategy="jwt"``: the logout on C publishes a session revocation on the bus.

With ``sqlite_file`` the three processes share that SQLite file for everything, and the
revocations travel over the SQLite polling bus (``SATCHEL_BUS_POLL_INTERVAL``, 50 ms by
default), so those figures are bounded below by the poll interval. Each logout there is
preceded by a random pause of up to one poll interval: otherwise the fixed length of a
sample's loop locks the logouts to one phase of the pollers' timer and skews the figures.

Contract with the report: ``results.revocation[config.label]`` is
``{"p50_ms", "p99_ms", "max_ms", "mean_ms", "samples", "lost", "processes": 3,
"strategy", "note"}``.

Entry points: :func:`measure_revocation` (async, one deployment, returns that dict) and
:func:`run` (the harness phase).
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from benchmarks.common import Results, Settings

Progress = Callable[[str], None]

PASSWORD = "bench password 0123456789"
USER = "revocation-bench"
POLL_LIMIT = 2.0  # seconds; a sample slower than this counts as lost


def _procs() -> Any:
    """The process helpers shared with the multi-process tests (tests/procs.py)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "procs.py"
    spec = importlib.util.spec_from_file_location("satchel_test_procs", path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("satchel_test_procs", module)
    spec.loader.exec_module(module)
    return module


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


async def measure_revocation(
    n: int = 200,
    *,
    redis_url: str | None = "redis://127.0.0.1:6379/0",
    database_url: str = "postgresql://postgres@127.0.0.1:5432/test",
    env: Mapping[str, str] | None = None,
    strategy: str = "session",
    sqlite_file: Path | None = None,
    jwt_alg: str = "EdDSA",
    tag: str | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Median and 99th-percentile ms from "logout returned on C" to "refused on A and B".

    By default the deployment is users and keys in PostgreSQL, sessions in Redis (Redis
    bus); ``redis_url=None`` makes it PostgreSQL only (LISTEN/NOTIFY); ``sqlite_file``
    makes it that one SQLite file only (SQLite polling bus; ``redis_url`` and
    ``database_url`` are then unused). ``strategy`` is ``"session"``, ``"jwt"`` or
    ``"hybrid"`` (signed access tokens, ``jwt_alg``). ``env`` replaces the ``SATCHEL_*``
    settings entirely. Everything created (Redis keys, schema, SQLite file) is removed.
    """
    import httpx

    procs = _procs()
    tag = tag or f"rev{time.time_ns() % 10**10}"
    schema = tag.lower()
    signed = strategy in ("jwt", "hybrid")
    if sqlite_file is not None:
        redis_url = None
    if env is None:
        if sqlite_file is not None:
            env = {"SATCHEL_STRATEGY": strategy, "SATCHEL_STORE": f"sqlite:///{sqlite_file}"}
        else:
            env = {
                "SATCHEL_STRATEGY": strategy,
                "SATCHEL_STORE": database_url,
                "SATCHEL_PG_SCHEMA": schema,
            }
        if signed:
            env["SATCHEL_JWT_ALG"] = jwt_alg  # the algorithm of the table's column
        if redis_url is not None:
            env["SATCHEL_SESSIONS_STORE"] = redis_url
    env = {
        "SATCHEL_KEY_PREFIX": tag,
        **env,
        "SATCHEL_TRANSPORTS": "bearer",
        "SATCHEL_EXPOSE_COUNTERS": "true",
        "SATCHEL_LOG_LEVEL": "error",
    }
    poll_interval = float(env.get("SATCHEL_BUS_POLL_INTERVAL", 0.05))
    servers: list[Any] = []
    try:
        done = procs.satchel_cli(["users", "add", USER, "--password-stdin"], env, PASSWORD + "\n")
        if done.returncode != 0 and "exists" not in done.stderr:
            raise RuntimeError(f"could not create the benchmark user: {done.stderr.strip()}")
        servers = procs.start_servers([env] * 3, ["A", "B", "C"])
        a, b, c = servers
        samples: list[float] = []
        lost = 0
        async with httpx.AsyncClient(timeout=5) as client:
            pollers = {s.url: await _Poller.open(s.port) for s in (a, b)}

            async def store_reads() -> int:
                total = 0
                for server in (a, b):
                    counters = (await client.get(f"{server.url}/debug/counters")).json()
                    total += int(counters.get("strategy", {}).get("store_reads", 0))
                return total

            window_reads = 0

            async def refused_at(url: str, auth: dict[str, str]) -> float | None:
                poller = pollers[url]
                deadline = time.perf_counter() + POLL_LIMIT
                while time.perf_counter() < deadline:
                    if await poller.status(auth["Authorization"]) == 401:
                        return time.perf_counter()
                return None

            for i in range(n):
                login = await client.post(
                    f"{a.url}/auth/token",
                    data={"grant_type": "password", "username": USER, "password": PASSWORD},
                )
                login.raise_for_status()
                issued = login.json()
                expires_at = time.perf_counter() + float(issued.get("expires_in", 0))
                if strategy == "hybrid" and not issued.get("refresh_token"):
                    raise RuntimeError("the servers did not issue hybrid tokens")
                if signed and issued["access_token"].count(".") != 2:
                    raise RuntimeError(f"the servers did not issue {strategy} tokens")
                auth = {"Authorization": f"Bearer {issued['access_token']}"}
                for server in (a, b, a, b):
                    (await client.get(f"{server.url}/auth/me", headers=auth)).raise_for_status()
                reads_before = await store_reads()
                if sqlite_file is not None:
                    await asyncio.sleep(random.uniform(0, poll_interval))
                logout = await client.post(f"{c.url}/auth/logout", headers=auth)
                returned = time.perf_counter()
                if logout.status_code != 204:
                    raise RuntimeError(f"logout failed with {logout.status_code}")
                ends = await asyncio.gather(refused_at(a.url, auth), refused_at(b.url, auth))
                if None in ends:
                    lost += 1
                    continue
                refused = max(e for e in ends if e is not None)
                if signed and refused >= expires_at:
                    # Refused only because it expired: not a revocation figure.
                    raise RuntimeError("the access token expired before it was refused")
                samples.append((refused - returned) * 1000)
                # Read after the timing: what A and B spent on the store to learn of it.
                window_reads += await store_reads() - reads_before
                if progress is not None and (i + 1) % 50 == 0:
                    progress(f"{i + 1}/{n} revocations")
            bus = (await client.get(f"{a.url}/debug/counters")).json().get("bus", {})
            for poller in pollers.values():
                poller.close()
    finally:
        for server in servers:
            server.stop()
        await _cleanup(env, redis_url, database_url, schema, tag)
        if sqlite_file is not None:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{sqlite_file}{suffix}").unlink(missing_ok=True)
    if not samples:
        raise RuntimeError("no revocation reached the other processes within 2 s")
    credential = "unexpired bearer access token" if signed else "session"
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(_percentile(samples, 0.99), 3),
        "max_ms": round(max(samples), 3),
        "mean_ms": round(statistics.fmean(samples), 3),
        "samples": len(samples),
        "lost": lost,
        "processes": 3,
        "strategy": strategy,
        "store_reads_per_revocation": round(window_reads / len(samples), 3),
        "note": (
            f"3 processes, {bus.get('kind', '?')}; logout on C returned → {credential}"
            " refused on A and B (incl. one keep-alive request round trip);"
            f" store reads on A and B per revocation: {window_reads / len(samples):g}"
        ),
    }


class _Poller:
    """A bare keep-alive HTTP/1.1 connection: polling costs the server's time, not httpx's."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> _Poller:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def status(self, authorization: str) -> int:
        self.writer.write(
            f"GET /auth/me HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {authorization}"
            "\r\n\r\n".encode()
        )
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = 0
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
        await self.reader.readexactly(length)
        return int(lines[0].split(" ", 2)[1])

    def close(self) -> None:
        self.writer.close()


async def _cleanup(
    env: Mapping[str, str], redis_url: str | None, database_url: str, schema: str, tag: str
) -> None:
    if env.get("SATCHEL_STORE", "").startswith(("postgresql:", "postgres:")):
        import asyncpg

        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()
    if redis_url is not None:
        import redis.asyncio as aioredis

        client = aioredis.Redis.from_url(redis_url)
        try:
            prefix = env.get("SATCHEL_KEY_PREFIX", tag)
            keys = [k async for k in client.scan_iter(match=f"{prefix}:*", count=1000)]
            if keys:
                await client.delete(*keys)
        finally:
            await client.aclose()


def _table_label(key: str) -> str:
    from benchmarks.satchel_side import CONFIGS

    return next(c.label for c in CONFIGS if c.key == key)


#: Report label -> (stores: "redis" = PostgreSQL + Redis, "postgres" = PostgreSQL only,
#: "sqlite" = one SQLite file; strategy; JWT algorithm; tag suffix). Labels of the rows that
#: are also columns of the comparison table come from benchmarks.satchel_side, so the
#: cells fill.
DEPLOYMENTS = (
    (_table_label("session-redis-cache"), "redis", "session", "EdDSA", "r"),
    ("session + PostgreSQL only (LISTEN/NOTIFY)", "postgres", "session", "EdDSA", "p"),
    (_table_label("hybrid"), "redis", "hybrid", "EdDSA", "h"),
    (_table_label("session-sqlite"), "sqlite", "session", "EdDSA", "s"),
    (_table_label("jwt-hs256"), "sqlite", "jwt", "HS256", "j"),
    (_table_label("jwt-eddsa"), "sqlite", "jwt", "EdDSA", "e"),
)


#: The deployments quick mode measures (three servers each; the rest in full runs).
QUICK_DEPLOYMENTS = ("h",)


def run(settings: Settings, results: Results, progress: Progress) -> None:
    """Measure each deployment in turn; one that cannot run is skipped with its reason."""
    n = 10 if settings.quick else 200
    for label, stores, strategy, alg, suffix in DEPLOYMENTS:
        if settings.quick and suffix not in QUICK_DEPLOYMENTS:
            results.skip(f"revocation / {label}", "not measured in quick mode")
            continue
        progress(label)
        tag = f"rev{settings.run_id}{suffix}"
        try:
            results.revocation[label] = asyncio.run(
                measure_revocation(
                    n,
                    redis_url=settings.redis_url if stores == "redis" else None,
                    database_url=settings.database_url,
                    strategy=strategy,
                    sqlite_file=settings.workdir / f"{tag}.db" if stores == "sqlite" else None,
                    jwt_alg=alg,
                    tag=tag,
                    progress=progress,
                )
            )
        except Exception as exc:
            results.skip(f"revocation / {label}", f"{type(exc).__name__}: {exc}")
