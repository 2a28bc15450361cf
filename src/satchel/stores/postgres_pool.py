"""PostgreSQL behind a transaction pooler (PgBouncer ``pool_mode = transaction``).

A transaction pooler hands each *transaction* to whichever server connection is free, so
nothing may outlive one: not a named prepared statement, not a session advisory lock, not a
``LISTEN``. ``?pgbouncer=true`` on the store URL says the URL points at such a pooler:

- asyncpg's statement cache is turned off (``statement_cache_size=0``). asyncpg then sends
  every statement unnamed, with its Parse, Bind and Execute in one batch before one Sync, so
  the whole exchange stays on one server connection. (The cache's named statements would be
  prepared on one server connection and executed on another: "prepared statement
  __asyncpg_stmt_N__ does not exist".)
- Locks are transaction-level already: migrations run in one transaction under
  ``pg_advisory_xact_lock``, and so does the per-user session limit
  (:mod:`satchel.stores.postgres`); none is held across statements.
- ``LISTEN``/``NOTIFY`` cannot go through it (a listener is a session; the pooler would give
  the LISTEN's server connection to someone else and the notifications to nobody). The
  revocation bus therefore needs a direct URL: ``SATCHEL_BUS_URL`` (see
  :func:`satchel.revocation.make_bus`).

The option is satchel's, not libpq's: it is removed before the URL reaches asyncpg (which
would otherwise send it to the server as a run-time parameter).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from satchel.errors import ConfigurationError

OPTION = "pgbouncer"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def split_pooler_option(dsn: str) -> tuple[str, bool]:
    """``(dsn without ?pgbouncer=..., whether it names a transaction pooler)``."""
    try:
        parts = urlsplit(dsn)
    except ValueError as exc:
        raise ConfigurationError("Invalid PostgreSQL URL.") from exc
    if not parts.query:
        return dsn, False
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    pooled = False
    kept: list[tuple[str, str]] = []
    for name, value in pairs:
        if name.lower() != OPTION:
            kept.append((name, value))
            continue
        text = value.strip().lower()
        if text in _TRUE:
            pooled = True
        elif text not in _FALSE:
            raise ConfigurationError("The PostgreSQL URL option pgbouncer must be true or false.")
    if len(kept) == len(pairs):
        return dsn, False
    return urlunsplit(parts._replace(query=urlencode(kept))), pooled


def is_pooled(dsn: str) -> bool:
    """True when ``dsn`` carries ``?pgbouncer=true``."""
    return split_pooler_option(dsn)[1]


def pool_options(pooled: bool) -> dict[str, Any]:
    """Extra ``asyncpg.create_pool`` arguments for a direct or a pooled connection."""
    return {"statement_cache_size": 0} if pooled else {}


def missing_database(url: str) -> str:
    """The one line for a PostgreSQL URL whose database does not exist, with the fix."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/") or "(the user's default)"
    where = parts.hostname or "localhost"
    if parts.port:
        where += f":{parts.port}"
    return (
        f"the PostgreSQL database {name!r} does not exist on {where}: create it "
        f"(createdb -h {parts.hostname or 'localhost'} {name}) or fix the URL."
    )
