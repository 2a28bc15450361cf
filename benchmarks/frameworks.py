"""The frameworks table: Flask and Django under gunicorn, Litestar under uvicorn, ``GET /me``
loaded by ``wrk`` in the same run.

Each protected route is measured beside the same framework's unauthenticated route and the
peer a user of that framework would pick (Flask-JWT-Extended, Flask-Login + Flask-Session
on SQLite, Django's ``db`` sessions, Litestar's ``JWTAuth``). Every WSGI app gets gunicorn
with the same worker count and worker class (sync, one process per app); every ASGI app one
uvicorn worker; everything on loopback, passes interleaved across apps. ``--quick`` keeps
two Flask rows (a few seconds) to prove the pipeline; the rest is skipped with that note.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, Final

from benchmarks import e2e, satchel_side
from benchmarks.common import BenchError, E2ERow, Results, Settings, run_async
from benchmarks.specs import AppSpec, Credential

Progress = Callable[[str], None]
HOST: Final = e2e.HOST
#: gunicorn for every WSGI contender: same class and count (one process per app).
WSGI_WORKER_CLASS: Final = "sync"
WSGI_WORKERS: Final = 1
#: Passes per app in a full run: gunicorn's sync workers open a connection per request,
#: which makes single passes noisy on a shared machine.
FULL_PASSES: Final = 3
FLASK: Final = "benchmarks.apps.flask_apps"
LITESTAR: Final = "benchmarks.apps.litestar_apps"
DJANGO: Final = "benchmarks.apps.django_app:application"
#: Report names of the rows the targets compare.
FLASK_PLAIN: Final = "Flask (no auth)"
FLASK_JWT: Final = "Flask + satchel JWT HS256"
FLASK_SESSION: Final = "Flask + satchel session (SQLite)"
FLASK_JWT_EXTENDED: Final = "Flask-JWT-Extended"
FLASK_LOGIN: Final = "Flask-Login + Flask-Session (SQLite)"
DJANGO_PLAIN: Final = "Django (no auth)"
DJANGO_DB: Final = "Django auth + db sessions"
DJANGO_SATCHEL: Final = "Django + satchel session (SQLite)"
LITESTAR_PLAIN: Final = "Litestar (no auth)"
LITESTAR_JWT: Final = "Litestar JWTAuth"
LITESTAR_SATCHEL: Final = "Litestar + satchel JWT HS256"
#: What each protected row is compared with: (the unauthenticated row, the peer row).
COMPARED: Final[dict[str, tuple[str, str | None]]] = {
    FLASK_JWT: (FLASK_PLAIN, FLASK_JWT_EXTENDED),
    FLASK_SESSION: (FLASK_PLAIN, FLASK_LOGIN),
    FLASK_JWT_EXTENDED: (FLASK_PLAIN, None),
    FLASK_LOGIN: (FLASK_PLAIN, None),
    DJANGO_SATCHEL: (DJANGO_PLAIN, DJANGO_DB),
    DJANGO_DB: (DJANGO_PLAIN, None),
    LITESTAR_SATCHEL: (LITESTAR_PLAIN, LITESTAR_JWT),
    LITESTAR_JWT: (LITESTAR_PLAIN, None),
}


# --- credentials -----------------------------------------------------------------------------


def _satchel_token(config_key: str) -> Callable[[str, AppSpec, Settings], Credential]:
    """Log in through satchel on the configuration's store before the server starts."""
    config = next(c for c in satchel_side.CONFIGS if c.key == config_key)

    def prepare(base_url: str, spec: AppSpec, settings: Settings) -> Credential:
        token = run_async(satchel_side._prepare_credential(config, settings))
        return Credential((("Authorization", f"Bearer {token}"),))

    return prepare


def _login_token(base_url: str, spec: AppSpec, settings: Settings) -> Credential:
    import httpx

    response = httpx.post(f"{base_url}/login", timeout=30)
    response.raise_for_status()
    body = response.json()
    token = body.get("access_token") or body.get("token")
    return Credential((("Authorization", f"Bearer {token}"),))


