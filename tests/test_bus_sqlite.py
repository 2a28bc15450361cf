"""SQLiteBus: revocations through a polled table in the shared SQLite file.

In-process tests open two independent nodes (store + bus + strategy, as build_auth wires
them) over one file, like two server processes; the slow tests run real ``satchel serve``
processes and the CLI on one file. Faults are real where they can be (a closed connection,
a missing file, a blocked event loop); a poll that keeps failing is simulated by pointing
the poll query at a table that does not exist.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import pytest

import helpers
import satchel.revocation.sqlite as sqlite_bus
from apps import Apps
from helpers import Recorder, started
from procs import SatchelServer, satchel_cli, start_servers
from satchel.clock import ManualClock, system_clock
from satchel.config.build import ConfiguredAuth
from satchel.config.settings import Settings
from satchel.errors import ConfigurationError, SatchelError, StoreUnavailable
from satchel.identity import Identity
from satchel.revocation import bus_kind_for, make_bus
from satchel.revocation.base import LocalBus, NullBus, RevocationEvent, RevocationKind
from satchel.revocation.sqlite import SQLiteBus
from satchel.stores.base import UserRecord
from satchel.stores.sqlite import SQLiteStore
from satchel.strategies.base import LoginContext

POLL = 0.05
PASSWORD = "correct horse battery staple 1"
STRATEGIES = ["session", "jwt", "hybrid"]


async def until(predicate: Callable[[], bool], timeout: float = 2.0) -> float:
    """:func:`helpers.until` on the SQLite bus's shorter time scale."""
    return await helpers.until(predicate, timeout, step=0.002)


