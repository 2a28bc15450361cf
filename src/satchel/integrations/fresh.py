"""Step-up without a framework: is the caller's latest authentication recent enough?

Every integration's fresh-only route (FastAPI's ``require_fresh``, Flask's and Django's
``fresh_login_required``, Litestar's ``require_fresh`` guard) asks :func:`stale_error`
and lets the framework's error handling render what it returns:
:class:`~satchel.accounts.mfa.errors.ReauthenticationRequired`, which is 401 with
``WWW-Authenticate: Bearer error="insufficient_user_authentication", ..., max_age="<n>"``
(RFC 9470) and ``{"error": "reauthentication_required", "detail": ..., "max_age": n}``
(:func:`satchel.integrations.http_api.satchel_error_response`). A caller without an
identity never reaches this check: each integration answers its usual 401 first.
"""

from __future__ import annotations

from typing import Final

from satchel.accounts.mfa.errors import ReauthenticationRequired
from satchel.accounts.mfa.policy import is_fresh
from satchel.auth import Auth
from satchel.errors import ConfigurationError
from satchel.identity import Identity

#: Without an MFA service (an Auth built by hand), this is how fresh "fresh" is.
DEFAULT_FRESH_AGE: Final = 300


def checked_max_age(max_age: int | None) -> int | None:
    """``max_age`` as given to a decorator or guard, refused at import time when it is not
    a non-negative number of seconds (None: the Auth's ``SATCHEL_FRESH_AGE``)."""
    if max_age is None:
        return None
    if callable(max_age):  # ``@fresh_login_required`` written without its parentheses
        raise ConfigurationError("Call the decorator: @fresh_login_required(), with ().")
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age < 0:
        raise ConfigurationError("max_age must be a non-negative number of seconds.")
    return max_age


def fresh_age(auth: Auth, max_age: int | None = None) -> int:
    """The limit that applies: ``max_age``, else the MFA service's ``fresh_age``
    (``SATCHEL_FRESH_AGE``), else :data:`DEFAULT_FRESH_AGE`."""
    if max_age is not None:
        return max_age
    return auth.mfa.config.fresh_age if auth.mfa is not None else DEFAULT_FRESH_AGE


def stale_error(
    auth: Auth, identity: Identity, max_age: int | None = None
) -> ReauthenticationRequired | None:
    """None when ``identity`` authenticated within the limit (:func:`fresh_age`), else the
    error to answer with."""
    limit = fresh_age(auth, max_age)
    if is_fresh(identity.auth_time, auth.clock(), limit):
        return None
    return ReauthenticationRequired(limit)


def ensure_fresh(auth: Auth, identity: Identity, max_age: int | None = None) -> Identity:
    """``identity`` when it is fresh enough; raises :class:`ReauthenticationRequired`."""
    error = stale_error(auth, identity, max_age)
    if error is not None:
        raise error
    return identity
