"""Three real ``satchel serve --strategy hybrid`` processes on PostgreSQL (users, keys) and
Redis (sessions, revocation channel): rotation, reuse detection and revocation end to end.

The servers expose ``/debug/counters`` so the tests can see that verifying costs no store
read on the processes that did not revoke.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
import redis

from procs import SatchelServer, satchel_cli, start_servers

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

PASSWORD = "correct horse battery staple 1"
USER = "alice"


@dataclass
class Cluster:
    env: dict[str, str]
    servers: list[SatchelServer]


def hybrid_env(database_url: str, redis_url: str, tag: str) -> dict[str, str]:
    """Settings of a hybrid deployment: users and keys in PostgreSQL, sessions in Redis."""
    return {
        "SATCHEL_STRATEGY": "hybrid",
        "SATCHEL_STORE": database_url,
        "SATCHEL_SESSIONS_STORE": redis_url,
        "SATCHEL_PG_SCHEMA": tag,
        "SATCHEL_KEY_PREFIX": tag,
        "SATCHEL_TRANSPORTS": "bearer",
        "SATCHEL_EXPOSE_COUNTERS": "true",
        # Replays are detected at once instead of after the usual 10 s grace window.
        "SATCHEL_REFRESH_GRACE": "0",
    }


def drop_deployment(database_url: str, redis_url: str, tag: str) -> None:
    async def drop_schema() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{tag}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop_schema())
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{tag}:*", count=10_000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture(scope="module")
def cluster(run_id: str, redis_url: str, database_url: str) -> Iterator[Cluster]:
    tag = f"hy{run_id}".lower()
    env = hybrid_env(database_url, redis_url, tag)
    try:
        done = satchel_cli(["users", "add", USER, "--password-stdin"], env, PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        servers = start_servers([env] * 3, ["A", "B", "C"])
        try:
            yield Cluster(env, servers)
        finally:
            for server in servers:
                server.stop()
    finally:
        drop_deployment(database_url, redis_url, tag)


def token_pair(server: SatchelServer) -> dict[str, Any]:
    response = httpx.post(
        f"{server.url}/auth/token",
        data={"grant_type": "password", "username": USER, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(server: SatchelServer, token: str) -> httpx.Response:
    return httpx.post(f"{server.url}/auth/refresh", json={"refresh_token": token}, timeout=10)


def me(server: SatchelServer, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def store_reads(server: SatchelServer) -> int:
    response = httpx.get(f"{server.url}/debug/counters", timeout=10)
    assert response.status_code == 200
    assert response.json()["bus"]["healthy"] is True
    return int(response.json()["strategy"]["store_reads"])


def wait_until(predicate: Callable[[], bool], timeout: float = 2.0) -> float:
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError("condition not reached in time")
        time.sleep(0.005)
    return time.monotonic() - start


def test_R01_refresh_on_B_and_replay_on_C_ends_the_family_on_every_process(
    cluster: Cluster,
) -> None:
    a, b, c = cluster.servers
    first = token_pair(a)
    for server in (a, b, c):
        assert me(server, first["access_token"]).status_code == 200
    rotated = refresh(b, first["refresh_token"])
    assert rotated.status_code == 200, rotated.text
    newest = rotated.json()
    assert newest["refresh_token"] != first["refresh_token"]
    for server in (a, b, c):
        assert me(server, newest["access_token"]).status_code == 200
    replay = refresh(c, first["refresh_token"])
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_token"
    # The newest access token stops working at once everywhere (C ended it; A and B hear it
    # over the channel within milliseconds), and so does the newest refresh token.
    assert me(c, newest["access_token"]).status_code == 401
    for server in (a, b):
        wait_until(lambda s=server: me(s, newest["access_token"]).status_code == 401)  # type: ignore[misc]
    assert refresh(a, newest["refresh_token"]).status_code == 401


def test_R02_revoke_on_A_is_refused_on_B_and_C_with_zero_store_reads(cluster: Cluster) -> None:
    a, b, c = cluster.servers
    pair = token_pair(a)
    token = pair["access_token"]
    session_id = me(a, token).json()["session_id"]
    for server in (b, c):
        assert me(server, token).status_code == 200  # warm: verified once
    before = {s.name: store_reads(s) for s in (b, c)}
    for server in (b, c):
        for _ in range(20):
            assert me(server, token).status_code == 200
    assert {s.name: store_reads(s) for s in (b, c)} == before  # 0 reads per request

    revoked = httpx.delete(
        f"{a.url}/auth/sessions/{session_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert revoked.status_code == 204, revoked.text
    for server in (b, c):
        wait_until(lambda s=server: me(s, token).status_code == 401)  # type: ignore[misc]
    assert {s.name: store_reads(s) for s in (b, c)} == before
    assert me(a, token).status_code == 401
