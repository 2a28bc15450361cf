"""One-time tokens in Redis, under the store's prefix ``P``::

    P:ot:<kind>:<hash hex>     string  the record (JSON); PEXPIREAT = its expiry
    P:otu:<kind>:<user id>     set     hash hexes of the user's records of that kind;
                                       expires with the last of them

``consume`` is one ``GETDEL``: of concurrent consumers exactly one gets the value, in any
number of processes. Records expire by themselves; the per-user set only lists candidates
and is pruned when read. With Redis Cluster the prefix needs a hash tag (``{satchel}``), as
for the rest of the store, since ``delete_for_user`` deletes several keys at once.
"""

from __future__ import annotations

import math
from typing import Any

import redis.asyncio as aioredis

from satchel.stores.onetime import OneTimeRecord, decode, encode
from satchel.stores.redis_client import aw, unavailable


def _ms(ts: float) -> int:
    return max(1, math.ceil(ts * 1000))


class RedisOneTimeStore:
    """The one-time tokens under ``prefix`` of a Redis store."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "satchel") -> None:
        self.client = client
        self.prefix = prefix

    def __repr__(self) -> str:
        return f"RedisOneTimeStore(prefix={self.prefix!r})"

    def _key(self, kind: str, token_hash: bytes) -> str:
        return f"{self.prefix}:ot:{kind}:{bytes(token_hash).hex()}"

    def _index(self, kind: str, user_id: str) -> str:
        return f"{self.prefix}:otu:{kind}:{user_id}"

    @staticmethod
    def _live(raw: Any, now: float) -> OneTimeRecord | None:
        if raw is None:
            return None
        record = decode(raw)
        return record if record.expires_at > now else None

    async def put(self, record: OneTimeRecord) -> None:
        key = self._key(record.kind, record.token_hash)
        expiry = _ms(record.expires_at)
        async with unavailable():
            pipe = self.client.pipeline(transaction=True)
            pipe.set(key, encode(record), pxat=expiry)
            if record.user_id is not None:
                index = self._index(record.kind, record.user_id)
                pipe.sadd(index, bytes(record.token_hash).hex())
                # NX gives a new set its expiry, GT moves it later for a later record.
                pipe.pexpireat(index, expiry, nx=True)
                pipe.pexpireat(index, expiry, gt=True)
            await pipe.execute()

    async def add(self, record: OneTimeRecord, now: float) -> bool:
        """One ``SET NX PXAT``: Redis drops an expired key itself, so NX sees live ones only."""
        if record.user_id is not None:
            raise ValueError("add() keeps records without a user (no per-user index)")
        key = self._key(record.kind, record.token_hash)
        async with unavailable():
            done = await aw(
                self.client.set(key, encode(record), pxat=_ms(record.expires_at), nx=True)
            )
        return bool(done)

    async def peek(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        async with unavailable():
            raw = await aw(self.client.get(self._key(kind, token_hash)))
        return self._live(raw, now)

    async def consume(self, kind: str, token_hash: bytes, now: float) -> OneTimeRecord | None:
        async with unavailable():
            raw = await aw(self.client.getdel(self._key(kind, token_hash)))
            record = self._live(raw, now)
            if raw is not None:
                user_id = decode(raw).user_id
                if user_id is not None:
                    await aw(self.client.srem(self._index(kind, user_id), token_hash.hex()))
        return record

    async def list_for_user(self, kind: str, user_id: str, now: float) -> list[OneTimeRecord]:
        index = self._index(kind, user_id)
        async with unavailable():
            members = sorted(await aw(self.client.smembers(index)))
            if not members:
                return []
            keys = [f"{self.prefix}:ot:{kind}:{m.decode()}" for m in members]
            values = await aw(self.client.mget(keys))
            gone = [m for m, v in zip(members, values, strict=True) if v is None]
            if gone:
                await aw(self.client.srem(index, *gone))
        records = [r for r in (self._live(v, now) for v in values) if r is not None]
        return sorted(records, key=lambda r: r.created_at)

    async def delete_for_user(self, kind: str, user_id: str) -> int:
        index = self._index(kind, user_id)
        async with unavailable():
            members = await aw(self.client.smembers(index))
            keys = [f"{self.prefix}:ot:{kind}:{m.decode()}" for m in members]
            removed = int(await aw(self.client.delete(*keys))) if keys else 0
            await aw(self.client.delete(index))
        return removed

    async def purge_expired(self, now: float) -> int:
        """Nothing to do: Redis expires the records (and the per-user sets) itself."""
        return 0
