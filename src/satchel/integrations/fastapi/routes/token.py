"""``POST /auth/token``: the OAuth 2.0 token endpoint (RFC 6749 §3.2, §4.3, §5, §6).

Two grants: ``password`` (resource owner password credentials) and ``refresh_token`` (the
same rotation, reuse detection and grace window as ``POST /auth/refresh``, whenever the
strategy rotates refresh tokens). Every client is public: satchel keeps no client registry,
so a ``client_id`` is accepted and ignored, and a client secret (in the body or as HTTP
Basic) is refused with 401 ``invalid_client`` rather than silently not checked.

Errors carry the RFC's ``error`` and ``error_description`` plus the project's ``detail``
(the same text). docs/oauth.md says what each answer means.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import unquote_plus

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import TypeAdapter
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from satchel.auth import Auth, LoginResult
from satchel.errors import AuthenticationError, InvalidInput, NotSupported, SatchelError
from satchel.integrations.fastapi.deps import get_auth, server_settings
from satchel.integrations.fastapi.errors import error_headers
from satchel.integrations.fastapi.openapi import oauth_error_responses
from satchel.integrations.fastapi.routes.models import Password, TokenOut, Username
from satchel.integrations.fastapi.routes.requests import (
    FORM_TYPES,
    MAX_FORM_FIELDS,
    NO_STORE,
    login_context,
)
from satchel.integrations.refresh import MAX_REFRESH_TOKEN, presented_token, rotate
from satchel.transports.csrf import content_type

GRANT_PASSWORD: Final = "password"  # noqa: S105 - a grant type name
GRANT_REFRESH: Final = "refresh_token"
#: The parameters this endpoint reads; any other one is ignored (RFC 6749 §3.2).
PARAMETERS: Final = (
    "grant_type",
    "username",
    "password",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
)

router = APIRouter()


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer of the token endpoint."""

    def __init__(
        self,
        status: int,
        code: str,
        description: str,
        headers: Iterable[tuple[str, str]] = (),
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.headers = list(headers)
        self.fields = dict(fields or {})  # mfa_required's mfa_token and methods


def oauth_error_response(error: OAuthError) -> JSONResponse:
    """``{"error", "error_description", "detail"}`` with the token endpoint's cache headers."""
    body = {
        **error.fields,
        "error": error.code,
        "error_description": error.description,
        "detail": error.description,
    }
    response = JSONResponse(body, status_code=error.status)
    response.headers.update(NO_STORE)
    for name, value in error.headers:
        response.headers.append(name, value)
    return response


def as_oauth_error(request: Request, exc: SatchelError) -> OAuthError:
    """The RFC 6749 answer for a satchel error raised by a grant.

    A wrong password or an unusable refresh token is ``invalid_grant`` (400), bad input
    ``invalid_request`` (400); throttling (429), outages (503) and a session cap (409) keep
    their status, code and headers (``Retry-After``), and gain an ``error_description``.
    """
    if isinstance(exc, AuthenticationError):
        return OAuthError(400, "invalid_grant", exc.detail)
    if isinstance(exc, InvalidInput):  # PasswordTooLong included: a malformed request here
        return OAuthError(400, "invalid_request", exc.detail)
    if isinstance(exc, NotSupported):
        return OAuthError(400, "unsupported_grant_type", exc.detail)
    headers = [(n, v) for n, v in error_headers(request, exc) if n.lower() != "www-authenticate"]
    return OAuthError(exc.status, exc.code, exc.detail, headers, exc.body_fields())


async def read_parameters(request: Request) -> dict[str, str]:
    """The token request's known parameters from its form body.

    A parameter sent empty counts as omitted (§3.1); one sent twice, a file, or a body that
    is not a form is ``invalid_request``. The query string is never read.
    """
    if content_type(request.scope.get("headers") or ()) not in FORM_TYPES:
        raise OAuthError(
            400,
            "invalid_request",
            "Send the parameters as application/x-www-form-urlencoded.",
        )
    try:
        form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    except HTTPException as exc:  # a malformed multipart body, too many fields or files
        raise OAuthError(400, "invalid_request", str(exc.detail)) from None
    params: dict[str, str] = {}
    for name in PARAMETERS:
        values = form.getlist(name)
        if len(values) > 1:
            raise OAuthError(400, "invalid_request", f"The parameter {name} was sent twice.")
        if not values:
            continue
        value = values[0]
        if isinstance(value, UploadFile):
            raise OAuthError(400, "invalid_request", f"The parameter {name} must be text.")
        if value:
            params[name] = value
    return params


def check_client(request: Request, params: Mapping[str, str]) -> None:
    """Public clients only: a ``client_id`` is fine, a client secret is ``invalid_client``.

    A secret that is not checked would look like client authentication to its sender;
    refusing it says at once that this server has no confidential clients.
    """
    realm = server_settings(request).issuer
    basic = [
        value for value in request.headers.getlist("authorization") if value[:6].lower() == "basic "
    ]
    if len(basic) > 1:
        raise OAuthError(400, "invalid_request", "The Authorization header was sent twice.")
    if basic:
        challenge = [("WWW-Authenticate", f'Basic realm="{realm}"')]
        secret = _basic_secret(basic[0][6:].strip())
        if secret is None:
            raise OAuthError(401, "invalid_client", "Malformed HTTP Basic credentials.", challenge)
        if secret:
            raise OAuthError(401, "invalid_client", _NO_SECRETS, challenge)
    if "client_secret" in params:
        raise OAuthError(401, "invalid_client", _NO_SECRETS)


_NO_SECRETS: Final = (
    "This server has public clients only: send no client secret (a client_id alone is fine)."
)


def _basic_secret(value: str) -> str | None:
    """The (form-decoded, §2.3.1) secret of HTTP Basic credentials, or None if malformed."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _client_id, colon, secret = decoded.partition(":")
    if not colon:
        return None
    return unquote_plus(secret)


def _required(params: Mapping[str, str], name: str, grant: str) -> str:
    value = params.get(name)
    if value is None:
        raise OAuthError(400, "invalid_request", f"The {grant} grant needs the parameter {name}.")
    return value


async def grant(request: Request, auth: Auth, params: Mapping[str, str]) -> LoginResult:
    """Run the requested grant; SatchelErrors propagate for :func:`as_oauth_error`."""
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise OAuthError(
            400, "invalid_request", "grant_type is required: password or refresh_token."
        )
    if grant_type not in (GRANT_PASSWORD, GRANT_REFRESH):
        raise OAuthError(
            400,
            "unsupported_grant_type",
            "This server supports the password and refresh_token grants only.",
        )
    if "bearer" not in auth.transport_by_name:
        raise OAuthError(
            400,
            "unsupported_grant_type",
            "Bearer tokens are not enabled here; sign in with POST /auth/login.",
        )
    if "scope" in params:
        raise OAuthError(
            400, "invalid_scope", "This server issues tokens without scopes; leave scope out."
        )
    if grant_type == GRANT_PASSWORD:
        username = _required(params, "username", grant_type)
        password = _required(params, "password", grant_type)
        return await auth.login(username, password, login_context(request, transport="bearer"))
    token = _required(params, "refresh_token", grant_type)
    if not auth.can_refresh:
        raise OAuthError(
            400,
            "unsupported_grant_type",
            f"The {auth.strategy.name} strategy issues no refresh tokens; sign in again "
            "with the password grant.",
        )
    presented, _ = presented_token(auth, (), token)
    rotated = await rotate(auth, presented, login_context(request), via_cookie=False)
    return rotated.result


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
        check_client(request, params)
        try:
            result = await grant(request, auth, params)
        except SatchelError as exc:
            raise as_oauth_error(request, exc) from None
    except OAuthError as exc:
        return oauth_error_response(exc)
    response = JSONResponse(TokenOut.of(result, auth.clock()).body())
    response.headers.update(NO_STORE)
    return response


__all__ = ["OAuthError", "as_oauth_error", "oauth_error_response", "router"]
