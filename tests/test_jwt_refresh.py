"""RefreshingJWTStrategy: a rotating refresh token per login with reuse detection (RFC 9700
§4.14.2), state touched only at refresh, an absolute family lifetime, auth_time kept."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from helpers import MakeStores
from satchel.accounts.passwords import PasswordHasher
from satchel.accounts.users import UserService
from satchel.audit import AuditEvent, AuditLog
from satchel.auth import Auth
from satchel.clock import Clock, ManualClock, system_clock
from satchel.errors import (
    ConfigurationError,
    ExpiredCredential,
    InvalidCredential,
    InvalidToken,
    NotFound,
    StoreUnavailable,
)
from satchel.jose import claims as claims_mod
from satchel.jose.claims import ClaimsPolicy
from satchel.jose.jwk import Ed25519Key
from satchel.jose.keyset import KeySet
from satchel.keys.manager import KeyManager
from satchel.revocation.base import LocalBus, RevocationBus
from satchel.stores.base import SessionRecord, Stores
from satchel.stores.memory import MemoryStore
from satchel.strategies.base import LoginContext, SupportsRefresh, SupportsSessions
from satchel.strategies.jwt import JWTStrategy
from satchel.strategies.jwt_refresh import RefreshingJWTStrategy
from satchel.strategies.refresh_tokens import RefreshTokens
from satchel.transports.bearer import BearerTransport

PASSWORD = "correct horse battery"
POLICY = ClaimsPolicy(issuer="https://auth.test", audience="api", max_lifetime=3600)
DAY = 86_400.0
REFRESH_TTL = 14 * DAY


class CountingSessions(MemoryStore):
    """The memory store, counting every session-store call that reaches it."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    async def get(self, session_id: str) -> SessionRecord | None:
        self.calls.append("get")
        return await super().get(session_id)

    async def touch(self, session_id: str, *, last_seen_at: float, idle_expires_at: float) -> bool:
        self.calls.append("touch")
        return await super().touch(
            session_id, last_seen_at=last_seen_at, idle_expires_at=idle_expires_at
        )

    async def rotate_refresh(self, session_id: str, **kw: Any) -> Any:
        self.calls.append("rotate")
        return await super().rotate_refresh(session_id, **kw)

    async def list_user(self, user_id: str) -> list[SessionRecord]:
        self.calls.append("list_user")
        return await super().list_user(user_id)


@dataclass
class Node:
    """One process: a strategy and its facade over shared stores."""

    auth: Auth
    strategy: RefreshingJWTStrategy
    events: list[AuditEvent] = field(default_factory=list)


async def make_node(
    stores: Stores, *, clock: Clock, bus: RevocationBus | None = None, **options: Any
) -> Node:
    events: list[AuditEvent] = []

    async def hook(event: AuditEvent) -> None:
        events.append(event)

    audit = AuditLog(hook)
    strategy = RefreshingJWTStrategy(
        KeyManager(stores.keys, clock),
        POLICY,
        stores.users,
        sessions=stores.sessions,
        refresh_ttl=options.pop("refresh_ttl", REFRESH_TTL),
        clock=clock,
        bus=bus,
        audit=audit,
        **options,
    )
    auth = Auth(
        strategy=strategy,
        transports=[BearerTransport()],
        users=UserService(stores.users, PasswordHasher.insecure_fast_for_tests(), clock),
        audit=audit,
        clock=clock,
    )
    await auth.start()
    return Node(auth, strategy, events)


@pytest.fixture
def sessions() -> CountingSessions:
    return CountingSessions()


@pytest.fixture
def bus() -> LocalBus:
    return LocalBus()


@pytest.fixture
async def node(sessions: CountingSessions, bus: LocalBus, manual_clock: ManualClock) -> Node:
    stores = Stores(sessions=sessions, users=sessions, keys=sessions)
    n = await make_node(stores, clock=manual_clock, bus=bus)
    await n.auth.users.create_user("alice", PASSWORD, roles=["admin"])
    return n


