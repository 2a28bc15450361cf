"""The reference server's JSON API, driven in-process through httpx's ASGI transport."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from apps import Apps, RunningApp
from satchel.accounts.passwords import PasswordHasher
from satchel.config.build import build_auth
from satchel.config.settings import Settings
from satchel.transports.cookie import CookieTransport

PASSWORD = "correct horse battery"
BASE = "https://testserver"
COOKIE = "__Host-satchel"

Server = RunningApp
ServerFactory = Callable[..., Awaitable[Server]]


@pytest.fixture(params=["memory", "sqlite"])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def make_server(make_app: Apps, store_kind: str) -> ServerFactory:
    async def factory(**overrides: object) -> Server:
        users = {"alice": ["admin"], "bob": []}
        return await make_app(store_kind, users=users, password=PASSWORD, **overrides)

    return factory


@pytest.fixture
async def server(make_server: ServerFactory) -> Server:
    return await make_server()


async def login(client: httpx.AsyncClient, username: str = "alice") -> httpx.Response:
    response = await client.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return response


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "detail"}
    if code is not None:
        assert body["error"] == code
    assert "Traceback" not in response.text
    return body


# --- cookie login ---------------------------------------------------------------------------


async def test_cookie_login_me_logout_cycle(server: Server) -> None:
    response = await login(server.client)
    body = response.json()
    assert body["username"] == "alice"
    assert body["transport"] == "cookie"
    assert body["roles"] == ["admin"]
    token = server.client.cookies.get(COOKIE)
    assert token
    # The credential rides only in the cookie, never in the body.
    assert token not in response.text
    assert "access_token" not in body

    me = await server.client.get("/auth/me")
    assert me.status_code == 200
    assert me.json()["user_id"] == body["user_id"]

    out = await server.client.post("/auth/logout")
    assert out.status_code == 204
    assert out.headers["cache-control"] == "no-store"

    # Replaying the old cookie after logout must fail (S03).
    async with server.fresh_client() as other:
        replay = await other.get("/auth/me", headers={"cookie": f"{COOKIE}={token}"})
    assert_error(replay, 401, "invalid_token")


async def test_S09_login_cookie_attributes(server: Server) -> None:
    response = await login(server.client)
    cookies = response.headers.get_list("set-cookie")
    assert len(cookies) == 1
    parts = [p.strip() for p in cookies[0].split(";")]
    assert parts[0].startswith(f"{COOKIE}=")
    attrs = {}
    for part in parts[1:]:
        key, _, value = part.partition("=")
        attrs[key.lower()] = value
    assert "httponly" in attrs
    assert "secure" in attrs
    assert attrs["samesite"] == "Lax"
    assert attrs["path"] == "/"
    assert "domain" not in attrs
    # Not remembered: a browser-session cookie, forgotten when the browser closes.
    assert "max-age" not in attrs and "expires" not in attrs
    assert response.headers["cache-control"] == "no-store"


async def test_S03_logout_clears_cookie_with_identical_attributes(server: Server) -> None:
    login_response = await login(server.client)
    set_tail = login_response.headers["set-cookie"].split(";", 1)[1]  # after name=value
    out = await server.client.post("/auth/logout")
    cleared = [c for c in out.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}=")]
    assert len(cleared) == 1
    name_value, max_age, tail = cleared[0].split(";", 2)
    assert name_value == f"{COOKIE}="
    assert max_age.strip() == "Max-Age=0"
    assert tail == set_tail
    assert out.headers["cache-control"] == "no-store"
    assert (await server.client.get("/auth/me")).status_code == 401


async def csrf_token(client: httpx.AsyncClient) -> str:
    response = await client.get("/auth/csrf")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    token: str = response.json()["csrf_token"]
    return token


async def test_login_with_form_body(server: Server) -> None:
    token = await csrf_token(server.client)
    response = await server.client.post(
        "/auth/login",
        data={"username": "bob", "password": PASSWORD, "remember": "on", "csrf_token": token},
    )
    assert response.status_code == 200, response.text
    assert response.json()["username"] == "bob"
    # "remember me" sessions live longer than the normal absolute time-out.
    max_age = int(response.headers["set-cookie"].split("Max-Age=")[1].split(";")[0])
    assert max_age == server.auth.settings.remember_absolute_timeout


async def test_S02_each_login_issues_a_new_session(server: Server) -> None:
    first = (await login(server.client)).json()["session_id"]
    second = (await login(server.client)).json()["session_id"]
    assert first != second


async def test_P01_unknown_user_and_wrong_password_look_identical(server: Server) -> None:
    unknown = await server.client.post(
        "/auth/login", json={"username": "mallory", "password": PASSWORD}
    )
    wrong = await server.client.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD + "!"}
    )
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert unknown.json()["error"] == "invalid_login"
    assert "set-cookie" not in unknown.headers and "set-cookie" not in wrong.headers

    def comparable(r: httpx.Response) -> list[tuple[str, str]]:
        return sorted((k, v) for k, v in r.headers.items() if k not in ("date", "x-request-id"))

    assert comparable(unknown) == comparable(wrong)


async def test_P01_token_endpoint_unknown_and_wrong_identical(server: Server) -> None:
    unknown = await server.client.post(
        "/auth/token", data={"grant_type": "password", "username": "mallory", "password": PASSWORD}
    )
    wrong = await server.client.post(
        "/auth/token",
        data={"grant_type": "password", "username": "alice", "password": "nope-nope-nope"},
    )
    assert unknown.status_code == wrong.status_code == 400  # invalid_grant (RFC 6749 §5.2)
    assert unknown.content == wrong.content


async def test_C03_get_logout_is_405(server: Server) -> None:
    await login(server.client)
    response = await server.client.get("/auth/logout")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["allow"]
    # The session survived the GET.
    assert (await server.client.get("/auth/me")).status_code == 200


async def test_me_without_credential_is_401_with_bearer_challenge(server: Server) -> None:
    response = await server.client.get("/auth/me")
    assert_error(response, 401, "not_authenticated")
    assert response.headers["www-authenticate"].startswith("Bearer ")


async def test_S10_garbage_cookie_is_401_not_500(server: Server) -> None:
    for value in ["x" * 10_000, "'; DROP TABLE sessions;--", "abc.def", "\u00e9t\u00e9"]:
        raw = value.encode("utf-8")
        response = await server.client.get(
            "/auth/me", headers=[(b"cookie", COOKIE.encode() + b"=" + raw)]
        )
        assert_error(response, 401)


# --- CSRF (cookie transport) -------------------------------------------------------------------


async def test_C03_login_form_without_token_is_403(server: Server) -> None:
    calls = server.auth.users.hasher.calls
    response = await server.client.post(
        "/auth/login", data={"username": "alice", "password": PASSWORD}
    )
    assert_error(response, 403, "csrf_failed")
    assert "set-cookie" not in response.headers
    # Refused before any password work.
    assert server.auth.users.hasher.calls == calls


async def test_C03_login_posted_cross_site_is_403(server: Server) -> None:
    for headers in (
        {"origin": "https://evil.example"},
        {"sec-fetch-site": "cross-site"},
        {"origin": "null"},
        {"origin": "http://testserver"},  # wrong scheme
    ):
        response = await server.client.post(
            "/auth/login", json={"username": "alice", "password": PASSWORD}, headers=headers
        )
        assert_error(response, 403, "csrf_failed")


async def test_C02_login_token_from_another_browser_is_403(server: Server) -> None:
    async with server.fresh_client() as attacker:
        foreign = await csrf_token(attacker)
    await csrf_token(server.client)  # the victim has a pre-session cookie of their own
    response = await server.client.post(
        "/auth/login", data={"username": "alice", "password": PASSWORD, "csrf_token": foreign}
    )
    assert_error(response, 403, "csrf_failed")


async def test_same_origin_json_login_passes(server: Server) -> None:
    response = await server.client.post(
        "/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"origin": "https://testserver", "sec-fetch-site": "same-origin"},
    )
    assert response.status_code == 200


async def test_C01_cross_site_cookie_requests_change_nothing(server: Server) -> None:
    await login(server.client)
    async with server.fresh_client() as other:
        other_sid = (await login(other)).json()["session_id"]
        evil = {"origin": "https://evil.example"}
        assert_error(await server.client.post("/auth/logout", headers=evil), 403, "csrf_failed")
        assert_error(
            await server.client.post(
                "/auth/sessions/revoke-others", headers={"sec-fetch-site": "cross-site"}
            ),
            403,
            "csrf_failed",
        )
        assert_error(
            await server.client.delete(f"/auth/sessions/{other_sid}", headers=evil),
            403,
            "csrf_failed",
        )
        # A form-encoded post without a token is refused even without origin headers.
        assert_error(
            await server.client.post(
                "/auth/logout",
                content=b"x=1",
                headers={"content-type": "application/x-www-form-urlencoded"},
            ),
            403,
            "csrf_failed",
        )
        assert (await server.client.get("/auth/me")).status_code == 200
        assert (await other.get("/auth/me")).status_code == 200


async def test_cookie_form_logout_with_session_token(server: Server) -> None:
    await login(server.client)
    token = await csrf_token(server.client)
    out = await server.client.post("/auth/logout", data={"csrf_token": token})
    assert out.status_code == 204
    assert (await server.client.get("/auth/me")).status_code == 401


async def test_bearer_requests_need_no_csrf_check(server: Server) -> None:
    token = (
        await server.client.post(
            "/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
        )
    ).json()["access_token"]
    response = await server.client.post(
        "/auth/sessions/revoke-others",
        headers={"authorization": f"Bearer {token}", "origin": "https://elsewhere.example"},
    )
    assert response.status_code == 200


# --- bearer tokens --------------------------------------------------------------------------


async def test_token_endpoint_then_bearer_me(server: Server) -> None:
    response = await server.client.post(
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "bob",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 200, response.text
    assert "set-cookie" not in response.headers
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] > 0
    headers = {"authorization": f"Bearer {body['access_token']}"}
    me = await server.client.get("/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["username"] == "bob"
    assert me.json()["transport"] == "bearer"

    tampered = body["access_token"][:-2] + ("AA" if body["access_token"][-2:] != "AA" else "BB")
    bad = await server.client.get("/auth/me", headers={"authorization": f"Bearer {tampered}"})
    assert_error(bad, 401, "invalid_token")
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]


async def test_token_grant_type_other_than_password_rejected(server: Server) -> None:
    response = await server.client.post(
        "/auth/token",
        data={
            "username": "bob",
            "password": PASSWORD,
            "grant_type": "client_credentials",
        },
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_S11_cookie_and_bearer_for_different_users_rejected(server: Server) -> None:
    await login(server.client, "alice")
    token = (
        await server.client.post(
            "/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
        )
    ).json()["access_token"]
    response = await server.client.get("/auth/me", headers={"authorization": f"Bearer {token}"})
    assert_error(response, 401, "ambiguous_credentials")


async def test_bearer_logout_ends_the_session(server: Server) -> None:
    token = (
        await server.client.post(
            "/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
        )
    ).json()["access_token"]
    headers = {"authorization": f"Bearer {token}"}
    assert (await server.client.post("/auth/logout", headers=headers)).status_code == 204
    assert_error(await server.client.get("/auth/me", headers=headers), 401)


async def test_jwt_token_me_and_tampered(make_server: ServerFactory) -> None:
    server = await make_server(strategy="jwt")
    response = await server.client.post(
        "/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
    )
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert token.count(".") == 2
    ok = await server.client.get("/auth/me", headers={"authorization": f"Bearer {token}"})
    assert ok.status_code == 200
    assert ok.json()["strategy"] == "jwt"
    head, payload, sig = token.split(".")
    flipped = sig[:-4] + ("AAAA" if sig[-4:] != "AAAA" else "BBBB")
    bad = await server.client.get(
        "/auth/me", headers={"authorization": f"Bearer {head}.{payload}.{flipped}"}
    )
    assert_error(bad, 401)
    assert "Bearer" in bad.headers["www-authenticate"]
    jwks = (await server.client.get("/.well-known/jwks.json")).json()
    assert len(jwks["keys"]) == 1
    assert all("d" not in key for key in jwks["keys"])


async def test_jwt_logout_revokes_and_sessions_are_listed(
    make_server: ServerFactory,
) -> None:
    """jwt keeps one refresh-token family per sign-in: the sign-ins are listed, and logout
    ends the family and the access token (pushed over the revocation channel)."""
    server = await make_server(strategy="jwt")
    issued = (
        await server.client.post(
            "/auth/token", data={"grant_type": "password", "username": "bob", "password": PASSWORD}
        )
    ).json()
    assert issued["refresh_token"]
    headers = {"authorization": f"Bearer {issued['access_token']}"}
    listing = await server.client.get("/auth/sessions", headers=headers)
    assert listing.status_code == 200
    assert [s["current"] for s in listing.json()] == [True]
    assert (await server.client.post("/auth/logout", headers=headers)).status_code == 204
    assert_error(await server.client.get("/auth/me", headers=headers), 401)
    refreshed = await server.client.post(
        "/auth/refresh", json={"refresh_token": issued["refresh_token"]}
    )
    assert refreshed.status_code == 401


# --- sessions ------------------------------------------------------------------------------


async def test_sessions_list_revoke_one_and_revoke_others(server: Server) -> None:
    await login(server.client)
    others = [server.fresh_client() for _ in range(2)]
    try:
        for other in others:
            await login(other)
        listing = await server.client.get("/auth/sessions")
        assert listing.status_code == 200
        sessions = listing.json()
        assert len(sessions) == 3
        assert sum(s["current"] for s in sessions) == 1
        for entry in sessions:
            assert set(entry) == {
                "id",
                "created",
                "last_seen",
                "expires",
                "ip",
                "user_agent",
                "current",
                "device_key",  # the DBSC key, null for these unbound sessions
            }
            assert entry["device_key"] is None
        cookie_token = server.client.cookies.get(COOKIE)
        assert cookie_token and cookie_token not in listing.text

        # Revoke one other session: that browser is logged out, we are not.
        victim_id = next(s["id"] for s in sessions if not s["current"])
        sids = [(await o.get("/auth/me")).json()["session_id"] for o in others]
        victim = others[sids.index(victim_id)]
        gone = await server.client.delete(f"/auth/sessions/{victim_id}")
        assert gone.status_code == 204
        assert (await victim.get("/auth/me")).status_code == 401
        assert (await server.client.get("/auth/me")).status_code == 200

        # Deleting it again, or an unknown id, is 404.
        assert_error(await server.client.delete(f"/auth/sessions/{victim_id}"), 404, "not_found")

        ended = await server.client.post("/auth/sessions/revoke-others")
        assert ended.status_code == 200
        assert ended.json() == {"revoked": 1}
        for other in others:
            assert (await other.get("/auth/me")).status_code == 401
        remaining = (await server.client.get("/auth/sessions")).json()
        assert [s["current"] for s in remaining] == [True]
    finally:
        for other in others:
            await other.aclose()


async def test_cannot_revoke_someone_elses_session(server: Server) -> None:
    await login(server.client, "alice")
    async with server.fresh_client() as bob:
        bob_sid = (await login(bob, "bob")).json()["session_id"]
        response = await server.client.delete(f"/auth/sessions/{bob_sid}")
        assert_error(response, 404, "not_found")
        assert (await bob.get("/auth/me")).status_code == 200


async def test_session_records_ip_and_user_agent(server: Server) -> None:
    await server.client.post(
        "/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"user-agent": "TestBrowser/1.0", "x-forwarded-for": "203.0.113.9"},
    )
    (entry,) = (await server.client.get("/auth/sessions")).json()
    assert entry["user_agent"] == "TestBrowser/1.0"
    # X-Forwarded-For is not trusted by default: the peer address is recorded.
    assert entry["ip"] == "127.0.0.1"


async def test_S04_idle_timeout_via_clock(server: Server) -> None:
    await login(server.client)
    server.clock.advance(server.auth.settings.idle_timeout + 1)
    assert_error(await server.client.get("/auth/me"), 401)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 400),
        (b"[1, 2, 3]", "application/json", 400),
        (b'"just a string"', "application/json", 400),
        (b"[" * 50_000 + b"]" * 50_000, "application/json", 413),
        (b"[" * 30_000, "application/json", 400),
        (b"{}", "application/json", 422),
        (b'{"username": "alice"}', "application/json", 422),
        (b'{"username": 123, "password": "x"}', "application/json", 422),
        (b'{"username": "alice", "password": ["x"]}', "application/json", 422),
        (b'{"username": "alice", "password": "x", "remember": "yes"}', "application/json", 422),
        (b'{"username": "alice", "password": null}', "application/json", 422),
        (b"\xff\xfe\x00garbage", "application/json", 400),
        (b"username=alice&password=x", "text/plain", 415),
        (b"username=alice", "application/x-www-form-urlencoded", 422),
        (b"x" * 70_000, "application/json", 413),
    ],
)
async def test_garbage_login_bodies_get_4xx_json(
    server: Server, content: bytes, content_type: str, status: int
) -> None:
    response = await server.client.post(
        "/auth/login", content=content, headers={"content-type": content_type}
    )
    assert_error(response, status)


async def test_validation_errors_do_not_echo_the_password(server: Server) -> None:
    secret = "hunter2-very-secret"
    response = await server.client.post(
        "/auth/login", json={"username": ["nope"], "password": secret, "remember": secret}
    )
    assert_error(response, 422)
    assert secret not in response.text


async def test_P03_huge_password_rejected_before_hashing(server: Server) -> None:
    calls = server.auth.users.hasher.calls
    response = await server.client.post(
        "/auth/login", json={"username": "alice", "password": "p" * 20_000}
    )
    assert_error(response, 413, "password_too_long")
    assert server.auth.users.hasher.calls == calls


async def test_chunked_body_over_the_cap_is_413(server: Server) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(20):
            yield b"a" * 8192

    response = await server.client.post(
        "/auth/login", content=chunks(), headers={"content-type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


async def test_unknown_route_is_json_404(server: Server) -> None:
    assert_error(await server.client.get("/nope"), 404, "not_found")


async def test_multipart_file_in_place_of_password_rejected(server: Server) -> None:
    response = await server.client.post(
        "/auth/login",
        data={"username": "alice"},
        files={"password": ("p.txt", PASSWORD.encode(), "text/plain")},
    )
    assert_error(response, 400)


# --- discovery and health ----------------------------------------------------------------------


async def test_openapi_lists_both_security_schemes(server: Server) -> None:
    spec = (await server.client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["SessionCookie"] == {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE,
        "description": schemes["SessionCookie"]["description"],
    }
    assert schemes["BearerToken"]["scheme"].lower() == "bearer"
    me_security = spec["paths"]["/auth/me"]["get"]["security"]
    assert {"SessionCookie": []} in me_security and {"BearerToken": []} in me_security
    login_body = spec["paths"]["/auth/login"]["post"]["requestBody"]["content"]
    assert "application/json" in login_body


async def test_jwks_empty_for_session_strategy(server: Server) -> None:
    response = await server.client.get("/.well-known/jwks.json")
    assert response.status_code == 200
    assert response.json() == {"keys": []}


async def test_healthz(server: Server) -> None:
    response = await server.client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_bearer_only_config_refuses_cookie_login(make_server: ServerFactory) -> None:
    server = await make_server(transports="bearer")
    response = await server.client.post(
        "/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    assert_error(response, 400, "not_supported")
    assert "set-cookie" not in response.headers


async def test_cookie_only_config_refuses_token_endpoint(make_server: ServerFactory) -> None:
    server = await make_server(transports="cookie")
    response = await server.client.post(
        "/auth/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD}
    )
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_server_header_absent_and_errors_not_cached(server: Server) -> None:
    response = await server.client.get("/auth/me")
    assert "server" not in response.headers
    assert response.headers["cache-control"] == "no-store"


def test_json_body_error_shape_is_stable() -> None:
    # The 413 body written by the ASGI layer uses the same shape as the handlers.
    from satchel.integrations.asgi import json_body

    assert json.loads(json_body(413, "payload_too_large", "x")) == {
        "error": "payload_too_large",
        "detail": "x",
    }


# --- configuration ------------------------------------------------------------------------------


def test_settings_errors_name_the_setting_without_echoing_values() -> None:
    from satchel.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as info:
        Settings(port="postgres://user:s3cret@db/x")
    assert "SATCHEL_PORT" in info.value.detail
    assert "s3cret" not in info.value.detail
    with pytest.raises(ConfigurationError, match="SATCHEL_TRANSPORTS"):
        Settings(transports="cookie,carrier-pigeon")
    with pytest.raises(ConfigurationError, match="absolute_timeout"):
        Settings(idle_timeout=7200, absolute_timeout=3600)


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SATCHEL_TRANSPORTS", "bearer, cookie")
    monkeypatch.setenv("SATCHEL_TRUSTED_ORIGINS", "https://app.example.com")
    monkeypatch.setenv("SATCHEL_STORE", "postgresql://satchel:hunter2@db:5432/auth")
    settings = Settings()
    assert settings.transports == ["bearer", "cookie"]
    assert settings.trusted_origins == ["https://app.example.com"]
    assert "hunter2" not in repr(settings)


async def test_build_auth_maps_transport_order_and_cookie_flags() -> None:
    hasher = PasswordHasher.insecure_fast_for_tests()
    auth = await build_auth(
        Settings(store="memory://", transports="bearer,cookie", cookie_secure=False),
        hasher=hasher,
    )
    try:
        assert [t.name for t in auth.transports] == ["bearer", "cookie"]
        cookie = auth.transport("cookie")
        assert isinstance(cookie, CookieTransport)
        # Without Secure the __Host- prefix is impossible; the transport picks a plain name.
        assert cookie.secure is False
        assert not cookie.cookie_name.startswith("__")
        assert auth.keys is None
    finally:
        await auth.close()
        hasher.close()


async def test_P02_login_throttle_limits_come_from_settings(
    monkeypatch: pytest.MonkeyPatch, make_server: ServerFactory
) -> None:
    from satchel.accounts.throttle import ThrottlePolicy
    from satchel.errors import ConfigurationError

    assert Settings().login_account_limit == 100 and Settings().login_ip_window == 60
    monkeypatch.setenv("SATCHEL_LOGIN_ACCOUNT_LIMIT", "0")
    monkeypatch.setenv("SATCHEL_LOGIN_ACCOUNT_WINDOW", "600")
    monkeypatch.setenv("SATCHEL_LOGIN_IP_LIMIT", "3")
    monkeypatch.setenv("SATCHEL_LOGIN_IP_WINDOW", "30")
    server = await make_server()
    assert server.auth.throttle is not None
    assert server.auth.throttle.policy == ThrottlePolicy(
        account_limit=0, account_window=600.0, ip_limit=3, ip_window=30.0
    )
    # Three failures from one address, then 429 (the account limit is off).
    for _ in range(3):
        wrong = await server.client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "bob", "password": "wrong password!"},
        )
        assert wrong.status_code == 400
    refused = await server.client.post(
        "/auth/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD}
    )
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["retry-after"]) <= 30
    server.clock.advance(61)  # two windows later every count has decayed
    allowed = await server.client.post(
        "/auth/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD}
    )
    assert allowed.status_code == 200
    for name, value in (("login_ip_window", 0), ("login_account_limit", -1)):
        with pytest.raises(ConfigurationError, match=f"SATCHEL_{name.upper()}"):
            Settings(**{name: value})
