"""The frameworks table: its quick run measures two Flask rows under gunicorn + wrk, and the
report judges the framework targets from the rows of one run."""

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

from benchmarks import frameworks, frameworks_report  # noqa: E402
from benchmarks.common import E2ERow, Results  # noqa: E402
from benchmarks.report import evaluate_targets  # noqa: E402


def row(app: str, rps: float) -> E2ERow:
    return E2ERow(app=app, kind="x", framework="flask", passes=[{"rps": rps}, {"rps": rps / 2}])


def test_targets_are_ratios_of_the_best_passes() -> None:
    results = Results(quick=False, started_at=0.0)
    results.frameworks = [
        row(frameworks.FLASK_PLAIN, 1000),
        row(frameworks.FLASK_JWT, 950),
        row(frameworks.FLASK_JWT_EXTENDED, 1000),
        row(frameworks.DJANGO_DB, 400),
        row(frameworks.DJANGO_SATCHEL, 800),
    ]
    targets = {t.name: t for t in evaluate_targets(results)}
    flask = targets["Flask protected vs Flask unauthenticated"]
    assert (flask.measured, flask.met) == ("0.95×", True)
    peer = targets["Flask + satchel JWT vs Flask-JWT-Extended"]
    assert (peer.measured, peer.met) == ("0.95×", False) and peer.gap == "95% of the goal"
    django = targets["Django + satchel session vs Django's db session backend"]
    assert (django.measured, django.met) == ("2.00×", True)
    # Rows not measured in the run: the target says so instead of guessing.
    session = targets["Flask + satchel session vs Flask-Login + Flask-Session (SQLite)"]
    assert session.met is None and session.measured == "—"
    assert targets["Litestar protected vs Litestar unauthenticated"].limit == "shown only"
    table = frameworks_report.section(results)
    assert "| Flask | Flask + satchel JWT HS256 | x | 950 | 950 / 475 |" in table
    assert "0.95×" in table


def test_every_wsgi_contender_gets_the_same_gunicorn(tmp_path: Path) -> None:
    from benchmarks.common import Settings

    settings = Settings.make(quick=True, workdir=tmp_path)
    specs = frameworks.specs(settings)
    assert {s.framework for s in specs} == {"flask", "django", "litestar"}
    for spec in specs:
        server = frameworks.server_for(spec, settings)
        assert isinstance(server, frameworks.Gunicorn) == (spec.framework != "litestar")
    assert {s.name for s in specs if s.in_quick} == {frameworks.FLASK_PLAIN, frameworks.FLASK_JWT}


QUICK = [sys.executable, "-m", "benchmarks", "--quick", "--only", "frameworks", "--no-progress"]


@pytest.mark.bench
@pytest.mark.slow
def test_quick_run_measures_flask_under_gunicorn(tmp_path: Path, redis_url: str) -> None:
    out = tmp_path / "bench.md"
    done = subprocess.run(
        [*QUICK, "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    data = json.loads(out.with_suffix(".json").read_text())
    measured = {r["app"]: r for r in data["frameworks"]}
    assert set(measured) == {frameworks.FLASK_PLAIN, frameworks.FLASK_JWT}, data["skipped"]
    for app in measured.values():
        assert app["passes"] and app["best"]["rps"] > 0 and not app["error"]
    names = {t["name"]: t for t in data["targets"]}
    assert names["Flask protected vs Flask unauthenticated"]["met"] is not None
    markdown = out.read_text()
    assert "## Frameworks" in markdown and "Flask + satchel JWT HS256" in markdown
