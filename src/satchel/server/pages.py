"""The reference server's HTML pages: sign in, dashboard, my devices, password and admin.

Server-rendered with Jinja2 (autoescaped) and one hand-written stylesheet; no JavaScript
anywhere, so every action is a plain form post. The pages only ever trust the *cookie*
transport: a bearer token is for API clients and never makes a page act.

Every form post passes :meth:`CSRFProtect.check` before it does anything: the
login form with a token bound to the pre-session cookie, every other form with a token bound
to the session. Outcome messages travel as fixed keys in the query string (``?notice=...``),
never as text, so a link cannot make a page say something the server did not write.

:func:`install` adds the routes to an app and makes its error handlers answer browsers
with an HTML page (the JSON API keeps its JSON errors).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from pathlib import Path as FilePath
from typing import Annotated, Any, Final
from urllib.parse import urlencode, urlsplit

import jinja2
from fastapi import APIRouter, FastAPI, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException as StarletteHTTPException

from satchel.auth import Auth
from satchel.errors import (
    CSRFError,
    ExpiredCredential,
    InvalidCredential,
    InvalidInput,
    InvalidLogin,
    NotFound,
    NotSupported,
    PasswordTooLong,
    SatchelError,
    SessionLimitExceeded,
    StoreUnavailable,
    Throttled,
    UserExists,
)
from satchel.identity import Identity
from satchel.integrations.asgi import SCOPE_ERROR, SCOPE_TRANSPORT
from satchel.integrations.fastapi import OptionalIdentity, get_auth, server_settings
from satchel.keys.schedule import KeyStatus, key_statuses
from satchel.server.api import login_context
from satchel.server.useragent import Device, describe
from satchel.stores.base import SessionRecord, UserRecord
from satchel.strategies.session_policy import is_remembered
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import FORM_FIELD, CSRFProtect, binding_for, scope_origin

logger = logging.getLogger("satchel.server")

#: Role that opens the admin page.
ADMIN_ROLE: Final = "admin"
#: Most sessions the admin page lists (newest first) and most users it shows.
ADMIN_SESSION_LIMIT: Final = 200
ADMIN_USER_LIMIT: Final = 500
MAX_FORM_FIELDS: Final = 20
MAX_FILTER_CHARS: Final = 150
#: Where a browser goes to rotate its refresh cookie (the cookie's default path).
REFRESH_PATH: Final = "/auth/refresh"
#: Longest ``next`` path a redirect will carry back.
MAX_NEXT_CHARS: Final = 2048

_HERE = FilePath(__file__).parent
_TEMPLATES = _HERE / "templates"
_STATIC = _HERE / "static"
_STATIC_TYPES = {
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}
#: Paths that belong to the JSON API: their errors stay JSON even for a browser.
_API_PREFIXES = ("/auth/", "/.well-known/", "/healthz", "/docs", "/redoc", "/openapi.json")

# No script runs on these pages, so the policy can forbid every script outright.
_CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
_PAGE_HEADERS: Final = (
    ("Content-Security-Policy", _CSP),
    ("X-Frame-Options", "DENY"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("Cache-Control", "no-store"),
)

#: Every message a redirect can ask a page to show, by key.
NOTICES: Final[Mapping[str, str]] = {
    "signed-out": "You have signed out.",
    "ended": "Your session has ended. Please sign in again.",
    "session-ended": "The session was ended.",
    "others-ended": "Every other session was ended.",
    "session-gone": "That session had already ended.",
    "password-changed": "Password changed. Your other sessions were signed out.",
    "password-changed-login": "Password changed. Please sign in with the new password.",
    "user-created": "User created.",
    "user-disabled": "User disabled; their sessions were ended.",
    "user-enabled": "User enabled.",
    "roles-changed": "Roles changed; the user's sessions were ended so the new roles apply.",
    "password-reset": "Password reset; the user's sessions were ended.",
    "user-logged-out": "Every session of the user was ended.",
    "keys-rotated": "New signing key published. It starts signing after the publish delay, "
    "once every server has loaded it; until then the current key keeps signing.",
}

_GENERIC_LOGIN_ERROR = "Invalid username or password."

router = APIRouter(include_in_schema=False)


# --- templates and static files -----------------------------------------------------------


def _load_static() -> dict[str, tuple[bytes, str]]:
    files: dict[str, tuple[bytes, str]] = {}
    for name in _STATIC_TYPES:
        path = _STATIC / name
        if path.is_file():
            data = path.read_bytes()
            files[name] = (data, hashlib.sha256(data).hexdigest()[:12])
    return files


_static_files = _load_static()


def static_url(name: str) -> str:
    """URL of a bundled static file, with a content hash so it can be cached for long."""
    entry = _static_files.get(name)
    return f"/static/{name}?v={entry[1]}" if entry else f"/static/{name}"


def format_time(ts: float | None) -> str:
    """``2026-01-05 14:03 UTC`` (empty for None)."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M UTC")


