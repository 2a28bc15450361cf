"""The signed-in page that changes the account's address."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from satchel.errors import InvalidLogin, Throttled
from satchel.integrations.fastapi import OptionalIdentity, get_auth
from satchel.integrations.fastapi.routes import login_context
from satchel.server.account_api import accounts
from satchel.server.account_pages.forms import (
    EXPECTED,
    field,
    message,
    page,
    posted,
    problem,
    signed_in,
)
from satchel.server.pages.forms import fresh_enough
from satchel.server.pages.render import redirect

router = APIRouter(include_in_schema=False)


@router.get("/email")
async def email_form(request: Request, identity: OptionalIdentity) -> Response:
    """The caller's address and the form to change it."""
    me = signed_in(identity)
    if me is None:
        return redirect("/login?next=/email")
    if not fresh_enough(get_auth(request), me):  # an address change needs a recent sign-in
        return redirect("/reauthenticate?next=/email")
    user = await get_auth(request).users.get(me.user_id)
    return page(
        request,
        "email_change.html",
        title="E-mail address",
        identity=me,
        current_email=user.email,
        active="email",
    )


@router.post("/email")
async def email_submit(request: Request, identity: OptionalIdentity) -> Response:
    """Mail a confirmation link to the new address (needs the current password)."""
    me = signed_in(identity)
    if me is None:
        return redirect("/login?next=/email")
    if not fresh_enough(get_auth(request), me):  # an address change needs a recent sign-in
        return redirect("/reauthenticate?next=/email")
    form = await posted(request, me)
    if isinstance(form, Response):
        return form
    service = accounts(request)
    try:
        await service.email.request(
            me, field(form, "email"), field(form, "password"), login_context(request).ip
        )
    except (*EXPECTED, Throttled, InvalidLogin) as exc:
        status, error, headers = problem(exc)
        if isinstance(exc, InvalidLogin):
            status, error = 400, "The current password is incorrect."
        user = await get_auth(request).users.get(me.user_id)
        return page(
            request,
            "email_change.html",
            title="E-mail address",
            status=status,
            error=error,
            headers=headers,
            identity=me,
            current_email=user.email,
            active="email",
        )
    return message(
        request,
        "Check your mail",
        "We sent a confirmation link to the new address. Until you open it, your current "
        "address stays.",
        href="/",
        label="Back to the dashboard",
    )
