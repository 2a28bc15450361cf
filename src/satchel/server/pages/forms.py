"""Form posts: reading a bounded form, the CSRF check every post passes first, and what
every signed-in page needs to render.

Every form post passes :meth:`CSRFProtect.check` before it does anything: the login form
with a token bound to the pre-session cookie, every other form with a token bound to the
session.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import Response
from fastapi.responses import HTMLResponse
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request

from satchel.auth import Auth
from satchel.errors import CSRFError, InvalidInput
from satchel.identity import Identity
from satchel.integrations.fastapi import get_auth
from satchel.integrations.fresh import stale_error
from satchel.server.pages.access import csrf_for, page_identity, to_login
from satchel.server.pages.notices import notice_text
from satchel.server.pages.render import ADMIN_ROLE, error_page, redirect
from satchel.transports.csrf import FORM_FIELD, CSRFProtect, binding_for, scope_origin

MAX_FORM_FIELDS: Final = 20


async def read_form(request: Request) -> FormData:
    """The posted form (bounded); file uploads are refused."""
    form = await request.form(max_files=0, max_fields=MAX_FORM_FIELDS)
    for value in form.values():
        if isinstance(value, UploadFile):
            raise InvalidInput("Files cannot be uploaded here.")
    return form


def field(form: FormData, name: str) -> str:
    """A text field of ``form`` ('' when absent)."""
    value = form.get(name)
    return value if isinstance(value, str) else ""


def check_form(csrf: CSRFProtect, request: Request, form: FormData, binding: str | None) -> None:
    """Raise :class:`CSRFError` unless a page's form post is same-origin and carries its token.

    Stricter than the API's rule: every page form embeds a token, so a post without one is
    refused even when its body type or headers would let a script-free request through.
    """
    token = field(form, FORM_FIELD)
    if not token:
        raise CSRFError("A CSRF token is required.")
    csrf.check(
        request.method,
        request.scope.get("headers") or (),
        own_origin=scope_origin(request.scope),
        binding=binding,
        form_token=token,
    )


def csrf_refused() -> HTMLResponse:
    """The page for a post whose CSRF check failed: nothing was changed."""
    return error_page(
        403,
        "This form has expired or was sent from another site, so nothing was changed. "
        "Go back, reload the page and try again.",
    )


@dataclass(slots=True)
class Posted:
    """A form post that passed the session and CSRF checks."""

    auth: Auth
    identity: Identity
    form: FormData


async def accept_post(
    request: Request, identity: Identity | None, *, admin: bool = False
) -> Posted | Response:
    """Check a form post of a signed-in user: session, CSRF token and origin, role.

    Returns the response to send instead (sign-in redirect, 403 page) when a check fails.
    """
    auth = get_auth(request)
    identity = page_identity(request, identity)
    if identity is None:
        return to_login(request, auth)
    csrf = csrf_for(auth)
    form = await read_form(request)
    try:
        check_form(csrf, request, form, binding_for(identity))
    except CSRFError:
        return csrf_refused()
    if admin and not identity.has_role(ADMIN_ROLE):
        return error_page(403)
    if admin and not fresh_enough(auth, identity):
        # Administrators' actions need a recent sign-in (SATCHEL_FRESH_AGE).
        return redirect("/reauthenticate?" + urlencode({"next": "/admin"}))
    return Posted(auth, identity, form)


def fresh_enough(auth: Auth, identity: Identity) -> bool:
    """True when the caller signed in (or confirmed it is them) recently enough for a
    sensitive action (``SATCHEL_FRESH_AGE``)."""
    return stale_error(auth, identity) is None


async def page_context(request: Request, auth: Auth, identity: Identity) -> dict[str, Any]:
    """What every signed-in page needs: the identity, a CSRF token, the notice."""
    csrf = csrf_for(auth)
    return {
        "identity": identity,
        "csrf_token": csrf.token_for(identity),
        "notice": notice_text(request),
        "now": auth.clock(),
    }
