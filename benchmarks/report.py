"""Turn one run's :class:`Results` into docs/benchmarks.md, .json and .png.

Targets are evaluated here, from figures of the same run, and shown as met / not met with
the measured gap. Anything that could not be measured says so and why.
"""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks import frameworks_report, import_users, ops_micro, soak
from benchmarks.common import E2ERow, MicroRow, Results
from benchmarks.satchel_side import (
    CONFIGS,
    FRAMEWORK_CONFIG,
    LOGIN_FLOOR,
    LOGIN_SATCHEL,
    LOGIN_THREADED_FLOOR,
    Config,
)

NOTES_FILE = Path(__file__).with_name("NOTES.md")

#: Section headings; the smoke test checks they are all present.
HEADINGS = (
    "# satchel benchmarks",
    "## Targets",
    "## The seed's comparison table, measured",
    "## Micro benchmarks",
    "## End to end",
    "## Frameworks",
    "## Scale",
    "## Memory",
    "## Import",
    "## Hot-path work",
    "## Not measured in this run",
    "## How to reproduce",
)


@dataclass(slots=True)
class Target:
    """One target checked against this run."""

    name: str
    subject: str
    measured: str
    limit: str
    met: bool | None  # None: not measured in this run
    gap: str = ""
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "subject": self.subject,
            "measured": self.measured,
            "limit": self.limit,
            "met": self.met,
            "gap": self.gap,
            "note": self.note,
        }


# --- formatting ---------------------------------------------------------------------------------


def us(ns: float | None) -> str:
    if ns is None or math.isnan(ns):
        return "—"
    value = ns / 1000.0
    if value >= 1000:
        return f"{value / 1000:,.2f} ms"
    if value >= 100:
        return f"{value:,.0f} µs"
    if value >= 10:
        return f"{value:.1f} µs"
    return f"{value:.2f} µs"


def lat(value_us: float | None) -> str:
    if value_us is None or math.isnan(value_us):
        return "—"
    return f"{value_us / 1000:.2f} ms" if value_us >= 1000 else f"{value_us:.0f} µs"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def mark(met: bool | None) -> str:
    return {True: "✅ met", False: "❌ not met", None: "— not measured"}[met]


# --- targets --------------------------------------------------------------------------------------


def _ratio_target(
    name: str, subject: str, value: float | None, ref: float | None, limit: float, *, at_most: bool
) -> Target:
    """``value / ref`` against ``limit`` (at most, or at least)."""
    word = "≤" if at_most else "≥"
    if value is None or ref is None or ref == 0:
        return Target(name, subject, "—", f"{word} {limit:g}×", None)
    ratio = value / ref
    met = ratio <= limit if at_most else ratio >= limit
    if met:
        gap = ""
    elif at_most:
        gap = f"{ratio / limit:.2f}× the limit"
    else:
        gap = f"{ratio / limit:.0%} of the goal"
    return Target(name, subject, f"{ratio:.2f}×", f"{word} {limit:g}×", met, gap)


def _e2e_best(results: Results, app: str) -> float | None:
    row = results.e2e_row(app)
    best = row.best if row else None
    return best["rps"] if best else None


def _app_name(config: Config, framework: str = "fastapi") -> str:
    name = f"satchel {config.label}"
    if framework == "starlette":
        name += " (Starlette)"
    elif framework == "asgi":
        name += " (raw ASGI)"
    return name


#: Columns whose caches rely on pushed revocations: zero store reads, revocation ≤ 10 ms.
PUSHED = (
    "hybrid",
    "session-redis-cache",
    "session-redis-cluster-cache",
    "session-pgbouncer-cache",
)


