"""Pure ASGI middleware that authenticates every HTTP and WebSocket request.

It needs no web framework: it reads ``scope["headers"]`` and writes its findings into the
scope, where the framework glue (:mod:`satchel.integrations.fastapi`) or any handler can read
them:

``scope["satchel.auth"]``
    the :class:`satchel.Auth` serving the request.
``scope["satchel.identity"]``
    the :class:`satchel.Identity`, or None for an anonymous request or a rejected credential.
``scope["satchel.transport"]``
    name of the transport the credential came on (``"cookie"``/``"bearer"``), or None.
``scope["satchel.auth_error"]``
    the :class:`satchel.errors.SatchelError` when a presented credential was rejected, else None.

A request with no usable access cookie but a refresh cookie is refreshed in place
(:func:`satchel.integrations.refresh.refresh_in_place`).

Authentication is eager (one strategy call per request that carries a credential) because
almost every route behind an auth server wants the identity, and a lazy design would need
a request object per request. A store outage while verifying answers 503 at once: the
request must fail closed, and it must not look like a logout (no 401, no Set-Cookie).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from satchel.auth import Auth
from satchel.dbsc.enforce import require_bound
from satchel.dpop.binding import bound_elsewhere
from satchel.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidCredential,
    MissingCredential,
    SatchelError,
    StoreUnavailable,
)
from satchel.identity import Identity
from satchel.integrations.dpop import audited, check_scope, proof_due
from satchel.integrations.refresh import refresh_in_place
from satchel.integrations.scope import (
    SCOPE_AUTH,
    SCOPE_ERROR,
    SCOPE_IDENTITY,
    SCOPE_TRANSPORT,
    STATE_KEY,
    ASGIApp,
    Message,
    Receive,
    Scope,
    Send,
)
from satchel.transports.base import HeaderPairs

logger = logging.getLogger("satchel.integrations")

# WebSocket close code 1013: "try again later".
_WS_TRY_AGAIN = 1013
_WS_POLICY_VIOLATION = 1008


# Strategies' caches hand back the same Identity object for a repeated credential; keeping
# its copy that names the transport makes a warm request allocate no Identity at all. Keyed by
# id() with the original held in the value, so an id cannot be reused while its entry exists;
# the entry is only ever looked up with an identity the strategy has just accepted, so it
# never outlives a revocation. Bounded: cleared wholesale when full.
_TRANSPORTED: dict[str, dict[int, tuple[Identity, Identity]]] = {}
_TRANSPORTED_MAX = 4096


def with_transport(identity: Identity, transport: str) -> Identity:
    """``identity.with_transport(transport)``, shared between requests for a cached identity."""
    memo = _TRANSPORTED.get(transport)
    if memo is None:
        memo = _TRANSPORTED[transport] = {}
    entry = memo.get(id(identity))
    if entry is not None and entry[0] is identity:
        return entry[1]
    named = identity.with_transport(transport)
    if len(memo) >= _TRANSPORTED_MAX:
        memo.clear()
    memo[id(identity)] = (identity, named)
    return named


async def resolve_scope(auth: Auth, scope: Scope) -> Identity | None:
    """Authenticate the request in ``scope``, record the outcome in it and return the identity.

    Raises :class:`StoreUnavailable` (the caller answers 503); every other
    :class:`SatchelError` becomes ``identity=None`` with the error recorded.
    """
    scope[SCOPE_AUTH] = auth
    identity: Identity | None = None
    name: str | None = None
    error: SatchelError | None = None
    try:
        headers = scope.get("headers") or ()
        found = auth.find_credential(headers)
        if found is not None:
            name = found[0].name
            verified = await auth.strategy.authenticate(found[1])
            if name == "bearer":
                if verified.jkt is not None or proof_due(auth, headers):
                    await check_scope(auth, verified, found[1], scope)  # DPoP (RFC 9449)
            elif verified.jkt is not None:  # a DPoP-bound token copied into a cookie
                raise await audited(auth, verified, bound_elsewhere())
            if verified.device_key is not None:  # a DBSC session: its bound cookie too
                require_bound(auth.dbsc, verified, name, headers)
            identity = with_transport(verified, name)
    except MissingCredential:
        pass
    except StoreUnavailable:
        raise
    except SatchelError as exc:
        error = exc
    scope[SCOPE_IDENTITY] = identity
    scope[SCOPE_TRANSPORT] = name
    scope[SCOPE_ERROR] = error
    return identity


def as_auth_failure(error: SatchelError | None) -> AuthenticationError:
    """The 401 to answer for a request whose credential was absent or rejected."""
    if error is None:
        return MissingCredential("Authentication required.")
    if isinstance(error, AuthenticationError):
        return error
    # e.g. a corrupt stored record: the credential cannot be honoured, nothing more to say.
    return InvalidCredential("The credential is not valid.")


def challenge_headers(
    auth: Auth, transport: str | None, error: AuthenticationError | None
) -> HeaderPairs:
    """Headers for a 401: those of the transport that carried the rejected credential, or of
    every configured transport when none was presented."""
    if transport is not None and transport in auth.transport_by_name:
        return auth.transport_by_name[transport].challenge_headers(error)
    headers: HeaderPairs = []
    for candidate in auth.transports:
        headers.extend(candidate.challenge_headers(error))
    return headers


def json_body(status: int, code: str, detail: str) -> bytes:
    """The ``{"error": code, "detail": text}`` body every satchel error response uses."""
    return json.dumps({"error": code, "detail": detail}, separators=(",", ":")).encode()


async def send_json_error(
    send: Send, status: int, code: str, detail: str, headers: Sequence[tuple[str, str]] = ()
) -> None:
    """Send a complete JSON error response without any framework."""
    body = json_body(status, code, detail)
    raw = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
    ]
    raw.extend((name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers)
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


class AuthMiddleware:
    """Authenticates every ``http``/``websocket`` request of the wrapped ASGI app.

    With ``required=True`` requests without a valid identity get a 401 JSON error (with the
    transports' challenge headers) instead of reaching the app; otherwise the app decides.
    ``auth=None`` takes the :class:`Auth` from ``app.state.satchel_auth`` of the Starlette
    app in the scope, for apps that build it in their lifespan.
    """

    def __init__(self, app: ASGIApp, auth: Auth | None, *, required: bool = False) -> None:
        self.app = app
        self.auth = auth
        self.required = required

    def _auth_for(self, scope: Scope) -> Auth:
        if self.auth is not None:
            return self.auth
        state = getattr(scope.get("app"), "state", None)
        # Starlette's State keeps its attributes in the ``_state`` dict; reading it directly
        # skips State.__getattr__ (a Python call, a third of this middleware's own cost).
        values = getattr(state, "_state", None)
        if isinstance(values, dict):
            auth = values.get(STATE_KEY)
        else:
            auth = getattr(state, STATE_KEY, None)
        if not isinstance(auth, Auth):
            raise ConfigurationError("AuthMiddleware has no Auth (app.state.satchel_auth unset).")
        return auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http" and kind != "websocket":
            await self.app(scope, receive, send)
            return
        auth = self.auth
        if auth is None:
            auth = self._auth_for(scope)
        refreshed: HeaderPairs | None = None
        try:
            identity = await resolve_scope(auth, scope)
            if identity is None and kind == "http":
                refreshed = await refresh_in_place(auth, scope)
        except StoreUnavailable as exc:
            logger.warning("store unavailable while verifying a credential: %s", exc.detail)
            if kind == "websocket":
                await send({"type": "websocket.close", "code": _WS_TRY_AGAIN})
                return
            await send_json_error(
                send, exc.status, exc.code, exc.detail, [("retry-after", str(exc.retry_after))]
            )
            return
        if identity is not None:  # the common case: nothing left to decide here
            await self.app(scope, receive, send)
            return
        if self.required and scope[SCOPE_IDENTITY] is None:
            error = as_auth_failure(scope[SCOPE_ERROR])
            if kind == "websocket":
                await send({"type": "websocket.close", "code": _WS_POLICY_VIOLATION})
                return
            headers = challenge_headers(auth, scope[SCOPE_TRANSPORT], error)
            await send_json_error(send, error.status, error.code, error.detail, headers)
            return
        if refreshed:
            send = _adding_headers(send, refreshed)
        await self.app(scope, receive, send)


def _adding_headers(send: Send, headers: HeaderPairs) -> Send:
    """``send`` that adds ``headers`` to the response start (no duplicate Cache-Control)."""
    extra = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]

    async def wrapped(message: Message) -> None:
        if message["type"] == "http.response.start":
            present = {name.lower() for name, _ in message.get("headers") or ()}
            raw = list(message.get("headers") or ())
            raw.extend(h for h in extra if h[0] != b"cache-control" or h[0] not in present)
            message["headers"] = raw
        await send(message)

    return wrapped


__all__ = [
    "SCOPE_AUTH",
    "SCOPE_ERROR",
    "SCOPE_IDENTITY",
    "SCOPE_TRANSPORT",
    "STATE_KEY",
    "ASGIApp",
    "AuthMiddleware",
    "Message",
    "Receive",
    "Scope",
    "Send",
    "as_auth_failure",
    "challenge_headers",
    "json_body",
    "resolve_scope",
    "send_json_error",
    "with_transport",
]
