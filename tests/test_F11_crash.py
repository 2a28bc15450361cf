"""F11: a process SIGKILLed in the middle of store writes leaves the old or the new state.

``tests/f11_crash_child.py`` loops over the writes that decide who holds a credential
(create under a one-session limit, refresh-token compare-and-set, revoke-all-but-one, a
``valid_after`` bump) and is killed at random moments, several times in a row; each new
run resumes from what the store holds. The child logs every hash it is about to write
before writing it, so afterwards the test knows each candidate and checks, on a freshly
opened store (a restart; for the shared Redis, which keeps nothing on disk, a new
connection), that:

- every user has at most one live session, and only sessions the child created exist;
- every session and user reads back whole (no record is dropped as corrupt);
- each session's refresh state is that of its last rotation either committed or not:
  current hash, previous hash and generation agree with the logged chain, and of all the
  hashes ever issued for it exactly one, the current one, can still rotate;
- sessions that were evicted or revoked cannot rotate any of their hashes;
- each user's ``valid_after`` is the last value written or the one before it;
- a SQLite file passes ``PRAGMA integrity_check``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from satchel.stores import Stores, open_store
from satchel.stores.base import RotateOutcome, SessionRecord, UserRecord

CHILD = str(Path(__file__).with_name("f11_crash_child.py"))
KILLS = 5
USERS = ("f11-u0", "f11-u1", "f11-u2")
READY_TIMEOUT = 15.0


@dataclass
class Logged:
    """What the children announced, in order."""

    created: dict[str, tuple[str, bytes, bytes]] = field(default_factory=dict)
    # successor hash -> presented hash, and the last rotation logged per session
    predecessor: dict[bytes, bytes] = field(default_factory=dict)
    issued: dict[str, list[bytes]] = field(default_factory=dict)
    last_rotation: dict[str, tuple[bytes, bytes]] = field(default_factory=dict)
    valid_after: dict[str, list[float]] = field(default_factory=dict)
    operations: int = 0
    ready: int = 0


def parse(path: Path) -> Logged:
    logged = Logged()
    for line in path.read_text("ascii").splitlines():
        op, *args = line.split()
        if op == "ready":
            logged.ready += 1
            continue
        logged.operations += 1
        if op == "create":
            sid, uid, secret, refresh = args
            logged.created[sid] = (uid, bytes.fromhex(secret), bytes.fromhex(refresh))
            logged.issued[sid] = [bytes.fromhex(refresh)]
        elif op == "rotate":
            sid, presented, successor = args[0], bytes.fromhex(args[1]), bytes.fromhex(args[2])
            logged.predecessor[successor] = presented
            logged.issued[sid].append(successor)
            logged.last_rotation[sid] = (presented, successor)
        elif op == "valid_after":
            logged.valid_after.setdefault(args[0], []).append(float(args[1]))
        else:
            assert op == "delete_user", line
    return logged


def count_ready(path: Path) -> int:
    if not path.exists():
        return 0
    return sum(1 for line in path.read_text("ascii").splitlines() if line == "ready")


async def crash_repeatedly(
    url: str, namespace: str, log_path: Path, tmp_path: Path, rng: random.Random
) -> None:
    """Start the child KILLS times, each time SIGKILLing it 50-300 ms into its write loop."""
    for run in range(KILLS):
        err_path = tmp_path / f"child-{run}.err"
        with err_path.open("wb") as err:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    CHILD,
                    url,
                    namespace,
                    str(log_path),
                    str(rng.getrandbits(32)),
                    *USERS,
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while count_ready(log_path) <= run:
                assert proc.poll() is None, f"child exited early: {err_path.read_text()}"
                assert time.monotonic() < deadline, "child did not get ready"
                await asyncio.sleep(0.01)
            await asyncio.sleep(rng.uniform(0.05, 0.3))
            assert proc.poll() is None, f"child stopped by itself: {err_path.read_text()}"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        assert proc.returncode == -signal.SIGKILL, err_path.read_text()


def assert_whole_session(rec: SessionRecord, logged: Logged) -> None:
    assert rec.id in logged.created, "a session nobody created"
    uid, secret, _ = logged.created[rec.id]
    assert rec.user_id == uid
    assert rec.secret_hash == secret
    assert isinstance(rec.refresh_hash, bytes) and len(rec.refresh_hash) == 32
    assert rec.refresh_prev_hash is None or len(rec.refresh_prev_hash) == 32
    assert isinstance(rec.generation, int)
    assert rec.absolute_expires_at > rec.created_at


def chain_depth(current: bytes, logged: Logged) -> int:
    depth = 0
    while current in logged.predecessor:
        current = logged.predecessor[current]
        depth += 1
    return depth


async def check_invariants(url: str, namespace: str, logged: Logged) -> tuple[int, int]:
    """Assert F11 on a freshly opened store; returns (live sessions, rotations seen)."""
    store = await open_store(url, prefix=namespace, schema=namespace)
    try:
        now = time.time()
        live: dict[str, SessionRecord] = {}
        for uid in USERS:
            mine = [r for r in await store.list_user(uid) if r.expires_at() > now]
            assert len(mine) <= 1, f"{uid} has {len(mine)} live sessions under a limit of 1"
            live.update((r.id, r) for r in mine)

        rotations = 0
        for sid in logged.created:
            rec = await store.get(sid)
            if rec is None:
                assert sid not in live
                # Evicted or revoked: none of its hashes may rotate.
                for issued in logged.issued[sid]:
                    outcome = await store.rotate_refresh(
                        sid, presented_hash=issued, successor_hash=os.urandom(32), now=now, grace=0
                    )
                    assert outcome is RotateOutcome.UNKNOWN
                continue
            assert sid in live, "a session that list_user does not show"
            assert_whole_session(rec, logged)
            current = rec.refresh_hash
            assert current is not None
            # Old or new state of the last rotation, nothing in between.
            presented, successor = logged.last_rotation.get(sid, (logged.issued[sid][0],) * 2)
            assert current in (presented, successor)
            assert rec.generation == chain_depth(current, logged)
            assert rec.refresh_prev_hash == logged.predecessor.get(current)
            rotations += rec.generation
            # Exactly one of every hash ever issued for the session can rotate: the current.
            candidates = list(dict.fromkeys(logged.issued[sid]))
            random.shuffle(candidates)
            rotated = []
            for issued in candidates:
                outcome = await store.rotate_refresh(
                    sid, presented_hash=issued, successor_hash=os.urandom(32), now=now, grace=0
                )
                assert outcome in (RotateOutcome.ROTATED, RotateOutcome.REUSED)
                if outcome is RotateOutcome.ROTATED:
                    rotated.append(issued)
            assert rotated == [current]

        for uid in USERS:
            user = await store.get_user(uid)
            assert user is not None, "user record lost or unreadable"
            assert (user.username, user.username_key, user.password_hash) == (uid, uid, "x")
            values = logged.valid_after.get(uid, [])
            allowed = {values[-1], values[-1] - 1} if values else {0.0}
            assert user.valid_after in allowed
        return len(live), rotations
    finally:
        await store.close()


@pytest.mark.parametrize(
    "kind",
    [
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ],
)
async def test_F11_sigkill_mid_write_leaves_old_or_new_state(
    kind: str,
    make_stores: Callable[..., Awaitable[Stores]],
    run_id: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    namespace = f"satchel_test_{run_id}_f11"
    stores = await make_stores(kind, prefix=namespace, schema=namespace)
    if kind == "sqlite":
        url = f"sqlite:///{stores.sessions.path}"  # type: ignore[attr-defined]
    elif kind == "postgres":
        url = request.getfixturevalue("database_url")
    else:
        url = request.getfixturevalue("redis_url")
    for uid in USERS:
        await stores.users.create_user(
            UserRecord(id=uid, username=uid, username_key=uid, password_hash="x")
        )

    seed = random.randrange(2**32)
    rng = random.Random(seed)
    log_path = tmp_path / "f11.log"
    await crash_repeatedly(url, namespace, log_path, tmp_path, rng)

    logged = parse(log_path)
    assert logged.ready == KILLS
    # The kills must have landed in a busy write loop, not before it.
    assert logged.operations >= 10 * KILLS, f"only {logged.operations} operations (seed {seed})"
    if kind == "sqlite":
        conn = sqlite3.connect(stores.sessions.path)  # type: ignore[attr-defined]
        try:
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        finally:
            conn.close()

    with caplog.at_level(logging.WARNING, logger="satchel.stores"):
        live, _ = await check_invariants(url, namespace, logged)
    assert not [r for r in caplog.records if "corrupt" in r.getMessage()]
    # Guard against a vacuous pass: sessions survived and refresh tokens were rotated.
    assert live >= 1, f"no live session left to check (seed {seed})"
    assert sum(len(chain) - 1 for chain in logged.issued.values()) >= KILLS
