"""Strict JSON and the typed field checks every record decoder is built from.

A stored value is untrusted input: a tampered or half-written store must at worst produce a
record that fails these checks, never a wrong type slipping into policy code. Each check
returns the value or raises :class:`~satchel.errors.CorruptRecord`. Bytes travel in JSON as
canonical unpadded base64url through :mod:`satchel.jose.b64`, the project's one codec.
"""

from __future__ import annotations

import json
import math
from typing import Any

from satchel.errors import CorruptRecord
from satchel.jose import b64

_SEPARATORS = (",", ":")


def dumps(obj: Any) -> str:
    """Compact, deterministic JSON; NaN and infinities are refused."""
    return json.dumps(obj, separators=_SEPARATORS, ensure_ascii=False, allow_nan=False)


def _reject_constant(name: str) -> Any:
    raise CorruptRecord(f"non-standard JSON constant {name}")


def loads(raw: str | bytes) -> Any:
    """Strict JSON: NaN/Infinity rejected; any failure is :class:`CorruptRecord`."""
    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, TypeError, RecursionError) as exc:
        raise CorruptRecord("invalid JSON") from exc


def b64d(value: object) -> bytes:
    """Canonical unpadded base64url text as bytes; anything else is :class:`CorruptRecord`."""
    if not isinstance(value, str):
        raise CorruptRecord("expected base64 text")
    try:
        return b64.decode(value)
    except ValueError as exc:
        raise CorruptRecord("invalid base64") from exc


def num(value: object) -> float:
    """A finite JSON number (booleans are not numbers)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CorruptRecord("expected a number")
    result = float(value)
    if not math.isfinite(result):
        raise CorruptRecord("expected a finite number")
    return result


def opt_num(value: object) -> float | None:
    """A number or None."""
    return None if value is None else num(value)


def integer(value: object) -> int:
    """A JSON integer (booleans are not integers)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise CorruptRecord("expected an integer")
    return value


def boolean(value: object) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise CorruptRecord("expected a boolean")
    return value


def text(value: object) -> str:
    """A string."""
    if not isinstance(value, str):
        raise CorruptRecord("expected a string")
    return value


def opt_text(value: object) -> str | None:
    """A string or None."""
    return None if value is None else text(value)


def text_list(value: object) -> list[str]:
    """A list of strings (a fresh list, never the decoded one)."""
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise CorruptRecord("expected a list of strings")
    return list(value)


def opt_b64(value: object) -> bytes | None:
    """Base64 text or None."""
    return None if value is None else b64d(value)


def blob(value: object) -> bytes:
    """A binary column value."""
    if not isinstance(value, bytes):
        raise CorruptRecord("expected bytes")
    return value


def opt_blob(value: object) -> bytes | None:
    """Bytes or None."""
    return None if value is None else blob(value)


def obj(value: object) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise CorruptRecord("expected an object")
    return value


def json_object(raw: object) -> dict[str, Any]:
    """A JSON object column: stored text (or an already decoded dict); None reads as ``{}``."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str | bytes):
        raise CorruptRecord("expected JSON text")
    return obj(loads(raw))
