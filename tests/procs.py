"""Helpers for tests and benchmarks that need real processes and real network faults.

- :func:`free_port` — a loopback TCP port nobody listens on right now.
- :class:`PrivateRedis` — a throw-away ``redis-server`` on its own port (no persistence) that
  a test may stop and start again on the same port. The machine's shared Redis is never
  touched by fault tests.
- :class:`TcpProxy` — a loopback TCP proxy in a thread of its own, in front of any service;
  ``cut()`` drops every connection and refuses new ones, ``blackhole()`` accepts and holds
  connections without forwarding a byte (a silent network), ``restore()`` forwards again.
- :class:`SatchelServer` — ``satchel serve`` in a subprocess on a free port, with
  :meth:`~SatchelServer.wait_ready` polling ``/healthz``; always :meth:`~SatchelServer.stop`
  it (fixtures do, in their finalizers).
- :func:`satchel_cli` — run the ``satchel`` command line with an environment and stdin.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

SATCHEL_BIN = str(Path(sys.executable).with_name("satchel"))


def free_port() -> int:
    """A currently unused loopback port (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return True
        time.sleep(0.02)
    return False


class PrivateRedis:
    """A ``redis-server`` of this test alone, on ``port`` (kept across restarts)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        """True when ``redis-server`` is installed."""
        return shutil.which("redis-server") is not None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (or restart) the server and wait until it accepts connections."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if not _wait_port(self.port, 5.0):
            self.stop()
            raise RuntimeError(f"private redis-server did not start on port {self.port}")

    def stop(self) -> None:
        """Kill the server at once (like a crash; nothing is saved)."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)

    def client_kill_pubsub(self) -> int:
        """``CLIENT KILL TYPE pubsub``: drop every subscriber; returns how many."""
        import redis

        client = redis.Redis(port=self.port, socket_timeout=2)
        try:
            return int(client.client_kill_filter(_type="pubsub"))
        finally:
            client.close()


class TcpProxy:
    """A cuttable loopback proxy to ``target_host:target_port`` (see the module docstring)."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self.mode = "pass"
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tcp-proxy", daemon=True)

    def start(self) -> TcpProxy:
        self._thread.start()
        if not self._ready.wait(5):
            raise RuntimeError("proxy did not start")
        return self

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", self.port)
        )
        self._ready.set()
        self._loop.run_forever()
        # Finish the connections' tasks on this loop before closing it: left pending, they
        # are collected later, inside whichever test runs then, and fail on a closed loop.
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.mode == "cut":
            writer.transport.abort()
            return
        self._writers.add(writer)
        if self.mode == "blackhole":
            return  # held open, never answered
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.add(up_writer)
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._writers.discard(writer)
        self._writers.discard(up_writer)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                # A black-holed link swallows bytes: nothing goes through, nothing is closed.
                if self.mode == "pass":
                    writer.write(data)
                    await writer.drain()
        finally:
            if self.mode != "blackhole":
                writer.transport.abort()

    def _set(self, mode: str) -> None:
        def apply() -> None:
            self.mode = mode
            if mode == "cut":
                for writer in list(self._writers):
                    writer.transport.abort()
                self._writers.clear()

        done = threading.Event()
        self._loop.call_soon_threadsafe(lambda: (apply(), done.set()))
        done.wait(5)

    def cut(self) -> None:
        """Reset every connection and refuse new ones (a stopped service)."""
        self._set("cut")

    def blackhole(self) -> None:
        """Stop forwarding without closing anything (a silent network)."""
        self._set("blackhole")

    def restore(self) -> None:
        """Drop the held connections and forward new ones again."""
        self._set("cut")
        self._set("pass")

    def close(self) -> None:
        self._set("cut")

        def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            self._loop.stop()

        self._loop.call_soon_threadsafe(shutdown)
        self._thread.join(5)


class SatchelServer:
    """``satchel serve`` on a free port with ``env`` (SATCHEL_* settings) added."""

    def __init__(self, env: Mapping[str, str], name: str = "server") -> None:
        self.name = name
        self.port = free_port()
        self.env = {**os.environ, **env, "SATCHEL_PORT": str(self.port)}
        self.env.setdefault("SATCHEL_LOG_LEVEL", "warning")
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in stop()
            prefix=f"satchel-{name}-", suffix=".log", delete=False
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SatchelServer:
        self.proc = subprocess.Popen(
            [SATCHEL_BIN, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        """Poll ``/healthz`` until it answers 200; raise with the server log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc is None or self.proc.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not become ready:\n{self.log()}")

    def log(self) -> str:
        """What the server printed so far (last 4000 characters)."""
        try:
            return Path(self._log.name).read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 5 s; removes the log file."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        self._log.close()
        with contextlib.suppress(OSError):
            os.unlink(self._log.name)


def start_servers(envs: list[Mapping[str, str]], names: list[str]) -> list[SatchelServer]:
    """Start several servers in parallel and wait for all; on failure stop them all."""
    servers = [SatchelServer(env, name) for env, name in zip(envs, names, strict=True)]
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready()
    except BaseException:
        for server in servers:
            server.stop()
        raise
    return servers


def satchel_cli(
    args: list[str], env: Mapping[str, str], stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run ``satchel <args>`` with ``env`` added to this environment."""
    return subprocess.run(
        [SATCHEL_BIN, *args],
        env={**os.environ, **env},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
