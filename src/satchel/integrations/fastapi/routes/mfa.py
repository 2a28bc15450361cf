"""Second factors over the API: finishing a login, setting up a TOTP, recovery codes.

``POST /auth/mfa/verify`` finishes a login that answered ``mfa_required``; the TOTP setup
routes serve both a signed-in caller (fresh authentication required) and an account being
walked through enrolment at sign-in (with the ``mfa_token`` of ``enrollment_required``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from satchel.errors import MissingCredential, NotFound
from satchel.identity import Identity
from satchel.integrations.fastapi.deps import CurrentIdentity, OptionalIdentity
from satchel.integrations.fastapi.errors import SatchelHTTPException, error_headers
from satchel.integrations.fastapi.fresh import FreshIdentity
from satchel.integrations.fastapi.openapi import error_responses
from satchel.integrations.fastapi.routes.csrf import CSRFChecked
from satchel.integrations.fastapi.routes.mfa_common import (
    CodeBody,
    MfaStatusOut,
    MfaTokenBody,
    RecoveryCodesOut,
    TotpSetupOut,
    body_of,
    check_login_csrf,
    enabled,
    finished_response,
    service_of,
)
from satchel.integrations.fastapi.routes.requests import NO_STORE, login_context

router = APIRouter()


def _signed_in(request: Request, identity: Identity | None) -> Identity:
    if identity is None:
        error = MissingCredential("Sign in, or send the mfa_token of the sign-in.")
        raise SatchelHTTPException(error, error_headers(request, error))
    return identity


def _no_store(body: dict[str, Any], status: int = 200) -> JSONResponse:
    response = JSONResponse(body, status_code=status)
    response.headers.update(NO_STORE)
    return response


@router.get(
    "/auth/mfa",
    response_model=MfaStatusOut,
    responses=error_responses(401, 503),
    summary="The caller's second factors and the server's policy",
)
async def mfa_status(request: Request, identity: CurrentIdentity) -> dict[str, Any]:
    """Whether a TOTP is set up, how many recovery codes are left (the codes themselves are
    never shown again), how many passkeys."""
    _, service = service_of(request)
    enrolled = await service.enrolled(identity.user_id)
    return {
        "mode": service.config.mode.value,
        "totp": enrolled.totp,
        "recovery_codes": enrolled.recovery_codes,
        "passkeys": enrolled.passkeys,
        "fresh_age": service.config.fresh_age,
    }


@router.post(
    "/auth/mfa/verify",
    responses=error_responses(400, 401, 403, 422, 429, 503),
    summary="Finish a login with a TOTP code or a recovery code",
)
async def verify(request: Request) -> Response:
    """``{"mfa_token", "code"}`` or ``{"mfa_token", "recovery_code"}`` → the credential, on
    the transport the login began with (cookie or token response). Each code works once."""
    auth, service = service_of(request)
    body: CodeBody = await body_of(request, CodeBody)
    check_login_csrf(request, auth)
    finished = await service.verify(
        body.mfa_token, login_context(request), code=body.code, recovery_code=body.recovery_code
    )
    return await finished_response(auth, finished)


@router.post(
    "/auth/mfa/totp/setup",
    dependencies=[CSRFChecked],
    response_model=TotpSetupOut,
    responses=error_responses(400, 401, 403, 409, 422, 503),
    summary="Start setting up an authenticator app (TOTP)",
)
async def totp_setup(request: Request, identity: OptionalIdentity) -> Response:
    """A new secret, its ``otpauth://`` URI and a QR code (SVG); nothing is active until
    ``/auth/mfa/totp/confirm``. Signed in (fresh) or with an enrolment ``mfa_token``."""
    auth, service = service_of(request)
    enabled(service)
    body: MfaTokenBody = await body_of(request, MfaTokenBody)
    if body.mfa_token is not None:
        check_login_csrf(request, auth)
        setup = await service.enroll_totp(body.mfa_token)
    else:
        setup = await service.start_totp(_signed_in(request, identity))
    return _no_store({"secret": setup.secret, "otpauth_uri": setup.uri, "qr_svg": setup.qr_svg})


@router.post(
    "/auth/mfa/totp/confirm",
    dependencies=[CSRFChecked],
    responses=error_responses(400, 401, 403, 409, 422, 429, 503),
    summary="Confirm the authenticator app with a code; it is active from now on",
)
async def totp_confirm(request: Request, identity: OptionalIdentity) -> Response:
    """Signed in: ``{"code"}`` → ``{"recovery_codes": [...]}`` the first time (else none).
    At sign-in: ``{"mfa_token", "code"}`` → the credential, with the recovery codes."""
    auth, service = service_of(request)
    enabled(service)
    body: CodeBody = await body_of(request, CodeBody)
    code = body.code or ""
    if body.mfa_token is not None:
        check_login_csrf(request, auth)
        finished = await service.finish_enrollment(body.mfa_token, code, login_context(request))
        return await finished_response(auth, finished)
    codes = await service.confirm_totp(_signed_in(request, identity), code)
    return _no_store({"enabled": True, "recovery_codes": codes})


@router.delete(
    "/auth/mfa/totp",
    dependencies=[CSRFChecked],
    status_code=204,
    responses=error_responses(401, 403, 404, 503),
    summary="Remove the authenticator app (fresh authentication required)",
)
async def totp_remove(request: Request, identity: FreshIdentity) -> Response:
    """The TOTP stops working at once; recovery codes stay."""
    _, service = service_of(request)
    if not await service.remove_totp(identity):
        raise NotFound("No authenticator app is set up.")
    return Response(status_code=204, headers=NO_STORE)


@router.post(
    "/auth/mfa/recovery-codes",
    dependencies=[CSRFChecked],
    response_model=RecoveryCodesOut,
    responses=error_responses(401, 403, 503),
    summary="Replace the recovery codes with ten new ones (fresh authentication required)",
)
async def recovery_codes_new(request: Request, identity: FreshIdentity) -> Response:
    """Ten new single-use codes, shown this once; the old ones stop working."""
    _, service = service_of(request)
    enabled(service)
    codes = await service.new_recovery_codes(identity)
    return _no_store({"recovery_codes": codes})
