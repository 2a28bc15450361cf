"""Real processes on one Redis: ``satchel serve`` (FastAPI), the Flask example and the Django
example project under gunicorn (sync and gthread workers, 2 workers each). A credential
issued by any one is accepted by every other, and a revocation on one is refused by all of
them — every worker process of every server, each with its own cache."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from backends import Backends
from procs import SatchelServer, free_port, satchel_cli

pytestmark = [pytest.mark.slow, pytest.mark.redis]

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"
#: Requests spread over new connections until both workers of a server have answered.
MAX_TRIES = 200


class Gunicorn:
    """``gunicorn -w 2 -k <worker>`` serving ``app`` from ``chdir`` on a free port."""

    def __init__(self, name: str, app: str, chdir: Path, worker: str, env: dict[str, str]) -> None:
        self.name = name
        self.port = free_port()
        self.env = {
            **os.environ,
            **env,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
        }
        self.log = tempfile.NamedTemporaryFile(prefix=f"{name}-", suffix=".log", delete=False)  # noqa: SIM115
        threads = ["--threads", "4"] if worker == "gthread" else []
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "-w",
                "2",
                "-k",
                worker,
                *threads,
                "-b",
                f"127.0.0.1:{self.port}",
                "--chdir",
                str(chdir),
                "--graceful-timeout",
                "3",
                app,
            ],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return Path(self.log.name).read_text(errors="replace")[-4000:]

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not become ready:\n{self.output()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()
        with contextlib.suppress(OSError):
            os.unlink(self.log.name)


@pytest.fixture(scope="module", params=["session", "jwt", "hybrid"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    tmp_path = tmp_path_factory.mktemp("frameworks")
    backends = Backends(request, tmp_path)
    backend = backends.fresh("redis")
    env = {
        "SATCHEL_STORE": backend.store,
        "SATCHEL_KEY_PREFIX": str(backend.prefix),
        "SATCHEL_STRATEGY": request.param,
        "SATCHEL_LOG_LEVEL": "warning",
    }
    added = satchel_cli(["users", "add", "alice", "--password-stdin"], env, stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    django_env = {
        **env,
        "SATCHEL_DJANGO_USERS": "satchel",
        "DJANGO_DATABASE": str(tmp_path / "django.db"),
    }
    servers: dict[str, Any] = {}
    try:
        servers["fastapi"] = SatchelServer(env, "fastapi").start()
        for worker in ("sync", "gthread"):
            servers[f"flask-{worker}"] = Gunicorn(
                f"flask-{worker}", "flask_app:app", ROOT / "examples", worker, env
            )
            servers[f"django-{worker}"] = Gunicorn(
                f"django-{worker}",
                "project.wsgi",
                ROOT / "examples" / "django_project",
                worker,
                django_env,
            )
        for server in servers.values():
            server.wait_ready()
        yield servers
    finally:
        for server in servers.values():
            server.stop()
        import asyncio

        asyncio.run(backends.drop())


def _get(url: str, **headers: str) -> httpx.Response:
    # A new connection each time, so the kernel may hand it to either worker.
    return httpx.get(url, headers={"Connection": "close", **headers}, timeout=15)


def _every_worker(
    base: str, name: str, headers: dict[str, str], expect_user: str | None
) -> set[int]:
    """Ask /public until both workers answered; each must see ``expect_user``."""
    pids: set[int] = set()
    for _ in range(MAX_TRIES):
        body = _get(f"{base}/public", **headers).json()
        assert body["user"] == expect_user, (name, body)
        pids.add(body["pid"])
        if len(pids) == 2:
            return pids
    raise AssertionError(f"{name}: only workers {pids} answered in {MAX_TRIES} requests")


def _accepted_everywhere(servers: dict[str, Any], access: str, user: str | None) -> None:
    headers = {"Authorization": f"Bearer {access}"}
    for name, server in servers.items():
        if name == "fastapi":
            me = _get(f"{server.url}/auth/me", **headers)
            assert me.status_code == (200 if user else 401), (name, me.text)
        else:
            _every_worker(server.url, name, headers, user)


def test_credentials_and_revocations_cross_every_framework(deployment: dict[str, Any]) -> None:
    servers = deployment
    names = list(servers)
    for issuer_name in names:
        issuer = servers[issuer_name]
        reply = httpx.post(
            f"{issuer.url}/auth/token",
            data={"grant_type": "password", "username": "alice", "password": PASSWORD},
            timeout=30,
        )
        assert reply.status_code == 200, (issuer_name, reply.text)
        access = reply.json()["access_token"]
        _accepted_everywhere(servers, access, "alice")  # cached in every worker by now
        # Revoked on the next server in the list: refused by every process, caches included.
        revoker_name = names[(names.index(issuer_name) + 1) % len(names)]
        revoked = httpx.post(
            f"{servers[revoker_name].url}/auth/logout",
            headers={"Authorization": f"Bearer {access}"},
            timeout=10,
        )
        assert revoked.status_code == 204, (revoker_name, revoked.text)
        # Milliseconds on a quiet machine; the bound is for a loaded one (the full suite).
        deadline = time.monotonic() + 5.0
        while True:
            try:
                _accepted_everywhere(servers, access, None)
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)


def test_a_cookie_from_flask_is_a_session_in_django_and_fastapi(deployment: dict[str, Any]) -> None:
    flask, django, fastapi = (
        deployment["flask-gthread"],
        deployment["django-sync"],
        deployment["fastapi"],
    )
    login = httpx.post(
        f"{flask.url}/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"Origin": flask.url},
        timeout=30,
    )
    assert login.status_code == 200, login.text
    cookie = "; ".join(c.split(";", 1)[0] for c in login.headers.get_list("set-cookie"))
    for server in (django, fastapi, flask):
        me = _get(f"{server.url}/auth/me", Cookie=cookie)
        assert me.status_code == 200 and me.json()["transport"] == "cookie", me.text
    # Logging out in Django (same-origin there) ends it for the others.
    out = httpx.post(
        f"{django.url}/auth/logout", headers={"Cookie": cookie, "Origin": django.url}, timeout=10
    )
    assert out.status_code == 204, out.text
    deadline = time.monotonic() + 5.0
    for server in (fastapi, flask):
        while _get(f"{server.url}/auth/me", Cookie=cookie).status_code != 401:
            assert time.monotonic() < deadline, server.url
            time.sleep(0.02)
