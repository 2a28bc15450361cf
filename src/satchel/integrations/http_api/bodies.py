"""The JSON API's request bodies, as pydantic models: the rules every framework applies to
``/auth/login``, ``/auth/refresh`` and ``/auth/password`` (the FastAPI routes also state them
in their OpenAPI document)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from satchel.accounts.passwords import MAX_PASSWORD_BYTES, MIN_PASSWORD_CHARS
from satchel.accounts.users import MAX_USERNAME_CHARS
from satchel.integrations.refresh import MAX_REFRESH_TOKEN

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


__all__ = ["LoginBody", "NewPassword", "Password", "PasswordChangeBody", "RefreshBody", "Username"]
