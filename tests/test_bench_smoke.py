"""The benchmark harness runs end to end in quick mode and writes its three report files.

Timings are not asserted (they depend on the machine); the report's structure is. Marked
``bench`` so it can be deselected with ``-m "not bench"``; it runs in the normal suite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # benchmarks/ is a top-level package beside src/
    sys.path.insert(0, str(ROOT))

from benchmarks.report import HEADINGS  # noqa: E402

pytestmark = [pytest.mark.bench, pytest.mark.slow]


def test_quick_run_writes_report_json_and_chart(tmp_path: Path, redis_url: str) -> None:
    out = tmp_path / "report" / "bench.md"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--no-progress", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]

    markdown = out.read_text()
    for heading in HEADINGS:
        assert f"\n{heading}\n" in f"\n{markdown}", f"missing section {heading!r}"
    # Links point at the files written next to the report, whatever --out was called.
    assert "bench.json" in markdown and "bench.png" in markdown

    data = json.loads(out.with_suffix(".json").read_text())
    assert data["quick"] is True
    assert data["micro"], "no micro benchmark produced a figure"
    assert {"name", "measured", "met"} <= set(data["targets"][0])
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # The report can be re-rendered from the raw JSON alone, with the same verdicts.
    again = tmp_path / "again" / "benchmarks.md"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            "--from-json",
            str(out.with_suffix(".json")),
            "--out",
            str(again),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads(again.with_suffix(".json").read_text())["targets"] == data["targets"]
    assert "## Targets" in again.read_text()


def test_help_names_the_options() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "--quick" in done.stdout and "--out" in done.stdout


def test_refuses_a_non_loopback_service(tmp_path: Path) -> None:
    env = {**os.environ, "SATCHEL_BENCH_REDIS_URL": "redis://192.0.2.10:6379/0"}
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path / "b.md")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert "loopback" in done.stderr
    assert not (tmp_path / "b.md").exists()
