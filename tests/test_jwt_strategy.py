"""The stateless JWT strategy: issuing, caching, revocation, key rotation (J21, J25, R02, F04)."""

from __future__ import annotations

import asyncio
import base64
import time

import pytest

from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import UserService
from satchel.auth import Auth
from satchel.clock import ManualClock
from satchel.errors import (
    ExpiredCredential,
    InvalidCredential,
    InvalidLogin,
    InvalidToken,
    NotSupported,
    StoreUnavailable,
)
from satchel.jose import claims as jwt
from satchel.jose.claims import ClaimsPolicy
from satchel.jose.jwk import P256_ORDER, Ed25519Key
from satchel.jose.keyset import KeySet
from satchel.keys.manager import KeyManager
from satchel.revocation.base import LocalBus, NullBus
from satchel.stores.base import UserRecord
from satchel.stores.memory import MemoryStore
from satchel.strategies.base import LoginContext, SupportsSessions
from satchel.strategies.jwt import JWTStrategy
from satchel.transports.bearer import BearerTransport

POLICY = ClaimsPolicy(issuer="satchel-test", audience="api", leeway=30, max_lifetime=3600)


class SwitchableBus(LocalBus):
    """An in-process bus whose health can be switched, like a subscription that drops."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True

    @property
    def healthy(self) -> bool:
        return self.up

    def reset(self) -> None:
        for callback in self._resets:
            callback()


async def new_user(store: MemoryStore, user_id: str = "u1", **fields: object) -> UserRecord:
    user = UserRecord(
        id=user_id,
        username=f"name-{user_id}",
        username_key=f"name-{user_id}",
        password_hash="x",
        roles=["user"],
    )
    for name, value in fields.items():
        setattr(user, name, value)
    await store.create_user(user)
    return user


async def make_strategy(
    clock: ManualClock,
    store: MemoryStore | None = None,
    *,
    bus: object = None,
    alg: str = "EdDSA",
    **options: object,
) -> tuple[JWTStrategy, MemoryStore]:
    store = store or MemoryStore()
    manager = KeyManager(store, clock, alg=alg)
    strategy = JWTStrategy(manager, POLICY, store, clock=clock, bus=bus, **options)  # type: ignore[arg-type]
    await strategy.start()
    return strategy, store


async def test_issue_and_authenticate(manual_clock: ManualClock) -> None:
    strategy, store = await make_strategy(manual_clock, bus=LocalBus())
    user = await new_user(store)
    identity, issued = await strategy.issue(user, LoginContext())
    assert issued.expires_in == 900 and issued.session_id == identity.session_id
    assert issued.refresh_token is None
    assert len(identity.session_id or "") >= 22
    assert repr(issued).find(issued.access_token) == -1
    seen = await strategy.authenticate(issued.access_token)
    assert (seen.user_id, seen.username, seen.roles) == ("u1", "name-u1", frozenset({"user"}))
    assert seen.strategy == "jwt" and seen.session_id == identity.session_id
    assert seen.expires_at == identity.expires_at
    # Each login gets a fresh sid and token.
    _, again = await strategy.issue(user, LoginContext())
    assert again.session_id != issued.session_id and again.access_token != issued.access_token
    # The token is a standard JWT with our profile.
    claims = jwt.verify(issued.access_token, strategy.keyset, POLICY, manual_clock())
    assert claims["sub"] == "u1" and claims["sid"] == identity.session_id


async def test_auth_time_is_the_login(manual_clock: ManualClock) -> None:
    strategy, store = await make_strategy(manual_clock, bus=LocalBus())
    manual_clock.advance(0.75)
    login_at = manual_clock()
    identity, issued = await strategy.issue(await new_user(store), LoginContext())
    claims = jwt.verify(issued.access_token, strategy.keyset, POLICY, manual_clock())
    assert claims["auth_time"] == login_at and claims["iat"] == int(login_at)
    assert identity.auth_time == login_at
    manual_clock.advance(60)
    other, _ = await make_strategy(manual_clock, store)  # first sight of the token
    assert (await other.authenticate(issued.access_token)).auth_time == login_at
    # A token issued before auth_time was a claim: its login is its iat.
    old = jwt.issue(strategy.keyset, POLICY, sub="u1", now=manual_clock(), ttl=60, sid="s" * 22)
    assert (await other.authenticate(old)).auth_time == int(manual_clock())


async def test_disabled_user_cannot_be_issued(manual_clock: ManualClock) -> None:
    strategy, store = await make_strategy(manual_clock)
    user = await new_user(store, disabled=True)
    with pytest.raises(InvalidLogin):
        await strategy.issue(user, LoginContext())


async def test_expiry_with_leeway(manual_clock: ManualClock) -> None:
    strategy, store = await make_strategy(manual_clock, bus=LocalBus())
    _, issued = await strategy.issue(await new_user(store), LoginContext())
    manual_clock.advance(900 + 30)
    await strategy.authenticate(issued.access_token)  # cached, still inside the leeway
    manual_clock.advance(1)
    with pytest.raises(ExpiredCredential):
        await strategy.authenticate(issued.access_token)
    with pytest.raises(ExpiredCredential):
        await strategy.authenticate(issued.access_token)  # and not resurrected by the cache


async def test_cache_hits_cost_no_store_read_when_bus_is_trusted(manual_clock: ManualClock) -> None:
    strategy, store = await make_strategy(manual_clock, bus=LocalBus())
    _, issued = await strategy.issue(await new_user(store), LoginContext())
    for _ in range(5):
        await strategy.authenticate(issued.access_token)
    assert strategy.counters.cache_hits == 5
    assert strategy.counters.store_reads == 1  # first valid_after lookup only
    manual_clock.advance(strategy.cache_ttl + 1)
    await strategy.authenticate(issued.access_token)
    assert strategy.counters.store_reads == 2  # the valid_after entry is re-read after cache_ttl


@pytest.mark.parametrize("bus", [None, LocalBus()], ids=["no-bus", "trusted-bus"])
async def test_cache_disabled_authenticates_every_time_from_the_token_and_store(
    manual_clock: ManualClock, bus: object
) -> None:
    # Settings(cache=False) builds the strategy with cache_size=0; remembering a valid_after
    # in an empty, zero-sized cache used to evict from it and raise StopIteration.
    strategy, store = await make_strategy(manual_clock, bus=bus, cache_size=0)
    user = await new_user(store)
    identity, issued = await strategy.issue(user, LoginContext())
    for _ in range(2):
        seen = await strategy.authenticate(issued.access_token)
        assert (seen.user_id, seen.session_id) == ("u1", identity.session_id)
    assert strategy.counters.cache_hits == 0
    assert strategy.counters.store_reads == 2  # nothing remembered: the user is read each time


@pytest.mark.parametrize("bus", [None, NullBus()], ids=["no-bus", "null-bus"])
async def test_F04_without_trusted_bus_every_request_reads_the_user(
    manual_clock: ManualClock, bus: object
) -> None:
    strategy, store = await make_strategy(manual_clock, bus=bus)
    user = await new_user(store)
    _, issued = await strategy.issue(user, LoginContext())
    for _ in range(3):
        await strategy.authenticate(issued.access_token)
    assert strategy.counters.store_reads == 3
    # Revocation written only to the store (no event reaches us) is still honoured.
    manual_clock.advance(1)
    user.valid_after = manual_clock()
    await store.update_user(user)
    with pytest.raises(InvalidCredential):
        await strategy.authenticate(issued.access_token)


async def test_F04_unhealthy_bus_falls_back_to_store_reads(manual_clock: ManualClock) -> None:
    bus = SwitchableBus()
    strategy, store = await make_strategy(manual_clock, bus=bus)
    user = await new_user(store)
    _, issued = await strategy.issue(user, LoginContext())
    await strategy.authenticate(issued.access_token)
    await strategy.authenticate(issued.access_token)
    assert strategy.counters.store_reads == 1
    bus.up = False
    manual_clock.advance(1)
    user.valid_after = manual_clock()  # changed while events could not arrive
    await store.update_user(user)
    with pytest.raises(InvalidCredential):
        await strategy.authenticate(issued.access_token)
    assert strategy.counters.store_reads == 2


async def test_user_changed_revokes_older_tokens_everywhere(manual_clock: ManualClock) -> None:
    bus = LocalBus()
    store = MemoryStore()
    node_a, _ = await make_strategy(manual_clock, store, bus=bus)
    node_b, _ = await make_strategy(manual_clock, store, bus=bus)
    user = await new_user(store)
    _, issued = await node_a.issue(user, LoginContext())
    await node_b.authenticate(issued.access_token)
    await node_b.authenticate(issued.access_token)
    reads = node_b.counters.store_reads
    manual_clock.advance(0.4)
    user.valid_after = manual_clock()
    await store.update_user(user)
    await node_a.user_changed(user)
    assert node_b.counters.revocations_received == 1
    with pytest.raises(InvalidCredential):
        await node_b.authenticate(issued.access_token)
    assert node_b.counters.store_reads == reads  # answered from the event, not the store
    # A login in the same second as the revocation still yields a usable token.
    _, fresh = await node_a.issue(user, LoginContext())
    assert (await node_b.authenticate(fresh.access_token)).user_id == "u1"


async def test_disabled_or_deleted_user_is_refused(manual_clock: ManualClock) -> None:
    strategy, store = await make_strategy(manual_clock)  # no bus: per-request reads
    user = await new_user(store)
    _, issued = await strategy.issue(user, LoginContext())
    user.disabled = True
    await store.update_user(user)
    with pytest.raises(InvalidCredential):
        await strategy.authenticate(issued.access_token)
    # A static key set works too; a user missing from the store is refused.
    other = JWTStrategy(strategy.keyset, POLICY, MemoryStore(), clock=manual_clock)
    token = jwt.issue(strategy.keyset, POLICY, sub="ghost", now=manual_clock(), ttl=60)
    with pytest.raises(InvalidCredential):
        await other.authenticate(token)


async def test_R02_logout_reaches_every_node(manual_clock: ManualClock) -> None:
    bus = LocalBus()
    store = MemoryStore()
    node_a, _ = await make_strategy(manual_clock, store, bus=bus)
    node_b, _ = await make_strategy(manual_clock, store, bus=bus)
    user = await new_user(store)
    identity, issued = await node_a.issue(user, LoginContext())
    _, other_session = await node_a.issue(user, LoginContext())
    await node_b.authenticate(issued.access_token)
    await node_a.logout(identity)
    await node_a.logout(identity)  # idempotent
    for node in (node_a, node_b):
        with pytest.raises(InvalidCredential):
            await node.authenticate(issued.access_token)
        assert (await node.authenticate(other_session.access_token)).user_id == "u1"


async def test_R02_logout_over_real_redis_bus(
    manual_clock: ManualClock, redis_url: str, run_id: str
) -> None:
    from satchel.revocation.redis import RedisBus

    store = MemoryStore()
    buses = [RedisBus(redis_url, prefix=f"jwtstrat{run_id}") for _ in range(2)]
    for bus in buses:
        await bus.start()
    try:
        node_a, _ = await make_strategy(manual_clock, store, bus=buses[0])
        node_b, _ = await make_strategy(manual_clock, store, bus=buses[1])
        identity, issued = await node_a.issue(await new_user(store), LoginContext())
        await node_b.authenticate(issued.access_token)
        await node_a.logout(identity)
        deadline = time.monotonic() + 5
        while node_b.counters.revocations_received == 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)  # waiting for pub/sub delivery, not for expiry
        with pytest.raises(InvalidCredential):
            await node_b.authenticate(issued.access_token)
    finally:
        for bus in buses:
            await bus.close()


async def test_J21_reencoded_twin_of_revoked_token_still_rejected(
    manual_clock: ManualClock,
) -> None:
    strategy, store = await make_strategy(manual_clock, bus=LocalBus(), alg="ES256")
    identity, issued = await strategy.issue(await new_user(store), LoginContext())
    signing_input, sig64 = issued.access_token.rsplit(".", 1)
    sig = base64.urlsafe_b64decode(sig64 + "==")
    r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
    high_s = r.to_bytes(32, "big") + (P256_ORDER - s).to_bytes(32, "big")
    twin = f"{signing_input}.{base64.urlsafe_b64encode(high_s).rstrip(b'=').decode()}"
    # ECDSA signatures are malleable: the twin verifies on its own...
    assert (await strategy.authenticate(twin)).session_id == identity.session_id
    await strategy.logout(identity)
    # ...so revocation is by sid, and both strings are refused (padding is refused anyway).
    for token in (issued.access_token, twin, issued.access_token + "=="):
        with pytest.raises(InvalidCredential):
            await strategy.authenticate(token)


async def test_reset_flushes_caches_but_keeps_ended_sessions(manual_clock: ManualClock) -> None:
    bus = SwitchableBus()
    strategy, store = await make_strategy(manual_clock, bus=bus)
    identity, issued = await strategy.issue(await new_user(store), LoginContext())
    _, kept = await strategy.issue(await new_user(store, "u2"), LoginContext())
    await strategy.authenticate(kept.access_token)
    await strategy.logout(identity)
    reads = strategy.counters.store_reads
    bus.reset()
    assert strategy.counters.cache_flushes == 1
    await strategy.authenticate(kept.access_token)
    assert strategy.counters.store_reads == reads + 1  # the user map was dropped
    with pytest.raises(InvalidCredential):
        await strategy.authenticate(issued.access_token)


async def test_garbage_tokens_are_invalid_token(manual_clock: ManualClock) -> None:
    strategy, _ = await make_strategy(manual_clock, bus=LocalBus())
    for token in ("", "a.b.c", "x" * 10_000, "eyJ.eyJ.sig", ".."):
        with pytest.raises(InvalidToken):
            await strategy.authenticate(token)
    assert strategy.counters.store_reads == 0 and strategy.counters.cache_hits == 0


async def test_cache_is_bounded(manual_clock: ManualClock) -> None:
    strategy, store = await make_strategy(manual_clock, bus=LocalBus(), cache_size=3)
    user = await new_user(store)
    tokens = [(await strategy.issue(user, LoginContext()))[1].access_token for _ in range(5)]
    for token in tokens:
        await strategy.authenticate(token)
    assert len(strategy._cache) == 3
    hits = strategy.counters.cache_hits
    await strategy.authenticate(tokens[0])  # evicted: verified again, still valid
    assert strategy.counters.cache_hits == hits


async def test_J25_rotation_reload_and_jwks(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    node_a, _ = await make_strategy(manual_clock, store, bus=LocalBus(), key_reload_interval=60)
    node_b, _ = await make_strategy(manual_clock, store, bus=LocalBus(), key_reload_interval=60)
    user = await new_user(store)
    old_token = (await node_a.issue(user, LoginContext()))[1].access_token
    old_kid = node_a.keyset.active.kid
    manual_clock.advance(61)
    await KeyManager(store, manual_clock).rotate(overlap=300)
    await node_a.reload_keys()
    # F14: the new key is published now and signs only after the publish delay.
    assert node_a.keyset.active.kid == old_kid
    assert len(node_a.jwks()["keys"]) == 2
    manual_clock.advance(120)
    new_kid = node_a.keyset.active.kid
    assert new_kid != old_kid
    assert {k["kid"] for k in node_a.jwks()["keys"]} == {old_kid, new_kid}
    new_token = (await node_a.issue(user, LoginContext()))[1].access_token
    # node_b last read the keys more than a reload interval ago: it re-reads them first.
    assert (await node_b.authenticate(new_token)).user_id == "u1"
    assert node_b.keyset.active.kid == new_kid
    assert (await node_b.authenticate(old_token)).user_id == "u1"  # inside the overlap
    manual_clock.advance(301)
    for node in (node_a, node_b):
        with pytest.raises(InvalidToken):
            await node.authenticate(old_token)  # cached entry expired with the key
    assert [k["kid"] for k in node_a.jwks()["keys"]] == [new_kid]


async def test_unknown_kid_reload_is_throttled(manual_clock: ManualClock) -> None:
    strategy, _ = await make_strategy(manual_clock, key_reload_interval=60)
    stranger = KeySet(Ed25519Key.generate())
    token = jwt.issue(stranger, POLICY, sub="u1", now=manual_clock(), ttl=60)
    loads = 0
    original = strategy._manager.reload  # type: ignore[union-attr]

    async def counting_reload() -> KeySet:
        nonlocal loads
        loads += 1
        return await original()

    strategy._manager.reload = counting_reload  # type: ignore[union-attr,method-assign]
    for _ in range(5):
        with pytest.raises(InvalidToken):
            await strategy.authenticate(token)
    assert loads == 0  # keys were loaded at start() less than a minute ago
    manual_clock.advance(61)
    for _ in range(5):
        with pytest.raises(InvalidToken):
            await strategy.authenticate(token)
    assert loads == 1


async def test_stateless_session_operations(manual_clock: ManualClock) -> None:
    # Capabilities are typed: a stateless strategy simply is not a session keeper, and the
    # Auth facade says so with NotSupported instead of a probe that raises.
    strategy, _ = await make_strategy(manual_clock)
    assert not isinstance(strategy, SupportsSessions)
    users = UserService(MemoryStore(), PasswordHasher.insecure_fast_for_tests(), manual_clock)
    auth = Auth(strategy=strategy, transports=[BearerTransport()], users=users)
    assert not auth.keeps_sessions
    with pytest.raises(NotSupported):
        await auth.list_sessions("u1")
    with pytest.raises(NotSupported):
        await auth.revoke_session("sid")


async def test_F01_store_down_is_503(manual_clock: ManualClock, make_stores) -> None:  # type: ignore[no-untyped-def]
    stores = await make_stores("postgres")
    strategy = JWTStrategy(
        KeyManager(stores.keys, manual_clock), POLICY, stores.users, clock=manual_clock
    )
    await strategy.start()
    user = await new_user(MemoryStore())
    await stores.users.create_user(user)
    _, issued = await strategy.issue(user, LoginContext())
    assert (await strategy.authenticate(issued.access_token)).user_id == "u1"
    await stores.users.close()
    with pytest.raises(StoreUnavailable):
        await strategy.authenticate(issued.access_token)