def evaluate_targets(results: Results) -> list[Target]:
    """Every target of the benchmarks issue, from this run's figures."""
    out: list[Target] = []
    micro = results.micro_ns
    column = results.table

    for config in CONFIGS:
        data = column.get(config.label, {})
        value = data.get("authenticate_repeated_us")
        out.append(
            Target(
                "authenticate(), repeated credential, warm",
                config.label,
                f"{value:.2f} µs" if value is not None else "—",
                "≤ 2 µs",
                None if value is None else value <= 2.0,
                "" if value is None or value <= 2.0 else f"{value / 2.0:.1f}× over",
            )
        )

    hs_first = column.get("JWT HS256", {}).get("authenticate_first_us")
    hs_ns = hs_first * 1000 if hs_first is not None else micro("verify HS256", "satchel")
    subject = (
        "JWT HS256 authenticate()" if hs_first is not None else "satchel.jose.claims.verify HS256"
    )
    out.append(
        _ratio_target(
            "First-seen HS256 token vs hand-rolled floor",
            subject,
            hs_ns,
            micro("verify HS256", "by hand: split + HMAC + json + claims"),
            2.0,
            at_most=True,
        )
    )
    out.append(
        _ratio_target(
            "First-seen HS256 token vs PyJWT verify",
            subject,
            hs_ns,
            micro("verify HS256", "PyJWT"),
            0.5,
            at_most=True,
        )
    )
    ed_first = column.get("JWT EdDSA", {}).get("authenticate_first_us")
    ed_ns = ed_first * 1000 if ed_first is not None else micro("verify EdDSA", "satchel")
    # The floor timed beside those very tokens when the run has it (see satchel_side).
    ed_floor = column.get("JWT EdDSA", {}).get("floor_first_us")
    ed_floor_ns = (
        ed_floor * 1000
        if ed_floor is not None
        else micro("verify EdDSA", "raw cryptography Ed25519")
    )
    out.append(
        _ratio_target(
            "First-seen EdDSA token vs raw cryptography Ed25519 verify",
            "JWT EdDSA authenticate()"
            if ed_first is not None
            else "satchel.jose.claims.verify EdDSA",
            ed_ns,
            ed_floor_ns,
            1.2,
            at_most=True,
        )
    )

    baselines = {
        "fastapi": "FastAPI (no auth)",
        "starlette": "Starlette (no auth)",
        "asgi": "raw ASGI (no auth)",
    }
    for config in CONFIGS:
        frameworks = ["fastapi"] + (["starlette", "asgi"] if config.key == FRAMEWORK_CONFIG else [])
        for framework in frameworks:
            app = _app_name(config, framework)
            out.append(
                _ratio_target(
                    "Protected route vs the same framework unauthenticated (req/s)",
                    app,
                    _e2e_best(results, app),
                    _e2e_best(results, baselines[framework]),
                    0.85 if framework == "fastapi" else 0.9,
                    at_most=False,
                )
            )

    peers = {
        "jwt-hs256": ("fastapi-users JWT", 10.0),
        "jwt-eddsa": ("fastapi-users JWT", 10.0),
        "hybrid": ("fastapi-users JWT", 10.0),
        "session-redis-cache": ("fastapi-users Redis", 10.0),
        "session-redis": ("fastapi-users Redis", 5.0),
    }
    for config in CONFIGS:
        if config.key not in peers:
            continue
        peer, factor = peers[config.key]
        app = _app_name(config)
        out.append(
            _ratio_target(
                f"vs {peer} (req/s)",
                app,
                _e2e_best(results, app),
                _e2e_best(results, peer),
                factor,
                at_most=False,
            )
        )
    hybrid = next(c for c in CONFIGS if c.key == "hybrid")
    jwt_same_alg = next(c for c in CONFIGS if c.key == "jwt-eddsa")
    out.append(
        _ratio_target(
            "Hybrid within 10 % of pure JWT (req/s, same algorithm)",
            hybrid.label,
            _e2e_best(results, _app_name(hybrid)),
            _e2e_best(results, _app_name(jwt_same_alg)),
            0.9,
            at_most=False,
        )
    )

    for key in PUSHED:
        config = next(c for c in CONFIGS if c.key == key)
        reads = column.get(config.label, {}).get("store_reads_per_request")
        out.append(
            Target(
                "Store reads per authenticated request, steady state",
                config.label,
                "—" if reads is None else f"{reads:g}",
                "0",
                None if reads is None else reads == 0,
                "" if not reads else f"{reads:g} reads per request",
            )
        )

    for config in CONFIGS:
        if config.key not in PUSHED:
            continue
        rev = results.revocation.get(config.label)
        p99 = rev.get("p99_ms") if rev else None
        out.append(
            Target(
                "Revocation visible on 3 processes, p99",
                config.label,
                "—" if p99 is None else f"{p99:.2f} ms",
                "≤ 10 ms",
                None if p99 is None else p99 <= 10,
                "" if p99 is None or p99 <= 10 else f"{p99 / 10:.1f}× over",
            )
        )

    scale_note = "" if not results.quick else " (quick run: fewer sessions)"
    redis = results.scale.get("Redis", {})
    per = redis.get("bytes_per_session")
    out.append(
        Target(
            "Redis memory per session at 1 M sessions" + scale_note,
            f"{redis.get('sessions', 0):,} sessions" if redis else "Redis store",
            "—" if per is None else f"{per:.0f} B",
            "≤ 300 B",
            None if per is None else per <= 300,
            "" if per is None or per <= 300 else f"{per - 300:.0f} B over",
        )
    )
    sqlite = results.scale.get("SQLite", {})
    p99 = sqlite.get("lookup", {}).get("p99_us")
    out.append(
        Target(
            "SQLite lookup p99 at 1 M sessions" + scale_note,
            f"{sqlite.get('sessions', 0):,} sessions" if sqlite else "SQLite store",
            "—" if p99 is None else f"{p99:.1f} µs",
            "≤ 50 µs",
            None if p99 is None else p99 <= 50,
            "" if p99 is None or p99 <= 50 else f"{p99 - 50:.1f} µs over",
        )
    )
    out.append(_login_target(results))
    out.append(_metrics_target(results))
    out.extend(_framework_targets(results))
    return out


