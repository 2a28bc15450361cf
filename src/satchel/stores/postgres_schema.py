"""The tables of the PostgreSQL store: numbered migrations and the statements run on them.

Everything lives in one schema (default ``satchel``) so several deployments or test runs can
share a database. Migrations are numbered steps recorded in ``schema_migrations`` and run
under ``pg_advisory_xact_lock``, so processes starting together apply each step once.
Statement templates are expanded once per store (:func:`statements`), so each statement text
stays constant and asyncpg's prepared-statement cache keeps working.
"""

from __future__ import annotations

import hashlib
from typing import Any

from satchel.errors import ConfigurationError
from satchel.stores import codec

# Each migration is a list of statements; ``{s}`` is the quoted schema name.
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE {s}.sessions (
            id text PRIMARY KEY,
            user_id text NOT NULL,
            secret_hash bytea NOT NULL,
            created_at double precision NOT NULL,
            last_seen_at double precision NOT NULL,
            idle_expires_at double precision NOT NULL,
            absolute_expires_at double precision NOT NULL,
            expires_at double precision NOT NULL,
            ip text,
            user_agent text,
            data jsonb NOT NULL DEFAULT '{{}}',
            refresh_hash bytea,
            refresh_prev_hash bytea,
            refresh_rotated_at double precision,
            generation integer NOT NULL DEFAULT 0
        )""",
        "CREATE INDEX sessions_user_idx ON {s}.sessions (user_id, created_at)",
        "CREATE INDEX sessions_expiry_idx ON {s}.sessions (expires_at)",
        "CREATE INDEX sessions_created_idx ON {s}.sessions (created_at)",
        """CREATE TABLE {s}.users (
            id text PRIMARY KEY,
            username_key text NOT NULL UNIQUE,
            record jsonb NOT NULL
        )""",
        """CREATE TABLE {s}.keys (
            kid text PRIMARY KEY,
            created_at double precision NOT NULL,
            record jsonb NOT NULL
        )""",
        "CREATE TABLE {s}.secrets (name text PRIMARY KEY, value bytea NOT NULL)",
    ),
    (
        # Accounts gain an address (unique by its normalised key) and application claims.
        "ALTER TABLE {s}.users ADD COLUMN email text, ADD COLUMN email_key text,"
        " ADD COLUMN claims jsonb NOT NULL DEFAULT '{{}}'",
        "CREATE UNIQUE INDEX users_email_key_idx ON {s}.users (email_key)",
    ),
    (
        # One-time tokens of the account flows, by keyed hash (satchel.stores.onetime).
        """CREATE TABLE {s}.one_time_tokens (
            kind text NOT NULL,
            token_hash bytea NOT NULL,
            user_id text,
            email text,
            data jsonb NOT NULL DEFAULT '{{}}',
            created_at double precision NOT NULL,
            expires_at double precision NOT NULL,
            PRIMARY KEY (kind, token_hash)
        )""",
        "CREATE INDEX one_time_tokens_user_idx ON {s}.one_time_tokens (user_id, kind)",
        "CREATE INDEX one_time_tokens_expiry_idx ON {s}.one_time_tokens (expires_at)",
    ),
    (
        # Second factors, one document per account, and single-use records (mfa_token,
        # WebAuthn challenges): satchel.stores.factors.
        """CREATE TABLE {s}.mfa_factors (
            user_id text PRIMARY KEY,
            document text NOT NULL,
            version bigint NOT NULL
        )""",
        """CREATE TABLE {s}.mfa_once (
            key text PRIMARY KEY,
            value text NOT NULL,
            expires_at double precision NOT NULL
        )""",
        "CREATE INDEX mfa_once_expiry_idx ON {s}.mfa_once (expires_at)",
    ),
]

# Statement templates: {s} is the validated, quoted schema, {cols} the session columns and
# {user_cols} the user columns; they are expanded once per store, so each text stays constant.
SQL_TEMPLATES: dict[str, str] = {
    "insert": "INSERT INTO {s}.sessions ({cols}, expires_at)"
    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    "get": "SELECT {cols} FROM {s}.sessions WHERE id = $1",
    "user_lock": "SELECT pg_advisory_xact_lock($1, hashtext($2))",
    "user_live": "SELECT id, created_at, expires_at FROM {s}.sessions WHERE user_id = $1",
    "delete_many": "DELETE FROM {s}.sessions WHERE id = ANY($1::text[])",
    "touch": "UPDATE {s}.sessions SET last_seen_at = $1, idle_expires_at = $2,"
    " expires_at = least($2, absolute_expires_at) WHERE id = $3 RETURNING 1",
    "set_data": "UPDATE {s}.sessions SET data = $1::jsonb WHERE id = $2 RETURNING 1",
    "delete": "DELETE FROM {s}.sessions WHERE id = $1 RETURNING {cols}",
    "delete_user": "DELETE FROM {s}.sessions"
    " WHERE user_id = $1 AND id IS DISTINCT FROM $2 RETURNING id, created_at",
    "list_user": "SELECT {cols} FROM {s}.sessions WHERE user_id = $1 ORDER BY created_at, id",
    "list_all": "SELECT {cols} FROM {s}.sessions"
    " ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2",
    "purge": "DELETE FROM {s}.sessions WHERE expires_at <= $1",
    "rotate": "UPDATE {s}.sessions SET refresh_prev_hash = refresh_hash,"
    " refresh_hash = $1, refresh_rotated_at = $2, generation = generation + 1"
    " WHERE id = $3 AND refresh_hash = $4 AND expires_at > $2 RETURNING 1",
    "rotate_state": "SELECT refresh_hash, refresh_prev_hash, refresh_rotated_at,"
    " expires_at FROM {s}.sessions WHERE id = $1",
    "create_user": "INSERT INTO {s}.users (id, username_key, record, email, email_key, claims)"
    " VALUES ($1, $2, $3::jsonb, $4, $5, $6::jsonb)",
    # One statement per batch of an import: conflicts on any unique key (id, username_key,
    # email_key) skip the row, and RETURNING names the rows written.
    "import_users": "INSERT INTO {s}.users (id, username_key, record, email, email_key, claims)"
    " SELECT i, n, r::jsonb, e, k, c::jsonb"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[])"
    " AS batch (i, n, r, e, k, c) ON CONFLICT DO NOTHING RETURNING id",
    "get_user": "SELECT {user_cols} FROM {s}.users WHERE id = $1",
    "get_user_by_name": "SELECT {user_cols} FROM {s}.users WHERE username_key = $1",
    "get_user_by_email": "SELECT {user_cols} FROM {s}.users WHERE email_key = $1",
    "update_user": "UPDATE {s}.users SET username_key = $2, record = $3::jsonb, email = $4,"
    " email_key = $5, claims = $6::jsonb WHERE id = $1 RETURNING 1",
    "list_users": "SELECT {user_cols} FROM {s}.users ORDER BY username_key, id LIMIT $1 OFFSET $2",
    "list_keys": "SELECT record FROM {s}.keys ORDER BY created_at, kid",
    "save_key": "INSERT INTO {s}.keys (kid, created_at, record)"
    " VALUES ($1, $2, $3::jsonb) ON CONFLICT (kid) DO UPDATE"
    " SET created_at = excluded.created_at, record = excluded.record",
    "get_secret": "SELECT value FROM {s}.secrets WHERE name = $1",
    "set_secret": "INSERT INTO {s}.secrets (name, value) VALUES ($1, $2)"
    " ON CONFLICT (name) DO NOTHING",
}


def lock_key(text: str) -> int:
    """A stable signed 32-bit advisory lock key."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big", signed=True)


