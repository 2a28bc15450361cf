"""Litestar glue: :class:`SatchelAuth`, a security config in Litestar's own style.

    from litestar import Litestar, Request, get
    from satchel import Identity, Settings
    from satchel.integrations.litestar import SatchelAuth

    satchel = SatchelAuth(settings=Settings(strategy="hybrid"), exclude=["/public"])

    @get("/hello")
    async def hello(request: Request[Identity, object, object]) -> dict[str, str]:
        return {"hello": request.user.username}

    app = Litestar([hello], on_app_init=[satchel.on_app_init])

- :mod:`.config` — :class:`SatchelAuth` (middleware, guards, dependencies, OpenAPI schemes,
  the JSON error handlers, the ``/auth/*`` routes, the Auth's life cycle);
- :mod:`.middleware` — :class:`SatchelMiddleware`, over satchel's pure ASGI authentication;
- :mod:`.guards` — :func:`roles_required`, :func:`login_required`, :func:`require_fresh`
  (step-up, RFC 9470), :func:`csrf_guard`, and
  :func:`current_identity` / :func:`optional_identity` for handlers and guards of your own;
- :mod:`.routes` — the JSON API (the shared :mod:`satchel.integrations.http_api` handlers);
  :mod:`.responses` — responses and error handlers.

Handlers read the identity as ``request.user`` (Litestar's idiom) or take it as the
``identity`` / ``optional_identity`` dependency.
"""

from __future__ import annotations

from satchel.integrations.litestar.config import BEARER_SCHEME, COOKIE_SCHEME, SatchelAuth
from satchel.integrations.litestar.guards import (
    CSRF_OPT,
    auth_of,
    csrf_guard,
    current_identity,
    login_required,
    optional_identity,
    require_fresh,
    roles_required,
)
from satchel.integrations.litestar.middleware import SatchelMiddleware
from satchel.integrations.litestar.responses import JSONResponse, exception_handlers

__all__ = [
    "BEARER_SCHEME",
    "COOKIE_SCHEME",
    "CSRF_OPT",
    "JSONResponse",
    "SatchelAuth",
    "SatchelMiddleware",
    "auth_of",
    "csrf_guard",
    "current_identity",
    "exception_handlers",
    "login_required",
    "optional_identity",
    "require_fresh",
    "roles_required",
]
