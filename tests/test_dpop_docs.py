"""The joserfc client of docs/dpop.md, run as written against a real ``satchel serve``."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from procs import SatchelServer, satchel_cli

pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[1] / "docs" / "dpop.md"
PASSWORD = "correct horse battery"


def test_the_client_example_gets_a_dpop_token_and_uses_it(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    client = [block for block in blocks if "from joserfc" in block]
    assert len(client) == 1
    env = {
        "SATCHEL_STORE": f"sqlite:///{tmp_path / 'satchel.db'}",
        "SATCHEL_STRATEGY": "hybrid",
        "SATCHEL_TRANSPORTS": "bearer",
        "SATCHEL_DPOP_NONCE": "true",  # the example's retry path runs too
    }
    created = satchel_cli(["users", "add", "alice", "--password-stdin"], env, PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    server = SatchelServer(env, "dpop-docs").start()
    try:
        server.wait_ready()
        source = client[0].replace('"http://127.0.0.1:8000"', repr(server.url))
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(compile(source, str(DOC), "exec"), {"__name__": "dpop_example"})
    finally:
        server.stop()
    assert printed.getvalue().strip() == "alice"
