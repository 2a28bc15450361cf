"""FastAPI dependencies and error handlers in a user's own app."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Annotated, Any

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, WebSocket

import stepup_flow
from api_flows import Reply
from apps import serve
from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import UserService
from satchel.auth import Auth
from satchel.clock import ManualClock
from satchel.errors import ConfigurationError, StoreUnavailable, Throttled
from satchel.identity import Identity
from satchel.integrations.asgi import AuthMiddleware
from satchel.integrations.fastapi import (
    CurrentIdentity,
    FreshIdentity,
    OptionalIdentity,
    document_security,
    require_fresh,
    require_roles,
    satchel_exception_handlers,
)
from satchel.revocation.base import LocalBus
from satchel.stores.memory import MemoryStore
from satchel.strategies.base import LoginContext
from satchel.strategies.session import SessionStrategy
from satchel.strategies.session_policy import SessionPolicy
from satchel.transports.bearer import BearerTransport
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import CSRFProtect

PASSWORD = "correct horse battery"
LEAKY = "tok_live_do_not_leak_123"


@pytest.fixture
async def auth() -> AsyncIterator[Auth]:
    hasher = PasswordHasher.insecure_fast_for_tests()
    store = MemoryStore()
    clock = ManualClock()
    auth = Auth(
        strategy=SessionStrategy(store, store, SessionPolicy(), clock, LocalBus()),
        transports=[CookieTransport(), BearerTransport()],
        csrf=CSRFProtect(secrets.token_bytes(32)),
        users=UserService(store, hasher, clock),
        clock=clock,
    )
    await auth.users.create_user("alice", PASSWORD, roles=["admin", "ops"])
    await auth.users.create_user("bob", PASSWORD, roles=["ops"])
    yield auth
    hasher.close()


def build_app(auth: Auth, *, middleware: bool = True) -> FastAPI:
    app = FastAPI()
    satchel_exception_handlers(app)
    document_security(app)

    @app.get("/me")
    async def me(identity: CurrentIdentity) -> dict[str, str]:
        return {"user": identity.username}

    @app.get("/maybe")
    async def maybe(identity: OptionalIdentity) -> dict[str, str | None]:
        return {"user": identity.username if identity else None}

    @app.get("/admin")
    async def admin(
        identity: Annotated[Identity, Depends(require_roles("admin", "ops"))],
    ) -> dict[str, str]:
        return {"user": identity.username}

    @app.get("/fresh")
    async def fresh(identity: FreshIdentity) -> dict[str, str]:
        return {"fresh": identity.username}

    @app.get("/fresh-minute", dependencies=[Depends(require_fresh(max_age=60))])
    async def fresh_minute() -> dict[str, bool]:
        return {"fresh": True}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError(f"database said: {LEAKY}")

    @app.get("/throttled")
    async def throttled() -> None:
        raise Throttled(retry_after=42)

    @app.get("/down")
    async def down() -> None:
        raise StoreUnavailable(retry_after=3)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"id": item_id}

    if middleware:
        app.add_middleware(AuthMiddleware, auth=auth)
    else:
        app.state.satchel_auth = auth
    return app


def client_for(app: FastAPI) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return serve(app, base_url="https://testserver", raise_app_exceptions=False)


async def bearer(auth: Auth, username: str) -> dict[str, str]:
    result = await auth.login(username, PASSWORD, LoginContext())
    return {"authorization": f"Bearer {result.credentials.access_token}"}


@pytest.mark.parametrize("middleware", [True, False])
async def test_current_identity(auth: Auth, middleware: bool) -> None:
    async with client_for(build_app(auth, middleware=middleware)) as client:
        ok = await client.get("/me", headers=await bearer(auth, "alice"))
        assert ok.status_code == 200
        assert ok.json() == {"user": "alice"}

        missing = await client.get("/me")
        assert missing.status_code == 401
        assert missing.json() == {
            "error": "not_authenticated",
            "detail": "Authentication required.",
        }
        assert missing.headers["www-authenticate"] == 'Bearer realm="satchel"'

        bad = await client.get("/me", headers={"authorization": "Bearer nope.nope"})
        assert bad.status_code == 401
        assert bad.json()["error"] == "invalid_token"
        assert 'error="invalid_token"' in bad.headers["www-authenticate"]


async def test_optional_identity(auth: Auth) -> None:
    async with client_for(build_app(auth)) as client:
        assert (await client.get("/maybe")).json() == {"user": None}
        # A rejected credential is anonymous for an optional route, not an error.
        rejected = await client.get("/maybe", headers={"authorization": "Bearer nope.nope"})
        assert rejected.status_code == 200 and rejected.json() == {"user": None}
        who = await client.get("/maybe", headers=await bearer(auth, "bob"))
        assert who.json() == {"user": "bob"}


async def test_require_roles_needs_every_role(auth: Auth) -> None:
    async with client_for(build_app(auth)) as client:
        admin = await client.get("/admin", headers=await bearer(auth, "alice"))
        assert admin.status_code == 200
        denied = await client.get("/admin", headers=await bearer(auth, "bob"))
        assert denied.status_code == 403
        assert denied.json()["error"] == "forbidden"
        anonymous = await client.get("/admin")
        assert anonymous.status_code == 401


@pytest.mark.parametrize("middleware", [True, False])
async def test_require_fresh_without_an_mfa_service(auth: Auth, middleware: bool) -> None:
    """An Auth built by hand has no MFA service: the default age (300 s) applies."""
    assert auth.mfa is None
    clock = auth.clock
    assert isinstance(clock, ManualClock)

    def reply(response: httpx.Response) -> Reply:
        return Reply(response.status_code, list(response.headers.multi_items()), response.content)

    async with client_for(build_app(auth, middleware=middleware)) as client:
        headers = await bearer(auth, "alice")
        assert (await client.get("/fresh", headers=headers)).json() == {"fresh": "alice"}
        assert (await client.get("/fresh-minute", headers=headers)).status_code == 200
        clock.advance(61)
        stepup_flow.assert_stale(reply(await client.get("/fresh-minute", headers=headers)), 60)
        clock.advance(240)
        stepup_flow.assert_stale(reply(await client.get("/fresh", headers=headers)), 300)
        anonymous = await client.get("/fresh")
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "not_authenticated"
        assert anonymous.headers["www-authenticate"] == 'Bearer realm="satchel"'
        # The session strategy records a renewed authentication on the same session.
        identity = await auth.strategy.authenticate(headers["authorization"].split()[1])
        await auth.strategy.reauthenticated(identity, {"pwd"})
        assert (await client.get("/fresh", headers=headers)).json() == {"fresh": "alice"}
        assert (await client.get("/fresh-minute", headers=headers)).status_code == 200


def test_require_fresh_refuses_a_bad_max_age() -> None:
    for bad in (-1, True, 1.5):
        with pytest.raises(ConfigurationError):
            require_fresh(bad)  # type: ignore[arg-type]


def test_require_roles_without_roles_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError):
        require_roles()


async def test_unexpected_exception_is_500_without_details(
    auth: Auth, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="satchel.integrations")
    async with client_for(build_app(auth)) as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.json() == {"error": "internal_error", "detail": "Internal server error."}
    assert LEAKY not in response.text
    assert "RuntimeError" not in response.text
    # The server log keeps the trace for operators.
    assert any(r.exc_info and r.exc_info[0] is RuntimeError for r in caplog.records)


async def test_throttled_and_unavailable_carry_retry_after(auth: Auth) -> None:
    async with client_for(build_app(auth)) as client:
        throttled = await client.get("/throttled")
        down = await client.get("/down")
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "42"
    assert throttled.json()["error"] == "too_many_requests"
    assert down.status_code == 503
    assert down.headers["retry-after"] == "3"
    assert down.json()["error"] == "store_unavailable"


async def test_validation_and_http_errors_share_the_shape(auth: Auth) -> None:
    async with client_for(build_app(auth)) as client:
        invalid = await client.get("/items/not-a-number")
        missing = await client.get("/nowhere")
        wrong_method = await client.post("/me")
    assert invalid.status_code == 422
    assert invalid.json()["error"] == "invalid_request"
    assert "item_id" in invalid.json()["detail"]
    assert "not-a-number" not in invalid.text
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"] == "method_not_allowed"


async def test_openapi_shows_cookie_and_bearer_schemes(auth: Auth) -> None:
    async with client_for(build_app(auth)) as client:
        spec = (await client.get("/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["SessionCookie"]["in"] == "cookie"
    assert schemes["SessionCookie"]["name"] == "__Host-satchel"
    assert schemes["BearerToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["BearerToken"]["description"],
    }
    for path in ("/me", "/admin", "/maybe"):
        security = spec["paths"][path]["get"]["security"]
        assert {"SessionCookie": []} in security
        assert {"BearerToken": []} in security
    # Routes that do not authenticate do not claim to.
    assert "security" not in spec["paths"]["/boom"]["get"]


async def tenant(identity: CurrentIdentity) -> str:
    """A user's own dependency built on satchel's."""
    return identity.user_id


async def test_openapi_finds_nested_dependencies_and_later_routes(auth: Auth) -> None:
    app = FastAPI()
    document_security(app)
    document_security(app)  # idempotent: no duplicate entries

    @app.post("/nested")
    async def nested(owner: Annotated[str, Depends(tenant)]) -> dict[str, str]:
        return {"owner": owner}

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {}

    # Included routers, with a prefix and with a router-level dependency.
    admin = APIRouter(prefix="/v1", dependencies=[Depends(require_roles("admin"))])

    @admin.delete("/users/{user_id}")
    async def delete_user(user_id: str) -> None:
        return None

    app.include_router(admin)

    spec = app.openapi()
    both = [{"SessionCookie": []}, {"BearerToken": []}]
    assert spec["paths"]["/nested"]["post"]["security"] == both
    assert spec["paths"]["/v1/users/{user_id}"]["delete"]["security"] == both
    assert "security" not in spec["paths"]["/public"]["get"]
    assert set(spec["components"]["securitySchemes"]) == {"SessionCookie", "BearerToken"}
    assert app.openapi() is spec


async def test_openapi_without_satchel_routes_has_no_schemes() -> None:
    app = FastAPI()
    document_security(app)

    @app.get("/public")
    async def public() -> dict[str, str]:
        return {}

    assert "securitySchemes" not in app.openapi().get("components", {})


async def test_dependencies_work_on_websocket_routes(auth: Auth) -> None:
    app = build_app(auth)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, identity: OptionalIdentity) -> None:
        await websocket.accept()
        await websocket.send_text(identity.username if identity else "anonymous")
        await websocket.close()

    async def talk(headers: dict[str, str]) -> list[dict[str, Any]]:
        sent: list[dict[str, Any]] = []
        incoming = [{"type": "websocket.connect"}, {"type": "websocket.disconnect"}]

        async def receive() -> dict[str, Any]:
            return incoming.pop(0)

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        scope = {"type": "websocket", "path": "/ws", "headers": raw, "query_string": b""}
        await app(scope, receive, send)
        return sent

    assert {"type": "websocket.send", "text": "alice"} in await talk(await bearer(auth, "alice"))
    assert {"type": "websocket.send", "text": "anonymous"} in await talk({})


async def test_without_auth_anywhere_is_500_json(auth: Auth) -> None:
    app = FastAPI()
    satchel_exception_handlers(app)

    @app.get("/me")
    async def me(identity: CurrentIdentity) -> dict[str, str]:
        return {"user": identity.username}

    async with client_for(app) as client:
        response = await client.get("/me")
    assert response.status_code == 500
    assert response.json()["error"] == "configuration_error"
