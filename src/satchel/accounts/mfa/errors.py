"""What the second-factor and step-up flows answer when they cannot go on.

Each is a :class:`~satchel.errors.SatchelError`, so every integration renders it as
``{"error": code, "detail": text}``; :class:`MfaRequired` and
:class:`ReauthenticationRequired` add fields and headers of their own. None of them ever
carries a code, a secret or a passkey assertion, except :class:`MfaRequired`'s
``mfa_token``, which is the one thing its client must receive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from satchel.errors import AuthenticationError, PermissionDenied, SatchelError


class MfaRequired(SatchelError):
    """The password was right; a second factor (or enrolling one) must finish the login.

    403 with ``{"mfa_required": true, "methods": [...], "mfa_token": "..."}`` beside the
    error fields (the shape of Auth0's ``mfa_required``); ``enrollment_required`` is true
    when the account has no factor yet and the policy demands one.
    """

    code = "mfa_required"
    status = 403

    def __init__(self, mfa_token: str, methods: Sequence[str], *, enroll: bool = False) -> None:
        what = "Set up a second factor" if enroll else "A second factor is required"
        super().__init__(f"{what} to finish signing in.")
        self.mfa_token = mfa_token
        self.methods = tuple(methods)
        self.enroll = enroll

    def body_fields(self) -> dict[str, Any]:
        return {
            "mfa_required": True,
            "methods": list(self.methods),
            "mfa_token": self.mfa_token,
            "enrollment_required": self.enroll,
        }

    def __repr__(self) -> str:
        return f"MfaRequired(methods={list(self.methods)!r}, enroll={self.enroll})"


class InvalidMfaToken(AuthenticationError):
    """The mfa_token is unknown, used up, expired or not for this step."""

    code = "invalid_mfa_token"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "The sign-in step expired or was already used. Sign in again.")

    def response_headers(self) -> list[tuple[str, str]]:
        # Not the bearer transport's invalid_token: the caller's access token (if any) is fine.
        return [("WWW-Authenticate", "Bearer")]


class InvalidCode(AuthenticationError):
    """The code, recovery code or passkey did not verify (or was already used)."""

    code = "invalid_code"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "The code is not valid.")

    def response_headers(self) -> list[tuple[str, str]]:
        return [("WWW-Authenticate", "Bearer")]


class MfaDisabled(PermissionDenied):
    """Second factors are turned off on this server (``SATCHEL_MFA=off``)."""

    code = "mfa_disabled"


class FactorConflict(SatchelError):
    """The factor is already set up (remove it first) or was never started."""

    code = "factor_conflict"
    status = 409


class ReauthenticationRequired(SatchelError):
    """The session's latest authentication is older than this action allows.

    401 with ``WWW-Authenticate: Bearer error="insufficient_user_authentication",
    max_age="..."`` (RFC 9470) and ``max_age`` in the body: authenticate again
    (``POST /auth/reauthenticate``) and retry.
    """

    code = "reauthentication_required"
    status = 401

    def __init__(self, max_age: int) -> None:
        super().__init__(
            f"This action needs a sign-in within the last {max_age} seconds; "
            "authenticate again and retry."
        )
        self.max_age = int(max_age)

    def body_fields(self) -> dict[str, Any]:
        return {"max_age": self.max_age}

    def response_headers(self) -> list[tuple[str, str]]:
        return [("WWW-Authenticate", step_up_challenge(self.max_age))]


def step_up_challenge(max_age: int) -> str:
    """The RFC 9470 ``WWW-Authenticate`` value asking for an authentication within
    ``max_age`` seconds."""
    return (
        'Bearer error="insufficient_user_authentication", '
        'error_description="A more recent authentication is required", '
        f'max_age="{int(max_age)}"'
    )
