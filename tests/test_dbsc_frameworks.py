"""DBSC through the framework-free JSON API (tests/api_flows.py clients): Flask, whose
requests are authenticated by the sync driver, serves the same registration, bound-cookie
check and refresh as the reference server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from api_flows import PASSWORD, Client, Reply, login
from backends import Backends
from dbsc_client import CHALLENGE_RE, REGISTRATION_RE, SessionKey, jws
from satchel.clock import ManualClock
from satchel.config.settings import Settings
from satchel.integrations.flask import Satchel
from test_flask import HASHER, FlaskBrowser
from test_flask import make_app as flask_app


def proof(key: SessionKey, challenge: str, *, registration: bool) -> str:
    header: dict[str, object] = {"alg": key.alg, "typ": "dbsc+jwt"}
    if registration:
        header["jwk"] = key.jwk()
    return jws(header, {"jti": challenge}, key)


def error_of(reply: Reply) -> str:
    code: str = reply.json()["error"]
    return code


def dbsc_flow(client: Client, clock: ManualClock) -> None:
    """Sign in, register, lose the bound cookie to time, refresh with a challenge."""
    signed_in = login(client)
    offer = REGISTRATION_RE.match(signed_in.header("secure-session-registration") or "")
    assert offer, signed_in.headers
    key = SessionKey()
    registered = client.request(
        "POST",
        offer["path"],
        headers={"secure-session-response": proof(key, offer["challenge"], registration=True)},
    )
    assert registered.status == 200, registered.body
    body = registered.json()
    sid, refresh = body["session_identifier"], body["refresh_url"]
    assert any(v.startswith("__Host-satchel-bound=") for v in registered.all("set-cookie"))
    assert client.request("GET", "/auth/me").status == 200
    clock.advance(601)
    expired = client.request("GET", "/auth/me")
    assert expired.status == 401 and error_of(expired) == "device_binding_required"
    asked = client.request("POST", refresh, headers={"sec-secure-session-id": f'"{sid}"'})
    assert asked.status == 403 and error_of(asked) == "dbsc_proof_required"
    challenge = CHALLENGE_RE.match(asked.header("secure-session-challenge") or "")
    assert challenge and challenge["id"] == sid
    signed = proof(key, challenge["challenge"], registration=False)
    renewed = client.request(
        "POST",
        refresh,
        headers={"sec-secure-session-id": f'"{sid}"', "secure-session-response": signed},
    )
    assert renewed.status == 200, renewed.body
    assert client.request("GET", "/auth/me").status == 200
    other = proof(SessionKey(), challenge["challenge"], registration=False)
    wrong = client.request(
        "POST",
        refresh,
        headers={"sec-secure-session-id": f'"{sid}"', "secure-session-response": other},
    )
    assert wrong.status == 401 and error_of(wrong) == "dbsc_wrong_key"
    assert client.request("GET", "/auth/me").status == 401  # the session has ended


def test_flask_serves_dbsc(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    backends = Backends(request, tmp_path)
    clock = ManualClock()
    ext = Satchel(
        settings=Settings(**backends.fresh("sqlite").settings()), hasher=HASHER, clock=clock
    )
    try:
        ext.sync.call(lambda a: a.users.create_user("alice", PASSWORD, []))
        dbsc_flow(FlaskBrowser(flask_app(ext)), clock)
    finally:
        ext.sync.close()
        asyncio.run(backends.drop())