def iso_time(ts: float | None) -> str:
    """Machine-readable form for ``<time datetime=...>``."""
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def format_span(seconds: float) -> str:
    """A rough duration: ``45 s``, ``29 min``, ``11 h 59 min``, ``6 days``."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} days"


def relative(ts: float | None, now: float) -> str:
    """``in 29 min`` / ``3 min ago`` / ``just now``."""
    if ts is None:
        return ""
    delta = ts - now
    if abs(delta) < 30:
        return "just now"
    return f"in {format_span(delta)}" if delta > 0 else f"{format_span(-delta)} ago"


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(_TEMPLATES),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.globals.update(
    static_url=static_url,
    format_time=format_time,
    iso_time=iso_time,
    relative=relative,
    format_span=format_span,
)


def _apply(response: Response, headers: Iterable[tuple[str, str]]) -> None:
    for name, value in headers:
        if name.lower() == "cache-control":
            response.headers["Cache-Control"] = value
        else:
            response.headers.append(name, value)


def render(
    template: str,
    *,
    status: int = 200,
    headers: Iterable[tuple[str, str]] = (),
    **context: Any,
) -> HTMLResponse:
    """An HTML response of ``template`` with the pages' security headers."""
    context.setdefault("identity", None)
    context.setdefault("csrf_token", None)
    context.setdefault("notice", None)
    context.setdefault("error", None)
    context.setdefault("active", None)
    identity = context["identity"]
    context.setdefault("is_admin", identity is not None and identity.has_role(ADMIN_ROLE))
    body = _env.get_template(template).render(**context)
    response = HTMLResponse(body, status_code=status)
    _apply(response, _PAGE_HEADERS)
    _apply(response, headers)
    return response


def redirect(url: str, headers: Iterable[tuple[str, str]] = ()) -> RedirectResponse:
    """A 303 (the browser follows it with a GET) that is never cached."""
    response = RedirectResponse(url, status_code=303)
    response.headers["Cache-Control"] = "no-store"
    _apply(response, headers)
    return response


def with_notice(path: str, notice: str, **params: str) -> str:
    """``path?notice=key`` (plus filters), checking the key is one the pages know."""
    assert notice in NOTICES, notice
    return f"{path}?{urlencode({'notice': notice, **params})}"


def notice_text(request: Request) -> str | None:
    """The message a redirect asked for, if it is a known one."""
    key = request.query_params.get("notice")
    return NOTICES.get(key) if key else None


def error_page(
    status: int, detail: str | None = None, headers: Iterable[tuple[str, str]] = ()
) -> HTMLResponse:
    """The page for an error: its status, a fixed title and an explanation written here."""
    titles = {
        400: "Bad request",
        403: "Not allowed",
        404: "Page not found",
        405: "Not allowed here",
        413: "Too large",
        422: "Bad request",
        429: "Too many requests",
        503: "Temporarily unavailable",
    }
    texts = {
        400: "The request could not be understood.",
        403: "You do not have access to this page.",
        404: "There is nothing at this address.",
        405: "This address does not accept that kind of request.",
        413: "The request was larger than this server accepts.",
        422: "Some of the submitted values were not valid.",
        429: "Too many attempts. Wait a little and try again.",
        503: "The authentication service is temporarily unavailable. Try again shortly.",
    }
    title = titles.get(status, "Something went wrong")
    text = detail or texts.get(status, "The server could not complete the request.")
    return render(
        "error.html", status=status, headers=headers, status_code=status, title=title, text=text
    )


# --- request helpers ----------------------------------------------------------------------


def _cookie_transport(auth: Auth) -> CookieTransport | None:
    transport = auth.transport_by_name.get("cookie")
    return transport if isinstance(transport, CookieTransport) else None


def csrf_for(auth: Auth) -> CSRFProtect:
    """The CSRF protector of the pages: the pages are cookie-only, so an :class:`Auth`
    without the cookie transport (hence without ``csrf``) cannot serve them."""
    if auth.csrf is None:
        raise NotSupported("The pages need the cookie transport.")
    return auth.csrf


def page_identity(request: Request, identity: Identity | None) -> Identity | None:
    """The caller as the pages see them: only a cookie credential counts."""
    if identity is None or identity.transport != "cookie":
        return None
    return identity


