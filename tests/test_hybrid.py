"""HybridStrategy: token pair, rotation with reuse detection, zero-read verification fed by
the revocation bus, fallbacks, and its wiring into the ASGI middleware and the server API."""

from __future__ import annotations

import asyncio
import base64
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from apps import Apps
from procs import PrivateRedis
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
    StoreUnavailable,
)
from satchel.jose.claims import REFRESH_TOKEN_TYPE, ClaimsPolicy, build_claims, sign
from satchel.keys.manager import KeyManager
from satchel.revocation.base import LocalBus, NullBus, RevocationBus
from satchel.revocation.redis import RedisBus
from satchel.stores.base import Stores
from satchel.strategies.hybrid import HybridStrategy
from satchel.strategies.refresh_tokens import RefreshTokens
from satchel.strategies.session_policy import SessionPolicy
from satchel.transports.bearer import BearerTransport
from satchel.transports.cookie import CookieTransport
from satchel.transports.csrf import CSRFProtect

PASSWORD = "correct horse battery"
CLAIMS = ClaimsPolicy(issuer="https://auth.test", audience="api")
POLICY = SessionPolicy(idle_timeout=1800, absolute_timeout=3600, touch_interval=60)

MakeStores = Callable[..., Awaitable[Stores]]


@dataclass
class Node:
    """One server process's worth of objects (strategy + facade) over shared stores."""

    auth: Auth
    strategy: HybridStrategy
    events: list[AuditEvent] = field(default_factory=list)


async def make_node(
    stores: Stores,
    *,
    clock: Clock,
    bus: RevocationBus | None = None,
    **options: Any,
) -> Node:
    events: list[AuditEvent] = []

    async def hook(event: AuditEvent) -> None:
        events.append(event)

    audit = AuditLog(hook)
    strategy = HybridStrategy(
        stores.sessions,
        stores.users,
        KeyManager(stores.keys, clock),
        CLAIMS,
        policy=POLICY,
        clock=clock,
        bus=bus,
        audit=audit,
        **options,
    )
    users = UserService(stores.users, PasswordHasher.insecure_fast_for_tests(), clock)
    auth = Auth(
        strategy=strategy,
        transports=[CookieTransport(secure=False), BearerTransport()],
        csrf=CSRFProtect(secrets.token_bytes(32), secure=False),
        users=users,
        audit=audit,
        clock=clock,
    )
    if bus is not None:
        await bus.start()
    await auth.start()
    return Node(auth, strategy, events)


@pytest.fixture
async def node(make_stores: MakeStores, manual_clock: ManualClock) -> Node:
    stores = await make_stores("memory")
    n = await make_node(stores, clock=manual_clock, bus=LocalBus())
    await n.auth.users.create_user("alice", PASSWORD, roles=["admin"])
    return n


def _header(token: str) -> dict[str, Any]:
    part = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))))


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> float:
    start = time.monotonic()
    while not await predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


# --- tokens --------------------------------------------------------------------------------


async def test_login_returns_a_short_lived_access_token_and_a_refresh_token(node: Node) -> None:
    result = await node.auth.login("alice", PASSWORD)
    issued = result.credentials
    assert issued.refresh_token is not None
    assert issued.expires_in == 300
    assert issued.refresh_expires_in == 3600
    assert _header(issued.access_token)["typ"] == "at+jwt"
    identity = await node.strategy.authenticate(issued.access_token)
    assert identity.strategy == "hybrid"
    assert identity.username == "alice"
    assert identity.roles == {"admin"}
    assert identity.session_id == result.identity.session_id == issued.session_id
    assert {"sub", "sid", "jti", "iat", "exp", "iss", "aud", "auth_time"} <= set(identity.claims)
    # The session is a real server-side record, listed like any other.
    sessions = await node.auth.list_sessions(identity.user_id)
    assert [s.id for s in sessions] == [identity.session_id]
    # S07: only a hash of the refresh token is stored.
    record = await node.strategy.store.get(identity.session_id or "")
    assert record is not None
    assert record.refresh_hash == RefreshTokens.digest(issued.refresh_token)


