"""The DPoP replay cache: ``OneTimeTokenStore.add`` (insert unless a live record exists) on
every store backend, and a replayed proof refused by another ``satchel serve`` process that
shares the store."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from dpop_client import DPoPKey
from helpers import MakeStores
from procs import SatchelServer, satchel_cli, start_servers
from satchel.stores.onetime import OneTimeRecord
from satchel.stores.onetime_backends import onetime_store_for

PASSWORD = "correct horse battery staple 1"


def _param(kind: str) -> Any:
    marks = [pytest.mark.redis] if "redis" in kind else []
    if kind == "postgres":
        marks = [pytest.mark.postgres]
    return pytest.param(kind, marks=marks)


@pytest.mark.parametrize(
    "kind", [_param(k) for k in ("memory", "sqlite", "redis", "redis-cluster", "postgres")]
)
async def test_add_inserts_only_when_absent_or_expired(kind: str, make_stores: MakeStores) -> None:
    tokens = onetime_store_for((await make_stores(kind)).keys)
    now = time.time()
    digest = secrets.token_bytes(32)
    seen = OneTimeRecord(kind="dpop_jti", token_hash=digest, created_at=now, expires_at=now + 60)
    assert await tokens.add(seen, now) is True
    assert await tokens.add(seen, now + 1) is False
    racers = [OneTimeRecord("dpop_jti", secrets.token_bytes(32), now, now + 60) for _ in range(3)]
    results = await asyncio.gather(*(tokens.add(r, now) for r in racers * 3))
    assert sum(results) == 3  # each key once, however many adds race
    if kind in ("memory", "sqlite", "postgres"):  # Redis expires keys on its own clock
        later = OneTimeRecord("dpop_jti", digest, now + 61, now + 120)
        assert await tokens.add(later, now + 61) is True  # the expired one is replaced
        assert await tokens.add(later, now + 62) is False


# --- across real processes ----------------------------------------------------------------------


def _deployments() -> list[Any]:
    return [
        pytest.param("sqlite", marks=pytest.mark.slow),
        pytest.param("redis", marks=[pytest.mark.slow, pytest.mark.redis]),
    ]


@pytest.fixture(params=_deployments())
def servers(
    request: pytest.FixtureRequest, tmp_path: Any, run_id: str
) -> Iterator[list[SatchelServer]]:
    env = {
        "SATCHEL_STRATEGY": "jwt",
        "SATCHEL_TRANSPORTS": "bearer",
        "SATCHEL_PUBLIC_URL": "https://auth.example.com",
        "SATCHEL_PURGE_INTERVAL": "0",
    }
    if request.param == "sqlite":
        env["SATCHEL_STORE"] = f"sqlite:///{tmp_path / 'satchel.db'}"
    else:
        redis_url = request.getfixturevalue("redis_url")
        env["SATCHEL_STORE"] = redis_url
        env["SATCHEL_KEY_PREFIX"] = f"satchel_dpop_{run_id}"
    created = satchel_cli(["users", "add", "alice", "--password-stdin"], env, PASSWORD + "\n")
    assert created.returncode == 0, created.stderr
    running = start_servers([env, env], ["a", "b"])
    try:
        yield running
    finally:
        for server in running:
            server.stop()
        if request.param == "redis":
            import redis

            client = redis.Redis.from_url(env["SATCHEL_STORE"])
            keys = list(client.scan_iter(match=f"{env['SATCHEL_KEY_PREFIX']}:*"))
            if keys:
                client.delete(*keys)
            client.close()


def test_a_proof_used_on_one_process_is_refused_on_another(servers: list[SatchelServer]) -> None:
    a, b = servers
    key = DPoPKey()
    public = "https://auth.example.com"
    now = time.time()
    issued = httpx.post(
        f"{a.url}/auth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
        headers={"DPoP": key.proof("POST", f"{public}/auth/token", now=now)},
    )
    assert issued.status_code == 200, issued.text
    assert issued.json()["token_type"] == "DPoP"
    token = issued.json()["access_token"]
    proof = key.proof("GET", f"{public}/auth/me", now=time.time(), access_token=token)
    headers = {"authorization": f"DPoP {token}", "DPoP": proof}
    first = httpx.get(f"{a.url}/auth/me", headers=headers)
    assert first.status_code == 200, first.text
    replayed = httpx.get(f"{b.url}/auth/me", headers=headers)
    assert replayed.status_code == 401, replayed.text
    assert replayed.json()["error"] == "invalid_dpop_proof"
    assert 'error="invalid_dpop_proof"' in replayed.headers["www-authenticate"]
    # The token itself is fine on b with a proof of its own.
    fresh = key.proof("GET", f"{public}/auth/me", now=time.time(), access_token=token)
    ok = httpx.get(f"{b.url}/auth/me", headers={**headers, "DPoP": fresh})
    assert ok.status_code == 200, ok.text


async def test_the_replay_cache_is_purged_as_it_goes() -> None:
    from satchel.clock import ManualClock
    from satchel.dpop.guard import PURGE_INTERVAL, DPoPGuard
    from satchel.stores.onetime import MemoryOneTimeStore

    clock, store, key = ManualClock(), MemoryOneTimeStore(), DPoPKey()
    guard = DPoPGuard(store, clock=clock)
    url = "https://api.example.com/token"
    for _ in range(5):
        await guard.token_request([key.proof("POST", url, now=clock())], "POST", url)
    assert repr(store) == "MemoryOneTimeStore(records=5)"
    clock.advance(max(PURGE_INTERVAL, guard.max_age + 10))  # past the first proofs' window
    await guard.token_request([key.proof("POST", url, now=clock())], "POST", url)
    assert repr(store) == "MemoryOneTimeStore(records=1)"  # only the proof still in its window
