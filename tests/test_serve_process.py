"""The README path: `satchel users add`, then `satchel serve`, then log in over real HTTP."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

PASSWORD = "correct horse battery"
SATCHEL = Path(sys.executable).with_name("satchel")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATCHEL_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_healthy(base: str, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            output = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
            raise AssertionError(f"server exited early with {proc.returncode}:\n{output}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("server did not become healthy in time")


@pytest.mark.slow
def test_serve_subprocess_login(tmp_path: Path) -> None:
    assert SATCHEL.exists(), "the satchel console script is not installed in this environment"
    store = f"sqlite:///{tmp_path / 'satchel.db'}"
    env = clean_env()
    added = subprocess.run(
        [str(SATCHEL), "users", "add", "alice", "--password-stdin", "--store", store],
        input=(PASSWORD + "\n").encode(),
        env=env,
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert added.returncode == 0, added.stderr.decode()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [str(SATCHEL), "serve", "--port", str(port), "--store", store],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_healthy(base, proc, time.monotonic() + 30)
        health = httpx.get(f"{base}/healthz", timeout=5)
        assert health.json() == {"status": "ok"}
        assert "server" not in health.headers

        response = httpx.post(
            f"{base}/auth/login",
            json={"username": "alice", "password": PASSWORD},
            timeout=10,
        )
        assert response.status_code == 200, response.text
        assert response.json()["username"] == "alice"
        set_cookie = response.headers["set-cookie"]
        assert set_cookie.startswith("__Host-satchel=")
        # The client is on plain HTTP, so replay the Secure cookie by hand.
        cookie = set_cookie.split(";", 1)[0]
        me = httpx.get(f"{base}/auth/me", headers={"cookie": cookie}, timeout=5)
        assert me.status_code == 200
        assert me.json()["username"] == "alice"

        wrong = httpx.post(
            f"{base}/auth/login",
            json={"username": "alice", "password": "wrong password!"},
            timeout=10,
        )
        assert wrong.status_code == 401
        assert wrong.json()["error"] == "invalid_login"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    text = output.decode(errors="replace")
    # uvicorn re-raises SIGTERM after a graceful shutdown, so -SIGTERM is a clean exit too.
    assert proc.returncode in (0, -signal.SIGTERM), text
    assert "Application shutdown complete" in text
    # Neither the password nor the session cookie value reaches the server's output.
    assert PASSWORD not in text
    assert cookie.split("=", 1)[1] not in text