def _stale_cookie(request: Request) -> bool:
    """True when the browser sent a session cookie that was rejected (ended or expired)."""
    return (
        request.scope.get(SCOPE_ERROR) is not None
        and request.scope.get(SCOPE_TRANSPORT) == "cookie"
    )


def safe_next(value: object) -> str:
    """``value`` if it is a path on this site to return to after a redirect, else ``"/"``.

    Only a relative path starting with a single ``/`` is accepted: no ``//`` (another host),
    no backslash (browsers read it as ``/``), no scheme, no whitespace or control character
    (browsers drop tabs and newlines, which could turn ``/<TAB>/x`` into ``//x``) and nothing
    under the refresh route, so a redirect never returns to it. No open redirect.
    """
    if not isinstance(value, str) or not 0 < len(value) <= MAX_NEXT_CHARS:
        return "/"
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    if any(not 0x21 <= ord(ch) <= 0x7E for ch in value):
        return "/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return "/"
    if parts.path == REFRESH_PATH or parts.path.startswith(REFRESH_PATH + "/"):
        return "/"
    return value


def _login_url(target: str, notice: str | None = None) -> str:
    """``/login`` remembering where to go after signing in (and a notice)."""
    params = {"next": target} if target != "/" else {}
    if notice is not None:
        return with_notice("/login", notice, **params)
    return f"/login?{urlencode(params)}" if params else "/login"


def has_refresh_tokens(auth: Auth) -> bool:
    """True when the strategy rotates refresh tokens (hybrid)."""
    return auth.can_refresh


def _cookie_sent_to(cookie_path: str, path: str) -> bool:
    """RFC 6265 path-match: does a cookie of ``cookie_path`` go with a request for ``path``?"""
    if path == cookie_path:
        return True
    prefix = cookie_path if cookie_path.endswith("/") else cookie_path + "/"
    return path.startswith(prefix)


def refresh_redirect(request: Request, auth: Auth) -> RedirectResponse | None:
    """The detour through ``GET /auth/refresh`` for a page load whose access cookie is gone
    or expired, when the strategy has refresh tokens; None when it does not apply.

    The refresh cookie is scoped to the refresh route, so a page never sees it: the browser
    has to be sent there. Only GETs of pages are redirected (a form post would lose its
    body), and a credential rejected for any other reason than expiry (ended, revoked,
    ambiguous) goes straight to the sign-in page.
    """
    if request.method != "GET" or not wants_html(request):
        return None
    cookie = _cookie_transport(auth)
    if cookie is None or not has_refresh_tokens(auth):
        return None
    if not _cookie_sent_to(cookie.refresh_path, REFRESH_PATH):
        return None
    if _cookie_sent_to(cookie.refresh_path, request.url.path):
        return None  # the middleware already tried the refresh cookie sent with this request
    if request.scope.get(SCOPE_TRANSPORT) not in (None, "cookie"):
        return None
    error = request.scope.get(SCOPE_ERROR)
    if error is not None and not isinstance(error, ExpiredCredential):
        return None
    here = request.url.path
    if request.url.query:
        here += "?" + request.url.query
    return redirect(f"{REFRESH_PATH}?{urlencode({'next': safe_next(here)})}")


def to_login(request: Request, auth: Auth) -> RedirectResponse:
    """Send an anonymous browser to the sign-in page (through the refresh route first when
    a refresh cookie may bring the session back); clear a dead cookie on the way."""
    detour = refresh_redirect(request, auth)
    if detour is not None:
        return detour
    cookie = _cookie_transport(auth)
    if _stale_cookie(request) and cookie is not None:
        return redirect(with_notice("/login", "ended"), cookie.logout_headers())
    return redirect("/login")


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


def _csrf_refused() -> HTMLResponse:
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
        return _csrf_refused()
    if admin and not identity.has_role(ADMIN_ROLE):
        return error_page(403)
    return Posted(auth, identity, form)


async def page_context(request: Request, auth: Auth, identity: Identity) -> dict[str, Any]:
    """What every signed-in page needs: the identity, a CSRF token, the notice."""
    csrf = csrf_for(auth)
    return {
        "identity": identity,
        "csrf_token": csrf.token_for(identity),
        "notice": notice_text(request),
        "now": auth.clock(),
    }


# --- sign in and out ----------------------------------------------------------------------