async def second_process(node: Node, bus: LocalBus, clock: ManualClock) -> Node:
    """Another process over the same stores and bus."""
    store = node.strategy.sessions
    assert isinstance(store, MemoryStore)
    return await make_node(Stores(store, store, store), clock=clock, bus=bus)


# --- capabilities and construction --------------------------------------------------------


async def test_capabilities_follow_the_type(node: Node) -> None:
    assert isinstance(node.strategy, SupportsRefresh)
    assert isinstance(node.strategy, SupportsSessions)
    assert node.auth.can_refresh and node.auth.keeps_sessions
    assert node.strategy.name == "jwt" and node.strategy.stateful
    assert not issubclass(JWTStrategy, SupportsRefresh)
    assert not issubclass(JWTStrategy, SupportsSessions)


def test_construction_is_checked(manual_clock: ManualClock) -> None:
    store = MemoryStore()
    keys = KeyManager(store, manual_clock)
    with pytest.raises(ConfigurationError, match="key store for their pepper"):
        RefreshingJWTStrategy(KeySet(Ed25519Key.generate()), POLICY, store, sessions=store)
    RefreshingJWTStrategy(
        KeySet(Ed25519Key.generate()), POLICY, store, sessions=store, secrets_store=store
    )
    for ttl in (0, 59, 401 * DAY, float("inf"), float("nan"), True, "14d"):
        with pytest.raises(ConfigurationError, match="refresh_ttl"):
            RefreshingJWTStrategy(keys, POLICY, store, sessions=store, refresh_ttl=ttl)  # type: ignore[arg-type]
    for grace in (-1, 301, float("nan"), True):
        with pytest.raises(ConfigurationError, match="refresh_grace"):
            RefreshingJWTStrategy(keys, POLICY, store, sessions=store, refresh_grace=grace)
    strategy = RefreshingJWTStrategy(keys, POLICY, store, sessions=store)
    with pytest.raises(ConfigurationError, match="start"):
        strategy.refresh_tokens  # noqa: B018 - the pepper is loaded by start()
    assert "pepper" not in repr(strategy) and "MemoryStore" in repr(strategy)


# --- login and rotation -------------------------------------------------------------------


async def test_login_returns_an_access_token_and_a_refresh_token(
    node: Node, sessions: CountingSessions, manual_clock: ManualClock
) -> None:
    result = await node.auth.login("alice", PASSWORD, LoginContext(ip="192.0.2.7"))
    issued = result.credentials
    assert issued.refresh_token is not None and issued.expires_in == 900
    assert issued.refresh_expires_in == int(REFRESH_TTL)
    assert issued.session_id == result.identity.session_id
    assert issued.refresh_token not in repr(issued)
    payload = claims_mod.verify(issued.access_token, node.strategy.keyset, POLICY, manual_clock())
    assert payload["sid"] == issued.session_id
    assert payload["auth_time"] == manual_clock()
    identity = await node.strategy.authenticate(issued.access_token)
    assert (identity.username, identity.roles, identity.strategy) == ("alice", {"admin"}, "jwt")
    # One record per login, holding only a hash of the refresh token.
    record = await sessions.get(issued.session_id or "")
    assert record is not None and record.ip == "192.0.2.7"
    assert record.refresh_hash == RefreshTokens.digest(issued.refresh_token)
    assert record.absolute_expires_at == manual_clock() + REFRESH_TTL
    assert [s.id for s in await node.auth.list_sessions(identity.user_id)] == [record.id]


async def test_refresh_rotates_and_keeps_the_family(node: Node, manual_clock: ManualClock) -> None:
    first = (await node.auth.login("alice", PASSWORD)).credentials
    assert first.refresh_token is not None
    manual_clock.advance(600)
    second = (await node.auth.refresh(first.refresh_token)).credentials
    assert second.refresh_token not in (None, first.refresh_token)
    assert second.access_token != first.access_token
    assert second.session_id == first.session_id
    assert second.refresh_expires_in == int(REFRESH_TTL - 600)  # absolute: never extended
    seen = await node.strategy.authenticate(second.access_token)
    assert seen.session_id == first.session_id
    # The successor rotates on.
    assert second.refresh_token is not None
    third = (await node.auth.refresh(second.refresh_token)).credentials
    assert third.refresh_token not in (first.refresh_token, second.refresh_token)


