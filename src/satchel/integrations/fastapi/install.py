"""``install(app)``: satchel added to an existing FastAPI app in one call.

The JSON routes it adds belong to this package, not to :mod:`satchel.server`: they are what
install() gives any app, and the reference server is one such app (it imports this package,
never the other way round).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI

from satchel.auth import Auth
from satchel.errors import ConfigurationError
from satchel.integrations.asgi import AuthMiddleware
from satchel.integrations.cors import CORSMiddleware
from satchel.integrations.fastapi.errors import satchel_exception_handlers
from satchel.integrations.fastapi.openapi import document_security
from satchel.integrations.fastapi.routes import router
from satchel.integrations.scope import STATE_KEY

if TYPE_CHECKING:
    from satchel.config.settings import Settings
    from satchel.stores.base import UserStore


def install(
    app: FastAPI,
    settings: Settings | None = None,
    *,
    auth: Auth | None = None,
    users: UserStore | None = None,
    routes: bool = True,
) -> None:
    """Add satchel to an existing FastAPI ``app`` in one call.

    Builds the :class:`Auth` from ``settings`` (default: the ``SATCHEL_*`` environment) when
    the app starts — over the application's own user store ``users`` when given (see
    ``docs/users.md``) — unless ``auth`` is given; adds the middleware that puts the identity on
    every request, the JSON error handlers, CORS for ``settings.cors_origins`` (none by
    default) and, with ``routes``, the ``/auth/*`` API of the reference server. The app's
    own lifespan still runs, inside satchel's.
    """
    from satchel.config.build import build_auth
    from satchel.config.settings import Settings

    if auth is not None and users is not None:
        raise ConfigurationError("Pass users= or auth=, not both: auth already has its users.")
    resolved = settings if settings is not None else Settings()
    inner = app.router.lifespan_context
    ours: list[Any] = []

    @asynccontextmanager
    async def lifespan(inner_app: Any) -> AsyncIterator[Any]:
        # The app declares its routes after install(); every request tries routes in order,
        # so satchel's go last: the app's own routes match without first testing /auth/*.
        app.router.routes[:] = [r for r in app.router.routes if r not in ours] + ours
        current = auth if auth is not None else await build_auth(resolved, users=users)
        setattr(app.state, STATE_KEY, current)
        app.openapi_schema = None  # rebuilt from the transports this Auth really has
        await current.start()
        try:
            async with inner(inner_app) as state:
                yield state
        finally:
            await current.close()

    app.router.lifespan_context = lifespan
    app.state.settings = resolved
    if auth is not None:
        setattr(app.state, STATE_KEY, auth)
    satchel_exception_handlers(app)
    document_security(app)
    if routes:
        before = list(app.router.routes)
        app.include_router(router)
        ours.extend(r for r in app.router.routes if r not in before)
    app.add_middleware(AuthMiddleware, auth=auth)
    if resolved.cors_origins:  # outermost: every answer, errors included, gets CORS headers
        app.add_middleware(CORSMiddleware, origins=resolved.cors_origins)
