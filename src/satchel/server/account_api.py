"""The JSON routes of the account life cycle: sign-up, address verification, password
reset, sign-in by link or code, address change and the first administrator.

Routes that start with an address (``/auth/password/forgot``, ``/auth/sign-in/link``,
``/auth/register`` in open mode) answer ``202`` with the same body whether the address is
known or not; the work that differs runs in the background (see
:mod:`satchel.accounts.service`). Every token is used up only by a ``POST`` of these routes
(or of the pages' confirmation forms), never by following a link.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from satchel.accounts.service import AccountService
from satchel.auth import Auth, LoginResult
from satchel.dbsc.enforce import offer_binding
from satchel.errors import ConfigurationError, InvalidInput, NotSupported
from satchel.integrations.fastapi import CurrentIdentity, FreshIdentity, get_auth
from satchel.integrations.fastapi.routes import CSRFChecked, TokenOut, login_context
from satchel.server.errors import error_responses
from satchel.transports.csrf import scope_origin

#: Where the reference server keeps its :class:`AccountService`.
STATE_ACCOUNTS = "satchel_accounts"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
ACCEPTED: dict[str, str] = {
    "status": "accepted",
    "detail": "If this address can get mail from us, a message is on its way. Check your inbox.",
}

Text = Annotated[str, StringConstraints(min_length=1, max_length=1024, strict=True)]
Secret = Annotated[str, StringConstraints(min_length=1, max_length=4096, strict=True)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=256, strict=True)]

router = APIRouter(tags=["accounts"])


def accounts(request: Request) -> AccountService:
    """The account flows of this app (:func:`satchel.server.account_app.install`)."""
    service = getattr(request.app.state, STATE_ACCOUNTS, None)
    if not isinstance(service, AccountService):
        raise ConfigurationError("The account flows are not set up on this app.")
    return service


def accepted() -> JSONResponse:
    """The one answer of every request that starts with an address."""
    return JSONResponse(ACCEPTED, status_code=202, headers=NO_STORE)


def done(status: str) -> JSONResponse:
    return JSONResponse({"status": status}, headers=NO_STORE)


async def credential_response(
    request: Request, auth: Auth, result: LoginResult, mode: str | None
) -> JSONResponse:
    """The identity and a cookie, or an OAuth 2.0 token response (``mode="token"``)."""
    cookie = "cookie" in auth.transport_by_name
    if mode is None:
        mode = "cookie" if cookie else "token"
    if mode == "cookie":
        response = JSONResponse(result.identity.with_transport("cookie").to_public_dict())
        offer = await offer_binding(auth.dbsc, result.identity)  # DBSC, docs/dbsc.md
        for name, value in [*auth.login_headers(result, "cookie"), *offer]:
            if name.lower() != "cache-control":
                response.headers.append(name, value)
    else:
        issued = result.credentials
        out = TokenOut(
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            refresh_token=issued.refresh_token,
            refresh_expires_in=issued.refresh_expires_in if issued.refresh_token else None,
        )
        response = JSONResponse(out.model_dump(exclude_none=True))
    response.headers.update(NO_STORE)
    return response


def check_mode(request: Request, auth: Auth, mode: str | None) -> None:
    """Refuse a mode this server does not offer; login CSRF check before a cookie is set."""
    wanted = mode or ("cookie" if "cookie" in auth.transport_by_name else "token")
    transport = "bearer" if wanted == "token" else "cookie"
    if transport not in auth.transport_by_name:
        raise NotSupported(f"This server does not hand out credentials by {wanted}.")
    if wanted == "cookie" and auth.csrf is not None:
        headers = request.scope.get("headers") or ()
        auth.csrf.check(
            request.method,
            headers,
            own_origin=scope_origin(request.scope),
            binding=auth.csrf.login_binding(headers),
        )


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterBody(_Body):
    """``POST /auth/register``."""

    username: Text
    password: Secret
    email: Text | None = None
    invite: Token | None = None


class TokenBody(_Body):
    """A token from a mailed link."""

    token: Token


class EmailBody(_Body):
    """An address to mail."""

    email: Text


class ResetBody(_Body):
    """``POST /auth/password/reset``."""

    token: Token
    password: Secret


class ConsumeBody(_Body):
    """``POST /auth/sign-in/link/consume``: the link's token, or the address and its code."""

    token: Token | None = None
    email: Text | None = None
    code: Annotated[str, StringConstraints(max_length=16, strict=True)] | None = None
    mode: Literal["cookie", "token"] | None = None


class EmailChangeBody(_Body):
    """``POST /auth/email/change``."""

    email: Text
    password: Secret


class SetupBody(_Body):
    """``POST /auth/setup``: the setup link's token and the first administrator."""

    token: Token
    username: Text
    password: Secret
    mode: Literal["cookie", "token"] | None = None


_ANSWERS: dict[str, Any] = {"description": "Accepted: the same answer for every address."}


@router.post(
    "/auth/register",
    status_code=202,
    responses={202: _ANSWERS, **error_responses(400, 403, 409, 413, 422, 429, 503)},
    summary="Sign up (closed, by invitation or open: SATCHEL_SIGNUP)",
)
async def register(request: Request, body: RegisterBody) -> JSONResponse:
    """Queues the account's creation and a verification mail to ``email``. A taken
    address gets the same answer (its owner is told by mail instead)."""
    ctx = login_context(request)
    await accounts(request).signup.register(
        body.username, body.password, body.email, invite=body.invite, ip=ctx.ip
    )
    return accepted()