async def test_old_refresh_token_within_grace_gets_the_same_successor(
    node: Node, manual_clock: ManualClock
) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    assert issued.refresh_token is not None
    a = (await node.auth.refresh(issued.refresh_token)).credentials
    manual_clock.advance(9)  # a second tab, inside the 10 s grace window
    b = (await node.auth.refresh(issued.refresh_token)).credentials
    assert a.refresh_token == b.refresh_token
    assert a.access_token != b.access_token
    await node.strategy.authenticate(a.access_token)
    await node.strategy.authenticate(b.access_token)
    assert not [e for e in node.events if e.name == "theft"]


async def test_concurrent_refreshes_get_exactly_one_successor(node: Node) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    token = issued.refresh_token
    assert token is not None
    results = await asyncio.gather(*(node.auth.refresh(token) for _ in range(10)))
    assert len({r.credentials.refresh_token for r in results}) == 1


async def test_reuse_after_grace_revokes_the_family_everywhere(
    node: Node, bus: LocalBus, manual_clock: ManualClock
) -> None:
    other = await second_process(node, bus, manual_clock)
    first = (await node.auth.login("alice", PASSWORD, LoginContext(ip="198.51.100.1"))).credentials
    assert first.refresh_token is not None
    manual_clock.advance(60)
    second = (await node.auth.refresh(first.refresh_token)).credentials
    assert second.refresh_token is not None
    # Both processes accept the family's newest access token (the other one from its cache).
    await node.strategy.authenticate(second.access_token)
    await other.strategy.authenticate(second.access_token)
    await other.strategy.authenticate(second.access_token)
    manual_clock.advance(11)  # past the grace window: the old token is a stolen copy
    with pytest.raises(InvalidCredential, match="reuse"):
        await node.auth.refresh(first.refresh_token, LoginContext(ip="203.0.113.9"))
    # The family's access tokens stop verifying in both processes, at once.
    for strategy in (node.strategy, other.strategy):
        for token in (first.access_token, second.access_token):
            with pytest.raises(InvalidCredential, match="revoked"):
                await strategy.authenticate(token)
    # And its newest refresh token is dead too.
    with pytest.raises(InvalidCredential):
        await other.auth.refresh(second.refresh_token)
    user = await node.auth.users.get_by_name("alice")
    assert await node.auth.list_sessions(user.id) == []
    theft = [e for e in node.events if e.name == "theft"]
    assert len(theft) == 1
    assert theft[0].session == first.session_id and theft[0].ip == "203.0.113.9"
    assert first.refresh_token not in repr(theft[0].fields())
    # Other logins of the user are untouched.
    again = (await node.auth.login("alice", PASSWORD)).credentials
    await other.strategy.authenticate(again.access_token)


async def test_forged_refresh_token_changes_nothing(node: Node) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    assert issued.session_id is not None and issued.refresh_token is not None
    forged = RefreshTokens(b"k" * 32).first(issued.session_id)  # right shape, wrong pepper
    with pytest.raises(InvalidCredential):
        await node.auth.refresh(forged)
    assert not [e for e in node.events if e.name == "theft"]
    await node.strategy.authenticate(issued.access_token)
    assert (await node.auth.refresh(issued.refresh_token)).credentials.refresh_token


async def test_refresh_and_access_tokens_are_not_interchangeable(node: Node) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    assert issued.refresh_token is not None
    with pytest.raises(InvalidToken, match="refresh token is not an access token"):
        await node.strategy.authenticate(issued.refresh_token)
    with pytest.raises(InvalidCredential, match="Malformed refresh token"):
        await node.auth.refresh(issued.access_token)
    await node.strategy.authenticate(issued.access_token)


# --- lifetime -----------------------------------------------------------------------------


