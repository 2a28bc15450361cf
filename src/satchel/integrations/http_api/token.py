"""``POST /auth/token``, the OAuth 2.0 token endpoint (RFC 6749 §3.2, §4.3, §5, §6), without a
framework: what the FastAPI route and the Flask and Django views all answer.

Two grants: ``password`` (resource owner password credentials) and ``refresh_token`` (the
same rotation, reuse detection and grace window as ``POST /auth/refresh``, whenever the
strategy rotates refresh tokens). Every client is public: satchel keeps no client registry,
so a ``client_id`` is accepted and ignored, and a client secret (in the body or as HTTP
Basic) is refused with 401 ``invalid_client`` rather than silently not checked.

Errors carry the RFC's ``error`` and ``error_description`` plus the project's ``detail``
(the same text). docs/oauth.md says what each answer means.

DPoP (RFC 9449, docs/dpop.md): a request with a valid ``DPoP`` proof gets tokens bound to
the proof's key and ``token_type: DPoP``; a bad proof is 400 ``invalid_dpop_proof`` (or
``use_dpop_nonce`` with a ``DPoP-Nonce`` header).
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Final
from urllib.parse import unquote_plus

from satchel.auth import Auth, LoginResult
from satchel.dpop.proof import DPoPProofError, UseDPoPNonce
from satchel.errors import (
    AuthenticationError,
    InvalidInput,
    NotSupported,
    SatchelError,
    StoreUnavailable,
    Throttled,
)
from satchel.integrations.dpop import proofs, request_url
from satchel.integrations.refresh import presented_token, rotate
from satchel.strategies.base import LoginContext

GRANT_PASSWORD: Final = "password"  # noqa: S105 - a grant type name
GRANT_REFRESH: Final = "refresh_token"
#: The parameters this endpoint reads; any other one is ignored (RFC 6749 §3.2).
PARAMETERS: Final = (
    "grant_type",
    "username",
    "password",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
)
NOT_A_FORM: Final = "Send the parameters as application/x-www-form-urlencoded."
_NO_SECRETS: Final = (
    "This server has public clients only: send no client secret (a client_id alone is fine)."
)


class OAuthError(Exception):
    """An RFC 6749 §5.2 error answer of the token endpoint."""

    def __init__(
        self,
        status: int,
        code: str,
        description: str,
        headers: Iterable[tuple[str, str]] = (),
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(description)
        self.status = status
        self.code = code
        self.description = description
        self.headers = list(headers)
        self.fields = dict(fields or {})  # mfa_required's mfa_token and methods

    def body(self) -> dict[str, Any]:
        """``{"error", "error_description", "detail"}`` (and an error's own fields)."""
        return {
            **self.fields,
            "error": self.code,
            "error_description": self.description,
            "detail": self.description,
        }


def as_oauth_error(exc: SatchelError) -> OAuthError:
    """The RFC 6749 answer for a satchel error raised by a grant.

    A wrong password or an unusable refresh token is ``invalid_grant`` (400), bad input
    ``invalid_request`` (400); throttling (429), outages (503) and a session cap (409) keep
    their status, code and ``Retry-After``, and gain an ``error_description``.
    """
    if isinstance(exc, AuthenticationError):
        return OAuthError(400, "invalid_grant", exc.detail)
    if isinstance(exc, InvalidInput):  # PasswordTooLong included: a malformed request here
        return OAuthError(400, "invalid_request", exc.detail)
    if isinstance(exc, NotSupported):
        return OAuthError(400, "unsupported_grant_type", exc.detail)
    headers = []
    if isinstance(exc, Throttled | StoreUnavailable):
        headers.append(("Retry-After", str(exc.retry_after)))
    return OAuthError(exc.status, exc.code, exc.detail, headers, exc.body_fields())


def token_parameters(form: Mapping[str, object], repeated: Collection[str] = ()) -> dict[str, str]:
    """The token request's known parameters from its form fields (first values).

    ``repeated`` names the fields sent more than once. A parameter sent empty counts as
    omitted (§3.1); one sent twice or as a file is ``invalid_request``.
    """
    params: dict[str, str] = {}
    for name in PARAMETERS:
        if name in repeated:
            raise OAuthError(400, "invalid_request", f"The parameter {name} was sent twice.")
        value = form.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise OAuthError(400, "invalid_request", f"The parameter {name} must be text.")
        if value:
            params[name] = value
    return params


def check_client(authorizations: Sequence[str], params: Mapping[str, str], realm: str) -> None:
    """Public clients only: a ``client_id`` is fine, a client secret is ``invalid_client``.

    ``authorizations`` are the request's ``Authorization`` header values. A secret that is
    not checked would look like client authentication to its sender; refusing it says at
    once that this server has no confidential clients.
    """
    basic = [value for value in authorizations if value[:6].lower() == "basic "]
    if len(basic) > 1:
        raise OAuthError(400, "invalid_request", "The Authorization header was sent twice.")
    if basic:
        challenge = [("WWW-Authenticate", f'Basic realm="{realm}"')]
        secret = _basic_secret(basic[0][6:].strip())
        if secret is None:
            raise OAuthError(401, "invalid_client", "Malformed HTTP Basic credentials.", challenge)
        if secret:
            raise OAuthError(401, "invalid_client", _NO_SECRETS, challenge)
    if "client_secret" in params:
        raise OAuthError(401, "invalid_client", _NO_SECRETS)


def _basic_secret(value: str) -> str | None:
    """The (form-decoded, §2.3.1) secret of HTTP Basic credentials, or None if malformed."""
    try:
        decoded = base64.b64decode(value, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    _client_id, colon, secret = decoded.partition(":")
    if not colon:
        return None
    return unquote_plus(secret)


def _required(params: Mapping[str, str], name: str, grant_type: str) -> str:
    value = params.get(name)
    if value is None:
        raise OAuthError(
            400, "invalid_request", f"The {grant_type} grant needs the parameter {name}."
        )
    return value


async def proved_key(auth: Auth, scope: Mapping[str, Any], origin: str | None = None) -> str | None:
    """The thumbprint of the DPoP key the token request in ``scope`` proved, or None
    (Bearer tokens). ``scope`` needs ``method``, ``path``, ``headers`` and ``scheme``, as an
    ASGI scope has them; ``origin`` is the request's own origin when the framework knows it
    better than the ``Host`` header. A bad proof is :class:`OAuthError` 400 with the RFC 9449
    code."""
    guard = auth.dpop
    if guard is None:
        return None
    headers = scope.get("headers") or ()
    method = str(scope.get("method") or "POST")
    if origin is not None and guard.public_url is None:
        url = origin + str(scope.get("path") or "/")
    else:
        url = request_url(scope, guard.public_url)
    try:
        return await guard.token_request(proofs(headers), method, url)
    except DPoPProofError as exc:
        nonce = [("DPoP-Nonce", exc.nonce)] if isinstance(exc, UseDPoPNonce) else []
        raise OAuthError(400, exc.code, exc.detail, nonce) from None


async def grant(auth: Auth, params: Mapping[str, str], ctx: LoginContext) -> LoginResult:
    """Run the requested grant; SatchelErrors propagate for :func:`as_oauth_error`."""
    grant_type = params.get("grant_type")
    if grant_type is None:
        raise OAuthError(
            400, "invalid_request", "grant_type is required: password or refresh_token."
        )
    if grant_type not in (GRANT_PASSWORD, GRANT_REFRESH):
        raise OAuthError(
            400,
            "unsupported_grant_type",
            "This server supports the password and refresh_token grants only.",
        )
    if "bearer" not in auth.transport_by_name:
        raise OAuthError(
            400,
            "unsupported_grant_type",
            "Bearer tokens are not enabled here; sign in with POST /auth/login.",
        )
    if "scope" in params:
        raise OAuthError(
            400, "invalid_scope", "This server issues tokens without scopes; leave scope out."
        )
    if grant_type == GRANT_PASSWORD:
        username = _required(params, "username", grant_type)
        password = _required(params, "password", grant_type)
        # A second factor, if due, finishes as a token response too (POST /auth/mfa/verify).
        return await auth.login(username, password, replace(ctx, transport="bearer"))
    token = _required(params, "refresh_token", grant_type)
    if not auth.can_refresh:
        raise OAuthError(
            400,
            "unsupported_grant_type",
            f"The {auth.strategy.name} strategy issues no refresh tokens; sign in again "
            "with the password grant.",
        )
    presented, _ = presented_token(auth, (), token)
    rotated = await rotate(auth, presented, ctx, via_cookie=False)
    return rotated.result


def token_body(result: LoginResult, now: float) -> dict[str, Any]:
    """An OAuth 2.0 token response (RFC 6749 §5.1) for ``result``, absent fields left out.

    ``expires_in`` is how long the access token lives *without use*: the nearer of its own
    expiry and the identity's (a session token dies at its idle time-out, long before its
    absolute one, unless it is used).
    """
    issued = result.credentials
    # Whole seconds, never rounded up (to the millisecond first: float noise).
    lives = math.floor(round(result.identity.expires_at - now, 3))
    body: dict[str, Any] = {
        "access_token": issued.access_token,
        "token_type": "Bearer" if result.identity.jkt is None else "DPoP",
        "expires_in": max(1, min(issued.expires_in, lives)),
    }
    if issued.refresh_token is not None:
        body["refresh_token"] = issued.refresh_token
        if issued.refresh_expires_in is not None:
            body["refresh_expires_in"] = issued.refresh_expires_in
    return body
