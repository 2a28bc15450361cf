"""Request and response bodies of the JSON API, as pydantic models (and in OpenAPI)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from satchel.accounts.passwords import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS
from satchel.accounts.users import MAX_USERNAME_CHARS
from satchel.integrations.refresh import MAX_REFRESH_TOKEN

if TYPE_CHECKING:
    from satchel.auth import LoginResult

# The limits the server enforces, stated in the schema. The upper ones are checked by the
# account code (400 for a username, 413 ``password_too_long`` for a password: over-long
# input is refused before any hashing), so the models only state them.
Username = Annotated[
    StrictStr,
    Field(
        min_length=1,
        json_schema_extra={"maxLength": MAX_USERNAME_CHARS},
        description=f"1 to {MAX_USERNAME_CHARS} characters; compared case-insensitively.",
    ),
]
Password = Annotated[
    StrictStr,
    Field(
        min_length=1,
        json_schema_extra={"maxLength": MAX_PASSWORD_BYTES},
        description=f"At most {MAX_PASSWORD_BYTES} bytes in UTF-8 (413 above).",
    ),
]
NewPassword = Annotated[
    StrictStr,
    Field(
        min_length=MIN_PASSWORD_CHARS,
        json_schema_extra={"maxLength": MAX_PASSWORD_BYTES},
        description=(
            f"{MIN_PASSWORD_CHARS} characters to {MAX_PASSWORD_BYTES} bytes; common passwords "
            "and ones containing the username are refused (400 weak_password)."
        ),
    ),
]


class LoginBody(BaseModel):
    """Credentials for ``POST /auth/login`` (JSON or form fields of the same names)."""

    model_config = ConfigDict(extra="ignore")

    username: Username
    password: Password
    remember: StrictBool = False


class RefreshBody(BaseModel):
    """``POST /auth/refresh`` from an API client (a browser sends the refresh cookie instead)."""

    refresh_token: StrictStr = Field(min_length=1, max_length=MAX_REFRESH_TOKEN)


class PasswordChangeBody(BaseModel):
    """``POST /auth/password``: the current password and the new one."""

    model_config = ConfigDict(extra="forbid")

    current_password: Password
    new_password: NewPassword


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
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the RFC 6750 scheme name
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
        issued = result.credentials
        # Whole seconds, never rounded up (to the millisecond first: float noise).
        lives = math.floor(round(result.identity.expires_at - now, 3))
        return cls(
            access_token=issued.access_token,
            expires_in=max(1, min(issued.expires_in, lives)),
            refresh_token=issued.refresh_token,
            refresh_expires_in=issued.refresh_expires_in if issued.refresh_token else None,
        )

    def body(self) -> dict[str, Any]:
        """The JSON body (absent refresh fields left out)."""
        return self.model_dump(exclude_none=True)


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
