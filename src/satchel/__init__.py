"""satchel: composable authentication for Python web apps.

The names below are the public API. Importing this package is cheap and never imports a web
framework: errors, :class:`Identity` and the clocks load at once, everything else on first
use (so ``from satchel import Auth`` works, and ``import satchel`` costs almost nothing).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from satchel.clock import Clock, ManualClock, system_clock
from satchel.errors import (
    AmbiguousCredentials,
    AuthenticationError,
    ConfigurationError,
    CorruptRecord,
    CSRFError,
    ExpiredCredential,
    InvalidCredential,
    InvalidInput,
    InvalidLogin,
    InvalidToken,
    MissingCredential,
    NotFound,
    NotSupported,
    PasswordTooLong,
    PermissionDenied,
    SatchelError,
    SessionLimitExceeded,
    StoreUnavailable,
    Throttled,
    UserExists,
    WeakPassword,
)
from satchel.identity import Identity

if TYPE_CHECKING:
    from satchel.accounts.passwords import PasswordHasher
    from satchel.accounts.users import UserService
    from satchel.audit import AuditEvent, AuditLog
    from satchel.auth import Auth, LoginResult
    from satchel.config.build import build_auth
    from satchel.config.settings import Settings
    from satchel.integrations.asgi import AuthMiddleware
    from satchel.stores import open_stores
    from satchel.strategies.base import LoginContext, Strategy
    from satchel.transports.base import IssuedCredentials, Transport

# name -> module that defines it; imported on first attribute access.
_LAZY: dict[str, str] = {
    "Auth": "satchel.auth",
    "LoginResult": "satchel.auth",
    "AuditEvent": "satchel.audit",
    "AuditLog": "satchel.audit",
    "build_auth": "satchel.config.build",
    "AuthMiddleware": "satchel.integrations.asgi",
    "PasswordHasher": "satchel.accounts.passwords",
    "Settings": "satchel.config.settings",
    "open_stores": "satchel.stores",
    "LoginContext": "satchel.strategies.base",
    "Strategy": "satchel.strategies.base",
    "IssuedCredentials": "satchel.transports.base",
    "Transport": "satchel.transports.base",
    "UserService": "satchel.accounts.users",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'satchel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "AmbiguousCredentials",
    "AuditEvent",
    "AuditLog",
    "Auth",
    "AuthMiddleware",
    "AuthenticationError",
    "CSRFError",
    "Clock",
    "ConfigurationError",
    "CorruptRecord",
    "ExpiredCredential",
    "Identity",
    "InvalidCredential",
    "InvalidInput",
    "InvalidLogin",
    "InvalidToken",
    "IssuedCredentials",
    "LoginContext",
    "LoginResult",
    "ManualClock",
    "MissingCredential",
    "NotFound",
    "NotSupported",
    "PasswordHasher",
    "PasswordTooLong",
    "PermissionDenied",
    "SatchelError",
    "SessionLimitExceeded",
    "Settings",
    "StoreUnavailable",
    "Strategy",
    "Throttled",
    "Transport",
    "UserExists",
    "UserService",
    "WeakPassword",
    "build_auth",
    "open_stores",
    "system_clock",
]
