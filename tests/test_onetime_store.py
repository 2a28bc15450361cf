"""The one-time token contract of every store backend: put, peek, consume exactly once,
per-user listing and deletion, expiry; and the consume race across real processes.

Runs against memory, SQLite, Redis and PostgreSQL (Redis and PostgreSQL skip loudly when the
service is down, and fail on CI).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from helpers import MakeStores
from satchel.errors import StoreUnavailable
from satchel.stores.onetime import (
    DeadlineOneTimeStore,
    OneTimeRecord,
    OneTimeTokenStore,
)
from satchel.stores.onetime_backends import onetime_store_for

STORE_KINDS = ("memory", "sqlite", "redis", "postgres")
HERE = Path(__file__).resolve().parent


def _param(kind: str) -> Any:
    marks = [getattr(pytest.mark, kind)] if kind in ("redis", "postgres") else []
    return pytest.param(kind, marks=marks)


@pytest.fixture(params=[_param(kind) for kind in STORE_KINDS])
async def tokens(request: pytest.FixtureRequest, make_stores: MakeStores) -> OneTimeTokenStore:
    stores = await make_stores(request.param)
    return onetime_store_for(stores.keys)


def record(
    kind: str = "reset", user: str | None = "u1", *, now: float, ttl: float = 600, **data: Any
) -> OneTimeRecord:
    return OneTimeRecord(
        kind=kind,
        token_hash=secrets.token_bytes(32),
        created_at=now,
        expires_at=now + ttl,
        user_id=user,
        email="alice@example.com" if user else None,
        data=dict(data),
    )


async def test_consume_returns_the_record_once(tokens: OneTimeTokenStore) -> None:
    now = time.time()
    rec = record(now=now, fp="abc", roles=["admin"])
    await tokens.put(rec)
    seen = await tokens.peek("reset", rec.token_hash, now)
    assert seen is not None and seen.data == {"fp": "abc", "roles": ["admin"]}
    got = await tokens.consume("reset", rec.token_hash, now)
    assert got is not None
    assert (got.kind, got.token_hash, got.user_id, got.email) == (
        "reset",
        rec.token_hash,
        "u1",
        "alice@example.com",
    )
    assert got.created_at == pytest.approx(now) and got.expires_at == pytest.approx(now + 600)
    assert await tokens.consume("reset", rec.token_hash, now) is None  # replay
    assert await tokens.peek("reset", rec.token_hash, now) is None


async def test_kind_is_part_of_the_key(tokens: OneTimeTokenStore) -> None:
    now = time.time()
    rec = record("verify", now=now)
    await tokens.put(rec)
    assert await tokens.consume("reset", rec.token_hash, now) is None
    assert await tokens.consume("verify", rec.token_hash, now) is not None


async def test_expired_records_are_never_returned(tokens: OneTimeTokenStore) -> None:
    now = time.time()
    rec = record(now=now - 100, ttl=50)
    await tokens.put(rec)
    assert await tokens.peek("reset", rec.token_hash, now) is None
    assert await tokens.consume("reset", rec.token_hash, now) is None
    live = record(now=now, ttl=60)
    await tokens.put(live)
    assert await tokens.consume("reset", live.token_hash, now + 61) is None


async def test_records_without_a_user(tokens: OneTimeTokenStore) -> None:
    now = time.time()
    rec = record("invite", None, now=now, roles=["staff"])
    await tokens.put(rec)
    got = await tokens.consume("invite", rec.token_hash, now)
    assert got is not None and got.user_id is None and got.data == {"roles": ["staff"]}


async def test_per_user_listing_and_deletion(tokens: OneTimeTokenStore) -> None:
    now = time.time()
    first, second = record(now=now), record(now=now + 1)
    other_kind, other_user = record("verify", now=now), record(user="u2", now=now)
    expired = record(now=now - 100, ttl=10)
    for rec in (second, first, other_kind, other_user, expired):
        await tokens.put(rec)
    listed = await tokens.list_for_user("reset", "u1", now + 2)
    assert [r.token_hash for r in listed] == [first.token_hash, second.token_hash]
    assert await tokens.delete_for_user("reset", "u1") >= 2
    assert await tokens.list_for_user("reset", "u1", now + 2) == []
    assert await tokens.consume("reset", first.token_hash, now + 2) is None
    assert await tokens.consume("verify", other_kind.token_hash, now) is not None
    assert await tokens.consume("reset", other_user.token_hash, now) is not None
    assert await tokens.delete_for_user("reset", "nobody") == 0


async def test_purge(tokens: OneTimeTokenStore) -> None:
    now = time.time()
    dead, live = record(now=now - 100, ttl=10), record(now=now)
    await tokens.put(dead)
    await tokens.put(live)
    await tokens.purge_expired(now)
    assert await tokens.consume("reset", live.token_hash, now) is not None


async def test_concurrent_consumers_in_one_process(tokens: OneTimeTokenStore) -> None:
    now = time.time()
    recs = [record(now=now) for _ in range(8)]
    for rec in recs:
        await tokens.put(rec)
    # Few enough at once that a busy machine does not hit the client's 0.5 s time-outs.
    results = await asyncio.gather(
        *(tokens.consume("reset", rec.token_hash, now) for rec in recs for _ in range(3))
    )
    assert sum(r is not None for r in results) == len(recs)


async def test_deadline_wrapper(tokens: OneTimeTokenStore) -> None:
    bounded = DeadlineOneTimeStore(tokens, 2.0)
    now = time.time()
    rec = record(now=now)
    await bounded.put(rec)
    assert await bounded.consume("reset", rec.token_hash, now) is not None

    class Hung:
        async def consume(self, *args: object) -> None:
            await asyncio.sleep(60)

    with pytest.raises(StoreUnavailable):
        await DeadlineOneTimeStore(Hung(), 0.05).consume("reset", b"x", now)  # type: ignore[arg-type]


# --- across processes ---------------------------------------------------------------------


def _race_param(kind: str) -> Any:
    marks = [pytest.mark.slow]
    if kind != "sqlite":
        marks.append(getattr(pytest.mark, kind))
    return pytest.param(kind, marks=marks)


@pytest.mark.parametrize("kind", [_race_param(k) for k in ("sqlite", "redis", "postgres")])
async def test_consume_is_single_use_across_processes(
    kind: str, make_stores: MakeStores, tmp_path: Path, run_id: str
) -> None:
    stores = await make_stores(kind)
    backend = stores.keys
    tokens = onetime_store_for(backend)
    if kind == "sqlite":
        url, prefix, schema = f"sqlite:///{backend.path}", "satchel", "satchel"
    elif kind == "redis":
        url = os.environ.get("SATCHEL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
        prefix, schema = backend.prefix, "satchel"
    else:
        url = os.environ.get(
            "SATCHEL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
        )
        prefix, schema = "satchel", backend.schema
    now = time.time()
    recs = [record(now=now) for _ in range(30)]
    for rec in recs:
        await tokens.put(rec)
    start = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                str(HERE / "onetime_race_child.py"),
                url,
                prefix,
                schema,
                str(start),
                *(rec.token_hash.hex() for rec in recs),
            ],
            stdout=subprocess.PIPE,
            env=env,
        )
        for _ in range(3)
    ]
    await asyncio.sleep(1.0)  # every child connected and waiting
    start.write_text("go")
    wins = []
    for child in children:
        out, _ = await asyncio.to_thread(child.communicate, timeout=60)
        assert child.returncode == 0
        wins.append(int(out.decode().strip()))
    assert sum(wins) == len(recs), wins
