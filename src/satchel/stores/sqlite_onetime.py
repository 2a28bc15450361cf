"""One-time tokens in the SQLite file (table ``one_time_tokens``, migration 4).

``consume`` is a single ``DELETE ... RETURNING``: SQLite runs one writer at a time across
every process sharing the file, so exactly one of several concurrent consumers gets the row.
The connection and its error mapping are the store's own (:class:`SQLiteStore`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from satchel.stores.fields import opt_text, text
from satchel.stores.onetime import OneTimeRecord, data_from_json, data_json
from satchel.stores.sqlite import SQLiteStore

_COLUMNS: Final = "kind, token_hash, user_id, email, data, created_at, expires_at"
_PUT: Final = (
    f"INSERT OR REPLACE INTO one_time_tokens ({_COLUMNS})"  # noqa: S608
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# An expired row of the same key is replaced; a live one is left alone (no row changes).
_ADD: Final = (
    f"INSERT INTO one_time_tokens ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)"  # noqa: S608
    " ON CONFLICT (kind, token_hash) DO UPDATE SET user_id = excluded.user_id,"
    " email = excluded.email, data = excluded.data, created_at = excluded.created_at,"
    " expires_at = excluded.expires_at WHERE one_time_tokens.expires_at <= ?"
)
_PEEK: Final = (
    f"SELECT {_COLUMNS} FROM one_time_tokens"  # noqa: S608
    " WHERE kind = ? AND token_hash = ? AND expires_at > ?"
)
_CONSUME: Final = (
    f"DELETE FROM one_time_tokens WHERE kind = ? AND token_hash = ? RETURNING {_COLUMNS}"  # noqa: S608
)
_LIST: Final = (
    f"SELECT {_COLUMNS} FROM one_time_tokens"  # noqa: S608
    " WHERE user_id = ? AND kind = ? AND expires_at > ? ORDER BY created_at"
)
_DELETE_USER: Final = "DELETE FROM one_time_tokens WHERE user_id = ? AND kind = ?"
_PURGE: Final = "DELETE FROM one_time_tokens WHERE expires_at <= ?"


def _record(row: Sequence[Any] | None) -> OneTimeRecord | None:
    if row is None:
        return None
    return OneTimeRecord(
        kind=text(row[0]),
        token_hash=bytes(row[1]),
        user_id=opt_text(row[2]),
        email=opt_text(row[3]),
        data=data_from_json(text(row[4])),
        created_at=float(row[5]),
        expires_at=float(row[6]),
    )


def _row(record: OneTimeRecord) -> tuple[Any, ...]:
    return (
        record.kind,
        bytes(record.token_hash),
        record.user_id,
        record.email,
        data_json(record),
        float(record.created_at),
        float(record.expires_at),
    )


class SQLiteOneTimeStore:
    """The one-time tokens of ``store``'s file."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"SQLiteOneTimeStore({self.store.path!r})"

    async def put(self, record: OneTimeRecord) -> None:
        with self.store._tx() as conn:
            conn.execute(_PUT, _row(record))

    async def add(self, record: OneTimeRecord, now: float) -> bool:
        with self.store._tx() as conn:
            return conn.execute(_ADD, (*_row(record), float(now))).rowcount == 1

    async def peek(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        with self.store._errors():
            row = self.store._conn.execute(_PEEK, (kind, bytes(token_hash), now)).fetchone()
        return _record(row)

    async def consume(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        with self.store._tx() as conn:
            row = conn.execute(_CONSUME, (kind, bytes(token_hash))).fetchone()
        record = _record(row)
        # An expired row is deleted all the same: it could never be used again.
        return record if record is not None and record.expires_at > now else None

    async def list_for_user(self, kind: str, user_id: str, now: float) -> list[OneTimeRecord]:
        with self.store._errors():
            rows = self.store._conn.execute(_LIST, (user_id, kind, now)).fetchall()
        return [r for r in map(_record, rows) if r is not None]

    async def delete_for_user(self, kind: str, user_id: str) -> int:
        with self.store._tx() as conn:
            return conn.execute(_DELETE_USER, (user_id, kind)).rowcount

    async def purge_expired(self, now: float) -> int:
        with self.store._tx() as conn:
            return conn.execute(_PURGE, (now,)).rowcount
