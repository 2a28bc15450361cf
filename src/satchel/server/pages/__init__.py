"""The reference server's HTML pages: sign in, dashboard, my devices, password and admin.

Server-rendered with Jinja2 (autoescaped) and one hand-written stylesheet; every action is a
plain form post, except the passkey ceremonies, which need the browser's WebAuthn API: the
pages with a passkey button load the one bundled script (``static/passkeys.js``, same origin
only, never inline; :mod:`~.second_step` and :mod:`~.security`).

One module per page (:mod:`~.signin`, :mod:`~.dashboard`, :mod:`~.devices`,
:mod:`~.password`, :mod:`~.admin`, :mod:`~.security`), plus the pieces they share:
:mod:`~.render` (templates, headers, redirects, the error page), :mod:`~.access` (who the
pages trust, where an anonymous browser goes), :mod:`~.forms` (bounded forms and the CSRF
check), :mod:`~.credentials` (the dashboard's account of the cookies), :mod:`~.notices`,
:mod:`~.formatting`, :mod:`~.static` and :mod:`~.errors` (HTML error pages for browsers).

:func:`install` adds the routes to an app and makes its error handlers answer browsers
with an HTML page (the JSON API keeps its JSON errors).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from satchel.integrations.refresh import safe_next
from satchel.server.pages import (
    admin,
    dashboard,
    devices,
    password,
    second_step,
    security,
    signin,
    static,
)
from satchel.server.pages.credentials import decode_jwt_parts
from satchel.server.pages.errors import html_error_handlers
from satchel.server.pages.formatting import format_span, relative
from satchel.server.pages.notices import NOTICES

router = APIRouter(include_in_schema=False)
for _module in (signin, dashboard, devices, password, admin, static):
    router.include_router(_module.router)
router.include_router(second_step.router)  # second factors at sign-in, step-up
router.include_router(security.router)  # a user's factors


def install(app: FastAPI) -> None:
    """Add the pages to ``app`` and answer browsers' errors (404, 500...) with HTML pages.

    Call it after the app's JSON error handlers are installed; requests that do not ask
    for HTML, and every path of the JSON API, keep the JSON errors.
    """
    app.include_router(router)
    html_error_handlers(app)


# The names below were importable from the single-module pages.py and stay so.
__all__ = [
    "NOTICES",
    "decode_jwt_parts",
    "format_span",
    "install",
    "relative",
    "router",
    "safe_next",
]
