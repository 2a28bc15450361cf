"""SessionStrategy, tokens and session policy, against the in-memory store and a manual clock."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import pytest

from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import UserService
from satchel.clock import ManualClock
from satchel.errors import (
    ConfigurationError,
    ExpiredCredential,
    InvalidCredential,
    SessionLimitExceeded,
    StoreUnavailable,
)
from satchel.identity import Identity
from satchel.revocation.base import LocalBus, NullBus, RevocationBus
from satchel.stores import codec
from satchel.stores.base import OnExceed, SessionRecord, UserRecord
from satchel.stores.memory import MemoryStore
from satchel.strategies import LoginContext, SessionStrategy
from satchel.strategies.session_policy import (
    SessionPolicy,
    next_idle_expiry,
    session_valid,
    should_touch,
)
from satchel.strategies.session_tokens import ID_LENGTH, hash_secret, new_token, split_token

POLICY = SessionPolicy(idle_timeout=1800, absolute_timeout=43_200, touch_interval=60)


class CountingStore(MemoryStore):
    """The memory store, counting the calls that reach it (reads and touch writes)."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.touches = 0
        self.fail: Exception | None = None
        self.before_get: Callable[[], object] | None = None

    async def get(self, session_id: str) -> SessionRecord | None:
        self.gets += 1
        if self.fail is not None:
            raise self.fail
        if self.before_get is not None:
            await self.before_get()  # type: ignore[misc]
        return await super().get(session_id)

    async def touch(self, session_id: str, *, last_seen_at: float, idle_expires_at: float) -> bool:
        self.touches += 1
        if self.fail is not None:
            raise self.fail
        return await super().touch(
            session_id, last_seen_at=last_seen_at, idle_expires_at=idle_expires_at
        )

    async def delete(self, session_id: str) -> SessionRecord | None:
        if self.fail is not None:
            raise self.fail
        return await super().delete(session_id)


class SwitchableBus(LocalBus):
    """A local bus whose connection state a test can flip, like a reconnecting Redis bus."""

    def __init__(self) -> None:
        super().__init__()
        self.up = True

    @property
    def healthy(self) -> bool:
        return self.up

    def reconnect(self) -> None:
        self.up = True
        for reset in self._resets:
            reset()


class World:
    def __init__(self, policy: SessionPolicy = POLICY, bus: RevocationBus | None = None) -> None:
        self.clock = ManualClock()
        self.store = CountingStore()
        self.bus = bus
        self.users = UserService(
            self.store, PasswordHasher.insecure_fast_for_tests(), clock=self.clock
        )
        self.strategy = self.make_strategy(policy)

    def make_strategy(self, policy: SessionPolicy = POLICY) -> SessionStrategy:
        return SessionStrategy(
            self.store, self.store, policy, clock=self.clock, bus=self.bus, cache_ttl=600
        )

    async def user(self, name: str = "alice", roles: tuple[str, ...] = ("user",)) -> UserRecord:
        return await self.users.create_user(name, "correct horse battery staple", roles)

    async def login(
        self, user: UserRecord, remember: bool = False, strategy: SessionStrategy | None = None
    ) -> tuple[Identity, str]:
        identity, issued = await (strategy or self.strategy).issue(
            user, LoginContext(ip="203.0.113.7", user_agent="pytest", remember=remember)
        )
        return identity, issued.access_token


@pytest.fixture(params=["local", "null"])
def world(request: pytest.FixtureRequest) -> World:
    """Both the cached (LocalBus) and the uncached (NullBus) path must behave the same."""
    return World(bus=LocalBus() if request.param == "local" else NullBus())


# --- tokens (S06, S10) --------------------------------------------------------------------------


def test_S06_100k_ids_unique_and_at_least_128_bits() -> None:
    tokens = [new_token() for _ in range(100_000)]
    assert len({sid for sid, _, _ in tokens}) == 100_000
    assert len({secret for _, secret, _ in tokens}) == 100_000
    for sid, secret, token in tokens[:100]:
        assert len(base64.urlsafe_b64decode(sid + "==")) == 16  # 128-bit handle
        assert len(base64.urlsafe_b64decode(secret + "=")) == 32  # 256-bit secret
        assert split_token(token) == (sid, secret)


