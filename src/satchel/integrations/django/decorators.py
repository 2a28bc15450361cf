"""View decorators: :func:`login_required` (401), :func:`roles_required` (403) and
:func:`fresh_login_required` (401 ``reauthentication_required``, RFC 9470), as JSON.

They read what :class:`~satchel.integrations.django.SatchelMiddleware` found (and
authenticate the request themselves when it is not installed); they work on sync and async
views alike.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse

from satchel.errors import ConfigurationError, PermissionDenied, SatchelError, StoreUnavailable
from satchel.identity import Identity
from satchel.integrations.asgi import as_auth_failure
from satchel.integrations.django.conf import get_sync
from satchel.integrations.django.middleware import aresolve, attach, resolve
from satchel.integrations.django.responses import to_django
from satchel.integrations.fresh import checked_max_age, stale_error
from satchel.integrations.sync import Resolution

F = TypeVar("F", bound=Callable[..., Any])


def _refusal(
    found: Resolution, roles: frozenset[str], fresh: bool, max_age: int | None
) -> HttpResponse | None:
    error: SatchelError | None = None
    if found.identity is None:
        error = as_auth_failure(found.error)
    elif roles and not roles <= found.identity.roles:
        error = PermissionDenied("This action needs another role.")
    elif fresh:
        error = stale_error(get_sync().auth, found.identity, max_age)
    if error is None:
        return None
    return to_django(get_sync().error_response(error, found.transport))


def _guard(view: F, roles: frozenset[str], *, fresh: bool = False, max_age: int | None = None) -> F:
    if iscoroutinefunction(view):

        @functools.wraps(view)
        async def async_wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            found = getattr(request, "satchel", None)
            if found is None:
                try:
                    found = await aresolve(request)
                except StoreUnavailable as exc:
                    return to_django(get_sync().error_response(exc))
                attach(request, found)
            refusal = _refusal(found, roles, fresh, max_age)
            return refusal if refusal is not None else await view(request, *args, **kwargs)

        return cast(F, async_wrapper)

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        found = getattr(request, "satchel", None)
        if found is None:
            try:
                found = resolve(request)
            except StoreUnavailable as exc:
                return to_django(get_sync().error_response(exc))
            attach(request, found)
        refusal = _refusal(found, roles, fresh, max_age)
        return refusal if refusal is not None else view(request, *args, **kwargs)

    return cast(F, wrapper)


def login_required(view: F) -> F:
    """401 (JSON, with the transports' challenge headers) unless the caller is authenticated;
    the view reads ``request.identity``."""
    return _guard(view, frozenset())


def roles_required(*roles: str) -> Callable[[F], F]:
    """401 without an identity, 403 unless it carries every one of ``roles``."""
    needed = frozenset(roles)
    if not needed:
        raise ConfigurationError("roles_required() needs at least one role.")
    return lambda view: _guard(view, needed)


def fresh_login_required(max_age: int | None = None) -> Callable[[F], F]:
    """401 without an identity; 401 ``reauthentication_required`` with the RFC 9470
    challenge unless it authenticated within ``max_age`` seconds (None:
    ``SATCHEL_FRESH_AGE``). Used with parentheses: ``@fresh_login_required()``."""
    limit = checked_max_age(max_age)
    return lambda view: _guard(view, frozenset(), fresh=True, max_age=limit)


def identity_of(request: HttpRequest) -> Identity | None:
    """The caller's identity, or None (anonymous or a rejected credential)."""
    found: Resolution | None = getattr(request, "satchel", None)
    if found is None:
        found = resolve(request)
        attach(request, found)
    return found.identity
