"""The OpenAPI document against the running server: schemathesis, knowing nothing but
``/openapi.json``, generates valid and invalid requests (its coverage, fuzzing and stateful
phases) and sends them to a real ``satchel serve``. No answer may be a 500, or have a
status, a content type, headers or a body the document does not state; invalid input must
be refused; a route must not ignore a bad credential.

Its bearer token comes from the document's own token endpoint (schemathesis fetches it, and
again after a test logged it out). Two checks are tuned, each for a stated reason:

- ``positive_data_acceptance`` is off: a schema-valid login or refresh with made-up
  credentials is rightly refused (401 ``invalid_login``, 400 ``invalid_grant``);
- ``negative_data_rejection`` counts 413 as a refusal: an over-long password is refused with
  413 ``password_too_long`` before any hashing (P03);
- ``unsupported_method`` skips ``/auth/refresh``: its ``GET`` is the browsers' refresh
  detour of the HTML pages, which the API document leaves out.

The login throttle is off on this server: the fuzzer fails logins by the hundred, and the
429 answers are checked elsewhere (tests/test_oauth_token.py, tests/test_server_api.py).
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from procs import SatchelServer, satchel_cli

PASSWORD = "correct horse battery"

pytestmark = pytest.mark.slow

CONFIG = f"""
seed = 1

[checks.positive_data_acceptance]
enabled = false

[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]

[auth.dynamic.openapi.BearerToken]
path = "/auth/token"
payload = {{ grant_type = "password", username = "alice", password = "{PASSWORD}" }}
payload_content_type = "application/x-www-form-urlencoded"
extract_selector = "/access_token"
retry_on = [401]

[[operations]]
include-path = "/auth/refresh"
checks.unsupported_method.enabled = false
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SatchelServer]:
    tmp = tmp_path_factory.mktemp("fuzz")
    env = {
        "SATCHEL_STORE": f"sqlite:///{tmp / 'fuzz.db'}",
        "SATCHEL_STRATEGY": "hybrid",
        # Plain HTTP: the cookies the document names must be the ones the server sets.
        "SATCHEL_COOKIE_SECURE": "false",
        "SATCHEL_LOGIN_IP_LIMIT": "0",
        "SATCHEL_LOGIN_ACCOUNT_LIMIT": "0",
    }
    added = satchel_cli(["users", "add", "alice", "--password-stdin"], env, PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    running = SatchelServer(env, "fuzz").start()
    try:
        running.wait_ready()
        yield running
    finally:
        running.stop()


def test_no_answer_contradicts_the_document(server: SatchelServer, tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG, encoding="utf-8")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "schemathesis.cli",
            "--config-file",
            str(config),
            "run",
            f"{server.url}/openapi.json",
            "--max-examples",
            "25",
            "--no-color",
        ],
        capture_output=True,
        text=True,
        timeout=540,
        check=False,
        cwd=tmp_path,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-12_000:]
    # Every operation of the document was exercised.
    selected = re.search(r"(\d+) selected / (\d+) total", report)
    assert selected is not None and selected.group(1) == selected.group(2), report[-4000:]
    assert "Internal server error" not in server.log()
