"""End to end: each app under uvicorn (one worker) loaded by ``wrk`` on ``GET /me``.

Every app is started as its own subprocess on a free loopback port, given a logged-in
credential prepared through its own API beforehand, checked to answer 200 with it, and only
then loaded. A pass whose responses were not all 2xx is reported as an error, not as a figure.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks import satchel_side
from benchmarks.common import BenchError, E2ERow, Results, Settings
from benchmarks.specs import AppSpec, Credential

Progress = Callable[[str], None]
REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"  # only ever loopback


# --- credential preparation ------------------------------------------------------------------


def _pyjwt_bearer(base_url: str, spec: AppSpec, settings: Settings) -> Credential:
    import jwt

    from benchmarks.apps.peers import USER

    token = jwt.encode(
        {"sub": USER["id"], "iat": int(time.time()), "exp": int(time.time()) + 3600},
        spec.env["BENCH_SECRET"],
        algorithm="HS256",
    )
    return Credential((("Authorization", f"Bearer {token}"),))


def _session_cookie(base_url: str, spec: AppSpec, settings: Settings) -> Credential:
    import httpx

    response = httpx.post(f"{base_url}/login", timeout=10)
    response.raise_for_status()
    cookie = response.cookies.get("session")
    if not cookie:
        raise BenchError("SessionMiddleware login set no cookie")
    return Credential((("Cookie", f"session={cookie}"),))


def _fastapi_users_login(base_url: str, spec: AppSpec, settings: Settings) -> Credential:
    import httpx

    email = f"bench-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(16)
    with httpx.Client(base_url=base_url, timeout=30) as client:
        account = {"email": email, "password": password}
        client.post("/auth/register", json=account).raise_for_status()
        response = client.post("/auth/login", data={"username": email, "password": password})
        response.raise_for_status()
        token = response.json()["access_token"]
    return Credential((("Authorization", f"Bearer {token}"),))


def _missing(*modules: str) -> str:
    import importlib.util

    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"not installed: {', '.join(absent)} (bash scripts/bootstrap bench)" if absent else ""


def peer_specs(settings: Settings) -> list[AppSpec]:
    """Baselines and peers, in report order."""
    secret = secrets.token_hex(32)
    common = {"BENCH_SECRET": secret}
    peers = "benchmarks.apps.peers"
    fu = "benchmarks.apps.fastapi_users_app:app"
    fu_missing = _missing("fastapi_users", "fastapi_users_db_sqlalchemy", "aiosqlite")

    def fu_env(strategy: str) -> dict[str, str]:
        return {
            **common,
            "FU_STRATEGY": strategy,
            "FU_DB": str(settings.workdir / f"fastapi-users-{strategy}.db"),
            "FU_REDIS_URL": settings.redis_url,
            "FU_REDIS_PREFIX": f"{settings.redis_prefix}:fu:",
        }

    return [
        AppSpec("raw ASGI (no auth)", "baseline", "asgi", f"{peers}:raw_asgi", env=common),
        AppSpec(
            "Starlette (no auth)", "baseline", "starlette", f"{peers}:starlette_plain", env=common
        ),
        AppSpec("FastAPI (no auth)", "baseline", "fastapi", f"{peers}:fastapi_plain", env=common),
        AppSpec(
            "Starlette + PyJWT backend",
            "peer",
            "starlette",
            f"{peers}:starlette_pyjwt",
            _pyjwt_bearer,
            env=common,
            in_quick=False,
        ),
        AppSpec(
            "FastAPI + PyJWT dependency",
            "peer",
            "fastapi",
            f"{peers}:fastapi_pyjwt",
            _pyjwt_bearer,
            env=common,
            in_quick=False,
        ),
        AppSpec(
            "Starlette SessionMiddleware",
            "peer",
            "starlette",
            f"{peers}:starlette_session",
            _session_cookie,
            env=common,
            unavailable=_missing("itsdangerous"),
            in_quick=False,
        ),
        AppSpec(
            "fastapi-users JWT",
            "peer",
            "fastapi",
            fu,
            _fastapi_users_login,
            env=fu_env("jwt"),
            unavailable=fu_missing,
            in_quick=False,
        ),
        AppSpec(
            "fastapi-users Redis",
            "peer",
            "fastapi",
            fu,
            _fastapi_users_login,
            env=fu_env("redis"),
            unavailable=fu_missing,
            in_quick=False,
        ),
        AppSpec(
            "fastapi-users database (SQLite)",
            "peer",
            "fastapi",
            fu,
            _fastapi_users_login,
            env=fu_env("database"),
            unavailable=fu_missing,
            in_quick=False,
        ),
    ]


# --- processes -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Server:
    """One uvicorn worker serving ``spec`` on a loopback port; always stopped on exit."""

    def __init__(self, spec: AppSpec, settings: Settings) -> None:
        self.spec = spec
        self.port = free_port()
        self.base_url = f"http://{HOST}:{self.port}"
        self.log_path = settings.workdir / f"uvicorn-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        import importlib.util

        command = [
            sys.executable,
            "-m",
            "uvicorn",
            self.spec.target,
            "--host",
            HOST,
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
            "--lifespan",
            "on",
        ]
        if importlib.util.find_spec("uvloop"):
            command += ["--loop", "uvloop"]
        if importlib.util.find_spec("httptools"):
            command += ["--http", "httptools"]
        if self.spec.factory:
            command.append("--factory")
        if self.spec.command:
            command = [part.replace("{port}", str(self.port)) for part in self.spec.command]
        env = {**os.environ, **self.spec.env}
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BenchError(f"server exited at startup: {self.log_tail()}")
            try:
                with socket.create_connection((HOST, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise BenchError("server did not start within 30 s")

    def log_tail(self, lines: int = 5) -> str:
        try:
            text = self.log_path.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(text[-lines:])

    def __exit__(self, *exc: object) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --- wrk ---------------------------------------------------------------------------------------

_UNITS = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def _to_us(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not match:
        raise BenchError(f"unreadable wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, float]:
    """req/s, p50/p90/p99 (µs), request and error counts from ``wrk --latency`` output."""
    result: dict[str, float] = {}
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if not rps:
        raise BenchError(f"no Requests/sec in wrk output: {output[-300:]!r}")
    result["rps"] = float(rps.group(1))
    for label, key in (("50", "p50_us"), ("75", "p75_us"), ("90", "p90_us"), ("99", "p99_us")):
        found = re.search(rf"^\s+{label}%\s+(\S+)", output, re.MULTILINE)
        if found:
            result[key] = _to_us(found.group(1))
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s)", output)
    if total:
        result["requests"] = float(total.group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    result["non_2xx"] = float(bad.group(1)) if bad else 0.0
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    result["socket_errors"] = float(sum(int(g) for g in errors.groups())) if errors else 0.0
    return result


def wrk_available() -> str:
    return "" if shutil.which("wrk") else "wrk is not installed (apt-get install -y wrk)"


def ensure_wrk() -> str:
    """Install Debian's wrk when missing (the benchmark setup step); '' when it is there."""
    if not wrk_available():
        return ""
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "install", "-y", "-qq", "wrk"],
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "wrk"],
        ):
            subprocess.run(command, env=env, capture_output=True, timeout=300, check=False)
            if not wrk_available():
                return ""
    return wrk_available()


