"""Command line and orchestration: phases in order, Rich progress, report files."""

from __future__ import annotations

import argparse
import shlex
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.common import BenchError, Results, Settings, stopwatch

Phase = Callable[[Settings, Results, Callable[[str], None]], None]
PHASES = ("micro", "e2e", "frameworks", "revocation", "scale", "import", "soak")
DEFAULT_SOAK_SECONDS = 180.0


def _phases() -> dict[str, Phase]:
    from benchmarks import e2e, frameworks, import_users, micro, revocation, scale, soak

    return {
        "micro": micro.run,
        "e2e": e2e.run,
        "frameworks": frameworks.run,
        "revocation": revocation.run,
        "scale": scale.run,
        "import": import_users.run,
        "soak": soak.run,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure satchel against its peers and write docs/benchmarks.md.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="small, fast run (under a minute); figures indicative"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("docs/benchmarks.md"),
        help="Markdown report path; the .json and .png are written next to it",
    )
    parser.add_argument(
        "--only",
        choices=PHASES,
        action="append",
        help="run only this phase (repeatable); the report still has every section",
    )
    parser.add_argument(
        "--soak",
        action="store_true",
        help="run only the memory soak (RSS per minute under load with steady logins)",
    )
    parser.add_argument(
        "--soak-seconds",
        type=float,
        metavar="SECONDS",
        help=f"soak length (default {DEFAULT_SOAK_SECONDS:g} with --soak, 120 in a full run, "
        "none in quick mode)",
    )
    parser.add_argument("--no-progress", action="store_true", help="plain log lines instead")
    parser.add_argument(
        "--from-json",
        type=Path,
        metavar="PATH",
        help="measure nothing: re-render the report from an earlier run's JSON",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out: Path = args.out
    json_path, png_path = out.with_suffix(".json"), out.with_suffix(".png")
    command = "python -m benchmarks" + (" " + shlex.join(list(argv)) if argv else "")
    if args.from_json is not None:
        from benchmarks import report

        try:
            results = report.load(args.from_json)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"benchmarks: cannot read {args.from_json}: {exc}", file=sys.stderr)
            return 2
        command = str(results.environment.get("command") or command)
        report.write(results, out, json_path, png_path, command)
        print(f"benchmarks: re-rendered {out} from {args.from_json}", file=sys.stderr)
        return 0
    with tempfile.TemporaryDirectory(prefix="satchel-bench-") as tmp:
        try:
            soak_seconds = args.soak_seconds
            if args.soak and soak_seconds is None:
                soak_seconds = DEFAULT_SOAK_SECONDS
            if soak_seconds is not None and soak_seconds < 0:
                raise BenchError("--soak-seconds must not be negative")
            settings = Settings.make(quick=args.quick, workdir=Path(tmp), soak_seconds=soak_seconds)
        except BenchError as exc:
            print(f"benchmarks: {exc}", file=sys.stderr)
            return 2
        results = Results(quick=args.quick, started_at=time.time())
        from benchmarks import report

        results.environment = report.environment()
        results.environment["command"] = command
        only = ["soak", *(args.only or ())] if args.soak else args.only
        selected = [p for p in PHASES if not only or p in only]
        started = time.perf_counter()
        try:
            _run_phases(settings, results, selected, plain=args.no_progress)
        finally:
            from benchmarks.satchel_side import cleanup

            cleanup(settings)
        results.environment["seconds"] = time.perf_counter() - started
        report.write(results, out, json_path, png_path, command)
    print(f"benchmarks: wrote {out}, {json_path.name}, {png_path.name}", file=sys.stderr)
    return 0


def _run_phases(settings: Settings, results: Results, selected: list[str], *, plain: bool) -> None:
    phases = _phases()
    if plain or not sys.stderr.isatty():
        for name in selected:

            def log(message: str, name: str = name) -> None:
                print(f"[{name}] {message}", file=sys.stderr, flush=True)

            log("start")
            with stopwatch(results, name):
                phases[name](settings, results, log)
        return

    from rich.console import Console
    from rich.progress import (
        BarColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.fields[phase]:<10}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total} phases"),
        TimeElapsedColumn(),
        TextColumn("{task.description}"),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task("", total=len(selected), phase="")
        for name in selected:
            progress.update(task, phase=name, description="starting")

            def update(message: str) -> None:
                progress.update(task, description=message)

            with stopwatch(results, name):
                phases[name](settings, results, update)
            progress.advance(task)
        progress.update(task, phase="done", description="writing the report")
