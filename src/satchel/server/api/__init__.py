"""The reference server's JSON API: ``/auth/*``, ``/.well-known/jwks.json`` and ``/healthz``.

One module per group of routes (:mod:`~.login`, :mod:`~.refresh`, :mod:`~.sessions`,
:mod:`~.password`, :mod:`~.csrf`, :mod:`~.keys`), the bodies in :mod:`~.models` and the
request reading they share in :mod:`~.requests`. :data:`router` holds them all.
"""

from __future__ import annotations

from fastapi import APIRouter

from satchel.server.api import csrf, keys, login, password, refresh, sessions
from satchel.server.api.csrf import CSRFChecked, check_csrf
from satchel.server.api.models import (
    CSRFOut,
    IdentityOut,
    LoginBody,
    PasswordChangeBody,
    RevokedOut,
    SessionOut,
    TokenOut,
)
from satchel.server.api.requests import UnsupportedMediaType, login_context, read_login_body

router = APIRouter()
for _module in (login, refresh, sessions, password, csrf, keys):
    router.include_router(_module.router)

__all__ = [
    "CSRFChecked",
    "CSRFOut",
    "IdentityOut",
    "LoginBody",
    "PasswordChangeBody",
    "RevokedOut",
    "SessionOut",
    "TokenOut",
    "UnsupportedMediaType",
    "check_csrf",
    "login_context",
    "read_login_body",
    "router",
]