MALFORMED = [
    "",
    ".",
    "a" * 22,
    "a" * 22 + ".",
    "a" * 22 + "." + "b" * 42,
    "a" * 22 + "." + "b" * 44,
    "a" * 21 + ".." + "b" * 43,
    "a" * 22 + "." + "b" * 42 + "=",
    "a" * 22 + "." + "b" * 42 + "+",
    "' OR 1=1 --" + "a" * 11 + "." + "b" * 43,
    "a" * 21 + "\x00." + "b" * 43,
    "a" * 21 + "é." + "b" * 43,
    "a" * 21 + "٣." + "b" * 43,  # a Unicode digit that \\w would accept
    "x" * 10_240,
    "a" * 22 + "." + "b" * 20 + "." + "b" * 22,
]


@pytest.mark.parametrize("token", MALFORMED)
async def test_S10_malformed_tokens_rejected_before_any_store_query(token: str) -> None:
    w = World(bus=LocalBus())
    with pytest.raises(InvalidCredential):
        await w.strategy.authenticate(token)
    assert w.store.gets == 0
    assert w.strategy.counters.store_reads == 0


# --- issue / authenticate / basic rejection ---------------------------------------------------


async def test_login_issues_new_session_with_metadata(world: World) -> None:
    user = await world.user()
    identity, token = await world.login(user)
    _, token2 = await world.login(user)
    assert token != token2
    assert identity.user_id == user.id and identity.username == "alice"
    assert identity.roles == frozenset({"user"})
    assert identity.strategy == "session"
    sid, _ = split_token(token)
    assert identity.session_id == sid
    record = await world.store.get(sid)
    assert record is not None
    assert record.ip == "203.0.113.7" and record.user_agent == "pytest"
    assert record.created_at == record.last_seen_at == world.clock.now
    assert record.idle_expires_at == world.clock.now + 1800
    assert record.absolute_expires_at == world.clock.now + 43_200
    assert record.data == {"u": "alice", "r": ["user"]}
    assert (await world.strategy.authenticate(token)).user_id == user.id


async def test_user_agent_truncated(world: World) -> None:
    user = await world.user()
    _, issued = await world.strategy.issue(user, LoginContext(user_agent="A" * 5000))
    record = await world.store.get(issued.session_id or "")
    assert record is not None and record.user_agent == "A" * 512


async def test_S01_unknown_id_rejected_and_nothing_created(world: World) -> None:
    user = await world.user()
    await world.login(user)
    forged = new_token()[2]
    with pytest.raises(InvalidCredential):
        await world.strategy.authenticate(forged)
    assert len(await world.store.list_all()) == 1
    assert await world.store.get(split_token(forged)[0]) is None


async def test_wrong_secret_for_real_id_rejected(world: World) -> None:
    user = await world.user()
    _, token = await world.login(user)
    sid, _ = split_token(token)
    with pytest.raises(InvalidCredential):
        await world.strategy.authenticate(f"{sid}.{new_token()[1]}")
    # The genuine token still works afterwards.
    assert (await world.strategy.authenticate(token)).session_id == sid


async def test_S07_stored_value_is_a_hash_and_replaying_it_fails(world: World) -> None:
    user = await world.user()
    _, token = await world.login(user)
    sid, secret = split_token(token)
    record = await world.store.get(sid)
    assert record is not None
    assert record.secret_hash == hash_secret(secret)
    blob = codec.encode_session(record)
    assert secret.encode() not in blob and token.encode() not in blob
    replay = f"{sid}.{base64.urlsafe_b64encode(record.secret_hash).rstrip(b'=').decode()}"
    with pytest.raises(InvalidCredential):
        await world.strategy.authenticate(replay)
    with pytest.raises(InvalidCredential):
        await world.strategy.authenticate(f"{sid}.{record.secret_hash.hex()}")


# --- time-outs (S04, S05) and touch throttling ------------------------------------------------


