"""Signing in and out: the sign-in form, its post, the refresh route for page loads, sign-out.

The sign-in page never sends the browser to the refresh route, and the refresh route never
returns to itself, so a failed refresh cannot loop.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

from fastapi import APIRouter, Response
from fastapi.responses import HTMLResponse
from starlette.requests import Request

from satchel.accounts.mfa.errors import MfaRequired
from satchel.auth import Auth
from satchel.dbsc.enforce import offer_binding
from satchel.errors import (
    CSRFError,
    InvalidInput,
    InvalidLogin,
    PasswordTooLong,
    SatchelError,
    SessionLimitExceeded,
    StoreUnavailable,
    Throttled,
)
from satchel.integrations.fastapi import OptionalIdentity, get_auth, server_settings
from satchel.integrations.fastapi.routes import login_context
from satchel.integrations.refresh import REFRESH_ROUTE, cookie_transport, rotate, safe_next
from satchel.server.pages.access import csrf_for, login_url, page_identity, stale_cookie
from satchel.server.pages.formatting import retry_text
from satchel.server.pages.forms import accept_post, check_form, field, read_form
from satchel.server.pages.notices import notice_text, with_notice
from satchel.server.pages.render import error_page, redirect, render
from satchel.server.pages.second_step import second_step_page, with_script
from satchel.transports.csrf import CSRFProtect

_GENERIC_LOGIN_ERROR: Final = "Invalid username or password."
_FORM_EXPIRED: Final = "This sign-in form expired or was sent from another site. Please try again."
_TRUE_WORDS: Final = ("1", "on", "true", "yes")
_MAX_HOST: Final = 253  # longest DNS name; a longer Host is not echoed

router = APIRouter(include_in_schema=False)


def is_loopback(host: str) -> bool:
    """True for the names and addresses browsers treat as secure even over plain HTTP
    (``localhost``, ``*.localhost``, 127.0.0.0/8, ``::1``): Secure cookies work there."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _secure_cookies_dropped(request: Request, csrf: CSRFProtect) -> str | None:
    """The host name, when a login post lacks its pre-session cookie because the browser
    could not keep it: the cookie is Secure and the form came over plain HTTP to an
    address that is not loopback (a LAN address on ``--host 0.0.0.0``). None otherwise."""
    if not csrf.secure or request.scope.get("scheme") != "http":
        return None
    host = request.url.hostname
    if not host or len(host) > _MAX_HOST or is_loopback(host):
        return None
    if csrf.login_binding(request.scope.get("headers") or ()) is not None:
        return None
    return host


def _csrf_failure_text(request: Request, csrf: CSRFProtect) -> str:
    host = _secure_cookies_dropped(request, csrf)
    if host is None:
        return _FORM_EXPIRED
    return (
        f"Your browser did not keep this server's cookies: they are Secure (HTTPS only), and "
        f"this page was opened over plain HTTP at {host}. Open it over https:// (put TLS in "
        "front of the server), or, on a trusted network only, start the server with "
        "SATCHEL_COOKIE_SECURE=false. On this machine, http://127.0.0.1 works as it is."
    )


def _remember_days(request: Request, auth: Auth) -> int | None:
    """How long a remembered sign-in lasts at most, in days (None: not even one)."""
    settings = server_settings(request)
    if auth.strategy.name != "jwt":
        seconds = settings.remember_absolute_timeout
    elif auth.can_refresh:
        seconds = settings.refresh_ttl  # a refresh family's fixed lifetime
    else:
        return None  # no refresh: at most one access token's lifetime
    return max(1, round(seconds / 86_400))


async def _login_page(
    request: Request,
    auth: Auth,
    *,
    status: int = 200,
    error: str | None = None,
    username: str = "",
    remember: bool = False,
    headers: Sequence[tuple[str, str]] = (),
    next_path: str = "/",
) -> HTMLResponse:
    cookie = cookie_transport(auth)
    extra: list[tuple[str, str]] = list(headers)
    token: str | None = None
    if cookie is not None:
        csrf = csrf_for(auth)
        token, form_headers = csrf.login_form(request.scope.get("headers") or ())
        extra.extend(form_headers)
    page = render(
        "login.html",
        status=status,
        headers=extra,
        csrf_token=token,
        error=error,
        notice=notice_text(request),
        username=username,
        remember=remember,
        remember_days=_remember_days(request, auth),
        cookie_enabled=cookie is not None,
        passkeys=auth.mfa is not None,
        next_path=next_path,
    )
    with_script(page)  # the "Sign in with a passkey" button
    return page


@router.get("/login")
async def login_form(request: Request, identity: OptionalIdentity) -> Response:
    """The sign-in form (signed-in browsers go on to ``next``, by default the dashboard).

    Never redirects to the refresh route: a failed refresh ends here, so there is no loop.
    """
    auth = get_auth(request)
    target = safe_next(request.query_params.get("next"))
    if page_identity(request, identity) is not None:
        return redirect(target)
    cookie = cookie_transport(auth)
    clear = cookie.logout_headers() if cookie is not None and stale_cookie(request) else []
    return await _login_page(request, auth, headers=clear, next_path=target)


