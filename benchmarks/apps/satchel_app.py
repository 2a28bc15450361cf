"""satchel protecting ``GET /me`` on FastAPI, Starlette and a bare ASGI app.

Built only from satchel's public API: :func:`satchel.config.build.build_auth` with
:class:`satchel.config.settings.Settings` read from the ``SATCHEL_*`` environment, and
:class:`satchel.integrations.asgi.AuthMiddleware`. Served with ``uvicorn --factory``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from satchel.config.build import build_auth
from satchel.config.settings import Settings
from satchel.integrations.asgi import SCOPE_IDENTITY, AuthMiddleware
from satchel.integrations.fastapi import CurrentIdentity, satchel_exception_handlers


def fastapi_app() -> Any:
    """FastAPI: the middleware authenticates, the route takes ``CurrentIdentity``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        auth = await build_auth(Settings())
        await auth.start()
        app.state.satchel_auth = auth
        yield
        await auth.close()

    app = FastAPI(lifespan=lifespan)
    satchel_exception_handlers(app)
    app.add_middleware(AuthMiddleware, auth=None)

    @app.get("/me")
    async def me(identity: CurrentIdentity) -> dict[str, Any]:
        return {"user": identity.username}

    return app


def starlette_app() -> Any:
    """Starlette: the middleware rejects anonymous requests, the endpoint reads the scope."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        auth = await build_auth(Settings())
        await auth.start()
        app.state.satchel_auth = auth
        yield
        await auth.close()

    async def me(request: Request) -> JSONResponse:
        return JSONResponse({"user": request.scope[SCOPE_IDENTITY].username})

    return Starlette(
        routes=[Route("/me", me)],
        middleware=[Middleware(AuthMiddleware, auth=None, required=True)],
        lifespan=lifespan,
    )


class _Lifespan:
    """Builds the Auth on ASGI startup for a bare app (no framework to hold state)."""

    def __init__(self) -> None:
        self.middleware = AuthMiddleware(self.endpoint, auth=None, required=True)

    async def endpoint(self, scope: Any, receive: Any, send: Any) -> None:
        body = json.dumps({"user": scope[SCOPE_IDENTITY].username}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", b"%d" % len(body)),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.middleware(scope, receive, send)
            return
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                auth = await build_auth(Settings())
                await auth.start()
                self.middleware.auth = auth
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.middleware.auth is not None:
                    await self.middleware.auth.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


def asgi_app() -> Any:
    """A bare ASGI endpoint behind ``AuthMiddleware(required=True)``."""
    return _Lifespan()