def _framework_targets(results: Results) -> list[Target]:
    """The frameworks table's targets (req/s ratios, higher is better)."""
    out = []
    for goal in frameworks_report.goals(results):
        if goal.limit is not None:
            target = _ratio_target(
                goal.name, goal.subject, goal.value, goal.ref, goal.limit, at_most=False
            )
        else:  # no target in the issue: the ratio is shown, not judged
            measured = "—" if not goal.value or not goal.ref else f"{goal.value / goal.ref:.2f}×"
            target = Target(goal.name, goal.subject, measured, "shown only", None)
        out.append(target)
    return out


def _metrics_target(results: Results) -> Target:
    cost = ops_micro.metrics_cost_ns(results)
    return Target(
        "metrics on: cost on the request path (in-process)",
        "store-call observer × 2 calls of an uncached request (a cached one makes none)",
        "—" if cost is None else f"{cost / 1000:.2f} µs",
        "≤ 1 µs",
        None if cost is None else cost <= 1000,
        "" if cost is None or cost <= 1000 else f"{(cost - 1000) / 1000:.2f} µs over",
    )


def _login_target(results: Results) -> Target:
    """Login against the bare hash (the issue's target), with the threaded floor beside it.

    satchel runs argon2 in a worker thread, so a login also pays the hop to that thread and
    back; the note shows the ratio against the verify making the same hop, which is the part
    of the gap that is satchel's own work (store reads and writes, session, audit).
    """
    micro = results.micro_ns
    login = micro("login", LOGIN_SATCHEL)
    bare = micro("login", LOGIN_FLOOR)
    threaded = micro("login", LOGIN_THREADED_FLOOR)
    target = _ratio_target(
        "Login vs the argon2 hash alone", LOGIN_SATCHEL, login, bare, 1.05, at_most=True
    )
    if login is not None and threaded:
        target.note = (
            f"{login / threaded:.2f}× the verify in a worker thread ({us(threaded)}; "
            f"bare {us(bare)}, login {us(login)})"
        )
        if bare:
            target.note += f"; the thread hop alone is {threaded / bare:.2f}× the bare hash"
    return target


