"""CORS for browser apps on other origins (a single-page app calling the auth server).

Pure ASGI, strict on purpose; turned on by ``SATCHEL_CORS_ORIGINS`` (none by default):

- only the origins listed, compared exactly (scheme, host and port) — never ``*``, never
  ``null``, never a suffix match, and an unlisted origin is never echoed back;
- with credentials (``Access-Control-Allow-Credentials: true``), so cookie and
  ``Authorization`` requests work; a listed origin is therefore also a trusted origin for
  the CSRF checks (:func:`satchel.config.build.build_auth` adds them);
- a preflight (``OPTIONS`` with ``Access-Control-Request-Method``) from a listed origin is
  answered here with 204 and the allowed methods and request headers; from any other origin
  with 403 ``cors_origin_denied`` and no CORS header;
- every response says ``Vary: Origin``, so a shared cache never hands one origin's answer
  to another.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from satchel.errors import ConfigurationError
from satchel.integrations.asgi import send_json_error
from satchel.integrations.scope import ASGIApp, Message, Receive, Scope, Send
from satchel.transports.base import header_values
from satchel.transports.csrf import parse_origin

#: Methods a listed origin may use (every method an API route may declare).
ALLOW_METHODS: Final = "GET, HEAD, POST, PUT, PATCH, DELETE"
#: Request headers a listed origin may send besides the CORS-safelisted ones.
ALLOW_HEADERS: Final = "Authorization, Content-Type, DPoP, X-CSRF-Token"
#: Response headers the page may read besides the safelisted ones.
EXPOSE_HEADERS: Final = "DPoP-Nonce, Retry-After, WWW-Authenticate"
#: Seconds a browser may cache a preflight answer.
MAX_AGE: Final = 600
_PREFLIGHT_VARY: Final = b"Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


class CORSMiddleware:
    """Answer CORS for exactly the ``origins`` given (``https://host[:port]`` each)."""

    def __init__(self, app: ASGIApp, *, origins: Iterable[str]) -> None:
        allowed: set[tuple[str, str, int]] = set()
        for origin in origins:
            parsed = parse_origin(origin.rstrip("/").lower())
            if parsed is None:
                raise ConfigurationError("Each CORS origin must look like https://host[:port].")
            allowed.add(parsed)
        if not allowed:
            raise ConfigurationError("CORSMiddleware needs at least one origin.")
        self.app = app
        self.allowed = frozenset(allowed)

    def __repr__(self) -> str:
        return f"CORSMiddleware(origins={len(self.allowed)})"

    def _listed(self, scope: Scope) -> bytes | None:
        """The request's ``Origin`` when it is one of the listed origins, else None."""
        values = header_values(scope.get("headers") or (), b"origin")
        if len(values) != 1:
            return None
        try:
            parsed = parse_origin(values[0].decode("ascii"))
        except UnicodeDecodeError:
            return None
        return values[0] if parsed is not None and parsed in self.allowed else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = self._listed(scope)
        headers = scope.get("headers") or ()
        if scope.get("method") == "OPTIONS" and header_values(
            headers, b"access-control-request-method"
        ):
            await self._preflight(origin, send)
            return

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = [(b"vary", b"Origin")]
                if origin is not None:
                    extra += [
                        (b"access-control-allow-origin", origin),
                        (b"access-control-allow-credentials", b"true"),
                        (b"access-control-expose-headers", EXPOSE_HEADERS.encode()),
                    ]
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_cors)

    async def _preflight(self, origin: bytes | None, send: Send) -> None:
        if origin is None:
            await send_json_error(
                send,
                403,
                "cors_origin_denied",
                "This origin may not call this server from a browser (SATCHEL_CORS_ORIGINS).",
                [("vary", _PREFLIGHT_VARY.decode())],
            )
            return
        await send(
            {
                "type": "http.response.start",
                "status": 204,
                "headers": [
                    (b"access-control-allow-origin", origin),
                    (b"access-control-allow-credentials", b"true"),
                    (b"access-control-allow-methods", ALLOW_METHODS.encode()),
                    (b"access-control-allow-headers", ALLOW_HEADERS.encode()),
                    (b"access-control-max-age", str(MAX_AGE).encode()),
                    (b"vary", _PREFLIGHT_VARY),
                    (b"cache-control", b"no-store"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": b"", "more_body": False})
