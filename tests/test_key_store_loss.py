"""A key store that loses its data must not strand the tokens signed since (hybrid on Redis).

Redis without persistence restarts empty: every key under the deployment's prefix is gone
while the servers keep their keys in memory. Here the prefix of this run is deleted on the
shared test Redis (never FLUSHALL). Each node is its own connection + KeyManager + strategy,
like separate server processes; time is a ManualClock.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import pytest

from helpers import MakeStores
from satchel.clock import ManualClock
from satchel.jose.claims import ClaimsPolicy
from satchel.keys.manager import INITIAL_KEY_RECORD, KeyManager
from satchel.stores import Stores
from satchel.stores.base import UserRecord
from satchel.strategies.base import LoginContext
from satchel.strategies.hybrid import HybridStrategy

CLAIMS = ClaimsPolicy(issuer="satchel-test", audience="api", leeway=0)
RELOAD = 60.0
DELAY = 120.0


@dataclass
class Node:
    stores: Stores
    keys: KeyManager
    strategy: HybridStrategy

    async def token(self) -> str:
        _, issued = await self.strategy.issue(USER, LoginContext())
        return issued.access_token

    async def accepts(self, token: str) -> bool:
        return (await self.strategy.authenticate(token)).user_id == USER.id


USER = UserRecord(id="u1", username="alice", username_key="alice", password_hash="x")


@pytest.fixture
def prefix(run_id: str) -> str:
    return f"keyloss-{run_id}"


async def start_node(make_stores: MakeStores, prefix: str, clock: ManualClock) -> Node:
    stores = await make_stores("redis", prefix=prefix)
    keys = KeyManager(stores.keys, clock, publish_delay=DELAY)
    strategy = HybridStrategy(
        stores.sessions, stores.users, keys, CLAIMS, clock=clock, key_reload_interval=RELOAD
    )
    await strategy.start()
    return Node(stores, keys, strategy)


async def lose_everything(redis_url: str, prefix: str) -> None:
    """What a Redis restart without persistence does to this deployment: only its keys."""
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await client.delete(*keys)
        assert [key async for key in client.scan_iter(match=f"{prefix}:*")] == []
    finally:
        await client.aclose()


def kid_of(token: str) -> str:
    part = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return str(header["kid"])


async def test_tokens_signed_after_the_loss_verify_after_the_next_reload(
    make_stores: MakeStores, redis_url: str, prefix: str, manual_clock: ManualClock
) -> None:
    clock = manual_clock
    a = await start_node(make_stores, prefix, clock)
    b = await start_node(make_stores, prefix, clock)
    await a.stores.users.create_user(USER)
    k1 = kid_of(await a.token())
    clock.advance(3600)  # the deployment has run for a while

    await lose_everything(redis_url, prefix)
    # The server recovers: the account is restored, and a process starting now (a restarted
    # node, a CLI command) finds no keys and creates a new first key, which signs at once.
    await a.stores.users.create_user(USER)
    c = await start_node(make_stores, prefix, clock)
    k2 = c.keys.keyset.active.kid
    assert k2 != k1
    # A has not re-read the store yet: it signs with K1, which the store no longer holds.
    after = await a.token()
    assert kid_of(after) == k1
    from_c = await c.token()

    # A's next reload puts K1 back rather than dropping it.
    clock.advance(RELOAD)
    assert await a.accepts(after)
    assert {k.kid for k in await a.stores.keys.list_keys()} == {k1, k2}
    # Every node accepts both keys' tokens after its next reload, a manager started now too.
    d = await start_node(make_stores, prefix, clock)
    for node in (a, b, c, d):
        assert await node.accepts(after)
        assert await node.accepts(from_c)
    # And every node signs with the same key, one the store holds: K1, the older key that
    # was published, until K2 has been published for the whole delay.
    assert {kid_of(await node.token()) for node in (a, b, c, d)} == {k1}
    clock.advance(DELAY)
    assert {kid_of(await node.token()) for node in (a, b, c, d)} == {k2}
    for node in (a, b, c, d):
        assert await node.accepts(after)


async def test_a_node_that_reloads_first_keeps_its_key_for_everyone(
    make_stores: MakeStores, redis_url: str, prefix: str, manual_clock: ManualClock
) -> None:
    clock = manual_clock
    a = await start_node(make_stores, prefix, clock)
    await a.stores.users.create_user(USER)
    k1 = kid_of(await a.token())
    await lose_everything(redis_url, prefix)
    await a.stores.users.create_user(USER)

    clock.advance(RELOAD)
    after = await a.token()  # the reload before this sign saves K1 back
    assert kid_of(after) == k1
    assert [k.kid for k in await a.stores.keys.list_keys()] == [k1]
    # First writer wins: the initial-key record names K1 again, so a process starting
    # now agrees on K1 instead of creating another key.
    assert await a.stores.keys.get_secret(INITIAL_KEY_RECORD) is not None
    late = await start_node(make_stores, prefix, clock)
    assert late.keys.keyset.active.kid == k1
    assert [k.kid for k in await late.stores.keys.list_keys()] == [k1]
    assert await late.accepts(after)
    assert kid_of(await late.token()) == k1


async def test_two_nodes_restoring_at_once_agree(
    make_stores: MakeStores, redis_url: str, prefix: str, manual_clock: ManualClock
) -> None:
    import asyncio

    clock = manual_clock
    a = await start_node(make_stores, prefix, clock)
    b = await start_node(make_stores, prefix, clock)
    await a.stores.users.create_user(USER)
    k1 = kid_of(await a.token())
    await lose_everything(redis_url, prefix)
    await a.stores.users.create_user(USER)
    clock.advance(RELOAD)
    await asyncio.gather(a.keys.reload(), b.keys.reload())
    assert [k.kid for k in await a.stores.keys.list_keys()] == [k1]
    assert a.keys.keyset.active.kid == b.keys.keyset.active.kid == k1