def _remember_days(request: Request) -> int:
    return max(1, round(server_settings(request).remember_absolute_timeout / 86_400))


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
    cookie = _cookie_transport(auth)
    extra: list[tuple[str, str]] = list(headers)
    token: str | None = None
    if cookie is not None:
        csrf = csrf_for(auth)
        token, form_headers = csrf.login_form(request.scope.get("headers") or ())
        extra.extend(form_headers)
    return render(
        "login.html",
        status=status,
        headers=extra,
        csrf_token=token,
        error=error,
        notice=notice_text(request),
        username=username,
        remember=remember,
        remember_days=_remember_days(request),
        cookie_enabled=cookie is not None,
        next_path=next_path,
    )


@router.get("/login")
async def login_form(request: Request, identity: OptionalIdentity) -> Response:
    """The sign-in form (signed-in browsers go on to ``next``, by default the dashboard).

    Never redirects to the refresh route: a failed refresh ends here, so there is no loop.
    """
    auth = get_auth(request)
    target = safe_next(request.query_params.get("next"))
    if page_identity(request, identity) is not None:
        return redirect(target)
    cookie = _cookie_transport(auth)
    clear = cookie.logout_headers() if cookie is not None and _stale_cookie(request) else []
    return await _login_page(request, auth, headers=clear, next_path=target)


def _retry_text(seconds: int) -> str:
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


@router.post("/login")
async def login_submit(request: Request, identity: OptionalIdentity) -> Response:
    """Check the login form's CSRF token, then the password; set the cookie on success."""
    auth = get_auth(request)
    cookie = _cookie_transport(auth)
    if cookie is None:
        return await _login_page(request, auth, status=400)
    csrf = csrf_for(auth)
    form = await read_form(request)
    headers = request.scope.get("headers") or ()
    username = field(form, "username")
    remember = field(form, "remember").lower() in ("1", "on", "true", "yes")
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
            error="This sign-in form expired or was sent from another site. Please try again.",
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
        result = await auth.login(username, password, login_context(request, remember))
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
            f"Wait {_retry_text(exc.retry_after)} before trying again.",
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
    return redirect(target, auth.login_headers(result, "cookie"))


@router.get(REFRESH_PATH)
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
    cookie = _cookie_transport(auth)
    if (
        cookie is None
        or not has_refresh_tokens(auth)
        or page_identity(request, identity) is not None
    ):
        return redirect(target)
    try:
        token = cookie.extract_refresh(request.scope.get("headers") or ())
    except InvalidCredential:  # two refresh cookies, or a malformed one: unusable
        return redirect(_login_url(target, "ended"), cookie.logout_headers())
    if token is None:
        # Nothing to rotate. Cookies are left alone: a cross-site link must not be able to
        # sign anybody out (a SameSite=Strict cookie is not sent with such a request).
        return redirect(_login_url(target))
    try:
        result = await auth.refresh(token, login_context(request))
    except StoreUnavailable as exc:
        # An outage is not a sign-out: keep the cookies, let the browser retry.
        return error_page(exc.status, headers=[("Retry-After", str(exc.retry_after))])
    except SatchelError:
        # Unknown, expired, ended or reused (reuse has just ended the whole session).
        return redirect(_login_url(target, "ended"), cookie.logout_headers())
    return redirect(target, auth.login_headers(result, "cookie"))


@router.post("/logout")
async def logout_submit(request: Request, identity: OptionalIdentity) -> Response:
    """End the current session and clear the cookie."""
    auth = get_auth(request)
    cookie = _cookie_transport(auth)
    clear = cookie.logout_headers() if cookie is not None else []
    if page_identity(request, identity) is None:
        return redirect("/login", clear)
    posted = await accept_post(request, identity)
    if isinstance(posted, Response):
        return posted
    await auth.logout(posted.identity)
    return redirect(with_notice("/login", "signed-out"), clear)


# --- dashboard ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CookieView:
    """A cookie as the server sets it (attributes only, never the value)."""

    name: str
    purpose: str
    attributes: list[str]
    sent: bool
    length: int | None


def _cookie_pairs(request: Request) -> dict[str, int]:
    """Names of the cookies this request carries, with the length of each value."""
    out: dict[str, int] = {}
    for key, raw in request.scope.get("headers") or ():
        if key != b"cookie":
            continue
        for part in raw.decode("latin-1").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name:
                out[name] = len(value.strip())
    return out


def _attributes(
    *, path: str, domain: str | None, secure: bool, http_only: bool, same_site: str
) -> list[str]:
    attrs = [f"Path={path}"]
    if domain:
        attrs.append(f"Domain={domain}")
    if secure:
        attrs.append("Secure")
    if http_only:
        attrs.append("HttpOnly")
    attrs.append(f"SameSite={same_site}")
    return attrs


