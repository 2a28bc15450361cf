"""Error pages for browsers: the app's error handlers answer a page request with HTML.

Requests that do not ask for HTML, and every path of the JSON API, keep the JSON errors of
the handler that was installed before.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from http import HTTPStatus

from fastapi import FastAPI, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request

from satchel.errors import SatchelError, StoreUnavailable, Throttled
from satchel.server.pages.access import wants_html
from satchel.server.pages.render import error_page

logger = logging.getLogger("satchel.server")

Handler = Callable[[Request, Exception], Awaitable[Response]]


def _html_first(fallback: Handler | None) -> Handler:
    async def handle(request: Request, exc: Exception) -> Response:
        if not wants_html(request) and fallback is not None:
            return await fallback(request, exc)
        if isinstance(exc, StarletteHTTPException):
            headers = [(k, v) for k, v in (exc.headers or {}).items() if k.lower() == "allow"]
            status = exc.status_code if 400 <= exc.status_code < 600 else 500
            return error_page(status, headers=headers)
        if isinstance(exc, StoreUnavailable | Throttled):
            return error_page(exc.status, headers=[("Retry-After", str(exc.retry_after))])
        if isinstance(exc, SatchelError):
            status = exc.status if exc.status in HTTPStatus._value2member_map_ else 400
            return error_page(status)
        if isinstance(exc, RequestValidationError):
            return error_page(400)
        # Anything else is a bug: the trace goes to the log, the browser learns nothing.
        logger.error(
            "unhandled %s on %s %s",
            type(exc).__name__,
            request.method,
            request.url.path,
            exc_info=exc,
        )
        return error_page(500)

    return handle


def html_error_handlers(app: FastAPI) -> None:
    """Wrap ``app``'s error handlers so that browsers asking for a page get an HTML page."""
    for exc_class in (StarletteHTTPException, SatchelError, RequestValidationError, Exception):
        fallback = app.exception_handlers.get(exc_class)
        app.add_exception_handler(exc_class, _html_first(fallback))  # type: ignore[arg-type]