@router.post(
    "/auth/email/verify",
    responses=error_responses(400, 409, 422, 429, 503),
    summary="Confirm an address with the token of a verification mail",
)
async def verify_email(request: Request, body: TokenBody) -> JSONResponse:
    """Uses the token up; the address becomes the account's."""
    await accounts(request).signup.verify(body.token, login_context(request).ip)
    return done("verified")


@router.post(
    "/auth/email/verify/resend",
    status_code=202,
    dependencies=[CSRFChecked],
    responses={202: _ANSWERS, **error_responses(401, 403, 429, 503)},
    summary="Send the caller's verification mail again",
)
async def resend_verification(request: Request, identity: CurrentIdentity) -> JSONResponse:
    """A new link (the earlier ones end), if the caller's address is still unconfirmed."""
    await accounts(request).signup.resend(identity, login_context(request).ip)
    return accepted()


@router.post(
    "/auth/password/forgot",
    status_code=202,
    responses={202: _ANSWERS, **error_responses(400, 422, 429, 503)},
    summary="Mail a password-reset link",
)
async def forgot_password(request: Request, body: EmailBody) -> JSONResponse:
    """The same answer whether or not the address belongs to an account."""
    await accounts(request).recovery.forgot(body.email, login_context(request).ip)
    return accepted()


@router.post(
    "/auth/password/reset",
    responses=error_responses(400, 413, 422, 429, 503),
    summary="Choose a new password with the token of a reset mail",
)
async def reset_password(request: Request, body: ResetBody) -> JSONResponse:
    """Ends every session of the account (SATCHEL_RESET_ENDS_SESSIONS)."""
    await accounts(request).recovery.reset(body.token, body.password, login_context(request).ip)
    return done("reset")


@router.post(
    "/auth/sign-in/link",
    status_code=202,
    responses={202: _ANSWERS, **error_responses(400, 422, 429, 503)},
    summary="Mail a sign-in link and code",
)
async def request_sign_in_link(request: Request, body: EmailBody) -> JSONResponse:
    """The same answer whether or not the address belongs to an account."""
    await accounts(request).links.request(body.email, login_context(request).ip)
    return accepted()


@router.post(
    "/auth/sign-in/link/consume",
    responses=error_responses(400, 403, 422, 429, 503),
    summary="Sign in with a mailed link's token, or with the address and its code",
)
async def consume_sign_in_link(request: Request, body: ConsumeBody) -> JSONResponse:
    """Sets the session cookie (``mode="cookie"``, the default with the cookie transport)
    or answers with a bearer token (``mode="token"``)."""
    auth = get_auth(request)
    check_mode(request, auth, body.mode)
    service = accounts(request)
    wanted = body.mode or ("cookie" if "cookie" in auth.transport_by_name else "token")
    # A second factor, if due, finishes on the transport asked for here.
    ctx = login_context(request, transport="bearer" if wanted == "token" else "cookie")
    if body.token is not None and body.code is None and body.email is None:
        result = await service.links.use_link(body.token, ctx)
    elif body.token is None and body.code is not None and body.email is not None:
        result = await service.links.use_code(body.email, body.code, ctx)
    else:
        raise InvalidInput("Send either token, or email and code.")
    return await credential_response(request, auth, result, body.mode)


@router.post(
    "/auth/email/change",
    status_code=202,
    dependencies=[CSRFChecked],
    responses={202: _ANSWERS, **error_responses(400, 401, 403, 422, 429, 503)},
    summary="Ask to change the caller's address (confirmed at the new address)",
)
async def change_email(
    request: Request, identity: FreshIdentity, body: EmailChangeBody
) -> JSONResponse:
    """Needs the current password and a fresh sign-in (``SATCHEL_FRESH_AGE``; 401
    ``reauthentication_required`` otherwise); the same answer whether the new address is
    free or not."""
    await accounts(request).email.request(
        identity, body.email, body.password, login_context(request).ip
    )
    return accepted()


@router.post(
    "/auth/email/change/confirm",
    responses=error_responses(400, 409, 422, 429, 503),
    summary="Confirm a new address with the token of the confirmation mail",
)
async def confirm_email_change(request: Request, body: TokenBody) -> JSONResponse:
    """The old address gets a notice; the account's other sessions end."""
    await accounts(request).email.confirm(body.token, login_context(request).ip)
    return done("changed")


@router.post(
    "/auth/setup",
    responses=error_responses(400, 403, 413, 422, 429, 503),
    summary="Create the first administrator with the setup link printed at start-up",
    include_in_schema=True,
)
async def setup(request: Request, body: SetupBody) -> JSONResponse:
    """Only while no account exists; signs the new administrator in."""
    auth = get_auth(request)
    check_mode(request, auth, body.mode)
    result = await accounts(request).signup.create_first_admin(
        body.token, body.username, body.password, login_context(request)
    )
    return await credential_response(request, auth, result, body.mode)


__all__ = ["STATE_ACCOUNTS", "accounts", "router"]
