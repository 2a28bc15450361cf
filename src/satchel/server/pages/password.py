"""Changing my password: every credential of the user ends, this browser gets a new one."""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.requests import Request

from satchel.dbsc.enforce import offer_binding
from satchel.errors import InvalidInput, InvalidLogin
from satchel.integrations.fastapi import OptionalIdentity, get_auth
from satchel.integrations.fastapi.routes import login_context
from satchel.server.pages.access import page_identity, to_login
from satchel.server.pages.forms import accept_post, field, fresh_enough, page_context
from satchel.server.pages.notices import with_notice
from satchel.server.pages.render import redirect, render

router = APIRouter(include_in_schema=False)


@router.get("/password")
async def password_form(request: Request, identity: OptionalIdentity) -> Response:
    """The change-password form."""
    auth = get_auth(request)
    identity = page_identity(request, identity)
    if identity is None:
        return to_login(request, auth)
    if not fresh_enough(auth, identity):
        return redirect("/reauthenticate?next=/password")
    context = await page_context(request, auth, identity)
    return render("password.html", active="password", **context)


@router.post("/password")
async def password_submit(request: Request, identity: OptionalIdentity) -> Response:
    """Change the password, end every other session and give this browser a new one."""
    posted = await accept_post(request, identity)
    if isinstance(posted, Response):
        return posted
    auth, me, form = posted.auth, posted.identity, posted.form
    if not fresh_enough(auth, me):
        return redirect("/reauthenticate?next=/password")
    current, new, confirm = field(form, "current"), field(form, "new"), field(form, "confirm")

    async def again(status: int, error: str) -> Response:
        context = await page_context(request, auth, me)
        return render("password.html", status=status, active="password", error=error, **context)

    if not current or not new:
        return await again(400, "Fill in the current and the new password.")
    if new != confirm:
        return await again(400, "The new password and its confirmation differ.")
    try:
        # Ends every credential of the user (this one too) and issues this browser a new
        # session, so the session id changes with the password.
        result = await auth.change_password(me, current, new, login_context(request))
    except InvalidLogin:
        return await again(400, "The current password is incorrect.")
    except InvalidInput as exc:
        return await again(exc.status, exc.detail)
    offer = await offer_binding(auth.dbsc, result.identity)  # a new session (docs/dbsc.md)
    target = with_notice("/", "password-changed")
    return redirect(target, [*auth.login_headers(result, "cookie"), *offer])