def cookie_views(
    request: Request, cookie: CookieTransport | None, csrf: CSRFProtect, max_age: int | None
) -> list[CookieView]:
    """The cookies satchel sets on a browser, and whether this request carried each."""
    sent = _cookie_pairs(request)
    views: list[CookieView] = []
    if cookie is not None:
        attrs = _attributes(
            path=cookie.path,
            domain=cookie.domain,
            secure=cookie.secure,
            http_only=cookie.http_only,
            same_site=cookie.same_site,
        )
        if max_age is not None:
            attrs.insert(0, f"Max-Age={max_age}")
        views.append(
            CookieView(
                cookie.cookie_name,
                "Session credential",
                attrs,
                cookie.cookie_name in sent,
                sent.get(cookie.cookie_name),
            )
        )
        if cookie.refresh_name in sent:
            views.append(
                CookieView(
                    cookie.refresh_name,
                    "Refresh token (sent only to the refresh endpoint)",
                    _attributes(
                        path=cookie.refresh_path,
                        domain=cookie.domain,
                        secure=cookie.secure,
                        http_only=cookie.http_only,
                        same_site=cookie.same_site,
                    ),
                    True,
                    sent.get(cookie.refresh_name),
                )
            )
    views.append(
        CookieView(
            csrf.cookie_name,
            "Binds the sign-in form's CSRF token (no credential)",
            _attributes(path="/", domain=None, secure=csrf.secure, http_only=True, same_site="Lax"),
            csrf.cookie_name in sent,
            sent.get(csrf.cookie_name),
        )
    )
    return views


def _b64json(segment: str) -> dict[str, Any] | None:
    try:
        raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
        value = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def decode_jwt_parts(token: str | None) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Header and claims of a (verified) compact JWS, for display; the signature is not kept."""
    if not token or token.count(".") != 2 or len(token) > 8192:
        return None
    header_b64, claims_b64, _ = token.split(".")
    header, claims = _b64json(header_b64), _b64json(claims_b64)
    if header is None or claims is None:
        return None
    return header, claims


async def _current_record(auth: Auth, identity: Identity) -> SessionRecord | None:
    if not auth.keeps_sessions or identity.session_id is None:
        return None
    records = await auth.list_sessions(identity.user_id)
    return next((r for r in records if r.id == identity.session_id), None)


@router.get("/")
async def dashboard(request: Request, identity: OptionalIdentity) -> Response:
    """Who I am, what my browser carries and what the server remembers about this session."""
    auth = get_auth(request)
    identity = page_identity(request, identity)
    if identity is None:
        return to_login(request, auth)
    context = await page_context(request, auth, identity)
    csrf = csrf_for(auth)
    cookie = _cookie_transport(auth)
    record = await _current_record(auth, identity)
    token = cookie.extract(request.scope.get("headers") or ()) if cookie is not None else None
    jwt_parts = decode_jwt_parts(token) if identity.strategy != "session" else None
    max_age: int | None = None
    if record is not None:
        max_age = int(record.absolute_expires_at - record.created_at)
    elif jwt_parts is not None:
        exp, iat = jwt_parts[1].get("exp"), jwt_parts[1].get("iat")
        if isinstance(exp, int | float) and isinstance(iat, int | float):
            max_age = int(exp - iat)
    return render(
        "dashboard.html",
        active="dashboard",
        record=record,
        remembered=record is not None and is_remembered(record),
        device=describe(record.user_agent) if record is not None else None,
        cookies=cookie_views(request, cookie, csrf, max_age),
        jwt_header=json.dumps(jwt_parts[0], indent=2, sort_keys=True) if jwt_parts else None,
        jwt_claims=json.dumps(jwt_parts[1], indent=2, sort_keys=True) if jwt_parts else None,
        signature_chars=len(token.rsplit(".", 1)[1]) if jwt_parts and token else None,
        token_chars=len(token) if token else None,
        **context,
    )


# --- my devices ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionRow:
    """A session as the device lists show it."""

    record: SessionRecord
    device: Device
    current: bool
    remembered: bool
    username: str


def session_row(record: SessionRecord, viewer: Identity, username: str = "") -> SessionRow:
    """The row for ``record``; ``current`` when it is the viewer's own session."""
    return SessionRow(
        record=record,
        device=describe(record.user_agent),
        current=record.id == viewer.session_id,
        remembered=is_remembered(record),
        username=username,
    )


