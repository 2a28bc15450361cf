"""JSON responses that keep every header they are given, and every error as
``{"error": code, "detail": text}`` (the shared mapping of
:mod:`satchel.integrations.http_api`).

Litestar's :class:`~litestar.Response` holds its headers in a dict, which cannot carry the two
``Set-Cookie`` headers of a login (access and refresh cookie); :class:`JSONResponse` renders
to an :class:`~litestar.response.base.ASGIResponse` with the header pairs as given.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from litestar import Request, Response
from litestar.exceptions import HTTPException
from litestar.response.base import ASGIResponse

from satchel.auth import Auth
from satchel.errors import SatchelError, StoreUnavailable
from satchel.integrations.http_api import (
    ApiResponse,
    http_error_response,
    internal_error_response,
    satchel_error_response,
)
from satchel.integrations.scope import SCOPE_AUTH, SCOPE_TRANSPORT, STATE_KEY

if TYPE_CHECKING:
    from litestar.background_tasks import BackgroundTask, BackgroundTasks
    from litestar.datastructures import Cookie
    from litestar.enums import MediaType
    from litestar.types import ExceptionHandlersMap

logger = logging.getLogger("satchel.integrations")


class JSONResponse(Response[Any]):
    """A JSON body (None: no body) with an ordered list of header pairs, duplicates kept."""

    def __init__(
        self,
        content: object = None,
        *,
        status_code: int = 200,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(content=None, status_code=status_code)
        self.payload = content
        self.pairs: list[tuple[str, str]] = []
        present: set[str] = set()
        for name, value in headers:
            lower = name.lower()
            # A Cache-Control given first (no-store) wins over a later one.
            if lower == "cache-control" and lower in present:
                continue
            present.add(lower)
            self.pairs.append((lower, value))

    def to_asgi_response(
        self,
        app: Any,
        request: Request[Any, Any, Any],
        *,
        background: BackgroundTask | BackgroundTasks | None = None,
        cookies: Iterable[Cookie] | None = None,
        encoded_headers: Iterable[tuple[bytes, bytes]] | None = None,
        headers: dict[str, str] | None = None,
        is_head_response: bool = False,
        media_type: MediaType | str | None = None,
        status_code: int | None = None,
        type_encoders: Any = None,
    ) -> ASGIResponse:
        pairs = list(self.pairs)
        for name, value in (headers or {}).items():
            if name.lower() not in {n for n, _ in pairs}:
                pairs.append((name.lower(), value))
        body = b""
        if self.payload is not None and self.status_code != 204:
            body = json.dumps(self.payload, separators=(",", ":")).encode()
        return ASGIResponse(
            background=self.background or background,
            body=body,
            cookies=cookies,
            headers=pairs,
            is_head_response=is_head_response,
            media_type="application/json",
            status_code=self.status_code,
        )


def _auth_in(request: Request[Any, Any, Any]) -> Auth | None:
    scope: Any = request.scope
    auth = scope.get(SCOPE_AUTH)
    if auth is None:
        auth = request.app.state.get(STATE_KEY)
    return auth if isinstance(auth, Auth) else None


def _written(response: ApiResponse) -> JSONResponse:
    return JSONResponse(response.body, status_code=response.status, headers=response.headers)


def satchel_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """A :class:`SatchelError` with its status and code (challenges for 401, Retry-After)."""
    assert isinstance(exc, SatchelError)
    if exc.status >= 500 and not isinstance(exc, StoreUnavailable):
        logger.error("%s on %s %s", type(exc).__name__, request.method, request.url.path)
    scope: Any = request.scope
    return _written(satchel_error_response(_auth_in(request), exc, scope.get(SCOPE_TRANSPORT)))


def http_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Litestar's own HTTP errors (404, 405, 413, validation...) in the same shape.

    The detail is Litestar's short message; its ``extra`` (which may echo the input) is
    never sent.
    """
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    if status >= 500:
        return internal_error(request, exc)
    detail = exc.detail if isinstance(exc.detail, str) and exc.detail else None
    response = http_error_response(status, detail)
    response.headers.extend((exc.headers or {}).items())
    return _written(response)


def internal_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything unexpected: 500, the trace in the server log only."""
    where = f"{request.method} {request.url.path}"
    return _written(internal_error_response(exc, where))


def exception_handlers() -> ExceptionHandlersMap:
    """Handlers rendering every error of an app as ``{"error": code, "detail": text}``."""
    return {
        SatchelError: satchel_error,
        HTTPException: http_error,
        Exception: internal_error,
    }
