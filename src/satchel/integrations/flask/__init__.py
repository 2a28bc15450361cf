"""Flask integration: ``Satchel(app, settings)``, the identity of the request, decorators and
the ``/auth/*`` JSON API as a blueprint.

    app = Flask(__name__)
    Satchel(app, Settings(strategy="hybrid", store="sqlite:///app.db"))

    @app.get("/hello")
    @login_required
    def hello():
        return {"hello": current_identity.username}

- :class:`Satchel` — the extension (``init_app`` for app factories); ``Satchel.sync`` is
  the process's :class:`~satchel.integrations.sync.SyncAuth` (``sync.call(...)`` runs any
  coroutine of the core, e.g. ``sync.call(lambda auth: auth.users.create_user(...))``);
- :data:`current_identity` — the caller's :class:`~satchel.Identity` (a proxy; reading it
  without one raises the 401); :func:`optional_identity` — the identity or None;
- :func:`login_required`, :func:`roles_required` — 401 / 403 as JSON;
  :func:`fresh_login_required` — step-up: 401 ``reauthentication_required`` (RFC 9470) when
  the latest authentication is too old;
- :func:`csrf_exempt` — skip the CSRF check of unsafe cookie requests for one view.

See ``docs/frameworks.md``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from werkzeug.local import LocalProxy

from satchel.errors import ConfigurationError, PermissionDenied
from satchel.identity import Identity
from satchel.integrations.asgi import as_auth_failure
from satchel.integrations.flask.extension import (
    Satchel,
    current_resolution,
    extension,
    identity_or_none,
)
from satchel.integrations.flask.glue import csrf_exempt, to_response
from satchel.integrations.fresh import checked_max_age, ensure_fresh

F = TypeVar("F", bound=Callable[..., Any])


def optional_identity() -> Identity | None:
    """The caller's identity, or None for an anonymous request or a rejected credential."""
    return identity_or_none()


def _required_identity() -> Identity:
    found = current_resolution()
    if found.identity is None:
        raise as_auth_failure(found.error)
    return found.identity


#: The caller's identity; reading it in a request without one raises the 401 (JSON).
current_identity: Identity = cast(Identity, LocalProxy(_required_identity))


def login_required(view: F) -> F:
    """Answer 401 (JSON, with the transports' challenge headers) unless authenticated."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _required_identity()
        return view(*args, **kwargs)

    return cast(F, wrapper)


def roles_required(*roles: str) -> Callable[[F], F]:
    """401 without an identity, 403 unless it carries every one of ``roles``."""
    needed = frozenset(roles)
    if not needed:
        raise ConfigurationError("roles_required() needs at least one role.")

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not needed <= _required_identity().roles:
                raise PermissionDenied("This action needs another role.")
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


def fresh_login_required(max_age: int | None = None) -> Callable[[F], F]:
    """401 without an identity; 401 ``reauthentication_required`` with the RFC 9470
    challenge unless it authenticated within ``max_age`` seconds (None:
    ``SATCHEL_FRESH_AGE``). Used with parentheses: ``@fresh_login_required()``."""
    limit = checked_max_age(max_age)

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            identity = _required_identity()  # the usual 401 first
            ensure_fresh(extension().sync.auth, identity, limit)
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorate


__all__ = [
    "Satchel",
    "csrf_exempt",
    "current_identity",
    "extension",
    "fresh_login_required",
    "login_required",
    "optional_identity",
    "roles_required",
    "to_response",
]
