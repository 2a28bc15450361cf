"""Step-up for FastAPI routes: :func:`require_fresh`.

A route that changes something sensitive (a password, an address, a second factor, an
administrator's action) depends on ``require_fresh()``; a caller whose latest
authentication is older than ``max_age`` seconds gets 401 with ``WWW-Authenticate: Bearer
error="insufficient_user_authentication", max_age="..."`` (RFC 9470) and the JSON error
``reauthentication_required``, and comes back after ``POST /auth/reauthenticate``.

The decision and the answer are the framework-free :mod:`satchel.integrations.fresh`,
shared with Flask's and Django's ``fresh_login_required`` and Litestar's ``require_fresh``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from starlette.requests import HTTPConnection

from satchel.identity import Identity
from satchel.integrations.fastapi.deps import IdentityDependency, get_auth
from satchel.integrations.fastapi.errors import SatchelHTTPException
from satchel.integrations.fresh import DEFAULT_FRESH_AGE, checked_max_age, stale_error

__all__ = [
    "DEFAULT_FRESH_AGE",
    "FreshIdentity",
    "FreshIdentityDependency",
    "fresh_identity",
    "require_fresh",
]


class FreshIdentityDependency(IdentityDependency):
    """The caller's identity, if it authenticated within ``max_age`` seconds (None: the
    service's ``fresh_age``, ``SATCHEL_FRESH_AGE``); else 401 ``reauthentication_required``."""

    __slots__ = ("max_age",)

    def __init__(self, max_age: int | None = None, *, roles: frozenset[str] = frozenset()) -> None:
        super().__init__(required=True, roles=roles)
        self.max_age = checked_max_age(max_age)

    def __repr__(self) -> str:
        return f"FreshIdentityDependency(max_age={self.max_age!r})"

    async def __call__(self, conn: HTTPConnection) -> Identity | None:
        identity = await super().__call__(conn)
        assert identity is not None  # required=True
        error = stale_error(get_auth(conn), identity, self.max_age)
        if error is not None:
            raise SatchelHTTPException(error, error.response_headers())
        return identity


def require_fresh(max_age: int | None = None, *roles: str) -> FreshIdentityDependency:
    """A dependency giving the caller's identity when its latest authentication is at most
    ``max_age`` seconds old (and it carries ``roles``); see the module docstring."""
    return FreshIdentityDependency(max_age, roles=frozenset(roles))


#: The caller's identity, authenticated within ``SATCHEL_FRESH_AGE`` seconds.
fresh_identity = require_fresh()
FreshIdentity = Annotated[Identity, Depends(fresh_identity)]
