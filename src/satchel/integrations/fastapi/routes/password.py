"""Changing the caller's password over the API."""

from __future__ import annotations

from dataclasses import replace

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from satchel.dbsc.enforce import offer_binding
from satchel.integrations.fastapi.deps import get_auth
from satchel.integrations.fastapi.fresh import FreshIdentity
from satchel.integrations.fastapi.openapi import error_responses
from satchel.integrations.fastapi.routes.csrf import CSRFChecked
from satchel.integrations.fastapi.routes.models import IdentityOut, PasswordChangeBody, TokenOut
from satchel.integrations.fastapi.routes.requests import NO_STORE, apply_headers, login_context

router = APIRouter()


@router.post(
    "/auth/password",
    dependencies=[CSRFChecked],
    response_model=IdentityOut | TokenOut,
    responses=error_responses(400, 401, 403, 413, 422, 503),
    summary="Change the caller's password; ends every other session",
)
async def change_password(
    request: Request, identity: FreshIdentity, body: PasswordChangeBody
) -> Response:
    """Needs the current password and a fresh authentication (``SATCHEL_FRESH_AGE``; 401
    ``reauthentication_required`` otherwise). Every earlier credential of the user ends
    (all devices, signed tokens too); the caller gets a fresh one: a new cookie, or a new
    bearer token in the body."""
    auth = get_auth(request)
    # A DPoP-bound caller (its proof was checked) gets a token bound to the same key.
    ctx = replace(login_context(request), dpop_jkt=identity.jkt)
    result = await auth.change_password(identity, body.current_password, body.new_password, ctx)
    response: Response
    if identity.transport == "cookie":
        response = JSONResponse(result.identity.with_transport("cookie").to_public_dict())
        apply_headers(response, auth.login_headers(result, "cookie"))
        # A new session: a DBSC browser may bind it too (docs/dbsc.md).
        apply_headers(response, await offer_binding(auth.dbsc, result.identity))
    else:
        response = JSONResponse(TokenOut.of(result, auth.clock()).body())
    response.headers.update(NO_STORE)
    return response
