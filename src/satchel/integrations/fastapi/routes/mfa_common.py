"""What the second-factor routes share: their bodies, the answer that hands over a
credential (on the transport the login began with), and the login-CSRF check of the
pre-session steps."""

from __future__ import annotations

from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictStr

from satchel.accounts.mfa.errors import MfaDisabled
from satchel.accounts.mfa.pending import Finished
from satchel.accounts.mfa.service import MfaService
from satchel.auth import Auth
from satchel.dbsc.enforce import offer_binding
from satchel.errors import NotSupported
from satchel.integrations.fastapi.deps import get_auth
from satchel.integrations.fastapi.routes.models import TokenOut
from satchel.integrations.fastapi.routes.requests import NO_STORE, apply_headers
from satchel.transports.csrf import scope_origin

_Code = Field(default=None, max_length=64)


class CodeBody(BaseModel):
    """A TOTP code, or a recovery code, and (at sign-in) the ``mfa_token``."""

    model_config = ConfigDict(extra="forbid")

    mfa_token: StrictStr | None = Field(default=None, max_length=64)
    code: StrictStr | None = _Code
    recovery_code: StrictStr | None = _Code


class MfaTokenBody(BaseModel):
    """The ``mfa_token`` of an enrolment at sign-in (absent: the signed-in caller)."""

    model_config = ConfigDict(extra="forbid")

    mfa_token: StrictStr | None = Field(default=None, max_length=64)


class TotpSetupOut(BaseModel):
    """What an authenticator app needs: the secret, its ``otpauth://`` URI, a QR code."""

    secret: str
    otpauth_uri: str
    qr_svg: str


class RecoveryCodesOut(BaseModel):
    """Recovery codes: shown this once, stored only as hashes."""

    recovery_codes: list[str]


class MfaStatusOut(BaseModel):
    """What the caller has set up, and the server's policy."""

    mode: str
    totp: bool
    recovery_codes: int
    passkeys: int
    fresh_age: int


def service_of(request: Request) -> tuple[Auth, MfaService]:
    """The request's :class:`Auth` and its MFA service (400 without one)."""
    auth = get_auth(request)
    if auth.mfa is None:
        raise NotSupported("Second factors are not set up on this server.")
    return auth, auth.mfa


def enabled(service: MfaService) -> None:
    """403 ``mfa_disabled`` when second factors are off."""
    if service.config.mode.value == "off":
        raise MfaDisabled("Second factors are turned off on this server.")


async def body_of(request: Request, model: type[BaseModel]) -> Any:
    """A JSON body (empty: all defaults) as ``model``."""
    from fastapi.exceptions import RequestValidationError
    from pydantic import ValidationError

    from satchel.integrations.fastapi.routes.requests import parse_json_object

    raw = await request.body()
    data = parse_json_object(raw) if raw.strip() else {}
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None


def check_login_csrf(request: Request, auth: Auth) -> None:
    """The login-CSRF check of ``POST /auth/login`` for a pre-session step that may end in a
    cookie: a forged post cannot sign the victim's browser into another account."""
    csrf = auth.csrf
    if csrf is None:
        return
    headers = request.scope.get("headers") or ()
    csrf.check(
        request.method,
        headers,
        own_origin=scope_origin(request.scope),
        binding=csrf.login_binding(headers),
    )


async def finished_response(auth: Auth, finished: Finished) -> Response:
    """Hand the credential over on the transport the login began with: a cookie and the
    identity, or a token response (plus any recovery codes, shown once)."""
    transport = finished.transport
    if transport not in auth.transport_by_name:
        transport = "bearer" if "bearer" in auth.transport_by_name else "cookie"
    extra: dict[str, Any] = {}
    if finished.recovery_codes is not None:
        extra["recovery_codes"] = finished.recovery_codes
    result = finished.result
    response: Response
    if transport == "cookie":
        body = result.identity.with_transport("cookie").to_public_dict()
        response = JSONResponse({**body, **extra})
        apply_headers(response, auth.login_headers(result, "cookie"))
        apply_headers(response, await offer_binding(auth.dbsc, result.identity))  # dbsc.md
    else:
        token = TokenOut.of(result, auth.clock()).body()
        response = JSONResponse({**token, **extra})
    response.headers.update(NO_STORE)
    return response
