"""Second factors in PostgreSQL (tables ``mfa_factors`` and ``mfa_once`` in the store's
schema).

The compare-and-set is one ``UPDATE ... WHERE version = $n`` (or an ``INSERT ... ON
CONFLICT DO NOTHING`` for the first version) and a take is one ``DELETE ... RETURNING``: each
a single statement, atomic under concurrent writers.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg

from satchel.errors import StoreUnavailable

logger = logging.getLogger("satchel.stores")

_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_SQL = {
    "load": "SELECT document, version FROM {s}.mfa_factors WHERE user_id = $1",
    "insert": "INSERT INTO {s}.mfa_factors (user_id, document, version) VALUES ($1, $2, 1)"
    " ON CONFLICT (user_id) DO NOTHING RETURNING 1",
    "update": "UPDATE {s}.mfa_factors SET document = $2, version = version + 1"
    " WHERE user_id = $1 AND version = $3 RETURNING 1",
    "remove": "DELETE FROM {s}.mfa_factors WHERE user_id = $1 RETURNING 1",
    "put": "INSERT INTO {s}.mfa_once (key, value, expires_at) VALUES ($1, $2, $3)"
    " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at",
    "peek": "SELECT value FROM {s}.mfa_once WHERE key = $1 AND expires_at > $2",
    "take": "DELETE FROM {s}.mfa_once WHERE key = $1 RETURNING value, expires_at",
    "purge": "DELETE FROM {s}.mfa_once WHERE expires_at <= $1",
}


class PostgresFactorStore:
    """The second factors in ``schema`` (a validated identifier) through ``pool``."""

    def __init__(self, pool: Any, *, schema: str) -> None:
        self.pool = pool
        self.schema = schema
        quoted = f'"{schema}"'
        self._sql = {name: sql.format(s=quoted) for name, sql in _SQL.items()}

    def __repr__(self) -> str:
        return f"PostgresFactorStore(schema={self.schema!r})"

    async def _run(self, method: str, name: str, *args: Any) -> Any:
        try:
            return await getattr(self.pool, method)(self._sql[name], *args)
        except _DB_ERRORS as exc:
            logger.warning("PostgreSQL factor store error: %s", type(exc).__name__)
            raise StoreUnavailable() from exc

    async def load(self, user_id: str) -> tuple[str | None, int]:
        row = await self._run("fetchrow", "load", user_id)
        return (None, 0) if row is None else (str(row[0]), int(row[1]))

    async def save(self, user_id: str, document: str, version: int) -> bool:
        if version == 0:
            return await self._run("fetchval", "insert", user_id, document) is not None
        return await self._run("fetchval", "update", user_id, document, version) is not None

    async def remove(self, user_id: str) -> bool:
        return await self._run("fetchval", "remove", user_id) is not None

    async def put_once(self, key: str, value: str, expires_at: float, now: float) -> None:
        await self._run("execute", "put", key, value, float(expires_at))

    async def peek_once(self, key: str, now: float) -> str | None:
        value = await self._run("fetchval", "peek", key, float(now))
        return None if value is None else str(value)

    async def take_once(self, key: str, now: float) -> str | None:
        row = await self._run("fetchrow", "take", key)
        # An expired record is deleted all the same: it could never be used again.
        return str(row[0]) if row is not None and float(row[1]) > now else None

    async def purge_expired(self, now: float) -> int:
        status = await self._run("execute", "purge", float(now))
        return int(str(status).rsplit(" ", 1)[-1])
