"""Passkeys over the API: registration, "sign in with a passkey", a passkey as second factor
and for step-up, and managing them.

Each ceremony is two calls: ``.../options`` returns the ``PublicKeyCredential*Options``
JSON to hand to ``navigator.credentials.create()`` / ``.get()`` (its challenge is stored
server-side, single use, 5 minutes); the second call sends the result
(``credential.toJSON()``) back as ``credential``.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Path, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from satchel.accounts.mfa.factors import Passkey
from satchel.integrations.fastapi.deps import CurrentIdentity, OptionalIdentity
from satchel.integrations.fastapi.fresh import FreshIdentity
from satchel.integrations.fastapi.openapi import error_responses
from satchel.integrations.fastapi.routes.csrf import CSRFChecked
from satchel.integrations.fastapi.routes.mfa_common import (
    MfaTokenBody,
    body_of,
    check_login_csrf,
    finished_response,
    service_of,
)
from satchel.integrations.fastapi.routes.requests import NO_STORE, login_context

router = APIRouter()

PasskeyId = Path(min_length=1, max_length=1400, pattern=r"^[A-Za-z0-9_-]+$")


class CredentialBody(BaseModel):
    """A ceremony's result, ``PublicKeyCredential.toJSON()``, and its context."""

    model_config = ConfigDict(extra="forbid")

    credential: dict[str, Any]
    mfa_token: StrictStr | None = Field(default=None, max_length=64)
    name: StrictStr | None = Field(default=None, max_length=64)
    #: Usernameless sign-in: hand the credential over as a cookie or a token response
    #: (default: the cookie when the server has that transport).
    transport: Literal["cookie", "bearer"] | None = None


class NameBody(BaseModel):
    """A passkey's new name."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1, max_length=64)


def passkey_out(key: Passkey) -> dict[str, Any]:
    """A passkey as the API shows it (never its public key)."""
    return {
        "id": key.id,
        "name": key.name,
        "created": int(key.created_at),
        "last_used": None if key.last_used_at is None else int(key.last_used_at),
        "synced": key.synced,
        "flagged": key.flagged,
    }


def _json(body: Any, status: int = 200) -> JSONResponse:
    response = JSONResponse(body, status_code=status)
    response.headers.update(NO_STORE)
    return response


@router.post(
    "/auth/passkeys/register/options",
    dependencies=[CSRFChecked],
    responses=error_responses(400, 401, 403, 422, 503),
    summary="Options to create a passkey (signed in and fresh, or an enrolment mfa_token)",
)
async def register_options(request: Request, identity: OptionalIdentity) -> Response:
    """``PublicKeyCredentialCreationOptions`` for a discoverable, user-verified passkey."""
    auth, service = service_of(request)
    body: MfaTokenBody = await body_of(request, MfaTokenBody)
    if body.mfa_token is not None:
        check_login_csrf(request, auth)
    options = await service.passkeys.registration_options(identity, body.mfa_token)
    return _json(options)


@router.post(
    "/auth/passkeys/register",
    dependencies=[CSRFChecked],
    status_code=201,
    responses={
        200: {"description": "At sign-in (an enrolment mfa_token): the credential"},
        **error_responses(400, 401, 403, 422, 503),
    },
    summary="Register the passkey just created",
)
async def register(request: Request, identity: OptionalIdentity) -> Response:
    """Verifies the attestation against the stored challenge, the RP ID and the origins.
    At sign-in (``mfa_token`` of an enrolment) the answer is the credential."""
    auth, service = service_of(request)
    body: CredentialBody = await body_of(request, CredentialBody)
    if body.mfa_token is not None:
        check_login_csrf(request, auth)
    key, finished = await service.passkeys.register(
        identity,
        body.credential,
        name=body.name,
        mfa_token=body.mfa_token,
        ctx=login_context(request),
    )
    if finished is not None:
        return await finished_response(auth, finished)
    return _json(passkey_out(key), 201)


@router.post(
    "/auth/passkeys/login/options",
    responses=error_responses(400, 401, 422, 503),
    summary="Options to sign in with a passkey (no username; or as second factor)",
)
async def login_options(request: Request) -> Response:
    """Without a body: any passkey of this site (usernameless). With ``{"mfa_token"}``: one
    of that account's passkeys, as the second factor of its login."""
    _, service = service_of(request)
    body: MfaTokenBody = await body_of(request, MfaTokenBody)
    return _json(await service.passkeys.login_options(body.mfa_token))


@router.post(
    "/auth/passkeys/login",
    responses=error_responses(400, 401, 403, 422, 429, 503),
    summary="Sign in with a passkey",
)
async def login(request: Request) -> Response:
    """The signed assertion → the credential (cookie or token response)."""
    auth, service = service_of(request)
    body: CredentialBody = await body_of(request, CredentialBody)
    check_login_csrf(request, auth)
    transport = body.transport
    if transport is None:
        transport = "cookie" if "cookie" in auth.transport_by_name else "bearer"
    ctx = login_context(request, transport=transport)
    finished = await service.passkeys.login(body.credential, ctx, mfa_token=body.mfa_token)
    return await finished_response(auth, finished)


@router.post(
    "/auth/passkeys/reauthenticate/options",
    dependencies=[CSRFChecked],
    responses=error_responses(401, 403, 404, 503),
    summary="Options for a step-up with one of the caller's passkeys",
)
async def reauth_options(request: Request, identity: CurrentIdentity) -> Response:
    """Send the result to ``POST /auth/reauthenticate`` as ``{"passkey": ...}``."""
    _, service = service_of(request)
    return _json(await service.passkeys.reauth_options(identity))


@router.get(
    "/auth/passkeys",
    responses=error_responses(401, 503),
    summary="The caller's passkeys",
)
async def list_passkeys(request: Request, identity: CurrentIdentity) -> Response:
    """Id, name, when added and last used, synced or device-bound, flagged."""
    _, service = service_of(request)
    keys = await service.passkeys.list(identity.user_id)
    return _json({"passkeys": [passkey_out(k) for k in keys]})


@router.post(
    "/auth/passkeys/{passkey_id}/name",
    dependencies=[CSRFChecked],
    status_code=204,
    responses=error_responses(401, 403, 404, 422, 503),
    summary="Rename one of the caller's passkeys",
)
async def rename(
    request: Request, identity: CurrentIdentity, passkey_id: str = PasskeyId
) -> Response:
    """``{"name": "..."}``."""
    _, service = service_of(request)
    body: NameBody = await body_of(request, NameBody)
    await service.passkeys.rename(identity, passkey_id, body.name)
    return Response(status_code=204, headers=NO_STORE)


@router.delete(
    "/auth/passkeys/{passkey_id}",
    dependencies=[CSRFChecked],
    status_code=204,
    responses=error_responses(401, 403, 404, 503),
    summary="Remove one of the caller's passkeys (fresh authentication required)",
)
async def remove(
    request: Request, identity: FreshIdentity, passkey_id: str = PasskeyId
) -> Response:
    """It cannot sign in from then on."""
    _, service = service_of(request)
    await service.passkeys.remove(identity, passkey_id)
    return Response(status_code=204, headers=NO_STORE)
