"""satchel's benchmark harness: ``python -m benchmarks [--quick]`` (also ``satchel bench``).

Runs micro benchmarks, end-to-end runs under uvicorn + wrk, the scale run and the
seed's comparison table, then writes docs/benchmarks.md, a JSON file of raw results and a
PNG chart. Benchmark-only dependencies live in the ``bench`` extra.
"""

from __future__ import annotations

from collections.abc import Sequence


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmarks with command-line ``argv``; returns the process exit status."""
    from benchmarks.runner import main as run_main

    return run_main(argv)


__all__ = ["main"]
