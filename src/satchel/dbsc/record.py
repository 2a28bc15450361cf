"""Where a session record keeps its DBSC device key, and how the rest of satchel reads it.

The key lives in the record's free-form ``data`` (``data["dbsc"]``: algorithm, public JWK,
thumbprint, registration time), which every session backend already stores and rewrites in
place, so binding a session needs no schema change and a record without it is an unbound
session, exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from satchel.dbsc.proof import DeviceKey
from satchel.stores.base import SessionRecord

#: Where a session record keeps its device key.
DATA_KEY: Final = "dbsc"


@dataclass(frozen=True, slots=True)
class BoundKey:
    """A session's device key as the device lists show it."""

    alg: str
    thumbprint: str
    registered_at: float


def bound_key(record: SessionRecord) -> BoundKey | None:
    """The device key registered for ``record``, if it has one."""
    data = record.data.get(DATA_KEY)
    key = DeviceKey.from_data(data)
    if key is None or not isinstance(data, dict):
        return None
    at = data.get("at")
    return BoundKey(key.alg, key.thumbprint, float(at) if isinstance(at, int | float) else 0.0)


def device_key_of(data: dict[str, Any]) -> str | None:
    """The thumbprint of the device key kept in a session's ``data`` (the identity's
    ``device_key``), or None for a session never bound."""
    value = data.get(DATA_KEY)
    if isinstance(value, dict):
        jkt = value.get("jkt")
        if isinstance(jkt, str) and jkt:
            return jkt
    return None
