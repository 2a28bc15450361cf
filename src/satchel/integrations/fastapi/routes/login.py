"""Logging in and asking who I am.

Cookie login (``POST /auth/login``) and token login (``POST /auth/token``, in
:mod:`~.token`) are separate routes on purpose: a browser login never sees the credential
in a body, and an API client never gets a cookie it did not ask for.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter, Request, Response

from satchel.dbsc.enforce import offer_binding
from satchel.errors import NotSupported
from satchel.integrations.fastapi.deps import CurrentIdentity, get_auth
from satchel.integrations.fastapi.openapi import error_responses
from satchel.integrations.fastapi.routes.models import LOGIN_BODY_DOC, IdentityOut
from satchel.integrations.fastapi.routes.requests import (
    apply_headers,
    login_context,
    read_login_body,
)
from satchel.transports.csrf import scope_origin

router = APIRouter()


@router.post(
    "/auth/login",
    response_model=IdentityOut,
    openapi_extra=LOGIN_BODY_DOC,
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503),
    summary="Log in with a password; sets the session cookie",
)
async def login(request: Request, response: Response) -> dict[str, Any]:
    """Check the password and set the credential cookie; the body holds the identity only."""
    auth = get_auth(request)
    if "cookie" not in auth.transport_by_name:
        raise NotSupported("Cookie login is not enabled here; use POST /auth/token.")
    body, form_token = await read_login_body(request)
    csrf = auth.csrf
    if csrf is not None:  # always, with the cookie transport (Auth refuses it otherwise)
        # Login CSRF: checked before the password, so a forged post learns nothing.
        headers = request.scope.get("headers") or ()
        csrf.check(
            request.method,
            headers,
            own_origin=scope_origin(request.scope),
            binding=csrf.login_binding(headers),
            form_token=form_token,
        )
    ctx = login_context(request, body.remember, transport="cookie")
    result = await auth.login(body.username, body.password, ctx)
    apply_headers(response, auth.login_headers(result, "cookie"))
    apply_headers(response, await offer_binding(auth.dbsc, result.identity))  # docs/dbsc.md
    response.headers["Cache-Control"] = "no-store"
    return result.identity.with_transport("cookie").to_public_dict()


@router.get(
    "/auth/me",
    response_model=IdentityOut,
    responses=error_responses(401, 503),
    summary="Who am I",
)
async def me(identity: CurrentIdentity) -> Response:
    """The caller's identity."""
    # Encoded here rather than through the response model: validating the dict against
    # IdentityOut and serialising it again cost more than authenticating the request.
    body = json.dumps(identity.to_public_dict(), ensure_ascii=False, separators=(",", ":"))
    return Response(body, media_type="application/json", headers=_ME_HEADERS)


_ME_HEADERS = {"cache-control": "no-store"}