async def test_S04_idle_timeout_ends_session(world: World) -> None:
    user = await world.user()
    _, token = await world.login(user)
    world.clock.advance(1799)
    await world.strategy.authenticate(token)  # activity: idle expiry moves to +1800 from here
    world.clock.advance(1799)
    await world.strategy.authenticate(token)
    world.clock.advance(1800)  # no activity for a full idle period
    with pytest.raises(ExpiredCredential):
        await world.strategy.authenticate(token)


async def test_auth_time_stays_the_login_through_activity(world: World) -> None:
    user = await world.user()
    login_at = world.clock.now
    identity, token = await world.login(user)
    assert identity.auth_time == login_at
    for _ in range(5):  # each step is past touch_interval: the session is touched and re-cached
        world.clock.advance(600.5)
        seen = await world.strategy.authenticate(token)
        assert seen.auth_time == login_at
        assert seen.expires_at == world.clock.now + 1800  # the idle expiry moved, auth_time not
    assert world.store.touches == 5


async def test_S04_idle_expiry_instant_is_already_expired(world: World) -> None:
    user = await world.user()
    _, token = await world.login(user)
    await world.strategy.authenticate(token)  # warm the cache where there is one
    world.clock.advance(1800)
    with pytest.raises(ExpiredCredential):
        await world.strategy.authenticate(token)


async def test_S05_absolute_timeout_despite_constant_activity(world: World) -> None:
    user = await world.user()
    _, token = await world.login(user)
    sid, _ = split_token(token)
    start = world.clock.now
    while world.clock.now + 600 < start + 43_200:
        world.clock.advance(600)
        await world.strategy.authenticate(token)
        record = await world.store.get(sid)
        assert record is not None
        # Activity never pushes the idle expiry past the absolute one.
        assert record.idle_expires_at <= record.absolute_expires_at == start + 43_200
    world.clock.now = start + 43_200
    with pytest.raises(ExpiredCredential):
        await world.strategy.authenticate(token)


async def test_identity_expiry_tracks_activity_but_not_beyond_absolute() -> None:
    policy = SessionPolicy(idle_timeout=200, absolute_timeout=1000, touch_interval=10)
    w = World(policy=policy, bus=LocalBus())
    user = await w.user()
    identity, token = await w.login(user)
    assert identity.expires_at == w.clock.now + 200
    w.clock.advance(100)
    assert (await w.strategy.authenticate(token)).expires_at == w.clock.now + 200
    for _ in range(8):
        w.clock.advance(100)
        identity = await w.strategy.authenticate(token)
    assert identity.expires_at == w.clock.now + 100  # capped at the absolute expiry
    w.clock.advance(100)
    with pytest.raises(ExpiredCredential):
        await w.strategy.authenticate(token)


async def test_remember_me_uses_longer_timeouts(world: World) -> None:
    user = await world.user()
    _, token = await world.login(user, remember=True)
    sid, _ = split_token(token)
    record = await world.store.get(sid)
    assert record is not None
    assert record.absolute_expires_at == world.clock.now + 30 * 86_400
    assert record.idle_expires_at == world.clock.now + 7 * 86_400
    world.clock.advance(2 * 86_400)  # far beyond a normal session's absolute limit
    await world.strategy.authenticate(token)
    record = await world.store.get(sid)
    assert record is not None and record.idle_expires_at == world.clock.now + 7 * 86_400


async def test_touch_throttled_to_once_per_interval(world: World) -> None:
    user = await world.user()
    _, token = await world.login(user)
    sid, _ = split_token(token)
    for _ in range(50):
        world.clock.advance(1)
        await world.strategy.authenticate(token)
    assert world.store.touches == 0  # 50 s < touch_interval
    world.clock.advance(10)  # 60 s since login
    await world.strategy.authenticate(token)
    assert world.store.touches == 1
    record = await world.store.get(sid)
    assert record is not None and record.last_seen_at == world.clock.now
    for _ in range(59):
        world.clock.advance(1)
        await world.strategy.authenticate(token)
    assert world.store.touches == 1
    world.clock.advance(1)
    await world.strategy.authenticate(token)
    assert world.store.touches == 2


