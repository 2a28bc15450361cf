"""AuthMiddleware as plain ASGI: what it puts in the scope, and how it fails closed."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from apps import serve
from procs import TcpProxy
from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import UserService
from satchel.auth import Auth
from satchel.clock import ManualClock
from satchel.integrations.asgi import AuthMiddleware, Message, Receive, Scope, Send
from satchel.revocation.base import NullBus
from satchel.stores.memory import MemoryStore
from satchel.strategies.base import LoginContext
from satchel.strategies.session import SessionStrategy
from satchel.strategies.session_policy import SessionPolicy
from satchel.transports.bearer import BearerTransport
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import CSRFProtect

PASSWORD = "correct horse battery"
REDIS_URL = os.environ.get("SATCHEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
COOKIE = "__Host-satchel"


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Reports what the middleware left in the scope."""
    if scope["type"] == "lifespan":
        message = await receive()
        await send({"type": f"{message['type']}.complete"})
        return
    identity = scope.get("satchel.identity")
    error = scope.get("satchel.auth_error")
    if scope["type"] == "websocket":
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": identity.username if identity else ""})
        await send({"type": "websocket.close", "code": 1000})
        return
    body = json.dumps(
        {
            "user": identity.username if identity else None,
            "transport": scope.get("satchel.transport"),
            "error": error.code if error else None,
            "has_auth": isinstance(scope.get("satchel.auth"), Auth),
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def hasher() -> AsyncIterator[PasswordHasher]:
    h = PasswordHasher.insecure_fast_for_tests()
    yield h
    h.close()


def make_auth(sessions: Any, users_store: MemoryStore, hasher: PasswordHasher) -> Auth:
    clock = ManualClock()
    strategy = SessionStrategy(sessions, users_store, SessionPolicy(), clock, NullBus())
    return Auth(
        strategy=strategy,
        transports=[CookieTransport(), BearerTransport()],
        csrf=CSRFProtect(secrets.token_bytes(32)),
        users=UserService(users_store, hasher, clock),
        clock=clock,
    )


@pytest.fixture
async def auth(hasher: PasswordHasher) -> Auth:
    store = MemoryStore()
    auth = make_auth(store, store, hasher)
    await auth.users.create_user("alice", PASSWORD)
    return auth


async def token_for(auth: Auth, username: str = "alice") -> str:
    result = await auth.login(username, PASSWORD, LoginContext())
    return result.credentials.access_token


def client_for(app: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return serve(app, base_url="https://testserver")


async def test_anonymous_request_passes_with_no_identity(auth: Auth) -> None:
    async with client_for(AuthMiddleware(echo_app, auth)) as client:
        body = (await client.get("/")).json()
    assert body == {"user": None, "transport": None, "error": None, "has_auth": True}


async def test_valid_cookie_and_bearer_set_identity_and_transport(auth: Auth) -> None:
    token = await token_for(auth)
    async with client_for(AuthMiddleware(echo_app, auth)) as client:
        by_cookie = (await client.get("/", headers={"cookie": f"{COOKIE}={token}"})).json()
        by_bearer = (await client.get("/", headers={"authorization": f"Bearer {token}"})).json()
    assert by_cookie["user"] == by_bearer["user"] == "alice"
    assert by_cookie["transport"] == "cookie"
    assert by_bearer["transport"] == "bearer"


async def test_S01_unknown_session_is_anonymous_with_error_recorded(auth: Auth) -> None:
    forged = secrets.token_urlsafe(16) + "." + secrets.token_urlsafe(32)
    async with client_for(AuthMiddleware(echo_app, auth)) as client:
        body = (await client.get("/", headers={"cookie": f"{COOKIE}={forged}"})).json()
    assert body["user"] is None
    assert body["error"] == "invalid_token"
    assert body["transport"] == "cookie"


async def test_required_rejects_missing_credential_with_challenge(auth: Auth) -> None:
    async with client_for(AuthMiddleware(echo_app, auth, required=True)) as client:
        response = await client.get("/")
    assert response.status_code == 401
    assert response.json() == {"error": "not_authenticated", "detail": "Authentication required."}
    assert response.headers["www-authenticate"] == 'Bearer realm="satchel"'
    assert "set-cookie" not in response.headers


async def test_required_rejected_bearer_gets_invalid_token_challenge(auth: Auth) -> None:
    async with client_for(AuthMiddleware(echo_app, auth, required=True)) as client:
        response = await client.get("/", headers={"authorization": "Bearer not-a-real-token"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_required_lets_valid_credential_through(auth: Auth) -> None:
    token = await token_for(auth)
    async with client_for(AuthMiddleware(echo_app, auth, required=True)) as client:
        response = await client.get("/", headers={"authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json()["user"] == "alice"


async def test_S11_two_different_credentials_fail_closed(auth: Auth) -> None:
    first, second = await token_for(auth), await token_for(auth)
    headers = {"cookie": f"{COOKIE}={first}", "authorization": f"Bearer {second}"}
    async with client_for(AuthMiddleware(echo_app, auth)) as client:
        body = (await client.get("/", headers=headers)).json()
    assert body["user"] is None
    assert body["error"] == "ambiguous_credentials"


async def test_S08_token_in_query_string_is_ignored(auth: Auth) -> None:
    token = await token_for(auth)
    async with client_for(AuthMiddleware(echo_app, auth)) as client:
        body = (await client.get("/", params={"access_token": token})).json()
    assert body["user"] is None and body["error"] is None


async def test_lifespan_passes_through_untouched(auth: Auth) -> None:
    sent: list[Message] = []
    queue = [{"type": "lifespan.startup"}]

    async def receive() -> Message:
        return queue.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "lifespan"}
    await AuthMiddleware(echo_app, auth)(scope, receive, send)
    assert sent == [{"type": "lifespan.startup.complete"}]
    assert "satchel.identity" not in scope


async def _websocket(app: Any, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        sent.append(message)

    scope: Scope = {"type": "websocket", "path": "/ws", "headers": headers}
    await app(scope, receive, send)
    return sent


async def test_websocket_identity_and_required(auth: Auth) -> None:
    token = await token_for(auth)
    sent = await _websocket(
        AuthMiddleware(echo_app, auth, required=True),
        [(b"cookie", f"{COOKIE}={token}".encode())],
    )
    assert {"type": "websocket.send", "text": "alice"} in sent
    refused = await _websocket(AuthMiddleware(echo_app, auth, required=True), [])
    assert refused == [{"type": "websocket.close", "code": 1008}]


# --- F01: a real store outage while verifying ------------------------------------------------


@pytest.mark.redis
async def test_F01_store_down_while_verifying_is_503_and_recovers(hasher: PasswordHasher) -> None:
    from urllib.parse import urlsplit

    from satchel.stores.redis import RedisStore

    target = urlsplit(REDIS_URL)
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379).start()
    prefix = f"satchel_test_{secrets.token_hex(6)}"
    db = target.path or "/0"
    sessions = RedisStore.from_url(f"redis://127.0.0.1:{proxy.port}{db}", prefix=prefix)
    users_store = MemoryStore()
    auth = make_auth(sessions, users_store, hasher)
    await auth.users.create_user("alice", PASSWORD)
    token = await token_for(auth)
    app = AuthMiddleware(echo_app, auth)
    try:
        async with client_for(app) as client:
            ok = await client.get("/", headers={"cookie": f"{COOKIE}={token}"})
            assert ok.json()["user"] == "alice"

            proxy.cut()
            down = await client.get("/", headers={"cookie": f"{COOKIE}={token}"})
            assert down.status_code == 503
            assert down.json()["error"] == "store_unavailable"
            assert int(down.headers["retry-after"]) >= 1
            assert "set-cookie" not in down.headers
            assert set(down.headers) == {
                "content-type",
                "content-length",
                "cache-control",
                "retry-after",
            }
            # Anonymous requests never touch the store and keep working.
            assert (await client.get("/")).status_code == 200

            # F07: the session from before the outage works again once the store is back.
            proxy.restore()
            again = await client.get("/", headers={"cookie": f"{COOKIE}={token}"})
            assert again.status_code == 200
            assert again.json()["user"] == "alice"
    finally:
        keys = [k async for k in sessions.client.scan_iter(match=f"{prefix}:*", count=10_000)]
        if keys:
            await sessions.client.delete(*keys)
        await sessions.close()
        proxy.close()


def test_with_transport_reuses_the_named_copy_of_a_cached_identity() -> None:
    from satchel.identity import Identity
    from satchel.integrations import asgi

    def make(user: str) -> Identity:
        return Identity(user, user, frozenset({"user"}), "session", 0.0, 60.0, session_id="s")

    cached = make("alice")
    first = asgi.with_transport(cached, "bearer")
    assert first.transport == "bearer" and first.user_id == "alice"
    assert asgi.with_transport(cached, "bearer") is first
    on_cookie = asgi.with_transport(cached, "cookie")
    assert on_cookie.transport == "cookie" and on_cookie is not first
    # Another identity (even an equal one) never gets someone else's copy.
    twin = make("alice")
    assert asgi.with_transport(twin, "bearer") is not first
    assert asgi.with_transport(make("bob"), "bearer").user_id == "bob"
    # Bounded: a full memo starts over instead of growing.
    for _ in range(asgi._TRANSPORTED_MAX + 10):
        asgi.with_transport(make("x"), "bearer")
    assert len(asgi._TRANSPORTED["bearer"]) <= asgi._TRANSPORTED_MAX
