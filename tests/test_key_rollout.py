"""Rolling key change across nodes (F14) and the previous key's overlap (J25).

Each node is its own KeyManager + strategy over its own connection to one real store, like
separate server processes. Time is a ManualClock; nothing sleeps.
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from satchel.clock import ManualClock
from satchel.errors import ConfigurationError, InvalidToken
from satchel.jose import claims as claims_mod
from satchel.jose.claims import ClaimsPolicy
from satchel.jose.keyset import KeySet
from satchel.keys.manager import JWKS_RELOAD_INTERVAL, KeyManager
from satchel.keys.schedule import KeyRole
from satchel.revocation.base import LocalBus
from satchel.stores import Stores, open_stores
from satchel.stores.base import UserRecord
from satchel.strategies.base import LoginContext
from satchel.strategies.hybrid import HybridStrategy
from satchel.strategies.jwt import JWTStrategy

POLICY = ClaimsPolicy(issuer="satchel-test", audience="api", leeway=0, max_lifetime=3600)
HYBRID_CLAIMS = ClaimsPolicy(issuer="satchel-test", audience="api", leeway=0)
RELOAD = 60.0
DELAY = 120.0  # 2 x RELOAD, the default
OVERLAP = 600.0
# Longer than the overlap on purpose: rejection after not_after must come from the key,
# not from the token's own expiry.
ACCESS_TTL = 1800.0

MakeStores = Callable[..., Awaitable[Stores]]
OpenNode = Callable[[], Awaitable[Stores]]


@pytest.fixture(params=["sqlite", "postgres", "redis"])
async def connect(
    request: pytest.FixtureRequest, make_stores: MakeStores, tmp_path: Path, run_id: str
) -> AsyncIterator[OpenNode]:
    """Opens one more connection to the same backend and namespace per call."""
    kind: str = request.param
    extra: list[Stores] = []

    async def open_node() -> Stores:
        if kind == "sqlite":
            stores = await open_stores(f"sqlite:///{tmp_path / 'shared.db'}")
            extra.append(stores)
            return stores
        return await make_stores(kind, prefix=f"rollout-{run_id}", schema=f"rollout_{run_id}")

    yield open_node
    for stores in extra:
        await stores.close()


@dataclass
class Node:
    stores: Stores
    keys: KeyManager
    strategy: JWTStrategy

    async def token(self, user: UserRecord) -> str:
        return (await self.strategy.issue(user, LoginContext()))[1].access_token

    def jwks_kids(self) -> set[str]:
        return {k["kid"] for k in self.strategy.jwks()["keys"]}


async def start_node(connect: OpenNode, clock: ManualClock) -> Node:
    stores = await connect()
    keys = KeyManager(stores.keys, clock, publish_delay=DELAY, overlap=OVERLAP)
    strategy = JWTStrategy(
        keys,
        POLICY,
        stores.users,
        clock=clock,
        bus=LocalBus(),
        access_ttl=ACCESS_TTL,
        key_reload_interval=RELOAD,
    )
    await strategy.start()
    return Node(stores, keys, strategy)


def kid_of(token: str) -> str:
    part = token.split(".")[0]
    header: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return str(header["kid"])


def signed_with(keys: KeyManager, kid: str, clock: ManualClock) -> str:
    """A valid token signed with the stored key ``kid``, whatever key signs right now."""
    signer = keys.keyset.get(kid, clock())
    assert signer is not None and signer.can_sign
    claims = claims_mod.build_claims(
        POLICY, sub="u1", now=clock(), ttl=300, roles=[], sid="s-probe", extra={}
    )
    return claims_mod.sign(KeySet(signer), POLICY, claims)


async def new_user(stores: Stores) -> UserRecord:
    user = UserRecord(id="u1", username="alice", username_key="alice", password_hash="x")
    await stores.users.create_user(user)
    return user


async def test_F14_J25_rolling_key_change_across_two_nodes(
    connect: OpenNode, manual_clock: ManualClock
) -> None:
    clock = manual_clock
    a = await start_node(connect, clock)
    b = await start_node(connect, clock)
    idle = await start_node(connect, clock)  # serves nothing until the switch
    user = await new_user(a.stores)

    # The first key ever signs at once, on every node.
    first = await a.token(user)
    old_kid = kid_of(first)
    assert kid_of(await b.token(user)) == old_kid
    assert (await b.strategy.authenticate(first)).user_id == "u1"

    clock.advance(30)
    rotated_at = clock()
    await a.keys.rotate()
    new_kid = next(k.kid for k in await a.keys.list() if k.kid != old_kid)

    # Published at once: in A's JWKS, accepted by A, yet A keeps signing with the old key.
    assert a.jwks_kids() == {old_kid, new_kid}
    probe = signed_with(a.keys, new_kid, clock)
    assert (await a.strategy.authenticate(probe)).user_id == "u1"
    before_reload = await a.token(user)
    assert kid_of(before_reload) == old_kid
    # B read the keys 30 s ago (< RELOAD): it does not know the new key yet, which is
    # exactly why nobody may sign with it now; everything actually signed verifies on B.
    assert b.jwks_kids() == {old_kid}
    with pytest.raises(InvalidToken):
        await b.strategy.authenticate(probe)
    assert (await b.strategy.authenticate(before_reload)).user_id == "u1"

    # B's next reload: it accepts the new key before anyone signs with it.
    clock.advance(RELOAD)
    assert (await b.strategy.authenticate(signed_with(a.keys, new_kid, clock))).user_id == "u1"
    assert b.jwks_kids() == {old_kid, new_kid}
    assert kid_of(await b.token(user)) == old_kid
    assert kid_of(await a.token(user)) == old_kid
    statuses = {s.kid: s for s in await b.keys.status()}
    assert statuses[old_kid].role is KeyRole.SIGNING
    assert statuses[new_kid].role is KeyRole.PENDING
    assert statuses[new_kid].signs_from == rotated_at + DELAY

    # A node starting inside the window also signs with the old key.
    late = await start_node(connect, clock)
    assert kid_of(await late.token(user)) == old_kid

    # Just before the switch the old key still signs; at it, every node uses the new key,
    # including one that has not read the store since before the rotation.
    clock.advance(rotated_at + DELAY - clock() - 1)
    last_old = await b.token(user)
    assert kid_of(last_old) == old_kid
    clock.advance(1)
    nodes = {"a": a, "b": b, "idle": idle, "late": late}
    fresh = {name: await node.token(user) for name, node in nodes.items()}
    assert {kid_of(t) for t in fresh.values()} == {new_kid}
    for verifier in nodes.values():
        for token in (*fresh.values(), first, last_old):
            assert (await verifier.strategy.authenticate(token)).user_id == "u1"

    # J25: old-key tokens verify until not_after = switch + overlap, then nowhere.
    not_after = rotated_at + DELAY + OVERLAP
    stored = {k.kid: k for k in await a.keys.list()}
    assert stored[old_kid].not_after == not_after
    clock.advance(not_after - clock())
    for verifier in nodes.values():
        assert (await verifier.strategy.authenticate(last_old)).user_id == "u1"
    clock.advance(1)
    for verifier in nodes.values():
        for token in (first, last_old, before_reload):
            with pytest.raises(InvalidToken):
                await verifier.strategy.authenticate(token)  # cached or not
        assert (await verifier.strategy.authenticate(fresh["a"])).user_id == "u1"
        assert verifier.jwks_kids() == {new_kid}


async def test_F14_hybrid_node_switches_without_seeing_a_new_key_token(
    connect: OpenNode, manual_clock: ManualClock
) -> None:
    clock = manual_clock
    nodes = []
    for _ in range(2):
        stores = await connect()
        strategy = HybridStrategy(
            stores.sessions,
            stores.users,
            KeyManager(stores.keys, clock, publish_delay=DELAY),
            HYBRID_CLAIMS,
            clock=clock,
            key_reload_interval=RELOAD,
        )
        await strategy.start()
        nodes.append(strategy)
    a, b = nodes
    user = UserRecord(id="u1", username="alice", username_key="alice", password_hash="x")
    await a.users.create_user(user)
    old_kid = a.keyset.active.kid
    await a.keys.rotate()
    _, issued = await b.issue(user, LoginContext())
    assert kid_of(issued.access_token) == old_kid
    clock.advance(DELAY)
    # B has read the keys only at start: the refresh on issue makes it switch in time.
    _, refreshed = await b.refresh(issued.refresh_token or "", LoginContext())
    new_kid = kid_of(refreshed.access_token)
    assert new_kid != old_kid
    assert (await a.authenticate(refreshed.access_token)).user_id == "u1"
    assert (await b.authenticate(issued.access_token)).user_id == "u1"  # inside the overlap


async def test_F14_reload_interval_longer_than_publish_delay_is_refused(
    manual_clock: ManualClock, make_stores: MakeStores
) -> None:
    stores = await make_stores("memory")
    keys = KeyManager(stores.keys, manual_clock, publish_delay=30)
    with pytest.raises(ConfigurationError):
        JWTStrategy(keys, POLICY, stores.users, clock=manual_clock, key_reload_interval=60)


async def test_F14_a_stored_key_is_published_by_every_node_without_a_sign(
    connect: OpenNode, manual_clock: ManualClock
) -> None:
    clock = manual_clock
    a_stores, b_stores = await connect(), await connect()
    a = KeyManager(a_stores.keys, clock, publish_delay=DELAY)
    b = KeyManager(b_stores.keys, clock, publish_delay=DELAY)
    old_kid = (await a.load_or_create()).active.kid
    await b.reload()
    assert await b.refresh() is False
    clock.advance(5)
    await a.rotate()  # e.g. `satchel keys rotate`, another process
    new_kid = next(k.kid for k in await a.list() if k.kid != old_kid)

    # The rotating manager lists it at once; B on its next JWKS reload, a second later,
    # without signing or verifying anything in between.
    assert {k["kid"] for k in (await a.published()).jwks(clock())["keys"]} == {old_kid, new_kid}
    clock.advance(JWKS_RELOAD_INTERVAL)
    published = await b.published()
    assert {k["kid"] for k in published.jwks(clock())["keys"]} == {old_kid, new_kid}
    assert published.active.kid == old_kid  # published first, signs later
    # The JWKS re-read counts as a change for the strategy's next refresh (it drops what
    # it derived from the old keys), even though the refresh itself reads nothing.
    assert await b.refresh() is True
    assert await b.refresh() is False
    # A verifier honouring Cache-Control re-fetches before the key signs.
    assert b.jwks_max_age < DELAY - JWKS_RELOAD_INTERVAL
    clock.advance(DELAY)
    assert b.keyset.active.kid == new_kid


async def test_F14_jwks_route_lists_a_rotated_key_before_any_token_request(
    tmp_path: Path,
) -> None:
    from satchel.accounts.passwords import PasswordHasher
    from satchel.config.build import build_auth
    from satchel.config.settings import Settings
    from satchel.server import create_app

    url = f"sqlite:///{tmp_path / 'jwks.db'}"
    clock = ManualClock()
    hasher = PasswordHasher.insecure_fast_for_tests()
    settings = Settings(store=url, strategy="hybrid")
    auth = await build_auth(settings, clock=clock, hasher=hasher)
    app = create_app(settings, auth=auth)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://t")
    try:
        response = await client.get("/.well-known/jwks.json")
        assert response.status_code == 200
        (old_kid,) = {k["kid"] for k in response.json()["keys"]}
        max_age = int(response.headers["cache-control"].split("max-age=")[1])
        assert response.headers["cache-control"].startswith("public")
        publish_delay = auth.keys.publish_delay if auth.keys else 0
        assert 0 < max_age <= publish_delay / 2

        # Another process (the CLI) rotates; the server sees no token request at all.
        cli_stores = await open_stores(url)
        try:
            await KeyManager(cli_stores.keys, clock).rotate()
            new_kid = next(k.kid for k in await cli_stores.keys.list_keys() if k.kid != old_kid)
        finally:
            await cli_stores.close()
        clock.advance(JWKS_RELOAD_INTERVAL)
        response = await client.get("/.well-known/jwks.json")
        assert {k["kid"] for k in response.json()["keys"]} == {old_kid, new_kid}
    finally:
        await client.aclose()
        await lifespan.__aexit__(None, None, None)
        hasher.close()