def _login_cookie(name: str) -> Callable[[str, AppSpec, Settings], Credential]:
    def prepare(base_url: str, spec: AppSpec, settings: Settings) -> Credential:
        import httpx

        response = httpx.post(f"{base_url}/login", timeout=30)
        response.raise_for_status()
        value = response.cookies.get(name)
        if not value:
            raise BenchError(f"the login set no {name!r} cookie")
        return Credential((("Cookie", f"{name}={value}"),))

    return prepare


def _missing(*modules: str) -> str:
    import importlib.util

    absent = []
    for module in modules:
        try:
            found = importlib.util.find_spec(module) is not None
        except ImportError:  # a parent package is missing
            found = False
        if not found:
            absent.append(module)
    return f"not installed: {', '.join(absent)} (bash scripts/bootstrap bench)" if absent else ""


def specs(settings: Settings) -> list[AppSpec]:
    """Every row of the table, in report order."""
    secret = secrets.token_hex(32)
    common = {"BENCH_SECRET": secret}
    jwt_env = next(c for c in satchel_side.CONFIGS if c.key == "jwt-hs256").env(settings)
    session_env = next(c for c in satchel_side.CONFIGS if c.key == "session-sqlite").env(settings)
    flask_missing = _missing("flask", "gunicorn")
    django_satchel = _missing("django", "gunicorn", "satchel.integrations.django")

    def db(name: str) -> str:
        return str(settings.workdir / f"{name}.db")

    return [
        AppSpec(
            FLASK_PLAIN,
            "baseline",
            "flask",
            f"{FLASK}:plain()",
            env=common,
            unavailable=flask_missing,
        ),
        AppSpec(
            FLASK_JWT,
            "satchel",
            "flask",
            f"{FLASK}:satchel()",
            _satchel_token("jwt-hs256"),
            env={**common, **jwt_env},
            prepare_before_start=True,
            unavailable=flask_missing or _missing("satchel.integrations.flask"),
        ),
        AppSpec(
            FLASK_JWT_EXTENDED,
            "peer",
            "flask",
            f"{FLASK}:jwt_extended()",
            _login_token,
            env=common,
            in_quick=False,
            unavailable=flask_missing or _missing("flask_jwt_extended"),
        ),
        AppSpec(
            FLASK_SESSION,
            "satchel",
            "flask",
            f"{FLASK}:satchel()",
            _satchel_token("session-sqlite"),
            env={**common, **session_env},
            prepare_before_start=True,
            in_quick=False,
            unavailable=flask_missing or _missing("satchel.integrations.flask"),
        ),
        AppSpec(
            FLASK_LOGIN,
            "peer",
            "flask",
            f"{FLASK}:login_session()",
            _login_cookie("session"),
            env={**common, "BENCH_DB": db("flask-session")},
            in_quick=False,
            unavailable=flask_missing
            or _missing("flask_login", "flask_session", "flask_sqlalchemy"),
        ),
        AppSpec(
            DJANGO_PLAIN,
            "baseline",
            "django",
            DJANGO,
            env={**common, "BENCH_DJANGO": "none", "BENCH_DB": db("django-none")},
            in_quick=False,
            unavailable=_missing("django", "gunicorn"),
        ),
        AppSpec(
            DJANGO_DB,
            "peer",
            "django",
            DJANGO,
            _login_cookie("sessionid"),
            env={**common, "BENCH_DJANGO": "db", "BENCH_DB": db("django-db")},
            in_quick=False,
            unavailable=_missing("django", "gunicorn"),
        ),
        AppSpec(
            DJANGO_SATCHEL,
            "satchel",
            "django",
            DJANGO,
            _satchel_token("session-sqlite"),
            env={
                **common,
                **session_env,
                "BENCH_DJANGO": "satchel",
                "BENCH_DB": db("django-satchel"),
            },
            prepare_before_start=True,
            in_quick=False,
            unavailable=django_satchel,
        ),
        AppSpec(
            LITESTAR_PLAIN,
            "baseline",
            "litestar",
            f"{LITESTAR}:plain",
            env=common,
            in_quick=False,
            unavailable=_missing("litestar"),
        ),
        AppSpec(
            LITESTAR_JWT,
            "peer",
            "litestar",
            f"{LITESTAR}:jwt_peer",
            _login_token,
            env=common,
            in_quick=False,
            unavailable=_missing("litestar"),
        ),
        AppSpec(
            LITESTAR_SATCHEL,
            "satchel",
            "litestar",
            f"{LITESTAR}:satchel",
            _satchel_token("jwt-hs256"),
            env={**common, **jwt_env},
            factory=True,
            prepare_before_start=True,
            in_quick=False,
            unavailable=_missing("litestar"),
        ),
    ]