async def refused_within(check: Callable[[], Awaitable[object]], timeout: float = 2.0) -> float:
    """Call ``check`` until it raises a SatchelError; return how long that took."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        try:
            await check()
        except SatchelError:
            return time.monotonic() - start
        await asyncio.sleep(0.002)
    raise AssertionError(f"still accepted after {timeout} s")


class Node:
    """One "process": its own store connections, bus and strategy over the shared file."""

    def __init__(self, auth: ConfiguredAuth) -> None:
        self.auth = auth
        self.strategy = auth.strategy
        bus = auth.bus
        assert isinstance(bus, SQLiteBus)
        self.bus = bus

    @property
    def reads(self) -> int:
        return self.strategy.counters.store_reads

    async def login(self, user: UserRecord) -> tuple[Identity, str]:
        identity, issued = await self.strategy.issue(user, LoginContext(ip="203.0.113.5"))
        return identity, issued.access_token

    async def check(self, token: str) -> Identity:
        return await self.strategy.authenticate(token)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "shared.db"


@pytest.fixture
def make_node(make_app: Apps, db_path: Path) -> Callable[..., Awaitable[Node]]:
    async def make(strategy: str = "session", **settings: object) -> Node:
        auth = await make_app.auth(
            f"sqlite:///{db_path}",
            clock=system_clock,
            strategy=strategy,
            transports=["bearer"],
            bus_poll_interval=POLL,
            cache_ttl=60,
            **settings,
        )
        return Node(auth)

    return make


async def add_user(node: Node, name: str = "alice") -> UserRecord:
    return await node.auth.users.create_user(name, PASSWORD, ["user"])


# --- delivery between nodes ------------------------------------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
async def test_R02_logout_on_A_is_refused_on_B_within_a_poll(
    make_node: Callable[..., Awaitable[Node]], strategy: str
) -> None:
    a, b = await make_node(strategy), await make_node(strategy)
    assert a.bus.healthy and b.bus.healthy
    user = await add_user(a)
    identity, token = await a.login(user)
    for _ in range(2):  # the second answer comes from B's cache
        await b.check(token)
    assert b.strategy.counters.cache_hits >= 1

    await a.strategy.logout(identity)
    with pytest.raises(SatchelError):
        await a.check(token)  # the revoking process: at once
    delay = await refused_within(lambda: b.check(token))
    assert b.bus.counters.received >= 1
    assert a.bus.counters.received == 0  # its own row is an echo, applied at publish time
    print(f"\n{strategy}: revocation reached the other node after {delay * 1000:.1f} ms")


async def test_user_disabled_on_A_refuses_every_token_on_B(
    make_node: Callable[..., Awaitable[Node]],
) -> None:
    a, b = await make_node("jwt"), await make_node("jwt")
    user = await add_user(a)
    _, first = await a.login(user)
    _, second = await b.login(user)
    for token in (first, second, first, second):
        await b.check(token)
    await a.auth.set_disabled(user.id, True)
    await refused_within(lambda: b.check(first))
    with pytest.raises(SatchelError):
        await b.check(second)


@pytest.mark.parametrize("strategy", ["session", "jwt"])
async def test_steady_state_costs_no_store_reads_and_revocation_still_wins(
    make_node: Callable[..., Awaitable[Node]], strategy: str
) -> None:
    a, b = await make_node(strategy), await make_node(strategy)
    user = await add_user(a)
    identity, token = await a.login(user)
    await b.check(token)  # warm-up: the one store read
    before, hits = b.reads, b.strategy.counters.cache_hits
    for i in range(1000):
        await b.check(token)
        if i % 100 == 0:
            await asyncio.sleep(0)  # let the poll task run, as between real requests
    assert b.reads - before == 0
    assert b.strategy.counters.cache_hits - hits == 1000
    assert b.bus.healthy

    received = b.bus.counters.received
    await a.strategy.logout(identity)
    await until(lambda: b.bus.counters.received > received)
    # The very next request after the event arrived is refused.
    with pytest.raises(SatchelError):
        await b.check(token)


# --- health ------------------------------------------------------------------------------------


async def test_F04_failing_poll_turns_unhealthy_reads_the_store_then_flushes(
    make_node: Callable[..., Awaitable[Node]], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = await make_node(), await make_node()
    user = await add_user(a)
    identity, token = await a.login(user)
    _, other = await a.login(user)
    for _ in range(2):
        await b.check(token)
        await b.check(other)
    flushes = b.strategy.counters.cache_flushes

    monkeypatch.setattr(sqlite_bus, "_POLL", "SELECT seq, event FROM no_such_table WHERE seq > ?")
    await until(lambda: not b.bus.healthy)
    assert b.bus.counters.disconnects >= 1
    reads = b.reads
    for _ in range(3):
        await b.check(other)
    assert b.reads - reads == 6  # session + user, per request
    # Published while B cannot hear it: the store is authoritative, so B refuses anyway.
    await a.strategy.logout(identity)
    with pytest.raises(SatchelError):
        await b.check(token)

    resets = b.bus.counters.resets
    monkeypatch.undo()
    await until(lambda: b.bus.healthy, timeout=5)
    assert b.bus.counters.resets > resets
    assert b.strategy.counters.cache_flushes > flushes
    reads = b.reads
    await b.check(other)
    assert b.reads > reads  # re-read after the flush, then cached again
    reads = b.reads
    await b.check(other)
    assert b.reads == reads


async def test_F04_closed_connection_reconnects_and_flushes(
    make_node: Callable[..., Awaitable[Node]],
) -> None:
    a = await make_node()
    user = await add_user(a)
    _, token = await a.login(user)
    await a.check(token)
    await a.check(token)
    conn = a.bus._conn
    assert conn is not None
    connects, resets = a.bus.counters.connects, a.bus.counters.resets
    conn.close()  # the next poll fails
    await until(lambda: a.bus.counters.connects > connects and a.bus.healthy, timeout=5)
    assert a.bus.counters.disconnects >= 1
    assert a.bus.counters.resets > resets
    assert a.strategy.counters.cache_flushes >= 1


async def test_stalled_loop_stops_trusting_within_three_polls_and_flushes(
    make_node: Callable[..., Awaitable[Node]],
) -> None:
    a = await make_node()
    user = await add_user(a)
    _, token = await a.login(user)
    await a.check(token)
    await a.check(token)
    assert a.bus.worst_case_staleness == pytest.approx(3 * POLL)
    resets, reads = a.bus.counters.resets, a.reads
    time.sleep(a.bus.worst_case_staleness + POLL)  # blocks the event loop on purpose
    assert not a.bus.healthy
    await a.check(token)  # the poll could not run yet: the cache is not trusted
    assert a.reads == reads + 2
    await until(lambda: a.bus.healthy)
    assert a.bus.counters.resets > resets
    assert a.bus.counters.disconnects >= 1


async def test_short_stalls_flush_quietly_and_long_ones_warn_once_a_minute(
    make_node: Callable[..., Awaitable[Node]], caplog: pytest.LogCaptureFixture
) -> None:
    """An event-loop hiccup (start-up, a CPU burst) still flushes caches, but only a stall
    an operator should hear about is a warning, and not more than once a minute."""
    a = await make_node()
    caplog.set_level("DEBUG", logger="satchel.revocation")

    def stall_messages(level: str) -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.levelname == level and "blocked" in r.message
        ]

    resets = a.bus.counters.resets
    time.sleep(a.bus.worst_case_staleness + POLL)  # ~0.25 s: a hiccup
    await until(lambda: a.bus.counters.resets > resets)
    assert stall_messages("WARNING") == []
    assert len(stall_messages("DEBUG")) == 1
    for _ in range(2):
        resets = a.bus.counters.resets
        time.sleep(sqlite_bus.STALL_WARNING_SECONDS + POLL)  # a real stall
        await until(lambda before=resets: a.bus.counters.resets > before)
    warnings = stall_messages("WARNING")
    assert len(warnings) == 1 and "caches flushed" in warnings[0]
    assert len(stall_messages("DEBUG")) == 2


# --- the bus on its own ------------------------------------------------------------------------


@pytest.fixture
async def store(db_path: Path) -> AsyncIterator[SQLiteStore]:
    opened = SQLiteStore.open(str(db_path))
    yield opened
    await opened.close()


def rows(path: Path) -> list[tuple[int, str, float]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT seq, event, until FROM revocations ORDER BY seq"))


def session_event(subject: str, until: float = 2_000_000_000.0) -> RevocationEvent:
    return RevocationEvent(RevocationKind.SESSION, subject, until=until)


async def test_events_before_start_are_skipped_and_own_rows_not_echoed(
    store: SQLiteStore, db_path: Path
) -> None:
    early = SQLiteBus(str(db_path), poll_interval=POLL)
    await early.publish(session_event("before"))  # works without start (the CLI path)
    a, b = SQLiteBus(str(db_path), poll_interval=POLL), SQLiteBus(str(db_path), poll_interval=POLL)
    seen_a, seen_b = Recorder(), Recorder()
    a.subscribe(seen_a, seen_a.reset)
    b.subscribe(seen_b, seen_b.reset)
    try:
        async with started(a, b):
            assert seen_b.resets == 0 and b.counters.connects == 1  # first start: no flush
            await a.publish(session_event("s1"))
            assert [e.subject for e in seen_a.events] == ["s1"]  # applied before returning
            await until(lambda: len(seen_b.events) == 1)
            await asyncio.sleep(5 * POLL)
            assert [e.subject for e in seen_b.events] == ["s1"]  # "before" never delivered
            assert [e.subject for e in seen_a.events] == ["s1"]  # no echo
            assert (a.counters.published, b.counters.received) == (1, 1)
            assert [r[2] for r in rows(db_path)] == [2_000_000_000.0, 2_000_000_000.0]
    finally:
        await early.close()


async def test_malformed_rows_are_counted_and_skipped(store: SQLiteStore, db_path: Path) -> None:
    bus = SQLiteBus(str(db_path), poll_interval=POLL)
    seen = Recorder()
    bus.subscribe(seen)
    await bus.start()
    try:
        with sqlite3.connect(db_path) as conn:
            for junk in ("no separator", "x|{not json", "x|" + "a" * 5000):
                conn.execute("INSERT INTO revocations (event, until) VALUES (?, 0)", (junk,))
        other = SQLiteBus(str(db_path))
        await other.publish(session_event("good"))
        await other.close()
        await until(lambda: len(seen.events) == 1)
        assert bus.counters.malformed == 3
        assert bus.healthy
    finally:
        await bus.close()


async def test_missing_file_is_unhealthy_and_never_created(tmp_path: Path) -> None:
    path = tmp_path / "gone.db"
    bus = SQLiteBus(str(path), poll_interval=POLL, publish_timeout=0.2)
    await bus.start()
    try:
        assert not bus.healthy
        with pytest.raises(StoreUnavailable):
            await bus.publish(session_event("s"))
        assert bus.counters.publish_failures == 1
        assert not path.exists()
    finally:
        await bus.close()


async def test_prune_drops_only_expired_rows_after_a_prune_period(
    store: SQLiteStore, db_path: Path
) -> None:
    clock = ManualClock()
    now = clock()
    bus = SQLiteBus(str(db_path), poll_interval=POLL, prune_every=3, clock=clock)
    await bus.start()
    try:
        publisher = SQLiteBus(str(db_path), clock=clock)
        await publisher.publish(session_event("old", until=now - 1))
        await publisher.publish(session_event("live", until=now + 3600))
        await until(lambda: bus.counters.received == 2)
        # Expired, but kept until it has been in the table for a whole prune period.
        await until(lambda: bus.pruned == 1)
        remaining = [event for _, event, _ in rows(db_path)]
        assert len(remaining) == 1 and '"live"' in remaining[0]
        clock.advance(7200)
        await until(lambda: bus.pruned == 2)
        assert rows(db_path) == []
        await publisher.publish(session_event("after", until=clock() + 60))
        await until(lambda: bus.counters.received == 3)  # seq keeps growing after pruning
        await publisher.close()
    finally:
        await bus.close()


def test_bad_settings_are_configuration_errors(tmp_path: Path) -> None:
    path = str(tmp_path / "x.db")
    for bad in ({"poll_interval": 0}, {"poll_interval": float("nan")}, {"prune_every": 0}):
        with pytest.raises(ConfigurationError):
            SQLiteBus(path, **bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError):
        SQLiteBus(":memory:")
    with pytest.raises(ConfigurationError):
        Settings(bus_poll_interval=0)


def test_make_bus_picks_the_sqlite_bus_for_sqlite_stores(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    bus = make_bus("auto", store=url, poll_interval=0.1)
    assert isinstance(bus, SQLiteBus) and bus.covers_all_processes
    assert bus.path == str(tmp_path / "x.db")
    assert bus.worst_case_staleness == pytest.approx(0.3)
    assert not bus.healthy  # built, not started
    assert isinstance(make_bus("auto", store="sqlite:///:memory:"), LocalBus)
    assert isinstance(make_bus("none", store=url), NullBus)
    assert isinstance(make_bus("sqlite", store="memory://", sessions_store=url), SQLiteBus)
    with pytest.raises(ConfigurationError):
        make_bus("sqlite", store="memory://")
    assert bus_kind_for(url) == "sqlite"
    assert bus_kind_for(url, None, "redis://h/0") == "redis"
    assert bus_kind_for(url, "postgresql://h/db") == "postgres"
    assert bus_kind_for("memory://", url) == "sqlite"


# --- real processes ------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[dict[str, str], list[SatchelServer]]]:
    env = {
        "SATCHEL_STORE": f"sqlite:///{tmp_path / 'served.db'}",
        "SATCHEL_TRANSPORTS": "bearer",
        "SATCHEL_EXPOSE_COUNTERS": "true",
        "SATCHEL_CACHE_TTL": "60",
    }
    for name in ("alice", "bob"):
        done = satchel_cli(["users", "add", name, "--password-stdin"], env, PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
    servers = start_servers([env, env], ["A", "B"])
    try:
        yield env, servers
    finally:
        for server in servers:
            server.stop()


def http_login(server: SatchelServer, user: str = "alice") -> str:
    response = httpx.post(
        f"{server.url}/auth/token",
        data={"grant_type": "password", "username": user, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def me(server: SatchelServer, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def counters(server: SatchelServer) -> dict[str, dict[str, object]]:
    response = httpx.get(f"{server.url}/debug/counters", timeout=10)
    assert response.status_code == 200
    data: dict[str, dict[str, object]] = response.json()
    return data


def refused_by(server: SatchelServer, token: str, seconds: float = 2.0) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        status = me(server, token).status_code
        assert status in (200, 401), status
        if status == 401:
            return time.monotonic() - start
        time.sleep(0.005)
    return None


@pytest.mark.slow
def test_two_servers_on_one_file_share_revocations(
    served: tuple[dict[str, str], list[SatchelServer]],
) -> None:
    _, (a, b) = served
    for server in (a, b):
        bus = counters(server)["bus"]
        assert bus["kind"] == "SQLiteBus" and bus["healthy"] is True
    token = http_login(a)
    with httpx.Client(base_url=b.url, headers={"Authorization": f"Bearer {token}"}) as client:
        for _ in range(3):
            assert client.get("/auth/me").status_code == 200
        start = counters(b)["strategy"]
        for _ in range(1000):
            assert client.get("/auth/me").status_code == 200
        end = counters(b)["strategy"]
    assert end["store_reads"] == start["store_reads"]
    assert int(str(end["cache_hits"])) - int(str(start["cache_hits"])) == 1000

    response = httpx.post(f"{a.url}/auth/logout", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204
    delay = refused_by(b, token)
    assert delay is not None
    print(f"\nlogout on A refused on B after {delay * 1000:.1f} ms")


@pytest.mark.slow
def test_cli_revocations_reach_a_running_server(
    served: tuple[dict[str, str], list[SatchelServer]],
) -> None:
    env, (a, _) = served
    token, spare = http_login(a, "alice"), http_login(a, "alice")
    bobs = http_login(a, "bob")
    for _ in range(2):
        for t in (token, spare, bobs):
            assert me(a, t).status_code == 200
    sid = me(a, token).json()["session_id"]

    done = satchel_cli(["sessions", "revoke", sid], env)
    assert done.returncode == 0, done.stderr
    assert refused_by(a, token) is not None
    assert me(a, spare).status_code == 200  # only that session ended

    done = satchel_cli(["users", "disable", "bob"], env)
    assert done.returncode == 0, done.stderr
    assert refused_by(a, bobs) is not None
    assert me(a, spare).status_code == 200
