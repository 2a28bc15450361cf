"""FastAPI glue: identity dependencies and JSON error handlers.

The dependencies read what :class:`satchel.integrations.asgi.AuthMiddleware` put in the
scope; without the middleware they authenticate the request themselves, finding the
:class:`satchel.Auth` in ``app.state.satchel_auth``. They are declared through FastAPI's
security classes (a cookie API key and HTTP bearer, both ``auto_error=False``) so that the
OpenAPI document lists both schemes; the values those classes extract are not used.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import FastAPI, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from satchel.auth import Auth
from satchel.errors import (
    AuthenticationError,
    ConfigurationError,
    PermissionDenied,
    SatchelError,
    StoreUnavailable,
    Throttled,
)
from satchel.identity import Identity
from satchel.integrations.asgi import (
    SCOPE_AUTH,
    SCOPE_ERROR,
    SCOPE_IDENTITY,
    SCOPE_TRANSPORT,
    STATE_KEY,
    AuthMiddleware,
    as_auth_failure,
    challenge_headers,
    resolve_scope,
)

if TYPE_CHECKING:
    from satchel.settings import Settings

logger = logging.getLogger("satchel.integrations")

#: Name of the session cookie shown in the OpenAPI document.
DEFAULT_COOKIE_NAME = "__Host-satchel"

cookie_scheme = APIKeyCookie(
    name=DEFAULT_COOKIE_NAME,
    scheme_name="SessionCookie",
    description="Session cookie set by POST /auth/login (HttpOnly; browsers only).",
    auto_error=False,
)
bearer_scheme = HTTPBearer(
    scheme_name="BearerToken",
    description="Access token from POST /auth/token in `Authorization: Bearer <token>`.",
    auto_error=False,
)

_CODES_BY_STATUS: Mapping[int, str] = {
    400: "invalid_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


class SatchelHTTPException(StarletteHTTPException):
    """An HTTP error carrying the :class:`SatchelError` it stands for.

    Raised by the dependencies so that FastAPI's own handler still answers with the right
    status and headers in apps that did not install :func:`satchel_exception_handlers`.
    """

    def __init__(self, error: SatchelError, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(status_code=error.status, detail=error.detail, headers=dict(headers))
        self.error = error


def get_auth(conn: HTTPConnection) -> Auth:
    """The :class:`Auth` serving this request (scope first, then ``app.state``)."""
    auth = conn.scope.get(SCOPE_AUTH)
    if auth is None:
        auth = getattr(conn.app.state, STATE_KEY, None)
    if not isinstance(auth, Auth):
        raise ConfigurationError(
            "No satchel Auth: add AuthMiddleware or set app.state.satchel_auth."
        )
    return auth


def error_headers(conn: HTTPConnection, error: SatchelError) -> list[tuple[str, str]]:
    """Extra response headers an error needs: challenges for 401, Retry-After for 429/503."""
    if isinstance(error, Throttled | StoreUnavailable):
        return [("Retry-After", str(error.retry_after))]
    if isinstance(error, AuthenticationError):
        auth = conn.scope.get(SCOPE_AUTH) or getattr(conn.app.state, STATE_KEY, None)
        if isinstance(auth, Auth):
            return challenge_headers(auth, conn.scope.get(SCOPE_TRANSPORT), error)
    return []


async def optional_identity(
    request: Request,
    _cookie: Annotated[str | None, Security(cookie_scheme)] = None,
    _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)] = None,
) -> Identity | None:
    """The caller's identity, or None for an anonymous request or a rejected credential."""
    scope = request.scope
    if SCOPE_IDENTITY not in scope:
        await resolve_scope(get_auth(request), scope)
    identity: Identity | None = scope[SCOPE_IDENTITY]
    return identity


async def current_identity(
    request: Request,
    identity: Annotated[Identity | None, Security(optional_identity)],
) -> Identity:
    """The caller's identity; 401 (with ``WWW-Authenticate`` for bearer) when there is none."""
    if identity is None:
        error = as_auth_failure(request.scope.get(SCOPE_ERROR))
        raise SatchelHTTPException(error, error_headers(request, error))
    return identity


