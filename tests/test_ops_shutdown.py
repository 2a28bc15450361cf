"""Graceful shutdown of a real ``satchel serve``: SIGTERM under load loses no acknowledged
write, finishes the requests in flight, exits 0, and a request that never ends is cut at
``SATCHEL_SHUTDOWN_TIMEOUT``."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from procs import SatchelServer, satchel_cli
from satchel.stores import open_stores

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"
USERS = ("u0", "u1", "u2", "u3")


@dataclass
class Ledger:
    """What the server acknowledged, and when the clients gave up."""

    created: set[str] = field(default_factory=set)  # session ids of 200 logins
    ended: set[str] = field(default_factory=set)  # session ids of 204 logouts
    after_signal: int = 0  # responses that arrived after SIGTERM was sent
    server_errors: list[int] = field(default_factory=list)
    early_failures: list[str] = field(default_factory=list)  # transport errors before SIGTERM
    lock: threading.Lock = field(default_factory=threading.Lock)
    signalled_at: float | None = None


def worker(base: str, username: str, ledger: Ledger, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=20) as client:
        turn = 0
        while not stop.is_set():
            turn += 1
            try:
                login = client.post(
                    "/auth/token",
                    data={"grant_type": "password", "username": username, "password": PASSWORD},
                )
                record(ledger, login)
                if login.status_code != 200:
                    continue
                token = login.json()["access_token"]
                sid = token.split(".")[0]
                with ledger.lock:
                    ledger.created.add(sid)
                if turn % 2:
                    out = client.post("/auth/logout", headers={"authorization": f"Bearer {token}"})
                    record(ledger, out)
                    if out.status_code == 204:
                        with ledger.lock:
                            ledger.ended.add(sid)
            except httpx.TransportError as exc:
                with ledger.lock:
                    if ledger.signalled_at is None:
                        ledger.early_failures.append(type(exc).__name__)
                return  # the server is going away


def record(ledger: Ledger, response: httpx.Response) -> None:
    with ledger.lock:
        if ledger.signalled_at is not None:
            ledger.after_signal += 1
        if response.status_code >= 500:
            ledger.server_errors.append(response.status_code)


def start_server(tmp_path: Path, **env: str) -> tuple[SatchelServer, str]:
    store = f"sqlite:///{tmp_path / 'satchel.db'}"
    for name in USERS:
        added = satchel_cli(
            ["users", "add", name, "--password-stdin", "--store", store], {}, PASSWORD + "\n"
        )
        assert added.returncode == 0, added.stderr
    server = SatchelServer(
        {
            "SATCHEL_STORE": store,
            "SATCHEL_LOGIN_IP_LIMIT": "0",
            "SATCHEL_LOGIN_ACCOUNT_LIMIT": "0",
            **env,
        },
        "shutdown",
    ).start()
    server.wait_ready()
    return server, store


def sigterm(server: SatchelServer) -> None:
    assert server.proc is not None
    os.killpg(server.proc.pid, signal.SIGTERM)


def test_sigterm_under_load_loses_no_acknowledged_write(tmp_path: Path) -> None:
    server, store = start_server(tmp_path, SATCHEL_SHUTDOWN_TIMEOUT="10")
    ledger, stop = Ledger(), threading.Event()
    threads = [
        threading.Thread(target=worker, args=(server.url, USERS[i % len(USERS)], ledger, stop))
        for i in range(8)
    ]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 20
        while len(ledger.created) < 20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(ledger.created) >= 20, server.log()
        with ledger.lock:
            ledger.signalled_at = time.monotonic()
        sigterm(server)
        assert server.proc is not None
        code = server.proc.wait(20)
        stopped_in = time.monotonic() - ledger.signalled_at
        stop.set()
        for thread in threads:
            thread.join(20)
        log = server.log()
    finally:
        stop.set()
        server.stop()

    assert code == 0, log
    assert stopped_in < 12, stopped_in
    assert not ledger.server_errors, ledger.server_errors
    assert not ledger.early_failures, ledger.early_failures
    assert ledger.after_signal >= 1, "no request was in flight at SIGTERM"

    async def verify() -> tuple[list[str], list[str]]:
        stores = await open_stores(store)
        try:
            missing = [
                sid
                for sid in ledger.created - ledger.ended
                if await stores.sessions.get(sid) is None
            ]
            alive = [sid for sid in ledger.ended if await stores.sessions.get(sid) is not None]
            return missing, alive
        finally:
            await stores.close()

    missing, alive = asyncio.run(verify())
    assert not missing, f"{len(missing)} acknowledged sign-ins lost"
    assert not alive, f"{len(alive)} acknowledged sign-outs undone"


def test_a_request_that_never_ends_is_cut_at_the_bound(tmp_path: Path) -> None:
    server, _store = start_server(tmp_path, SATCHEL_SHUTDOWN_TIMEOUT="2")
    try:
        # A body announced but never sent: the request stays in flight until it is cut.
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.sendall(
            b"POST /auth/token HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\nusername=u0"
        )
        time.sleep(0.3)
        started = time.monotonic()
        sigterm(server)
        assert server.proc is not None
        code = server.proc.wait(15)
        took = time.monotonic() - started
        sock.close()
    finally:
        server.stop()
    assert code == 0
    assert 1.5 <= took < 6, took
