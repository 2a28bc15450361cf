"""Pages of a forgotten password and of signing in by a mailed link or code."""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import APIRouter, Request, Response

from satchel.accounts.mfa.errors import MfaRequired
from satchel.errors import InvalidInput, Throttled
from satchel.integrations.fastapi import OptionalIdentity, get_auth
from satchel.integrations.fastapi.routes import login_context
from satchel.server.account_api import accounts
from satchel.server.account_pages.forms import (
    EXPECTED,
    MAX_TOKEN,
    confirm_page,
    field,
    message,
    page,
    posted,
    problem,
    signed_in,
    signed_in_redirect,
    token_param,
)
from satchel.server.pages.render import redirect
from satchel.server.pages.second_step import second_step_page

router = APIRouter(include_in_schema=False)


@router.get("/forgot-password")
async def forgot_form(request: Request) -> Response:
    """Ask for a reset link."""
    return page(request, "forgot_password.html", title="Forgot your password?", email="")


@router.post("/forgot-password")
async def forgot_submit(request: Request) -> Response:
    """The same page for every address."""
    form = await posted(request)
    if isinstance(form, Response):
        return form
    email = field(form, "email")
    try:
        await accounts(request).recovery.forgot(email, login_context(request).ip)
    except (InvalidInput, Throttled) as exc:
        status, error, headers = problem(exc)
        return page(
            request,
            "forgot_password.html",
            title="Forgot your password?",
            status=status,
            error=error,
            headers=headers,
            email=email,
        )
    return message(
        request,
        "Check your mail",
        "If the address belongs to an account, a link to choose a new password is on its way.",
        href="/login",
        label="Back to sign in",
    )


@router.get("/reset-password")
async def reset_form(request: Request) -> Response:
    """The new-password form of a reset link (nothing is used up by opening it)."""
    token = token_param(request)
    if not token:
        return message(request, "Reset password", "Open the link from the mail.")
    return page(request, "reset_password.html", title="Choose a new password", token=token)


@router.post("/reset-password")
async def reset_submit(request: Request) -> Response:
    """Set the new password; every session of the account ends."""
    form = await posted(request)
    if isinstance(form, Response):
        return form
    token, new = field(form, "token")[:MAX_TOKEN], field(form, "new")

    def again(status: int, error: str, headers: Sequence[tuple[str, str]] = ()) -> Response:
        return page(
            request,
            "reset_password.html",
            title="Choose a new password",
            status=status,
            error=error,
            headers=headers,
            token=token,
        )

    if not new or new != field(form, "confirm"):
        return again(400, "Enter the new password twice, the same both times.")
    try:
        await accounts(request).recovery.reset(token, new, login_context(request).ip)
    except (*EXPECTED, Throttled) as exc:
        return again(*problem(exc))
    auth = get_auth(request)
    cookie = auth.transport_by_name.get("cookie")
    clear = cookie.logout_headers() if cookie is not None else []
    return redirect("/login?notice=password-changed-login", clear)


@router.get("/sign-in/link")
async def link_form(request: Request) -> Response:
    """Ask for a sign-in mail, type its code, or confirm its link."""
    token = token_param(request)
    if token:
        return confirm_page(
            request,
            title="Sign in",
            text="Press the button to sign in on this device.",
            action="/sign-in/link",
            button="Sign in",
            token=token,
        )
    return page(request, "sign_in_link.html", title="Sign in by e-mail", sent=False, email="")


@router.post("/sign-in/link")
async def link_submit(request: Request, identity: OptionalIdentity) -> Response:
    """``action=request`` mails a link; a ``token`` or ``action=code`` signs in."""
    form = await posted(request)
    if isinstance(form, Response):
        return form
    service = accounts(request)
    auth = get_auth(request)
    ctx = login_context(request)
    email = field(form, "email")
    action = field(form, "action") or ("token" if field(form, "token") else "")
    try:
        if action == "request":
            await service.links.request(email, ctx.ip)
            return page(
                request, "sign_in_link.html", title="Check your mail", sent=True, email=email
            )
        if action == "token":
            result = await service.links.use_link(field(form, "token")[:MAX_TOKEN], ctx)
        elif action == "code":
            result = await service.links.use_code(email, field(form, "code"), ctx)
        else:
            raise InvalidInput("Unknown action.")
    except MfaRequired as exc:  # the address proven, the account's second factor is next
        return await second_step_page(request, auth, exc, "/")
    except (*EXPECTED, Throttled) as exc:
        status, error, headers = problem(exc)
        return page(
            request,
            "sign_in_link.html",
            title="Sign in by e-mail",
            status=status,
            error=error,
            headers=headers,
            sent=action == "code" and bool(email),
            email=email,
        )
    previous = signed_in(identity)
    if previous is not None:
        await auth.logout(previous)
    return await signed_in_redirect(request, auth, result, previous)
