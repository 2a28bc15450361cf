"""Who the pages trust, and where a browser without a usable session is sent.

The pages only ever trust the *cookie* transport: a bearer token is for API clients and
never makes a page act. An anonymous page load goes to the sign-in page, or first through
the refresh route when a refresh cookie may bring the session back (the decision is
:mod:`satchel.integrations.refresh`'s, shared with the middleware and the API).
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi.responses import RedirectResponse
from starlette.requests import Request

from satchel.auth import Auth
from satchel.errors import NotSupported
from satchel.identity import Identity
from satchel.integrations.refresh import cookie_transport, detour
from satchel.integrations.scope import SCOPE_ERROR, SCOPE_TRANSPORT
from satchel.server.pages.notices import with_notice
from satchel.server.pages.render import redirect
from satchel.transports.csrf import CSRFProtect

#: Paths that belong to the JSON API: their errors stay JSON even for a browser.
_API_PREFIXES = ("/auth/", "/.well-known/", "/healthz", "/docs", "/redoc", "/openapi.json")


def wants_html(request: Request) -> bool:
    """True for a browser asking for a page (not for the JSON API or API clients)."""
    if request.url.path.startswith(_API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


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


def stale_cookie(request: Request) -> bool:
    """True when the browser sent a session cookie that was rejected (ended or expired)."""
    return (
        request.scope.get(SCOPE_ERROR) is not None
        and request.scope.get(SCOPE_TRANSPORT) == "cookie"
    )


def login_url(target: str, notice: str | None = None) -> str:
    """``/login`` remembering where to go after signing in (and a notice)."""
    params = {"next": target} if target != "/" else {}
    if notice is not None:
        return with_notice("/login", notice, **params)
    return f"/login?{urlencode(params)}" if params else "/login"


def refresh_redirect(request: Request, auth: Auth) -> RedirectResponse | None:
    """The detour through ``GET /auth/refresh`` for a page load whose access cookie is gone
    or expired (see :func:`satchel.integrations.refresh.detour`); None when it does not
    apply. The refresh cookie is scoped to the refresh route, so a page never sees it: the
    browser has to be sent there. API clients are never detoured.
    """
    if not wants_html(request):
        return None
    target = detour(auth, request.scope)
    return redirect(target) if target is not None else None


def to_login(request: Request, auth: Auth) -> RedirectResponse:
    """Send an anonymous browser to the sign-in page (through the refresh route first when
    a refresh cookie may bring the session back); clear a dead cookie on the way."""
    via_refresh = refresh_redirect(request, auth)
    if via_refresh is not None:
        return via_refresh
    cookie = cookie_transport(auth)
    if stale_cookie(request) and cookie is not None:
        return redirect(with_notice("/login", "ended"), cookie.logout_headers())
    return redirect("/login")
