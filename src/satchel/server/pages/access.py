"""Who the pages trust, and where a browser without a usable session is sent.

The pages only ever trust the *cookie* transport: a bearer token is for API clients and
never makes a page act. An anonymous page load goes to the sign-in page, or first through
the refresh route when a refresh cookie may bring the session back.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode, urlsplit

from fastapi.responses import RedirectResponse
from starlette.requests import Request

from satchel.auth import Auth
from satchel.errors import ExpiredCredential, NotSupported
from satchel.identity import Identity
from satchel.integrations.asgi import SCOPE_ERROR, SCOPE_TRANSPORT
from satchel.server.pages.notices import with_notice
from satchel.server.pages.render import redirect
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import CSRFProtect

#: Where a browser goes to rotate its refresh cookie (the cookie's default path).
REFRESH_PATH: Final = "/auth/refresh"
#: Longest ``next`` path a redirect will carry back.
MAX_NEXT_CHARS: Final = 2048
#: Paths that belong to the JSON API: their errors stay JSON even for a browser.
_API_PREFIXES = ("/auth/", "/.well-known/", "/healthz", "/docs", "/redoc", "/openapi.json")


def wants_html(request: Request) -> bool:
    """True for a browser asking for a page (not for the JSON API or API clients)."""
    if request.url.path.startswith(_API_PREFIXES):
        return False
    return "text/html" in request.headers.get("accept", "")


def cookie_transport(auth: Auth) -> CookieTransport | None:
    """The cookie transport of ``auth``, if it has one."""
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


def stale_cookie(request: Request) -> bool:
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


def login_url(target: str, notice: str | None = None) -> str:
    """``/login`` remembering where to go after signing in (and a notice)."""
    params = {"next": target} if target != "/" else {}
    if notice is not None:
        return with_notice("/login", notice, **params)
    return f"/login?{urlencode(params)}" if params else "/login"


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
    cookie = cookie_transport(auth)
    if cookie is None or not auth.can_refresh:
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
    cookie = cookie_transport(auth)
    if stale_cookie(request) and cookie is not None:
        return redirect(with_notice("/login", "ended"), cookie.logout_headers())
    return redirect("/login")