def statements(schema: str) -> dict[str, str]:
    """The statements of :data:`SQL_TEMPLATES` for ``schema`` (a validated identifier)."""
    s = f'"{schema}"'
    return {
        name: sql.format(s=s, cols=codec.SESSION_COLUMNS, user_cols=codec.USER_COLUMNS)
        for name, sql in SQL_TEMPLATES.items()
    }


async def migrate(conn: Any, schema: str) -> int:
    """Create ``schema`` and apply pending migrations in ``conn``'s open transaction."""
    s = f'"{schema}"'
    await conn.execute("SELECT pg_advisory_xact_lock($1)", lock_key(f"satchel-migrate:{schema}"))
    await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
    await conn.execute(
        f"CREATE TABLE IF NOT EXISTS {s}.schema_migrations"
        " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    current = await conn.fetchval(
        f"SELECT coalesce(max(version), 0) FROM {s}.schema_migrations"  # noqa: S608
    )
    if current > len(MIGRATIONS):
        raise ConfigurationError(
            f"PostgreSQL schema version {current} is newer than this satchel "
            f"({len(MIGRATIONS)}); upgrade satchel."
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        for statement in MIGRATIONS[version - 1]:
            await conn.execute(statement.format(s=s))
        await conn.execute(
            f"INSERT INTO {s}.schema_migrations (version) VALUES ($1)",  # noqa: S608
            version,
        )
    return len(MIGRATIONS)
