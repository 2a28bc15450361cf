"""Error plumbing of the reference server: the request-body cap.

Every error the server answers with is ``{"error": code, "detail": text}`` JSON; the handlers
live in :func:`satchel.integrations.fastapi.satchel_exception_handlers` and the documented
error shapes in :func:`satchel.integrations.fastapi.openapi.error_responses` (also importable
from here, its old home).
"""

from __future__ import annotations

from satchel.integrations.asgi import send_json_error
from satchel.integrations.fastapi.openapi import ERROR_SCHEMA, error_responses
from satchel.integrations.scope import ASGIApp, Message, Receive, Scope, Send


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


__all__ = ["ERROR_SCHEMA", "BodyLimitMiddleware", "error_responses"]