# --- sections ---------------------------------------------------------------------------------


def _environment(results: Results) -> str:
    env = results.environment
    lines = [
        f"- Run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(results.started_at))}, "
        f"{'quick' if results.quick else 'full'} mode, {env.get('seconds', 0):.0f} s in all.",
        f"- Machine: {env.get('cpus')} CPUs ({env.get('cpu_model', 'unknown CPU')}), "
        f"{env.get('platform')}, Python {env.get('python')}. Shared machine: figures are "
        "indicative, ratios within one table come from the same run.",
        "- Libraries: "
        + ", ".join(f"{name} {version}" for name, version in env.get("versions", {}).items()),
    ]
    return "\n".join(lines)


def _targets_section(targets: list[Target]) -> str:
    rows = [[t.name, t.subject, t.measured, t.limit, mark(t.met), t.gap] for t in targets]
    header = ["Target", "Subject", "Measured", "Goal", "Status", "Gap"]
    if any(t.note for t in targets):
        header.append("Note")
        for row, t in zip(rows, targets, strict=True):
            row.append(t.note)
    met = sum(1 for t in targets if t.met)
    missed = sum(1 for t in targets if t.met is False)
    absent = sum(1 for t in targets if t.met is None)
    summary = f"{met} met, {missed} not met, {absent} not measured in this run."
    return summary + "\n\n" + table(header, rows)


def _seed_table(results: Results) -> str:
    labels = [c.label for c in CONFIGS]
    columns = [results.table.get(label, {}) for label in labels]

    def cells(fn: Any) -> list[str]:
        out = []
        for config, data in zip(CONFIGS, columns, strict=True):
            try:
                out.append(fn(config, data))
            except (KeyError, TypeError, ValueError):
                out.append("—")
        return out

    def reads(value: float) -> str:
        return f"{value:g}"

    def revocation(config: Config, data: dict[str, Any]) -> str:
        rev = results.revocation.get(config.label)
        if not rev and config.strategy == "session" and not config.cache:
            # Nothing to propagate: without the cache every request reads the store.
            return "next request (no cache: every request reads the store)"
        if not rev:
            return "not measured in this run"
        return f"{rev['p50_ms']:.2f} / {rev['p99_ms']:.2f} ms"

    def processes(config: Config, data: dict[str, Any]) -> str:
        rev = results.revocation.get(config.label)
        if rev and rev.get("note"):
            return str(rev["note"])
        bus = data.get("bus", "")
        if config.strategy == "jwt":
            if bus in ("", "NullBus"):
                return "each process verifies alone; no revocation before expiry"
            return f"each process verifies alone; user-wide revocations pushed ({bus})"
        if bus in ("", "NullBus"):
            return "shared store read on every request (no cross-process bus)"
        return f"shared store; revocations pushed to every process ({bus})"

    rows = [
        ["Where the state lives", *cells(lambda c, d: c.state)],
        [
            "Bytes the credential adds to each request (bearer)",
            *cells(lambda c, d: f"{d['credential_bytes']} B"),
        ],
        [
            "Store reads per authenticated request (steady / first seen)",
            *cells(
                lambda c, d: (
                    f"{reads(d['store_reads_per_request'])} / {reads(d['store_reads_first_seen'])}"
                )
            ),
        ],
        ["authenticate(), repeated", *cells(lambda c, d: us(d["authenticate_repeated_us"] * 1000))],
        ["authenticate(), first seen", *cells(lambda c, d: us(d["authenticate_first_us"] * 1000))],
        [
            "DPoP proof check added to a request (signature + replay-cache insert)",
            *cells(lambda c, d: us(d["dpop_extra_us"] * 1000)),
        ],
        [
            "GET /me req/s (FastAPI, best pass)",
            *cells(lambda c, d: f"{_e2e_best(results, _app_name(c)):,.0f}"),
        ],
        ["Revoke → refused on another process (p50 / p99)", *cells(revocation)],
        ["Across 3 server processes", *cells(processes)],
    ]
    intro = (
        "One column per satchel configuration, each built with `satchel.config.build.build_auth`. "
        "Store reads come from the strategy's `Counters` after 200 warm-up "
        "calls, over 1,000 authentications of one credential (steady) and over every "
        "first-seen credential. Credential bytes: the whole `Authorization: Bearer …` header "
        "line including CRLF."
    )
    text = intro + "\n\n" + table(["", *labels], rows)
    if results.revocation:
        text += (
            "\n\nRevocation across 3 server processes, per deployment measured "
            "(`benchmarks/revocation.py`):\n\n"
            + table(
                ["Deployment", "p50", "p99", "max", "Samples", "How"],
                [
                    [
                        label,
                        f"{rev.get('p50_ms', math.nan):.2f} ms",
                        f"{rev.get('p99_ms', math.nan):.2f} ms",
                        f"{rev.get('max_ms', math.nan):.2f} ms",
                        str(rev.get("samples", "")),
                        str(rev.get("note", "")),
                    ]
                    for label, rev in results.revocation.items()
                ],
            )
        )
    return text


