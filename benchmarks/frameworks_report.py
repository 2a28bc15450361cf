"""The frameworks table in docs/benchmarks.md, and the targets it checks.

Kept apart from :mod:`benchmarks.report` (which calls it) so that module stays one idea;
targets are handed back as plain :class:`RatioGoal` values for the report to judge.
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.common import E2ERow, Results
from benchmarks.frameworks import (
    COMPARED,
    DJANGO_DB,
    DJANGO_SATCHEL,
    FLASK_JWT,
    FLASK_JWT_EXTENDED,
    FLASK_LOGIN,
    FLASK_PLAIN,
    FLASK_SESSION,
    LITESTAR_PLAIN,
    LITESTAR_SATCHEL,
    WSGI_WORKER_CLASS,
    WSGI_WORKERS,
)

HEADING = "## Frameworks"


@dataclass(frozen=True, slots=True)
class RatioGoal:
    """``value`` req/s over ``ref`` req/s must reach ``limit`` (None: shown, not judged)."""

    name: str
    subject: str
    value: float | None
    ref: float | None
    limit: float | None


def _rps(results: Results, app: str) -> float | None:
    for row in results.frameworks:
        if row.app == app and row.passes:
            best = row.best
            return best["rps"] if best else None
    return None


def goals(results: Results) -> list[RatioGoal]:
    """The issue's framework targets, from this run's rows."""
    rps = lambda app: _rps(results, app)  # noqa: E731
    return [
        RatioGoal(
            "Flask protected vs Flask unauthenticated",
            FLASK_JWT,
            rps(FLASK_JWT),
            rps(FLASK_PLAIN),
            0.9,
        ),
        RatioGoal(
            "Flask + satchel JWT vs Flask-JWT-Extended",
            FLASK_JWT,
            rps(FLASK_JWT),
            rps(FLASK_JWT_EXTENDED),
            1.0,
        ),
        RatioGoal(
            "Flask + satchel session vs Flask-Login + Flask-Session (SQLite)",
            FLASK_SESSION,
            rps(FLASK_SESSION),
            rps(FLASK_LOGIN),
            1.0,
        ),
        RatioGoal(
            "Django + satchel session vs Django's db session backend",
            DJANGO_SATCHEL,
            rps(DJANGO_SATCHEL),
            rps(DJANGO_DB),
            1.5,
        ),
        RatioGoal(
            "Litestar protected vs Litestar unauthenticated",
            LITESTAR_SATCHEL,
            rps(LITESTAR_SATCHEL),
            rps(LITESTAR_PLAIN),
            None,
        ),
    ]


def _ratio(value: float | None, ref: float | None) -> str:
    return "—" if value is None or not ref else f"{value / ref:.2f}×"


def _lat(value_us: float | None) -> str:
    if value_us is None:
        return "—"
    return f"{value_us / 1000:.2f} ms" if value_us >= 1000 else f"{value_us:.0f} µs"


def _row(results: Results, row: E2ERow) -> list[str]:
    best = row.best
    passes = " / ".join(f"{p['rps']:,.0f}" for p in row.passes) or "—"
    baseline, peer = COMPARED.get(row.app, (None, None))
    value = best["rps"] if best else None
    return [
        row.framework.capitalize(),
        row.app,
        row.kind,
        f"{value:,.0f}" if value else "—",
        passes,
        _lat(best.get("p50_us")) if best else "—",
        _lat(best.get("p99_us")) if best else "—",
        _ratio(value, _rps(results, baseline)) if baseline else "",
        _ratio(value, _rps(results, peer)) if peer else "",
        str(row.credential_bytes or ""),
    ]


def section(results: Results) -> str:
    """The table, how it was measured, and what each ratio compares."""
    if not results.frameworks:
        return "Not measured in this run (see below)."
    header = [
        "Framework",
        "App",
        "Kind",
        "req/s (best)",
        "passes",
        "p50",
        "p99",
        "× no auth",
        "× peer",
        "credential B",
    ]
    rows = [_row(results, row) for row in results.frameworks]
    lines = "\n".join("| " + " | ".join(r) + " |" for r in rows)
    head = "| " + " | ".join(header) + " |\n|" + "---|" * len(header)
    quick = " (quick run: two Flask rows only)" if results.quick else ""
    load = results.environment.get("frameworks_load") or {}
    if load.get("end") is not None:
        quick += (
            f" — 1-minute load average {load['start']:.1f} at the start, {load['end']:.1f} at "
            "the end, on a machine shared with other work"
        )
    return (
        f"`GET /me` under `wrk`{quick}: Flask and Django under gunicorn "
        f"({WSGI_WORKERS} {WSGI_WORKER_CLASS} worker per app, so every WSGI contender has the "
        "same process and no keep-alive), Litestar under one uvicorn worker; loopback, passes "
        "interleaved across apps, best pass shown. `× no auth` is against the same "
        "framework's unauthenticated route, `× peer` against what a user of that framework "
        "would pick: Flask-JWT-Extended for satchel's JWT, Flask-Login over Flask-Session's "
        "SQLite (SQLAlchemy) sessions for satchel's SQLite sessions, Django's own "
        "authentication over the `db` session backend for satchel's Django middleware, "
        "Litestar's `JWTAuth` for `SatchelAuth`. satchel's rows log in through satchel "
        "beforehand and send a bearer token; the peers log in through their own `/login`.\n\n"
        f"{head}\n{lines}"
    )
