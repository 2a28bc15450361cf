"""Exceptions raised by satchel.

Every error a client can cause carries a stable machine-readable ``code`` and an HTTP
``status`` so the integrations can render ``{"error": code, "detail": text}`` without
guessing. Messages never contain the credential that caused them.
"""

from __future__ import annotations

from typing import Any


class SatchelError(Exception):
    """Base class of every satchel exception."""

    code: str = "error"
    status: int = 400

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.__class__.__doc__ or self.code
        super().__init__(self.detail)

    def body_fields(self) -> dict[str, Any]:
        """JSON fields the error response carries besides ``error`` and ``detail``."""
        return {}

    def response_headers(self) -> list[tuple[str, str]]:
        """Headers the error response carries (a step-up challenge, for example)."""
        return []


class ConfigurationError(SatchelError):
    """The configuration is unsafe or inconsistent."""

    code = "configuration_error"
    status = 500


# --- authentication failures (401) -------------------------------------------------------


class AuthenticationError(SatchelError):
    """The request carries no valid credential."""

    code = "invalid_credentials"
    status = 401


class MissingCredential(AuthenticationError):
    """No credential was presented."""

    code = "not_authenticated"


class InvalidCredential(AuthenticationError):
    """The credential is malformed, unknown, revoked or expired."""

    code = "invalid_token"


class InvalidToken(InvalidCredential):
    """A signed token failed parsing or verification."""


class ExpiredCredential(InvalidCredential):
    """The credential has expired."""

    code = "token_expired"


class AmbiguousCredentials(AuthenticationError):
    """The request carries more than one different credential."""

    code = "ambiguous_credentials"


class InvalidLogin(AuthenticationError):
    """Unknown user, wrong password and disabled account all look like this, on purpose."""

    code = "invalid_login"

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail or "Invalid username or password.")


# --- authorisation and policy (403 / 409 / 4xx) -----------------------------------------


class PermissionDenied(SatchelError):
    """The identity lacks a required role."""

    code = "forbidden"
    status = 403


class CSRFError(PermissionDenied):
    """The request failed the cross-site request forgery checks."""

    code = "csrf_failed"


class SessionLimitExceeded(SatchelError):
    """The account already has the maximum number of sessions."""

    code = "session_limit"
    status = 409


class NotSupported(SatchelError):
    """The configured strategy cannot do this."""

    code = "not_supported"
    status = 400


class NotFound(SatchelError):
    """The object does not exist (or is not yours)."""

    code = "not_found"
    status = 404


class UserExists(SatchelError):
    """A user with this username already exists."""

    code = "user_exists"
    status = 409


class InvalidInput(SatchelError):
    """The input is malformed or out of bounds."""

    code = "invalid_request"
    status = 400


class PasswordTooLong(InvalidInput):
    """The password exceeds the maximum length."""

    code = "password_too_long"
    status = 413


class WeakPassword(InvalidInput):
    """The new password is too easy to guess."""

    code = "weak_password"
    status = 400


class Throttled(SatchelError):
    """Too many attempts; retry later."""

    code = "too_many_requests"
    status = 429

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        super().__init__(detail or "Too many attempts. Try again later.")
        self.retry_after = max(1, int(retry_after))


# --- infrastructure (503) -----------------------------------------------------------------


class StoreUnavailable(SatchelError):
    """A backing store is unreachable or too slow; the request failed closed."""

    code = "store_unavailable"
    status = 503

    def __init__(self, detail: str | None = None, retry_after: int = 1) -> None:
        super().__init__(detail or "Authentication service temporarily unavailable.")
        self.retry_after = retry_after


class CorruptRecord(SatchelError):
    """A stored record could not be decoded; treated as absent."""

    code = "invalid_token"
    status = 401
