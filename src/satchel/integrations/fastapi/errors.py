"""Every error of a FastAPI app as ``{"error": code, "detail": text}`` JSON.

:class:`SatchelError` keeps its status (plus ``Retry-After`` for 429/503 and the transports'
challenge headers for 401); validation errors give 422 (400 for malformed JSON); anything
unexpected gives 500 ``internal_error`` with the trace in the server log only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from http import HTTPStatus
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from satchel.auth import Auth
from satchel.errors import AuthenticationError, SatchelError, StoreUnavailable, Throttled
from satchel.integrations.asgi import challenge_headers
from satchel.integrations.http_api.messages import CODES_BY_STATUS, describe_errors
from satchel.integrations.scope import SCOPE_AUTH, SCOPE_TRANSPORT, STATE_KEY

logger = logging.getLogger("satchel.integrations")

_CODES_BY_STATUS: Final[Mapping[int, str]] = CODES_BY_STATUS


class SatchelHTTPException(StarletteHTTPException):
    """An HTTP error carrying the :class:`SatchelError` it stands for.

    Raised by the dependencies so that FastAPI's own handler still answers with the right
    status and headers in apps that did not install :func:`satchel_exception_handlers`.
    """

    def __init__(self, error: SatchelError, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(status_code=error.status, detail=error.detail, headers=dict(headers))
        self.error = error


def error_headers(conn: HTTPConnection, error: SatchelError) -> list[tuple[str, str]]:
    """Extra response headers an error needs: challenges for 401, Retry-After for 429/503."""
    own = error.response_headers()
    if own:
        return own
    if isinstance(error, Throttled | StoreUnavailable):
        return [("Retry-After", str(error.retry_after))]
    if isinstance(error, AuthenticationError):
        # The app's state may legitimately hold no Auth (an app without satchel's setup).
        auth = conn.scope.get(SCOPE_AUTH) or getattr(conn.app.state, STATE_KEY, None)
        if isinstance(auth, Auth):
            return challenge_headers(auth, conn.scope.get(SCOPE_TRANSPORT), error)
    return []


def error_response(
    status: int,
    code: str,
    detail: str,
    headers: Iterable[tuple[str, str]] = (),
    fields: Mapping[str, Any] | None = None,
) -> JSONResponse:
    """The ``{"error": code, "detail": text}`` response every error uses (``fields``: what
    an error adds, such as the ``mfa_token`` of ``mfa_required``)."""
    response = JSONResponse({**(fields or {}), "error": code, "detail": detail}, status_code=status)
    response.headers["Cache-Control"] = "no-store"
    for name, value in headers:
        response.headers.append(name, value)
    return response


def describe_validation(exc: RequestValidationError) -> str:
    """A short account of what was wrong with the request, without echoing any input."""
    return describe_errors(exc.errors())


async def _satchel_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, SatchelError)
    return error_response(
        exc.status, exc.code, exc.detail, error_headers(request, exc), exc.body_fields()
    )


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc, SatchelHTTPException):
        error = exc.error
        headers = (exc.headers or {}).items()
        return error_response(error.status, error.code, error.detail, headers, error.body_fields())
    status = exc.status_code
    code = _CODES_BY_STATUS.get(status, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    return error_response(status, code, detail, (exc.headers or {}).items())


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    malformed = any(error.get("type") == "json_invalid" for error in exc.errors())
    if malformed:
        return error_response(400, "invalid_request", "The request body is not valid JSON.")
    return error_response(422, "invalid_request", describe_validation(exc))


async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
    # The trace goes to the server log only; the client learns nothing about the failure.
    logger.error(
        "unhandled %s on %s %s", type(exc).__name__, request.method, request.url.path, exc_info=exc
    )
    return error_response(500, "internal_error", "Internal server error.")


#: Set on ``app.state`` by :func:`satchel_exception_handlers` (other handlers, such as the
#: reference server's HTML error pages, may wrap them later and fall back to them).
_MARK: Final = "satchel_json_errors"


def renders_validation_errors(app: FastAPI) -> bool:
    """True when ``app``'s API errors are satchel's ``{"error", "detail"}`` bodies."""
    return getattr(app.state, _MARK, False) is True


def satchel_exception_handlers(app: FastAPI) -> None:
    """Render every error of ``app`` as ``{"error": code, "detail": text}`` JSON.

    :class:`SatchelError` keeps its status (plus ``Retry-After`` for 429/503 and the
    transports' challenge headers for 401); validation errors give 422 (400 for malformed
    JSON); anything unexpected gives 500 ``internal_error`` with the trace logged server-side.
    """
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[JSONResponse]]] = {
        SatchelError: _satchel_error,
        StarletteHTTPException: _http_error,
        RequestValidationError: _validation_error,
        Exception: _internal_error,
    }
    for exc_class, handler in handlers.items():
        app.add_exception_handler(exc_class, handler)
    setattr(app.state, _MARK, True)
