"""The reference server's JSON API: ``/auth/*``, ``/.well-known/jwks.json`` and ``/healthz``.

Cookie login (``POST /auth/login``) and token login (``POST /auth/token``) are separate
routes on purpose: a browser login never sees the credential in a body, and an API client
never gets a cookie it did not ask for.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr, ValidationError
from starlette.datastructures import UploadFile

from satchel.auth import Auth, LoginResult
from satchel.errors import (
    ConfigurationError,
    InvalidInput,
    MissingCredential,
    NotSupported,
    SatchelError,
    StoreUnavailable,
)
from satchel.integrations.fastapi import (
    CurrentIdentity,
    OptionalIdentity,
    get_auth,
    server_settings,
)
from satchel.keys.manager import jwks_cache_control
from satchel.server.errors import error_responses
from satchel.stores.base import SessionRecord
from satchel.strategies.base import LoginContext
from satchel.transports.client_ip import client_ip, parse_networks
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import (
    FORM_FIELD,
    binding_for,
    content_type,
    needs_check,
    scope_origin,
)

logger = logging.getLogger("satchel.server")

MAX_USER_AGENT = 512
HEALTH_TIMEOUT = 2.0
_TRUE_WORDS = frozenset({"1", "true", "on", "yes"})
_FORM_TYPES = frozenset({"application/x-www-form-urlencoded", "multipart/form-data"})
_NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

router = APIRouter()


# --- models -------------------------------------------------------------------------------


class LoginBody(BaseModel):
    """Credentials for ``POST /auth/login`` (JSON or form fields of the same names)."""

    model_config = ConfigDict(extra="ignore")

    username: StrictStr
    password: StrictStr
    remember: StrictBool = False


class IdentityOut(BaseModel):
    """The authenticated principal, as the API shows it."""

    user_id: str
    username: str
    roles: list[str]
    strategy: str
    transport: str | None
    session_id: str | None
    auth_time: int
    expires_at: int


class TokenOut(BaseModel):
    """An OAuth 2.0 token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int | None = None


class SessionOut(BaseModel):
    """One of the caller's sessions; never the secret or its hash."""

    id: str
    created: int
    last_seen: int
    expires: int
    ip: str | None
    user_agent: str | None
    current: bool


class CSRFOut(BaseModel):
    """A token for the ``csrf_token`` form field or the ``X-CSRF-Token`` header."""

    csrf_token: str


class RevokedOut(BaseModel):
    """How many sessions a bulk revocation ended."""

    revoked: int


_LOGIN_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginBody.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": LoginBody.model_json_schema()},
        },
    }
}


# --- helpers ------------------------------------------------------------------------------
class UnsupportedMediaType(SatchelError):
    """Send the credentials as JSON or as a form."""

    code = "unsupported_media_type"
    status = 415


def login_context(request: Request, remember: bool = False) -> LoginContext:
    """Client facts for a new session: the client address and a bounded User-Agent.

    ``X-Forwarded-For`` counts only when the peer is one of ``settings.trusted_proxies``
    (``client_ip``): the address keys the per-IP login throttle, so a
    client must not be able to choose it.
    """
    client = request.scope.get("client")
    peer = str(client[0]) if client else None
    proxies = parse_networks(server_settings(request).trusted_proxies)
    ip = client_ip(peer, request.scope.get("headers") or (), proxies)
    agent = request.headers.get("user-agent")
    if agent is not None:
        agent = agent[:MAX_USER_AGENT]
    return LoginContext(ip=ip, user_agent=agent, remember=remember)