def require_roles(*roles: str) -> Callable[..., Awaitable[Identity]]:
    """A dependency giving the identity when it carries every one of ``roles``, else 403."""
    needed = frozenset(roles)
    if not needed:
        raise ConfigurationError("require_roles() needs at least one role.")

    async def dependency(
        identity: Annotated[Identity, Security(current_identity)],
    ) -> Identity:
        if not needed <= identity.roles:
            raise SatchelHTTPException(PermissionDenied("This action needs another role."))
        return identity

    return dependency


# --- error rendering ------------------------------------------------------------------------


def error_response(
    status: int, code: str, detail: str, headers: Iterable[tuple[str, str]] = ()
) -> JSONResponse:
    """The ``{"error": code, "detail": text}`` response every error uses."""
    response = JSONResponse({"error": code, "detail": detail}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    for name, value in headers:
        response.headers.append(name, value)
    return response


def describe_validation(exc: RequestValidationError) -> str:
    """A short account of what was wrong with the request, without echoing any input."""
    parts = []
    for error in exc.errors()[:5]:
        loc = ".".join(str(p) for p in error.get("loc", ()) if p not in ("body", "query"))
        msg = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts) or "The request is not valid."


async def _satchel_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SatchelError)
    return error_response(exc.status, exc.code, exc.detail, error_headers(request, exc))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, SatchelHTTPException):
        error = exc.error
        return error_response(error.status, error.code, error.detail, (exc.headers or {}).items())
    status = exc.status_code
    code = _CODES_BY_STATUS.get(status, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    return error_response(status, code, detail, (exc.headers or {}).items())


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    malformed = any(error.get("type") == "json_invalid" for error in exc.errors())
    if malformed:
        return error_response(400, "invalid_request", "The request body is not valid JSON.")
    return error_response(422, "invalid_request", describe_validation(exc))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # The trace goes to the server log only; the client learns nothing about the failure.
    logger.error(
        "unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc
    )
    return error_response(500, "internal_error", "Internal server error.")


def satchel_exception_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as ``{"error": code, "detail": text}`` JSON.

    :class:`SatchelError` keeps its status (plus ``Retry-After`` for 429/503 and the
    transports' challenge headers for 401); validation errors give 422 (400 for malformed
    JSON); anything unexpected gives 500 ``internal_error`` with the trace logged server-side.
    """
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[JSONResponse]]] = {
        SatchelError: _satchel_error,
        StarletteHTTPException: _http_error,
        RequestValidationError: _validation_error,
        Exception: _internal_error,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)


def install(
    app: FastAPI,
    settings: Settings | None = None,
    *,
    auth: Auth | None = None,
    routes: bool = True,
) -> None:
    """Add satchel to an existing FastAPI ``app`` in one call.

    Builds the :class:`Auth` from ``settings`` (default: the ``SATCHEL_*`` environment) when
    the app starts, unless ``auth`` is given; adds the middleware that puts the identity on
    every request, the JSON error handlers and, with ``routes``, the ``/auth/*`` API of the
    reference server. The app's own lifespan still runs, inside satchel's.
    """
    from satchel.factory import build_auth
    from satchel.settings import Settings

    resolved = settings if settings is not None else Settings()
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(inner_app: Any) -> AsyncIterator[Any]:
        current = auth if auth is not None else await build_auth(resolved)
        setattr(app.state, STATE_KEY, current)
        await current.start()
        try:
            async with inner(inner_app) as state:
                yield state
        finally:
            await current.close()

    app.router.lifespan_context = lifespan
    if auth is not None:
        setattr(app.state, STATE_KEY, auth)
    satchel_exception_handlers(app)
    if routes:
        from satchel.server.api import router

        app.include_router(router)
    app.add_middleware(AuthMiddleware, auth=auth)


CurrentIdentity = Annotated[Identity, Security(current_identity)]
OptionalIdentity = Annotated[Identity | None, Security(optional_identity)]

__all__ = [
    "DEFAULT_COOKIE_NAME",
    "CurrentIdentity",
    "OptionalIdentity",
    "SatchelHTTPException",
    "bearer_scheme",
    "cookie_scheme",
    "current_identity",
    "error_response",
    "get_auth",
    "install",
    "optional_identity",
    "require_roles",
    "satchel_exception_handlers",
]
