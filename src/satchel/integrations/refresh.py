"""Browser refresh (hybrid strategy, cookie transport), decided in one place.

A session whose access token expired comes back through its refresh token. Three places do
that, and each is a thin caller of this module:

- :class:`~satchel.integrations.asgi.AuthMiddleware` refreshes *in place* a request that
  carries the refresh cookie (:func:`refresh_in_place`): the browser sends that cookie only
  under its path (``/auth/refresh`` by default; ``refresh_path="/"`` sends it everywhere);
- the pages send a page load elsewhere through ``GET /auth/refresh?next=...``
  (:func:`detour`), since that is where the refresh cookie goes;
- the refresh routes themselves (``GET`` for pages, ``POST`` for the API) read the token
  (:func:`presented_token`, or the cookie) and rotate it (:func:`rotate`).

Whether a refresh applies is the same question everywhere (:func:`refreshable`): the
strategy rotates refresh tokens, the cookie transport is configured, and the request
carried no credential or only an *expired* cookie credential. A credential rejected for any
other reason (ended, revoked, ambiguous) is never refreshed: that would undo a logout.

Pure over the ASGI scope, raw headers and :class:`satchel.Auth`: no framework import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import urlencode, urlsplit

from satchel.auth import Auth, LoginResult
from satchel.errors import (
    ExpiredCredential,
    InvalidCredential,
    InvalidInput,
    MissingCredential,
    SatchelError,
    StoreUnavailable,
)
from satchel.integrations.scope import SCOPE_ERROR, SCOPE_IDENTITY, SCOPE_TRANSPORT, Scope
from satchel.strategies.base import LoginContext
from satchel.transports.base import HeaderPairs, RawHeaders
from satchel.transports.cookie import CookieTransport

#: The route that rotates a refresh token (``GET`` for pages, ``POST`` for the API); also
#: the refresh cookie's default path.
REFRESH_ROUTE: Final = "/auth/refresh"
#: Longest ``next`` path a redirect will carry back.
MAX_NEXT_CHARS: Final = 2048
#: Longest refresh token accepted in a request body.
MAX_REFRESH_TOKEN: Final = 512


def cookie_transport(auth: Auth) -> CookieTransport | None:
    """The cookie transport of ``auth``, if it has one."""
    transport = auth.transport_by_name.get("cookie")
    return transport if isinstance(transport, CookieTransport) else None


def path_matches(cookie_path: str, path: str) -> bool:
    """RFC 6265 path-match: does a cookie of ``cookie_path`` go with a request for ``path``?"""
    if path == cookie_path:
        return True
    prefix = cookie_path if cookie_path.endswith("/") else cookie_path + "/"
    return path.startswith(prefix)


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
    if path_matches(REFRESH_ROUTE, parts.path):
        return "/"
    return value


def refreshable(auth: Auth, scope: Scope) -> CookieTransport | None:
    """The cookie transport when a refresh could bring this request's session back.

    That is: the strategy rotates refresh tokens, the cookie transport is configured, and
    the request (as the middleware recorded it) carried no credential or an expired cookie
    credential. None otherwise.
    """
    if not auth.can_refresh:
        return None
    error = scope.get(SCOPE_ERROR)
    if error is not None and not isinstance(error, ExpiredCredential):
        return None
    if scope.get(SCOPE_TRANSPORT) not in (None, "cookie"):
        return None
    return cookie_transport(auth)


def _current_url(scope: Scope) -> str:
    # The path as Starlette's request.url writes it: these three would end the path early.
    path = str(scope.get("path") or "/")
    path = path.replace("?", "%3F").replace("#", "%23").replace("\\", "%5C")
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    return f"{path}?{query}" if query else path


def detour(auth: Auth, scope: Scope) -> str | None:
    """Where to send a page load whose session a refresh may bring back:
    ``/auth/refresh?next=<this page>``, or None when the detour does not apply.

    Only a GET is sent (a form post would lose its body); only when the refresh cookie
    reaches the refresh route, and not when it was sent with this very request (then the
    middleware has already tried it).
    """
    if scope.get("method") != "GET":
        return None
    cookie = refreshable(auth, scope)
    if cookie is None or not path_matches(cookie.refresh_path, REFRESH_ROUTE):
        return None
    if path_matches(cookie.refresh_path, str(scope.get("path") or "/")):
        return None
    return f"{REFRESH_ROUTE}?{urlencode({'next': safe_next(_current_url(scope))})}"


def presented_token(auth: Auth, headers: RawHeaders, body_token: object = None) -> tuple[str, bool]:
    """The refresh token a request presents, and whether it came in the cookie.

    ``body_token`` (the ``refresh_token`` field of a JSON or form body, None when absent)
    wins over the cookie. Raises :class:`InvalidInput` for a body value that is no token,
    :class:`InvalidCredential` for an unusable refresh cookie (two of them, or malformed)
    and :class:`MissingCredential` when there is neither.
    """
    if body_token is not None:
        if not isinstance(body_token, str) or not 0 < len(body_token) <= MAX_REFRESH_TOKEN:
            raise InvalidInput("refresh_token must be a non-empty string.")
        return body_token, False
    cookie = cookie_transport(auth)
    token = cookie.extract_refresh(headers) if cookie is not None else None
    if token is None:
        raise MissingCredential("No refresh token was presented.")
    return token, True


@dataclass(frozen=True, slots=True, repr=False)
class Rotated:
    """A rotated refresh token: the new login, and the ``Set-Cookie`` headers handing the
    new pair to a browser (empty when the token came in a body)."""

    result: LoginResult
    headers: HeaderPairs

    def __repr__(self) -> str:
        return f"Rotated({self.result.identity!r})"


async def rotate(auth: Auth, token: str, ctx: LoginContext, *, via_cookie: bool) -> Rotated:
    """Rotate ``token`` (reuse detection and grace window are the strategy's).

    Raises the strategy's :class:`SatchelError` for an unknown, expired, ended or reused
    token (reuse ends the whole session), and :class:`StoreUnavailable` in an outage.
    """
    result = await auth.refresh(token, ctx)
    return Rotated(result, auth.login_headers(result, "cookie") if via_cookie else [])


async def refresh_in_place(auth: Auth, scope: Scope) -> HeaderPairs | None:
    """Transparent refresh in the middleware: when a refresh applies and the request carries
    the refresh cookie, rotate it and record the new identity in the scope.

    Returns the ``Set-Cookie`` headers of the new pair, or None. The refresh route itself
    is skipped: it rotates on its own. An unusable refresh cookie is ignored; a failed
    rotation is recorded as the request's error (unless one is there already);
    :class:`StoreUnavailable` propagates (the request fails closed).
    """
    cookie = refreshable(auth, scope)
    if cookie is None or scope.get("path") == REFRESH_ROUTE:
        return None
    try:
        token = cookie.extract_refresh(scope.get("headers") or ())
    except InvalidCredential:
        return None
    if token is None:
        return None
    client = scope.get("client")
    ctx = LoginContext(ip=str(client[0]) if client else None)
    try:
        rotated = await rotate(auth, token, ctx, via_cookie=True)
    except StoreUnavailable:
        raise
    except SatchelError as exc:
        scope[SCOPE_ERROR] = scope.get(SCOPE_ERROR) or exc
        return None
    scope[SCOPE_IDENTITY] = rotated.result.identity.with_transport("cookie")
    scope[SCOPE_TRANSPORT] = "cookie"
    scope[SCOPE_ERROR] = None
    return rotated.headers
