"""The log guard that checks every attack test (log_guard.py) would notice a leak."""

from __future__ import annotations

import logging

from .conftest import ORIGIN, PASSWORD, Server
from .log_guard import Guard

SAME = {"origin": ORIGIN, "sec-fetch-site": "same-origin"}


async def test_the_guard_sees_the_wire_and_the_log(
    session_server: Server, log_guard: Guard
) -> None:
    token = await session_server.bearer_token()
    await session_server.client.post(
        "/auth/login", json={"username": "alice", "password": "a wrong password"}, headers=SAME
    )
    cookie = await session_server.login()
    assert token in log_guard.secrets  # handed out in a response body
    assert token.split(".")[1] in log_guard.secrets  # and its secret half alone
    assert PASSWORD in log_guard.secrets and "a wrong password" in log_guard.secrets
    assert any(value in cookie.headers["set-cookie"] for value in log_guard.secrets)
    assert any("login.failure" in line for line in log_guard.raw)  # lines were captured
    assert not log_guard.leaks()

    # The same secrets in a line of a logger the guard watches: each would be reported.
    spy = Guard()
    spy.secrets = set(log_guard.secrets)
    leaky = logging.getLogger("satchel.tests.leaky")
    leaky.propagate = False  # kept away from the autouse guard of this very test
    leaky.addHandler(spy)
    leaky.setLevel(logging.INFO)
    try:
        leaky.info("presented %s", token)
        leaky.info("password was %r", "a wrong password")
    finally:
        leaky.removeHandler(spy)
    assert len(spy.leaks()) >= 2
    assert token not in "\n".join(spy.leaks())  # the report names lengths, not secrets