# --- limits (S13) -------------------------------------------------------------------------------


async def test_S13_evict_oldest_at_cap() -> None:
    bus = LocalBus()
    w = World(policy=SessionPolicy(max_sessions_per_user=1), bus=bus)
    user = await w.user()
    _, first = await w.login(user)
    await w.strategy.authenticate(first)  # cached
    published = bus.received
    w.clock.advance(1)
    _, second = await w.login(user)
    assert bus.received == published + 1  # the eviction was broadcast
    with pytest.raises(InvalidCredential):
        await w.strategy.authenticate(first)
    assert (await w.strategy.authenticate(second)).user_id == user.id
    assert [r.id for r in await w.strategy.list_sessions(user.id)] == [split_token(second)[0]]


async def test_S13_deny_at_cap() -> None:
    w = World(policy=SessionPolicy(max_sessions_per_user=1, on_exceed=OnExceed.DENY))
    user = await w.user()
    _, first = await w.login(user)
    with pytest.raises(SessionLimitExceeded):
        await w.login(user)
    assert (await w.strategy.authenticate(first)).user_id == user.id
    assert len(await w.store.list_user(user.id)) == 1
    # An expired session does not count toward the cap.
    w.clock.advance(1800)
    await w.login(user)


# --- ending sessions ----------------------------------------------------------------------------


async def test_logout_ends_session_everywhere(world: World) -> None:
    user = await world.user()
    identity, token = await world.login(user)
    await world.strategy.authenticate(token)
    await world.strategy.logout(identity)
    with pytest.raises(InvalidCredential):
        await world.strategy.authenticate(token)
    assert await world.store.get(identity.session_id or "") is None
    await world.strategy.logout(identity)  # idempotent


async def test_revoke_others_keeps_only_current(world: World) -> None:
    user = await world.user()
    current, token = await world.login(user)
    others = [(await world.login(user))[1] for _ in range(3)]
    for t in [token, *others]:
        await world.strategy.authenticate(t)
    ended = await world.strategy.revoke_user_sessions(user.id, keep=current.session_id)
    assert sorted(ended) == sorted(split_token(t)[0] for t in others)
    for t in others:
        with pytest.raises(InvalidCredential):
            await world.strategy.authenticate(t)
    assert (await world.strategy.authenticate(token)).session_id == current.session_id


async def test_revoke_all_ends_all(world: World) -> None:
    user = await world.user()
    tokens = [(await world.login(user))[1] for _ in range(3)]
    for t in tokens:
        await world.strategy.authenticate(t)
    assert len(await world.strategy.revoke_user_sessions(user.id)) == 3
    for t in tokens:
        with pytest.raises(InvalidCredential):
            await world.strategy.authenticate(t)
    assert await world.strategy.list_sessions(user.id) == []


async def test_revoke_session_checks_owner(world: World) -> None:
    alice = await world.user("alice")
    bob = await world.user("bob")
    alice_identity, alice_token = await world.login(alice)
    sid = alice_identity.session_id or ""
    assert await world.strategy.revoke_session(sid, user_id=bob.id) is False
    assert (await world.strategy.authenticate(alice_token)).user_id == alice.id
    assert await world.strategy.revoke_session("not-a-session-id", user_id=alice.id) is False
    assert await world.strategy.revoke_session(sid, user_id=alice.id) is True
    with pytest.raises(InvalidCredential):
        await world.strategy.authenticate(alice_token)
    assert await world.strategy.revoke_session(sid) is False


async def test_list_sessions_filters_expired(world: World) -> None:
    user = await world.user()
    await world.login(user)
    world.clock.advance(1000)
    _, fresh = await world.login(user)
    world.clock.advance(1000)  # first one idle-expired, second alive
    listed = await world.strategy.list_sessions(user.id)
    assert [r.id for r in listed] == [split_token(fresh)[0]]
    assert [r.id for r in await world.strategy.list_all_sessions()] == [split_token(fresh)[0]]


