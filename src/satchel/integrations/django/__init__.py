"""Django integration: an installable app, ``SatchelMiddleware`` (``request.identity``),
decorators, the ``/auth/*`` JSON API as an ``include()``-able URLconf, and a user provider
over the project's own ``auth_user``.

    # settings.py
    INSTALLED_APPS = [..., "satchel.integrations.django"]
    MIDDLEWARE = [..., "satchel.integrations.django.SatchelMiddleware"]
    SATCHEL = {"strategy": "hybrid", "store": "sqlite:///satchel.db"}

    # urls.py
    urlpatterns = [..., path("", include("satchel.integrations.django.urls"))]

- :class:`SatchelMiddleware` — authenticates every request (WSGI and ASGI);
- :func:`login_required`, :func:`roles_required` — 401 / 403 as JSON; :func:`identity_of`;
  :func:`fresh_login_required` — step-up: 401 ``reauthentication_required`` (RFC 9470);
- :func:`get_sync` — the process's :class:`~satchel.integrations.sync.SyncAuth`
  (``get_sync().call(lambda auth: ...)`` runs any coroutine of the core);
- :class:`~satchel.integrations.django.users.DjangoUserStore` — accounts in ``auth_user``.

See ``docs/frameworks.md``. Names are imported on first use, so this package can be named
in ``INSTALLED_APPS`` before Django is set up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from satchel.integrations.django.conf import get_sync
    from satchel.integrations.django.decorators import (
        fresh_login_required,
        identity_of,
        login_required,
        roles_required,
    )
    from satchel.integrations.django.middleware import SatchelMiddleware

_EXPORTS = {
    "SatchelMiddleware": "satchel.integrations.django.middleware",
    "login_required": "satchel.integrations.django.decorators",
    "roles_required": "satchel.integrations.django.decorators",
    "fresh_login_required": "satchel.integrations.django.decorators",
    "identity_of": "satchel.integrations.django.decorators",
    "get_sync": "satchel.integrations.django.conf",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


__all__ = [
    "SatchelMiddleware",
    "fresh_login_required",
    "get_sync",
    "identity_of",
    "login_required",
    "roles_required",
]