@router.get("/devices")
async def devices(request: Request, identity: OptionalIdentity) -> Response:
    """The caller's sessions: device, IP, created, last seen, this-device marker."""
    auth = get_auth(request)
    identity = page_identity(request, identity)
    if identity is None:
        return to_login(request, auth)
    context = await page_context(request, auth, identity)
    records: list[SessionRecord] | None = None
    if auth.keeps_sessions:
        records = await auth.list_sessions(identity.user_id)
    rows = [session_row(record, identity) for record in records or []]
    # This device first, then the most recently active.
    rows.sort(key=lambda row: (not row.current, -row.record.last_seen_at))
    return render(
        "devices.html",
        active="devices",
        rows=rows,
        supported=records is not None,
        others=sum(1 for row in rows if not row.current),
        **context,
    )


SessionIdPath = Annotated[str, Path(min_length=1, max_length=256)]


@router.post("/devices/end-others")
async def end_other_devices(request: Request, identity: OptionalIdentity) -> Response:
    """End every session of the caller except this one."""
    posted = await accept_post(request, identity)
    if isinstance(posted, Response):
        return posted
    await posted.auth.revoke_other_sessions(posted.identity)
    return redirect(with_notice("/devices", "others-ended"))


@router.post("/devices/{session_id}/end")
async def end_device(
    request: Request, session_id: SessionIdPath, identity: OptionalIdentity
) -> Response:
    """End one of the caller's sessions (ending this one signs out)."""
    posted = await accept_post(request, identity)
    if isinstance(posted, Response):
        return posted
    auth, me = posted.auth, posted.identity
    try:
        await auth.revoke_session(session_id, user_id=me.user_id, actor=me)
    except NotFound:
        return redirect(with_notice("/devices", "session-gone"))
    if session_id == me.session_id:
        cookie = _cookie_transport(auth)
        return redirect(
            with_notice("/login", "signed-out"), cookie.logout_headers() if cookie else []
        )
    return redirect(with_notice("/devices", "session-ended"))


# --- change password ----------------------------------------------------------------------


@router.get("/password")
async def password_form(request: Request, identity: OptionalIdentity) -> Response:
    """The change-password form."""
    auth = get_auth(request)
    identity = page_identity(request, identity)
    if identity is None:
        return to_login(request, auth)
    context = await page_context(request, auth, identity)
    return render("password.html", active="password", **context)


@router.post("/password")
async def password_submit(request: Request, identity: OptionalIdentity) -> Response:
    """Change the password, end every other session and give this browser a new one."""
    posted = await accept_post(request, identity)
    if isinstance(posted, Response):
        return posted
    auth, me, form = posted.auth, posted.identity, posted.form
    current, new, confirm = field(form, "current"), field(form, "new"), field(form, "confirm")

    async def again(status: int, error: str) -> Response:
        context = await page_context(request, auth, me)
        return render("password.html", status=status, active="password", error=error, **context)

    if not current or not new:
        return await again(400, "Fill in the current and the new password.")
    if new != confirm:
        return await again(400, "The new password and its confirmation differ.")
    record = await _current_record(auth, me)
    remember = record is not None and is_remembered(record)
    try:
        # Ends every credential of the user (this one too) and issues this browser a new
        # session, so the session id changes with the password.
        result = await auth.change_password(me, current, new, login_context(request, remember))
    except InvalidLogin:
        return await again(400, "The current password is incorrect.")
    except InvalidInput as exc:
        return await again(exc.status, exc.detail)
    return redirect(with_notice("/", "password-changed"), auth.login_headers(result, "cookie"))


# --- admin --------------------------------------------------------------------------------


def parse_roles(text: str) -> list[str]:
    """Roles typed as ``admin, ops`` or ``admin ops``."""
    return [part for part in text.replace(",", " ").split() if part]


async def _keys_view(auth: Auth) -> dict[str, Any]:
    keys = auth.keys
    if keys is None:
        return {"keys_supported": False, "stored_keys": [], "jwks": None}
    stored = key_statuses(await keys.list(), auth.clock(), keys.publish_delay)
    try:
        jwks: str | None = json.dumps(keys.keyset.jwks(auth.clock()), indent=2)
    except SatchelError:
        jwks = None
    return {"keys_supported": True, "stored_keys": stored, "jwks": jwks}


def rotation_notice(stored: Sequence[KeyStatus], publish_delay: float, now: float) -> str:
    """The "keys rotated" message, saying when the new key starts signing (``signs_from`` of
    the pending key: its creation plus the publish delay)."""
    pending = [key.signs_from for key in stored if key.signs_from is not None]
    if not pending:
        return NOTICES["keys-rotated"]
    starts = max(pending)
    return (
        f"New signing key published. It starts signing {relative(starts, now)} "
        f"({format_time(starts)}), after the publish delay of {format_span(publish_delay)} "
        "that lets every server load it first; until then the current key keeps signing."
    )


