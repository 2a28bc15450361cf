"""``POST /auth/token``: the OAuth 2.0 token endpoint (RFC 6749 §3.2, §4.3, §5, §6).

Two grants: ``password`` (resource owner password credentials) and ``refresh_token`` (the
same rotation, reuse detection and grace window as ``POST /auth/refresh``, whenever the
strategy rotates refresh tokens). Every client is public: satchel keeps no client registry,
so a ``client_id`` is accepted and ignored, and a client secret (in the body or as HTTP
Basic) is refused with 401 ``invalid_client`` rather than silently not checked.

Errors carry the RFC's ``error`` and ``error_description`` plus the project's ``detail``
(the same text). docs/oauth.md says what each answer means. The grant logic is
:mod:`satchel.integrations.http_api.token`, shared with the Flask and Django views; this
module reads the request and writes the response.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from starlette.exceptions import HTTPException

from satchel.errors import SatchelError
from satchel.integrations.fastapi.deps import get_auth, server_settings
from satchel.integrations.fastapi.openapi import oauth_error_responses
from satchel.integrations.fastapi.routes.models import Password, TokenOut, Username
from satchel.integrations.fastapi.routes.requests import (
    FORM_TYPES,
    MAX_FORM_FIELDS,
    NO_STORE,
    login_context,
)
from satchel.integrations.http_api.token import (
    GRANT_PASSWORD,
    GRANT_REFRESH,
    NOT_A_FORM,
    PARAMETERS,
    OAuthError,
    as_oauth_error,
    check_client,
    grant,
    proved_key,
    token_parameters,
)
from satchel.integrations.refresh import MAX_REFRESH_TOKEN
from satchel.transports.csrf import content_type

router = APIRouter()


def oauth_error_response(error: OAuthError) -> JSONResponse:
    """``{"error", "error_description", "detail"}`` with the token endpoint's cache headers."""
    response = JSONResponse(error.body(), status_code=error.status)
    response.headers.update(NO_STORE)
    for name, value in error.headers:
        response.headers.append(name, value)
    return response


async def read_parameters(request: Request) -> dict[str, str]:
    """The token request's known parameters from its form body (the rules:
    :func:`~satchel.integrations.http_api.token.token_parameters`). The query string is
    never read."""
    if content_type(request.scope.get("headers") or ()) not in FORM_TYPES:
        raise OAuthError(400, "invalid_request", NOT_A_FORM)
    try:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    except HTTPException as exc:  # a malformed multipart body, too many fields or files
        raise OAuthError(400, "invalid_request", str(exc.detail)) from None
    first: dict[str, object] = {}
    repeated: set[str] = set()
    for name in PARAMETERS:
        values = form.getlist(name)
        if len(values) > 1:
            repeated.add(name)
        elif values:
            first[name] = values[0]  # a file (UploadFile) is refused by the shared rules
    return token_parameters(first, repeated)


def _form_schema() -> dict[str, Any]:
    username, password = (TypeAdapter(kind).json_schema() for kind in (Username, Password))
    text = {"type": "string", "minLength": 1}
    return {
        "type": "object",
        "properties": {
            "grant_type": {"type": "string", "enum": [GRANT_PASSWORD, GRANT_REFRESH]},
            "username": username,
            "password": password,
            "refresh_token": {**text, "maxLength": MAX_REFRESH_TOKEN},
            "client_id": {**text, "description": "Accepted and ignored (public clients)."},
        },
        "required": ["grant_type"],
        "oneOf": [
            {
                "properties": {"grant_type": {"const": GRANT_PASSWORD}},
                "required": ["grant_type", "username", "password"],
            },
            {
                "properties": {"grant_type": {"const": GRANT_REFRESH}},
                "required": ["grant_type", "refresh_token"],
            },
        ],
    }


#: ``openapi_extra`` of the route: it reads its form itself (duplicates, files, empties).
TOKEN_BODY_DOC: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {"application/x-www-form-urlencoded": {"schema": _form_schema()}},
    }
}


@router.post(
    "/auth/token",
    response_model=TokenOut,
    response_model_exclude_none=True,
    openapi_extra=TOKEN_BODY_DOC,
    responses=oauth_error_responses(400, 401, 409, 413, 429, 503),
    summary="OAuth 2.0 token endpoint: password and refresh_token grants",
)
async def token(request: Request) -> JSONResponse:
    """Exchange a username and password (``grant_type=password``) or a refresh token
    (``grant_type=refresh_token``) for an access token; no cookie is set.

    RFC 6749: form parameters, errors as ``{"error", "error_description"}`` (plus
    ``detail``), ``Cache-Control: no-store``. Public clients only (see docs/oauth.md).
    """
    auth = get_auth(request)
    try:
        params = await read_parameters(request)
        check_client(
            request.headers.getlist("authorization"), params, server_settings(request).issuer
        )
        jkt = await proved_key(auth, request.scope)  # DPoP (RFC 9449)
        try:
            result = await grant(auth, params, replace(login_context(request), dpop_jkt=jkt))
        except SatchelError as exc:
            raise as_oauth_error(exc) from None
    except OAuthError as exc:
        return oauth_error_response(exc)
    response = JSONResponse(TokenOut.of(result, auth.clock()).body())
    response.headers.update(NO_STORE)
    return response


__all__ = ["OAuthError", "as_oauth_error", "oauth_error_response", "router"]
