"""Step-up for FastAPI routes: :func:`require_fresh`.

A route that changes something sensitive (a password, an address, a second factor, an
administrator's action) depends on ``require_fresh()``; a caller whose latest
authentication is older than ``max_age`` seconds gets 401 with ``WWW-Authenticate: Bearer
error="insufficient_user_authentication", max_age="..."`` (RFC 9470) and the JSON error
``reauthentication_required``, and comes back after ``POST /auth/reauthenticate``.

Outside FastAPI, :meth:`satchel.accounts.mfa.MfaService.check_fresh` (or the pure
:func:`satchel.accounts.mfa.is_fresh`) is the same check; its
:class:`~satchel.accounts.mfa.ReauthenticationRequired` carries the header and body.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from satchel.accounts.mfa.errors import ReauthenticationRequired
from satchel.accounts.mfa.policy import is_fresh
from satchel.errors import ConfigurationError
from satchel.identity import Identity
from satchel.integrations.fastapi.deps import IdentityDependency, get_auth
from satchel.integrations.fastapi.errors import SatchelHTTPException

#: Without an MFA service (an Auth built by hand), this is how fresh "fresh" is.
DEFAULT_FRESH_AGE = 300


class FreshIdentityDependency(IdentityDependency):
    """The caller's identity, if it authenticated within ``max_age`` seconds (None: the
    service's ``fresh_age``, ``SATCHEL_FRESH_AGE``); else 401 ``reauthentication_required``."""

    __slots__ = ("max_age",)

    def __init__(self, max_age: int | None = None, *, roles: frozenset[str] = frozenset()) -> None:
        super().__init__(required=True, roles=roles)
        if max_age is not None and (isinstance(max_age, bool) or max_age < 0):
            raise ConfigurationError("max_age must be a non-negative number of seconds.")
        self.max_age = max_age

    def __repr__(self) -> str:
        return f"FreshIdentityDependency(max_age={self.max_age!r})"

    async def __call__(self, conn: HTTPConnection) -> Identity | None:
        identity = await super().__call__(conn)
        assert identity is not None  # required=True
        auth = get_auth(conn)
        limit = self.max_age
        if limit is None:
            limit = auth.mfa.config.fresh_age if auth.mfa is not None else DEFAULT_FRESH_AGE
        if not is_fresh(identity.auth_time, auth.clock(), limit):
            error = ReauthenticationRequired(limit)
            raise SatchelHTTPException(error, error.response_headers())
        return identity


def require_fresh(max_age: int | None = None, *roles: str) -> FreshIdentityDependency:
    """A dependency giving the caller's identity when its latest authentication is at most
    ``max_age`` seconds old (and it carries ``roles``); see the module docstring."""
    return FreshIdentityDependency(max_age, roles=frozenset(roles))


#: The caller's identity, authenticated within ``SATCHEL_FRESH_AGE`` seconds.
fresh_identity = require_fresh()
FreshIdentity = Annotated[Identity, Depends(fresh_identity)]
