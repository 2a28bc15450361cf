"""A Litestar app protected by satchel, configured from the ``SATCHEL_*`` environment.

Every route needs a login except those under ``/public``; ``/admin`` needs the ``admin``
role; the ``/auth/*`` JSON API comes with it. Point it at the store your other apps use
(a FastAPI ``satchel serve``, Flask, Django) and they share users, sessions and
revocations::

    SATCHEL_STORE=redis://127.0.0.1:6379/0 uvicorn --app-dir examples litestar_app:app
"""

from __future__ import annotations

from typing import Any

from litestar import Litestar, Request, get

from satchel import Identity
from satchel.integrations.litestar import SatchelAuth, roles_required

satchel = SatchelAuth(exclude=["^/public"])  # Settings() from the environment


@get("/hello")
async def hello(request: Request[Identity, Any, Any]) -> dict[str, str]:
    return {"hello": request.user.username}


@get("/admin", guards=[roles_required("admin")])
async def admin(request: Request[Identity, Any, Any]) -> dict[str, str]:
    return {"admin": request.user.username}


@get("/public/status")
async def status() -> dict[str, str]:
    return {"status": "up"}


app = Litestar([hello, admin, status], on_app_init=[satchel.on_app_init])
