"""The ``/auth/*`` JSON API as framework-free handlers: the same routes, bodies and errors as
the FastAPI integration, for any framework that can build an :class:`ApiRequest`.

Each handler takes the :class:`~satchel.Auth`, the request and the trusted proxies and
returns an :class:`ApiResponse` or raises a :class:`SatchelError`; :func:`handle` turns the
error into the JSON response. Handlers that need the store are coroutines (a synchronous
framework runs them on its private loop, :class:`satchel.integrations.sync.SyncAuth`); the
two that need none (``GET /auth/me``, ``GET /auth/csrf``) are plain functions, so they cost
no hop to that loop. :data:`ROUTES` lists them all with their methods and paths.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from satchel.auth import Auth, LoginResult
from satchel.dbsc.binding import DeviceBinding
from satchel.dbsc.enforce import offer_binding
from satchel.dbsc.record import bound_key
from satchel.errors import (
    ConfigurationError,
    InvalidInput,
    MissingCredential,
    NotFound,
    NotSupported,
    SatchelError,
)
from satchel.identity import Identity
from satchel.integrations.asgi import as_auth_failure
from satchel.integrations.http_api.messages import (
    FORM_TYPES,
    NO_STORE,
    ApiRequest,
    ApiResponse,
    PasswordChangeBody,
    form_fields,
    internal_error_response,
    is_json,
    login_context,
    read_json_body,
    read_login_body,
    satchel_error_response,
    validate,
)
from satchel.integrations.http_api.token import (
    NOT_A_FORM,
    PARAMETERS,
    OAuthError,
    as_oauth_error,
    check_client,
    grant,
    proved_key,
    token_body,
    token_parameters,
)
from satchel.integrations.refresh import cookie_transport, presented_token, rotate
from satchel.keys.manager import jwks_cache_control
from satchel.stores.base import SessionRecord
from satchel.transports.base import RawHeaders
from satchel.transports.client_ip import IPNetwork
from satchel.transports.csrf import FORM_FIELD, binding_for, needs_check

MAX_SESSION_ID: Final = 256

Proxies = Sequence[IPNetwork]
SyncHandler = Callable[[Auth, ApiRequest, Proxies], ApiResponse]
AsyncHandler = Callable[[Auth, ApiRequest, Proxies], Awaitable[ApiResponse]]


# --- shared checks ----------------------------------------------------------------------------


def cookie_names(auth: Auth) -> list[bytes]:
    """The names of the cookies that make a request a cookie-session request."""
    cookie = cookie_transport(auth)
    if cookie is None:
        return []
    return [cookie.cookie_name.encode("ascii"), cookie.refresh_name.encode("ascii")]


def check_csrf(auth: Auth, request: ApiRequest) -> None:
    """Raise :class:`~satchel.errors.CSRFError` (403) unless this unsafe request may act on
    the caller's cookie session; requests without our cookies (bearer clients) pass.

    The same check as the FastAPI ``check_csrf`` dependency: the ``csrf_token`` form field or
    the ``X-CSRF-Token`` header, ``Origin`` and ``Sec-Fetch-Site``.
    """
    csrf = auth.csrf
    if csrf is None or not needs_check(request.method, request.headers, cookie_names(auth)):
        return
    identity = request.identity
    form_token: str | None = None
    if request.content_type in FORM_TYPES:
        form_token = form_fields(request, (FORM_FIELD,)).get(FORM_FIELD)
    csrf.check(
        request.method,
        request.headers,
        own_origin=request.origin,
        binding=binding_for(identity) if identity is not None else None,
        form_token=form_token,
    )


def require_identity(request: ApiRequest) -> Identity:
    """The caller's identity; the 401 the request earned when there is none."""
    if request.identity is None:
        raise as_auth_failure(request.error)
    return request.identity


def identity_response(identity: Identity, headers: Sequence[tuple[str, str]]) -> ApiResponse:
    """200 with the identity's public view."""
    return ApiResponse(200, identity.to_public_dict(), list(headers))


