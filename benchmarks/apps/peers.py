"""The peers and baselines: what a user would otherwise write, in its documented idiom."""

from __future__ import annotations

import json
import os
from typing import Annotated, Any

import jwt
from fastapi import Depends, FastAPI, HTTPException
from fastapi.security import OAuth2PasswordBearer
from starlette.applications import Starlette
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    SimpleUser,
)
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

SECRET = os.environ.get("BENCH_SECRET", "")
USER = {"id": "00000000-0000-4000-8000-000000000001", "username": "bench", "roles": ["user"]}
USERS = {USER["id"]: USER}

# --- raw ASGI, no authentication ----------------------------------------------------------------


async def raw_asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """The ceiling: a bare ASGI answer. It builds its JSON body per request, as satchel's raw
    ASGI endpoint does, so the two differ only by the authentication in front."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = json.dumps({"user": None}).encode()
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


# --- Starlette ---------------------------------------------------------------------------------


async def _anonymous_me(request: Request) -> JSONResponse:
    return JSONResponse({"user": None})


starlette_plain = Starlette(routes=[Route("/me", _anonymous_me)])


class _BearerJWT(AuthenticationBackend):
    """Starlette's documented authentication-backend pattern with PyJWT."""

    async def authenticate(self, conn: HTTPConnection) -> tuple[AuthCredentials, SimpleUser] | None:
        header = conn.headers.get("authorization")
        if not header:
            return None
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        try:
            claims = jwt.decode(token, SECRET, algorithms=["HS256"])
        except jwt.InvalidTokenError as exc:
            raise AuthenticationError("invalid token") from exc
        return AuthCredentials(["authenticated"]), SimpleUser(claims["sub"])


async def _starlette_jwt_me(request: Request) -> Response:
    if not request.user.is_authenticated:
        return PlainTextResponse("unauthorised", status_code=401)
    return JSONResponse({"user": request.user.username})


starlette_pyjwt = Starlette(
    routes=[Route("/me", _starlette_jwt_me)],
    middleware=[Middleware(AuthenticationMiddleware, backend=_BearerJWT())],
)


async def _session_login(request: Request) -> JSONResponse:
    request.session["user_id"] = USER["id"]
    return JSONResponse({"ok": True})


async def _session_me(request: Request) -> Response:
    user = USERS.get(request.session.get("user_id", ""))
    if user is None:
        return PlainTextResponse("unauthorised", status_code=401)
    return JSONResponse({"user": user["username"]})


starlette_session = Starlette(
    routes=[Route("/me", _session_me), Route("/login", _session_login, methods=["POST"])],
    middleware=[Middleware(SessionMiddleware, secret_key=SECRET or "unset", https_only=False)],
)

# --- FastAPI -----------------------------------------------------------------------------------

fastapi_plain = FastAPI()


@fastapi_plain.get("/me")
async def _fastapi_me() -> dict[str, Any]:
    return {"user": None}


# The FastAPI tutorial's "OAuth2 with Password, Bearer with JWT tokens" dependency.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="token")


async def get_current_user(token: Annotated[str, Depends(oauth2_scheme)]) -> dict[str, Any]:
    unauthorised = HTTPException(
        status_code=401,
        detail="Could not validate credentials",
        headers={"WWW-Authenticate": "Bearer"},
    )
    try:
        payload = jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.InvalidTokenError:
        raise unauthorised from None
    user = USERS.get(payload.get("sub", ""))
    if user is None:
        raise unauthorised
    return user


fastapi_pyjwt = FastAPI()


@fastapi_pyjwt.get("/me")
async def _fastapi_pyjwt_me(
    user: Annotated[dict[str, Any], Depends(get_current_user)],
) -> dict[str, Any]:
    return {"user": user["username"]}
