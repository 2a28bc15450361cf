"""Store backends and :func:`open_stores`, which builds them from a URL.

Supported URLs:

- ``memory://`` — in-process dictionaries (tests, single-process development).
- ``sqlite:///relative/path.db`` or ``sqlite:////absolute/path.db`` — one local file.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from satchel.errors import ConfigurationError
from satchel.stores.base import (
    CreateResult,
    KeyState,
    KeyStore,
    OnExceed,
    RotateOutcome,
    SessionRecord,
    SessionStore,
    StoredKey,
    Stores,
    UserRecord,
    UserStore,
)
from satchel.stores.memory import MemoryStore
from satchel.stores.sqlite import SQLiteStore

__all__ = [
    "CreateResult",
    "KeyState",
    "KeyStore",
    "MemoryStore",
    "OnExceed",
    "RotateOutcome",
    "SQLiteStore",
    "SessionRecord",
    "SessionStore",
    "StoredKey",
    "Stores",
    "UserRecord",
    "UserStore",
    "open_stores",
    "redact_url",
    "sqlite_path",
]


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``, safe for messages and logs."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        netloc = parts.netloc.rsplit("@", 1)[1]
        user = parts.username or ""
        return parts._replace(netloc=f"{user}:***@{netloc}").geturl()
    except ValueError:
        return "<unparseable URL>"


def sqlite_path(url: str) -> str:
    """The file path of a ``sqlite:///`` URL (three slashes: relative, four: absolute)."""
    if not url.lower().startswith("sqlite:///"):
        raise ConfigurationError(
            "A SQLite URL is sqlite:///relative/path.db or sqlite:////absolute/path.db."
        )
    path = url[len("sqlite:///") :]
    if not path or "?" in path or "#" in path:
        raise ConfigurationError(
            "A SQLite URL needs a file path and takes no options, e.g. sqlite:///satchel.db."
        )
    return path


async def _open_one(url: str) -> MemoryStore | SQLiteStore:
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "memory":
        if url.rstrip("/") not in ("memory:", "memory:/", "memory://"):
            raise ConfigurationError("A memory store URL is just 'memory://'.")
        return MemoryStore()
    if scheme == "sqlite":
        return SQLiteStore.open(sqlite_path(url))
    raise ConfigurationError(
        f"Unsupported store URL {redact_url(url)!r}: expected memory://, sqlite:///path, "
        "redis://host or postgresql://host."
    )


async def open_stores(
    url: str,
    *,
    sessions_url: str | None = None,
    prefix: str = "satchel",
) -> Stores:
    """Open the backend(s) named by ``url`` and return the three stores.

    ``sessions_url`` places sessions in a different backend (e.g. users and keys in
    PostgreSQL, sessions in Redis). ``prefix`` namespaces Redis keys. A bad URL raises
    :class:`~satchel.errors.ConfigurationError` without echoing any password.
    """
    main = await _open_one(url)
    sessions = main if sessions_url is None else await _open_one(sessions_url)
    return Stores(sessions=sessions, users=main, keys=main)
