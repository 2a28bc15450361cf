"""Browser-test fixtures: a real ``satchel serve`` process and Debian's Chromium via Playwright.

The browser is never downloaded: Playwright launches ``/usr/bin/chromium`` (override with
``SATCHEL_TEST_CHROMIUM``). Without it the tests are skipped loudly, or fail when
``CI=true``. Each server runs on a free 127.0.0.1 port with its own SQLite file; users are
created with the ``satchel`` command line, as the README does.

Screenshots go to ``test-artifacts/browser/``. With ``SATCHEL_SCREENSHOTS=docs/screenshots``
the page tour also (re)writes the screenshots committed for the README.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
SATCHEL = Path(sys.executable).with_name("satchel")
CHROMIUM = os.environ.get("SATCHEL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-gpu",
    "--headless=new",
]
# Never containing the username: new passwords that do are refused.
ADMIN_PASSWORD = "violet harbour lantern 1"
ALICE_PASSWORD = "copper meadow kettle 2"
BOB_PASSWORD = "granite orchard pebble 3"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _clean_env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SATCHEL_")}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


@dataclass
class Server:
    """A running ``satchel serve``: its base URL, store and the environment it was given."""

    base: str
    store: str
    env: dict[str, str]
    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    output: list[str] = field(default_factory=list)

    def cli(self, *args: str, stdin: str | None = None) -> str:
        """Run ``satchel ARGS --store STORE`` against this server's store."""
        done = subprocess.run(
            [str(SATCHEL), *args, "--store", self.store],
            input=stdin.encode() if stdin is not None else None,
            env=self.env,
            cwd=self.workdir,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"satchel {' '.join(args)} failed: {done.stderr.decode()}")
        return done.stdout.decode()

    def add_user(self, name: str, password: str, *roles: str) -> None:
        role_args = [arg for role in roles for arg in ("--role", role)]
        self.cli("users", "add", name, *role_args, "--password-stdin", stdin=password + "\n")

    def url(self, path: str) -> str:
        return self.base + path

    def start(self) -> None:
        port = self.base.rsplit(":", 1)[1]
        self.proc = subprocess.Popen(
            [str(SATCHEL), "serve", "--port", port, "--store", self.store],
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode(errors="replace") if self.proc.stdout else ""
                raise AssertionError(f"satchel serve exited early ({self.proc.returncode}):\n{out}")
            try:
                if httpx.get(self.url("/healthz"), timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("satchel serve did not become healthy in time")

    def stop(self) -> str:
        if self.proc is None:
            return ""
        self.proc.send_signal(signal.SIGTERM)
        try:
            out, _ = self.proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, _ = self.proc.communicate()
        self.proc = None
        return out.decode(errors="replace")


def start_server(tmp: Path, **settings: Any) -> Server:
    """A fresh store with users admin (role admin), alice and bob, served on a free port."""
    env = _clean_env({f"SATCHEL_{k.upper()}": str(v) for k, v in settings.items()})
    server = Server(
        base=f"http://127.0.0.1:{free_port()}",
        store=f"sqlite:///{tmp / 'satchel.db'}",
        env=env,
        workdir=tmp,
    )
    server.add_user("admin", ADMIN_PASSWORD, "admin")
    server.add_user("alice", ALICE_PASSWORD, "staff")
    server.add_user("bob", BOB_PASSWORD)
    server.cli("keys", "rotate")  # a signing key, so the admin page has a JWKS to show
    server.start()
    return server


@pytest.fixture
def make_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """``make_server(**settings)`` starts a server with SATCHEL_* settings; stopped after."""
    started: list[Server] = []

    def make(**settings: Any) -> Server:
        server = start_server(tmp_path_factory.mktemp("satchel"), **settings)
        started.append(server)
        return server

    yield make
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One default server shared by the tests of a module."""
    srv = start_server(tmp_path_factory.mktemp("satchel"))
    yield srv
    output = srv.stop()
    # Passwords never reach the server's output.
    for secret in (ADMIN_PASSWORD, ALICE_PASSWORD, BOB_PASSWORD):
        assert secret not in output


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium, headless; never a downloaded browser.

    Module-scoped: sync Playwright keeps an event loop running in this thread while it is
    open, which would break the asyncio tests that run after these in the same process.
    """
    if not Path(CHROMIUM).exists():
        message = f"CHROMIUM NOT FOUND at {CHROMIUM}: browser tests need Debian's chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:  # pragma: no cover - playwright is a dev dependency
        message = f"PLAYWRIGHT NOT INSTALLED: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_context(browser: Any) -> Iterator[Any]:
    """``new_context(**options)``: a fresh browser profile (own cookies); closed after."""
    contexts: list[Any] = []

    def make(**options: Any) -> Any:
        options.setdefault("viewport", {"width": 1280, "height": 860})
        options.setdefault("locale", "en-GB")
        options.setdefault("timezone_id", "UTC")
        context = browser.new_context(**options)
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Any:
    """``shot(page, label)`` saves a full-page screenshot under test-artifacts/browser/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.name)

    def save(page: Any, label: str) -> Path:
        path = ARTIFACTS / f"{test}--{label}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return save


def screenshots_dir() -> Path | None:
    """Where the page tour writes README screenshots (``SATCHEL_SCREENSHOTS``), if asked."""
    target = os.environ.get("SATCHEL_SCREENSHOTS")
    if not target:
        return None
    path = Path(target)
    path = path if path.is_absolute() else ROOT / path
    path.mkdir(parents=True, exist_ok=True)
    return path


def login(
    page: Any, server: Server, username: str, password: str, *, remember: bool = False
) -> None:
    """Sign in through the form and wait for the page that follows."""
    page.goto(server.url("/login"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    if remember:
        page.get_by_label("Remember this device").check()
    with page.expect_navigation():
        page.get_by_role("button", name="Sign in", exact=True).click()
