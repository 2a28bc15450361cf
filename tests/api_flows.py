"""The JSON API's behaviour, written once and run through each framework's own test client
(tests/test_flask.py, tests/test_django.py): cookie and bearer login, CSRF, roles, logout,
revoke-others, refresh and the JSON errors, for the session, jwt and hybrid strategies.

A framework test provides a :class:`Rig`: a fresh :class:`Client` per browser, users, the
test's clock. The app under test serves the ``/auth/*`` routes plus ``GET /hello``
(login required), ``GET /admin`` (role ``admin``) and ``GET /public`` (optional identity).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from satchel.clock import ManualClock

PASSWORD = "correct horse battery"
BASE = "https://testserver"
ORIGIN = {"Origin": BASE, "Sec-Fetch-Site": "same-origin"}
EVIL = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
COOKIE = "__Host-satchel"


@dataclass
class Reply:
    """A response as the flows read it."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


class Client(Protocol):
    """One browser (its own cookie jar) talking to the app under test over https."""

    def request(
        self,
        method: str,
        path: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> Reply: ...


class Rig(Protocol):
    strategy: str
    clock: ManualClock

    def client(self) -> Client: ...

    def create_user(self, username: str, roles: Sequence[str] = ()) -> str: ...


def assert_error(reply: Reply, status: int, code: str | None = None) -> dict[str, str]:
    """A JSON error of the shared shape, never a trace."""
    assert reply.status == status, (reply.status, reply.body[:300])
    assert (reply.header("content-type") or "").startswith("application/json"), reply.headers
    body = reply.json()
    # The token endpoint's errors also carry RFC 6749's error_description.
    assert set(body) - {"error_description"} == {"error", "detail"}, body
    if code is not None:
        assert body["error"] == code, body
    assert b"Traceback" not in reply.body
    return {"error": body["error"], "detail": body["detail"]}


def login(client: Client, username: str = "alice", **extra: Any) -> Reply:
    reply = client.request(
        "POST",
        "/auth/login",
        json={"username": username, "password": PASSWORD, **extra},
        headers=ORIGIN,
    )
    assert reply.status == 200, reply.body
    return reply


def token(client: Client, username: str = "alice") -> dict[str, Any]:
    reply = client.request(
        "POST",
        "/auth/token",
        data={"grant_type": "password", "username": username, "password": PASSWORD},
    )
    assert reply.status == 200, reply.body
    body: dict[str, Any] = reply.json()
    return body


def bearer(access_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {access_token}"}


# --- the flows --------------------------------------------------------------------------------


def cookie_login(rig: Rig) -> None:
    rig.create_user("alice", ["admin"])
    browser = rig.client()
    reply = login(browser)
    me = reply.json()
    assert me["username"] == "alice" and me["transport"] == "cookie"
    assert me["strategy"] == rig.strategy
    cookies = reply.all("set-cookie")
    assert any(c.startswith(f"{COOKIE}=") and "HttpOnly" in c and "Secure" in c for c in cookies)
    assert reply.header("cache-control") == "no-store"
    assert browser.request("GET", "/auth/me").json()["transport"] == "cookie"
    assert browser.request("GET", "/hello").json() == {"hello": "alice"}
    assert browser.request("GET", "/public").json()["user"] == "alice"
    assert rig.client().request("GET", "/public").json()["user"] is None
    # The same again: now from the cache (the steady state), with the same answer.
    for _ in range(3):
        assert browser.request("GET", "/hello").json() == {"hello": "alice"}


def bearer_login(rig: Rig) -> None:
    rig.create_user("alice")
    client = rig.client()
    issued = token(client)
    assert issued["token_type"] == "Bearer" and issued["expires_in"] > 0
    assert (issued.get("refresh_token") is not None) == (rig.strategy != "session")
    for _ in range(3):
        reply = client.request("GET", "/hello", headers=bearer(issued["access_token"]))
        assert reply.json() == {"hello": "alice"}
    me = client.request("GET", "/auth/me", headers=bearer(issued["access_token"])).json()
    assert me["transport"] == "bearer" and me["strategy"] == rig.strategy
    assert client.request("GET", "/hello").status == 401  # nothing stored in the client


def csrf(rig: Rig) -> None:
    rig.create_user("alice")
    browser = rig.client()
    # Login CSRF: a cross-site post, and a form without the token, are refused first.
    reply = browser.request(
        "POST", "/auth/login", data={"username": "alice", "password": PASSWORD}, headers=EVIL
    )
    assert_error(reply, 403, "csrf_failed")
    assert not reply.all("set-cookie")
    reply = browser.request("POST", "/auth/login", data={"username": "alice", "password": PASSWORD})
    assert_error(reply, 403, "csrf_failed")
    # The login form's token (bound to the pre-session cookie /auth/csrf sets) lets it in.
    form_token = browser.request("GET", "/auth/csrf").json()["csrf_token"]
    reply = browser.request(
        "POST",
        "/auth/login",
        data={"username": "alice", "password": PASSWORD, "csrf_token": form_token},
    )
    assert reply.status == 200, reply.body
    # A cross-site form post cannot log the victim out or end their other sessions.
    assert_error(
        browser.request("POST", "/auth/logout", data={"a": "b"}, headers=EVIL), 403, "csrf_failed"
    )
    assert_error(
        browser.request(
            "POST", "/auth/sessions/revoke-others", headers={"Sec-Fetch-Site": "cross-site"}
        ),
        403,
        "csrf_failed",
    )
    assert_error(browser.request("POST", "/auth/logout", data={"a": "b"}), 403, "csrf_failed")
    assert browser.request("GET", "/hello").status == 200  # still logged in
    # With the session's token the same form post works.
    session_token = browser.request("GET", "/auth/csrf").json()["csrf_token"]
    assert session_token != form_token
    reply = browser.request("POST", "/auth/logout", data={"csrf_token": session_token})
    assert reply.status == 204, reply.body
    assert browser.request("GET", "/hello").status == 401
    # Bearer requests carry nothing a browser adds by itself: no check.
    issued = token(rig.client())
    reply = rig.client().request(
        "POST", "/auth/logout", headers={**EVIL, **bearer(issued["access_token"])}
    )
    assert reply.status == 204


def roles(rig: Rig) -> None:
    rig.create_user("alice", ["admin"])
    rig.create_user("bob")
    assert_error(rig.client().request("GET", "/admin"), 401, "not_authenticated")
    bob = rig.client()
    login(bob, "bob")
    assert_error(bob.request("GET", "/admin"), 403, "forbidden")
    assert bob.request("GET", "/hello").status == 200
    alice = token(rig.client(), "alice")
    reply = rig.client().request("GET", "/admin", headers=bearer(alice["access_token"]))
    assert reply.status == 200 and reply.json() == {"admin": "alice"}


def logout(rig: Rig) -> None:
    rig.create_user("alice")
    browser = rig.client()
    login(browser)
    assert browser.request("GET", "/hello").status == 200
    reply = browser.request("POST", "/auth/logout", headers=ORIGIN)
    assert reply.status == 204 and reply.body == b""
    cleared = [c for c in reply.all("set-cookie") if c.startswith(f"{COOKIE}=")]
    assert cleared and "Max-Age=0" in cleared[0]
    assert_error(browser.request("GET", "/hello"), 401)
    # A bearer token ends with its logout, and stays refused (cache included).
    client = rig.client()
    access = token(client)["access_token"]
    assert client.request("GET", "/hello", headers=bearer(access)).status == 200
    assert client.request("POST", "/auth/logout", headers=bearer(access)).status == 204
    for _ in range(2):
        assert_error(client.request("GET", "/hello", headers=bearer(access)), 401)
    # Logging out again, or without any credential, is harmless.
    assert client.request("POST", "/auth/logout").status == 204


def revoke_others(rig: Rig) -> None:
    rig.create_user("alice")
    laptop, phone = rig.client(), rig.client()
    login(laptop)
    phone_token = token(phone)["access_token"]
    assert phone.request("GET", "/hello", headers=bearer(phone_token)).status == 200
    sessions = laptop.request("GET", "/auth/sessions").json()
    assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
    reply = laptop.request("POST", "/auth/sessions/revoke-others", headers=ORIGIN)
    assert reply.status == 200 and reply.json() == {"revoked": 1}
    assert_error(phone.request("GET", "/hello", headers=bearer(phone_token)), 401)
    assert laptop.request("GET", "/hello").status == 200
    assert len(laptop.request("GET", "/auth/sessions").json()) == 1
    # One session by id: only one's own, 404 otherwise; ending the current one clears the cookie.
    other = token(rig.client())["access_token"]
    other_id = rig.client().request("GET", "/auth/me", headers=bearer(other)).json()["session_id"]
    rig.create_user("mallory")
    mallory = token(rig.client(), "mallory")["access_token"]
    reply = rig.client().request("DELETE", f"/auth/sessions/{other_id}", headers=bearer(mallory))
    assert_error(reply, 404, "not_found")
    reply = laptop.request("DELETE", f"/auth/sessions/{other_id}", headers=ORIGIN)
    assert reply.status == 204
    assert_error(rig.client().request("GET", "/hello", headers=bearer(other)), 401)


def refresh(rig: Rig) -> None:
    """jwt and hybrid: rotate a refresh token from the body and from the cookie."""
    rig.create_user("alice")
    client = rig.client()
    issued = token(client)
    reply = client.request("POST", "/auth/refresh", json={"refresh_token": issued["refresh_token"]})
    assert reply.status == 200, reply.body
    pair = reply.json()
    assert pair["refresh_token"] != issued["refresh_token"]
    assert client.request("GET", "/hello", headers=bearer(pair["access_token"])).status == 200
    if rig.strategy != "hybrid":
        return
    browser = rig.client()
    login(browser)
    rig.clock.advance(400)  # the access cookie has expired; the refresh cookie has not
    assert_error(browser.request("GET", "/hello"), 401)
    reply = browser.request("POST", "/auth/refresh", headers=ORIGIN)
    assert reply.status == 200, reply.body
    assert any(c.startswith(f"{COOKIE}=") for c in reply.all("set-cookie"))
    assert browser.request("GET", "/hello").status == 200


# --- errors -----------------------------------------------------------------------------------

#: (method, path, body, content type, extra headers, status, error code or None)
ERRORS: tuple[tuple[str, str, bytes, str | None, Mapping[str, str], int, str | None], ...] = (
    ("POST", "/auth/login", b"{}", "application/json", ORIGIN, 422, "invalid_request"),
    (
        "POST",
        "/auth/login",
        b'{"username": 1, "password": "x"}',
        "application/json",
        ORIGIN,
        422,
        None,
    ),
    (
        "POST",
        "/auth/login",
        b"\xff\xfe\x00garbage",
        "application/json",
        ORIGIN,
        400,
        "invalid_request",
    ),
    ("POST", "/auth/login", b"[1, 2]", "application/json", ORIGIN, 400, "invalid_request"),
    (
        "POST",
        "/auth/login",
        b"username=a&password=b",
        "text/plain",
        ORIGIN,
        415,
        "unsupported_media_type",
    ),
    (
        "POST",
        "/auth/login",
        b"username=alice",
        "application/x-www-form-urlencoded",
        ORIGIN,
        422,
        None,
    ),
    (
        "POST",
        "/auth/login",
        b'{"username":"alice","password":"wrong"}',
        "application/json",
        ORIGIN,
        401,
        "invalid_login",
    ),
    (
        "POST",
        "/auth/login",
        b'{"username":"nobody","password":"wrong"}',
        "application/json",
        ORIGIN,
        401,
        "invalid_login",
    ),
    (
        "POST",
        "/auth/login",
        b'{"username":"alice","password":"x"}',
        "application/json",
        EVIL,
        403,
        "csrf_failed",
    ),
    ("POST", "/auth/login", b"x" * 70_000, "application/json", ORIGIN, 413, "payload_too_large"),
    # The token endpoint answers as RFC 6749 section 5.2 says (docs/oauth.md).
    (
        "POST",
        "/auth/token",
        b"username=alice",
        "application/x-www-form-urlencoded",
        {},
        400,
        "invalid_request",
    ),
    (
        "POST",
        "/auth/token",
        b"grant_type=password&username=alice",
        "application/x-www-form-urlencoded",
        {},
        400,
        "invalid_request",
    ),
    (
        "POST",
        "/auth/token",
        b"username=alice&password=x&grant_type=client_credentials",
        "application/x-www-form-urlencoded",
        {},
        400,
        "unsupported_grant_type",
    ),
    (
        "POST",
        "/auth/token",
        b"grant_type=password&username=alice&password=wrong",
        "application/x-www-form-urlencoded",
        {},
        400,
        "invalid_grant",
    ),
    (
        "POST",
        "/auth/token",
        b"grant_type=password&grant_type=password&username=alice&password=x",
        "application/x-www-form-urlencoded",
        {},
        400,
        "invalid_request",
    ),
    (
        "POST",
        "/auth/token",
        b"grant_type=password&username=alice&password=x&client_secret=s",
        "application/x-www-form-urlencoded",
        {},
        401,
        "invalid_client",
    ),
    ("POST", "/auth/token", b'{"grant_type":"password"}', "application/json", {}, 400, None),
    ("GET", "/auth/me", b"", None, {}, 401, "not_authenticated"),
    ("GET", "/auth/me", b"", None, {"Authorization": "Bearer abc.def.ghi"}, 401, "invalid_token"),
    ("GET", "/auth/me", b"", None, {"Cookie": f"{COOKIE}=garbage"}, 401, "invalid_token"),
    ("GET", "/auth/me", b"", None, {"Authorization": "Basic YTpi"}, 401, None),
    ("GET", "/auth/sessions", b"", None, {}, 401, "not_authenticated"),
    ("POST", "/auth/password", b"{}", "application/json", ORIGIN, 401, "not_authenticated"),
    ("POST", "/auth/refresh", b"", None, ORIGIN, 401, "not_authenticated"),
    (
        "POST",
        "/auth/refresh",
        b'{"refresh_token": 5}',
        "application/json",
        ORIGIN,
        400,
        "invalid_request",
    ),
    ("GET", "/hello", b"", None, {"Authorization": "Bearer x"}, 401, "invalid_token"),
    ("GET", "/auth/logout", b"", None, {}, 405, "method_not_allowed"),
    ("GET", "/auth/login", b"", None, {}, 405, "method_not_allowed"),
)


def errors(rig: Rig) -> None:
    rig.create_user("alice")
    client = rig.client()
    for method, path, body, ctype, headers, status, code in ERRORS:
        reply = client.request(
            method, path, content=body or None, content_type=ctype, headers=headers
        )
        error = assert_error(reply, status, code)
        assert PASSWORD not in error["detail"] and "wrong" not in error["detail"]
        if status == 405:
            assert "POST" in (reply.header("allow") or ""), reply.headers
        challenged = path.startswith(("/auth/me", "/auth/s", "/hello"))
        if status == 401 and challenged and "Cookie" not in headers:
            assert (reply.header("www-authenticate") or "").startswith("Bearer"), (path, headers)
    # Not errors: these answer without any credential.
    assert client.request("GET", "/healthz").json() == {"status": "ok"}
    keys = client.request("GET", "/.well-known/jwks.json").json()["keys"]
    assert (len(keys) > 0) == (rig.strategy != "session")
    assert client.request("POST", "/auth/logout").status == 204
