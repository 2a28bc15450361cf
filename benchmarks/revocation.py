"""Revocation-to-refusal latency across three server processes (the seed table's last rows).

The measurement itself belongs to the scale-out work (pushed revocation between processes):
start three ``satchel serve`` processes per configuration on loopback ports sharing the
stores, log in on A, revoke on C, and time from the revoke call returning until A and B
refuse the credential; at least 200 revocations, p50/p99 in milliseconds.

Contract with the report: fill ``results.revocation[config.label]`` with
``{"p50_ms": float, "p99_ms": float, "samples": int, "processes": 3, "note": str}``.
Configurations left out are shown as "not measured" in the comparison table and the
target "revocation visible on 3 processes: p99 <= 10 ms" is reported as not measured.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.common import Results, Settings

Progress = Callable[[str], None]


def run(settings: Settings, results: Results, progress: Progress) -> None:
    """Measure revocation propagation per configuration (not implemented yet)."""
    results.skip(
        "revocation latency across 3 processes",
        "not measured yet: the multi-process propagation benchmark is pending "
        "(benchmarks/revocation.py describes the slot it fills)",
    )
