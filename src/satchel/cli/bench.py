"""``satchel bench``: run the benchmark harness of the source checkout.

The benchmarks live beside ``src/`` (they are not part of the installed package), so the
command works from an editable install of a clone. Its options are declared here, so
``satchel bench --help`` works anywhere, and passed on to ``benchmarks.main``.
"""

from __future__ import annotations

import enum
import importlib
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer

from satchel.cli.app import EXIT_USAGE, Command, app, describe, fail


class Phase(enum.StrEnum):
    """The harness's phases, in the order it runs them (``PHASES`` of benchmarks/runner.py)."""

    MICRO = "micro"
    E2E = "e2e"
    REVOCATION = "revocation"
    SCALE = "scale"


DEFAULT_OUT = Path("docs/benchmarks.md")


def checkout() -> Path | None:
    """The source checkout this package runs from, if it has the benchmarks."""
    for folder in Path(__file__).resolve().parents:
        if (folder / "benchmarks" / "__init__.py").is_file() and (
            folder / "pyproject.toml"
        ).is_file():
            return folder
    return None


def benchmarks_main() -> Callable[[Sequence[str]], int]:
    """``benchmarks.main`` from the checkout, or a clear usage error."""
    folder = checkout()
    if folder is not None and str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    try:
        # Imported by name: the benchmarks are not part of the typed package.
        bench_main: Callable[[Sequence[str]], int] = importlib.import_module("benchmarks").main
    except ImportError as exc:
        fail(
            "satchel bench runs from a source checkout with the benchmark extra installed "
            f"(bash scripts/bootstrap bench): {describe(exc)}",
            EXIT_USAGE,
        )
    return bench_main


@app.command(cls=Command)
def bench(
    quick: Annotated[
        bool,
        typer.Option("--quick", help="A small, fast run (under a minute); figures indicative."),
    ] = False,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            metavar="PATH",
            help="Markdown report to write; the .json and .png are written next to it.",
        ),
    ] = DEFAULT_OUT,
    only: Annotated[
        list[Phase] | None,
        typer.Option(
            "--only",
            metavar="micro|e2e|revocation|scale",
            help="Run only this phase (repeat for several); the report still has every section.",
            show_default=False,
        ),
    ] = None,
    soak: Annotated[
        bool,
        typer.Option(
            "--soak",
            help="Run only the memory soak: RSS per minute of a loaded server with steady "
            "logins, and whether it is flat after warm-up.",
        ),
    ] = False,
    soak_seconds: Annotated[
        float | None,
        typer.Option(
            "--soak-seconds",
            metavar="SECONDS",
            min=0,
            help="Soak length (default 180 with --soak, 120 in a full run, none in quick mode).",
            show_default=False,
        ),
    ] = None,
    no_progress: Annotated[
        bool, typer.Option("--no-progress", help="Plain log lines instead of progress bars.")
    ] = False,
    from_json: Annotated[
        Path | None,
        typer.Option(
            "--from-json",
            metavar="PATH",
            help="Measure nothing: re-render the report from an earlier run's JSON.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run the benchmarks and write docs/benchmarks.md (from a source checkout)."""
    # Only what differs from the harness's defaults, so its report quotes the command as typed.
    argv = [] if out == DEFAULT_OUT else ["--out", str(out)]
    if quick:
        argv.append("--quick")
    for phase in only or ():
        argv += ["--only", phase.value]
    if soak:
        argv.append("--soak")
    if soak_seconds is not None:
        argv += ["--soak-seconds", f"{soak_seconds:g}"]
    if no_progress:
        argv.append("--no-progress")
    if from_json is not None:
        argv += ["--from-json", str(from_json)]
    raise typer.Exit(benchmarks_main()(argv))
