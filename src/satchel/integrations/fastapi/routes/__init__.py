"""The JSON API: ``/auth/*``, ``/.well-known/jwks.json`` and ``/healthz``.

What :func:`satchel.integrations.fastapi.install` adds to an app, and what the reference
server serves.

One module per group of routes (:mod:`~.login`, :mod:`~.token`, :mod:`~.refresh`, :mod:`~.sessions`,
:mod:`~.password`, :mod:`~.csrf`, :mod:`~.keys`), the bodies in :mod:`~.models` and the
request reading they share in :mod:`~.requests`. :data:`router` holds them all.
"""

from __future__ import annotations

from fastapi import APIRouter

from satchel.integrations.fastapi.routes import (
    csrf,
    dbsc,
    keys,
    login,
    mfa,
    passkeys,
    password,
    reauth,
    refresh,
    sessions,
    token,
)
from satchel.integrations.fastapi.routes.csrf import CSRFChecked, check_csrf
from satchel.integrations.fastapi.routes.models import (
    CSRFOut,
    IdentityOut,
    LoginBody,
    PasswordChangeBody,
    RevokedOut,
    SessionOut,
    TokenOut,
)
from satchel.integrations.fastapi.routes.requests import (
    UnsupportedMediaType,
    login_context,
    read_login_body,
)

router = APIRouter()
for _module in (login, token, refresh, sessions, password, csrf, keys):
    router.include_router(_module.router)
router.include_router(mfa.router)  # second factors (docs/mfa.md)
router.include_router(passkeys.router)  # WebAuthn
router.include_router(reauth.router)  # step-up
router.include_router(dbsc.router)  # device bound sessions (docs/dbsc.md)

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