async def read_login_body(request: Request) -> tuple[LoginBody, str | None]:
    """Username, password and "remember me" from a JSON or a form body, and the form's
    ``csrf_token`` field (None for JSON, which needs no token)."""
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    data: Any
    form_token: str | None = None
    if ctype == "application/json" or ctype.endswith("+json"):
        raw = await request.body()
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):
            raise InvalidInput("The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise InvalidInput("The request body must be a JSON object.")
    elif ctype in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.form(max_files=0, max_fields=20)
        data = {}
        for key in ("username", "password", "remember", FORM_FIELD):
            value = form.get(key)
            if isinstance(value, UploadFile):
                raise InvalidInput(f"The field {key!r} must be text.")
            if value is not None:
                data[key] = value
        form_token = data.pop(FORM_FIELD, None)
        if "remember" in data:
            data["remember"] = str(data["remember"]).lower() in _TRUE_WORDS
    else:
        raise UnsupportedMediaType()
    try:
        return LoginBody.model_validate(data), form_token
    except ValidationError as exc:
        raise RequestValidationError(exc.errors(include_input=False)) from None


async def _form_token(request: Request) -> str | None:
    """The ``csrf_token`` field of a form body, if the request has one."""
    if content_type(request.scope.get("headers") or ()) not in _FORM_TYPES:
        return None
    form = await request.form(max_files=0, max_fields=20)
    value = form.get(FORM_FIELD)
    return value if isinstance(value, str) else None


def _cookie_names(auth: Auth) -> list[bytes]:
    cookie = auth.transport_by_name.get("cookie")
    if not isinstance(cookie, CookieTransport):
        return []
    return [cookie.cookie_name.encode("ascii"), cookie.refresh_name.encode("ascii")]


async def check_csrf(request: Request, identity: OptionalIdentity) -> None:
    """Dependency of every unsafe route that acts on the caller's cookie session.

    Requests without our cookies (bearer clients) pass untouched: a browser never adds an
    ``Authorization`` header by itself.
    """
    auth = get_auth(request)
    csrf = auth.csrf
    if csrf is None:
        return  # no cookie transport: nothing a browser attaches by itself
    headers = request.scope.get("headers") or ()
    if not needs_check(request.method, headers, _cookie_names(auth)):
        return
    binding = binding_for(identity) if identity is not None else None
    csrf.check(
        request.method,
        headers,
        own_origin=scope_origin(request.scope),
        binding=binding,
        form_token=await _form_token(request),
    )


CSRFChecked = Depends(check_csrf)


def _apply(response: Response, headers: list[tuple[str, str]]) -> None:
    for name, value in headers:
        if name.lower() == "cache-control" and "cache-control" in response.headers:
            continue
        response.headers.append(name, value)


def _session_out(record: SessionRecord, current: str | None) -> SessionOut:
    return SessionOut(
        id=record.id,
        created=int(record.created_at),
        last_seen=int(record.last_seen_at),
        expires=int(record.expires_at()),
        ip=record.ip,
        user_agent=record.user_agent,
        current=record.id == current,
    )


def _cookie_configured(auth: Auth) -> bool:
    return "cookie" in auth.transport_by_name


# --- login and tokens ---------------------------------------------------------------------


@router.post(
    "/auth/login",
    response_model=IdentityOut,
    openapi_extra=_LOGIN_BODY_DOC,
    responses=error_responses(400, 401, 403, 413, 415, 422, 429, 503),
    summary="Log in with a password; sets the session cookie",
)
async def login(request: Request, response: Response) -> dict[str, Any]:
    """Check the password and set the credential cookie; the body holds the identity only."""
    auth = get_auth(request)
    if not _cookie_configured(auth):
        raise NotSupported("Cookie login is not enabled here; use POST /auth/token.")
    body, form_token = await read_login_body(request)
    csrf = auth.csrf
    if csrf is not None:  # always, with the cookie transport (Auth refuses it otherwise)
        # Login CSRF: checked before the password, so a forged post learns nothing.
        headers = request.scope.get("headers") or ()
        csrf.check(
            request.method,
            headers,
            own_origin=scope_origin(request.scope),
            binding=csrf.login_binding(headers),
            form_token=form_token,
        )
    result: LoginResult = await auth.login(
        body.username, body.password, login_context(request, body.remember)
    )
    _apply(response, auth.login_headers(result, "cookie"))
    response.headers["Cache-Control"] = "no-store"
    return result.identity.with_transport("cookie").to_public_dict()


@router.post(
    "/auth/token",
    response_model=TokenOut,
    response_model_exclude_none=True,
    responses=error_responses(400, 401, 413, 422, 429, 503),
    summary="OAuth 2.0 password grant: returns a bearer access token",
)
async def token(
    request: Request,
    response: Response,
    username: Annotated[str, Form(min_length=1, max_length=1024)],
    password: Annotated[str, Form(max_length=4096)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
) -> TokenOut:
    """Exchange a username and password for an access token (no cookie is set)."""
    auth = get_auth(request)
    if "bearer" not in auth.transport_by_name:
        raise NotSupported("Bearer tokens are not enabled here; use POST /auth/login.")
    result = await auth.login(username, password, login_context(request))
    issued = result.credentials
    response.headers.update(_NO_STORE)
    return TokenOut(
        access_token=issued.access_token,
        expires_in=issued.expires_in,
        refresh_token=issued.refresh_token,
        refresh_expires_in=issued.refresh_expires_in if issued.refresh_token else None,
    )


MAX_REFRESH_TOKEN = 512


async def read_refresh_token(request: Request, auth: Auth) -> tuple[str, bool]:
    """The refresh token of a ``POST /auth/refresh`` and whether it came in the cookie.

    A body (JSON ``{"refresh_token": ...}`` or the form field) wins over the cookie; a
    request with neither is unauthenticated.
    """
    ctype = content_type(request.scope.get("headers") or ()) or ""
    value: object = None
    if ctype == "application/json" or ctype.endswith("+json"):
        raw = await request.body()
        if raw.strip():
            try:
                data = json.loads(raw)
            except (ValueError, RecursionError):
                raise InvalidInput("The request body is not valid JSON.") from None
            if not isinstance(data, dict):
                raise InvalidInput("The request body must be a JSON object.")
            value = data.get("refresh_token")
    elif ctype in _FORM_TYPES:
        value = (await request.form(max_files=0, max_fields=20)).get("refresh_token")
    if value is not None:
        if not isinstance(value, str) or not 0 < len(value) <= MAX_REFRESH_TOKEN:
            raise InvalidInput("refresh_token must be a non-empty string.")
        return value, False
    cookie = auth.transport_by_name.get("cookie")
    token = cookie.extract_refresh(request.scope.get("headers") or ()) if cookie else None
    if token is None:
        raise MissingCredential("No refresh token was presented.")
    return token, True


@router.post(
    "/auth/refresh",
    dependencies=[CSRFChecked],
    responses=error_responses(400, 401, 403, 413, 422, 503),
    summary="Rotate a refresh token into a new token pair (hybrid strategy)",
)
async def refresh(request: Request) -> Response:
    """A body token gets an OAuth 2.0 token response; the refresh cookie gets new cookies.

    The presented token is retired; presenting it again after the grace window ends the
    whole session.
    """
    auth = get_auth(request)
    presented, via_cookie = await read_refresh_token(request, auth)
    result = await auth.refresh(presented, login_context(request))
    issued = result.credentials
    response: Response
    if via_cookie:
        response = JSONResponse(result.identity.with_transport("cookie").to_public_dict())
        _apply(response, auth.login_headers(result, "cookie"))
    else:
        out = TokenOut(
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            refresh_token=issued.refresh_token,
            refresh_expires_in=issued.refresh_expires_in,
        )
        response = JSONResponse(out.model_dump(exclude_none=True))
    response.headers.update(_NO_STORE)
    return response


@router.post(
    "/auth/logout",
    status_code=204,
    dependencies=[CSRFChecked],
    responses=error_responses(403, 503),
    summary="End the current session and clear the cookie",
)
async def logout(request: Request, identity: OptionalIdentity) -> Response:
    """Idempotent: without a valid credential it only clears the cookie."""
    auth = get_auth(request)
    if identity is not None:
        await auth.logout(identity)
    response = Response(status_code=204)
    if _cookie_configured(auth):
        _apply(response, auth.logout_headers("cookie"))
    response.headers.update(_NO_STORE)
    return response


@router.get(
    "/auth/me",
    response_model=IdentityOut,
    responses=error_responses(401, 503),
    summary="Who am I",
)
async def me(identity: CurrentIdentity, response: Response) -> dict[str, Any]:
    """The caller's identity."""
    response.headers["Cache-Control"] = "no-store"
    return identity.to_public_dict()


# --- sessions -----------------------------------------------------------------------------


@router.get(
    "/auth/sessions",
    response_model=list[SessionOut],
    responses=error_responses(400, 401, 503),
    summary="The caller's live sessions",
)
async def list_sessions(
    request: Request, identity: CurrentIdentity, response: Response
) -> list[SessionOut]:
    """Every live session of the caller, oldest first; ``current`` marks this one."""
    records = await get_auth(request).list_sessions(identity.user_id)
    response.headers["Cache-Control"] = "no-store"
    return [_session_out(record, identity.session_id) for record in records]


@router.delete(
    "/auth/sessions/{session_id}",
    status_code=204,
    dependencies=[CSRFChecked],
    responses=error_responses(400, 401, 403, 404, 503),
    summary="End one of the caller's sessions",
)
async def revoke_session(
    request: Request,
    identity: CurrentIdentity,
    session_id: Annotated[str, Path(min_length=1, max_length=256)],
) -> Response:
    """404 unless the session is the caller's own; ending the current one also clears the cookie."""
    auth = get_auth(request)
    await auth.revoke_session(session_id, user_id=identity.user_id, actor=identity)
    response = Response(status_code=204)
    if session_id == identity.session_id and identity.transport == "cookie":
        _apply(response, auth.logout_headers("cookie"))
    response.headers.update(_NO_STORE)
    return response


@router.post(
    "/auth/sessions/revoke-others",
    dependencies=[CSRFChecked],
    response_model=RevokedOut,
    responses=error_responses(400, 401, 403, 503),
    summary="End every other session of the caller",
)
async def revoke_others(request: Request, identity: CurrentIdentity) -> RevokedOut:
    """Keeps the current session; returns how many others ended."""
    ended = await get_auth(request).revoke_other_sessions(identity)
    return RevokedOut(revoked=len(ended))


class PasswordChangeBody(BaseModel):
    """``POST /auth/password``: the current password and the new one."""

    model_config = ConfigDict(extra="forbid")

    current_password: StrictStr
    new_password: StrictStr


@router.post(
    "/auth/password",
    dependencies=[CSRFChecked],
    responses=error_responses(400, 401, 403, 413, 422, 503),
    summary="Change the caller's password; ends every other session",
)
async def change_password(
    request: Request, identity: CurrentIdentity, body: PasswordChangeBody
) -> Response:
    """Needs the current password. Every earlier credential of the user ends (all devices,
    signed tokens too); the caller gets a fresh one: a new cookie, or a new bearer token in
    the body."""
    auth = get_auth(request)
    result = await auth.change_password(
        identity, body.current_password, body.new_password, login_context(request)
    )
    if identity.transport == "cookie":
        response: Response = JSONResponse(result.identity.with_transport("cookie").to_public_dict())
        _apply(response, auth.login_headers(result, "cookie"))
    else:
        issued = result.credentials
        out = TokenOut(
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            refresh_token=issued.refresh_token,
            refresh_expires_in=issued.refresh_expires_in if issued.refresh_token else None,
        )
        response = JSONResponse(out.model_dump(exclude_none=True))
    response.headers.update(_NO_STORE)
    return response


@router.get(
    "/auth/csrf",
    response_model=CSRFOut,
    responses=error_responses(400),
    summary="A CSRF token for form posts (login form or the current cookie session)",
)
async def csrf_token(request: Request, identity: OptionalIdentity) -> Response:
    """JSON requests need no token; forms send it as ``csrf_token`` (or ``X-CSRF-Token``).

    For a logged-in cookie session the token is bound to the session; otherwise it is bound
    to a pre-session cookie this response sets, for the login form.
    """
    auth = get_auth(request)
    csrf = auth.csrf
    if csrf is None:
        raise NotSupported("CSRF tokens are only used with the cookie transport.")
    extra: list[tuple[str, str]] = []
    if identity is not None and identity.transport == "cookie":
        token = csrf.token_for(identity)
    else:
        token, extra = csrf.login_form(request.scope.get("headers") or ())
    response = JSONResponse({"csrf_token": token})
    _apply(response, extra)
    response.headers["Cache-Control"] = "no-store"
    return response


# --- keys and health ----------------------------------------------------------------------


@router.get("/.well-known/jwks.json", summary="Public verification keys (JWK Set)")
async def jwks(request: Request, response: Response) -> dict[str, Any]:
    """The public half of every key that may verify a token; empty without signing keys."""
    auth = get_auth(request)
    keys = auth.keys
    response.headers["Cache-Control"] = jwks_cache_control(keys)
    if keys is None:
        return {"keys": []}
    try:
        keyset = await keys.published()
    except ConfigurationError:  # nothing loaded: this deployment signs nothing
        return {"keys": []}
    return dict(keyset.jwks(auth.clock()))


@router.get(
    "/healthz",
    responses=error_responses(503),
    summary="Liveness and store reachability",
)
async def healthz(request: Request, response: Response) -> dict[str, str]:
    """``{"status": "ok"}`` when the stores answer a trivial read in time."""
    auth = get_auth(request)
    response.headers["Cache-Control"] = "no-store"
    try:
        async with asyncio.timeout(HEALTH_TIMEOUT):
            await probe_stores(auth)
    except TimeoutError:
        raise StoreUnavailable("The store did not answer in time.") from None
    return {"status": "ok"}


async def probe_stores(auth: Auth) -> None:
    """One cheap read per distinct backend (a lookup of a name that cannot exist)."""
    await auth.probe()
