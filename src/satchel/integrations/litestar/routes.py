"""The reference server's JSON API as Litestar route handlers.

The same paths, bodies, statuses and JSON errors as :mod:`satchel.integrations.fastapi.routes`
(``/auth/login``, ``/auth/token``, ``/auth/me``, ``/auth/logout``, ``/auth/refresh``,
``/auth/sessions…``, ``/auth/password``, ``/auth/csrf``, ``/.well-known/jwks.json``,
``/healthz``). Each handler is thin: it reads the request and calls the same
:class:`satchel.Auth` methods the FastAPI routes call.

Routes that answer anonymous callers carry the config's ``exclude_opt_key`` (the middleware
does not require an identity there); every unsafe route that acts on a cookie session runs
:func:`~satchel.integrations.litestar.guards.csrf_guard`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Final

from litestar import Request, Response, delete, get, post
from litestar.handlers import HTTPRouteHandler

from satchel.errors import ConfigurationError, NotSupported, StoreUnavailable
from satchel.integrations.litestar.guards import (
    CSRF_OPT,
    auth_of,
    csrf_guard,
    current_identity,
    optional_identity,
)
from satchel.integrations.litestar.requests import (
    InvalidFields,
    login_context,
    read_body_field,
    read_login_body,
    read_password_change,
    read_token_form,
)
from satchel.integrations.litestar.responses import NO_STORE, JSONResponse
from satchel.integrations.refresh import presented_token, rotate
from satchel.keys.manager import jwks_cache_control
from satchel.transports.csrf import scope_origin

if TYPE_CHECKING:
    from satchel.integrations.litestar.config import SatchelAuth
    from satchel.stores.base import SessionRecord
    from satchel.transports.base import IssuedCredentials

HEALTH_TIMEOUT: Final = 2.0
AnyRequest = Request[Any, Any, Any]


def token_body(issued: IssuedCredentials) -> dict[str, Any]:
    """An OAuth 2.0 token response (RFC 6749 §5.1)."""
    body: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
    }
    if issued.refresh_token:
        body["refresh_token"] = issued.refresh_token
        body["refresh_expires_in"] = issued.refresh_expires_in
    return body


def session_body(record: SessionRecord, current: str | None) -> dict[str, Any]:
    """One of the caller's sessions; never the secret or its hash."""
    return {
        "id": record.id,
        "created": int(record.created_at),
        "last_seen": int(record.last_seen_at),
        "expires": int(record.expires_at()),
        "ip": record.ip,
        "user_agent": record.user_agent,
        "current": record.id == current,
    }


