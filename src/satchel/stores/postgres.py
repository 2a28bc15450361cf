"""PostgreSQL store (asyncpg pool): sessions, users, signing keys and server secrets.

All tables live in one schema (default ``satchel``); its migrations and statements are in
:mod:`satchel.stores.postgres_schema`.

Atomicity: the per-user session limit takes a per-user advisory transaction lock before
counting (row locks alone would let two first sessions race past a limit of one), and
refresh rotation is a single ``UPDATE ... WHERE refresh_hash = $presented`` compare-and-set;
a concurrent loser re-reads the committed row and is classified GRACE or REUSED.

Connection failures, timeouts (``command_timeout``) and server errors surface as
:class:`~satchel.errors.StoreUnavailable`.

Behind PgBouncer in transaction pooling mode, add ``?pgbouncer=true`` to the URL
(:mod:`satchel.stores.postgres_pool`): no statement outlives its transaction then.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from satchel.errors import (
    ConfigurationError,
    NotFound,
    StoreUnavailable,
    UserExists,
)
from satchel.stores import codec, postgres_pool, postgres_schema, rules
from satchel.stores.base import (
    CreateResult,
    OnExceed,
    RotateOutcome,
    SessionRecord,
    StoredKey,
    UserRecord,
)
from satchel.stores.postgres_schema import MIGRATIONS

__all__ = ["MIGRATIONS", "PostgresStore"]

logger = logging.getLogger("satchel.stores")

_BACKEND = "postgres"
DEFAULT_COMMAND_TIMEOUT = 2.0
DEFAULT_CONNECT_TIMEOUT = 2.0
#: Rows per INSERT statement of :meth:`PostgresStore.create_users`.
IMPORT_BATCH = 5000
_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")

_DB_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


class PostgresStore:
    """Sessions, users and keys in PostgreSQL; implements all three protocols.

    Use :meth:`connect` (or :func:`satchel.stores.open_stores` with ``postgresql://``).
    """

    def __init__(self, pool: Any, *, schema: str = "satchel", pooled: bool = False) -> None:
        self.pool = pool
        self.schema = schema
        #: True behind a transaction pooler (``?pgbouncer=true``): no LISTEN on this pool.
        self.pooled = pooled
        self._lock_ns = postgres_schema.lock_key(f"satchel-sessions:{schema}")
        self._sql = postgres_schema.statements(schema)

    def __repr__(self) -> str:
        pooled = ", pooled=True" if self.pooled else ""
        return f"PostgresStore(schema={self.schema!r}{pooled})"

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        schema: str = "satchel",
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        min_size: int = 1,
        max_size: int = 10,
        migrate: bool = True,
    ) -> PostgresStore:
        """Open a pool on ``dsn`` and (by default) apply pending migrations.

        ``schema`` must be a lower-case SQL identifier. Unreachable servers raise
        :class:`~satchel.errors.StoreUnavailable` after ``connect_timeout`` seconds.
        ``?pgbouncer=true`` on ``dsn`` turns off asyncpg's prepared-statement cache
        (:mod:`satchel.stores.postgres_pool`).
        """
        if not _SCHEMA_RE.match(schema):
            raise ConfigurationError(
                "The PostgreSQL schema must be a lower-case identifier (letters, digits, _)."
            )
        dsn, pooled = postgres_pool.split_pooler_option(dsn)
        try:
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                command_timeout=command_timeout,
                timeout=connect_timeout,
                **postgres_pool.pool_options(pooled),
            )
        except (asyncpg.ClientConfigurationError, ValueError) as exc:
            raise ConfigurationError("Invalid PostgreSQL URL.") from exc
        except asyncpg.InvalidAuthorizationSpecificationError as exc:
            raise ConfigurationError("PostgreSQL rejected the credentials.") from exc
        except asyncpg.InvalidCatalogNameError as exc:
            # An operator's mistake, not an outage: say which database and how to fix it.
            raise ConfigurationError(postgres_pool.missing_database(dsn)) from exc
        except _DB_ERRORS as exc:
            logger.warning("PostgreSQL store error: %s", type(exc).__name__)
            raise StoreUnavailable() from exc
        store = cls(pool, schema=schema, pooled=pooled)
        if migrate:
            try:
                await store.migrate()
            except BaseException:
                await pool.close()
                raise
        return store

    @asynccontextmanager
    async def _errors(self) -> AsyncIterator[None]:
        try:
            yield
        except _DB_ERRORS as exc:
            logger.warning("PostgreSQL store error: %s", type(exc).__name__)
            raise StoreUnavailable() from exc

    async def migrate(self) -> int:
        """Create the schema and apply pending migrations; returns the schema version."""
        async with self._errors(), self.pool.acquire() as conn, conn.transaction():
            return await postgres_schema.migrate(conn, self.schema)

    def _session(self, row: Sequence[Any] | None) -> SessionRecord | None:
        if row is None:
            return None
        return codec.decode_or_none("session", _BACKEND, codec.session_from_row, row)

    def _sessions(self, rows: Sequence[Sequence[Any]]) -> list[SessionRecord]:
        return codec.decode_all("session", _BACKEND, codec.session_from_row, rows)

    # --- SessionStore ---------------------------------------------------------------------

    async def create(
        self,
        record: SessionRecord,
        *,
        max_per_user: int | None = None,
        on_exceed: OnExceed = OnExceed.EVICT_OLDEST,
        now: float,
    ) -> CreateResult:
        """Persist a new session atomically with the per-user limit."""
        rules.check_max_per_user(max_per_user)
        q = self._sql
        async with self._errors(), self.pool.acquire() as conn, conn.transaction():
            await conn.execute(q["user_lock"], self._lock_ns, record.user_id)
            expired, evict = rules.plan_create(
                await conn.fetch(q["user_live"], record.user_id),
                now=now,
                max_per_user=max_per_user,
                on_exceed=on_exceed,
            )
            if expired or evict:
                await conn.execute(q["delete_many"], [*expired, *evict])
            try:
                await conn.execute(q["insert"], *codec.session_row(record))
            except asyncpg.UniqueViolationError as exc:
                raise ValueError("session id already exists") from exc
        return CreateResult(evicted=evict)

    async def get(self, session_id: str) -> SessionRecord | None:
        """The session, or None (also for a corrupt record)."""
        async with self._errors():
            row = await self.pool.fetchrow(self._sql["get"], session_id)
        return self._session(row)

    async def touch(self, session_id: str, *, last_seen_at: float, idle_expires_at: float) -> bool:
        """Record activity; an UPDATE, so a deleted session is never recreated."""
        async with self._errors():
            found = await self.pool.fetchval(
                self._sql["touch"], float(last_seen_at), float(idle_expires_at), session_id
            )
        return found is not None

    async def update_data(self, session_id: str, data: dict[str, Any]) -> bool:
        """Replace the session's ``data``; an UPDATE, so a deleted session is never recreated."""
        async with self._errors():
            found = await self.pool.fetchval(
                self._sql["set_data"], codec.data_to_json(data), session_id
            )
        return found is not None

    async def delete(self, session_id: str) -> SessionRecord | None:
        """Remove a session; idempotent."""
        async with self._errors():
            row = await self.pool.fetchrow(self._sql["delete"], session_id)
        return self._session(row)

    async def delete_user(self, user_id: str, *, keep: str | None = None) -> list[str]:
        """Remove every session of the user except ``keep``."""
        async with self._errors():
            rows = await self.pool.fetch(self._sql["delete_user"], user_id, keep)
        return [row[0] for row in sorted(rows, key=lambda r: (r[1], r[0]))]

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        """The user's sessions, oldest first."""
        async with self._errors():
            rows = await self.pool.fetch(self._sql["list_user"], user_id)
        return self._sessions(rows)

    async def list_all(self, *, limit: int = 100, offset: int = 0) -> list[SessionRecord]:
        """Every user's sessions, newest first."""
        async with self._errors():
            rows = await self.pool.fetch(self._sql["list_all"], max(0, limit), max(0, offset))
        return self._sessions(rows)

    async def purge_expired(self, now: float) -> int:
        """Delete sessions past their idle or absolute expiry."""
        async with self._errors():
            status = await self.pool.execute(self._sql["purge"], float(now))
        return int(status.rsplit(" ", 1)[-1])

    async def rotate_refresh(
        self,
        session_id: str,
        *,
        presented_hash: bytes,
        successor_hash: bytes,
        now: float,
        grace: float,
    ) -> RotateOutcome:
        """Compare-and-set in one UPDATE; an expired session is UNKNOWN."""
        q = self._sql
        async with self._errors():
            done = await self.pool.fetchval(
                q["rotate"], bytes(successor_hash), float(now), session_id, bytes(presented_hash)
            )
            if done is not None:
                return RotateOutcome.ROTATED
            row = await self.pool.fetchrow(q["rotate_state"], session_id)
        return rules.classify_unswapped(
            row, presented_hash=presented_hash, successor_hash=successor_hash, now=now, grace=grace
        )

    # --- UserStore ------------------------------------------------------------------------

    def _user(self, row: Sequence[Any] | None) -> UserRecord | None:
        if row is None:
            return None
        return codec.decode_or_none("user", _BACKEND, codec.user_from_row, row)

    async def create_user(self, user: UserRecord) -> None:
        """Insert; UserExists on a duplicate username_key, id or email."""
        row = codec.user_row(user)
        async with self._errors():
            try:
                await self.pool.execute(self._sql["create_user"], *row)
            except asyncpg.UniqueViolationError:
                raise UserExists() from None

    async def create_users(self, users: Sequence[UserRecord]) -> list[str]:
        """Insert many in one transaction; returns the usernames refused (taken name/id/email).

        ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING id`` in batches
        of :data:`IMPORT_BATCH` rows, so each statement stays well inside the command time-out.
        """
        tried = rules.first_of_each(users)
        rows = [codec.user_row(users[p]) for p in tried]
        inserted: set[str] = set()
        async with self._errors(), self.pool.acquire() as conn, conn.transaction():
            for start in range(0, len(rows), IMPORT_BATCH):
                columns = zip(*rows[start : start + IMPORT_BATCH], strict=True)
                written = await conn.fetch(self._sql["import_users"], *map(list, columns))
                inserted.update(r[0] for r in written)
        return rules.refused(users, tried, inserted)

    async def get_user(self, user_id: str) -> UserRecord | None:
        """By id."""
        async with self._errors():
            row = await self.pool.fetchrow(self._sql["get_user"], user_id)
        return self._user(row)

    async def get_user_by_name(self, username_key: str) -> UserRecord | None:
        """By normalised username."""
        async with self._errors():
            row = await self.pool.fetchrow(self._sql["get_user_by_name"], username_key)
        return self._user(row)

    async def get_user_by_email(self, email: str) -> UserRecord | None:
        """By address, compared by its NFKC + casefold key."""
        key = rules.email_key(email)
        async with self._errors():
            row = await self.pool.fetchrow(self._sql["get_user_by_email"], key)
        return self._user(row)

    async def update_user(self, user: UserRecord) -> None:
        """Replace by id; NotFound if absent, UserExists if the new username or email is taken."""
        row = codec.user_row(user)
        async with self._errors():
            try:
                found = await self.pool.fetchval(self._sql["update_user"], *row)
            except asyncpg.UniqueViolationError:
                raise UserExists() from None
        if found is None:
            raise NotFound("No such user.")

    async def list_users(self, *, limit: int = 100, offset: int = 0) -> list[UserRecord]:
        """Users ordered by username key."""
        async with self._errors():
            rows = await self.pool.fetch(self._sql["list_users"], max(0, limit), max(0, offset))
        return codec.decode_all("user", _BACKEND, codec.user_from_row, rows)

    # --- KeyStore -------------------------------------------------------------------------

    async def list_keys(self) -> list[StoredKey]:
        """Every key, oldest first."""
        async with self._errors():
            rows = await self.pool.fetch(self._sql["list_keys"])
        return codec.decode_all("key", _BACKEND, codec.key_from_text, (row[0] for row in rows))

    async def save_key(self, key: StoredKey) -> None:
        """Insert or replace by kid."""
        async with self._errors():
            await self.pool.execute(
                self._sql["save_key"], key.kid, float(key.created_at), codec.encode_key(key)
            )

    async def get_secret(self, name: str) -> bytes | None:
        """A named server secret."""
        async with self._errors():
            value = await self.pool.fetchval(self._sql["get_secret"], name)
        return None if value is None else bytes(value)

    async def set_secret_if_absent(self, name: str, value: bytes) -> bytes:
        """First writer wins (INSERT ... ON CONFLICT DO NOTHING, then read back)."""
        async with self._errors():
            await self.pool.execute(self._sql["set_secret"], name, bytes(value))
            stored = await self.pool.fetchval(self._sql["get_secret"], name)
        return bytes(stored)

    async def close(self) -> None:
        """Close the pool."""
        try:
            await self.pool.close()
        except _DB_ERRORS:
            logger.debug("ignoring error while closing the PostgreSQL pool")
