"""Strategies: what a credential is (session id, signed JWT, or the hybrid of both).

:class:`SessionStrategy` loads with the core; ``JWTStrategy`` (``satchel.strategies.jwt``),
``RefreshingJWTStrategy`` (``satchel.strategies.jwt_refresh``) and ``HybridStrategy``
(``satchel.strategies.hybrid``) load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from satchel.strategies.base import LoginContext, Strategy, SupportsRefresh, SupportsSessions
from satchel.strategies.session import SessionStrategy
from satchel.strategies.session_policy import SessionPolicy

if TYPE_CHECKING:
    from satchel.strategies.hybrid import HybridStrategy
    from satchel.strategies.jwt import JWTStrategy
    from satchel.strategies.jwt_refresh import RefreshingJWTStrategy

_LAZY = {
    "JWTStrategy": "satchel.strategies.jwt",
    "RefreshingJWTStrategy": "satchel.strategies.jwt_refresh",
    "HybridStrategy": "satchel.strategies.hybrid",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'satchel.strategies' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "HybridStrategy",
    "JWTStrategy",
    "LoginContext",
    "RefreshingJWTStrategy",
    "SessionPolicy",
    "SessionStrategy",
    "Strategy",
    "SupportsRefresh",
    "SupportsSessions",
]
