"""The authentication middleware :class:`~satchel.integrations.litestar.SatchelAuth` adds.

Litestar runs it after routing, so ``exclude`` patterns, the ``exclude_opt_key`` of a route's
``opt`` and ``exclude_http_methods`` are known (Litestar's own rules decide them). On every
other request it authenticates with :func:`satchel.integrations.asgi.resolve_scope` — the same
code as satchel's pure ASGI middleware — refreshes an expired browser session in place
(:func:`satchel.integrations.refresh.refresh_in_place`) and requires an identity: without
one the request is answered 401 by the app's exception handlers. ``scope["user"]`` is the
:class:`~satchel.Identity`, ``scope["auth"]`` the :class:`~satchel.Auth`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from litestar.connection import ASGIConnection
from litestar.middleware._utils import should_bypass_middleware
from litestar.middleware.authentication import (
    AbstractAuthenticationMiddleware,
    AuthenticationResult,
)

# _adding_headers is the pure ASGI middleware's own: refreshed cookies are added the same way.
from satchel.integrations.asgi import _adding_headers, as_auth_failure, resolve_scope
from satchel.integrations.refresh import refresh_in_place
from satchel.integrations.scope import SCOPE_ERROR, SCOPE_IDENTITY

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Method, Receive, Scope, Scopes, Send

    from satchel.integrations.litestar.config import SatchelAuth
    from satchel.transports.base import HeaderPairs


class SatchelMiddleware(AbstractAuthenticationMiddleware):
    """Authenticates and requires an identity on every route it covers (see the module)."""

    __slots__ = ("config",)

    def __init__(
        self,
        app: ASGIApp,
        config: SatchelAuth,
        exclude: str | list[str] | None = None,
        exclude_from_auth_key: str = "exclude_from_auth",
        exclude_http_methods: Sequence[Method] | None = None,
        scopes: Scopes | None = None,
    ) -> None:
        super().__init__(
            app,
            exclude=exclude,
            exclude_from_auth_key=exclude_from_auth_key,
            exclude_http_methods=exclude_http_methods,
            scopes=scopes,
        )
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if should_bypass_middleware(
            exclude_http_methods=self.exclude_http_methods,
            exclude_opt_key=self.exclude_opt_key,
            exclude_path_pattern=self.exclude,
            scope=scope,
            scopes=self.scopes,
        ):
            await self.app(scope, receive, send)
            return
        raw: Any = scope
        auth = self.config.running_auth
        # StoreUnavailable propagates: the exception handler answers 503 (fail closed, and
        # no 401 that a client would take for a logout).
        identity = await resolve_scope(auth, raw)
        refreshed: HeaderPairs | None = None
        if identity is None and raw["type"] == "http":
            refreshed = await refresh_in_place(auth, raw)
            identity = raw[SCOPE_IDENTITY]
        raw["user"] = identity
        raw["auth"] = auth
        if identity is None:
            raise as_auth_failure(raw[SCOPE_ERROR])
        if refreshed:
            send = _adding_headers(send, refreshed)  # type: ignore[arg-type,assignment]
        await self.app(scope, receive, send)

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
        """The identity of ``connection`` as Litestar's base class would compute it."""
        scope: Any = connection.scope
        auth = self.config.running_auth
        identity = await resolve_scope(auth, scope)
        if identity is None:
            raise as_auth_failure(scope[SCOPE_ERROR])
        return AuthenticationResult(user=identity, auth=auth)
