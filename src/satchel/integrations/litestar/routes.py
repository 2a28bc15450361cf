"""The reference server's JSON API on Litestar: the framework-free handlers of
:mod:`satchel.integrations.http_api`, each behind a thin Litestar route.

A route turns the Litestar request into an :class:`~satchel.integrations.http_api.ApiRequest`
(raw headers, the body or the parsed form, the identity the middleware or a lazy lookup
found) and writes the :class:`~satchel.integrations.http_api.ApiResponse` back: the same
paths, bodies, statuses and JSON errors as the FastAPI, Flask and Django glue.

Routes that answer anonymous callers carry the config's ``exclude_opt_key`` (the middleware
does not require an identity there); the handlers run their own CSRF checks, so every route
here carries ``opt={CSRF_OPT: False}`` (the login's check differs from a session's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from litestar import Request, Response
from litestar.handlers import HTTPRouteHandler

from satchel.integrations.http_api import ROUTES, ApiRequest, ApiResponse, Route, handle
from satchel.integrations.http_api.messages import FORM_TYPES, MAX_FORM_FIELDS
from satchel.integrations.litestar.guards import CSRF_OPT, auth_of, optional_identity
from satchel.integrations.litestar.responses import JSONResponse
from satchel.integrations.scope import SCOPE_ERROR, SCOPE_TRANSPORT
from satchel.transports.csrf import content_type

if TYPE_CHECKING:
    from satchel.integrations.litestar.config import SatchelAuth

AnyRequest = Request[Any, Any, Any]

#: Routes that answer without an identity (they decide themselves what an anonymous caller
#: gets); every other one needs the middleware's identity.
PUBLIC: Final = frozenset({"login", "token", "refresh", "logout", "csrf", "jwks", "healthz"})


async def api_request(request: AnyRequest, route: Route) -> ApiRequest:
    """What the shared handler of ``route`` reads, from a Litestar request."""
    scope: Any = request.scope
    headers = scope.get("headers") or ()
    client = scope.get("client")
    identity = await optional_identity(request)
    body = b""
    form: dict[str, object] | None = None
    repeated: frozenset[str] = frozenset()
    if route.method != "GET":  # bodies and the CSRF form field; GET routes read none
        if content_type(headers) in FORM_TYPES:
            parsed = await request.form()
            form = {}
            for key in list(parsed.keys())[: MAX_FORM_FIELDS + 1]:
                form[key] = parsed.get(key)
            # The token endpoint refuses a parameter sent twice (RFC 6749 section 3.2).
            repeated = frozenset(k for k in form if len(parsed.getall(k)) > 1)
        else:
            body = await request.body()
    return ApiRequest(
        method=scope["method"],
        path=scope["path"],
        headers=headers,
        scheme=scope.get("scheme") or "http",
        peer=str(client[0]) if client else None,
        body=body,
        form=form,
        identity=identity,
        transport=scope.get(SCOPE_TRANSPORT),
        error=scope.get(SCOPE_ERROR),
        params={k: str(v) for k, v in request.path_params.items()},
        repeated=repeated,
    )


def to_response(response: ApiResponse) -> JSONResponse:
    """An :class:`ApiResponse` as Litestar's response (every header kept)."""
    return JSONResponse(response.body, status_code=response.status, headers=response.headers)


def _route_handler(route: Route, config: SatchelAuth) -> HTTPRouteHandler:
    opt: dict[str, Any] = {CSRF_OPT: False}
    if route.name in PUBLIC:
        opt[config.exclude_opt_key] = True
    path = route.path.replace("{session_id}", "{session_id:str}")
    options: dict[str, Any] = {
        "path": path,
        "http_method": route.method,
        "opt": opt,
        "tags": ["satchel"],
        "name": f"satchel:{route.name}",
        "request_max_body_size": config.max_body_bytes,
    }

    async def endpoint(request: AnyRequest) -> Response[Any]:
        api = await api_request(request, route)
        return to_response(await handle(route, auth_of(request), api, config.proxies))

    async def empty_endpoint(request: AnyRequest) -> Response[None]:
        api = await api_request(request, route)
        return to_response(await handle(route, auth_of(request), api, config.proxies))

    if route.name in ("logout", "revoke_session"):  # 204: Litestar wants no body declared
        empty_endpoint.__doc__ = route.handler.__doc__
        return HTTPRouteHandler(status_code=204, **options)(empty_endpoint)
    endpoint.__doc__ = route.handler.__doc__
    return HTTPRouteHandler(status_code=200, **options)(endpoint)


def build_routes(config: SatchelAuth) -> list[HTTPRouteHandler]:
    """Fresh route handlers for one app, bound to ``config``'s limits, proxies and opt key."""
    return [_route_handler(route, config) for route in ROUTES]
