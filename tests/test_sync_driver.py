"""The synchronous driver: the strategies' pure fast path, one private loop per process, and
how it behaves with many threads, a hung or crashed loop, a fork and a store outage."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends import Backends
from procs import TcpProxy
from satchel.accounts.passwords import PasswordHasher
from satchel.clock import ManualClock
from satchel.config.settings import Settings
from satchel.errors import ConfigurationError, InvalidCredential, StoreUnavailable
from satchel.integrations.sync import LoopThread, SyncAuth
from satchel.revocation.base import NullBus

PASSWORD = "correct horse battery"
HASHER = PasswordHasher.insecure_fast_for_tests()


def bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


@pytest.fixture
def make_sync(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    backends = Backends(request, tmp_path)
    made: list[SyncAuth] = []

    def make(strategy: str = "session", store: str = "sqlite", **overrides: Any) -> SyncAuth:
        address = overrides.pop("store_address", None)
        fields = backends.fresh(store, address=address).settings()
        settings = Settings(**{**fields, "strategy": strategy, **overrides})
        sync = SyncAuth(settings, hasher=HASHER, clock=overrides.pop("clock", ManualClock()))
        made.append(sync)
        return sync

    yield make
    for sync in made:
        sync.close()
    asyncio.run(backends.drop())


def issue(sync: SyncAuth, username: str = "alice") -> str:
    try:
        sync.call(lambda a: a.users.create_user(username, PASSWORD))
    except Exception as exc:  # already there
        assert type(exc).__name__ == "UserExists"
    result = sync.call(lambda a: a.login(username, PASSWORD))
    token: str = result.credentials.access_token
    return token


# --- the strategies' fast path -----------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
def test_cached_answer_only_while_trusted_and_refused_once_revoked(
    make_sync: Any, strategy: str
) -> None:
    sync: SyncAuth = make_sync(strategy, "memory")
    token = issue(sync)
    strategy_obj = sync.auth.strategy
    first = sync.resolve(bearer(token)).identity  # full verification on the loop
    assert first is not None
    cached = strategy_obj.authenticate_cached(token)
    assert cached is not None and cached.user_id == first.user_id
    # The revocation reaches the maps the fast path reads: refused from memory, or left to
    # the full path (which refuses it), never accepted.
    sync.call(lambda a: a.logout(first))
    with contextlib.suppress(InvalidCredential):
        assert strategy_obj.authenticate_cached(token) is None
    assert sync.resolve(bearer(token)).identity is None
    assert strategy_obj.authenticate_cached("not a token at all") is None


@pytest.mark.parametrize("strategy", ["session", "jwt", "hybrid"])
def test_no_cached_answer_without_a_trusted_bus(make_sync: Any, strategy: str) -> None:
    sync: SyncAuth = make_sync(strategy, "memory", bus="none")
    token = issue(sync)
    assert isinstance(sync.auth.bus, NullBus)
    for _ in range(3):
        assert sync.resolve(bearer(token)).identity is not None
        assert sync.auth.strategy.authenticate_cached(token) is None


# --- threads ------------------------------------------------------------------------------------


def test_many_threads_share_one_loop(make_sync: Any) -> None:
    sync: SyncAuth = make_sync("session", "sqlite")
    tokens = [issue(sync, f"user{i}") for i in range(8)]
    errors: list[BaseException] = []
    seen: list[str] = []
    lock = threading.Lock()

    def worker(token: str) -> None:
        try:
            for _ in range(40):
                identity = sync.resolve(bearer(token)).identity
                assert identity is not None
                with lock:
                    seen.append(identity.username)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(t,)) for t in tokens * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert len(seen) == 16 * 40 and set(seen) == {f"user{i}" for i in range(8)}
    assert sync.runner.starts == 1  # one loop for every thread
    loops = [t for t in threading.enumerate() if t.name == "satchel-loop"]
    assert len(loops) == 1


def test_a_blocking_call_on_the_loop_itself_is_refused(make_sync: Any) -> None:
    sync: SyncAuth = make_sync("session", "memory")

    async def nested() -> None:
        sync.run(asyncio.sleep(0))

    with pytest.raises(ConfigurationError):
        sync.run(nested())


# --- a hung loop, a crashed loop ---------------------------------------------------------------


def test_a_hung_loop_stops_trusting_the_cache_then_answers_503(make_sync: Any) -> None:
    sync: SyncAuth = make_sync("session", "sqlite")
    token = issue(sync)
    assert sync.resolve(bearer(token)).identity is not None
    sync.runner.stale_after = 0.3
    time.sleep(0.15)  # a heartbeat with the new bound
    sync.call_timeout = 0.2
    loop = sync.runner.loop
    assert loop is not None
    loop.call_soon_threadsafe(time.sleep, 1.2)  # revocations could not be applied meanwhile
    time.sleep(0.6)
    with pytest.raises(StoreUnavailable):
        sync.resolve(bearer(token))
    time.sleep(1.0)
    assert sync.resolve(bearer(token)).identity is not None  # back once the loop answers
    assert sync.runner.starts == 1


def _crash() -> None:
    raise SystemExit("the loop thread ends")


def test_a_crashed_loop_fails_waiting_calls_and_is_restarted(make_sync: Any) -> None:
    sync: SyncAuth = make_sync("session", "sqlite")
    token = issue(sync)
    loop = sync.runner.loop
    assert loop is not None
    outcome: list[BaseException] = []

    def waiting() -> None:
        try:
            sync.run(asyncio.sleep(30), timeout=30)
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=waiting)
    waiter.start()
    time.sleep(0.2)
    started = time.monotonic()
    loop.call_soon_threadsafe(_crash)
    waiter.join(10)
    assert len(outcome) == 1 and isinstance(outcome[0], StoreUnavailable)
    assert time.monotonic() - started < 5  # at once, not after the call's time-out
    assert not sync.started
    # The next request starts a new loop and a new Auth over the same store.
    found = sync.resolve(bearer(token))
    assert found.identity is not None and found.identity.username == "alice"
    assert sync.runner.starts == 2


def test_loop_thread_validates_its_timing() -> None:
    with pytest.raises(ConfigurationError):
        LoopThread(beat_interval=1.0, stale_after=0.5)


# --- fork ---------------------------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_starts_its_own_loop(make_sync: Any) -> None:
    sync: SyncAuth = make_sync("session", "sqlite")
    token = issue(sync)
    assert sync.resolve(bearer(token)).identity is not None
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the parent's loop thread does not exist here
        try:
            before = sync.started
            found = sync.resolve(bearer(token))
            names = [t.name for t in threading.enumerate()]
            report = {
                "before": before,
                "user": found.identity.username if found.identity else None,
                "loops": names.count("satchel-loop"),
                "starts": sync.runner.starts,
            }
            sync.close()
            os.write(write, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        report = json.loads(pipe.read() or "{}")
    os.waitpid(pid, 0)
    assert report == {"before": False, "user": "alice", "loops": 1, "starts": 1}
    assert sync.resolve(bearer(token)).identity is not None  # the parent is unaffected


# --- a store outage -----------------------------------------------------------------------------


@pytest.mark.redis
def test_a_store_outage_is_503_never_a_logout(make_sync: Any, redis_url: str) -> None:
    host, port = redis_url.split("//", 1)[1].split("/", 1)[0].split(":")
    proxy = TcpProxy(host, int(port)).start()
    try:
        sync: SyncAuth = make_sync("session", "redis", store_address=("127.0.0.1", proxy.port))
        token = issue(sync)
        assert sync.resolve(bearer(token)).identity is not None
        proxy.cut()
        deadline = time.monotonic() + 5
        while sync.auth.bus is not None and sync.auth.bus.healthy and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(StoreUnavailable):
            sync.resolve(bearer(token))
        proxy.restore()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if sync.resolve(bearer(token)).identity is not None:
                    break
            except StoreUnavailable:
                time.sleep(0.1)
        else:
            pytest.fail("never recovered from the outage")
    finally:
        proxy.close()
