"""Request and response bodies of the JSON API, as pydantic models (and in OpenAPI)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, Field

# The request bodies every framework reads the same way (satchel.integrations.http_api),
# re-exported here, where the routes and the OpenAPI document have always found them.
from satchel.integrations.http_api.bodies import (
    LoginBody,
    NewPassword,
    Password,
    PasswordChangeBody,
    RefreshBody,
    Username,
)

if TYPE_CHECKING:
    from satchel.auth import LoginResult


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
    #: How the session authenticated (RFC 8176: pwd, otp, hwk, swk, mfa).
    amr: list[str] = []


class TokenOut(BaseModel):
    """An OAuth 2.0 token response (RFC 6749 §5.1)."""

    access_token: str
    token_type: Literal["Bearer", "DPoP"] = Field(  # the RFC 6750 / RFC 9449 scheme names
        default="Bearer", description="DPoP when the token request carried a DPoP proof."
    )
    expires_in: int = Field(
        ge=1,
        description=(
            "Seconds the access token stays valid without use: its own expiry, or a session's "
            "idle time-out when that comes first (use extends a session, up to its absolute "
            "time-out)."
        ),
    )
    refresh_token: str | None = Field(
        default=None, description="Present when the strategy rotates refresh tokens."
    )
    refresh_expires_in: int | None = Field(
        default=None, description="Seconds until the refresh token ends at the latest."
    )

    @classmethod
    def of(cls, result: LoginResult, now: float) -> TokenOut:
        """The token response handing ``result``'s credentials to an API client.

        ``expires_in`` is how long the access token lives *without use*: the nearer of its
        own expiry and the identity's (a session token dies at its idle time-out, long
        before its absolute one, unless it is used).
        """
        from satchel.integrations.http_api.token import token_body

        return cls(**token_body(result, now))

    def body(self) -> dict[str, Any]:
        """The JSON body (absent refresh fields left out)."""
        return self.model_dump(exclude_none=True)


class DeviceKeyOut(BaseModel):
    """The device key a DBSC session is bound to (docs/dbsc.md): its algorithm, RFC 7638
    thumbprint and when it was registered."""

    alg: str
    thumbprint: str
    registered: int


class SessionOut(BaseModel):
    """One of the caller's sessions; never the secret or its hash."""

    id: str
    created: int
    last_seen: int
    expires: int
    ip: str | None
    user_agent: str | None
    current: bool
    device_key: DeviceKeyOut | None = None


class CSRFOut(BaseModel):
    """A token for the ``csrf_token`` form field or the ``X-CSRF-Token`` header."""

    csrf_token: str


class RevokedOut(BaseModel):
    """How many sessions a bulk revocation ended."""

    revoked: int


#: ``openapi_extra`` of ``POST /auth/login``: the route reads its body itself (JSON or form).
LOGIN_BODY_DOC: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginBody.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": LoginBody.model_json_schema()},
        },
    }
}

#: ``openapi_extra`` of ``POST /auth/refresh``: a body token (JSON or form) or the refresh
#: cookie, so the body is optional and so is any access credential.
REFRESH_DOC: Final[dict[str, Any]] = {
    "requestBody": {
        "required": False,
        "description": "Without a body the refresh cookie is used (browsers).",
        "content": {
            "application/json": {"schema": RefreshBody.model_json_schema()},
            "application/x-www-form-urlencoded": {"schema": RefreshBody.model_json_schema()},
        },
    },
    "security": [{"RefreshCookie": []}, {}],
}


__all__ = [
    "LOGIN_BODY_DOC",
    "REFRESH_DOC",
    "CSRFOut",
    "IdentityOut",
    "LoginBody",
    "NewPassword",
    "Password",
    "PasswordChangeBody",
    "RefreshBody",
    "RevokedOut",
    "SessionOut",
    "TokenOut",
    "Username",
]
