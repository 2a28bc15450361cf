"""How a session is laid out as a Redis hash, and back.

A session is a small hash rather than one JSON string so the Lua scripts can change single
fields (``touch``, ``rotate_refresh``) without re-encoding JSON in Lua, whose cjson rounds
numbers to 14 digits. Field names are one or two letters to keep a session under 300 bytes
(``MEMORY USAGE`` of a session with a UUID user id, an IP and a refresh hash: about 290;
the per-user index adds roughly 60 bytes per session plus 100 per user):
``u`` user id, ``h`` secret hash, ``c`` created, ``l`` last seen, ``i`` idle expiry, ``a``
absolute expiry, ``ip``, ``ua``, ``d`` data (JSON), ``r`` refresh hash, ``p`` previous
refresh hash, ``t`` rotated at, ``g`` generation. Times are integer milliseconds (listpack
keeps them as 8-byte integers instead of 18-character decimals), so sub-millisecond precision
is dropped — Redis expiry is millisecond-grained anyway. Hashes are raw bytes (only SHA-256
digests, never a token).
"""

from __future__ import annotations

from satchel.errors import CorruptRecord
from satchel.stores import codec
from satchel.stores.base import SessionRecord

_SESSION_TEXT_FIELDS = {b"u", b"c", b"l", b"i", b"a", b"ip", b"ua", b"d", b"t", b"g"}


def ms(value: float) -> str:
    """Seconds as integer milliseconds: listpack stores these as compact integers."""
    return str(round(float(value) * 1000))


def session_fields(rec: SessionRecord) -> dict[str, bytes | str]:
    """The Redis hash fields of a session (see the module docstring)."""
    fields: dict[str, bytes | str] = {
        "u": rec.user_id,
        "h": bytes(rec.secret_hash),
        "c": ms(rec.created_at),
        "l": ms(rec.last_seen_at),
        "i": ms(rec.idle_expires_at),
        "a": ms(rec.absolute_expires_at),
    }
    if rec.ip is not None:
        fields["ip"] = rec.ip
    if rec.user_agent is not None:
        fields["ua"] = rec.user_agent
    if rec.data:
        fields["d"] = codec.data_to_json(rec.data)
    if rec.refresh_hash is not None:
        fields["r"] = bytes(rec.refresh_hash)
    if rec.refresh_prev_hash is not None:
        fields["p"] = bytes(rec.refresh_prev_hash)
    if rec.refresh_rotated_at is not None:
        fields["t"] = ms(rec.refresh_rotated_at)
    if rec.generation:
        fields["g"] = str(rec.generation)
    return fields


def _seconds(raw: str | None) -> float:
    if raw is None:
        raise CorruptRecord("missing session field")
    try:
        return int(raw) / 1000
    except ValueError as exc:
        raise CorruptRecord("expected integer milliseconds") from exc


def session_from_fields(session_id: str, raw: dict[bytes, bytes]) -> SessionRecord:
    """Inverse of :func:`session_fields`; raises :class:`CorruptRecord`."""
    try:
        t = {k.decode(): v.decode() for k, v in raw.items() if k in _SESSION_TEXT_FIELDS}
    except UnicodeDecodeError as exc:
        raise CorruptRecord("invalid text field") from exc
    if "u" not in t or b"h" not in raw:
        raise CorruptRecord("missing session field")
    try:
        generation = int(t.get("g", "0"))
    except ValueError as exc:
        raise CorruptRecord("expected an integer") from exc
    return SessionRecord(
        id=session_id,
        user_id=t["u"],
        secret_hash=raw[b"h"],
        created_at=_seconds(t.get("c")),
        last_seen_at=_seconds(t.get("l")),
        idle_expires_at=_seconds(t.get("i")),
        absolute_expires_at=_seconds(t.get("a")),
        ip=t.get("ip"),
        user_agent=t.get("ua"),
        data=codec.data_from_json(t.get("d")),
        refresh_hash=raw.get(b"r"),
        refresh_prev_hash=raw.get(b"p"),
        refresh_rotated_at=None if "t" not in t else _seconds(t["t"]),
        generation=generation,
    )