@router.post("/login")
async def login_submit(request: Request, identity: OptionalIdentity) -> Response:
    """Check the login form's CSRF token, then the password; set the cookie on success."""
    auth = get_auth(request)
    cookie = cookie_transport(auth)
    if cookie is None:
        return await _login_page(request, auth, status=400)
    csrf = csrf_for(auth)
    form = await read_form(request)
    headers = request.scope.get("headers") or ()
    username = field(form, "username")
    remember = field(form, "remember").lower() in _TRUE_WORDS
    target = safe_next(field(form, "next") or "/")
    try:
        # Checked before the password, so a forged post learns nothing about it.
        check_form(csrf, request, form, csrf.login_binding(headers))
    except CSRFError:
        return await _login_page(
            request,
            auth,
            next_path=target,
            status=403,
            error=_csrf_failure_text(request, csrf),
            username=username,
            remember=remember,
        )
    password = field(form, "password")
    if not username.strip() or not password:
        return await _login_page(
            request,
            auth,
            next_path=target,
            status=400,
            error="Enter your username and password.",
            username=username,
            remember=remember,
        )
    try:
        result = await auth.login(username, password, login_context(request, remember, "cookie"))
    except MfaRequired as exc:
        return await second_step_page(request, auth, exc, target)
    except PasswordTooLong as exc:
        return await _login_page(
            request, auth, status=exc.status, error=exc.detail, username=username, next_path=target
        )
    except (InvalidLogin, InvalidInput):
        # The same words for unknown user, wrong password, disabled account and a name
        # that cannot exist: the page must not tell which.
        return await _login_page(
            request,
            auth,
            next_path=target,
            status=401,
            error=_GENERIC_LOGIN_ERROR,
            username=username,
            remember=remember,
        )
    except Throttled as exc:
        return await _login_page(
            request,
            auth,
            next_path=target,
            status=429,
            error="Too many sign-in attempts. "
            f"Wait {retry_text(exc.retry_after)} before trying again.",
            username=username,
            headers=[("Retry-After", str(exc.retry_after))],
        )
    except SessionLimitExceeded:
        return await _login_page(
            request,
            auth,
            next_path=target,
            status=409,
            error="This account is signed in on the maximum number of devices. "
            "Sign out on another device first.",
            username=username,
        )
    previous = page_identity(request, identity)
    if previous is not None:
        # Signing in again replaces the browser's session; do not leave the old one alive.
        await auth.logout(previous)
    offer = await offer_binding(auth.dbsc, result.identity)  # DBSC, docs/dbsc.md
    return redirect(target, [*auth.login_headers(result, "cookie"), *offer])


@router.get(REFRESH_ROUTE)
async def refresh_and_return(request: Request, identity: OptionalIdentity) -> Response:
    """Rotate the refresh cookie and go back to ``next`` (a page whose access cookie expired).

    The rotation is the one of ``POST /auth/refresh`` (reuse detection, grace window). When
    there is no usable refresh cookie the browser goes to the sign-in page, never back here.
    A GET needs no CSRF token: a cross-site link can only make the victim's browser rotate
    its own tokens into itself (see docs/security.md). A browser that still holds a valid
    access cookie, or a strategy without refresh tokens, rotates nothing.
    """
    auth = get_auth(request)
    target = safe_next(request.query_params.get("next"))
    cookie = cookie_transport(auth)
    if cookie is None or not auth.can_refresh or page_identity(request, identity) is not None:
        return redirect(target)
    try:
        token = cookie.extract_refresh(request.scope.get("headers") or ())
        if token is None:
            # Nothing to rotate. Cookies are left alone: a cross-site link must not be able
            # to sign anybody out (a SameSite=Strict cookie is not sent with such a request).
            return redirect(login_url(target))
        rotated = await rotate(auth, token, login_context(request), via_cookie=True)
    except StoreUnavailable as exc:
        # An outage is not a sign-out: keep the cookies, let the browser retry.
        return error_page(exc.status, headers=[("Retry-After", str(exc.retry_after))])
    except SatchelError:
        # Two refresh cookies or a malformed one (InvalidCredential), or a token that is
        # unknown, expired, ended or reused (reuse has just ended the whole session).
        return redirect(login_url(target, "ended"), cookie.logout_headers())
    return redirect(target, rotated.headers)


@router.post("/logout")
async def logout_submit(request: Request, identity: OptionalIdentity) -> Response:
    """End the current session and clear the cookie."""
    auth = get_auth(request)
    cookie = cookie_transport(auth)
    clear = cookie.logout_headers() if cookie is not None else []
    if page_identity(request, identity) is None:
        return redirect("/login", clear)
    posted = await accept_post(request, identity)
    if isinstance(posted, Response):
        return posted
    await auth.logout(posted.identity)
    return redirect(with_notice("/login", "signed-out"), clear)
