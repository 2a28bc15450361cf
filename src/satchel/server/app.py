"""The reference server: a FastAPI app around one :class:`satchel.Auth`, run by uvicorn.

It is assembled from the layers below it: the JSON routes and the glue that
:func:`satchel.integrations.fastapi.install` gives any app, plus the HTML pages, the body
limit and (optionally) the debug counters, which only the reference server has.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from satchel.auth import Auth
from satchel.config.build import ConfiguredAuth
from satchel.config.settings import Settings
from satchel.integrations.asgi import AuthMiddleware
from satchel.integrations.fastapi import document_security, satchel_exception_handlers
from satchel.integrations.fastapi.routes import router
from satchel.integrations.scope import STATE_KEY
from satchel.server import pages
from satchel.server.errors import BodyLimitMiddleware

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
        try:
            await current.start()
            yield
        finally:
            await current.close()

    app = FastAPI(
        title="satchel",
        summary="Reference authentication server",
        version=_version(),
        lifespan=lifespan,
    )
    builtin = list(app.router.routes)  # FastAPI's documentation routes
    app.state.settings = settings
    if auth is not None:
        # Also reachable before the lifespan ran (tests that drive the app directly).
        setattr(app.state, STATE_KEY, auth)
    satchel_exception_handlers(app)
    document_security(app)
    app.include_router(router)
    if settings.expose_counters:
        from satchel.server.debug import router as debug_router

        app.include_router(debug_router)
    pages.install(app)
    # Requests try routes in order (a few microseconds each): the API first, then the pages,
    # then FastAPI's own /docs, /redoc and /openapi.json, which nothing calls on a hot path.
    docs = [r for r in app.router.routes if r in builtin]
    app.router.routes[:] = [r for r in app.router.routes if r not in docs] + docs
    # Added last = outermost: oversized bodies are refused before anything authenticates.
    app.add_middleware(AuthMiddleware, auth=auth)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    return app


def run(settings: Settings, *, access_log: bool = False) -> None:
    """Serve :func:`create_app` with uvicorn in this process (one worker).

    ``access_log`` turns on uvicorn's one line per request; it is off by default because it
    costs more per request than authenticating (measured in docs/benchmarks.md).

    Proxy headers are honoured only from ``settings.trusted_proxies``; the ``Server``
    header is off. Configuration and store errors are raised (as :class:`SatchelError`)
    before the socket is opened, so the caller can report them in one line.
    """
    import uvicorn

    asyncio.run(preflight(settings))
    config = uvicorn.Config(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        workers=1,
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        server_header=False,
        log_level=settings.log_level,
        lifespan="on",
        access_log=access_log,
    )
    uvicorn.Server(config).run()


async def preflight(settings: Settings) -> None:
    """Build and close an :class:`Auth` once, so a bad store URL, an unreachable store or a
    key mismatch fails here with a clean error instead of a trace from the server's lifespan."""
    from satchel.config.build import build_auth

    auth = await build_auth(settings)
    await auth.close()


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("satchel")
    except Exception:  # metadata is missing in odd installs; the version is cosmetic
        return "0"
