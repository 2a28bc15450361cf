"""A throw-away PgBouncer in transaction pooling mode in front of the test PostgreSQL.

:class:`LocalPgBouncer` writes an ini and an auth file into a directory of its own, starts
Debian's ``pgbouncer`` as a subprocess on a free loopback port (``pool_mode = transaction``,
``auth_type = trust``), and waits until it answers. Its :attr:`~LocalPgBouncer.url` is the
upstream URL with the port swapped and ``?pgbouncer=true`` added (satchel's switch for a
transaction pooler). The pool is small on purpose (``default_pool_size``), so clients share
server connections and anything that depends on a session (a named prepared statement, an
advisory lock held across statements, LISTEN) breaks visibly instead of by luck.

Loaded by file path from the benchmarks too (``benchmarks/services.py``): standard library
only.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

#: Where Debian puts the binary (``apt-get install pgbouncer``); also looked up on PATH.
CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer")


def binary() -> str | None:
    """The pgbouncer executable, or None when it is not installed."""
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


def available() -> bool:
    return binary() is not None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalPgBouncer:
    """PgBouncer on a free port, forwarding database ``db`` to ``upstream``'s server."""

    def __init__(self, upstream: str, *, pool_size: int = 4) -> None:
        parts = urlsplit(upstream)
        self.upstream_host = parts.hostname or "127.0.0.1"
        self.upstream_port = parts.port or 5432
        self.user = parts.username or "postgres"
        self.database = (parts.path or "/test").lstrip("/") or "test"
        self.pool_size = pool_size
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.workdir: Path | None = None

    @property
    def url(self) -> str:
        """PgBouncer's URL for satchel: transaction pooling declared with ``?pgbouncer=true``."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}?pgbouncer=true"

    @property
    def plain_url(self) -> str:
        """The same address without satchel's option (for raw drivers)."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def start(self, timeout: float = 10.0) -> LocalPgBouncer:
        exe = binary()
        if exe is None:
            raise RuntimeError("pgbouncer is not installed (apt-get install pgbouncer)")
        self.workdir = Path(tempfile.mkdtemp(prefix="satchel-pgbouncer-"))
        atexit.register(self.stop)  # also when the run ends without the fixture's teardown
        auth = self.workdir / "userlist.txt"
        auth.write_text(f'"{self.user}" ""\n')
        ini = self.workdir / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            f"{self.database} = host={self.upstream_host} port={self.upstream_port}"
            f" dbname={self.database}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            f"unix_socket_dir = {self.workdir}\n"
            "auth_type = trust\n"
            f"auth_file = {auth}\n"
            "pool_mode = transaction\n"
            f"default_pool_size = {self.pool_size}\n"
            "max_client_conn = 500\n"
            # asyncpg and the bus set these at connect time; pgbouncer must not refuse them.
            "ignore_startup_parameters = extra_float_digits,application_name\n"
            f"logfile = {self.workdir / 'pgbouncer.log'}\n"
            f"pidfile = {self.workdir / 'pgbouncer.pid'}\n"
        )
        command = [exe, str(ini)]
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root; -u drops to the PostgreSQL account.
            command[1:1] = ["-u", "postgres"]
            shutil.chown(self.workdir, "postgres")
            for path in (auth, ini):
                shutil.chown(path, "postgres")
        self.proc = subprocess.Popen(
            command,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            time.sleep(0.05)
        log = self.log()
        self.stop()
        raise RuntimeError(f"pgbouncer did not start: {log[-1500:]}")

    def log(self) -> str:
        if self.workdir is None:
            return ""
        try:
            return (self.workdir / "pgbouncer.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if self.workdir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.workdir)
            self.workdir = None
