"""Import: ``satchel users import`` of N pre-hashed accounts into SQLite and PostgreSQL.

One JSON-lines file of N users (one bcrypt hash reused: the import checks a hash's format,
it never computes one) is loaded into a fresh SQLite file and a fresh PostgreSQL schema
through the command's own code path (:func:`satchel.cli.import_users.import_file` on the
raw user store that ``open_stores`` opens from settings, as the command does). Reported per
backend: wall time, users per second and whether the store took whole batches
(``BulkUserStore.create_users``) or the one-by-one fallback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.common import Results, Settings
from benchmarks.satchel_side import importable

Progress = Callable[[str], None]

#: bcrypt.hashpw(b"benchmark password", bcrypt.gensalt(10)); every line reuses it.
BCRYPT_HASH = "$2b$10$aN6.bUqjxsWVNA5bKsEjNuz8SBYQz/kKlD2aSS4S5lB5NxXCm5c0C"
BACKENDS = ("SQLite", "PostgreSQL")


def write_users_file(path: Path, count: int, *, password_hash: str = BCRYPT_HASH) -> int:
    """Write ``count`` import lines to ``path``; returns the file size in bytes."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            record = {
                "username": f"user{i:07d}",
                "password_hash": password_hash,
                "roles": ["user"] if i % 10 else ["user", "admin"],
                "email": f"user{i:07d}@example.org",
            }
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
    return path.stat().st_size


async def time_import(
    store_url: str, path: Path, *, schema: str = "satchel", batch_size: int | None = None
) -> dict[str, Any]:
    """Import ``path`` into the store at ``store_url`` as the CLI does; the figures."""
    from satchel.accounts.user_import import (
        DEFAULT_BATCH_SIZE,
        FALLBACK_CONCURRENCY,
        ImportReport,
    )
    from satchel.cli.import_users import import_file
    from satchel.config.settings import Settings as SatchelSettings
    from satchel.stores import open_stores
    from satchel.stores.base import BulkUserStore

    settings = SatchelSettings(store=store_url, pg_schema=schema)
    batch = batch_size or DEFAULT_BATCH_SIZE
    report = ImportReport()
    stores = await open_stores(settings.store, prefix=settings.key_prefix, schema=schema)
    store = stores.users
    try:
        started = time.perf_counter()
        await import_file(path, store, batch_size=batch, report=report)
        seconds = time.perf_counter() - started
        bulk = isinstance(store, BulkUserStore)
    finally:
        await stores.close()
    return {
        "imported": report.imported,
        "refused": len(report.refused),
        "seconds": round(seconds, 3),
        "users_per_second": round(report.imported / seconds) if seconds else 0,
        "batch_size": batch,
        "path": (
            f"create_users, {batch:,} per call"
            if bulk
            else f"create_user, {FALLBACK_CONCURRENCY} at a time (store has no create_users)"
        ),
    }


async def _drop_schema(url: str, schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def measure(
    count: int,
    workdir: Path,
    database_url: str,
    run_id: str,
    *,
    backends: tuple[str, ...] = BACKENDS,
    progress: Progress = lambda message: None,
) -> dict[str, Any]:
    """Generate ``count`` lines and time their import into each backend; the figures.

    ``{"lines": N, "file_bytes": ..., "generate_seconds": ..., "SQLite": {...},
    "PostgreSQL": {...}}``; a backend that fails has ``{"error": reason}`` instead.
    """
    path = workdir / f"import-{run_id}.jsonl"
    progress(f"writing {count:,} lines")
    t0 = time.perf_counter()
    figures: dict[str, Any] = {"lines": count, "file_bytes": write_users_file(path, count)}
    figures["generate_seconds"] = round(time.perf_counter() - t0, 3)
    try:
        for backend in backends:
            progress(f"{backend}: importing {count:,} users")
            sqlite_file = workdir / f"import-{run_id}.db"
            schema = f"satchel_bench_{run_id}_import"
            try:
                if backend == "SQLite":
                    figures[backend] = await time_import(f"sqlite:///{sqlite_file}", path)
                else:
                    figures[backend] = await time_import(database_url, path, schema=schema)
            except Exception as exc:
                figures[backend] = {"error": f"{type(exc).__name__}: {exc}"}
            finally:
                if backend == "PostgreSQL":
                    await _drop_schema(database_url, schema)
                for suffix in ("", "-wal", "-shm"):
                    sqlite_file.with_name(sqlite_file.name + suffix).unlink(missing_ok=True)
    finally:
        path.unlink(missing_ok=True)
    return figures


def run(settings: Settings, results: Results, progress: Progress) -> None:
    """The benchmark phase: ``settings.import_users`` lines into SQLite and PostgreSQL."""
    found, why = importable("satchel.cli.import_users")
    if found is None:
        results.skip("import", why)
        return
    from benchmarks.common import run_async

    results.imports = run_async(
        measure(
            settings.import_users,
            settings.workdir,
            settings.database_url,
            settings.run_id,
            progress=progress,
        )
    )
    for backend in BACKENDS:
        error = results.imports.get(backend, {}).get("error")
        if error:
            results.skip(f"import / {backend}", error)


def section(results: Results) -> str:
    """The report's Markdown section for this phase."""
    data = results.imports
    if not data:
        return "No import figures in this run (see below)."
    rows = []
    for backend in BACKENDS:
        row = data.get(backend)
        if not row:
            continue
        if "error" in row:
            rows.append(f"| {backend} | failed | — | {str(row['error'])[:80]} |")
            continue
        rows.append(
            f"| {backend} | {row['seconds']:.2f} s | {row['users_per_second']:,}/s | "
            f"{row['path']} |"
        )
    return (
        f"`satchel users import` of {data['lines']:,} pre-hashed users "
        f"({data['file_bytes'] / 1e6:.1f} MB of JSON lines, one bcrypt hash reused) into a "
        "fresh store, through the command's own code path.\n\n"
        "| Store | Wall time | Users | Write path |\n|---|---|---|---|\n" + "\n".join(rows)
    )


if __name__ == "__main__":  # python -m benchmarks.import_users [COUNT]
    import sys
    import tempfile

    from benchmarks.common import run_async as _run

    with tempfile.TemporaryDirectory(prefix="satchel-import-") as tmp:
        bench = Settings.make(quick=False, workdir=Path(tmp))
        count = int(sys.argv[1]) if len(sys.argv) > 1 else bench.import_users
        out = _run(measure(count, bench.workdir, bench.database_url, bench.run_id, progress=print))
    print(json.dumps(out, indent=1))
