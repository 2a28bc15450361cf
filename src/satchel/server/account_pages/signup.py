"""Pages of accounts coming in: sign-up, the address confirmation and the first administrator."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request, Response

from satchel.accounts.service import AccountService
from satchel.errors import Throttled
from satchel.integrations.fastapi import OptionalIdentity, get_auth
from satchel.integrations.fastapi.routes import login_context
from satchel.server.account_api import accounts
from satchel.server.account_pages.forms import (
    EXPECTED,
    MAX_TOKEN,
    field,
    message,
    page,
    posted,
    problem,
    signed_in_redirect,
    token_param,
)

router = APIRouter(include_in_schema=False)


def _signup_closed(service: AccountService, invite: str) -> bool:
    mode = service.policy.signup
    return mode == "closed" or (mode == "invite" and not invite)


@router.get("/register")
async def register_form(request: Request, identity: OptionalIdentity) -> Response:
    """The sign-up form (with an invitation's token, when the link carried one)."""
    service = accounts(request)
    invite = request.query_params.get("invite", "")[:MAX_TOKEN]
    if _signup_closed(service, invite):
        text = (
            "Accounts are created by invitation here. Ask an administrator for an invitation link."
            if service.policy.signup == "invite"
            else "Sign-up is closed here. Ask an administrator for an account."
        )
        return message(request, "Sign-up closed", text, href="/login", label="Sign in")
    return page(
        request,
        "register.html",
        title="Create account",
        invite=invite,
        username="",
        email="",
        email_fixed=False,
    )


@router.post("/register")
async def register_submit(request: Request) -> Response:
    """Create the account (in the background) and mail the confirmation link."""
    form = await posted(request)
    if isinstance(form, Response):
        return form
    service = accounts(request)
    username, email = field(form, "username"), field(form, "email")
    invite = field(form, "invite")[:MAX_TOKEN]

    def again(status: int, error: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
        return page(
            request,
            "register.html",
            title="Create account",
            status=status,
            error=error,
            headers=headers,
            invite=invite,
            username=username,
            email=email,
            email_fixed=False,
        )

    password = field(form, "password")
    if password != field(form, "confirm"):
        return again(400, "The password and its repetition differ.")
    try:
        await service.signup.register(
            username, password, email, invite=invite or None, ip=login_context(request).ip
        )
    except (*EXPECTED, Throttled) as exc:
        return again(*problem(exc))
    return message(
        request,
        "Check your mail",
        "We sent a link to confirm your e-mail address. Open it to finish, then sign in.",
        href="/login",
        label="Go to sign in",
    )


@router.get("/setup")
async def setup_form(request: Request) -> Response:
    """Create the first administrator with the link printed when the server started."""
    token = token_param(request)
    if not token:
        return message(
            request,
            "Set up",
            "Open the setup link that satchel serve printed when it started.",
        )
    return page(request, "setup.html", title="Set up satchel", token=token, username="")


@router.post("/setup")
async def setup_submit(request: Request) -> Response:
    """Create the administrator, sign them in and go to the dashboard."""
    form = await posted(request)
    if isinstance(form, Response):
        return form
    token, username = field(form, "token")[:MAX_TOKEN], field(form, "username")
    password = field(form, "password")

    def again(status: int, error: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
        return page(
            request,
            "setup.html",
            title="Set up satchel",
            status=status,
            error=error,
            headers=headers,
            token=token,
            username=username,
        )

    if password != field(form, "confirm"):
        return again(400, "The password and its repetition differ.")
    try:
        result = await accounts(request).signup.create_first_admin(
            token, username, password, login_context(request)
        )
    except (*EXPECTED, Throttled) as exc:
        return again(*problem(exc))
    return await signed_in_redirect(request, get_auth(request), result, None)
