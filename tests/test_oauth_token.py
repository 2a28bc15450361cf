"""``POST /auth/token`` as an OAuth 2.0 token endpoint (RFC 6749 §3.2, §4.3, §5, §6), in
process: every error in the RFC's shape, both grants, client authentication, true lifetimes."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest

from apps import Apps, RunningApp

PASSWORD = "correct horse battery"
PASSWORD_GRANT = {"grant_type": "password", "username": "alice", "password": PASSWORD}


def assert_oauth_error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """RFC 6749 §5.2: the status, JSON ``error`` + ``error_description`` (+ ``detail``)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    body: dict[str, Any] = response.json()
    assert set(body) == {"error", "error_description", "detail"}, body
    assert body["error"] == code, body
    assert body["error_description"] == body["detail"] and body["detail"]
    assert PASSWORD not in response.text
    return body


def assert_token_response(response: httpx.Response) -> dict[str, Any]:
    """RFC 6749 §5.1: 200, a Bearer token with a lifetime, never cached."""
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert "set-cookie" not in response.headers
    body: dict[str, Any] = response.json()
    assert body["token_type"] == "Bearer"
    assert isinstance(body["access_token"], str) and body["access_token"]
    assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
    return body


async def token(app: RunningApp, data: Any = None, **options: Any) -> httpx.Response:
    async with app.fresh_client() as client:
        return await client.post("/auth/token", data=data, **options)


@pytest.fixture
async def session_app(make_app: Apps) -> RunningApp:
    return await make_app(users={"alice": ["admin"]}, password=PASSWORD)


@pytest.fixture(params=["hybrid", "jwt"])
async def hybrid_app(make_app: Apps, request: pytest.FixtureRequest) -> RunningApp:
    """An app whose strategy rotates refresh tokens (``auth.can_refresh``)."""
    return await make_app(
        strategy=request.param, users={"alice": []}, password=PASSWORD, refresh_grace=0
    )


# --- §4.3 password grant and §5.2 errors ------------------------------------------------------


