"""Encoding of store records, shared by every backend.

Records are stored as compact JSON (short keys, defaults omitted, bytes as unpadded
base64url) or, in the SQL backends, as typed columns — never pickle, so a tampered store can
at worst produce a record that fails validation. Every decoder checks types strictly with
:mod:`satchel.stores.fields` and raises :class:`CorruptRecord`; the backends turn that into
"absent" plus a log line (:func:`decode_or_none`, checklist F12).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ParamSpec, TypeVar

from satchel.errors import CorruptRecord
from satchel.jose import b64
from satchel.stores import rules
from satchel.stores.base import KeyState, SessionRecord, StoredKey, UserRecord
from satchel.stores.fields import (
    b64d,
    blob,
    boolean,
    dumps,
    integer,
    json_object,
    loads,
    num,
    obj,
    opt_b64,
    opt_blob,
    opt_num,
    opt_text,
    text,
    text_list,
)

logger = logging.getLogger("satchel.stores")

_P = ParamSpec("_P")
_R = TypeVar("_R")

#: The session columns of the SQL backends, in the order of :func:`session_row`.
SESSION_COLUMNS = (
    "id, user_id, secret_hash, created_at, last_seen_at, idle_expires_at, absolute_expires_at,"
    " ip, user_agent, data, refresh_hash, refresh_prev_hash, refresh_rotated_at, generation"
)


# --- sessions -----------------------------------------------------------------------------


def session_to_dict(rec: SessionRecord) -> dict[str, Any]:
    """Short-key dict of a session, without its id (the id is the storage key)."""
    out: dict[str, Any] = {
        "u": rec.user_id,
        "h": b64.encode(rec.secret_hash),
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
        out["rh"] = b64.encode(rec.refresh_hash)
    if rec.refresh_prev_hash is not None:
        out["rp"] = b64.encode(rec.refresh_prev_hash)
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
    return json_object(raw)


# --- users and keys -----------------------------------------------------------------------


def _user_core(user: UserRecord) -> dict[str, Any]:
    return {
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


def claims_to_json(claims: dict[str, Any]) -> str:
    """JSON text of a user's application claims; ValueError unless they are JSON values."""
    if not isinstance(claims, dict):
        raise ValueError("user claims must be a JSON object")
    try:
        return dumps(claims)
    except (TypeError, RecursionError) as exc:
        raise ValueError("user claims must be JSON values") from exc


def encode_user(user: UserRecord) -> str:
    """JSON text of a whole user record (memory and Redis).

    ``email_key`` is stored next to ``email`` so the Redis scripts can drop a replaced
    address from the index without normalising text in Lua; decoding ignores it.
    """
    record = _user_core(user)
    if user.email is not None:
        record["email"] = user.email
        record["email_key"] = rules.email_key(user.email)
    if user.claims:
        if not isinstance(user.claims, dict):
            raise ValueError("user claims must be a JSON object")
        record["claims"] = user.claims
    try:
        return dumps(record)
    except (TypeError, RecursionError) as exc:
        raise ValueError("user claims must be JSON values") from exc


def decode_user(raw: str | bytes | dict[str, Any]) -> UserRecord:
    """Parse :func:`encode_user` output; raises :class:`CorruptRecord`."""
    m = raw if isinstance(raw, dict) else obj(loads(raw))
    try:
        return UserRecord(
            id=text(m["id"]),
            username=text(m["username"]),
            username_key=text(m["username_key"]),
            password_hash=text(m["password_hash"]),
            roles=text_list(m.get("roles", [])),
            disabled=boolean(m.get("disabled", False)),
            created_at=num(m.get("created_at", 0.0)),
            updated_at=num(m.get("updated_at", 0.0)),
            valid_after=num(m.get("valid_after", 0.0)),
            email=opt_text(m.get("email")),
            claims=obj(m.get("claims", {})),
        )
    except KeyError as exc:
        raise CorruptRecord("missing user field") from exc


#: The user columns the SQL backends read, in the order :func:`user_from_row` expects.
USER_COLUMNS = "record, email, claims"


def user_row(user: UserRecord) -> tuple[str, str, str, str | None, str | None, str]:
    """``(id, username_key, record, email, email_key, claims)`` of a user for the SQL backends.

    ``record`` is the JSON of the fixed fields; the address, its unique key and the claims
    are columns of their own (the key carries the uniqueness index).
    """
    return (
        user.id,
        user.username_key,
        dumps(_user_core(user)),
        user.email,
        rules.opt_email_key(user.email),
        claims_to_json(user.claims),
    )


def user_from_row(row: Sequence[Any]) -> UserRecord:
    """A user from a row of :data:`USER_COLUMNS`; raises :class:`CorruptRecord`."""
    user = decode_user(text(row[0]))
    user.email = opt_text(row[1])
    claims = row[2]
    # Most accounts have no claims: skip the parser for the column default.
    user.claims = {} if claims == "{}" else json_object(claims)
    return user


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