def token_response(auth: Auth, result: LoginResult) -> ApiResponse:
    """An OAuth 2.0 token response (RFC 6749 §5.1) handing ``result`` to an API client."""
    return ApiResponse(200, token_body(result, auth.clock()), list(NO_STORE))


def session_view(record: SessionRecord, current: str | None) -> dict[str, object]:
    """``record`` as the API shows it; ``current`` marks the caller's own session."""
    return {
        "id": record.id,
        "created": int(record.created_at),
        "last_seen": int(record.last_seen_at),
        "expires": int(record.expires_at()),
        "ip": record.ip,
        "user_agent": record.user_agent,
        "current": record.id == current,
        "device_key": device_key_view(record),
    }


def device_key_view(record: SessionRecord) -> dict[str, object] | None:
    """The DBSC device key of ``record`` as the API shows it (None: not bound)."""
    key = bound_key(record)
    if key is None:
        return None
    return {"alg": key.alg, "thumbprint": key.thumbprint, "registered": int(key.registered_at)}


# --- the routes -------------------------------------------------------------------------------


async def login(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``POST /auth/login``: check the password and set the credential cookie."""
    if "cookie" not in auth.transport_by_name:
        raise NotSupported("Cookie login is not enabled here; use POST /auth/token.")
    body, form_token = read_login_body(request)
    csrf = auth.csrf
    if csrf is not None:  # always, with the cookie transport (Auth refuses it otherwise)
        # Login CSRF: checked before the password, so a forged post learns nothing.
        csrf.check(
            request.method,
            request.headers,
            own_origin=request.origin,
            binding=csrf.login_binding(request.headers),
            form_token=form_token,
        )
    ctx = login_context(request, proxies, body.remember)
    result = await auth.login(body.username, body.password, ctx)
    offer = await offer_binding(auth.dbsc, result.identity)  # DBSC, docs/dbsc.md
    headers = [*auth.login_headers(result, "cookie"), *offer, ("cache-control", "no-store")]
    return identity_response(result.identity.with_transport("cookie"), headers)


async def token(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``POST /auth/token``: the OAuth 2.0 token endpoint (:mod:`.token`); no cookie."""
    try:
        if request.content_type not in FORM_TYPES:
            raise OAuthError(400, "invalid_request", NOT_A_FORM)
        try:
            form = form_fields(request, PARAMETERS, files=True)
        except InvalidInput as exc:  # too many fields
            raise OAuthError(400, "invalid_request", exc.detail) from None
        params = token_parameters(form, request.repeated)
        realm = getattr(getattr(auth, "settings", None), "issuer", None) or "satchel"
        authorizations = [v.decode("latin-1") for k, v in request.headers if k == b"authorization"]
        check_client(authorizations, params, realm)
        jkt = await proved_key(  # DPoP (RFC 9449)
            auth,
            {
                "method": request.method,
                "path": request.path,
                "headers": request.headers,
                "scheme": request.scheme,
            },
            request.own_origin,
        )
        try:
            ctx = replace(login_context(request, proxies), dpop_jkt=jkt)
            result = await grant(auth, params, ctx)
        except SatchelError as exc:
            raise as_oauth_error(exc) from None
    except OAuthError as exc:
        return ApiResponse(exc.status, exc.body(), [*NO_STORE, *exc.headers])
    return token_response(auth, result)


def me(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``GET /auth/me``: the caller's identity."""
    return identity_response(require_identity(request), [("cache-control", "no-store")])


async def refresh(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``POST /auth/refresh``: a body token gets a token response, the cookie new cookies."""
    check_csrf(auth, request)
    ctype = request.content_type
    value: object = None
    if is_json(ctype):
        value = read_json_body(request).get("refresh_token")
    elif ctype in FORM_TYPES:
        value = form_fields(request, ("refresh_token",)).get("refresh_token")
    presented, via_cookie = presented_token(auth, request.headers, value)
    rotated = await rotate(auth, presented, login_context(request, proxies), via_cookie=via_cookie)
    if not via_cookie:
        return token_response(auth, rotated.result)
    response = identity_response(rotated.result.identity.with_transport("cookie"), [])
    return response.add(rotated.headers).add(NO_STORE)


async def logout(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``POST /auth/logout``: idempotent; without a valid credential it only clears the cookie."""
    check_csrf(auth, request)
    if request.identity is not None:
        await auth.logout(request.identity)
    response = ApiResponse(204)
    if "cookie" in auth.transport_by_name:
        response.add(auth.logout_headers("cookie"))
    return response.add(NO_STORE)


async def list_sessions(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``GET /auth/sessions``: the caller's live sessions, oldest first."""
    identity = require_identity(request)
    records = await auth.list_sessions(identity.user_id)
    body = [session_view(record, identity.session_id) for record in records]
    return ApiResponse(200, body, [("cache-control", "no-store")])


async def revoke_session(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``DELETE /auth/sessions/{session_id}``: 404 unless the session is the caller's own."""
    check_csrf(auth, request)  # first, as the FastAPI route's dependency
    identity = require_identity(request)
    session_id = request.params.get("session_id", "")
    if auth.keeps_sessions and len(session_id) > MAX_SESSION_ID:
        raise NotFound("No such session.")  # the answer for any unknown id
    await auth.revoke_session(session_id, user_id=identity.user_id, actor=identity)
    response = ApiResponse(204)
    if session_id == identity.session_id and identity.transport == "cookie":
        response.add(auth.logout_headers("cookie"))
    return response.add(NO_STORE)


async def revoke_others(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``POST /auth/sessions/revoke-others``: every other session of the caller ends."""
    check_csrf(auth, request)  # first, as the FastAPI route's dependency
    identity = require_identity(request)
    ended = await auth.revoke_other_sessions(identity)
    return ApiResponse(200, {"revoked": len(ended)})


async def change_password(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``POST /auth/password``: needs the current password; every earlier credential ends."""
    check_csrf(auth, request)  # first, as the FastAPI route's dependency
    identity = require_identity(request)
    body: PasswordChangeBody = validate(PasswordChangeBody, read_json_body(request))
    # A DPoP-bound caller (its proof was checked) gets a token bound to the same key.
    ctx = replace(login_context(request, proxies), dpop_jkt=identity.jkt)
    result = await auth.change_password(identity, body.current_password, body.new_password, ctx)
    if identity.transport != "cookie":
        return token_response(auth, result)
    response = identity_response(result.identity.with_transport("cookie"), [])
    offer = await offer_binding(auth.dbsc, result.identity)  # a new session (docs/dbsc.md)
    return response.add(auth.login_headers(result, "cookie")).add(offer).add(NO_STORE)


def csrf_token(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``GET /auth/csrf``: a token for form posts (the login form or the cookie session)."""
    csrf = auth.csrf
    if csrf is None:
        raise NotSupported("CSRF tokens are only used with the cookie transport.")
    identity = request.identity
    extra: list[tuple[str, str]] = []
    if identity is not None and identity.transport == "cookie":
        value = csrf.token_for(identity)
    else:
        value, extra = csrf.login_form(request.headers)
    return ApiResponse(200, {"csrf_token": value}, extra).add([("cache-control", "no-store")])


async def jwks(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``GET /.well-known/jwks.json``: the public verification keys (empty without keys)."""
    keys = auth.keys
    headers = [("cache-control", jwks_cache_control(keys))]
    if keys is None:
        return ApiResponse(200, {"keys": []}, headers)
    try:
        keyset = await keys.published()
    except ConfigurationError:  # nothing loaded: this deployment signs nothing
        return ApiResponse(200, {"keys": []}, headers)
    return ApiResponse(200, dict(keyset.jwks(auth.clock())), headers)


def healthz(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``GET /healthz``: liveness, ``{"status": "ok"}`` while the process answers. It reads no
    store, so a store outage never restarts a healthy process."""
    return ApiResponse(200, {"status": "ok"}, [("cache-control", "no-store")])


async def dbsc_session(auth: Auth, headers: RawHeaders) -> tuple[DeviceBinding, Identity]:
    """DBSC and the session of the request's session cookie alone: the DBSC endpoints are
    called when the bound cookie is missing or expired (docs/dbsc.md)."""
    if auth.dbsc is None:
        raise NotFound("Device bound sessions are not enabled here.")
    cookie = auth.transport_by_name.get("cookie")
    token = cookie.extract(headers) if cookie is not None else None
    if token is None:
        raise MissingCredential("Device bound session requests need the session cookie.")
    return auth.dbsc, (await auth.strategy.authenticate(token)).with_transport("cookie")


async def dbsc_register(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``POST /auth/dbsc/register``: bind the session to the key of the browser's proof."""
    binding, identity = await dbsc_session(auth, request.headers)
    body, headers = await binding.register(identity, request.headers, request.origin)
    return ApiResponse(200, body, headers)


async def dbsc_refresh(auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """``POST /auth/dbsc/refresh``: 403 and a challenge, then a new bound cookie."""
    binding, identity = await dbsc_session(auth, request.headers)
    body, headers = await binding.refresh(identity, request.headers, request.origin)
    return ApiResponse(200, body, headers)


# --- the table and the dispatcher -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Route:
    """One API route: ``path`` uses ``{name}`` for a path parameter."""

    method: str
    path: str
    name: str
    handler: SyncHandler | AsyncHandler

    @property
    def needs_loop(self) -> bool:
        """True when the handler is a coroutine (it talks to the store)."""
        return inspect.iscoroutinefunction(self.handler)


ROUTES: Final[tuple[Route, ...]] = (
    Route("POST", "/auth/login", "login", login),
    Route("POST", "/auth/token", "token", token),
    Route("GET", "/auth/me", "me", me),
    Route("POST", "/auth/refresh", "refresh", refresh),
    Route("POST", "/auth/logout", "logout", logout),
    Route("GET", "/auth/sessions", "sessions", list_sessions),
    Route("POST", "/auth/sessions/revoke-others", "revoke_others", revoke_others),
    Route("DELETE", "/auth/sessions/{session_id}", "revoke_session", revoke_session),
    Route("POST", "/auth/password", "password", change_password),
    Route("GET", "/auth/csrf", "csrf", csrf_token),
    Route("POST", "/auth/dbsc/register", "dbsc_register", dbsc_register),
    Route("POST", "/auth/dbsc/refresh", "dbsc_refresh", dbsc_refresh),
    Route("GET", "/.well-known/jwks.json", "jwks", jwks),
    Route("GET", "/healthz", "healthz", healthz),
)


def handle_sync(route: Route, auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """Run a plain handler, turning every error into its JSON response."""
    try:
        result = route.handler(auth, request, proxies)
        assert isinstance(result, ApiResponse)
        return result
    except SatchelError as exc:
        return satchel_error_response(auth, exc, request.transport)
    except Exception as exc:  # the trace is logged; the client gets a bare 500
        return internal_error_response(exc, f"{request.method} {request.path}")


async def handle(route: Route, auth: Auth, request: ApiRequest, proxies: Proxies) -> ApiResponse:
    """Run any handler (await it when it is a coroutine), errors as JSON responses."""
    if not route.needs_loop:
        return handle_sync(route, auth, request, proxies)
    try:
        result = route.handler(auth, request, proxies)
        assert inspect.isawaitable(result)
        return await result
    except SatchelError as exc:
        return satchel_error_response(auth, exc, request.transport)
    except Exception as exc:  # the trace is logged; the client gets a bare 500
        return internal_error_response(exc, f"{request.method} {request.path}")