async def test_S12_disable_ends_all_sessions(world: World) -> None:
    user = await world.user()
    _, token = await world.login(user)
    await world.strategy.authenticate(token)
    changed = await world.users.set_disabled(user.id, True)
    await world.strategy.user_changed(changed)
    with pytest.raises(InvalidCredential):
        await world.strategy.authenticate(token)
    assert await world.store.list_user(user.id) == []


async def test_S12_password_change_ends_older_sessions_not_the_new_one(world: World) -> None:
    user = await world.user()
    _, old = await world.login(user)
    await world.strategy.authenticate(old)
    world.clock.advance(5)
    changed = await world.users.change_password(
        user.id, "correct horse battery staple", "a brand new passphrase"
    )
    await world.strategy.user_changed(changed)
    _, replacement = await world.login(changed)  # same instant as the change
    with pytest.raises(InvalidCredential):
        await world.strategy.authenticate(old)
    assert (await world.strategy.authenticate(replacement)).user_id == user.id


async def test_account_change_without_user_changed_still_ends_sessions(world: World) -> None:
    # e.g. an administration tool that edits the user store from another process
    user = await world.user()
    _, token = await world.login(user)
    await world.strategy.authenticate(token)
    await world.users.set_disabled(user.id, True)
    if isinstance(world.bus, NullBus):
        with pytest.raises(InvalidCredential):
            await world.strategy.authenticate(token)
    else:
        # Without an event a cached token is re-checked once its cache TTL (600 s) ends.
        world.clock.advance(30)
        await world.strategy.authenticate(token)
        world.clock.advance(600)
        with pytest.raises(InvalidCredential):
            await world.strategy.authenticate(token)


async def test_role_change_reaches_cached_identity(world: World) -> None:
    user = await world.user(roles=("user",))
    _, token = await world.login(user)
    assert (await world.strategy.authenticate(token)).roles == frozenset({"user"})
    changed = await world.users.set_roles(user.id, ["user", "admin"])
    await world.strategy.user_changed(changed)
    assert (await world.strategy.authenticate(token)).roles == frozenset({"user", "admin"})


# --- the local cache --------------------------------------------------------------------------


async def test_cache_answers_repeats_without_store_reads_and_honours_revocation() -> None:
    w = World(bus=LocalBus())
    user = await w.user()
    identity, token = await w.login(user)
    await w.strategy.authenticate(token)
    reads, gets = w.strategy.counters.store_reads, w.store.gets
    for _ in range(1000):
        assert (await w.strategy.authenticate(token)).session_id == identity.session_id
    assert w.strategy.counters.store_reads == reads
    assert w.store.gets == gets
    assert w.strategy.counters.cache_hits == 1000
    assert await w.strategy.revoke_session(identity.session_id or "") is True
    with pytest.raises(InvalidCredential):
        await w.strategy.authenticate(token)


async def test_null_bus_reads_store_every_time() -> None:
    w = World(bus=NullBus())
    user = await w.user()
    _, token = await w.login(user)
    for _ in range(20):
        await w.strategy.authenticate(token)
    assert w.store.gets == 20
    assert w.strategy.counters.cache_hits == 0


async def test_no_bus_reads_store_every_time() -> None:
    w = World(bus=None)
    user = await w.user()
    _, token = await w.login(user)
    for _ in range(5):
        await w.strategy.authenticate(token)
    assert w.store.gets == 5


async def test_S12_revocation_reaches_other_process_cache() -> None:
    # Two strategies sharing a store and a bus stand in for two server processes.
    bus = LocalBus()
    w = World(bus=bus)
    other = w.make_strategy()
    user = await w.user()
    identity, token = await w.login(user)
    await other.authenticate(token)
    await other.authenticate(token)
    assert other.counters.cache_hits == 1
    await w.strategy.logout(identity)
    assert other.counters.revocations_received >= 1
    with pytest.raises(InvalidCredential):
        await other.authenticate(token)


async def test_cache_hit_still_writes_due_touch() -> None:
    w = World(bus=LocalBus())
    user = await w.user()
    _, token = await w.login(user)
    sid, _ = split_token(token)
    await w.strategy.authenticate(token)
    gets = w.store.gets
    w.clock.advance(60)
    await w.strategy.authenticate(token)
    assert w.store.touches == 1 and w.store.gets == gets  # a write, not a read
    record = await w.store.get(sid)
    assert record is not None and record.last_seen_at == w.clock.now


