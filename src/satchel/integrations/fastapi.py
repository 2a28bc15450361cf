"""FastAPI glue: identity dependencies, OpenAPI security and JSON error handlers.

The dependencies read what :class:`satchel.integrations.asgi.AuthMiddleware` put in the
scope; without the middleware they authenticate the request themselves, finding the
:class:`satchel.Auth` in ``app.state.satchel_auth``.

They run on every request and FastAPI spends several microseconds on each dependency it
resolves (about as much as the whole middleware), so each one is a single callable with no
sub-dependencies. The two security schemes (``SessionCookie``, ``BearerToken``) are therefore
not FastAPI security dependencies: :func:`document_security` adds them to the OpenAPI
document when it is generated, on every route whose dependencies include one of satchel's.
:func:`install` and the reference server call it; an app wired by hand calls it once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager
from http import HTTPStatus
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi import routing as fastapi_routing
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPBearer
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
    AuthMiddleware,
    as_auth_failure,
    challenge_headers,
    resolve_scope,
)
from satchel.integrations.scope import (
    SCOPE_AUTH,
    SCOPE_ERROR,
    SCOPE_IDENTITY,
    SCOPE_TRANSPORT,
    STATE_KEY,
)

if TYPE_CHECKING:
    from fastapi.dependencies.models import Dependant

    from satchel.config.settings import Settings

logger = logging.getLogger("satchel.integrations")

#: Name of the session cookie shown in the OpenAPI document.
DEFAULT_COOKIE_NAME = "__Host-satchel"

#: The schemes shown in the OpenAPI document. satchel's dependencies do not call them (the
#: transports read the credential, more strictly); they are usable on their own as before.
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


def server_settings(conn: HTTPConnection) -> Settings:
    """The :class:`Settings` the app was set up with (:func:`install` and the reference
    server's ``create_app`` always record them)."""
    from satchel.config.settings import Settings

    settings = conn.app.state.settings if hasattr(conn.app.state, "settings") else None
    if not isinstance(settings, Settings):
        raise ConfigurationError("No satchel Settings: set the app up with install().")
    return settings


def error_headers(conn: HTTPConnection, error: SatchelError) -> list[tuple[str, str]]:
    """Extra response headers an error needs: challenges for 401, Retry-After for 429/503."""
    if isinstance(error, Throttled | StoreUnavailable):
        return [("Retry-After", str(error.retry_after))]
    if isinstance(error, AuthenticationError):
        auth = conn.scope.get(SCOPE_AUTH) or getattr(conn.app.state, STATE_KEY, None)
        if isinstance(auth, Auth):
            return challenge_headers(auth, conn.scope.get(SCOPE_TRANSPORT), error)
    return []


class IdentityDependency:
    """What :data:`current_identity`, :data:`optional_identity` and :func:`require_roles` are.

    Resolves to the caller's :class:`Identity`. ``required`` answers 401 (with the transports'
    challenge headers) when there is none; ``roles`` answers 403 unless the identity carries
    every one of them. Without ``required`` an anonymous or rejected request gives None.
    """

    __slots__ = ("required", "roles")

    def __init__(self, *, required: bool, roles: frozenset[str] = frozenset()) -> None:
        self.required = required or bool(roles)
        self.roles = roles

    def __repr__(self) -> str:
        return f"IdentityDependency(required={self.required}, roles={sorted(self.roles)!r})"

    async def __call__(self, conn: HTTPConnection) -> Identity | None:
        scope = conn.scope
        try:
            identity: Identity | None = scope[SCOPE_IDENTITY]
        except KeyError:  # no middleware: authenticate here, once per request
            identity = await resolve_scope(get_auth(conn), scope)
        if identity is None:
            if not self.required:
                return None
            error = as_auth_failure(scope.get(SCOPE_ERROR))
            raise SatchelHTTPException(error, error_headers(conn, error))
        if self.roles and not self.roles <= identity.roles:
            raise SatchelHTTPException(PermissionDenied("This action needs another role."))
        return identity


#: The caller's identity, or None for an anonymous request or a rejected credential.
optional_identity = IdentityDependency(required=False)
#: The caller's identity; 401 (with ``WWW-Authenticate`` for bearer) when there is none.
current_identity = IdentityDependency(required=True)


def require_roles(*roles: str) -> IdentityDependency:
    """A dependency giving the identity when it carries every one of ``roles``, else 403
    (401 without an identity)."""
    needed = frozenset(roles)
    if not needed:
        raise ConfigurationError("require_roles() needs at least one role.")
    return IdentityDependency(required=True, roles=needed)


# --- OpenAPI ---------------------------------------------------------------------------------


def _uses_identity(dependant: Dependant) -> bool:
    pending = [dependant]
    while pending:
        current = pending.pop()
        if isinstance(current.call, IdentityDependency):
            return True
        pending.extend(current.dependencies)
    return False


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """Every API route of ``app`` as the OpenAPI generator sees it (prefix and router-level
    dependencies applied). FastAPI >= 0.16x keeps included routers nested and walks them
    with ``iter_route_contexts``; earlier versions copy their routes into ``app.routes``."""
    iterate = getattr(fastapi_routing, "iter_route_contexts", None)
    for route in iterate(app.routes) if iterate is not None else app.routes:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


def _add_security(app: FastAPI, schema: dict[str, Any]) -> None:
    paths = schema.get("paths") or {}
    schemes = (cookie_scheme, bearer_scheme)
    requirements: list[dict[str, list[str]]] = [{scheme.scheme_name: []} for scheme in schemes]
    used = False
    for route in _api_routes(app):
        if not route.include_in_schema:
            continue
        operations = paths.get(route.path_format)
        if not operations or not _uses_identity(route.dependant):
            continue
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            security = operation.setdefault("security", [])
            security.extend(r for r in requirements if r not in security)
            used = True
    if used:
        defined = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        for scheme in schemes:
            defined.setdefault(
                scheme.scheme_name,
                jsonable_encoder(scheme.model, by_alias=True, exclude_none=True),
            )


def document_security(app: FastAPI) -> None:
    """Show satchel's security schemes in ``app``'s OpenAPI document.

    ``SessionCookie`` and ``BearerToken`` are defined, and listed as alternatives on every
    operation whose dependencies (at any depth) include :data:`current_identity`,
    :data:`optional_identity` or a :func:`require_roles` dependency. Added when the document
    is generated, so routes declared after this call are covered. Idempotent.
    """
    generate = app.openapi
    if getattr(generate, "satchel_documents_security", False):
        return

    def openapi() -> dict[str, Any]:
        cached = app.openapi_schema
        schema = generate()
        if schema is not cached:  # freshly generated (FastAPI caches it afterwards)
            _add_security(app, schema)
        return schema

    openapi.satchel_documents_security = True  # type: ignore[attr-defined]
    app.openapi = openapi  # type: ignore[method-assign]


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
    from satchel.config.build import build_auth
    from satchel.config.settings import Settings

    resolved = settings if settings is not None else Settings()
    inner = app.router.lifespan_context
    ours: list[Any] = []

    @asynccontextmanager
    async def lifespan(inner_app: Any) -> AsyncIterator[Any]:
        # The app declares its routes after install(); every request tries routes in order,
        # so satchel's go last: the app's own routes match without first testing /auth/*.
        app.router.routes[:] = [r for r in app.router.routes if r not in ours] + ours
        current = auth if auth is not None else await build_auth(resolved)
        setattr(app.state, STATE_KEY, current)
        await current.start()
        try:
            async with inner(inner_app) as state:
                yield state
        finally:
            await current.close()

    app.router.lifespan_context = lifespan
    app.state.settings = resolved
    if auth is not None:
        setattr(app.state, STATE_KEY, auth)
    satchel_exception_handlers(app)
    document_security(app)
    if routes:
        from satchel.server.api import router

        before = list(app.router.routes)
        app.include_router(router)
        ours.extend(r for r in app.router.routes if r not in before)
    app.add_middleware(AuthMiddleware, auth=auth)


CurrentIdentity = Annotated[Identity, Depends(current_identity)]
OptionalIdentity = Annotated[Identity | None, Depends(optional_identity)]

__all__ = [
    "DEFAULT_COOKIE_NAME",
    "CurrentIdentity",
    "IdentityDependency",
    "OptionalIdentity",
    "SatchelHTTPException",
    "bearer_scheme",
    "cookie_scheme",
    "current_identity",
    "document_security",
    "error_response",
    "get_auth",
    "install",
    "optional_identity",
    "require_roles",
    "satchel_exception_handlers",
    "server_settings",
]
