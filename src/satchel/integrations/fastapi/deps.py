"""The identity dependencies: :data:`current_identity`, :data:`optional_identity`,
:func:`require_roles`, and where a request's :class:`Auth` and settings are found.

They read what :class:`satchel.integrations.asgi.AuthMiddleware` put in the scope; without
the middleware they authenticate the request themselves, finding the :class:`satchel.Auth`
in ``app.state.satchel_auth``.

They run on every request and FastAPI spends several microseconds on each dependency it
resolves (about as much as the whole middleware), so each one is a single callable with no
sub-dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from satchel.auth import Auth
from satchel.errors import ConfigurationError, PermissionDenied
from satchel.identity import Identity
from satchel.integrations.asgi import as_auth_failure, resolve_scope
from satchel.integrations.fastapi.errors import SatchelHTTPException, error_headers
from satchel.integrations.scope import SCOPE_AUTH, SCOPE_ERROR, SCOPE_IDENTITY, STATE_KEY

if TYPE_CHECKING:
    from satchel.config.settings import Settings


def get_auth(conn: HTTPConnection) -> Auth:
    """The :class:`Auth` serving this request (scope first, then ``app.state``)."""
    auth = conn.scope.get(SCOPE_AUTH)
    if auth is None:
        # The app's state may legitimately hold no Auth yet; that is the error below.
        auth = getattr(conn.app.state, STATE_KEY, None)
    if not isinstance(auth, Auth):
        raise ConfigurationError(
            "No satchel Auth: add AuthMiddleware or set app.state.satchel_auth."
        )
    return auth


def server_settings(conn: HTTPConnection) -> Settings:
    """The :class:`Settings` the app was set up with (:func:`install` and the reference
    server's ``create_app`` always record them)."""
    from satchel.config.settings import Settings

    settings = getattr(conn.app.state, "settings", None)  # an app set up by hand has none
    if not isinstance(settings, Settings):
        raise ConfigurationError("No satchel Settings: set the app up with install().")
    return settings


class IdentityDependency:
    """What :data:`current_identity`, :data:`optional_identity` and :func:`require_roles` are.

    Resolves to the caller's :class:`Identity`. ``required`` answers 401 (with the transports'
    challenge headers) when there is none; ``roles`` answers 403 unless the identity carries
    every one of them. Without ``required`` an anonymous or rejected request gives None.
    """

    __slots__ = ("required", "roles")

    def __init__(self, *, required: bool, roles: frozenset[str] = frozenset()) -> None:
        self.required = required or bool(roles)
        self.roles = roles

    def __repr__(self) -> str:
        return f"IdentityDependency(required={self.required}, roles={sorted(self.roles)!r})"

    async def __call__(self, conn: HTTPConnection) -> Identity | None:
        scope = conn.scope
        try:
            identity: Identity | None = scope[SCOPE_IDENTITY]
        except KeyError:  # no middleware: authenticate here, once per request
            identity = await resolve_scope(get_auth(conn), scope)
        if identity is None:
            if not self.required:
                return None
            error = as_auth_failure(scope.get(SCOPE_ERROR))
            raise SatchelHTTPException(error, error_headers(conn, error))
        if self.roles and not self.roles <= identity.roles:
            raise SatchelHTTPException(PermissionDenied("This action needs another role."))
        return identity


#: The caller's identity, or None for an anonymous request or a rejected credential.
optional_identity = IdentityDependency(required=False)
#: The caller's identity; 401 (with ``WWW-Authenticate`` for bearer) when there is none.
current_identity = IdentityDependency(required=True)


def require_roles(*roles: str) -> IdentityDependency:
    """A dependency giving the identity when it carries every one of ``roles``, else 403
    (401 without an identity)."""
    needed = frozenset(roles)
    if not needed:
        raise ConfigurationError("require_roles() needs at least one role.")
    return IdentityDependency(required=True, roles=needed)


CurrentIdentity = Annotated[Identity, Depends(current_identity)]
OptionalIdentity = Annotated[Identity | None, Depends(optional_identity)]