async def test_R01_refresh_rotates_and_the_old_refresh_token_is_dead(
    node: Node, manual_clock: ManualClock
) -> None:
    first = (await node.auth.login("alice", PASSWORD)).credentials
    assert first.refresh_token is not None
    manual_clock.advance(60)
    second = (await node.auth.refresh(first.refresh_token)).credentials
    assert second.refresh_token not in (None, first.refresh_token)
    assert second.access_token != first.access_token
    assert second.refresh_expires_in == 3600 - 60
    assert (await node.strategy.authenticate(second.access_token)).session_id == first.session_id
    manual_clock.advance(11)  # past the grace window
    with pytest.raises(InvalidCredential, match="reuse"):
        await node.auth.refresh(first.refresh_token)
    # The whole family is gone: the newest access token at once, and the newest refresh.
    with pytest.raises(InvalidCredential):
        await node.strategy.authenticate(second.access_token)
    assert second.refresh_token is not None
    with pytest.raises(InvalidCredential):
        await node.auth.refresh(second.refresh_token)
    assert await node.auth.list_sessions((await node.auth.users.get_by_name("alice")).id) == []
    theft = [e for e in node.events if e.name == "theft"]
    assert len(theft) == 1 and theft[0].session == first.session_id
    assert first.refresh_token not in repr(theft[0].fields())


async def test_auth_time_is_the_login_through_every_refresh(
    node: Node, manual_clock: ManualClock
) -> None:
    login_at = manual_clock()
    result = await node.auth.login("alice", PASSWORD)
    assert result.identity.auth_time == login_at
    token = result.credentials.refresh_token
    for _ in range(3):
        manual_clock.advance(240.5)
        refreshed = await node.auth.refresh(token or "")
        token = refreshed.credentials.refresh_token
        assert refreshed.identity.auth_time == login_at
        seen = await node.strategy.authenticate(refreshed.credentials.access_token)
        assert seen.auth_time == login_at
        assert seen.claims["auth_time"] == login_at
        assert seen.claims["iat"] == int(manual_clock())  # the token itself is new


async def test_R01_grace_window_hands_out_the_same_successor(
    node: Node, manual_clock: ManualClock
) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    assert issued.refresh_token is not None
    a = (await node.auth.refresh(issued.refresh_token)).credentials
    manual_clock.advance(9)
    b = (await node.auth.refresh(issued.refresh_token)).credentials
    assert a.refresh_token == b.refresh_token
    assert a.access_token != b.access_token
    await node.strategy.authenticate(b.access_token)
    # The successor keeps rotating normally afterwards.
    assert a.refresh_token is not None
    c = (await node.auth.refresh(a.refresh_token)).credentials
    assert c.refresh_token not in (a.refresh_token, issued.refresh_token)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "redis", "postgres"])
async def test_F09_twenty_concurrent_refreshes_get_exactly_one_successor(
    make_stores: MakeStores, kind: str
) -> None:
    stores = await make_stores(kind)
    n = await make_node(stores, clock=system_clock)
    await n.auth.users.create_user("alice", PASSWORD)
    issued = (await n.auth.login("alice", PASSWORD)).credentials
    assert issued.refresh_token is not None
    token = issued.refresh_token
    results = await asyncio.gather(
        *(n.auth.refresh(token) for _ in range(20)), return_exceptions=True
    )
    errors = [r for r in results if isinstance(r, BaseException)]
    assert errors == []
    successors = {r.credentials.refresh_token for r in results if not isinstance(r, BaseException)}
    assert len(successors) == 1
    (successor,) = successors
    assert successor is not None
    record = await stores.sessions.get(issued.session_id or "")
    assert record is not None
    assert record.generation == 1
    assert record.refresh_hash == RefreshTokens.digest(successor)
    # Only that successor rotates on; the family is intact.
    nxt = (await n.auth.refresh(successor)).credentials
    await n.strategy.authenticate(nxt.access_token)


async def test_J14_refresh_and_access_tokens_are_not_interchangeable(node: Node) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    assert issued.refresh_token is not None
    with pytest.raises(InvalidToken, match="refresh token is not an access token"):
        await node.strategy.authenticate(issued.refresh_token)
    with pytest.raises(InvalidCredential, match="Malformed refresh token"):
        await node.auth.refresh(issued.access_token)
    # A correctly signed token of another type is refused too.
    claims = build_claims(CLAIMS, sub="x", now=node.strategy.clock(), ttl=60, sid="A" * 22)
    other = sign(
        node.strategy.keyset,
        ClaimsPolicy("https://auth.test", "api", token_type=REFRESH_TOKEN_TYPE),
        claims,
    )
    with pytest.raises(InvalidToken, match="Wrong token type"):
        await node.strategy.authenticate(other)
    # An access token without a session (the stateless strategy's kind) is refused.
    stateless = sign(node.strategy.keyset, CLAIMS, claims)
    with pytest.raises(InvalidToken):
        await node.strategy.authenticate(stateless)
    # The session is untouched by all that.
    await node.strategy.authenticate(issued.access_token)