# --- gunicorn ------------------------------------------------------------------------------


class Gunicorn(e2e.Server):
    """The WSGI app of ``spec`` under gunicorn on a loopback port; always stopped on exit."""

    def __enter__(self) -> Gunicorn:
        command = [
            sys.executable, "-m", "gunicorn",
            "--workers", str(WSGI_WORKERS),
            "--worker-class", WSGI_WORKER_CLASS,
            "--bind", f"{HOST}:{self.port}",
            "--log-level", "warning",
            "--timeout", "60",
            self.spec.target,
        ]  # fmt: skip
        env = {**os.environ, **self.spec.env}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(e2e.REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=e2e.REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self._wait_listening()
        return self

    def _wait_listening(self) -> None:
        import socket

        assert self.process is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"gunicorn exited at startup: {self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise BenchError("gunicorn did not start within 30 s")

    def __exit__(self, *exc: object) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)  # gunicorn's graceful stop
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def server_for(spec: AppSpec, settings: Settings) -> e2e.Server:
    return e2e.Server(spec, settings) if spec.framework == "litestar" else Gunicorn(spec, settings)


def measure(spec: AppSpec, settings: Settings) -> dict[str, float]:
    """Start ``spec``, log in, warm up, and run one wrk pass on ``GET /me``."""
    credential = Credential()
    if spec.prepare is not None and spec.prepare_before_start:
        credential = spec.prepare("", spec, settings)
    with server_for(spec, settings) as server:
        if spec.prepare is not None and not spec.prepare_before_start:
            credential = spec.prepare(server.base_url, spec, settings)
        e2e.check_authenticated(server.base_url, credential)
        url = f"{server.base_url}/me"
        if not settings.quick:
            e2e.run_wrk(url, credential, settings, 1)  # warm-up, discarded
        result = e2e.run_wrk(url, credential, settings, settings.wrk_seconds)
        if result["non_2xx"] or result["socket_errors"]:
            raise BenchError(
                f"{int(result['non_2xx'])} non-2xx responses and "
                f"{int(result['socket_errors'])} socket errors under load"
            )
        result["credential_bytes"] = float(credential.size)
        return result


def run(settings: Settings, results: Results, progress: Progress) -> None:
    """Every app, pass by pass (pass 1 of each, then pass 2 of each), as the e2e phase."""
    missing = e2e.ensure_wrk()
    if missing:
        results.skip("frameworks", missing)
        return
    chosen: list[AppSpec] = []
    for spec in specs(settings):
        if settings.quick and not spec.in_quick:
            results.skip(f"frameworks / {spec.name}", "full runs only (--quick keeps two rows)")
        elif spec.unavailable:
            results.skip(f"frameworks / {spec.name}", spec.unavailable)
        else:
            chosen.append(spec)
    rows = {s.name: E2ERow(app=s.name, kind=s.kind, framework=s.framework) for s in chosen}
    results.frameworks.extend(rows.values())
    load: dict[str, float] = {"start": os.getloadavg()[0]}
    results.environment["frameworks_load"] = load
    passes = settings.wrk_passes if settings.quick else max(settings.wrk_passes, FULL_PASSES)
    for number in range(1, passes + 1):
        for spec in chosen:
            row = rows[spec.name]
            if row.error:
                continue
            progress(f"pass {number}/{passes}: {spec.name}")
            try:
                measured: dict[str, Any] = measure(spec, settings)
            except Exception as exc:
                results.skip(f"frameworks / {spec.name}", f"{type(exc).__name__}: {exc}")
                row.error, row.passes = str(exc), []
                continue
            row.credential_bytes = int(measured.pop("credential_bytes"))
            row.passes.append(measured)
    load["end"] = os.getloadavg()[0]
