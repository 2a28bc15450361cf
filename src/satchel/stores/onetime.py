"""One-time tokens in the store: the record, the protocol every backend implements and the
in-memory backend.

The backends live next to their stores (``sqlite_onetime``, ``redis_onetime``,
``postgres_onetime``); :func:`satchel.stores.onetime_backends.onetime_store_for` finds the
one of a given store. A record is found by ``(kind, token_hash)``; only the keyed hash
of a token is ever stored (:mod:`satchel.accounts.tokens`). ``consume`` is the single-use
guarantee: it deletes and returns the record in one atomic step (one statement, one
command), so of two processes presenting the same token at once exactly one gets it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar, runtime_checkable

from satchel.errors import CorruptRecord, StoreUnavailable

_T = TypeVar("_T")


@dataclass(slots=True, repr=False)
class OneTimeRecord:
    """A stored one-time token: what it is for, for whom, until when, and its data.

    ``data`` holds JSON values only (an address to confirm, roles of an invite, a password
    fingerprint), never a secret.
    """

    kind: str
    token_hash: bytes
    created_at: float
    expires_at: float
    user_id: str | None = None
    email: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"OneTimeRecord(kind={self.kind!r}, user_id={self.user_id!r})"


def encode(record: OneTimeRecord) -> str:
    """JSON text of a record (the memory and Redis backends)."""
    out: dict[str, Any] = {
        "k": record.kind,
        "h": record.token_hash.hex(),
        "c": record.created_at,
        "x": record.expires_at,
    }
    if record.user_id is not None:
        out["u"] = record.user_id
    if record.email is not None:
        out["e"] = record.email
    if record.data:
        out["d"] = record.data
    return json.dumps(out, separators=(",", ":"), allow_nan=False)


def decode(raw: str | bytes) -> OneTimeRecord:
    """Parse :func:`encode` output; :class:`CorruptRecord` when it is not one."""
    try:
        m = json.loads(raw)
        data = m.get("d", {})
        if not isinstance(data, dict):
            raise TypeError("data")
        return OneTimeRecord(
            kind=str(m["k"]),
            token_hash=bytes.fromhex(m["h"]),
            created_at=float(m["c"]),
            expires_at=float(m["x"]),
            user_id=None if m.get("u") is None else str(m["u"]),
            email=None if m.get("e") is None else str(m["e"]),
            data=data,
        )
    except (ValueError, TypeError, KeyError, AttributeError, RecursionError) as exc:
        raise CorruptRecord("unreadable one-time token record") from exc


def data_json(record: OneTimeRecord) -> str:
    """The ``data`` column of the SQL backends."""
    return json.dumps(record.data, separators=(",", ":"), allow_nan=False)


def data_from_json(text: str) -> dict[str, Any]:
    """Parse a ``data`` column; :class:`CorruptRecord` unless it is a JSON object."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise CorruptRecord("unreadable one-time token data") from exc
    if not isinstance(value, dict):
        raise CorruptRecord("unreadable one-time token data")
    return value