async def test_forged_refresh_token_for_a_known_session_does_not_end_it(node: Node) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    sid = issued.session_id
    assert sid is not None and issued.refresh_token is not None
    forged = RefreshTokens(b"k" * 32).first(sid)  # right shape, wrong pepper
    with pytest.raises(InvalidCredential):
        await node.auth.refresh(forged)
    bumped = issued.refresh_token.replace(".0.", ".1.", 1)
    with pytest.raises(InvalidCredential):
        await node.auth.refresh(bumped)
    await node.strategy.authenticate(issued.access_token)
    assert not [e for e in node.events if e.name == "theft"]
    assert (await node.auth.refresh(issued.refresh_token)).credentials.refresh_token


async def test_S05_absolute_expiry_of_the_family_ends_refresh(
    node: Node, manual_clock: ManualClock
) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    token = issued.refresh_token
    assert token is not None
    for _ in range(14):  # keep the session active: every 4 minutes, 56 minutes in all
        manual_clock.advance(240)
        issued = (await node.auth.refresh(token)).credentials
        assert issued.refresh_token is not None
        token = issued.refresh_token
    assert issued.refresh_expires_in == 3600 - 14 * 240
    manual_clock.advance(230)  # 10 s before the absolute expiry
    last = (await node.auth.refresh(token)).credentials
    assert last.expires_in <= 10  # the access token never outlives the family
    assert last.refresh_expires_in == 10
    await node.strategy.authenticate(last.access_token)
    manual_clock.advance(10)
    assert last.refresh_token is not None
    with pytest.raises(InvalidCredential):
        await node.auth.refresh(last.refresh_token)


async def test_access_token_expires_and_refresh_never_extends_past_idle(
    node: Node, manual_clock: ManualClock
) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    manual_clock.advance(300 + CLAIMS.leeway + 1)
    with pytest.raises(ExpiredCredential):
        await node.strategy.authenticate(issued.access_token)
    manual_clock.advance(1800)  # idle time-out passed without a refresh
    assert issued.refresh_token is not None
    with pytest.raises(InvalidCredential):
        await node.auth.refresh(issued.refresh_token)


async def test_logout_and_revoke_all_are_enforced_in_memory(
    node: Node, manual_clock: ManualClock
) -> None:
    one = await node.auth.login("alice", PASSWORD)
    two = await node.auth.login("alice", PASSWORD)
    await node.auth.logout(one.identity)
    with pytest.raises(InvalidCredential):
        await node.strategy.authenticate(one.credentials.access_token)
    await node.strategy.authenticate(two.credentials.access_token)
    manual_clock.advance(1)
    await node.auth.revoke_user_sessions(two.identity.user_id)
    node.strategy.counters.reset()
    with pytest.raises(InvalidCredential):
        await node.strategy.authenticate(two.credentials.access_token)
    assert node.strategy.counters.store_reads == 0
    # A login after the revocation works.
    manual_clock.advance(1)
    fresh = await node.auth.login("alice", PASSWORD)
    await node.strategy.authenticate(fresh.credentials.access_token)


async def test_disabling_the_account_blocks_tokens_issued_the_same_instant(node: Node) -> None:
    result = await node.auth.login("alice", PASSWORD)
    user = await node.auth.users.set_disabled(result.identity.user_id, True)
    await node.strategy.user_changed(user)
    with pytest.raises(InvalidCredential):
        await node.strategy.authenticate(result.credentials.access_token)


# --- zero store reads, fallbacks ---------------------------------------------------------


async def test_repeated_tokens_cost_no_store_reads_with_a_trusted_bus(node: Node) -> None:
    issued = (await node.auth.login("alice", PASSWORD)).credentials
    node.strategy.counters.reset()
    for _ in range(100):
        await node.strategy.authenticate(issued.access_token)
    assert node.strategy.counters.store_reads == 0
    assert node.strategy.counters.cache_hits == 100


async def test_without_a_covering_bus_every_request_reads_the_store(
    make_stores: MakeStores, manual_clock: ManualClock
) -> None:
    stores = await make_stores("memory")
    n = await make_node(stores, clock=manual_clock, bus=NullBus())
    await n.auth.users.create_user("alice", PASSWORD)
    result = await n.auth.login("alice", PASSWORD)
    n.strategy.counters.reset()
    for _ in range(3):
        await n.strategy.authenticate(result.credentials.access_token)
    assert n.strategy.counters.store_reads == 6  # session + user, each time
    # Another process (here: a second strategy on the same store) ends the session.
    other = await make_node(stores, clock=manual_clock, bus=NullBus())
    await other.strategy.revoke_session(result.identity.session_id or "")
    with pytest.raises(InvalidCredential):
        await n.strategy.authenticate(result.credentials.access_token)
    with pytest.raises(ConfigurationError):
        await make_node(stores, clock=manual_clock, bus=NullBus(), on_bus_down="reject")


