"""Encoding of store records and the backend-independent rules, shared by every backend.

Records are stored as compact JSON (short keys, defaults omitted, bytes as unpadded
base64url) or, in the SQL backends, as typed columns — never pickle, so a tampered store can
at worst produce a record that fails validation. Every decoder checks types strictly and
raises :class:`CorruptRecord`; the backends turn that into "absent" plus a log line
(:func:`decode_or_none`, checklist F12). The per-user limit and refresh-rotation decisions
live here too, so the backends differ only in how they read and write atomically.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

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

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The session columns of the SQL backends, in the order of :func:`session_row`.
SESSION_COLUMNS = (
    "id, user_id, secret_hash, created_at, last_seen_at, idle_expires_at, absolute_expires_at,"
    " ip, user_agent, data, refresh_hash, refresh_prev_hash, refresh_rotated_at, generation"
)


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


def session_row(rec: SessionRecord) -> tuple[Any, ...]:
    """Values of :data:`SESSION_COLUMNS` for an INSERT, followed by ``expires_at``."""
    return (
        rec.id,
        rec.user_id,
        bytes(rec.secret_hash),
        float(rec.created_at),
        float(rec.last_seen_at),
        float(rec.idle_expires_at),
        float(rec.absolute_expires_at),
        rec.ip,
        rec.user_agent,
        data_to_json(rec.data),
        rec.refresh_hash,
        rec.refresh_prev_hash,
        None if rec.refresh_rotated_at is None else float(rec.refresh_rotated_at),
        rec.generation,
        float(rec.expires_at()),
    )


def session_from_row(row: Sequence[Any]) -> SessionRecord:
    """A session from a row of :data:`SESSION_COLUMNS`; raises :class:`CorruptRecord`."""
    return SessionRecord(
        id=text(row[0]),
        user_id=text(row[1]),
        secret_hash=blob(row[2]),
        created_at=num(row[3]),
        last_seen_at=num(row[4]),
        idle_expires_at=num(row[5]),
        absolute_expires_at=num(row[6]),
        ip=opt_text(row[7]),
        user_agent=opt_text(row[8]),
        data=data_from_json(row[9]),
        refresh_hash=opt_blob(row[10]),
        refresh_prev_hash=opt_blob(row[11]),
        refresh_rotated_at=opt_num(row[12]),
        generation=integer(row[13]),
    )


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


def user_from_text(raw: object) -> UserRecord:
    """A user stored as JSON text (SQL backends); raises :class:`CorruptRecord`."""
    return decode_user(text(raw))


def key_from_text(raw: object) -> StoredKey:
    """A key stored as JSON text (SQL backends); raises :class:`CorruptRecord`."""
    return decode_key(text(raw))


def log_corrupt(kind: str, backend: str, exc: Exception) -> None:
    """Log a record that failed to decode, without its identifier or content."""
    logger.warning("ignoring corrupt %s record in %s store: %s", kind, backend, exc)


def decode_or_none(
    kind: str, backend: str, decode: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs
) -> _R | None:
    """``decode(*args, **kwargs)``, or None for a corrupt record: it reads as absent (F12)."""
    try:
        return decode(*args, **kwargs)
    except CorruptRecord as exc:
        log_corrupt(kind, backend, exc)
        return None


def decode_all(
    kind: str, backend: str, decode: Callable[[Any], _R], raws: Iterable[Any]
) -> list[_R]:
    """``decode`` of each of ``raws``, skipping (and logging) the corrupt ones."""
    return [r for raw in raws if (r := decode_or_none(kind, backend, decode, raw)) is not None]


def page(items: Sequence[_R], *, limit: int, offset: int) -> list[_R]:
    """The ``limit`` items from ``offset`` on (negative values count as zero)."""
    start = max(0, offset)
    return list(items[start : start + max(0, limit)])


# --- rules shared by the backends that run them in Python ---------------------------------


def check_max_per_user(max_per_user: int | None) -> None:
    """Refuse a nonsensical per-user limit before touching the store."""
    if max_per_user is not None and (isinstance(max_per_user, bool) or max_per_user < 1):
        raise ConfigurationError("max_sessions_per_user must be at least 1 (or unset).")


def plan_create(
    sessions: Iterable[tuple[str, float, float]],
    *,
    now: float,
    max_per_user: int | None,
    on_exceed: OnExceed,
) -> tuple[list[str], list[str]]:
    """What ``SessionStore.create`` removes first: ``(expired, evicted)`` session ids.

    ``sessions`` are the user's ``(id, created_at, expires_at)``; expired ones do not count
    toward the limit. Raises :class:`SessionLimitExceeded` in ``DENY`` mode when full.
    """
    live: list[tuple[float, str]] = []
    expired: list[str] = []
    for sid, created_at, expires_at in sessions:
        if expires_at <= now:
            expired.append(sid)
        else:
            live.append((created_at, sid))
    return expired, plan_limit(live, max_per_user=max_per_user, on_exceed=on_exceed)


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


def _in_grace(
    current: bytes | None,
    previous: bytes | None,
    rotated_at: float | None,
    *,
    presented_hash: bytes,
    successor_hash: bytes,
    now: float,
    grace: float,
) -> bool:
    """A concurrent request just rotated ``presented_hash`` to the same successor."""
    return (
        previous is not None
        and current is not None
        and rotated_at is not None
        and hmac.compare_digest(previous, presented_hash)
        and hmac.compare_digest(current, successor_hash)
        and now - rotated_at <= grace
    )


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
    if _in_grace(
        rec.refresh_hash,
        rec.refresh_prev_hash,
        rec.refresh_rotated_at,
        presented_hash=presented_hash,
        successor_hash=successor_hash,
        now=now,
        grace=grace,
    ):
        return RotateOutcome.GRACE
    return RotateOutcome.REUSED


def classify_unswapped(
    state: Sequence[Any] | None,
    *,
    presented_hash: bytes,
    successor_hash: bytes,
    now: float,
    grace: float,
) -> RotateOutcome:
    """The outcome when a compare-and-set UPDATE matched no row (SQL backends).

    ``state`` is the session's re-read ``(refresh_hash, refresh_prev_hash,
    refresh_rotated_at, expires_at)`` row, or None when there is no such session.
    """
    if state is None or state[3] <= now:
        return RotateOutcome.UNKNOWN
    if _in_grace(
        state[0],
        state[1],
        state[2],
        presented_hash=presented_hash,
        successor_hash=successor_hash,
        now=now,
        grace=grace,
    ):
        return RotateOutcome.GRACE
    return RotateOutcome.REUSED


def apply_rotation(rec: SessionRecord, *, successor_hash: bytes, now: float) -> None:
    """Install ``successor_hash`` after a ROTATED decision."""
    rec.refresh_prev_hash = rec.refresh_hash
    rec.refresh_hash = successor_hash
    rec.refresh_rotated_at = now
    rec.generation += 1
