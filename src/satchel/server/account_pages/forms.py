"""What the account pages share: bounded forms, their CSRF check, rendering a page with its
token, message pages and turning an error into a message."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from fastapi import Request, Response
from starlette.datastructures import FormData

from satchel.accounts.account_policy import AddressTaken, SignupClosed
from satchel.accounts.tokens import InvalidOneTimeToken
from satchel.auth import Auth, LoginResult
from satchel.dbsc.enforce import offer_binding
from satchel.errors import (
    CSRFError,
    InvalidInput,
    SatchelError,
    Throttled,
    UserExists,
)
from satchel.identity import Identity
from satchel.integrations.fastapi import get_auth
from satchel.server.pages.access import csrf_for
from satchel.server.pages.forms import check_form, csrf_refused, field, read_form
from satchel.server.pages.render import redirect, render
from satchel.transports.csrf import CSRFProtect, binding_for

MAX_TOKEN: Final = 256
EXPECTED = (InvalidInput, InvalidOneTimeToken, UserExists, SignupClosed, AddressTaken)


def signed_in(identity: Identity | None) -> Identity | None:
    """The caller as the pages see them: only a cookie credential counts."""
    return identity if identity is not None and identity.transport == "cookie" else None


def token_param(request: Request) -> str:
    token = request.query_params.get("token", "")
    return token if len(token) <= MAX_TOKEN else ""


def _csrf(auth: Auth) -> CSRFProtect:
    return csrf_for(auth)


def page(
    request: Request,
    template: str,
    *,
    title: str,
    status: int = 200,
    error: str | None = None,
    notice: str | None = None,
    identity: Identity | None = None,
    headers: Sequence[tuple[str, str]] = (),
    **context: Any,
) -> Response:
    """A page with a form: its CSRF token (pre-session cookie, or the session's)."""
    auth = get_auth(request)
    csrf = _csrf(auth)
    extra = list(headers)
    if identity is not None:
        token = csrf.token_for(identity)
    else:
        token, cookie_headers = csrf.login_form(request.scope.get("headers") or ())
        extra.extend(cookie_headers)
    return render(
        template,
        status=status,
        headers=extra,
        title=title,
        csrf_token=token,
        error=error,
        notice=notice,
        identity=identity,
        **context,
    )


def message(
    request: Request, title: str, text: str, *, href: str = "", label: str = ""
) -> Response:
    """A page that only says what happened (and where to go next)."""
    return render("account_message.html", title=title, text=text, next_href=href, next_label=label)


async def posted(request: Request, identity: Identity | None = None) -> FormData | Response:
    """The form, after its CSRF check (a 403 page when it fails)."""
    auth = get_auth(request)
    csrf = _csrf(auth)
    form = await read_form(request)
    headers = request.scope.get("headers") or ()
    binding = binding_for(identity) if identity is not None else csrf.login_binding(headers)
    try:
        check_form(csrf, request, form, binding)
    except CSRFError:
        return csrf_refused()
    return form


def problem(exc: SatchelError) -> tuple[int, str, list[tuple[str, str]]]:
    if isinstance(exc, Throttled):
        return (
            exc.status,
            "Too many attempts. Wait a little and try again.",
            [("Retry-After", str(exc.retry_after))],
        )
    return exc.status, exc.detail, []


async def signed_in_redirect(
    request: Request, auth: Auth, result: LoginResult, previous: Identity | None
) -> Response:
    offer = await offer_binding(auth.dbsc, result.identity)  # DBSC, docs/dbsc.md
    return redirect("/", [*auth.login_headers(result, "cookie"), *offer])


def confirm_page(
    request: Request, *, title: str, text: str, action: str, button: str, token: str
) -> Response:
    if not token:
        return message(request, title, "This link is incomplete. Open the link from the mail.")
    return page(
        request,
        "account_confirm.html",
        title=title,
        text=text,
        action=action,
        button=button,
        token=token,
    )


__all__ = ["field", "read_form", "redirect"]
