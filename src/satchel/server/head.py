"""``HEAD`` answered like ``GET`` without the body (RFC 9110 §9.3.2), for every route.

FastAPI routes answer only the methods they declare, so ``HEAD /`` (what uptime monitors,
link checkers and ``curl -I`` send) got 405. Declaring ``HEAD`` beside every ``GET`` of the
pages, the API, the docs and the static files would be easy to forget on the next route;
this middleware runs a ``HEAD`` request as the ``GET`` of the same URL and sends its status
and headers (``Content-Length`` included, as the RFC asks) with no body. A path without a
``GET`` still answers 405.
"""

from __future__ import annotations

from satchel.integrations.scope import ASGIApp, Message, Receive, Scope, Send


class HeadAsGetMiddleware:
    """Serve ``HEAD`` requests as ``GET`` ones whose body is dropped."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "HEAD":
            await self.app(scope, receive, send)
            return
        finished = False

        async def send_headers_only(message: Message) -> None:
            nonlocal finished
            if message["type"] != "http.response.body":
                await send(message)
                return
            if finished or message.get("more_body", False):
                return  # the body of a GET; a HEAD answer has none
            finished = True
            await send({"type": "http.response.body", "body": b"", "more_body": False})

        await self.app({**scope, "method": "GET"}, receive, send_headers_only)