async def test_password_grant_issues_a_bearer_token(session_app: RunningApp) -> None:
    body = assert_token_response(await token(session_app, PASSWORD_GRANT))
    me = await session_app.client.get(
        "/auth/me", headers={"authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["username"] == "alice"
    assert "refresh_token" not in body  # the session strategy rotates no refresh tokens


async def test_wrong_password_is_invalid_grant_and_unknown_user_looks_the_same(
    session_app: RunningApp,
) -> None:
    wrong = await token(session_app, {**PASSWORD_GRANT, "password": "nope-nope-nope"})
    unknown = await token(session_app, {**PASSWORD_GRANT, "username": "mallory"})
    assert_oauth_error(wrong, 400, "invalid_grant")
    assert "www-authenticate" not in wrong.headers
    assert wrong.content == unknown.content


async def test_disabled_account_is_invalid_grant(session_app: RunningApp) -> None:
    user = await session_app.auth.users.store.get_user_by_name("alice")
    assert user is not None
    await session_app.auth.set_disabled(user.id, True)
    assert_oauth_error(await token(session_app, PASSWORD_GRANT), 400, "invalid_grant")


@pytest.mark.parametrize(
    "grant_type",
    [
        "client_credentials",
        "authorization_code",
        "implicit",
        "urn:ietf:params:oauth:grant-type:device_code",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "PASSWORD",
    ],
)
async def test_other_grant_types_are_unsupported(session_app: RunningApp, grant_type: str) -> None:
    response = await token(session_app, {**PASSWORD_GRANT, "grant_type": grant_type})
    assert_oauth_error(response, 400, "unsupported_grant_type")


@pytest.mark.parametrize(
    ("data", "missing"),
    [
        ({"username": "alice", "password": PASSWORD}, "grant_type"),
        ({"grant_type": "", "username": "alice", "password": PASSWORD}, "grant_type"),
        ({"grant_type": "password", "password": PASSWORD}, "username"),
        ({"grant_type": "password", "username": "alice"}, "password"),
        # §3.1: a parameter sent without a value counts as omitted.
        ({"grant_type": "password", "username": "alice", "password": ""}, "password"),
        ({"grant_type": "refresh_token"}, "refresh_token"),
    ],
)
async def test_missing_parameters_are_invalid_request(
    session_app: RunningApp, data: dict[str, str], missing: str
) -> None:
    calls = session_app.auth.users.hasher.calls
    body = assert_oauth_error(await token(session_app, data), 400, "invalid_request")
    assert missing in body["error_description"]
    assert session_app.auth.users.hasher.calls == calls  # refused before any hashing


@pytest.mark.parametrize("name", ["grant_type", "username", "password"])
async def test_a_repeated_parameter_is_invalid_request(session_app: RunningApp, name: str) -> None:
    pairs = [*PASSWORD_GRANT.items(), (name, PASSWORD_GRANT[name])]
    response = await token(
        session_app,
        content=str(httpx.QueryParams(pairs)).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    body = assert_oauth_error(response, 400, "invalid_request")
    assert name in body["error_description"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"grant_type": "password", "username": "alice"}', "application/json"),
        (b"grant_type=password&username=alice", "text/plain"),
        (b"", None),
    ],
)
async def test_a_body_that_is_not_a_form_is_invalid_request(
    session_app: RunningApp, content: bytes, content_type: str | None
) -> None:
    headers = {"content-type": content_type} if content_type else {}
    response = await token(session_app, content=content, headers=headers)
    assert_oauth_error(response, 400, "invalid_request")


async def test_a_file_in_place_of_the_password_is_invalid_request(
    session_app: RunningApp,
) -> None:
    response = await token(
        session_app,
        data={"grant_type": "password", "username": "alice"},
        files={"password": ("p.txt", PASSWORD.encode(), "text/plain")},
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_multipart_form_is_accepted(session_app: RunningApp) -> None:
    fields = {name: (None, value) for name, value in PASSWORD_GRANT.items()}
    assert_token_response(await token(session_app, files=fields))


async def test_a_password_in_the_query_string_is_not_read(session_app: RunningApp) -> None:
    response = await token(
        session_app, data={"grant_type": "password", "username": "alice"}, params=PASSWORD_GRANT
    )
    assert_oauth_error(response, 400, "invalid_request")


async def test_an_over_long_password_is_invalid_request_before_hashing(
    session_app: RunningApp,
) -> None:
    calls = session_app.auth.users.hasher.calls
    response = await token(session_app, {**PASSWORD_GRANT, "password": "p" * 2000})
    assert_oauth_error(response, 400, "invalid_request")
    assert session_app.auth.users.hasher.calls == calls


async def test_unknown_parameters_are_ignored(session_app: RunningApp) -> None:
    assert_token_response(
        await token(session_app, {**PASSWORD_GRANT, "audience": "x", "nonce": "y"})
    )


async def test_a_scope_is_invalid_scope(session_app: RunningApp) -> None:
    response = await token(session_app, {**PASSWORD_GRANT, "scope": "openid profile"})
    assert_oauth_error(response, 400, "invalid_scope")


async def test_throttled_answers_429_with_retry_after_in_the_oauth_shape(
    make_app: Apps,
) -> None:
    app = await make_app(users={"alice": []}, password=PASSWORD, login_ip_limit=2)
    for _ in range(2):
        wrong = await token(app, {**PASSWORD_GRANT, "password": "wrong password!"})
        assert_oauth_error(wrong, 400, "invalid_grant")
    refused = await token(app, PASSWORD_GRANT)
    assert_oauth_error(refused, 429, "too_many_requests")
    assert int(refused.headers["retry-after"]) >= 1


async def test_cookie_only_server_has_no_token_grants(make_app: Apps) -> None:
    app = await make_app(users={"alice": []}, password=PASSWORD, transports="cookie")
    body = assert_oauth_error(await token(app, PASSWORD_GRANT), 400, "unsupported_grant_type")
    assert "/auth/login" in body["error_description"]


# --- §2.3 client authentication: public clients only -------------------------------------------


def basic(client_id: str, secret: str) -> dict[str, str]:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"authorization": f"Basic {raw}"}


async def test_a_client_id_is_accepted_and_ignored(session_app: RunningApp) -> None:
    assert_token_response(await token(session_app, {**PASSWORD_GRANT, "client_id": "my-app"}))
    # The same public client identifying itself with HTTP Basic and no secret.
    assert_token_response(await token(session_app, PASSWORD_GRANT, headers=basic("my-app", "")))


async def test_a_client_secret_is_invalid_client(session_app: RunningApp) -> None:
    calls = session_app.auth.users.hasher.calls
    in_body = await token(
        session_app, {**PASSWORD_GRANT, "client_id": "my-app", "client_secret": "s3cret"}
    )
    assert_oauth_error(in_body, 401, "invalid_client")
    in_header = await token(session_app, PASSWORD_GRANT, headers=basic("my-app", "s3cret"))
    assert_oauth_error(in_header, 401, "invalid_client")
    # §5.2: a client that authenticated with the Authorization header gets a challenge.
    assert in_header.headers["www-authenticate"].startswith("Basic realm=")
    assert "s3cret" not in in_body.text + in_header.text
    assert session_app.auth.users.hasher.calls == calls  # no password looked at


async def test_malformed_basic_credentials_are_invalid_client(session_app: RunningApp) -> None:
    for value in ("Basic !!!", "Basic " + base64.b64encode(b"no-colon").decode()):
        response = await token(session_app, PASSWORD_GRANT, headers={"authorization": value})
        assert_oauth_error(response, 401, "invalid_client")


# --- expires_in tells the truth ----------------------------------------------------------------


async def test_a_session_token_reports_its_idle_timeout(make_app: Apps) -> None:
    app = await make_app(
        users={"alice": []}, password=PASSWORD, idle_timeout=600, absolute_timeout=43_200
    )
    body = assert_token_response(await token(app, PASSWORD_GRANT))
    assert body["expires_in"] == 600
    headers = {"authorization": f"Bearer {body['access_token']}"}
    # It really dies then without use...
    app.clock.advance(601)
    assert (await app.client.get("/auth/me", headers=headers)).status_code == 401


async def test_a_session_token_reports_the_absolute_timeout_when_that_is_nearer(
    make_app: Apps,
) -> None:
    app = await make_app(
        users={"alice": []}, password=PASSWORD, idle_timeout=1800, absolute_timeout=1800
    )
    assert assert_token_response(await token(app, PASSWORD_GRANT))["expires_in"] == 1800


async def test_a_jwt_reports_its_own_lifetime(make_app: Apps) -> None:
    app = await make_app(strategy="jwt", users={"alice": []}, password=PASSWORD, access_ttl=120)
    assert assert_token_response(await token(app, PASSWORD_GRANT))["expires_in"] == 120


# --- §6 refresh_token grant --------------------------------------------------------------------


async def test_refresh_grant_rotates_like_auth_refresh(hybrid_app: RunningApp) -> None:
    assert hybrid_app.auth.can_refresh
    first = assert_token_response(await token(hybrid_app, PASSWORD_GRANT))
    lifetime = 300 if hybrid_app.strategy == "hybrid" else hybrid_app.settings.access_ttl
    assert lifetime - 1 <= first["expires_in"] <= lifetime
    assert first["refresh_expires_in"] > 0
    grant = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    second = assert_token_response(await token(hybrid_app, grant))
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    me = await hybrid_app.client.get(
        "/auth/me", headers={"authorization": f"Bearer {second['access_token']}"}
    )
    assert me.status_code == 200 and me.json()["username"] == "alice"
    # One family with /auth/refresh: the new token rotates there too.
    third = await hybrid_app.client.post(
        "/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert third.status_code == 200, third.text

    # The retired token again: reuse detection ends the whole session (invalid_grant).
    reused = await token(hybrid_app, grant)
    assert_oauth_error(reused, 400, "invalid_grant")
    latest = {"grant_type": "refresh_token", "refresh_token": third.json()["refresh_token"]}
    assert_oauth_error(await token(hybrid_app, latest), 400, "invalid_grant")


async def test_an_unknown_refresh_token_is_invalid_grant(hybrid_app: RunningApp) -> None:
    grant = {"grant_type": "refresh_token", "refresh_token": "x" * 40}
    assert_oauth_error(await token(hybrid_app, grant), 400, "invalid_grant")
    long = {"grant_type": "refresh_token", "refresh_token": "x" * 5000}
    assert_oauth_error(await token(hybrid_app, long), 400, "invalid_request")


async def test_refresh_grant_without_refresh_tokens_is_unsupported(
    session_app: RunningApp,
) -> None:
    grant = {"grant_type": "refresh_token", "refresh_token": "x" * 40}
    body = assert_oauth_error(await token(session_app, grant), 400, "unsupported_grant_type")
    assert "session" in body["error_description"]


async def test_a_refresh_after_the_idle_timeout_is_invalid_grant(make_app: Apps) -> None:
    app = await make_app(strategy="hybrid", users={"alice": []}, password=PASSWORD)
    first = assert_token_response(await token(app, PASSWORD_GRANT))
    app.clock.advance(app.settings.idle_timeout + 1)
    grant = {"grant_type": "refresh_token", "refresh_token": first["refresh_token"]}
    assert_oauth_error(await token(app, grant), 400, "invalid_grant")
