"""The tables of the SQLite store: numbered migrations and the statements run on them.

Version N is ``MIGRATIONS[N - 1]``; :func:`migrate` applies the pending ones in order and
records each in ``schema_migrations``, inside the caller's ``BEGIN IMMEDIATE`` transaction
so processes starting together never race. Statement text is constant, so sqlite3's
statement cache reuses the prepared statements; values are always bound, never formatted in.
"""

from __future__ import annotations

import sqlite3
import time

from satchel.errors import ConfigurationError
from satchel.stores import codec

# Each migration is a list of statements; version N is MIGRATIONS[N - 1].
MIGRATIONS: list[tuple[str, ...]] = [
    (
        """CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            user_id TEXT NOT NULL,
            secret_hash BLOB NOT NULL,
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            idle_expires_at REAL NOT NULL,
            absolute_expires_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            ip TEXT,
            user_agent TEXT,
            data TEXT NOT NULL DEFAULT '{}',
            refresh_hash BLOB,
            refresh_prev_hash BLOB,
            refresh_rotated_at REAL,
            generation INTEGER NOT NULL DEFAULT 0
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX sessions_user ON sessions (user_id, created_at)",
        "CREATE INDEX sessions_expiry ON sessions (expires_at)",
        "CREATE INDEX sessions_created ON sessions (created_at)",
        """CREATE TABLE users (
            id TEXT PRIMARY KEY,
            username_key TEXT NOT NULL UNIQUE,
            record TEXT NOT NULL
        ) STRICT""",
        """CREATE TABLE keys (
            kid TEXT PRIMARY KEY,
            created_at REAL NOT NULL,
            record TEXT NOT NULL
        ) STRICT""",
        "CREATE TABLE secrets (name TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT",
    ),
    (
        # The revocation bus of processes sharing this file (satchel.revocation.sqlite).
        """CREATE TABLE revocations (
            seq INTEGER PRIMARY KEY AUTOINCREMENT,
            event TEXT NOT NULL,
            until REAL NOT NULL
        ) STRICT""",
        "CREATE INDEX revocations_until ON revocations (until)",
    ),
    (
        # Accounts gain an address (unique by its normalised key) and application claims.
        "ALTER TABLE users ADD COLUMN email TEXT",
        "ALTER TABLE users ADD COLUMN email_key TEXT",
        "ALTER TABLE users ADD COLUMN claims TEXT NOT NULL DEFAULT '{}'",
        "CREATE UNIQUE INDEX users_email_key ON users (email_key)",
    ),
    (
        # One-time tokens of the account flows, by keyed hash (satchel.stores.onetime).
        """CREATE TABLE one_time_tokens (
            kind TEXT NOT NULL,
            token_hash BLOB NOT NULL,
            user_id TEXT,
            email TEXT,
            data TEXT NOT NULL DEFAULT '{}',
            created_at REAL NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (kind, token_hash)
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX one_time_tokens_user ON one_time_tokens (user_id, kind)",
        "CREATE INDEX one_time_tokens_expiry ON one_time_tokens (expires_at)",
    ),
    (
        # Second factors, one document per account, and single-use records (mfa_token,
        # WebAuthn challenges): satchel.stores.factors.
        """CREATE TABLE mfa_factors (
            user_id TEXT PRIMARY KEY,
            document TEXT NOT NULL,
            version INTEGER NOT NULL
        ) STRICT, WITHOUT ROWID""",
        """CREATE TABLE mfa_once (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            expires_at REAL NOT NULL
        ) STRICT, WITHOUT ROWID""",
        "CREATE INDEX mfa_once_expiry ON mfa_once (expires_at)",
    ),
]

# The statements below are built once from constants at import time; values are bound.
INSERT_SESSION = (
    f"INSERT INTO sessions ({codec.SESSION_COLUMNS}, expires_at)"  # noqa: S608
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
GET_SESSION = f"SELECT {codec.SESSION_COLUMNS} FROM sessions WHERE id = ?"  # noqa: S608
DELETE_SESSION = f"DELETE FROM sessions WHERE id = ? RETURNING {codec.SESSION_COLUMNS}"  # noqa: S608
LIST_USER = (
    f"SELECT {codec.SESSION_COLUMNS} FROM sessions"  # noqa: S608
    " WHERE user_id = ? ORDER BY created_at, id"
)
LIST_ALL = (
    f"SELECT {codec.SESSION_COLUMNS} FROM sessions"  # noqa: S608
    " ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?"
)
USER_LIVE = "SELECT id, created_at, expires_at FROM sessions WHERE user_id = ?"
DELETE_ONE = "DELETE FROM sessions WHERE id = ?"
DELETE_USER_EXPIRED = "DELETE FROM sessions WHERE user_id = ? AND expires_at <= ?"
TOUCH = (
    "UPDATE sessions SET last_seen_at = ?, idle_expires_at = ?,"
    " expires_at = min(?, absolute_expires_at) WHERE id = ?"
)
DELETE_USER = "DELETE FROM sessions WHERE user_id = ? AND id IS NOT ? RETURNING id"
PURGE = "DELETE FROM sessions WHERE expires_at <= ?"
ROTATE = (
    "UPDATE sessions SET refresh_prev_hash = refresh_hash, refresh_hash = ?,"
    " refresh_rotated_at = ?, generation = generation + 1"
    " WHERE id = ? AND refresh_hash = ? AND expires_at > ?"
)
ROTATE_STATE = (
    "SELECT refresh_hash, refresh_prev_hash, refresh_rotated_at, expires_at"
    " FROM sessions WHERE id = ?"
)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations on ``conn`` (in a write transaction); returns the version."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations"
        " (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    (current,) = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    if current > len(MIGRATIONS):
        raise ConfigurationError(
            f"SQLite schema version {current} is newer than this satchel "
            f"({len(MIGRATIONS)}); upgrade satchel."
        )
    for version in range(current + 1, len(MIGRATIONS) + 1):
        for statement in MIGRATIONS[version - 1]:
            conn.execute(statement)
        conn.execute(
            "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
            (version, time.time()),
        )
    return len(MIGRATIONS)


_USER_INSERT = (
    "INTO users (id, username_key, record, email, email_key, claims) VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_USER = f"INSERT {_USER_INSERT}"
IMPORT_USER = f"INSERT OR IGNORE {_USER_INSERT}"
GET_USER = f"SELECT {codec.USER_COLUMNS} FROM users WHERE id = ?"  # noqa: S608
GET_USER_BY_NAME = f"SELECT {codec.USER_COLUMNS} FROM users WHERE username_key = ?"  # noqa: S608
GET_USER_BY_EMAIL = f"SELECT {codec.USER_COLUMNS} FROM users WHERE email_key = ?"  # noqa: S608
UPDATE_USER = (
    "UPDATE users SET username_key = ?, record = ?, email = ?, email_key = ?, claims = ?"
    " WHERE id = ?"
)
LIST_USERS = (
    f"SELECT {codec.USER_COLUMNS} FROM users"  # noqa: S608
    " ORDER BY username_key LIMIT ? OFFSET ?"
)
MAX_USER_ROWID = "SELECT coalesce(max(rowid), 0) FROM users"
USERS_AFTER_ROWID = "SELECT id FROM users WHERE rowid > ?"
