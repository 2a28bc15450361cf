"""Signing keys over time: the rollout schedule (pure) and the manager that stores them.

:mod:`~satchel.keys.schedule` decides which stored key signs and which verify at an
instant; :mod:`~satchel.keys.manager` loads, creates, rotates and publishes them through a
:class:`~satchel.stores.base.KeyStore`. The key objects themselves are in :mod:`satchel.jose`.
The names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from satchel.keys.manager import KeyManager, jwks_cache_control
    from satchel.keys.schedule import (
        DEFAULT_PUBLISH_DELAY,
        DEFAULT_RELOAD_INTERVAL,
        KeyRole,
        KeyStatus,
        describe,
        key_statuses,
        signing_record,
    )

_LAZY: dict[str, str] = {
    "KeyManager": "satchel.keys.manager",
    "jwks_cache_control": "satchel.keys.manager",
    "DEFAULT_PUBLISH_DELAY": "satchel.keys.schedule",
    "DEFAULT_RELOAD_INTERVAL": "satchel.keys.schedule",
    "KeyRole": "satchel.keys.schedule",
    "KeyStatus": "satchel.keys.schedule",
    "describe": "satchel.keys.schedule",
    "key_statuses": "satchel.keys.schedule",
    "signing_record": "satchel.keys.schedule",
}

__all__ = [
    "DEFAULT_PUBLISH_DELAY",
    "DEFAULT_RELOAD_INTERVAL",
    "KeyManager",
    "KeyRole",
    "KeyStatus",
    "describe",
    "jwks_cache_control",
    "key_statuses",
    "signing_record",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'satchel.keys' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
