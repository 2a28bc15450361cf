"""One-time tokens in PostgreSQL (table ``one_time_tokens`` of the store's schema,
migration 3).

``consume`` is a single ``DELETE ... RETURNING``: of concurrent deletes of one row exactly
one returns it, in any number of processes. Driver errors become
:class:`~satchel.errors.StoreUnavailable`, as in :mod:`satchel.stores.postgres`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import asyncpg

from satchel.errors import StoreUnavailable
from satchel.stores.onetime import OneTimeRecord, data_from_json, data_json

logger = logging.getLogger("satchel.stores")

_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_COLUMNS: Final = "kind, token_hash, user_id, email, data::text, created_at, expires_at"
_TEMPLATES: Final = {
    "put": "INSERT INTO {s}.one_time_tokens"
    " (kind, token_hash, user_id, email, data, created_at, expires_at)"
    " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT (kind, token_hash) DO UPDATE"
    " SET user_id = excluded.user_id, email = excluded.email, data = excluded.data,"
    " created_at = excluded.created_at, expires_at = excluded.expires_at",
    # An expired row of the same key is replaced; a live one is left alone ("INSERT 0 0").
    "add": "INSERT INTO {s}.one_time_tokens"
    " (kind, token_hash, user_id, email, data, created_at, expires_at)"
    " VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7) ON CONFLICT (kind, token_hash) DO UPDATE"
    " SET user_id = excluded.user_id, email = excluded.email, data = excluded.data,"
    " created_at = excluded.created_at, expires_at = excluded.expires_at"
    " WHERE {s}.one_time_tokens.expires_at <= $8",
    "peek": "SELECT {cols} FROM {s}.one_time_tokens"
    " WHERE kind = $1 AND token_hash = $2 AND expires_at > $3",
    "consume": "DELETE FROM {s}.one_time_tokens WHERE kind = $1 AND token_hash = $2"
    " RETURNING {cols}",
    "list": "SELECT {cols} FROM {s}.one_time_tokens"
    " WHERE user_id = $1 AND kind = $2 AND expires_at > $3 ORDER BY created_at",
    "delete_user": "DELETE FROM {s}.one_time_tokens WHERE user_id = $1 AND kind = $2",
    "purge": "DELETE FROM {s}.one_time_tokens WHERE expires_at <= $1",
}


def _record(row: Sequence[Any] | None) -> OneTimeRecord | None:
    if row is None:
        return None
    return OneTimeRecord(
        kind=str(row[0]),
        token_hash=bytes(row[1]),
        user_id=row[2],
        email=row[3],
        data=data_from_json(row[4]),
        created_at=float(row[5]),
        expires_at=float(row[6]),
    )


def _count(status: str) -> int:
    # asyncpg returns the command tag, e.g. "DELETE 3".
    tail = status.rsplit(" ", 1)[-1]
    return int(tail) if tail.isdigit() else 0


class PostgresOneTimeStore:
    """The one-time tokens of a :class:`~satchel.stores.postgres.PostgresStore`'s schema."""

    def __init__(self, pool: Any, *, schema: str = "satchel") -> None:
        self.pool = pool
        self.schema = schema
        quoted = f'"{schema}"'
        self._sql = {k: v.format(s=quoted, cols=_COLUMNS) for k, v in _TEMPLATES.items()}

    def __repr__(self) -> str:
        return f"PostgresOneTimeStore(schema={self.schema!r})"

    @asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except _DB_ERRORS as exc:
            logger.warning("PostgreSQL store error: %s", type(exc).__name__)
            raise StoreUnavailable() from exc

    async def put(self, record: OneTimeRecord) -> None:
        async with self._errors():
            await self.pool.execute(
                self._sql["put"],
                record.kind,
                bytes(record.token_hash),
                record.user_id,
                record.email,
                data_json(record),
                float(record.created_at),
                float(record.expires_at),
            )

    async def add(self, record: OneTimeRecord, now: float) -> bool:
        async with self._errors():
            status = await self.pool.execute(
                self._sql["add"],
                record.kind,
                bytes(record.token_hash),
                record.user_id,
                record.email,
                data_json(record),
                float(record.created_at),
                float(record.expires_at),
                float(now),
            )
        return _count(status) == 1

    async def peek(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        async with self._errors():
            row = await self.pool.fetchrow(self._sql["peek"], kind, bytes(token_hash), now)
        return _record(row)

    async def consume(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        async with self._errors():
            row = await self.pool.fetchrow(self._sql["consume"], kind, bytes(token_hash))
        record = _record(row)
        return record if record is not None and record.expires_at > now else None

    async def list_for_user(self, kind: str, user_id: str, now: float) -> list[OneTimeRecord]:
        async with self._errors():
            rows = await self.pool.fetch(self._sql["list"], user_id, kind, now)
        return [r for r in map(_record, rows) if r is not None]

    async def delete_for_user(self, kind: str, user_id: str) -> int:
        async with self._errors():
            return _count(await self.pool.execute(self._sql["delete_user"], user_id, kind))

    async def purge_expired(self, now: float) -> int:
        async with self._errors():
            return _count(await self.pool.execute(self._sql["purge"], now))
