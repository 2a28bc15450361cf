"""Request and response bodies of the JSON API, as pydantic models (and in OpenAPI)."""

from __future__ import annotations

from typing import Any, Final

from pydantic import BaseModel, ConfigDict, StrictBool, StrictStr

from satchel.transports.base import IssuedCredentials


class LoginBody(BaseModel):
    """Credentials for ``POST /auth/login`` (JSON or form fields of the same names)."""

    model_config = ConfigDict(extra="ignore")

    username: StrictStr
    password: StrictStr
    remember: StrictBool = False


class PasswordChangeBody(BaseModel):
    """``POST /auth/password``: the current password and the new one."""

    model_config = ConfigDict(extra="forbid")

    current_password: StrictStr
    new_password: StrictStr


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
    token_type: str = "Bearer"  # noqa: S105 - the RFC 6750 scheme name, not a secret
    expires_in: int
    refresh_token: str | None = None
    refresh_expires_in: int | None = None

    @classmethod
    def of(cls, issued: IssuedCredentials) -> TokenOut:
        """The token response handing ``issued`` to an API client."""
        return cls(
            access_token=issued.access_token,
            expires_in=issued.expires_in,
            refresh_token=issued.refresh_token,
            refresh_expires_in=issued.refresh_expires_in if issued.refresh_token else None,
        )


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
