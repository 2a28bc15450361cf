"""JSON encoding of store records, shared by every backend.

Records are stored as compact JSON (short keys, defaults omitted, bytes as unpadded
base64url) — never pickle, so a tampered store can at worst produce a record that fails
validation. Every decoder checks types strictly and raises :class:`CorruptRecord`; the
backends turn that into "absent" plus a log line (checklist F12).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
from typing import Any

from satchel.errors import ConfigurationError, CorruptRecord, SessionLimitExceeded
from satchel.stores.base import (
    KeyState,
    OnExceed,
    RotateOutcome,
    SessionRecord,
    StoredKey,
    UserRecord,
)

logger = logging.getLogger("satchel.stores")

_SEPARATORS = (",", ":")


def b64e(value: bytes) -> str:
    """Unpadded base64url text."""
    return base64.urlsafe_b64encode(value).rstrip(b"=").decode("ascii")


def b64d(value: object) -> bytes:
    """Inverse of :func:`b64e`; raises :class:`CorruptRecord` on anything else."""
    if not isinstance(value, str):
        raise CorruptRecord("expected base64 text")
    try:
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError) as exc:
        raise CorruptRecord("invalid base64") from exc


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


# --- field validators ---------------------------------------------------------------------


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


def text(value: object) -> str:
    """A string."""
    if not isinstance(value, str):
        raise CorruptRecord("expected a string")
    return value


def opt_text(value: object) -> str | None:
    """A string or None."""
    return None if value is None else text(value)


def opt_b64(value: object) -> bytes | None:
    """Base64 text or None."""
    return None if value is None else b64d(value)


def obj(value: object) -> dict[str, Any]:
    """A JSON object."""
    if not isinstance(value, dict):
        raise CorruptRecord("expected an object")
    return value


# --- sessions -----------------------------------------------------------------------------


def session_to_dict(rec: SessionRecord) -> dict[str, Any]:
    """Short-key dict of a session, without its id (the id is the storage key)."""
    out: dict[str, Any] = {
        "u": rec.user_id,
        "h": b64e(rec.secret_hash),
        "c": rec.created_at,
        "l": rec.last_seen_at,
        "ie": rec.idle_expires_at,
        "ae": rec.absolute_expires_at,
    }
    if rec.ip is not None:
        out["ip"] = rec.ip
    if rec.user_agent is not None:
        out["ua"] = rec.user_agent
    if rec.data:
        out["d"] = rec.data
    if rec.refresh_hash is not None:
        out["rh"] = b64e(rec.refresh_hash)
    if rec.refresh_prev_hash is not None:
        out["rp"] = b64e(rec.refresh_prev_hash)
    if rec.refresh_rotated_at is not None:
        out["rt"] = rec.refresh_rotated_at
    if rec.generation:
        out["g"] = rec.generation
    return out


def session_from_dict(session_id: str, d: object) -> SessionRecord:
    """Inverse of :func:`session_to_dict`; raises :class:`CorruptRecord`."""
    m = obj(d)
    try:
        return SessionRecord(
            id=session_id,
            user_id=text(m["u"]),
            secret_hash=b64d(m["h"]),
            created_at=num(m["c"]),
            last_seen_at=num(m["l"]),
            idle_expires_at=num(m["ie"]),
            absolute_expires_at=num(m["ae"]),
            ip=opt_text(m.get("ip")),
            user_agent=opt_text(m.get("ua")),
            data=obj(m.get("d", {})),
            refresh_hash=opt_b64(m.get("rh")),
            refresh_prev_hash=opt_b64(m.get("rp")),
            refresh_rotated_at=opt_num(m.get("rt")),
            generation=integer(m.get("g", 0)),
        )
    except KeyError as exc:
        raise CorruptRecord("missing session field") from exc


def encode_session(rec: SessionRecord) -> bytes:
    """Compact JSON bytes of a session (id omitted)."""
    return dumps(session_to_dict(rec)).encode()


def decode_session(session_id: str, raw: str | bytes) -> SessionRecord:
    """Parse :func:`encode_session` output; raises :class:`CorruptRecord`."""
    return session_from_dict(session_id, loads(raw))


def data_to_json(data: dict[str, Any]) -> str:
    """The free-form ``data`` field as JSON text."""
    return dumps(data)


def data_from_json(raw: object) -> dict[str, Any]:
    """Parse the ``data`` field; raises :class:`CorruptRecord`."""
    if raw is None:
        return {}
    if isinstance(raw, dict):
        return raw
    if not isinstance(raw, str | bytes):
        raise CorruptRecord("expected JSON text")
    return obj(loads(raw))


# --- users and keys -----------------------------------------------------------------------


def encode_user(user: UserRecord) -> str:
    """JSON text of a user record."""
    return dumps(
        {
            "id": user.id,
            "username": user.username,
            "username_key": user.username_key,
            "password_hash": user.password_hash,
            "roles": list(user.roles),
            "disabled": user.disabled,
            "created_at": user.created_at,
            "updated_at": user.updated_at,
            "valid_after": user.valid_after,
        }
    )


def decode_user(raw: str | bytes | dict[str, Any]) -> UserRecord:
    """Parse :func:`encode_user` output; raises :class:`CorruptRecord`."""
    m = raw if isinstance(raw, dict) else obj(loads(raw))
    roles = m.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise CorruptRecord("expected a list of role names")
    disabled = m.get("disabled", False)
    if not isinstance(disabled, bool):
        raise CorruptRecord("expected a boolean")
    try:
        return UserRecord(
            id=text(m["id"]),
            username=text(m["username"]),
            username_key=text(m["username_key"]),
            password_hash=text(m["password_hash"]),
            roles=list(roles),
            disabled=disabled,
            created_at=num(m.get("created_at", 0.0)),
            updated_at=num(m.get("updated_at", 0.0)),
            valid_after=num(m.get("valid_after", 0.0)),
        )
    except KeyError as exc:
        raise CorruptRecord("missing user field") from exc


def encode_key(key: StoredKey) -> str:
    """JSON text of a stored key."""
    return dumps(
        {
            "kid": key.kid,
            "alg": key.alg,
            "material": key.material,
            "state": key.state.value,
            "created_at": key.created_at,
            "not_after": key.not_after,
        }
    )


def decode_key(raw: str | bytes | dict[str, Any]) -> StoredKey:
    """Parse :func:`encode_key` output; raises :class:`CorruptRecord`."""
    m = raw if isinstance(raw, dict) else obj(loads(raw))
    try:
        return StoredKey(
            kid=text(m["kid"]),
            alg=text(m["alg"]),
            material=text(m["material"]),
            state=KeyState(text(m["state"])),
            created_at=num(m["created_at"]),
            not_after=opt_num(m.get("not_after")),
        )
    except (KeyError, ValueError) as exc:
        raise CorruptRecord("invalid key record") from exc


def log_corrupt(kind: str, backend: str, exc: Exception) -> None:
    """Log a record that failed to decode, without its identifier or content."""
    logger.warning("ignoring corrupt %s record in %s store: %s", kind, backend, exc)


# --- rules shared by the backends that run them in Python ---------------------------------


def check_max_per_user(max_per_user: int | None) -> None:
    """Refuse a nonsensical per-user limit before touching the store."""
    if max_per_user is not None and (isinstance(max_per_user, bool) or max_per_user < 1):
        raise ConfigurationError("max_sessions_per_user must be at least 1 (or unset).")


def plan_limit(
    live: list[tuple[float, str]],
    *,
    max_per_user: int | None,
    on_exceed: OnExceed,
) -> list[str]:
    """Session ids to evict before adding one more to ``live`` ((created_at, id) pairs).

    Raises :class:`SessionLimitExceeded` in ``DENY`` mode when the account is full.
    """
    if max_per_user is None or len(live) < max_per_user:
        return []
    if on_exceed is OnExceed.DENY:
        raise SessionLimitExceeded()
    ordered = sorted(live)
    return [sid for _, sid in ordered[: len(live) - max_per_user + 1]]


def classify_rotation(
    rec: SessionRecord,
    *,
    presented_hash: bytes,
    successor_hash: bytes,
    now: float,
    grace: float,
) -> RotateOutcome:
    """The compare-and-set decision of ``SessionStore.rotate_refresh`` (no mutation)."""
    if rec.refresh_hash is not None and hmac.compare_digest(rec.refresh_hash, presented_hash):
        return RotateOutcome.ROTATED
    if (
        rec.refresh_prev_hash is not None
        and rec.refresh_hash is not None
        and rec.refresh_rotated_at is not None
        and hmac.compare_digest(rec.refresh_prev_hash, presented_hash)
        and hmac.compare_digest(rec.refresh_hash, successor_hash)
        and now - rec.refresh_rotated_at <= grace
    ):
        return RotateOutcome.GRACE
    return RotateOutcome.REUSED


def apply_rotation(rec: SessionRecord, *, successor_hash: bytes, now: float) -> None:
    """Install ``successor_hash`` after a ROTATED decision."""
    rec.refresh_prev_hash = rec.refresh_hash
    rec.refresh_hash = successor_hash
    rec.refresh_rotated_at = now
    rec.generation += 1
