"""``POST /auth/reauthenticate``: prove a factor again and renew the session's ``auth_time``.

The answer to ``reauthentication_required`` (RFC 9470 step-up). The session stays the same
(same id, same refresh token); a signed-token strategy hands out a new access token that
carries the new ``auth_time``, on the transport the caller used.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from satchel.auth import LoginResult
from satchel.identity import Identity
from satchel.integrations.fastapi.deps import CurrentIdentity, get_auth
from satchel.integrations.fastapi.openapi import error_responses
from satchel.integrations.fastapi.routes.csrf import CSRFChecked
from satchel.integrations.fastapi.routes.mfa_common import body_of, service_of
from satchel.integrations.fastapi.routes.models import TokenOut
from satchel.integrations.fastapi.routes.requests import NO_STORE, apply_headers, login_context
from satchel.transports.base import IssuedCredentials

router = APIRouter()


class ReauthBody(BaseModel):
    """One factor: the password, a TOTP code, a recovery code, or a passkey's assertion
    (options from ``POST /auth/passkeys/reauthenticate/options``)."""

    model_config = ConfigDict(extra="forbid")

    password: StrictStr | None = Field(default=None, max_length=4096)
    code: StrictStr | None = Field(default=None, max_length=64)
    recovery_code: StrictStr | None = Field(default=None, max_length=64)
    passkey: dict[str, Any] | None = None


@router.post(
    "/auth/reauthenticate",
    dependencies=[CSRFChecked],
    responses=error_responses(400, 401, 403, 413, 422, 429, 503),
    summary="Authenticate again (password, code or passkey) and renew the session's auth_time",
)
async def reauthenticate(request: Request, identity: CurrentIdentity) -> Response:
    """The renewed identity; a new access token when the strategy signs ``auth_time`` in."""
    _, service = service_of(request)
    body: ReauthBody = await body_of(request, ReauthBody)
    if body.passkey is not None:
        renewed, issued = await service.passkeys.reauthenticate(
            identity, body.passkey, login_context(request)
        )
        return renewed_response(request, renewed, issued)
    renewed, issued = await service.reauthenticate(
        identity,
        login_context(request),
        password=body.password,
        code=body.code,
        recovery_code=body.recovery_code,
    )
    return renewed_response(request, renewed, issued)


def renewed_response(
    request: Request, renewed: Identity, issued: IssuedCredentials | None
) -> Response:
    """The renewed identity, and its new credential if any, on the caller's transport: a
    cookie, or the token response's fields beside the identity."""
    auth = get_auth(request)
    body = renewed.to_public_dict()
    if issued is not None and renewed.transport == "bearer":
        body.update(TokenOut.of(LoginResult(renewed, issued), auth.clock()).body())
    response = JSONResponse(body)
    if issued is not None and renewed.transport == "cookie":
        apply_headers(response, auth.login_headers(LoginResult(renewed, issued), "cookie"))
    response.headers.update(NO_STORE)
    return response