async def _admin_page(
    request: Request,
    auth: Auth,
    identity: Identity,
    *,
    status: int = 200,
    error: str | None = None,
) -> HTMLResponse:
    context = await page_context(request, auth, identity)
    users: list[UserRecord] = await auth.users.list_users(limit=ADMIN_USER_LIMIT)
    names = {user.id: user.username for user in users}
    user_filter = request.query_params.get("user", "").strip()[:MAX_FILTER_CHARS]
    ip_filter = request.query_params.get("ip", "").strip()[:MAX_FILTER_CHARS]
    sessions: list[SessionRecord] | None = None
    if not auth.keeps_sessions:
        pass
    elif user_filter:
        try:
            target = await auth.users.get_by_name(user_filter)
            sessions = await auth.list_sessions(target.id)
            sessions.sort(key=lambda r: r.created_at, reverse=True)
        except (NotFound, InvalidInput):
            sessions = []
    else:
        sessions = await auth.list_all_sessions(limit=ADMIN_SESSION_LIMIT)
    if sessions is not None and ip_filter:
        sessions = [r for r in sessions if r.ip and r.ip.startswith(ip_filter)]
    session_rows = [
        session_row(record, identity, names.get(record.user_id, record.user_id))
        for record in sessions or []
    ]
    counts: dict[str, int] = {}
    for record in sessions or [] if not user_filter and not ip_filter else []:
        counts[record.user_id] = counts.get(record.user_id, 0) + 1
    keys_view = await _keys_view(auth)
    keys = auth.keys
    if request.query_params.get("notice") == "keys-rotated" and keys is not None:
        context["notice"] = rotation_notice(
            keys_view["stored_keys"], keys.publish_delay, context["now"]
        )
    return render(
        "admin.html",
        status=status,
        active="admin",
        error=error,
        users=users,
        session_counts=counts,
        session_rows=session_rows,
        sessions_supported=sessions is not None,
        user_filter=user_filter,
        ip_filter=ip_filter,
        filtered=bool(user_filter or ip_filter),
        **keys_view,
        **context,
    )


@router.get("/admin")
async def admin(request: Request, identity: OptionalIdentity) -> Response:
    """Users, every active session (filterable), force logout and signing keys."""
    auth = get_auth(request)
    identity = page_identity(request, identity)
    if identity is None:
        return to_login(request, auth)
    if not identity.has_role(ADMIN_ROLE):
        return error_page(403)
    return await _admin_page(request, auth, identity)


AdminAction = Callable[[Posted], Awaitable[str]]


async def _admin_action(
    request: Request, identity: Identity | None, action: AdminAction
) -> Response:
    """Run an admin form action; its errors re-render the admin page with the message."""
    posted = await accept_post(request, identity, admin=True)
    if isinstance(posted, Response):
        return posted
    try:
        notice = await action(posted)
    except (InvalidInput, UserExists, NotFound, NotSupported) as exc:
        return await _admin_page(
            request, posted.auth, posted.identity, status=exc.status, error=exc.detail
        )
    if notice == "self-logged-out":
        cookie = _cookie_transport(posted.auth)
        return redirect(
            with_notice("/login", "signed-out"), cookie.logout_headers() if cookie else []
        )
    return redirect(with_notice("/admin", notice))


UserIdPath = Annotated[str, Path(min_length=1, max_length=128)]


@router.post("/admin/users")
async def admin_create_user(request: Request, identity: OptionalIdentity) -> Response:
    """Create a user with a password and roles."""

    async def action(p: Posted) -> str:
        await p.auth.users.create_user(
            field(p.form, "username"),
            field(p.form, "password"),
            parse_roles(field(p.form, "roles")),
        )
        return "user-created"

    return await _admin_action(request, identity, action)


