"""Second factors in the store: the protocol, the in-memory backend, and
:func:`factor_store_for`, which finds the backend beside a store.

Two kinds of record, both opaque text to the store (their meaning is
:mod:`satchel.accounts.mfa`'s):

* one **factor document** per account (TOTP, recovery-code hashes, passkeys), replaced only
  by a compare-and-set on its version: :meth:`FactorStore.save` writes version ``n + 1``
  only when the stored one is still ``n`` (0: none yet), so two concurrent uses of one
  recovery code, one TOTP step or one passkey signature cannot both succeed;
* **single-use records** under a key (the mfa_token of a half-finished login, a WebAuthn
  challenge), with an expiry: :meth:`FactorStore.take_once` deletes and returns one in a
  single atomic step, so of any number of requests presenting it exactly one gets it.

Tables (SQLite, PostgreSQL) come from numbered migrations; Redis keys live under the
store's prefix (``<prefix>:mfa:…``).
"""

from __future__ import annotations

import weakref
from typing import Any, Protocol, runtime_checkable

from satchel.errors import ConfigurationError


@runtime_checkable
class FactorStore(Protocol):
    """Factor documents and single-use records (see the module docstring)."""

    async def load(self, user_id: str) -> tuple[str | None, int]:
        """The account's document and its version; ``(None, 0)`` when there is none."""
        ...

    async def save(self, user_id: str, document: str, version: int) -> bool:
        """Write ``document`` as version ``version + 1`` if the stored version is still
        ``version`` (0: only if there is none); False when another write came first."""
        ...

    async def remove(self, user_id: str) -> bool:
        """Delete the account's document; False when there was none."""
        ...

    async def put_once(self, key: str, value: str, expires_at: float, now: float) -> None:
        """Store a single-use record until ``expires_at`` (replacing one with the same key);
        ``now`` is the caller's clock, which every expiry is measured on."""
        ...

    async def peek_once(self, key: str, now: float) -> str | None:
        """A live single-use record, left in place; None when absent or expired."""
        ...

    async def take_once(self, key: str, now: float) -> str | None:
        """Delete and return a single-use record atomically; None when absent or expired."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Delete expired single-use records; returns how many went."""
        ...


class MemoryFactorStore:
    """Factors in this process's memory (beside a :class:`~satchel.stores.memory.MemoryStore`).

    No method awaits between reading and writing, so each is atomic on the event loop.
    """

    def __init__(self) -> None:
        self._docs: dict[str, tuple[str, int]] = {}
        self._once: dict[str, tuple[str, float]] = {}

    def __repr__(self) -> str:
        return f"MemoryFactorStore(accounts={len(self._docs)})"

    async def load(self, user_id: str) -> tuple[str | None, int]:
        found = self._docs.get(user_id)
        return (None, 0) if found is None else found

    async def save(self, user_id: str, document: str, version: int) -> bool:
        current = self._docs.get(user_id, (None, 0))[1]
        if current != version:
            return False
        self._docs[user_id] = (document, version + 1)
        return True

    async def remove(self, user_id: str) -> bool:
        return self._docs.pop(user_id, None) is not None

    async def put_once(self, key: str, value: str, expires_at: float, now: float) -> None:
        self._once[key] = (value, expires_at)

    async def peek_once(self, key: str, now: float) -> str | None:
        found = self._once.get(key)
        return found[0] if found is not None and found[1] > now else None

    async def take_once(self, key: str, now: float) -> str | None:
        found = self._once.pop(key, None)
        return found[0] if found is not None and found[1] > now else None

    async def purge_expired(self, now: float) -> int:
        dead = [key for key, (_, until) in self._once.items() if until <= now]
        for key in dead:
            del self._once[key]
        return len(dead)


# One memory factor store per memory store, so every Auth over that store sees the same.
_memory: weakref.WeakKeyDictionary[Any, MemoryFactorStore] = weakref.WeakKeyDictionary()


def factor_store_for(backend: Any) -> FactorStore:
    """The factor store living beside ``backend`` (a store from :func:`open_store`, possibly
    behind a deadline wrapper): same file, same database schema, same Redis prefix."""
    inner = getattr(backend, "inner", backend)  # a DeadlineStore's backend
    # By class name: the optional drivers are imported only when their backend is in use.
    kinds = {cls.__name__ for cls in type(inner).__mro__}
    kind = type(inner).__name__
    if "MemoryStore" in kinds:
        if inner not in _memory:
            _memory[inner] = MemoryFactorStore()
        return _memory[inner]
    if "SQLiteStore" in kinds:
        from satchel.stores.sqlite_factors import SQLiteFactorStore

        return SQLiteFactorStore(inner)
    if "RedisStore" in kinds:
        from satchel.stores.redis_factors import RedisFactorStore

        return RedisFactorStore(inner.client, prefix=inner.prefix)
    if "PostgresStore" in kinds:
        from satchel.stores.postgres_factors import PostgresFactorStore

        return PostgresFactorStore(inner.pool, schema=inner.schema)
    if isinstance(inner, FactorStore):
        return inner
    raise ConfigurationError(
        f"No second-factor store for {kind}: pass a FactorStore to the MFA service."
    )