async def test_absolute_expiry_of_the_family(node: Node, manual_clock: ManualClock) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    token = issued.refresh_token
    assert token is not None
    # Unused for almost the whole lifetime: there is no idle time-out, only the absolute one.
    manual_clock.advance(REFRESH_TTL - 100)
    with pytest.raises(ExpiredCredential):
        await node.strategy.authenticate(issued.access_token)
    late = (await node.auth.refresh(token)).credentials
    assert late.expires_in == 100  # no access token outlives its family
    assert late.refresh_expires_in == 100
    await node.strategy.authenticate(late.access_token)
    manual_clock.advance(100)
    assert late.refresh_token is not None
    with pytest.raises(ExpiredCredential):
        await node.auth.refresh(late.refresh_token)


async def test_auth_time_is_the_login_through_every_refresh(
    node: Node, manual_clock: ManualClock
) -> None:
    login_at = manual_clock()
    result = await node.auth.login("alice", PASSWORD)
    assert result.identity.auth_time == login_at
    token = result.credentials.refresh_token
    for _ in range(3):
        manual_clock.advance(700.5)
        refreshed = await node.auth.refresh(token or "")
        token = refreshed.credentials.refresh_token
        assert refreshed.identity.auth_time == login_at
        payload = claims_mod.verify(
            refreshed.credentials.access_token, node.strategy.keyset, POLICY, manual_clock()
        )
        assert payload["auth_time"] == login_at
        assert payload["iat"] == int(manual_clock())  # the token itself is new
        seen = await node.strategy.authenticate(refreshed.credentials.access_token)
        assert seen.auth_time == login_at


# --- per-request cost ---------------------------------------------------------------------


async def test_no_store_read_per_authenticate(
    node: Node, sessions: CountingSessions, bus: LocalBus, manual_clock: ManualClock
) -> None:
    result = await node.auth.login("alice", PASSWORD)
    assert result.credentials.refresh_token is not None
    refreshed = (await node.auth.refresh(result.credentials.refresh_token)).credentials
    other = await second_process(node, bus, manual_clock)  # sees the token for the first time
    sessions.calls.clear()
    node.strategy.counters.reset()
    for strategy in (node.strategy, other.strategy):
        for _ in range(50):
            await strategy.authenticate(refreshed.access_token)
    assert sessions.calls == []  # the session store is never asked per request
    assert node.strategy.counters.store_reads <= 1  # "valid after", then from the bus map
    assert other.strategy.counters.store_reads <= 1
    assert node.strategy.counters.cache_hits >= 49 and other.strategy.counters.cache_hits >= 49
    # The store is touched at refresh only.
    assert refreshed.refresh_token is not None
    await node.auth.refresh(refreshed.refresh_token)
    assert sessions.calls == ["get", "rotate", "touch"]


# --- ending families ----------------------------------------------------------------------


async def test_logout_ends_the_family(node: Node, bus: LocalBus, manual_clock: ManualClock) -> None:
    other = await second_process(node, bus, manual_clock)
    keep = await node.auth.login("alice", PASSWORD)
    result = await node.auth.login("alice", PASSWORD)
    await other.strategy.authenticate(result.credentials.access_token)
    await node.auth.logout(result.identity)
    for strategy in (node.strategy, other.strategy):
        with pytest.raises(InvalidCredential):
            await strategy.authenticate(result.credentials.access_token)
    with pytest.raises(InvalidCredential):
        await node.auth.refresh(result.credentials.refresh_token or "")
    await node.auth.logout(result.identity)  # idempotent
    assert [s.id for s in await node.auth.list_sessions(keep.identity.user_id)] == [
        keep.identity.session_id
    ]
    await other.strategy.authenticate(keep.credentials.access_token)


