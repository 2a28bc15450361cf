"""Second factors in Redis: ``<prefix>:mfa:f:<user id>`` hashes and ``<prefix>:mfa:o:<key>``
single-use strings.

A document's compare-and-set is one Lua script (atomic on the server); a take is ``GETDEL``.
Single-use records expire by themselves (``PXAT``), so nothing needs purging.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from satchel.stores.redis_client import aw, unavailable
from satchel.stores.redis_fields import ms

# KEYS: document key. ARGV: document, expected version.
_SAVE = """
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'd', ARGV[1], 'v', v + 1)
return 1
"""


class RedisFactorStore:
    """The second factors under ``prefix`` on ``client``."""

    def __init__(self, client: aioredis.Redis, *, prefix: str = "satchel") -> None:
        self.client = client
        self.prefix = prefix
        self._f = f"{prefix}:mfa:f:"
        self._o = f"{prefix}:mfa:o:"
        self._save = client.register_script(_SAVE)

    def __repr__(self) -> str:
        return f"RedisFactorStore(prefix={self.prefix!r})"

    async def load(self, user_id: str) -> tuple[str | None, int]:
        async with unavailable():
            raw: list[Any] = await aw(self.client.hmget(self._f + user_id, ["d", "v"]))
        if raw[0] is None or raw[1] is None:
            return None, 0
        return raw[0].decode(), int(raw[1])

    async def save(self, user_id: str, document: str, version: int) -> bool:
        async with unavailable():
            done = await self._save(keys=[self._f + user_id], args=[document, str(version)])
        return bool(done)

    async def remove(self, user_id: str) -> bool:
        async with unavailable():
            return bool(await self.client.delete(self._f + user_id))

    async def put_once(self, key: str, value: str, expires_at: float, now: float) -> None:
        # The expiry is kept in the value too and checked on the caller's clock; Redis's
        # own (relative, so clocks need not agree) only removes the key afterwards.
        ttl = max(1, int(ms(expires_at - now)))
        async with unavailable():
            await self.client.set(self._o + key, f"{ms(expires_at)}|{value}", px=ttl)

    async def peek_once(self, key: str, now: float) -> str | None:
        async with unavailable():
            raw = await self.client.get(self._o + key)
        return _live(raw, now)

    async def take_once(self, key: str, now: float) -> str | None:
        async with unavailable():
            raw = await self.client.getdel(self._o + key)
        return _live(raw, now)

    async def purge_expired(self, now: float) -> int:
        return 0  # Redis expires single-use records by itself


def _live(raw: Any, now: float) -> str | None:
    if raw is None:
        return None
    until, _, value = bytes(raw).decode().partition("|")
    return value if until.isdigit() and int(until) > float(ms(now)) else None