async def test_F10_cached_touch_after_delete_rejects_and_does_not_recreate() -> None:
    bus = LocalBus()
    w = World(bus=bus)
    user = await w.user()
    _, token = await w.login(user)
    sid, _ = split_token(token)
    await w.strategy.authenticate(token)
    await w.store.delete(sid)  # deleted behind the cache's back, no event
    w.clock.advance(60)
    with pytest.raises(InvalidCredential):
        await w.strategy.authenticate(token)
    assert await w.store.get(sid) is None


async def test_unhealthy_bus_disables_cache_and_reset_flushes() -> None:
    bus = SwitchableBus()
    w = World(bus=bus)
    user = await w.user()
    _, token = await w.login(user)
    await w.strategy.authenticate(token)
    await w.strategy.authenticate(token)
    assert w.strategy.counters.cache_hits == 1
    bus.up = False
    gets = w.store.gets
    await w.strategy.authenticate(token)
    await w.strategy.authenticate(token)
    assert w.store.gets == gets + 2  # every call reads while the bus is down
    bus.reconnect()
    await w.strategy.authenticate(token)
    hits = w.strategy.counters.cache_hits
    await w.strategy.authenticate(token)
    assert w.strategy.counters.cache_hits == hits + 1
    bus.reconnect()  # a reconnect means missed messages: the cache is flushed
    gets = w.store.gets
    await w.strategy.authenticate(token)
    assert w.store.gets == gets + 1
    assert w.strategy.counters.cache_flushes >= 1


async def test_revocation_during_inflight_read_is_not_cached() -> None:
    bus = LocalBus()
    w = World(bus=bus)
    user = await w.user()
    identity, token = await w.login(user)
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def pause() -> None:
        entered.set()
        await gate.wait()

    w.store.before_get = pause
    inflight = asyncio.create_task(w.strategy.authenticate(token))
    await entered.wait()
    w.store.before_get = None
    # Revoke while the first read is suspended after passing the cache check.
    await w.strategy.revoke_session(identity.session_id or "")
    gate.set()
    # The in-flight request read the store after the delete and therefore fails too.
    with pytest.raises(InvalidCredential):
        await inflight
    with pytest.raises(InvalidCredential):
        await w.strategy.authenticate(token)


async def test_event_during_read_prevents_caching_a_stale_identity() -> None:
    bus = LocalBus()
    w = World(bus=bus)
    other = w.make_strategy()
    user = await w.user()
    _, token = await w.login(user)
    _, unrelated = await w.login(user)
    gate = asyncio.Event()
    entered = asyncio.Event()

    async def pause() -> None:
        entered.set()
        await gate.wait()

    original = w.store.get

    async def slow_get(session_id: str) -> SessionRecord | None:
        record = await original(session_id)  # read completes before the revocation...
        await pause()
        return record

    w.store.get = slow_get  # type: ignore[method-assign]
    inflight = asyncio.create_task(other.authenticate(token))
    await entered.wait()
    w.store.get = original  # type: ignore[method-assign]
    await w.strategy.revoke_user_sessions(user.id, keep=split_token(unrelated)[0])
    gate.set()
    await inflight  # ...so this one request still passes (it started first),
    with pytest.raises(InvalidCredential):  # but it was not cached for the next one.
        await other.authenticate(token)


async def test_cache_is_bounded() -> None:
    w = World(bus=LocalBus())
    strategy = SessionStrategy(w.store, w.store, POLICY, clock=w.clock, bus=w.bus, cache_size=3)
    user = await w.user()
    tokens = [(await w.login(user, strategy=strategy))[1] for _ in range(5)]
    for t in tokens:
        await strategy.authenticate(t)
    reads = strategy.counters.store_reads
    for t in tokens[-3:]:
        await strategy.authenticate(t)
    assert strategy.counters.store_reads == reads
    await strategy.authenticate(tokens[0])
    assert strategy.counters.store_reads > reads


