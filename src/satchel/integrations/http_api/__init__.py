"""The ``/auth/*`` JSON API without a framework: requests, responses, errors and the route
handlers every framework integration serves the same way.

- :mod:`.messages` — :class:`ApiRequest`, :class:`ApiResponse`, the body rules (JSON or
  form, field bounds, the ``csrf_token`` field) and ``{"error": code, "detail": text}``;
- :mod:`.routes` — one handler per route, :data:`ROUTES` (method, path, handler) and the
  dispatchers :func:`handle` / :func:`handle_sync`; :func:`check_csrf` for an application's
  own unsafe cookie routes.
"""

from satchel.integrations.http_api.messages import (
    NO_STORE,
    ApiRequest,
    ApiResponse,
    error_response,
    http_error_response,
    internal_error_response,
    satchel_error_response,
)
from satchel.integrations.http_api.routes import (
    ROUTES,
    Route,
    check_csrf,
    cookie_names,
    handle,
    handle_sync,
)

__all__ = [
    "NO_STORE",
    "ROUTES",
    "ApiRequest",
    "ApiResponse",
    "Route",
    "check_csrf",
    "cookie_names",
    "error_response",
    "handle",
    "handle_sync",
    "http_error_response",
    "internal_error_response",
    "satchel_error_response",
]