@runtime_checkable
class OneTimeTokenStore(Protocol):
    """Storage of one-time tokens (every bundled backend has one)."""

    async def put(self, record: OneTimeRecord) -> None:
        """Insert (or replace) the record of ``(kind, token_hash)``."""
        ...

    async def peek(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        """The live record, without using it up (to check a form before consuming)."""
        ...

    async def add(self, record: OneTimeRecord, now: float) -> bool:
        """Insert the record unless a live one of ``(kind, token_hash)`` exists; True if it did.

        Atomic across processes (a replay cache: of concurrent adds of one key exactly one
        gets True). An expired record of the same key is replaced.
        """
        ...

    async def consume(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        """Atomically delete and return the live record; None when absent or expired.

        Of any number of concurrent calls with one token, in any number of processes, at
        most one gets the record.
        """
        ...

    async def list_for_user(self, kind: str, user_id: str, now: float) -> list[OneTimeRecord]:
        """The user's live records of ``kind``, oldest first."""
        ...

    async def delete_for_user(self, kind: str, user_id: str) -> int:
        """Delete every record of ``kind`` issued to ``user_id``; returns how many."""
        ...

    async def purge_expired(self, now: float) -> int:
        """Delete expired records; returns how many (0 where they expire by themselves)."""
        ...


class MemoryOneTimeStore:
    """One-time tokens of a :class:`~satchel.stores.memory.MemoryStore` (this process only).

    Records are kept encoded, so a caller never aliases a stored record; no method awaits
    between reading and writing, which makes each one atomic on the event loop.
    """

    def __init__(self) -> None:
        self._records: dict[tuple[str, bytes], str] = {}

    def __repr__(self) -> str:
        return f"MemoryOneTimeStore(records={len(self._records)})"

    def _live(self, key: tuple[str, bytes], now: float) -> OneTimeRecord | None:
        raw = self._records.get(key)
        if raw is None:
            return None
        record = decode(raw)
        if record.expires_at <= now:
            del self._records[key]
            return None
        return record

    async def put(self, record: OneTimeRecord) -> None:
        self._records[(record.kind, bytes(record.token_hash))] = encode(record)

    async def peek(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        return self._live((kind, bytes(token_hash)), now)

    async def add(self, record: OneTimeRecord, now: float) -> bool:
        key = (record.kind, bytes(record.token_hash))
        if self._live(key, now) is not None:
            return False
        self._records[key] = encode(record)
        return True

    async def consume(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        key = (kind, bytes(token_hash))
        record = self._live(key, now)
        if record is not None:
            del self._records[key]
        return record

    def _of_user(self, kind: str, user_id: str) -> list[tuple[tuple[str, bytes], OneTimeRecord]]:
        found = []
        for key, raw in self._records.items():
            if key[0] == kind:
                record = decode(raw)
                if record.user_id == user_id:
                    found.append((key, record))
        return found

    async def list_for_user(self, kind: str, user_id: str, now: float) -> list[OneTimeRecord]:
        records = [r for _, r in self._of_user(kind, user_id) if r.expires_at > now]
        return sorted(records, key=lambda r: r.created_at)

    async def delete_for_user(self, kind: str, user_id: str) -> int:
        found = self._of_user(kind, user_id)
        for key, _ in found:
            del self._records[key]
        return len(found)

    async def purge_expired(self, now: float) -> int:
        dead = [key for key, raw in self._records.items() if decode(raw).expires_at <= now]
        for key in dead:
            del self._records[key]
        return len(dead)


class DeadlineOneTimeStore:
    """``inner`` with every call bounded by ``timeout`` seconds (:class:`StoreUnavailable`)."""

    def __init__(self, inner: OneTimeTokenStore, timeout: float) -> None:
        self.inner = inner
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"DeadlineOneTimeStore({self.inner!r}, timeout={self.timeout})"

    async def _call(self, operation: Awaitable[_T]) -> _T:
        try:
            async with asyncio.timeout(self.timeout):
                return await operation
        except TimeoutError:
            raise StoreUnavailable("The store did not answer in time.") from None

    async def put(self, record: OneTimeRecord) -> None:
        await self._call(self.inner.put(record))

    async def peek(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        return await self._call(self.inner.peek(kind, token_hash, now))

    async def add(self, record: OneTimeRecord, now: float) -> bool:
        return await self._call(self.inner.add(record, now))

    async def consume(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        return await self._call(self.inner.consume(kind, token_hash, now))

    async def list_for_user(self, kind: str, user_id: str, now: float) -> list[OneTimeRecord]:
        return await self._call(self.inner.list_for_user(kind, user_id, now))

    async def delete_for_user(self, kind: str, user_id: str) -> int:
        return await self._call(self.inner.delete_for_user(kind, user_id))

    async def purge_expired(self, now: float) -> int:
        return await self._call(self.inner.purge_expired(now))
