"""FastAPI glue: identity dependencies, JSON error handlers, OpenAPI security, the ``/auth/*``
routes, and :func:`install` putting them all on an app.

- :mod:`.deps` — :data:`current_identity`, :data:`optional_identity`, :func:`require_roles`
  (and the ``CurrentIdentity`` / ``OptionalIdentity`` annotations), :func:`get_auth`;
- :mod:`.fresh` — :func:`require_fresh` (and ``FreshIdentity``): step-up, RFC 9470;
- :mod:`.errors` — :func:`satchel_exception_handlers`: every error as
  ``{"error": code, "detail": text}``;
- :mod:`.openapi` — :func:`document_security` and the documented error bodies;
- :mod:`.routes` — the JSON API (``/auth/*``, ``/.well-known/jwks.json``, ``/healthz``);
- :mod:`.install` — :func:`install`.

:func:`check_csrf` is the dependency the ``/auth/*`` routes use on unsafe cookie requests;
an application's own state-changing routes add it the same way
(``dependencies=[Depends(check_csrf)]``).

The routes live here, not in :mod:`satchel.server`, because they are what :func:`install`
adds to *any* FastAPI app: the reference server is one such app (it adds the HTML pages),
so ``server`` imports this package and nothing here imports ``server``.
"""

from __future__ import annotations

from satchel.integrations.fastapi.deps import (
    CurrentIdentity,
    IdentityDependency,
    OptionalIdentity,
    current_identity,
    get_auth,
    optional_identity,
    require_roles,
    server_settings,
)
from satchel.integrations.fastapi.errors import (
    SatchelHTTPException,
    describe_validation,
    error_headers,
    error_response,
    satchel_exception_handlers,
)
from satchel.integrations.fastapi.fresh import FreshIdentity, fresh_identity, require_fresh
from satchel.integrations.fastapi.install import install
from satchel.integrations.fastapi.openapi import (
    DEFAULT_COOKIE_NAME,
    bearer_scheme,
    cookie_scheme,
    document_security,
    error_responses,
)
from satchel.integrations.fastapi.routes.csrf import check_csrf

__all__ = [
    "DEFAULT_COOKIE_NAME",
    "CurrentIdentity",
    "FreshIdentity",
    "IdentityDependency",
    "OptionalIdentity",
    "SatchelHTTPException",
    "bearer_scheme",
    "check_csrf",
    "cookie_scheme",
    "current_identity",
    "describe_validation",
    "document_security",
    "error_headers",
    "error_response",
    "error_responses",
    "fresh_identity",
    "get_auth",
    "install",
    "optional_identity",
    "require_fresh",
    "require_roles",
    "satchel_exception_handlers",
    "server_settings",
]
