"""Litestar apps for the frameworks table, served by uvicorn, each answering ``GET /me``:
no auth, satchel's :class:`~satchel.integrations.litestar.SatchelAuth`, and Litestar's own
``JWTAuth`` (what a Litestar user would pick), all in their documented idiom."""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any

from litestar import Litestar, Request, get, post
from litestar.connection import ASGIConnection
from litestar.security.jwt import JWTAuth, Token

from satchel.identity import Identity

SECRET = os.environ.get("BENCH_SECRET", "")
USER = {"id": "00000000-0000-4000-8000-000000000001", "username": "bench"}
USERS = {USER["id"]: USER}


@get("/me")
async def anonymous_me() -> dict[str, Any]:
    return {"user": None}


plain = Litestar([anonymous_me])


async def retrieve_user(token: Token, connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
    return USERS.get(token.sub)


jwt_auth = JWTAuth[dict[str, str]](
    retrieve_user_handler=retrieve_user,
    token_secret=SECRET or "unset",
    exclude=["/login", "/schema"],
    default_token_expiration=timedelta(hours=1),
)


@post("/login")
async def jwt_login() -> Any:
    return jwt_auth.login(identifier=USER["id"], send_token_as_response_body=True)


@get("/me")
async def jwt_me(request: Request[dict[str, str], Token, Any]) -> dict[str, Any]:
    return {"user": request.user["username"]}


jwt_peer = Litestar([jwt_login, jwt_me], on_app_init=[jwt_auth.on_app_init])


def satchel() -> Litestar:
    """Litestar + satchel (strategy and store from ``SATCHEL_*``); every route needs a login."""
    from satchel.integrations.litestar import SatchelAuth

    @get("/me")
    async def me(request: Request[Identity, Any, Any]) -> dict[str, Any]:
        return {"user": request.user.username}

    return Litestar([me], on_app_init=[SatchelAuth().on_app_init])