def _micro_section(results: Results) -> str:
    groups: dict[str, list[MicroRow]] = {}
    for row in results.micro:
        groups.setdefault(row.group, []).append(row)
    parts = [
        "Best of N repeats of a calibrated loop (timeit's method) and the median repeat; "
        "contenders of one group are timed round-robin so machine load hits them alike. "
        "“× fastest” compares with the fastest row of the group."
    ]
    for group, rows in groups.items():
        fastest = min(r.best_ns for r in rows)
        body = [
            [
                r.name,
                r.kind,
                us(r.best_ns),
                us(r.median_ns),
                f"{r.best_ns / fastest:.2f}×" if fastest else "—",
                r.note,
            ]
            for r in rows
        ]
        parts.append(
            f"### {group}\n\n"
            + table(["Implementation", "Kind", "Best", "Median", "× fastest", "Note"], body)
        )
    return "\n\n".join(parts)


def _e2e_section(results: Results) -> str:
    if not results.e2e:
        return "No end-to-end figures in this run (see below)."
    baselines = {r.framework: r for r in results.e2e if r.kind == "baseline" and r.passes}
    rows = []
    for row in results.e2e:
        if not row.passes:
            rows.append([row.app, row.framework, "error", "—", "—", "—", "—", row.error[:80]])
            continue
        best = row.best or {}
        base = baselines.get(row.framework)
        base_rps = base.best["rps"] if base and base.best else None
        share = f"{best['rps'] / base_rps:.0%}" if base_rps and row is not base else ""
        rows.append(
            [
                row.app,
                row.framework,
                " / ".join(f"{p['rps']:,.0f}" for p in row.passes),
                f"{best['rps']:,.0f}",
                lat(best.get("p50_us")),
                lat(best.get("p99_us")),
                f"{row.credential_bytes} B" if row.credential_bytes else "—",
                share,
            ]
        )
    return (
        "uvicorn, 1 worker (uvloop + httptools), `wrk --latency` on loopback, "
        "`GET /me` with a logged-in credential prepared through each app's own API. Every "
        "pass must answer only 2xx. “vs no auth” is the share of the same framework's "
        "unauthenticated route. The raw ASGI baseline and satchel's raw ASGI endpoint do the "
        "same response work (one `json.dumps` per request). The `satchel serve` rows are the "
        "reference server as users start it (`GET /auth/me`, every route and page installed, "
        "the default transports), without and with uvicorn's access log.\n\n"
        + table(
            [
                "App",
                "Framework",
                "req/s per pass",
                "Best req/s",
                "p50",
                "p99",
                "Credential",
                "vs no auth",
            ],
            rows,
        )
    )


