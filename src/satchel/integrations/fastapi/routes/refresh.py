"""Rotating a refresh token, and logging out."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from satchel.auth import Auth
from satchel.integrations.fastapi.deps import OptionalIdentity, get_auth
from satchel.integrations.fastapi.openapi import error_responses
from satchel.integrations.fastapi.routes.csrf import CSRFChecked
from satchel.integrations.fastapi.routes.models import REFRESH_DOC, IdentityOut, TokenOut
from satchel.integrations.fastapi.routes.requests import (
    FORM_TYPES,
    MAX_FORM_FIELDS,
    NO_STORE,
    apply_headers,
    is_json,
    login_context,
    parse_json_object,
)
from satchel.integrations.refresh import presented_token, rotate
from satchel.transports.csrf import content_type

router = APIRouter()


async def read_refresh_token(request: Request, auth: Auth) -> tuple[str, bool]:
    """The refresh token of a ``POST /auth/refresh`` and whether it came in the cookie.

    A body (JSON ``{"refresh_token": ...}`` or the form field) wins over the cookie; a
    request with neither is unauthenticated (:func:`satchel.integrations.refresh.presented_token`).
    """
    headers = request.scope.get("headers") or ()
    ctype = content_type(headers) or ""
    value: object = None
    if is_json(ctype):
        raw = await request.body()
        if raw.strip():
            value = parse_json_object(raw).get("refresh_token")
    elif ctype in FORM_TYPES:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
        value = form.get("refresh_token")
    return presented_token(auth, headers, value)


@router.post(
    "/auth/refresh",
    dependencies=[CSRFChecked],
    response_model=TokenOut | IdentityOut,
    openapi_extra=REFRESH_DOC,
    responses=error_responses(400, 401, 403, 413, 503),
    summary="Rotate a refresh token into a new token pair (hybrid strategy)",
)
async def refresh(request: Request) -> Response:
    """A body token (JSON or form ``refresh_token``) gets an OAuth 2.0 token response; the
    refresh cookie gets new cookies and the identity.

    The presented token is retired; presenting it again after the grace window ends the
    whole session.
    """
    auth = get_auth(request)
    presented, via_cookie = await read_refresh_token(request, auth)
    rotated = await rotate(auth, presented, login_context(request), via_cookie=via_cookie)
    result = rotated.result
    response: Response
    if via_cookie:
        response = JSONResponse(result.identity.with_transport("cookie").to_public_dict())
        apply_headers(response, rotated.headers)
    else:
        response = JSONResponse(TokenOut.of(result, auth.clock()).body())
    response.headers.update(NO_STORE)
    return response


@router.post(
    "/auth/logout",
    status_code=204,
    dependencies=[CSRFChecked],
    responses=error_responses(403, 503),
    summary="End the current session and clear the cookie",
)
async def logout(request: Request, identity: OptionalIdentity) -> Response:
    """Idempotent: without a valid credential it only clears the cookie."""
    auth = get_auth(request)
    if identity is not None:
        await auth.logout(identity)
    response = Response(status_code=204)
    if "cookie" in auth.transport_by_name:
        apply_headers(response, auth.logout_headers("cookie"))
    response.headers.update(NO_STORE)
    return response