def run_wrk(url: str, credential: Credential, settings: Settings, seconds: int) -> dict[str, float]:
    command = [
        "wrk",
        f"-t{settings.wrk_threads}",
        f"-c{settings.wrk_connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for name, value in credential.headers:
        command += ["-H", f"{name}: {value}"]
    command.append(url)
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=seconds + 30, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed: {done.stderr.strip()[:200]}")
    return parse_wrk(done.stdout)


def check_authenticated(base_url: str, credential: Credential, path: str = "/me") -> None:
    """One request must succeed with the credential before any load is measured."""
    import httpx

    response = httpx.get(f"{base_url}{path}", headers=dict(credential.headers), timeout=10)
    if response.status_code != 200:
        raise BenchError(f"GET {path} answered {response.status_code} with the prepared credential")


def measure(spec: AppSpec, settings: Settings, passes: int | None = None) -> E2ERow:
    """Start ``spec``, log in, warm up, and run ``passes`` wrk passes (default: configured)."""
    row = E2ERow(app=spec.name, kind=spec.kind, framework=spec.framework)
    credential = Credential()
    if spec.prepare is not None and spec.prepare_before_start:
        credential = spec.prepare("", spec, settings)
    with Server(spec, settings) as server:
        if spec.prepare is not None and not spec.prepare_before_start:
            credential = spec.prepare(server.base_url, spec, settings)
        row.credential_bytes = credential.size
        check_authenticated(server.base_url, credential, spec.path)
        url = f"{server.base_url}{spec.path}"
        if not settings.quick:
            run_wrk(url, credential, settings, 1)  # warm-up, discarded
        for _ in range(settings.wrk_passes if passes is None else passes):
            result = run_wrk(url, credential, settings, settings.wrk_seconds)
            if result["non_2xx"] or result["socket_errors"]:
                raise BenchError(
                    f"{int(result['non_2xx'])} non-2xx responses and "
                    f"{int(result['socket_errors'])} socket errors under load"
                )
            row.passes.append(result)
    return row


def all_specs(settings: Settings, results: Results) -> list[AppSpec]:
    return peer_specs(settings) + satchel_side.e2e_specs(settings, results)


def run(settings: Settings, results: Results, progress: Progress) -> None:
    """Every app, pass by pass: pass 1 of every app, then pass 2 of every app.

    Interleaving the passes spreads load bursts from other work on a shared machine over
    all apps instead of one; the report shows every pass and uses the best. An app that
    cannot run is reported with its reason.
    """
    missing = ensure_wrk()
    if missing:
        results.skip("end to end", missing)
        return
    specs: list[AppSpec] = []
    for spec in all_specs(settings, results):
        if settings.quick and not spec.in_quick:
            results.skip(f"end to end / {spec.name}", "not measured in quick mode")
        elif spec.unavailable:
            results.skip(f"end to end / {spec.name}", spec.unavailable)
        else:
            specs.append(spec)
    rows = {
        spec.name: E2ERow(app=spec.name, kind=spec.kind, framework=spec.framework) for spec in specs
    }
    results.e2e.extend(rows.values())
    for number in range(1, settings.wrk_passes + 1):
        for spec in specs:
            row = rows[spec.name]
            if row.error:
                continue
            progress(f"pass {number}/{settings.wrk_passes}: {spec.name}")
            try:
                measured = measure(spec, settings, passes=1)
            except Exception as exc:
                results.skip(f"end to end / {spec.name}", f"{type(exc).__name__}: {exc}")
                row.error, row.passes = str(exc), []
                continue
            row.passes.extend(measured.passes)
            row.credential_bytes = measured.credential_bytes
