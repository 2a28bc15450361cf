"""The reference server's HTML pages: sign in, dashboard, my devices, password and admin.

Server-rendered with Jinja2 (autoescaped) and one hand-written stylesheet; no JavaScript
anywhere, so every action is a plain form post. One module per page, plus the pieces they
share: :mod:`~.render` (templates, headers, redirects), :mod:`~.access` (who the pages trust,
where an anonymous browser goes), :mod:`~.forms` (bounded forms and the CSRF check),
:mod:`~.notices`, :mod:`~.formatting` and :mod:`~.static`.

:func:`install` adds the routes to an app and makes its error handlers answer browsers
with an HTML page (the JSON API keeps its JSON errors).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from satchel.integrations.refresh import REFRESH_ROUTE, safe_next
from satchel.server.pages import admin, dashboard, devices, password, signin, static
from satchel.server.pages.access import refresh_redirect, to_login
from satchel.server.pages.admin import ADMIN_SESSION_LIMIT, ADMIN_USER_LIMIT, rotation_notice
from satchel.server.pages.dashboard import CookieView, cookie_views, decode_jwt_parts
from satchel.server.pages.devices import SessionRow, session_row
from satchel.server.pages.errors import html_error_handlers
from satchel.server.pages.formatting import format_span, format_time, iso_time, relative
from satchel.server.pages.forms import Posted, accept_post, check_form
from satchel.server.pages.notices import NOTICES, with_notice
from satchel.server.pages.render import ADMIN_ROLE, error_page, redirect, render
from satchel.server.pages.static import static_url

router = APIRouter(include_in_schema=False)
for _module in (signin, dashboard, devices, password, admin, static):
    router.include_router(_module.router)


def install(app: FastAPI) -> None:
    """Add the pages to ``app`` and answer browsers' errors (404, 500...) with HTML pages.

    Call it after the app's JSON error handlers are installed; requests that do not ask
    for HTML, and every path of the JSON API, keep the JSON errors.
    """
    app.include_router(router)
    html_error_handlers(app)


__all__ = [
    "ADMIN_ROLE",
    "ADMIN_SESSION_LIMIT",
    "ADMIN_USER_LIMIT",
    "NOTICES",
    "REFRESH_ROUTE",
    "CookieView",
    "Posted",
    "SessionRow",
    "accept_post",
    "check_form",
    "cookie_views",
    "decode_jwt_parts",
    "error_page",
    "format_span",
    "format_time",
    "install",
    "iso_time",
    "redirect",
    "refresh_redirect",
    "relative",
    "render",
    "rotation_notice",
    "router",
    "safe_next",
    "session_row",
    "static_url",
    "to_login",
    "with_notice",
]
