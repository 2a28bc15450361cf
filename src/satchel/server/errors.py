"""Error plumbing of the reference server: the request-body cap and documented error shapes.

Every error the server answers with is ``{"error": code, "detail": text}`` JSON; the handlers
themselves live in :func:`satchel.integrations.fastapi.satchel_exception_handlers`.
"""

from __future__ import annotations

from typing import Any

from satchel.integrations.asgi import send_json_error
from satchel.integrations.scope import ASGIApp, Message, Receive, Scope, Send

#: The OpenAPI schema of an error body.
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {
        "error": {"type": "string", "description": "Stable machine-readable code."},
        "detail": {"type": "string", "description": "Human-readable explanation."},
    },
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries documenting the error statuses a route may answer with."""
    descriptions = {
        400: "Malformed request",
        401: "Not authenticated",
        403: "Forbidden",
        404: "Not found",
        413: "Request body or password too large",
        415: "Unsupported media type",
        422: "Invalid request fields",
        429: "Too many attempts (see Retry-After)",
        503: "Store unavailable (see Retry-After)",
    }
    return {
        status: {
            "description": descriptions.get(status, "Error"),
            "content": {"application/json": {"schema": ERROR_SCHEMA}},
        }
        for status in statuses
    }


class _BodyTooLarge(Exception):
    pass


class BodyLimitMiddleware:
    """Answer 413 to any HTTP request whose body exceeds ``max_bytes``.

    A declared ``Content-Length`` over the cap is refused before reading anything; a chunked
    body is read up to the cap and replayed to the app, so no parser downstream ever sees
    more than ``max_bytes``. Buffering is fine at this size and keeps the check independent
    of how (and whether) the route parses the body.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        if declared == 0 or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        try:
            messages = await self._read(receive)
        except _BodyTooLarge:
            await self._refuse(send)
            return
        await self.app(scope, _replay(messages, receive), send)

    async def _read(self, receive: Receive) -> list[Message]:
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return messages  # disconnect: let the app see it
            size += len(message.get("body", b""))
            if size > self.max_bytes:
                raise _BodyTooLarge
            if not message.get("more_body", False):
                return messages

    async def _refuse(self, send: Send) -> None:
        await send_json_error(
            send,
            413,
            "payload_too_large",
            f"The request body exceeds {self.max_bytes} bytes.",
            [("connection", "close")],
        )


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