def build_routes(config: SatchelAuth) -> list[HTTPRouteHandler]:
    """Fresh route handlers for one app, bound to ``config``'s settings and opt key."""
    public = {config.exclude_opt_key: True}
    no_csrf = {config.exclude_opt_key: True, CSRF_OPT: False}
    limit = config.max_body_bytes
    tags = ["satchel"]

    def ctx(request: AnyRequest, remember: bool = False) -> Any:
        return login_context(request, config.proxies, remember)

    @post("/auth/login", opt=no_csrf, request_max_body_size=limit, tags=tags, status_code=200)
    async def login(request: AnyRequest) -> Response[Any]:
        """Log in with a password; sets the session cookie, the body holds the identity."""
        auth = auth_of(request)
        if "cookie" not in auth.transport_by_name:
            raise NotSupported("Cookie login is not enabled here; use POST /auth/token.")
        username, password, remember, form_token = await read_login_body(request)
        if auth.csrf is not None:
            # Login CSRF: checked before the password, so a forged post learns nothing.
            scope: Any = request.scope
            headers = scope.get("headers") or ()
            auth.csrf.check(
                "POST",
                headers,
                own_origin=scope_origin(scope),
                binding=auth.csrf.login_binding(headers),
                form_token=form_token,
            )
        result = await auth.login(username, password, ctx(request, remember))
        return JSONResponse(
            result.identity.with_transport("cookie").to_public_dict(),
            headers=[("cache-control", "no-store"), *auth.login_headers(result, "cookie")],
        )

    @post("/auth/token", opt=no_csrf, request_max_body_size=limit, tags=tags, status_code=200)
    async def token(request: AnyRequest) -> Response[Any]:
        """OAuth 2.0 password grant: a bearer access token in the body, no cookie."""
        auth = auth_of(request)
        if "bearer" not in auth.transport_by_name:
            raise NotSupported("Bearer tokens are not enabled here; use POST /auth/login.")
        username, password = await read_token_form(request)
        result = await auth.login(username, password, ctx(request))
        return JSONResponse(token_body(result.credentials), headers=NO_STORE)

    @get("/auth/me", tags=tags)
    async def me(request: AnyRequest) -> Response[Any]:
        """Who am I."""
        identity = await current_identity(request)
        return JSONResponse(identity.to_public_dict(), headers=NO_STORE[:1])

    @post("/auth/logout", opt=public, guards=[csrf_guard], tags=tags, status_code=204)
    async def logout(request: AnyRequest) -> Response[None]:
        """End the current session and clear the cookie; idempotent."""
        auth = auth_of(request)
        identity = await optional_identity(request)
        if identity is not None:
            await auth.logout(identity)
        headers = list(NO_STORE)
        if "cookie" in auth.transport_by_name:
            headers += auth.logout_headers("cookie")
        return JSONResponse(status_code=204, headers=headers)

    @post(
        "/auth/refresh",
        opt=public,
        guards=[csrf_guard],
        request_max_body_size=limit,
        tags=tags,
        status_code=200,
    )
    async def refresh(request: AnyRequest) -> Response[Any]:
        """Rotate a refresh token: a body token gets a token response, the cookie new cookies."""
        auth = auth_of(request)
        scope: Any = request.scope
        value = await read_body_field(request, "refresh_token")
        presented, via_cookie = presented_token(auth, scope.get("headers") or (), value)
        rotated = await rotate(auth, presented, ctx(request), via_cookie=via_cookie)
        if via_cookie:
            body = rotated.result.identity.with_transport("cookie").to_public_dict()
            return JSONResponse(body, headers=[*NO_STORE, *rotated.headers])
        return JSONResponse(token_body(rotated.result.credentials), headers=NO_STORE)

    @get("/auth/sessions", tags=tags)
    async def list_sessions(request: AnyRequest) -> Response[Any]:
        """The caller's live sessions, oldest first; ``current`` marks this one."""
        identity = await current_identity(request)
        records = await auth_of(request).list_sessions(identity.user_id)
        body = [session_body(record, identity.session_id) for record in records]
        return JSONResponse(body, headers=NO_STORE[:1])

    @delete("/auth/sessions/{session_id:str}", guards=[csrf_guard], tags=tags, status_code=204)
    async def revoke_session(request: AnyRequest) -> Response[None]:
        """End one of the caller's sessions (404 unless it is theirs)."""
        session_id = str(request.path_params["session_id"])
        if not 0 < len(session_id) <= 256:
            raise InvalidFields("session_id: length must be 1 to 256 characters")
        identity = await current_identity(request)
        auth = auth_of(request)
        await auth.revoke_session(session_id, user_id=identity.user_id, actor=identity)
        headers = list(NO_STORE)
        if session_id == identity.session_id and identity.transport == "cookie":
            headers += auth.logout_headers("cookie")
        return JSONResponse(status_code=204, headers=headers)

    @post("/auth/sessions/revoke-others", guards=[csrf_guard], tags=tags, status_code=200)
    async def revoke_others(request: AnyRequest) -> Response[Any]:
        """End every other session of the caller; returns how many ended."""
        identity = await current_identity(request)
        ended = await auth_of(request).revoke_other_sessions(identity)
        return JSONResponse({"revoked": len(ended)})

    @post(
        "/auth/password",
        guards=[csrf_guard],
        request_max_body_size=limit,
        tags=tags,
        status_code=200,
    )
    async def change_password(request: AnyRequest) -> Response[Any]:
        """Change the caller's password; earlier credentials end, the caller gets a new one."""
        identity = await current_identity(request)
        current, new = await read_password_change(request)
        auth = auth_of(request)
        result = await auth.change_password(identity, current, new, ctx(request))
        if identity.transport == "cookie":
            body = result.identity.with_transport("cookie").to_public_dict()
            return JSONResponse(body, headers=[*NO_STORE, *auth.login_headers(result, "cookie")])
        return JSONResponse(token_body(result.credentials), headers=NO_STORE)

    @get("/auth/csrf", opt=public, tags=tags)
    async def csrf_token(request: AnyRequest) -> Response[Any]:
        """A CSRF token for form posts: bound to the cookie session, or to a pre-session
        cookie this response sets (the login form)."""
        auth = auth_of(request)
        if auth.csrf is None:
            raise NotSupported("CSRF tokens are only used with the cookie transport.")
        identity = await optional_identity(request)
        extra: list[tuple[str, str]] = []
        if identity is not None and identity.transport == "cookie":
            value = auth.csrf.token_for(identity)
        else:
            scope: Any = request.scope
            value, extra = auth.csrf.login_form(scope.get("headers") or ())
        return JSONResponse({"csrf_token": value}, headers=[("cache-control", "no-store"), *extra])

    @get("/.well-known/jwks.json", opt=public, tags=tags)
    async def jwks(request: AnyRequest) -> Response[Any]:
        """The public half of every key that may verify a token (empty without keys)."""
        auth = auth_of(request)
        keys = auth.keys
        headers = [("cache-control", jwks_cache_control(keys))]
        if keys is None:
            return JSONResponse({"keys": []}, headers=headers)
        try:
            keyset = await keys.published()
        except ConfigurationError:  # nothing loaded: this deployment signs nothing
            return JSONResponse({"keys": []}, headers=headers)
        return JSONResponse(dict(keyset.jwks(auth.clock())), headers=headers)

    @get("/healthz", opt=public, tags=tags)
    async def healthz(request: AnyRequest) -> Response[Any]:
        """``{"status": "ok"}`` when the stores answer a trivial read in time."""
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT):
                await auth_of(request).probe()
        except TimeoutError:
            raise StoreUnavailable("The store did not answer in time.") from None
        return JSONResponse({"status": "ok"}, headers=NO_STORE[:1])

    return [
        login,
        token,
        me,
        logout,
        refresh,
        list_sessions,
        revoke_session,
        revoke_others,
        change_password,
        csrf_token,
        jwks,
        healthz,
    ]
