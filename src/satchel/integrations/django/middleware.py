"""``SatchelMiddleware``: every request authenticated before its view runs.

Sets ``request.identity`` (the :class:`~satchel.Identity` or None) and ``request.satchel``
(the :class:`~satchel.integrations.sync.Resolution`: identity, transport, error). With the
``"django"`` user provider an authenticated request's ``request.user`` (and
``request.auser()``) is the project's own user object, loaded only when read; otherwise
``request.user`` stays what Django's ``AuthenticationMiddleware`` made it.

Works under WSGI and ASGI: a repeated credential is answered from memory in either world;
anything else runs on satchel's loop (awaited under ASGI, never blocking the server's loop).

**CSRF.** Views keep Django's own ``CsrfViewMiddleware`` (``{% csrf_token %}``, the
``csrftoken`` cookie). A request authenticated by a bearer token is exempt from it: a
browser never adds an ``Authorization`` header by itself, so the request cannot be forged,
and an API client has no ``csrftoken`` to send. satchel's ``/auth/*`` views check CSRF with
satchel's own rules (as on every framework).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse
from django.utils.functional import SimpleLazyObject

from satchel.errors import SatchelError, StoreUnavailable
from satchel.integrations.django.conf import get_sync, users_provider
from satchel.integrations.django.responses import add_set_cookies, to_django
from satchel.integrations.sync import Resolution
from satchel.integrations.sync.environ import credential_headers, proof_request

GetResponse = Callable[[HttpRequest], Any]


def _user_loader(user_id: str) -> Callable[[], Any]:
    def load() -> Any:
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import AnonymousUser

        model = get_user_model()
        found = model._default_manager.filter(pk=user_id).first()
        return found if found is not None else AnonymousUser()

    return load


def attach(request: HttpRequest, found: Resolution) -> None:
    """Record what authenticating ``request`` found on it."""
    request.satchel = found
    identity = found.identity
    request.identity = identity
    if identity is None:
        return
    if found.transport == "bearer":
        # Django's own CSRF check is for what a browser sends by itself (module docstring).
        request._dont_enforce_csrf_checks = True
    if users_provider() == "django":
        load = _user_loader(identity.user_id)
        request.user = SimpleLazyObject(load)

        async def auser() -> Any:
            from asgiref.sync import sync_to_async

            return await sync_to_async(load)()

        request.auser = auser


def _proof_request(request: HttpRequest) -> tuple[str, str] | None:
    """Method and URL a DPoP proof is checked against (None: the request has none); the
    host is Django's ``get_host()``, checked against ``ALLOWED_HOSTS``."""
    if proof_request(request.META) is None:
        return None
    return request.method or "GET", request.build_absolute_uri(request.path)


def resolve(request: HttpRequest) -> Resolution:
    """Authenticate ``request`` (synchronous callers)."""
    meta = request.META
    return get_sync().resolve(
        credential_headers(meta),
        path=request.path_info,
        peer=meta.get("REMOTE_ADDR"),
        request=_proof_request(request),
    )


async def aresolve(request: HttpRequest) -> Resolution:
    """Authenticate ``request`` from an event loop (ASGI)."""
    meta = request.META
    return await get_sync().aresolve(
        credential_headers(meta),
        path=request.path_info,
        peer=meta.get("REMOTE_ADDR"),
        request=_proof_request(request),
    )


def finish(found: Resolution, response: HttpResponse) -> HttpResponse:
    """Add the cookies of a session refreshed in place to ``response``."""
    if found.headers:
        add_set_cookies(response, [v for n, v in found.headers if n.lower() == "set-cookie"])
    return response


class SatchelMiddleware:
    """Authenticates every request (see the module docstring); place it after Django's
    ``AuthenticationMiddleware`` so its ``request.user`` wins for satchel's callers."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: GetResponse) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self.is_async:
            return self.__acall__(request)
        try:
            found = resolve(request)
        except StoreUnavailable as exc:
            return to_django(get_sync().error_response(exc))
        attach(request, found)
        return finish(found, self.get_response(request))

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        try:
            found = await aresolve(request)
        except StoreUnavailable as exc:
            return to_django(get_sync().error_response(exc))
        attach(request, found)
        response = self.get_response(request)
        assert isinstance(response, Awaitable)
        return finish(found, await response)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        """A :class:`SatchelError` raised by a view is its JSON response."""
        if not isinstance(exception, SatchelError):
            return None
        found: Resolution | None = getattr(request, "satchel", None)
        transport = found.transport if found is not None else None
        return to_django(get_sync().error_response(exception, transport))
