"""Who is calling, and who may: identity lookups, guards and dependency providers.

:class:`~satchel.integrations.litestar.middleware.SatchelMiddleware` puts the identity in
the scope of every route it covers. On a route it skips (``exclude``, the
``exclude_opt_key`` opt, an excluded method) these helpers authenticate the request
themselves the first time they are asked, so an excluded route can still use
:func:`optional_identity`.

Guards follow Litestar's signature ``(connection, route_handler) -> None`` and raise
satchel's errors, which the app's exception handlers turn into JSON.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Final

from litestar.connection import ASGIConnection, Request
from litestar.handlers.base import BaseRouteHandler

from satchel.auth import Auth
from satchel.errors import ConfigurationError, PermissionDenied
from satchel.identity import Identity
from satchel.integrations.asgi import as_auth_failure, resolve_scope
from satchel.integrations.fresh import checked_max_age, ensure_fresh
from satchel.integrations.http_api import cookie_names
from satchel.integrations.http_api.messages import FORM_TYPES
from satchel.integrations.scope import SCOPE_AUTH, SCOPE_ERROR, SCOPE_IDENTITY, STATE_KEY
from satchel.transports.csrf import FORM_FIELD, binding_for, content_type, needs_check, scope_origin

#: Route ``opt`` key: ``{CSRF_OPT: False}`` exempts a route from :func:`csrf_guard`.
CSRF_OPT: Final = "satchel_csrf"
_CSRF_DONE: Final = "satchel.csrf_checked"

Connection = ASGIConnection[Any, Any, Any, Any]
Guard = Callable[[Connection, BaseRouteHandler], Coroutine[Any, Any, None]]


def auth_of(connection: Connection) -> Auth:
    """The :class:`Auth` serving this request (scope first, then ``app.state``)."""
    scope: Any = connection.scope
    auth = scope.get(SCOPE_AUTH)
    if auth is None:
        auth = connection.app.state.get(STATE_KEY)
    if not isinstance(auth, Auth):
        raise ConfigurationError("No satchel Auth: add SatchelAuth to the app (on_app_init).")
    return auth


async def optional_identity(connection: Connection) -> Identity | None:
    """The caller's :class:`Identity`, or None for an anonymous or rejected credential."""
    scope: Any = connection.scope
    try:
        identity: Identity | None = scope[SCOPE_IDENTITY]
    except KeyError:  # a route the middleware skipped: authenticate here, once
        auth = auth_of(connection)
        identity = await resolve_scope(auth, scope)
        scope["user"] = identity
        scope["auth"] = auth
    return identity


async def current_identity(connection: Connection) -> Identity:
    """The caller's :class:`Identity`; raises the 401 error when there is none."""
    identity = await optional_identity(connection)
    if identity is None:
        scope: Any = connection.scope
        raise as_auth_failure(scope.get(SCOPE_ERROR))
    return identity


async def provide_identity(request: Request[Any, Any, Any]) -> Identity:
    """Dependency ``identity``: the caller's identity (401 without one)."""
    return await current_identity(request)


async def provide_optional_identity(request: Request[Any, Any, Any]) -> Identity | None:
    """Dependency ``optional_identity``: the caller's identity or None."""
    return await optional_identity(request)


async def login_required(connection: Connection, _: BaseRouteHandler) -> None:
    """Guard: 401 unless the request carries a valid credential (for excluded routes; the
    middleware already requires one everywhere else)."""
    await current_identity(connection)


def roles_required(*roles: str) -> Guard:
    """A guard answering 403 unless the caller carries every one of ``roles`` (401 without
    an identity)."""
    needed = frozenset(roles)
    if not needed:
        raise ConfigurationError("roles_required() needs at least one role.")

    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        identity = await current_identity(connection)
        if not needed <= identity.roles:
            raise PermissionDenied("This action needs another role.")

    guard.__name__ = f"roles_required({', '.join(sorted(needed))})"
    return guard


def require_fresh(max_age: int | None = None) -> Guard:
    """A guard answering 401 ``reauthentication_required`` with the RFC 9470 challenge
    unless the caller authenticated within ``max_age`` seconds (None: ``SATCHEL_FRESH_AGE``);
    401 without an identity."""
    limit = checked_max_age(max_age)

    async def guard(connection: Connection, _: BaseRouteHandler) -> None:
        identity = await current_identity(connection)
        ensure_fresh(auth_of(connection), identity, limit)

    guard.__name__ = f"require_fresh({'' if limit is None else limit})"
    return guard


async def form_token(connection: Connection) -> str | None:
    """The ``csrf_token`` field of a form body, if the request has one (the parsed form stays
    cached on the request for the handler)."""
    scope: Any = connection.scope
    headers = scope.get("headers") or ()
    if content_type(headers) not in FORM_TYPES or not isinstance(connection, Request):
        return None
    value = (await connection.form()).get(FORM_FIELD)
    return value if isinstance(value, str) else None


async def csrf_guard(connection: Connection, route_handler: BaseRouteHandler) -> None:
    """Guard: refuse a state-changing cookie request a third-party page could have sent.

    The same check as every satchel route (:meth:`satchel.transports.csrf.CSRFProtect.check`):
    a safe method, a request without satchel's cookies (bearer clients) or a route with
    ``opt={CSRF_OPT: False}`` passes untouched. Runs once per request however often it is
    listed.
    """
    scope: Any = connection.scope
    method = scope.get("method")
    if method is None or method in ("GET", "HEAD", "OPTIONS", "TRACE"):
        return
    if route_handler.opt.get(CSRF_OPT) is False or scope.get(_CSRF_DONE):
        return
    auth = auth_of(connection)
    csrf = auth.csrf
    if csrf is None:
        return  # no cookie transport: nothing a browser attaches by itself
    headers = scope.get("headers") or ()
    if not needs_check(method, headers, cookie_names(auth)):
        return
    identity = await optional_identity(connection)
    csrf.check(
        method,
        headers,
        own_origin=scope_origin(scope),
        binding=binding_for(identity) if identity is not None else None,
        form_token=await form_token(connection),
    )
    scope[_CSRF_DONE] = True
