"""A throw-away PostgreSQL cluster of one test: ``initdb`` in a temporary folder, served by
``pg_ctl`` on a free loopback port, stopped and started again at will (the machine's shared
PostgreSQL is never touched). As root, every command runs as the ``postgres`` OS user."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from procs import free_port


def _as_postgres(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PrivatePostgres:
    """``initdb`` + ``pg_ctl`` on ``port`` (kept across restarts), trust auth, no fsync."""

    def __init__(self) -> None:
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="satchel-pg-"))
        self.data = self.root / "data"
        self.log = self.root / "server.log"

    @staticmethod
    def available() -> str | None:
        """None when a private cluster can be made here, else why not."""
        for tool in ("initdb", "pg_ctl"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed"
        if os.geteuid() == 0:
            if shutil.which("runuser") is None:
                return "runuser is missing (root cannot run PostgreSQL itself)"
            try:
                pwd.getpwnam("postgres")
            except KeyError:
                return "there is no postgres OS user to run PostgreSQL as"
        return None

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str, timeout: float = 60) -> None:
        done = subprocess.run(
            _as_postgres(list(args)), capture_output=True, text=True, timeout=timeout, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stdout}{done.stderr}")

    def init(self) -> PrivatePostgres:
        if os.geteuid() == 0:
            entry = pwd.getpwnam("postgres")
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        return self

    def start(self) -> None:
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c full_page_writes=off -c max_connections=50"
        )
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.log), "-w", "start")

    def stop(self) -> None:
        """Stop at once (``immediate``: like a crash, connections are cut)."""
        with contextlib.suppress(RuntimeError):
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def destroy(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