def _scale_section(results: Results) -> str:
    if not results.scale:
        return "No scale figures in this run (see below)."
    rows = []
    for backend, data in results.scale.items():
        if data.get("error") and not data.get("sessions"):
            rows.append([backend, "failed", "—", "—", "—", "—", str(data["error"])[:80]])
            continue
        lookup = data.get("lookup", {})
        size = ""
        if "bytes_per_session" in data:
            size = f"{data['bytes_per_session']:.0f} B memory"
        elif "file_bytes_per_session" in data:
            size = f"{data['file_bytes_per_session']:.0f} B on disk"
        written = f"{data.get('writes_per_second', 0):,}/s"
        if data.get("bulk_loaded"):
            written += f" (+{data['bulk_loaded']:,} by COPY)"
        rows.append(
            [
                backend,
                f"{data.get('sessions', 0):,}",
                written,
                size,
                lat(lookup.get("p50_us")),
                lat(lookup.get("p99_us")),
                f"{data.get('purge_seconds', 0):.3f} s ({data.get('purged', 0):,})",
            ]
        )
    return (
        "Sessions written through each satchel store (`SessionStore.create`, 10 per user, "
        "10 % expiring early), then single `get` lookups of random live ids and one "
        "`purge_expired` that removes the early 10 %.\n\n"
        + table(
            [
                "Store",
                "Live sessions",
                "Writes",
                "Per session",
                "Lookup p50",
                "Lookup p99",
                "Purge (removed)",
            ],
            rows,
        )
    )


def _notes_section(out_dir: Path | None = None) -> str:
    parts = []
    if out_dir is not None and (out_dir / "hot-path.md").exists():
        parts.append(
            "What was profiled and changed on the per-request path, and what it gained: "
            "[hot-path.md](hot-path.md)."
        )
    if NOTES_FILE.exists():
        parts.append(NOTES_FILE.read_text().strip())
    return "\n\n".join(parts) or (
        "Nothing recorded yet (docs/hot-path.md is linked and benchmarks/NOTES.md included "
        "here when present)."
    )


def _skipped_section(results: Results) -> str:
    if not results.skipped:
        return "Everything was measured."
    return "\n".join(f"- {line}" for line in results.skipped)


def render_markdown(
    results: Results,
    targets: list[Target],
    command: str,
    json_name: str = "benchmarks.json",
    png_name: str = "benchmarks.png",
    out_dir: Path | None = None,
) -> str:
    sections = [
        f"{HEADINGS[0]}\n\nGenerated by `{command}`; do not edit by hand. Raw figures: "
        f"`{json_name}`, chart: `{png_name}`.\n\n" + _environment(results),
        f"{HEADINGS[1]}\n\n" + _targets_section(targets),
        f"{HEADINGS[2]}\n\n" + _seed_table(results),
        f"{HEADINGS[3]}\n\n" + _micro_section(results),
        f"{HEADINGS[4]}\n\n" + _e2e_section(results),
        f"{HEADINGS[5]}\n\n" + frameworks_report.section(results),
        f"{HEADINGS[6]}\n\n" + _scale_section(results),
        f"![benchmark chart]({png_name})",
        f"{HEADINGS[7]}\n\n" + soak.section(results),
        f"{HEADINGS[8]}\n\n" + import_users.section(results),
        f"{HEADINGS[9]}\n\n" + _notes_section(out_dir),
        f"{HEADINGS[10]}\n\n" + _skipped_section(results),
        f"{HEADINGS[11]}\n\n"
        "```\nbash scripts/bootstrap bench   # benchmark-only extra\n"
        "python -m benchmarks            # full run (or: satchel bench)\n"
        "python -m benchmarks --quick    # under a minute, smaller figures\n"
        "python -m benchmarks --soak     # memory soak only (--soak-seconds N, default 180)\n"
        "```\n\n"
        "Services: Redis and PostgreSQL on loopback (`SATCHEL_BENCH_REDIS_URL`, "
        "`SATCHEL_BENCH_DATABASE_URL`, else the test URLs); `wrk` from Debian is installed "
        "when missing.",
    ]
    return "\n\n".join(sections) + "\n"


# --- chart ----------------------------------------------------------------------------------------