async def test_sessions_can_be_listed_and_ended_one_by_one(
    node: Node, manual_clock: ManualClock
) -> None:
    one = await node.auth.login("alice", PASSWORD, LoginContext(user_agent="phone"))
    manual_clock.advance(1)
    two = await node.auth.login("alice", PASSWORD, LoginContext(user_agent="laptop"))
    user_id = one.identity.user_id
    listed = await node.auth.list_sessions(user_id)
    assert [s.user_agent for s in listed] == ["phone", "laptop"]
    assert len(await node.auth.list_all_sessions()) == 2
    sid = one.identity.session_id or ""
    with pytest.raises(NotFound):
        await node.auth.revoke_session(sid, user_id="someone-else")
    await node.auth.revoke_session(sid, user_id=user_id)
    with pytest.raises(InvalidCredential):
        await node.strategy.authenticate(one.credentials.access_token)
    with pytest.raises(InvalidCredential):
        await node.auth.refresh(one.credentials.refresh_token or "")
    assert not await node.strategy.revoke_session("not a session id")
    # "Sign out everywhere else" keeps the caller's family.
    three = await node.auth.login("alice", PASSWORD)
    ended = await node.auth.revoke_other_sessions(three.identity)
    assert ended == [two.identity.session_id]
    with pytest.raises(InvalidCredential):
        await node.strategy.authenticate(two.credentials.access_token)
    await node.strategy.authenticate(three.credentials.access_token)
    await node.auth.refresh(three.credentials.refresh_token or "")


async def test_password_change_ends_every_older_family(
    node: Node, manual_clock: ManualClock
) -> None:
    old = await node.auth.login("alice", PASSWORD)
    manual_clock.advance(30)
    changed = await node.auth.change_password(old.identity, PASSWORD, "another fine passphrase")
    with pytest.raises(InvalidCredential):
        await node.strategy.authenticate(old.credentials.access_token)
    with pytest.raises(InvalidCredential):
        await node.auth.refresh(old.credentials.refresh_token or "")
    # The caller's new family works, and keeps working through a refresh.
    await node.strategy.authenticate(changed.credentials.access_token)
    manual_clock.advance(60)
    refreshed = await node.auth.refresh(changed.credentials.refresh_token or "")
    await node.strategy.authenticate(refreshed.credentials.access_token)
    assert [s.id for s in await node.auth.list_sessions(old.identity.user_id)] == [
        changed.identity.session_id
    ]


async def test_disabled_account_cannot_refresh(node: Node) -> None:
    result = await node.auth.login("alice", PASSWORD)
    await node.auth.set_disabled(result.identity.user_id, True)
    with pytest.raises(InvalidCredential):
        await node.strategy.authenticate(result.credentials.access_token)
    with pytest.raises(InvalidCredential):
        await node.auth.refresh(result.credentials.refresh_token or "")


async def test_store_down_at_refresh_is_503_and_leaves_the_token(
    node: Node, sessions: CountingSessions
) -> None:
    result = await node.auth.login("alice", PASSWORD)
    token = result.credentials.refresh_token or ""

    async def broken(*args: Any, **kw: Any) -> Any:
        raise ConnectionError("store down")

    sessions.get = broken  # type: ignore[method-assign]
    with pytest.raises(StoreUnavailable):
        await node.auth.refresh(token)
    del sessions.get
    assert (await node.auth.refresh(token)).credentials.refresh_token


# --- real stores --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
async def test_rotation_and_reuse_on_every_store(make_stores: MakeStores, kind: str) -> None:
    stores = await make_stores(kind)
    n = await make_node(stores, clock=system_clock, bus=LocalBus(), refresh_grace=0)
    await n.auth.users.create_user("alice", PASSWORD)
    issued = (await n.auth.login("alice", PASSWORD)).credentials
    token = issued.refresh_token or ""
    successor = (await n.auth.refresh(token)).credentials
    await n.strategy.authenticate(successor.access_token)
    await asyncio.sleep(0.01)  # past the (zero) grace window
    with pytest.raises(InvalidCredential, match="reuse"):
        await n.auth.refresh(token)
    with pytest.raises(InvalidCredential):
        await n.auth.refresh(successor.refresh_token or "")
    with pytest.raises(InvalidCredential):
        await n.strategy.authenticate(successor.access_token)
    assert await stores.sessions.get(issued.session_id or "") is None
