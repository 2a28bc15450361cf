"""Step-up on an application's own views, written once and run through each framework's
own test client (tests/test_flask.py, tests/test_django.py; Litestar's and FastAPI's async
clients follow the same steps in their own test files).

The app under test serves ``GET /fresh`` (fresh within ``SATCHEL_FRESH_AGE``, 300 s) and
``GET /fresh-minute`` (``max_age=60``), both answering ``{"fresh": username}``, beside
``GET /hello`` (login required). The rig must be made with ``access_ttl=900`` so that a
jwt access token outlives the fresh age, and renews a sign-in with :meth:`reauthenticate`.
"""

from __future__ import annotations

from typing import Any, Protocol

from api_flows import PASSWORD, Reply, Rig, assert_error, bearer, login, token
from satchel.auth import Auth
from satchel.integrations.sync import SyncAuth
from satchel.strategies.base import LoginContext


def challenge(max_age: int) -> str:
    """The RFC 9470 challenge, spelled out here rather than built by the code under test."""
    return (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A more recent authentication is required", '
        f'max_age="{max_age}"'
    )


class StepUpRig(Rig, Protocol):
    def reauthenticate(self, access_token: str) -> str:
        """Prove the password again for the session of ``access_token``; the access token
        to use from now on (a new one for jwt and hybrid, the same for sessions)."""
        ...


async def reauthenticate(auth: Auth, access_token: str) -> str:
    """What ``POST /auth/reauthenticate`` does, through the library: the MFA service's
    :meth:`reauthenticate` with the password, on the session of ``access_token``; the
    access token to use from now on."""
    assert auth.mfa is not None
    identity = await auth.strategy.authenticate(access_token)
    _, issued = await auth.mfa.reauthenticate(
        identity.with_transport("bearer"), LoginContext(), password=PASSWORD
    )
    return issued.access_token if issued is not None else access_token


def renew(sync: SyncAuth, access_token: str) -> str:
    """:func:`reauthenticate` on a WSGI integration's loop."""
    return sync.call(lambda auth: reauthenticate(auth, access_token))


def assert_stale(reply: Reply, max_age: int) -> dict[str, Any]:
    """401 ``reauthentication_required`` with the step-up challenge for ``max_age``."""
    assert reply.status == 401, (reply.status, reply.body[:300])
    assert reply.header("www-authenticate") == challenge(max_age), reply.headers
    assert reply.header("cache-control") == "no-store"
    assert (reply.header("content-type") or "").startswith("application/json")
    body: dict[str, Any] = reply.json()
    assert set(body) == {"error", "detail", "max_age"}, body
    assert body["error"] == "reauthentication_required" and body["max_age"] == max_age
    assert f"{max_age} seconds" in body["detail"]
    return body


def step_up(rig: StepUpRig) -> None:
    rig.create_user("alice")
    client = rig.client()
    access = token(client)["access_token"]
    browser = rig.client()
    login(browser)
    for path in ("/fresh", "/fresh-minute"):
        reply = client.request("GET", path, headers=bearer(access))
        assert reply.status == 200 and reply.json() == {"fresh": "alice"}, reply.body
    assert browser.request("GET", "/fresh").json() == {"fresh": "alice"}

    rig.clock.advance(61)  # stale for a one-minute route, still fresh for the default
    assert_stale(client.request("GET", "/fresh-minute", headers=bearer(access)), 60)
    assert client.request("GET", "/fresh", headers=bearer(access)).status == 200
    rig.clock.advance(240)  # 301 s after the sign-in
    assert_stale(client.request("GET", "/fresh", headers=bearer(access)), 300)
    assert_stale(browser.request("GET", "/fresh"), 300)  # the cookie transport alike
    # Still signed in: only the fresh-only views ask for more.
    assert client.request("GET", "/hello", headers=bearer(access)).status == 200
    assert browser.request("GET", "/hello").status == 200

    # No credential: the integration's usual 401, not a step-up challenge.
    anonymous = rig.client().request("GET", "/fresh")
    assert_error(anonymous, 401, "not_authenticated")
    usual = rig.client().request("GET", "/hello")
    assert anonymous.header("www-authenticate") == usual.header("www-authenticate")
    assert "insufficient_user_authentication" not in (anonymous.header("www-authenticate") or "")
    assert_error(
        rig.client().request("GET", "/fresh", headers=bearer("not-a-token")), 401, "invalid_token"
    )

    renewed = rig.reauthenticate(access)
    for path in ("/fresh", "/fresh-minute"):
        reply = client.request("GET", path, headers=bearer(renewed))
        assert reply.status == 200 and reply.json() == {"fresh": "alice"}, reply.body
    if renewed != access:  # jwt, hybrid: the old token still works, but it is not fresh
        assert_stale(client.request("GET", "/fresh", headers=bearer(access)), 300)
    rig.clock.advance(61)
    assert_stale(client.request("GET", "/fresh-minute", headers=bearer(renewed)), 60)


def fresh_age_setting(rig: Rig) -> None:
    """A rig made with ``fresh_age=120``: the default views follow SATCHEL_FRESH_AGE, an
    explicit ``max_age`` stays its own."""
    rig.create_user("alice")
    client = rig.client()
    access = token(client)["access_token"]
    rig.clock.advance(100)
    assert client.request("GET", "/fresh", headers=bearer(access)).status == 200
    assert_stale(client.request("GET", "/fresh-minute", headers=bearer(access)), 60)
    rig.clock.advance(21)
    assert_stale(client.request("GET", "/fresh", headers=bearer(access)), 120)
