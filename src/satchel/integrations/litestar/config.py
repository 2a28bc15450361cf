"""``SatchelAuth``: satchel on a Litestar app, in Litestar's security-config style.

    satchel = SatchelAuth(settings=Settings(strategy="hybrid"), exclude=["/public"])
    app = Litestar([...], on_app_init=[satchel.on_app_init])

Like Litestar's ``JWTAuth`` or ``SessionAuth`` it is an
:class:`~litestar.security.base.AbstractSecurityConfig`: ``on_app_init`` adds the middleware
(every route not excluded by ``exclude``, ``exclude_opt_key`` or ``exclude_http_methods``
needs an identity), the guards, the dependencies, the OpenAPI security schemes, and:

- the :class:`~satchel.Auth`, built from ``settings`` (the ``SATCHEL_*`` environment by
  default, over the application's ``users`` store when given) when the app starts and closed
  when it stops, unless ``auth`` is given (then it is started and closed with the app);
- the JSON error handlers (the app's own handlers for the same exceptions win);
- with ``routes`` (default), the reference server's JSON API (``/auth/*``);
- with ``csrf`` (default), :func:`~satchel.integrations.litestar.guards.csrf_guard` on every
  route: a state-changing request carrying satchel's cookie must come from the app's own
  pages. Bearer requests are never affected.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from copy import copy
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi.spec import Components, Reference, SecurityRequirement, SecurityScheme
from litestar.security.base import AbstractSecurityConfig

from satchel.auth import Auth
from satchel.errors import ConfigurationError
from satchel.identity import Identity
from satchel.integrations.litestar.guards import (
    csrf_guard,
    provide_identity,
    provide_optional_identity,
)
from satchel.integrations.litestar.middleware import SatchelMiddleware
from satchel.integrations.litestar.responses import exception_handlers
from satchel.integrations.scope import STATE_KEY
from satchel.transports.client_ip import IPNetwork, parse_networks

if TYPE_CHECKING:
    from litestar import Litestar
    from litestar.config.app import AppConfig
    from litestar.connection import ASGIConnection
    from litestar.types import ControllerRouterHandler, Guard, Method, Scopes, TypeEncodersMap

    from satchel.config.settings import Settings
    from satchel.stores.base import UserStore

#: Names of the OpenAPI security schemes (the same as the FastAPI integration's).
COOKIE_SCHEME = "SessionCookie"
BEARER_SCHEME = "BearerToken"


async def _user_of(auth: Any, connection: ASGIConnection[Any, Any, Any, Any]) -> Any:
    # Litestar's retrieve_user_handler contract; the middleware sets the user itself.
    scope: Any = connection.scope
    return scope.get("user")


@dataclass
class SatchelAuth(AbstractSecurityConfig[Identity, Auth]):
    """satchel's Litestar security config (see the module docstring)."""

    settings: Settings | None = None
    """What to build (default: ``Settings()``, read from the ``SATCHEL_*`` environment)."""
    auth: Auth | None = None
    """An :class:`Auth` built by the application instead (then ``settings`` only supplies
    the request limits and trusted proxies)."""
    users: UserStore | None = None
    """The application's own user store behind the built :class:`Auth` (``docs/users.md``)."""
    routes: bool = True
    """Add the JSON API (``/auth/*``, ``/.well-known/jwks.json``, ``/healthz``)."""
    csrf: bool = True
    """Run :func:`csrf_guard` on every route of the app."""
    exclude: str | list[str] | None = None
    """Path patterns (regular expressions) the middleware skips."""
    exclude_openapi: bool = True
    """Skip the OpenAPI document and its UIs too (the API's shape is no secret; the
    security schemes it declares are how a client learns to log in)."""
    exclude_opt_key: str = "exclude_from_auth"
    """A route whose ``opt`` has this key set to a true value is skipped by the middleware."""
    exclude_http_methods: Sequence[Method] | None = field(
        default_factory=lambda: cast("Sequence[Method]", ["OPTIONS"])
    )
    """Methods the middleware skips: CORS preflights only. (Litestar's own configs also skip
    ``HEAD``; a ``HEAD`` route would then answer anyone, so satchel does not.)"""
    guards: Iterable[Guard] | None = None
    """Extra guards for every route."""
    scopes: Scopes | None = None
    """ASGI scope types the middleware covers (default: ``http`` and ``websocket``)."""
    route_handlers: Iterable[ControllerRouterHandler] | None = None
    """Extra route handlers to register."""
    dependencies: dict[str, Provide] | None = None
    """Extra dependencies; ``identity`` and ``optional_identity`` are always provided."""
    type_encoders: TypeEncodersMap | None = None
    authentication_middleware_class: type[SatchelMiddleware] = SatchelMiddleware

    def __post_init__(self) -> None:
        if self.auth is not None and self.users is not None:
            raise ConfigurationError("Pass users= or auth=, not both: auth already has its users.")
        if self.settings is None:
            from satchel.config.settings import Settings

            self.settings = Settings()
        self.retrieve_user_handler = _user_of
        self.proxies: tuple[IPNetwork, ...] = parse_networks(self.settings.trusted_proxies)
        self.max_body_bytes: int = self.settings.max_body_bytes
        self._running: Auth | None = self.auth
        self._openapi_path: str | None = None

    @property
    def running_auth(self) -> Auth:
        """The :class:`Auth` serving requests (set once the app has started)."""
        auth = self._running
        if auth is None:
            raise ConfigurationError("satchel has not started: run the app's lifespan first.")
        return auth

    # --- what Litestar asks a security config for ----------------------------------------

    @property
    def middleware(self) -> DefineMiddleware:
        """:class:`SatchelMiddleware` with this config's exclusions."""
        exclude = [self.exclude] if isinstance(self.exclude, str) else list(self.exclude or [])
        if self._openapi_path is not None:
            exclude.append(f"^{re.escape(self._openapi_path)}(/|$)")
        return DefineMiddleware(
            self.authentication_middleware_class,
            config=self,
            exclude=exclude or None,
            exclude_from_auth_key=self.exclude_opt_key,
            exclude_http_methods=self.exclude_http_methods,
            scopes=self.scopes,
        )

    def _transport_names(self) -> list[str]:
        if self.auth is not None:
            return [t.name for t in self.auth.transports]
        assert self.settings is not None
        return list(self.settings.transports)

    def _cookie_name(self) -> str:
        from satchel.transports.cookie import CookieTransport

        if self.auth is not None:
            cookie = self.auth.transport_by_name.get("cookie")
            if isinstance(cookie, CookieTransport):
                return cookie.cookie_name
        assert self.settings is not None
        return CookieTransport(secure=self.settings.cookie_secure).cookie_name

    @property
    def openapi_components(self) -> Components:
        """The ``SessionCookie`` and ``BearerToken`` schemes of the configured transports."""
        schemes: dict[str, SecurityScheme | Reference] = {}
        names = self._transport_names()
        if "cookie" in names:
            schemes[COOKIE_SCHEME] = SecurityScheme(
                type="apiKey",
                name=self._cookie_name(),
                security_scheme_in="cookie",
                description="Session cookie set by POST /auth/login (HttpOnly; browsers only).",
            )
        if "bearer" in names:
            schemes[BEARER_SCHEME] = SecurityScheme(
                type="http",
                scheme="bearer",
                description=(
                    "Access token from POST /auth/token in `Authorization: Bearer <token>`."
                ),
            )
        return Components(security_schemes=schemes)

    @property
    def security_requirement(self) -> SecurityRequirement:
        """The first configured scheme; :meth:`on_app_init` lists each as an alternative."""
        names = list(self.openapi_components.security_schemes or ()) or [BEARER_SCHEME]
        return {names[0]: []}

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        """Add satchel to the app being built (pass as ``on_app_init=[config.on_app_init]``)."""
        if app_config.openapi_config and self.exclude_openapi:
            openapi = app_config.openapi_config
            router = openapi.openapi_router
            self._openapi_path = (router.path if router else openapi.path) or "/schema"
        app_config.middleware.insert(0, self.middleware)
        if app_config.openapi_config:
            openapi = app_config.openapi_config = copy(app_config.openapi_config)
            components = self.openapi_components
            if isinstance(openapi.components, list):
                openapi.components.append(components)
            else:
                openapi.components = [components, openapi.components]
            # Alternatives: either scheme authenticates (a list of one-key requirements).
            security = list(openapi.security or [])
            security.extend({name: []} for name in components.security_schemes or {})
            openapi.security = security
        if self.csrf:
            app_config.guards.append(csrf_guard)
        if self.guards:
            app_config.guards.extend(self.guards)
        app_config.dependencies.setdefault("identity", Provide(provide_identity))
        app_config.dependencies.setdefault("optional_identity", Provide(provide_optional_identity))
        if self.dependencies:
            app_config.dependencies.update(self.dependencies)
        for exc_class, handler in exception_handlers().items():
            app_config.exception_handlers.setdefault(exc_class, handler)
        if self.routes:
            from satchel.integrations.litestar.routes import build_routes

            app_config.route_handlers.extend(build_routes(self))
        if self.route_handlers:
            app_config.route_handlers.extend(self.route_handlers)
        if self.type_encoders is None:
            self.type_encoders = app_config.type_encoders
        app_config.lifespan.insert(0, self._lifespan)
        return app_config

    @asynccontextmanager
    async def _lifespan(self, app: Litestar) -> AsyncIterator[None]:
        """Build (unless given) and start the :class:`Auth`; close it when the app stops."""
        auth = self.auth
        if auth is None:
            from satchel.config.build import build_auth

            auth = await build_auth(self.settings, users=self.users)
        try:
            await auth.start()
            self._running = auth
            app.state[STATE_KEY] = auth
            yield
        finally:
            self._running = self.auth
            await auth.close()
