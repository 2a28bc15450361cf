"""The sync-driver benchmark (the figures of docs/architecture.md) runs in quick mode and
prints every row. Timings are not asserted; marked ``bench`` like the harness's smoke test."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.bench, pytest.mark.slow, pytest.mark.redis]


def test_quick_run_prints_every_row(redis_url: str) -> None:
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'src'}:{ROOT}",
        "SATCHEL_BENCH_REDIS_URL": redis_url,
    }
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.sync_driver", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.strip().splitlines()
    for label in (
        "one hop to the loop and back",
        "session: authenticate_cached() (pure)",
        "hybrid: SyncAuth.resolve() (in the thread)",
        "redis miss: a sync driver",
        "sqlite miss: SyncAuth.resolve()",
        "flask test client: with satchel, protected view",
    ):
        assert any(line.startswith(label) for line in lines), (label, done.stdout)
