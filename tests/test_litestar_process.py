"""Litestar under uvicorn and the FastAPI reference server (``satchel serve``), two real
processes on one Redis: a credential issued by one is accepted by the other, and a
revocation on one is refused by the other (pushed over the Redis bus)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import redis

from procs import SatchelServer, free_port, satchel_cli

pytestmark = [pytest.mark.slow, pytest.mark.redis]

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "correct horse battery staple 1"
USER = "alice"
#: Far above the pushed revocation's milliseconds; a refusal that needs longer is a failure.
BOUND = 2.0


class LitestarServer:
    """examples/litestar_app.py under uvicorn on a free loopback port."""

    def __init__(self, env: dict[str, str]) -> None:
        self.port = free_port()
        self.env = {**os.environ, **env}
        self.env["PYTHONPATH"] = os.pathsep.join(
            [str(ROOT / "src"), self.env.get("PYTHONPATH", "")]
        )
        self._log = tempfile.NamedTemporaryFile(prefix="litestar-", suffix=".log", delete=False)  # noqa: SIM115
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LitestarServer:
        command = [sys.executable, "-m", "uvicorn", "--app-dir", str(ROOT / "examples")]
        command += ["litestar_app:app", "--host", "127.0.0.1", "--port", str(self.port)]
        command += ["--log-level", "warning"]
        self.proc = subprocess.Popen(
            command,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"litestar did not become ready:\n{Path(self._log.name).read_text()}")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)


@dataclass
class Pair:
    strategy: str
    fastapi: str
    litestar: str


@pytest.fixture(scope="module", params=["session", "jwt", "hybrid"])
def pair(request: pytest.FixtureRequest, run_id: str, redis_url: str) -> Iterator[Pair]:
    tag = f"ls{run_id}{request.param[0]}"
    env = {
        "SATCHEL_STORE": redis_url,
        "SATCHEL_KEY_PREFIX": tag,
        "SATCHEL_STRATEGY": request.param,
        "SATCHEL_TRANSPORTS": "cookie,bearer",
        "SATCHEL_COOKIE_SECURE": "false",  # plain http on loopback
        "SATCHEL_LOG_LEVEL": "warning",
    }
    fastapi = SatchelServer(env, "fastapi")
    litestar = LitestarServer(env)
    try:
        done = satchel_cli(["users", "add", USER, "--password-stdin"], env, PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        fastapi.start()
        litestar.start()
        fastapi.wait_ready()
        litestar.wait_ready()
        yield Pair(request.param, fastapi.url, litestar.url)
    finally:
        fastapi.stop()
        litestar.stop()
        client = redis.Redis.from_url(redis_url)
        try:
            keys = list(client.scan_iter(match=f"{tag}:*", count=10_000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


def token(url: str) -> str:
    response = httpx.post(
        f"{url}/auth/token",
        data={"grant_type": "password", "username": USER, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def bearer(value: str) -> dict[str, str]:
    return {"authorization": f"Bearer {value}"}


def refused_within(url: str, headers: dict[str, str], seconds: float = BOUND) -> float | None:
    """Seconds until ``GET /auth/me`` with ``headers`` is refused (401), or None."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        status = httpx.get(f"{url}/auth/me", headers=headers, timeout=5).status_code
        assert status in (200, 401), status
        if status == 401:
            return time.monotonic() - started
        time.sleep(0.005)
    return None


def test_a_token_of_either_is_accepted_by_the_other(pair: Pair) -> None:
    from_fastapi, from_litestar = token(pair.fastapi), token(pair.litestar)
    hello = httpx.get(f"{pair.litestar}/hello", headers=bearer(from_fastapi), timeout=5)
    assert hello.json() == {"hello": USER}
    me = httpx.get(f"{pair.fastapi}/auth/me", headers=bearer(from_litestar), timeout=5)
    assert me.status_code == 200 and me.json()["username"] == USER
    assert me.json()["strategy"] == pair.strategy


def test_a_logout_on_one_is_refused_by_the_other(pair: Pair) -> None:
    for issuer, other in ((pair.fastapi, pair.litestar), (pair.litestar, pair.fastapi)):
        value = token(issuer)
        assert httpx.get(f"{other}/auth/me", headers=bearer(value), timeout=5).status_code == 200
        out = httpx.post(f"{issuer}/auth/logout", headers=bearer(value), timeout=5)
        assert out.status_code == 204
        assert refused_within(other, bearer(value)) is not None, f"{other} still accepts it"


def test_cookie_session_crosses_and_revoke_others_reaches_the_other(pair: Pair) -> None:
    with httpx.Client(base_url=pair.fastapi, timeout=10) as browser:
        login = browser.post(
            "/auth/login",
            json={"username": USER, "password": PASSWORD},
            headers={"origin": pair.fastapi},
        )
        assert login.status_code == 200, login.text
        cookies = "; ".join(f"{k}={v}" for k, v in browser.cookies.items())
    # The browser's cookie, replayed to the Litestar app: the same session.
    on_litestar = {"cookie": cookies}
    assert httpx.get(f"{pair.litestar}/hello", headers=on_litestar, timeout=5).status_code == 200
    # A bearer client ends every other session through the Litestar app ...
    api = token(pair.litestar)
    ended = httpx.post(f"{pair.litestar}/auth/sessions/revoke-others", headers=bearer(api))
    assert ended.status_code == 200 and ended.json()["revoked"] >= 1
    # ... and the FastAPI server refuses the browser's cookie from then on.
    assert refused_within(pair.fastapi, {"cookie": cookies}) is not None
    assert httpx.get(f"{pair.fastapi}/auth/me", headers=bearer(api), timeout=5).status_code == 200


def test_a_cross_site_form_post_is_refused_by_the_litestar_process(pair: Pair) -> None:
    with httpx.Client(base_url=pair.litestar, timeout=10) as browser:
        login = browser.post(
            "/auth/login",
            json={"username": USER, "password": PASSWORD},
            headers={"origin": pair.litestar},
        )
        assert login.status_code == 200, login.text
        forged = browser.post(
            "/auth/logout", data={"x": "1"}, headers={"origin": "https://evil.example"}
        )
        assert forged.status_code == 403 and forged.json()["error"] == "csrf_failed"
        assert browser.get("/hello").status_code == 200