@pytest.fixture
def private_redis() -> PrivateRedis:
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed")
    server = PrivateRedis()
    server.start()
    yield server  # type: ignore[misc]
    server.stop()


async def _cluster(
    stores: Stores, redis: str, prefix: str, count: int, **options: Any
) -> list[Node]:
    nodes = []
    for _ in range(count):
        bus = RedisBus(redis, prefix=prefix, ping_interval=0.2, ping_timeout=0.2)
        nodes.append(await make_node(stores, clock=system_clock, bus=bus, **options))
    return nodes


async def _close(nodes: list[Node]) -> None:
    for n in nodes:
        await n.strategy.close()
        bus = n.strategy.bus
        assert bus is not None
        await bus.close()


async def test_R02_revoke_on_A_is_refused_on_B_and_C_without_store_reads(
    make_stores: MakeStores, redis_url: str, run_id: str
) -> None:
    stores = await make_stores("redis")
    a, b, c = await _cluster(stores, redis_url, f"hyb-{run_id}-r02", 3)
    try:
        await a.auth.users.create_user("alice", PASSWORD)
        result = await a.auth.login("alice", PASSWORD)
        token = result.credentials.access_token
        for n in (b, c):
            await n.strategy.authenticate(token)  # may read through once (minted at start-up)
            n.strategy.counters.reset()
            for _ in range(50):
                await n.strategy.authenticate(token)
            assert n.strategy.counters.store_reads == 0
        await a.auth.revoke_session(result.identity.session_id or "")

        async def refused(n: Node) -> bool:
            try:
                await n.strategy.authenticate(token)
            except InvalidCredential:
                return True
            return False

        for n in (b, c):
            await until(lambda n=n: refused(n), timeout=2.0)  # type: ignore[misc]
            assert n.strategy.counters.store_reads == 0
            assert n.strategy.counters.revocations_received >= 1
    finally:
        await _close([a, b, c])


async def test_F04_channel_down_falls_back_to_the_store_and_back_rebuilds(
    make_stores: MakeStores, private_redis: PrivateRedis
) -> None:
    stores = await make_stores("memory")  # one store object shared by both "processes"
    a, b = await _cluster(stores, private_redis.url, "f04", 2)
    try:
        await a.auth.users.create_user("alice", PASSWORD)
        doomed = await a.auth.login("alice", PASSWORD)
        kept = await a.auth.login("alice", PASSWORD)
        for r in (doomed, kept):
            await b.strategy.authenticate(r.credentials.access_token)
        b.strategy.counters.reset()
        await b.strategy.authenticate(kept.credentials.access_token)
        assert b.strategy.counters.store_reads == 0

        private_redis.stop()

        async def down() -> bool:
            assert a.strategy.bus is not None and b.strategy.bus is not None
            return not a.strategy.bus.healthy and not b.strategy.bus.healthy

        await until(down)
        # The revocation cannot be broadcast; the store write happened, the call says so.
        with pytest.raises(StoreUnavailable):
            await a.auth.revoke_session(doomed.identity.session_id or "")
        with pytest.raises(InvalidCredential):
            await b.strategy.authenticate(doomed.credentials.access_token)
        await b.strategy.authenticate(kept.credentials.access_token)
        assert b.strategy.counters.store_reads == 3  # ended session: 1 read; live one: 2
        assert b.strategy.counters.cache_hits == 1

        private_redis.start()

        async def up() -> bool:
            assert b.strategy.bus is not None
            return b.strategy.bus.healthy

        await until(up, timeout=10)
        assert b.strategy.counters.cache_flushes >= 1
        b.strategy.counters.reset()
        # Rebuilt: an older token is read through once, then served from memory again.
        await b.strategy.authenticate(kept.credentials.access_token)
        await b.strategy.authenticate(kept.credentials.access_token)
        assert b.strategy.counters.store_reads == 2
        assert b.strategy.counters.cache_hits == 1
        with pytest.raises(InvalidCredential):
            await b.strategy.authenticate(doomed.credentials.access_token)
        # New tokens need no store read at all.
        await asyncio.sleep(1.05)  # iat has whole-second resolution
        fresh = await a.auth.login("alice", PASSWORD)
        b.strategy.counters.reset()
        await b.strategy.authenticate(fresh.credentials.access_token)
        assert b.strategy.counters.store_reads == 0
    finally:
        await _close([a, b])


