"""What the CLI shows: help pages, --version, bench, device names, the serve banner."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import httpx
import pytest
from click.testing import Result
from typer.main import get_command
from typer.testing import CliRunner

from procs import SATCHEL_BIN, SatchelServer, satchel_cli
from satchel.cli import app
from satchel.config.build import build_auth
from satchel.config.settings import Settings
from satchel.strategies.base import LoginContext

PASSWORD = "a long passphrase for the tests"
CHROME_ON_LINUX = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Safari/537.36"
)


def invoke(*args: str, input: str | None = None, **env: str) -> Result:
    return CliRunner().invoke(app, list(args), input=input, env={"COLUMNS": "250", **env})


def every_command() -> Iterator[list[str]]:
    """The argument path of the root, each group and each command."""

    def walk(command: object, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    yield from walk(get_command(app), [])


@pytest.mark.parametrize("path", list(every_command()), ids=lambda p: " ".join(p) or "satchel")
def test_help_shows_no_python_placeholders(path: list[str]) -> None:
    result = invoke(*path, "--help")
    assert result.exit_code == 0, result.output
    assert not re.search(r"<[a-z][\w\[\], |.]*>", result.output), result.output
    assert "{" not in result.output and "}" not in result.output, result.output
    # The usage line names arguments as man pages do.
    usage = next(line for line in result.output.splitlines() if "Usage:" in line)
    assert usage.strip().startswith("Usage:"), usage


def test_help_names_values_and_shows_defaults() -> None:
    add = invoke("users", "add", "--help").output
    assert re.search(r"users add \[OPTIONS\] NAME\b", add), add
    assert re.search(r"--store\s+URL", add) and "[default: sqlite:///satchel.db]" in add
    assert re.search(r"--role\s+-r\s+ROLE", add), add
    serve = invoke("serve", "--help").output
    for default in ("127.0.0.1", "8000", "session", "sqlite:///satchel.db"):
        assert f"[default: {default}]" in serve, serve
    assert "session|jwt|hybrid" in serve and "[env var: SATCHEL_STRATEGY]" in serve
    assert "[default: 100]" in invoke("sessions", "list", "--help").output
    revoke = invoke("sessions", "revoke", "--help").output
    assert "sessions revoke [OPTIONS] [SESSION_ID]" in revoke


def test_keys_rotate_help_reads_in_whole_sentences() -> None:
    text = " ".join(invoke("keys", "rotate", "--help").output.split())
    for sentence in (
        "On a store without keys this creates the first key instead, which signs at once.",
        "after the new key starts signing; keep it above the token lifetime.",
        "[default: 86400]",
        "Algorithm of the new key (default: that of the newest key; for the first key, "
        "SATCHEL_JWT_ALG or EdDSA).",
    ):
        assert sentence in text, text


def test_version() -> None:
    result = invoke("--version")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"satchel {version('satchel')}"


# --- bench --------------------------------------------------------------------------------


def test_bench_help_lists_the_benchmark_options(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # anywhere: the help needs no checkout
    result = invoke("bench", "--help")
    assert result.exit_code == 0, result.output
    assert "python -m benchmarks" not in result.output and "usage:" not in result.output
    for option in ("--quick", "--out", "--only", "--no-progress", "--from-json"):
        assert option in result.output, result.output
    assert "[default: docs/benchmarks.md]" in result.output
    assert "micro|e2e|revocation|scale" in result.output


def test_bench_runs_the_checkouts_harness_from_any_folder(tmp_path: Path) -> None:
    # A process of its own in another folder: pytest's working directory (the checkout)
    # is on sys.path here, and would hide a command that cannot find the harness.
    done = subprocess.run(
        [SATCHEL_BIN, "bench", "--from-json", "missing.json", "--out", str(tmp_path / "b.md")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    # --from-json measures nothing: the harness itself answers for the missing file.
    assert done.returncode == 2, done.stderr
    assert "benchmarks: cannot read missing.json" in done.stderr
    assert not (tmp_path / "b.md").exists()


# --- sessions list names devices ----------------------------------------------------------


def test_sessions_list_names_the_device_as_the_pages_do(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'devices.db'}"
    added = invoke(
        "users", "add", "gina", "--password-stdin", input=PASSWORD + "\n", SATCHEL_STORE=url
    )
    assert added.exit_code == 0, added.output

    async def login(agent: str | None) -> None:
        auth = await build_auth(Settings(store=url))
        try:
            await auth.login("gina", PASSWORD, LoginContext(ip="203.0.113.9", user_agent=agent))
        finally:
            await auth.close()

    asyncio.run(login(CHROME_ON_LINUX))
    asyncio.run(login(None))
    result = invoke("sessions", "list", SATCHEL_STORE=url)
    assert result.exit_code == 0, result.output
    assert "Chrome 156 on Linux" in result.output
    assert "Mozilla/5.0" not in result.output
    header = next(line for line in result.output.splitlines() if "last seen" in line)
    assert header.split()[-1] == "device", header
    rows = [line for line in result.output.splitlines() if "203.0.113.9" in line]
    assert len(rows) == 2 and any(row.rstrip().endswith(" -") for row in rows), rows


# --- serve --------------------------------------------------------------------------------


@pytest.mark.slow
def test_serve_prints_a_banner_then_serves(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'served.db'}"
    env = {"SATCHEL_STORE": url, "SATCHEL_STRATEGY": "jwt", "SATCHEL_TRANSPORTS": "bearer"}
    server = SatchelServer(env).start()
    try:
        server.wait_ready()
        assert httpx.get(f"{server.url}/healthz", timeout=5).status_code == 200
        log = server.log()
    finally:
        server.stop()
    assert f"serving {server.url}/" in log, log
    assert "strategy    jwt" in log and "transports  bearer" in log
    assert f"store       {url}" in log
    assert f"no users yet: run `satchel users add NAME --store {url}`" in log

    done = satchel_cli(["users", "add", "ivy", "--password-stdin"], env, PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    again = SatchelServer(env).start()
    try:
        again.wait_ready()
        log = again.log()
    finally:
        again.stop()
    assert f"serving {again.url}/" in log and "no users yet" not in log


@pytest.mark.slow
def test_serve_keeps_accepting_memory() -> None:
    server = SatchelServer({"SATCHEL_STORE": "memory://"}).start()
    try:
        server.wait_ready()
        log = server.log()
    finally:
        server.stop()
    assert "store       memory://" in log
    assert "memory:// starts empty and `satchel users add` cannot reach it" in log


def test_banner_masks_the_password_and_points_at_the_store() -> None:
    from satchel.cli.serve import banner

    text = banner(Settings(store="postgresql://app:hunter2@db.example/auth", port=9000), False)
    assert "hunter2" not in text
    assert "store       postgresql://app:***@db.example/auth" in text
    assert "serving http://127.0.0.1:9000/" in text
    assert "run `satchel users add NAME --store postgresql://app:***@db.example/auth`" in text
    relative = banner(Settings(store="sqlite:///app.db", host="::1"), False)
    assert "serving http://[::1]:8000/" in relative
    assert f"--store sqlite:///{Path.cwd() / 'app.db'}`" in relative
    assert "no users" not in banner(Settings(store="sqlite:///app.db"), True)
