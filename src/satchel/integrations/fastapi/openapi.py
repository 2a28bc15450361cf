"""What the OpenAPI document says about satchel: its security schemes and error bodies.

The schemes are not FastAPI security dependencies (the identity dependencies stay single
callables, see :mod:`.deps`): :func:`document_security` adds them to the document when it
is generated, from the transports the app really uses — ``SessionCookie`` naming the real
cookie (``__Host-satchel``, or ``satchel_session`` with insecure cookies) and
``RefreshCookie`` for the cookie transport, ``BearerToken`` for bearer — on every route
whose dependencies include one of satchel's; a route that also answers anonymous callers
lists ``{}`` among its alternatives. Validation errors are documented as the
``{"error", "detail"}`` bodies satchel's handlers send. :func:`satchel.integrations.fastapi.install`
and the reference server call it (and rebuild the document once the app has started); an
app wired by hand calls it once.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Final

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPBearer

from satchel.auth import Auth
from satchel.integrations.asgi import AuthMiddleware
from satchel.integrations.fastapi.deps import IdentityDependency
from satchel.integrations.fastapi.errors import renders_validation_errors
from satchel.integrations.scope import STATE_KEY
from satchel.transports.bearer import BearerTransport
from satchel.transports.cookie import CookieTransport

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi.dependencies.models import Dependant

    from satchel.transports.base import Transport

#: Name of the session cookie shown in the OpenAPI document when the app's transports are
#: unknown (the document names the configured cookie otherwise).
DEFAULT_COOKIE_NAME: Final = "__Host-satchel"
#: Scheme of the refresh cookie (``POST /auth/refresh`` names it in its ``security``).
REFRESH_COOKIE: Final = "RefreshCookie"
#: The OAuth 2.0 password flow of ``POST /auth/token`` (with the bearer transport).
OAUTH2_PASSWORD: Final = "OAuth2Password"  # noqa: S105 - a scheme name
TOKEN_PATH: Final = "/auth/token"  # noqa: S105 - a route
#: The DPoP scheme (RFC 9449) of the bearer transport unless ``SATCHEL_DPOP=off``.
DPOP_TOKEN: Final = "DPoPToken"  # noqa: S105 - a scheme name
_DPOP_SCHEME: Final[dict[str, Any]] = {
    "type": "http",
    "scheme": "DPoP",
    "description": (
        "DPoP-bound access token from POST /auth/token (sent with a DPoP proof header) in "
        "`Authorization: DPoP <token>`, with a new proof of the same key in `DPoP` (RFC 9449)."
    ),
}
_VALIDATION_REF: Final = '"#/components/schemas/HTTPValidationError"'

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

#: The OpenAPI schema of an error body.
ERROR_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "Stable machine-readable code."},
        "detail": {"type": "string", "description": "Human-readable explanation."},
    },
}
_ERROR_DESCRIPTIONS: Final = {
    400: "Malformed request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    413: "Request body or password too large",
    415: "Unsupported media type",
    422: "Invalid request fields",
    429: "Too many attempts (see Retry-After)",
    503: "Store unavailable (see Retry-After)",
}


#: The error body of the OAuth 2.0 token endpoint: RFC 6749 §5.2 plus the usual ``detail``.
OAUTH_ERROR_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "required": ["error", "error_description", "detail"],
    "properties": {
        "error": {
            "type": "string",
            "description": (
                "invalid_request, invalid_client, invalid_grant, unsupported_grant_type or "
                "invalid_scope (RFC 6749 §5.2); too_many_requests, store_unavailable, "
                "session_limit or payload_too_large otherwise."
            ),
        },
        "error_description": {"type": "string", "description": "Human-readable explanation."},
        "detail": {"type": "string", "description": "The same text (project convention)."},
    },
}
_OAUTH_ERROR_DESCRIPTIONS: Final = {
    400: "invalid_request, invalid_grant, unsupported_grant_type or invalid_scope",
    401: "invalid_client: a client secret was sent (public clients only)",
    409: "The account has reached its session limit (on_exceed=deny)",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting the error statuses a route may answer with."""
    return {
        status: {
            "description": _ERROR_DESCRIPTIONS.get(status, "Error"),
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for status in statuses
    }


def oauth_error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Like :func:`error_responses`, for the OAuth 2.0 token endpoint's error bodies."""
    return {
        status: {
            "description": _OAUTH_ERROR_DESCRIPTIONS.get(
                status, _ERROR_DESCRIPTIONS.get(status, "Error")
            ),
            "content": {"application/json": {"schema": OAUTH_ERROR_SCHEMA}},
        }
        for status in statuses
    }


def _identity_use(dependant: Dependant) -> bool | None:
    """True when a route needs an identity, False when it takes one optionally (anonymous
    callers are answered too), None when it uses none of satchel's dependencies."""
    found: bool | None = None
    pending = [dependant]
    while pending:
        current = pending.pop()
        if isinstance(current.call, IdentityDependency):
            if current.call.required:
                return True
            found = False
        pending.extend(current.dependencies)
    return found


def _api_routes(app: FastAPI) -> Iterator[Any]:
    """Every API route of ``app`` as the OpenAPI generator sees it (prefix and router-level
    dependencies applied). FastAPI >= 0.16x keeps included routers nested and walks them
    with ``iter_route_contexts``; earlier versions copy their routes into ``app.routes``."""
    iterate = getattr(fastapi_routing, "iter_route_contexts", None)
    for route in iterate(app.routes) if iterate is not None else app.routes:
        if isinstance(getattr(route, "original_route", route), APIRoute):
            yield route


def _configured_auth(app: FastAPI) -> Auth | None:
    """The app's :class:`Auth`: in its state once started, or given to its AuthMiddleware."""
    auth = getattr(app.state, STATE_KEY, None)  # absent until the lifespan ran
    if isinstance(auth, Auth):
        return auth
    for middleware in app.user_middleware:
        factory: Any = middleware.cls
        given = middleware.kwargs.get("auth")
        if factory is AuthMiddleware and isinstance(given, Auth):
            return given
    return None


def _transports(app: FastAPI) -> Sequence[Transport] | None:
    """The transports the running app really uses: its Auth's, else the ones its settings
    would build; None when neither is known (an app wired by hand, before it starts)."""
    auth = _configured_auth(app)
    if auth is not None:
        return auth.transports
    from satchel.config.settings import Settings
    from satchel.config.transports import build_transports

    settings = getattr(app.state, "settings", None)  # install() and create_app() set it
    return build_transports(settings) if isinstance(settings, Settings) else None


def security_schemes(app: FastAPI) -> dict[str, dict[str, Any]]:
    """The OpenAPI security schemes of ``app``, named after its configured transports:
    ``SessionCookie`` (the real cookie name, e.g. ``satchel_session`` with insecure
    cookies) and ``RefreshCookie`` for the cookie transport, ``BearerToken`` (and
    ``DPoPToken`` unless DPoP is off) for bearer (plus ``OAuth2Password`` in the document
    when the app serves ``POST /auth/token``)."""
    transports = _transports(app)
    if transports is None:
        cookie: Any = CookieTransport()
        transports = (cookie, BearerTransport())
    schemes: dict[str, dict[str, Any]] = {}
    for transport in transports:
        if isinstance(transport, CookieTransport):
            schemes[cookie_scheme.scheme_name] = {
                **_model(cookie_scheme),
                "name": transport.cookie_name,
            }
            schemes[REFRESH_COOKIE] = {
                "type": "apiKey",
                "in": "cookie",
                "name": transport.refresh_name,
                "description": (
                    "Refresh cookie set with the session cookie when the strategy rotates "
                    f"refresh tokens (sent to {transport.refresh_path} only)."
                ),
            }
        elif isinstance(transport, BearerTransport):
            schemes[bearer_scheme.scheme_name] = _model(bearer_scheme)
            if transport.dpop != "off":
                schemes[DPOP_TOKEN] = dict(_DPOP_SCHEME)
    return schemes


def _model(scheme: APIKeyCookie | HTTPBearer) -> dict[str, Any]:
    model: dict[str, Any] = jsonable_encoder(scheme.model, by_alias=True, exclude_none=True)
    return model


def _oauth2_password(paths: dict[str, Any]) -> dict[str, Any] | None:
    """The OAuth 2.0 password flow at the token endpoint, when the app serves it: a client
    (Swagger UI's "Authorize" among them) learns from the document how to get a token."""
    if "post" not in paths.get(TOKEN_PATH, {}):
        return None
    return {
        "type": "oauth2",
        "description": (
            "Sign in with a username and password at the token endpoint (public clients: no "
            "client secret); the access token then goes in `Authorization: Bearer`."
        ),
        "flows": {"password": {"tokenUrl": TOKEN_PATH, "refreshUrl": TOKEN_PATH, "scopes": {}}},
    }


def _add_security(app: FastAPI, schema: dict[str, Any]) -> None:
    paths = schema.get("paths") or {}
    schemes = security_schemes(app)
    flow = _oauth2_password(paths) if bearer_scheme.scheme_name in schemes else None
    if flow is not None:
        schemes[OAUTH2_PASSWORD] = flow
    names = (cookie_scheme.scheme_name, bearer_scheme.scheme_name, DPOP_TOKEN, OAUTH2_PASSWORD)
    access: list[dict[str, list[str]]] = [{name: []} for name in names if name in schemes]
    used: set[str] = set()
    for route in _api_routes(app):
        operations = paths.get(route.path_format) if route.include_in_schema else None
        if not operations:
            continue
        needs = _identity_use(route.dependant)
        for method in route.methods or ():
            operation = operations.get(method.lower())
            if operation is None:
                continue
            if "security" in operation:  # stated by the route itself (openapi_extra)
                wanted = operation["security"]
            elif needs is None:
                continue
            else:
                wanted = access if needs else [*access, {}]
            # Only schemes this app defines; {} (anonymous) stays where it was.
            kept = [r for r in wanted if all(name in schemes for name in r)]
            operation["security"] = kept
            used.update(name for requirement in kept for name in requirement)
    if used:
        defined = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        for name in sorted(used):
            defined.setdefault(name, schemes[name])


def _error_bodies(app: FastAPI, schema: dict[str, Any]) -> None:
    """Document validation errors as the ``{"error", "detail"}`` bodies satchel's handlers
    really send (FastAPI would show its own ``HTTPValidationError``)."""
    if not renders_validation_errors(app):
        return  # the app renders validation errors itself
    for operations in (schema.get("paths") or {}).values():
        for operation in operations.values():
            responses = operation.get("responses") if isinstance(operation, dict) else None
            for status, response in (responses or {}).items():
                content = response.get("content", {}).get("application/json", {})
                if content.get("schema", {}).get("$ref") == _VALIDATION_REF.strip('"'):
                    content["schema"] = ERROR_SCHEMA
                    if status == "422":
                        response["description"] = _ERROR_DESCRIPTIONS[422]
    if _VALIDATION_REF not in json.dumps(schema.get("paths")):  # now unused: drop them
        defined = schema.get("components", {}).get("schemas", {})
        defined.pop("HTTPValidationError", None)
        defined.pop("ValidationError", None)


class _DocumentedOpenAPI:
    """``app.openapi`` once :func:`document_security` has wrapped it."""

    __slots__ = ("app", "generate")

    def __init__(self, app: FastAPI, generate: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.generate = generate

    def __call__(self) -> dict[str, Any]:
        cached = self.app.openapi_schema
        schema = self.generate()
        if schema is not cached:  # freshly generated (FastAPI caches it afterwards)
            _add_security(self.app, schema)
            _error_bodies(self.app, schema)
        return schema


def document_security(app: FastAPI) -> None:
    """Show satchel's security schemes and error bodies in ``app``'s OpenAPI document.

    The schemes of the app's transports (its :class:`Auth`, else its settings; both when
    neither is known) are defined, and listed as alternatives on every operation whose
    dependencies (at any depth) include :data:`current_identity`, :data:`optional_identity`
    or a :func:`require_roles` dependency, plus ``{}`` (no credential) where only
    :data:`optional_identity` is used. With satchel's handlers installed, validation errors
    are shown as ``{"error", "detail"}``. Added when the document is generated, so routes
    declared after this call are covered. Idempotent.
    """
    if isinstance(app.openapi, _DocumentedOpenAPI):
        return
    app.openapi = _DocumentedOpenAPI(app, app.openapi)  # type: ignore[method-assign]
