"""Second factors in the SQLite file (tables ``mfa_factors`` and ``mfa_once``).

SQLite runs one writer at a time across every process sharing the file, so the conditional
``UPDATE ... WHERE version = ?`` and ``DELETE ... RETURNING`` are atomic without more
locking. The connection and its error mapping are the store's own (:class:`SQLiteStore`).
"""

from __future__ import annotations

from typing import Final

from satchel.stores.sqlite import SQLiteStore

_LOAD: Final = "SELECT document, version FROM mfa_factors WHERE user_id = ?"
_INSERT: Final = (
    "INSERT INTO mfa_factors (user_id, document, version) VALUES (?, ?, 1)"
    " ON CONFLICT (user_id) DO NOTHING"
)
_UPDATE: Final = (
    "UPDATE mfa_factors SET document = ?, version = version + 1 WHERE user_id = ? AND version = ?"
)
_REMOVE: Final = "DELETE FROM mfa_factors WHERE user_id = ?"
_PUT: Final = "INSERT OR REPLACE INTO mfa_once (key, value, expires_at) VALUES (?, ?, ?)"
_PEEK: Final = "SELECT value FROM mfa_once WHERE key = ? AND expires_at > ?"
_TAKE: Final = "DELETE FROM mfa_once WHERE key = ? RETURNING value, expires_at"
_PURGE: Final = "DELETE FROM mfa_once WHERE expires_at <= ?"


class SQLiteFactorStore:
    """The second factors of ``store``'s file."""

    def __init__(self, store: SQLiteStore) -> None:
        self.store = store

    def __repr__(self) -> str:
        return f"SQLiteFactorStore({self.store.path!r})"

    async def load(self, user_id: str) -> tuple[str | None, int]:
        with self.store._errors():
            row = self.store._conn.execute(_LOAD, (user_id,)).fetchone()
        return (None, 0) if row is None else (str(row[0]), int(row[1]))

    async def save(self, user_id: str, document: str, version: int) -> bool:
        with self.store._tx() as conn:
            if version == 0:
                return conn.execute(_INSERT, (user_id, document)).rowcount > 0
            return conn.execute(_UPDATE, (document, user_id, version)).rowcount > 0

    async def remove(self, user_id: str) -> bool:
        with self.store._tx() as conn:
            return conn.execute(_REMOVE, (user_id,)).rowcount > 0

    async def put_once(self, key: str, value: str, expires_at: float, now: float) -> None:
        with self.store._tx() as conn:
            conn.execute(_PUT, (key, value, float(expires_at)))

    async def peek_once(self, key: str, now: float) -> str | None:
        with self.store._errors():
            row = self.store._conn.execute(_PEEK, (key, float(now))).fetchone()
        return None if row is None else str(row[0])

    async def take_once(self, key: str, now: float) -> str | None:
        with self.store._tx() as conn:
            row = conn.execute(_TAKE, (key,)).fetchone()
        # An expired record is deleted all the same: it could never be used again.
        return str(row[0]) if row is not None and float(row[1]) > now else None

    async def purge_expired(self, now: float) -> int:
        with self.store._tx() as conn:
            return conn.execute(_PURGE, (float(now),)).rowcount
