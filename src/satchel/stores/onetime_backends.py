"""Which one-time token store lives in a given store backend: :func:`onetime_store_for`.

Kept apart from :mod:`satchel.stores.onetime` (records and protocol), which the backends
import, so the backends load only when a store of their kind is used.
"""

from __future__ import annotations

import sys
import weakref

from satchel.errors import ConfigurationError
from satchel.stores.onetime import MemoryOneTimeStore, OneTimeTokenStore

_memory: weakref.WeakKeyDictionary[object, MemoryOneTimeStore] = weakref.WeakKeyDictionary()


def onetime_store_for(backend: object) -> OneTimeTokenStore:
    """The one-time token store that lives in ``backend`` (a store of :func:`open_store`).

    Memory, SQLite, Redis and PostgreSQL backends keep the tokens next to their other data
    (a table, or keys under the same prefix); a backend that implements
    :class:`OneTimeTokenStore` itself is returned as it is.
    """
    from satchel.stores.memory import MemoryStore
    from satchel.stores.sqlite import SQLiteStore

    if isinstance(backend, OneTimeTokenStore):
        return backend
    inner = getattr(backend, "inner", None)  # a DeadlineStore: use what it wraps
    if inner is not None and not isinstance(backend, MemoryStore | SQLiteStore):
        return onetime_store_for(inner)
    if isinstance(backend, MemoryStore):
        if backend not in _memory:
            _memory[backend] = MemoryOneTimeStore()
        return _memory[backend]
    if isinstance(backend, SQLiteStore):
        from satchel.stores.sqlite_onetime import SQLiteOneTimeStore

        return SQLiteOneTimeStore(backend)
    redis_mod = sys.modules.get("satchel.stores.redis")
    if redis_mod is not None and isinstance(backend, redis_mod.RedisStore):
        from satchel.stores.redis_onetime import RedisOneTimeStore

        return RedisOneTimeStore(backend.client, prefix=backend.prefix)
    pg_mod = sys.modules.get("satchel.stores.postgres")
    if pg_mod is not None and isinstance(backend, pg_mod.PostgresStore):
        from satchel.stores.postgres_onetime import PostgresOneTimeStore

        return PostgresOneTimeStore(backend.pool, schema=backend.schema)
    raise ConfigurationError(
        f"{type(backend).__name__} keeps no one-time tokens: pass a OneTimeTokenStore."
    )