@router.post("/admin/users/{user_id}/disable")
async def admin_disable_user(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """Disable an account and end every credential it holds."""

    async def action(p: Posted) -> str:
        if user_id == p.identity.user_id:
            raise InvalidInput("You cannot disable your own account.")
        await p.auth.set_disabled(user_id, True, actor=p.identity)
        return "user-disabled"

    return await _admin_action(request, identity, action)


@router.post("/admin/users/{user_id}/enable")
async def admin_enable_user(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """Allow a disabled account to sign in again."""

    async def action(p: Posted) -> str:
        await p.auth.set_disabled(user_id, False, actor=p.identity)
        return "user-enabled"

    return await _admin_action(request, identity, action)


@router.post("/admin/users/{user_id}/roles")
async def admin_set_roles(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """Replace a user's roles; the user's sessions end, so privileges change with a new
    session id at the next sign-in."""

    async def action(p: Posted) -> str:
        roles = parse_roles(field(p.form, "roles"))
        if user_id == p.identity.user_id and ADMIN_ROLE not in roles:
            raise InvalidInput("You cannot remove the admin role from your own account.")
        await p.auth.set_roles(user_id, roles, actor=p.identity)
        return "self-logged-out" if user_id == p.identity.user_id else "roles-changed"

    return await _admin_action(request, identity, action)


@router.post("/admin/users/{user_id}/password")
async def admin_reset_password(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """Set a new password for a user and end their sessions."""

    async def action(p: Posted) -> str:
        await p.auth.users.reset_password(user_id, field(p.form, "password"))
        await p.auth.revoke_user_sessions(user_id, actor=p.identity)
        return "self-logged-out" if user_id == p.identity.user_id else "password-reset"

    return await _admin_action(request, identity, action)


@router.post("/admin/users/{user_id}/logout")
async def admin_force_logout(
    request: Request, user_id: UserIdPath, identity: OptionalIdentity
) -> Response:
    """End every credential of a user, on every process."""

    async def action(p: Posted) -> str:
        await p.auth.users.get(user_id)
        await p.auth.revoke_user_sessions(user_id, actor=p.identity)
        return "self-logged-out" if user_id == p.identity.user_id else "user-logged-out"

    return await _admin_action(request, identity, action)


@router.post("/admin/sessions/{session_id}/end")
async def admin_end_session(
    request: Request, session_id: SessionIdPath, identity: OptionalIdentity
) -> Response:
    """End any one session."""

    async def action(p: Posted) -> str:
        await p.auth.revoke_session(session_id, actor=p.identity)
        return "self-logged-out" if session_id == p.identity.session_id else "session-ended"

    return await _admin_action(request, identity, action)


@router.post("/admin/keys/rotate")
async def admin_rotate_keys(request: Request, identity: OptionalIdentity) -> Response:
    """Make a new active signing key; the old one keeps verifying during the overlap."""

    async def action(p: Posted) -> str:
        keys = p.auth.keys
        if keys is None:
            raise NotSupported("This server has no signing keys to rotate.")
        await keys.rotate()
        return "keys-rotated"

    return await _admin_action(request, identity, action)


# --- static files and errors --------------------------------------------------------------


@router.get("/static/{name}")
async def static(name: str) -> Response:
    """The bundled stylesheet and icon (a fixed list: nothing else can be read)."""
    entry = _static_files.get(name)
    if entry is None:
        raise StarletteHTTPException(404)
    data, _digest = entry
    response = Response(data, media_type=_STATIC_TYPES[name])
    response.headers["Cache-Control"] = "public, max-age=86400"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response


@router.get("/favicon.ico")
async def favicon() -> Response:
    """Browsers ask here by default; the icon is the SVG."""
    return RedirectResponse(static_url("favicon.svg"), status_code=301)


def wants_html(request: Request) -> bool:
    """True for a browser asking for a page (not for the JSON API or API clients)."""
    if request.url.path.startswith(_API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


Handler = Callable[[Request, Exception], Awaitable[Response]]


def _html_first(fallback: Handler | None) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if not wants_html(request) and fallback is not None:
            return await fallback(request, exc)
        if isinstance(exc, StarletteHTTPException):
            headers = [(k, v) for k, v in (exc.headers or {}).items() if k.lower() == "allow"]
            status = exc.status_code if 400 <= exc.status_code < 600 else 500
            return error_page(status, headers=headers)
        if isinstance(exc, StoreUnavailable | Throttled):
            return error_page(exc.status, headers=[("Retry-After", str(exc.retry_after))])
        if isinstance(exc, SatchelError):
            status = exc.status if exc.status in HTTPStatus._value2member_map_ else 400
            return error_page(status)
        if isinstance(exc, RequestValidationError):
            return error_page(400)
        # Anything else is a bug: the trace goes to the log, the browser learns nothing.
        logger.error(
            "unhandled %s on %s %s",
            type(exc).__name__,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        return error_page(500)

    return handle


def install(app: FastAPI) -> None:
    """Add the pages to ``app`` and answer browsers' errors (404, 500...) with HTML pages.

    Call it after the app's JSON error handlers are installed; requests that do not ask
    for HTML, and every path of the JSON API, keep the JSON errors.
    """
    app.include_router(router)
    for exc_class in (StarletteHTTPException, SatchelError, RequestValidationError, Exception):
        fallback = app.exception_handlers.get(exc_class)
        app.add_exception_handler(exc_class, _html_first(fallback))  # type: ignore[arg-type]