def render_chart(results: Results, path: Path) -> None:
    """End-to-end req/s per app and authenticate() per configuration, as one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter

    colours = {"baseline": "#9e9e9e", "peer": "#e07b39", "satchel": "#2a7ab0"}
    e2e: list[E2ERow] = [r for r in results.e2e if r.passes]
    auth_rows = [
        (label, data) for label, data in results.table.items() if "authenticate_repeated_us" in data
    ]
    fig, axes = plt.subplots(1, 2, figsize=(15, max(4.0, 0.38 * max(len(e2e), 6) + 1.5)))
    ax = axes[0]
    if e2e:
        names = [r.app for r in e2e][::-1]
        values = [r.best["rps"] if r.best else 0 for r in e2e][::-1]
        ax.barh(names, values, color=[colours.get(r.kind, "#555") for r in e2e][::-1])
        for y, value in enumerate(values):
            ax.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
        ax.set_xlabel("requests per second (best pass, higher is better)")
    else:
        ax.text(0.5, 0.5, "no end-to-end figures", ha="center", transform=ax.transAxes)
    ax.set_title("GET /me under wrk, uvicorn 1 worker")
    ax = axes[1]
    if auth_rows:
        labels = [label for label, _ in auth_rows][::-1]
        first = [d.get("authenticate_first_us", 0) for _, d in auth_rows][::-1]
        repeated = [d.get("authenticate_repeated_us", 0) for _, d in auth_rows][::-1]
        ys = range(len(labels))
        ax.barh([y + 0.2 for y in ys], first, height=0.4, label="first seen", color="#7fb3d5")
        ax.barh([y - 0.2 for y in ys], repeated, height=0.4, label="repeated", color="#2a7ab0")
        ax.set_yticks(list(ys), labels)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("µs per authenticate() (log scale, lower is better)")
        ax.legend(loc="lower right")
    else:
        ax.text(0.5, 0.5, "no authenticate() figures", ha="center", transform=ax.transAxes)
    ax.set_title("satchel authenticate() per configuration")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# --- entry ----------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    import importlib.metadata
    import os

    versions = {}
    for dist in (
        "satchel",
        "PyJWT",
        "joserfc",
        "cryptography",
        "argon2-cffi",
        "fastapi",
        "starlette",
        "uvicorn",
        "uvloop",
        "fastapi-users",
        "redis",
        "asyncpg",
    ):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    cpu_model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(terse=True),
        "python": platform.python_version(),
        "versions": versions,
    }


def write(results: Results, md_path: Path, json_path: Path, png_path: Path, command: str) -> None:
    """Write the three report files."""
    targets = evaluate_targets(results)
    md_path.parent.mkdir(parents=True, exist_ok=True)
    data = results.to_json()
    data["targets"] = [t.to_json() for t in targets]
    json_path.write_text(json.dumps(data, indent=1, default=str) + "\n")
    try:
        render_chart(results, png_path)
    except Exception as exc:  # a missing matplotlib must not lose the figures
        results.skip("chart", f"{type(exc).__name__}: {exc}")
    md_path.write_text(
        render_markdown(results, targets, command, json_path.name, png_path.name, md_path.parent)
    )


def load(json_path: Path) -> Results:
    """The :class:`Results` of an earlier run, from its JSON file (to re-render a report)."""
    data = json.loads(json_path.read_text())
    results = Results(quick=bool(data["quick"]), started_at=float(data["started_at"]))
    for name in ("environment", "table", "scale", "revocation", "imports", "soak", "durations"):
        setattr(results, name, data.get(name) or {})
    results.skipped = list(data.get("skipped") or [])
    results.micro = [MicroRow(**row) for row in data.get("micro") or []]
    for raw in data.get("e2e") or []:
        results.e2e.append(E2ERow(**{k: v for k, v in raw.items() if k != "best"}))
    for raw in data.get("frameworks") or []:
        results.frameworks.append(E2ERow(**{k: v for k, v in raw.items() if k != "best"}))
    return results
