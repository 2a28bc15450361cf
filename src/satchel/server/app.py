"""The reference server: a FastAPI app around one :class:`satchel.Auth`, run by uvicorn.

It is assembled from the layers below it: the JSON routes and the glue that
:func:`satchel.integrations.fastapi.install` gives any app (CORS for ``cors_origins``
included), plus the HTML pages, the API docs with local assets, ``HEAD`` for every ``GET``,
the body limit and (optionally) the debug counters, which only the reference server has.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from satchel.auth import Auth
from satchel.config.build import ConfiguredAuth
from satchel.config.settings import Settings
from satchel.integrations.asgi import AuthMiddleware
from satchel.integrations.cors import CORSMiddleware
from satchel.integrations.fastapi import document_security, satchel_exception_handlers
from satchel.integrations.fastapi.docs import offline_docs
from satchel.integrations.fastapi.routes import router
from satchel.integrations.scope import STATE_KEY
from satchel.ops.logging import RequestIdMiddleware
from satchel.ops.shutdown import drain
from satchel.server import account_app, pages
from satchel.server.errors import BodyLimitMiddleware
from satchel.server.head import HeadAsGetMiddleware
from satchel.server.ops_routes import attach_ops, gate_metrics_port, install_ops

logger = logging.getLogger("satchel.server")


def create_app(settings: Settings | None = None, *, auth: Auth | None = None) -> FastAPI:
    """The reference server as an ASGI app.

    Without ``auth`` the app builds one from ``settings`` (default: the environment) in its
    lifespan and closes it on shutdown. A given ``auth`` is started and closed by the
    lifespan too, so the app owns it either way.
    """
    settings = settings if settings is not None else Settings()
    if isinstance(auth, ConfiguredAuth):
        settings = auth.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        current = auth
        if current is None:
            from satchel.config.build import build_auth

            current = await build_auth(settings)
        setattr(app.state, STATE_KEY, current)
        attach_ops(app, current)
        app.openapi_schema = None  # rebuilt from the transports this Auth really has
        try:
            await current.start()
            yield
        finally:
            # In-flight requests are done (or cut) by now: flush, then close the stores.
            await drain(current, settings.shutdown_timeout)
            await current.close()

    app = FastAPI(
        title="satchel",
        summary="Reference authentication server",
        version=_version(),
        lifespan=lifespan,
        docs_url=None,  # served by offline_docs: no CDN
        redoc_url=None,
    )
    builtin = list(app.router.routes)  # FastAPI's documentation routes
    app.state.settings = settings
    if auth is not None:
        # Also reachable before the lifespan ran (tests that drive the app directly).
        setattr(app.state, STATE_KEY, auth)
    satchel_exception_handlers(app)
    document_security(app)
    install_ops(app, settings)
    app.include_router(router)
    if settings.expose_counters:
        from satchel.server.debug import router as debug_router

        app.include_router(debug_router)
    account_app.install(app, settings)
    pages.install(app)
    offline_docs(app, favicon_url="/static/favicon.svg")
    # Requests try routes in order (a few microseconds each): the API first, then the pages,
    # then FastAPI's own /docs and /openapi.json, which nothing calls on a hot path.
    docs = [r for r in app.router.routes if r in builtin]
    app.router.routes[:] = [r for r in app.router.routes if r not in docs] + docs
    # Added last = outermost: oversized bodies are refused before anything authenticates;
    # HEAD runs as GET; CORS headers go on every answer, errors included.
    app.add_middleware(AuthMiddleware, auth=auth)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(HeadAsGetMiddleware)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, origins=settings.cors_origins)
    if settings.log_format == "json":
        # Outermost: every response, a 413 included, carries the request id its log lines
        # have. Only with JSON logs, whose lines name it: it costs a few microseconds.
        app.add_middleware(RequestIdMiddleware)
    gate_metrics_port(app, settings)
    return app


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("satchel")
    except Exception:  # metadata is missing in odd installs; the version is cosmetic
        return "0"
