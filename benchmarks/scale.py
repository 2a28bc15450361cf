"""Scale: many live sessions in each real store, written and read through satchel's stores.

For each backend (Redis, SQLite, PostgreSQL): write N sessions with ``SessionStore.create``
(spread over N/10 users, 10 % of them expiring earlier than the rest), then measure

* Redis memory per session: ``INFO memory`` ``used_memory`` after minus before, over N
  (session hashes and per-user indexes included);
* point lookups: ``SessionStore.get`` of random existing ids, one at a time, p50/p99;
* purge: ``purge_expired`` at an instant that expires the 10 %.

Everything runs against loopback services under a prefix / schema / file owned by this
run, removed afterwards. Writing is bounded in time; if the bound is hit the figures are
reported for the number actually written.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from collections.abc import Callable
from typing import Any

from benchmarks.common import Results, Settings, percentiles, run_async
from benchmarks.satchel_side import importable

Progress = Callable[[str], None]

SESSIONS_PER_USER = 10
EXPIRING_SHARE = 0.10
#: PostgreSQL: sessions written through the store before the rest is bulk-loaded.
BULK_AFTER = 20_000


def _records(n: int, now: float) -> tuple[list[Any], float]:
    """``n`` session records and the purge instant that expires the first 10 % of them."""
    from satchel.stores.base import SessionRecord
    from satchel.strategies.session_tokens import hash_secret, new_token

    users = [secrets.token_hex(8) for _ in range(max(1, n // SESSIONS_PER_USER))]
    soon, late = now + 3600.0, now + 86_400.0
    records = []
    expiring = int(n * EXPIRING_SHARE)
    for i in range(n):
        sid, secret, _ = new_token()
        ends = soon if i < expiring else late
        records.append(
            SessionRecord(
                id=sid,
                user_id=users[i % len(users)],
                secret_hash=hash_secret(secret),
                created_at=now,
                last_seen_at=now,
                idle_expires_at=ends,
                absolute_expires_at=ends,
                ip="127.0.0.1",
                user_agent="satchel-bench/1.0",
            )
        )
    random.shuffle(records)
    return records, soon + 60.0


async def _fill(
    store: Any, records: list[Any], now: float, concurrency: int, budget: float, progress: Progress
) -> tuple[int, float]:
    """Write ``records`` with ``concurrency`` writers until done or ``budget`` seconds pass."""
    position = 0
    written = 0
    deadline = time.monotonic() + budget
    started = time.perf_counter()
    next_report = time.monotonic() + 2.0

    async def writer() -> None:
        nonlocal position, written, next_report
        while position < len(records) and time.monotonic() < deadline:
            record = records[position]
            position += 1
            await store.create(record, now=now)
            written += 1
            if time.monotonic() > next_report:
                next_report = time.monotonic() + 2.0
                progress(f"{written:,}/{len(records):,} sessions")

    await asyncio.gather(*(writer() for _ in range(concurrency)))
    return written, time.perf_counter() - started


async def _lookups(store: Any, ids: list[str], count: int) -> dict[str, float]:
    samples: list[float] = []
    perf = time.perf_counter_ns
    for sid in random.sample(ids, min(count, len(ids))):
        t0 = perf()
        record = await store.get(sid)
        samples.append(perf() - t0)
        if record is None:
            raise RuntimeError("a written session could not be read back")
    return percentiles(samples)


async def _redis_used_memory(url: str) -> int:
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(url)
    try:
        info = await client.info("memory")
        return int(info["used_memory"])
    finally:
        await client.aclose()


async def _one_backend(
    backend: str, settings: Settings, results: Results, progress: Progress
) -> None:
    from satchel.stores import open_store

    n = settings.scale_sessions
    budget = 15.0 if settings.quick else 900.0
    schema = f"satchel_bench_{settings.run_id}"
    sqlite_file = settings.workdir / f"scale-{settings.run_id}.db"
    if backend == "Redis":
        url, concurrency = settings.redis_url, 64
    elif backend == "SQLite":
        url, concurrency = f"sqlite:///{sqlite_file}", 1
    else:
        url, concurrency = settings.database_url, 8
    now = time.time()
    progress(f"{backend}: preparing {n:,} records")
    records, purge_at = _records(n, now)
    # Filled in place, so the figures measured before a failure still reach the report.
    out: dict[str, Any] = results.scale.setdefault(backend, {})
    out["sessions_target"] = n
    before = await _redis_used_memory(settings.redis_url) if backend == "Redis" else 0
    # Generous per-command time-outs: this measures capacity on a busy shared machine, not
    # the fail-fast behaviour the stores' defaults are tuned for.
    store = await open_store(
        url, prefix=f"{settings.redis_prefix}_scale", schema=schema, command_timeout=30.0
    )
    try:
        # PostgreSQL writes one transaction per login (~1-2k/s here): the first
        # BULK_AFTER go through the store (that is the write rate reported), the rest are
        # loaded with COPY into the same table so a full run stays within its time budget.
        bulk_after = BULK_AFTER // 10 if settings.quick else BULK_AFTER
        direct = records if backend != "PostgreSQL" else records[:bulk_after]
        written, seconds = await _fill(store, direct, now, concurrency, budget, progress)
        out["sessions"] = written
        out["write_seconds"] = round(seconds, 2)
        out["writes_per_second"] = round(written / seconds) if seconds else 0
        if backend == "PostgreSQL" and written == len(direct) and len(records) > written:
            progress(f"{backend}: COPY of {len(records) - written:,} more sessions")
            t0 = time.perf_counter()
            written += await _copy_sessions(settings.database_url, schema, records[written:])
            out["sessions"] = written
            out["bulk_loaded"] = len(records) - len(direct)
            out["bulk_seconds"] = round(time.perf_counter() - t0, 2)
        if backend == "Redis":
            after = await _redis_used_memory(settings.redis_url)
            out["bytes_per_session"] = round((after - before) / max(1, written), 1)
        if backend == "SQLite":
            out["file_bytes_per_session"] = round(sqlite_file.stat().st_size / max(1, written), 1)
        progress(f"{backend}: lookups")
        ids = [r.id for r in records[:written]]
        out["lookup"] = await _lookups(store, ids, settings.scale_lookups)
        progress(f"{backend}: purge")
        t0 = time.perf_counter()
        purged = await store.purge_expired(purge_at)
        out["purge_seconds"] = round(time.perf_counter() - t0, 3)
        out["purged"] = purged
    finally:
        await store.close()
        if backend == "PostgreSQL":
            await _drop_schema(settings.database_url, schema)
        if backend == "SQLite":
            for suffix in ("", "-wal", "-shm"):
                sqlite_file.with_name(sqlite_file.name + suffix).unlink(missing_ok=True)


async def _copy_sessions(url: str, schema: str, records: list[Any]) -> int:
    """COPY ``records`` into the store's own sessions table, column by column by name.

    Refuses (raises) when the table has a column this harness cannot fill, rather than
    guessing: the store's schema is the authority.
    """
    import asyncpg

    from satchel.stores.codec import data_to_json

    conn = await asyncpg.connect(url)
    try:
        columns = [
            row["column_name"]
            for row in await conn.fetch(
                "SELECT column_name FROM information_schema.columns "
                "WHERE table_schema = $1 AND table_name = 'sessions' ORDER BY ordinal_position",
                schema,
            )
        ]

        def value(record: Any, column: str) -> Any:
            if column == "expires_at":
                return float(record.expires_at())
            if column == "data":
                return data_to_json(record.data)
            if not hasattr(record, column):
                raise RuntimeError(f"unknown sessions column {column!r}; cannot bulk-load")
            return getattr(record, column)

        total = 0
        for start in range(0, len(records), 50_000):
            chunk = records[start : start + 50_000]
            rows = [tuple(value(r, c) for c in columns) for r in chunk]
            await conn.copy_records_to_table(
                "sessions", schema_name=schema, columns=columns, records=rows
            )
            total += len(rows)
        await conn.execute(f'ANALYZE "{schema}".sessions')
        return total
    finally:
        await conn.close()


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def run(settings: Settings, results: Results, progress: Progress) -> None:
    """Every backend in turn; one that cannot run is skipped with its reason."""
    for module in ("satchel.stores", "satchel.strategies.session_tokens"):
        found, why = importable(module)
        if found is None:
            results.skip("scale", why)
            return
    for backend in ("Redis", "SQLite", "PostgreSQL"):
        progress(backend)
        try:
            run_async(_one_backend(backend, settings, results, progress))
        except Exception as exc:
            results.skip(f"scale / {backend}", f"{type(exc).__name__}: {exc}")
            results.scale.setdefault(backend, {})["error"] = f"{type(exc).__name__}: {exc}"