# --- failures -------------------------------------------------------------------------------


async def test_F01_store_down_while_verifying_is_503_not_401() -> None:
    w = World(bus=NullBus())
    user = await w.user()
    _, token = await w.login(user)
    w.store.fail = ConnectionError("connection refused")
    with pytest.raises(StoreUnavailable) as info:
        await w.strategy.authenticate(token)
    assert info.value.status == 503
    assert token not in str(info.value)
    w.store.fail = None
    assert (await w.strategy.authenticate(token)).user_id == user.id  # F07: recovers


async def test_F03_store_down_at_logout_fails_and_retry_works(world: World) -> None:
    user = await world.user()
    identity, token = await world.login(user)
    world.store.fail = TimeoutError()
    with pytest.raises(StoreUnavailable):
        await world.strategy.logout(identity)
    world.store.fail = None
    assert (await world.strategy.authenticate(token)).user_id == user.id  # nothing half-done
    await world.strategy.logout(identity)
    with pytest.raises(InvalidCredential):
        await world.strategy.authenticate(token)


# --- policy -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"idle_timeout": 0},
        {"idle_timeout": -1},
        {"idle_timeout": float("nan")},
        {"absolute_timeout": float("inf")},
        {"idle_timeout": 100, "absolute_timeout": 50},
        {"remember_idle_timeout": 40 * 86_400},
        {"remember_absolute_timeout": 3600},
        {"touch_interval": 1800},
        {"touch_interval": -1},
        {"max_sessions_per_user": 0},
        {"max_sessions_per_user": True},
        {"on_exceed": "deny"},
        {"idle_timeout": "1800"},
    ],
)
def test_bad_policy_is_configuration_error(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError):
        SessionPolicy(**kwargs)  # type: ignore[arg-type]


def record_at(now: float, *, idle: float, absolute: float, last_seen: float) -> SessionRecord:
    return SessionRecord(
        id="s" * ID_LENGTH,
        user_id="u",
        secret_hash=b"",
        created_at=now,
        last_seen_at=last_seen,
        idle_expires_at=idle,
        absolute_expires_at=absolute,
    )


def test_pure_policy_functions() -> None:
    policy = SessionPolicy(idle_timeout=100, absolute_timeout=1000, touch_interval=10)
    rec = record_at(0, idle=100, absolute=1000, last_seen=0)
    assert session_valid(rec, 99.9) and not session_valid(rec, 100)
    assert next_idle_expiry(rec, 50, policy) == 150
    assert next_idle_expiry(rec, 950, policy) == 1000  # capped at absolute
    assert not should_touch(rec, 9.99, policy) and should_touch(rec, 10, policy)
    late = record_at(0, idle=2000, absolute=1000, last_seen=0)
    assert not session_valid(late, 1000)


async def test_user_event_reaches_other_process_cache() -> None:
    bus = LocalBus()
    w = World(bus=bus)
    other = w.make_strategy()
    user = await w.user(roles=("user",))
    _, token = await w.login(user)
    await other.authenticate(token)
    changed = await w.users.set_roles(user.id, ["admin"])
    await w.strategy.user_changed(changed)  # runs on "process" A only
    assert (await other.authenticate(token)).roles == frozenset({"admin"})


async def test_S12_password_changed_elsewhere_ends_older_sessions_on_next_read() -> None:
    w = World(bus=NullBus())
    user = await w.user()
    _, token = await w.login(user)
    w.clock.advance(1)
    await w.users.reset_password(user.id, "another long passphrase")  # no user_changed call
    with pytest.raises(InvalidCredential):
        await w.strategy.authenticate(token)


def test_session_ids_never_start_with_a_dash() -> None:
    """Handles are typed on command lines (``satchel sessions revoke ID``)."""
    from satchel.strategies.session_tokens import is_session_id, new_session_id, new_token

    ids = [new_session_id() for _ in range(5000)] + [new_token()[0] for _ in range(5000)]
    assert all(is_session_id(sid) and not sid.startswith("-") for sid in ids)