async def test_F04_reject_mode_answers_503_while_the_channel_is_down(
    make_stores: MakeStores, private_redis: PrivateRedis
) -> None:
    stores = await make_stores("memory")
    (a,) = await _cluster(stores, private_redis.url, "f04r", 1, on_bus_down="reject")
    try:
        await a.auth.users.create_user("alice", PASSWORD)
        result = await a.auth.login("alice", PASSWORD)
        await a.strategy.authenticate(result.credentials.access_token)
        private_redis.stop()

        async def down() -> bool:
            assert a.strategy.bus is not None
            return not a.strategy.bus.healthy

        await until(down)
        with pytest.raises(StoreUnavailable):
            await a.strategy.authenticate(result.credentials.access_token)
    finally:
        await _close([a])


# --- transports: middleware refresh and the server API -----------------------------------


@pytest.fixture
async def app_client(
    make_app: Apps, make_stores: MakeStores, manual_clock: ManualClock
) -> tuple[httpx.AsyncClient, Node]:
    stores = await make_stores("memory")
    n = await make_node(stores, clock=manual_clock, bus=LocalBus())
    await n.auth.users.create_user("alice", PASSWORD)
    # make_node started the Auth already.
    app = await make_app(auth=n.auth, lifespan=False, base_url="http://testserver")
    return app.client, n


async def test_bearer_token_response_and_refresh_endpoint(
    app_client: tuple[httpx.AsyncClient, Node], manual_clock: ManualClock
) -> None:
    client, _ = app_client
    r = await client.post(
        "/auth/token", data={"grant_type": "password", "username": "alice", "password": PASSWORD}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300
    assert {"access_token", "refresh_token", "refresh_expires_in"} <= set(body)
    manual_clock.advance(60)
    r2 = await client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert r2.status_code == 200, r2.text
    new = r2.json()
    assert new["refresh_token"] != body["refresh_token"]
    assert r2.headers["cache-control"] == "no-store"
    me = await client.get("/auth/me", headers={"Authorization": f"Bearer {new['access_token']}"})
    assert me.status_code == 200 and me.json()["strategy"] == "hybrid"
    r3 = await client.post("/auth/refresh", data={"refresh_token": new["refresh_token"]})
    assert r3.status_code == 200
    manual_clock.advance(30)
    replay = await client.post("/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_token"
    assert body["refresh_token"] not in replay.text
    gone = await client.get(
        "/auth/me", headers={"Authorization": f"Bearer {r3.json()['access_token']}"}
    )
    assert gone.status_code == 401
    bad = await client.post("/auth/refresh", json={"refresh_token": new["access_token"]})
    assert bad.status_code == 401
    missing = await client.post("/auth/refresh", json={})
    assert missing.status_code in (400, 401)


async def test_cookie_mode_refreshes_transparently_in_the_middleware(
    app_client: tuple[httpx.AsyncClient, Node], manual_clock: ManualClock
) -> None:
    client, n = app_client
    cookie = n.auth.transport("cookie")
    assert isinstance(cookie, CookieTransport)
    r = await client.post(
        "/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"Origin": "http://testserver"},
    )
    assert r.status_code == 200, r.text
    set_cookies = r.headers.get_list("set-cookie")
    refresh_cookie = next(c for c in set_cookies if c.startswith(cookie.refresh_name))
    assert "Path=/auth/refresh" in refresh_cookie and "HttpOnly" in refresh_cookie
    access = client.cookies.get(cookie.cookie_name)
    refresh = next(c.value for c in client.cookies.jar if c.name == cookie.refresh_name)
    assert access and refresh
    manual_clock.advance(400)  # the access token has expired
    # A request that carries the refresh cookie (the browser sends it under its path, or
    # everywhere when refresh_path="/") is refreshed in place.
    headers = {"Cookie": f"{cookie.cookie_name}={access}; {cookie.refresh_name}={refresh}"}
    fresh = httpx.AsyncClient(transport=client._transport, base_url="http://testserver")
    async with fresh:
        me = await fresh.get("/auth/me", headers=headers)
        assert me.status_code == 200, me.text
        assert me.json()["username"] == "alice"
        names = [c.split("=", 1)[0] for c in me.headers.get_list("set-cookie")]
        assert names == [cookie.cookie_name, cookie.refresh_name]
        assert me.headers["cache-control"] == "no-store"
        # The old pair is retired; replaying it later ends the family.
        manual_clock.advance(30)
        replay = await fresh.get("/auth/me", headers=headers)
        assert replay.status_code == 401
