"""What the OpenAPI document says about satchel: its two security schemes and error bodies.

The schemes (``SessionCookie``, ``BearerToken``) are not FastAPI security dependencies (the
identity dependencies stay single callables, see :mod:`.deps`): :func:`document_security`
adds them to the document when it is generated, on every route whose dependencies include
one of satchel's. :func:`satchel.integrations.fastapi.install` and the reference server
call it; an app wired by hand calls it once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

from fastapi import FastAPI
from fastapi import routing as fastapi_routing
from fastapi.encoders import jsonable_encoder
from fastapi.routing import APIRoute
from fastapi.security import APIKeyCookie, HTTPBearer

from satchel.integrations.fastapi.deps import IdentityDependency

if TYPE_CHECKING:
    from collections.abc import Callable

    from fastapi.dependencies.models import Dependant

#: Name of the session cookie shown in the OpenAPI document.
DEFAULT_COOKIE_NAME: Final = "__Host-satchel"

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
        return schema


def document_security(app: FastAPI) -> None:
    """Show satchel's security schemes in ``app``'s OpenAPI document.

    ``SessionCookie`` and ``BearerToken`` are defined, and listed as alternatives on every
    operation whose dependencies (at any depth) include :data:`current_identity`,
    :data:`optional_identity` or a :func:`require_roles` dependency. Added when the document
    is generated, so routes declared after this call are covered. Idempotent.
    """
    if isinstance(app.openapi, _DocumentedOpenAPI):
        return
    app.openapi = _DocumentedOpenAPI(app, app.openapi)  # type: ignore[method-assign]
