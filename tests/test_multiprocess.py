"""Three real ``satchel serve`` processes sharing their stores: pushed revocation end to end.

Two deployments, each started once per module: users and keys in PostgreSQL with sessions
in Redis (Redis pub/sub bus), and PostgreSQL alone (LISTEN/NOTIFY bus). Each gets a unique
Redis prefix and PostgreSQL schema, removed afterwards. The servers expose
``/debug/counters`` (SATCHEL_EXPOSE_COUNTERS) so the tests can see store reads.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import redis

from procs import SatchelServer, satchel_cli, start_servers

pytestmark = [pytest.mark.slow, pytest.mark.redis, pytest.mark.postgres]

PASSWORD = "correct horse battery staple 1"
USER = "alice"
POLL = 2.0


@dataclass
class Deployment:
    kind: str
    env: dict[str, str]
    servers: list[SatchelServer]
    database_url: str
    schema: str

    @property
    def a(self) -> SatchelServer:
        return self.servers[0]

    @property
    def b(self) -> SatchelServer:
        return self.servers[1]

    @property
    def c(self) -> SatchelServer:
        return self.servers[2]


def _drop(database_url: str, schema: str, redis_url: str | None, prefix: str) -> None:
    async def drop_schema() -> None:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        finally:
            await conn.close()

    asyncio.run(drop_schema())
    if redis_url is not None:
        client = redis.Redis.from_url(redis_url)
        try:
            keys = list(client.scan_iter(match=f"{prefix}:*", count=10_000))
            if keys:
                client.delete(*keys)
        finally:
            client.close()


@pytest.fixture(scope="module", params=["redis+postgres", "postgres"])
def deployment(
    request: pytest.FixtureRequest, run_id: str, redis_url: str, database_url: str
) -> Iterator[Deployment]:
    kind = request.param
    tag = f"mp{run_id}{'r' if kind.startswith('redis') else 'p'}"
    schema = tag.lower()
    env = {
        "SATCHEL_STORE": database_url,
        "SATCHEL_PG_SCHEMA": schema,
        "SATCHEL_KEY_PREFIX": tag,
        "SATCHEL_TRANSPORTS": "bearer",
        "SATCHEL_EXPOSE_COUNTERS": "true",
        # Long enough that the 1,000-request run below never outlives a cache entry.
        "SATCHEL_CACHE_TTL": "60",
    }
    if kind == "redis+postgres":
        env["SATCHEL_SESSIONS_STORE"] = redis_url
    try:
        done = satchel_cli(["users", "add", USER, "--password-stdin"], env, PASSWORD + "\n")
        assert done.returncode == 0, done.stderr
        servers = start_servers([env] * 3, ["A", "B", "C"])
        try:
            yield Deployment(kind, env, servers, database_url, schema)
        finally:
            for server in servers:
                server.stop()
    finally:
        _drop(database_url, schema, redis_url if kind == "redis+postgres" else None, tag)


def login(server: SatchelServer) -> str:
    response = httpx.post(
        f"{server.url}/auth/token",
        data={"grant_type": "password", "username": USER, "password": PASSWORD},
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def me(server: SatchelServer, token: str) -> httpx.Response:
    return httpx.get(
        f"{server.url}/auth/me", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def counters(server: SatchelServer) -> dict[str, dict[str, int]]:
    response = httpx.get(f"{server.url}/debug/counters", timeout=10)
    assert response.status_code == 200
    data: dict[str, dict[str, int]] = response.json()
    return data


def rejected_within(server: SatchelServer, token: str, seconds: float = POLL) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        status = me(server, token).status_code
        assert status in (200, 401), status
        if status == 401:
            return True
        time.sleep(0.01)
    return False


def test_bus_kind_matches_deployment(deployment: Deployment) -> None:
    expected = "RedisBus" if deployment.kind == "redis+postgres" else "PostgresBus"
    for server in deployment.servers:
        bus = counters(server)["bus"]
        assert bus["kind"] == expected
        assert bus["healthy"] is True


def test_R02_logout_on_C_is_refused_on_A_and_B(deployment: Deployment) -> None:
    token = login(deployment.a)
    for server in deployment.servers:
        for _ in range(2):  # the second answer comes from each process's cache
            assert me(server, token).status_code == 200
    before = {s.name: counters(s)["strategy"]["cache_hits"] for s in deployment.servers}
    assert all(hits >= 1 for hits in before.values())

    response = httpx.post(
        f"{deployment.c.url}/auth/logout", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 204
    assert me(deployment.c, token).status_code == 401  # the revoking process: at once
    assert rejected_within(deployment.a, token)
    assert rejected_within(deployment.b, token)
    for server in (deployment.a, deployment.b):
        assert counters(server)["strategy"]["revocations_received"] >= 1


def test_R02_revoke_one_session_from_another(deployment: Deployment) -> None:
    victim, admin = login(deployment.a), login(deployment.b)
    sid = me(deployment.a, victim).json()["session_id"]
    for server in deployment.servers:
        assert me(server, victim).status_code == 200
    response = httpx.delete(
        f"{deployment.c.url}/auth/sessions/{sid}", headers={"Authorization": f"Bearer {admin}"}
    )
    assert response.status_code == 204
    assert rejected_within(deployment.a, victim)
    assert rejected_within(deployment.b, victim)
    assert me(deployment.a, admin).status_code == 200  # only that session ended


def test_steady_state_costs_no_store_reads_and_revocation_still_wins(
    deployment: Deployment,
) -> None:
    token = login(deployment.a)
    with httpx.Client(
        base_url=deployment.a.url, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        for _ in range(3):  # warm-up
            assert client.get("/auth/me").status_code == 200
        start = counters(deployment.a)["strategy"]
        for _ in range(1000):
            assert client.get("/auth/me").status_code == 200
        end = counters(deployment.a)["strategy"]
        assert end["store_reads"] - start["store_reads"] == 0
        assert end["cache_hits"] - start["cache_hits"] == 1000

        # Revoked elsewhere: the cached entry is dropped by the pushed event.
        response = httpx.post(
            f"{deployment.b.url}/auth/logout", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 204
        assert rejected_within(deployment.a, token)

    # Revoked on the same process: refused on the very next request.
    token = login(deployment.a)
    assert me(deployment.a, token).status_code == 200
    assert me(deployment.a, token).status_code == 200
    response = httpx.post(
        f"{deployment.a.url}/auth/logout", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 204
    assert me(deployment.a, token).status_code == 401


async def test_F10_concurrent_logouts_and_in_flight_requests_never_resurrect(
    deployment: Deployment,
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for round_ in range(3):
            token = login(deployment.servers[round_ % 3])
            auth = {"Authorization": f"Bearer {token}"}
            for server in deployment.servers:
                assert (await client.get(f"{server.url}/auth/me", headers=auth)).status_code == 200
            calls = [client.post(f"{deployment.a.url}/auth/logout", headers=auth)]
            calls.append(client.post(f"{deployment.b.url}/auth/logout", headers=auth))
            for i in range(30):
                server = deployment.servers[i % 3]
                calls.append(client.get(f"{server.url}/auth/me", headers=auth))
            results = await asyncio.gather(*calls)
            assert all(r.status_code < 500 for r in results)
            assert {r.status_code for r in results[:2]} <= {204}
            # Once both logouts returned, nothing may bring the session back anywhere.
            await asyncio.sleep(0.05)
            for _ in range(5):
                for server in deployment.servers:
                    response = await client.get(f"{server.url}/auth/me", headers=auth)
                    assert response.status_code == 401
                await asyncio.sleep(0.05)


def _kill_subscriptions(deployment: Deployment, redis_url: str) -> int:
    """End the servers' subscription connections (never anyone else's)."""
    if deployment.kind == "redis+postgres":
        name = f"satchel-bus:{deployment.env['SATCHEL_KEY_PREFIX']}:revocations"
        client = redis.Redis.from_url(redis_url)
        try:
            killed = 0
            for info in client.client_list(_type="pubsub"):
                if info.get("name") == name:
                    killed += int(client.client_kill_filter(_id=info["id"]))
            return killed
        finally:
            client.close()

    async def terminate() -> int:
        conn = await asyncpg.connect(deployment.database_url)
        try:
            name = f"satchel-bus {deployment.schema}:revocations"[:63]
            rows = await conn.fetch(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = $1",
                name,
            )
            return sum(1 for row in rows if row[0])
        finally:
            await conn.close()

    return asyncio.run(terminate())


def test_F04_killed_subscription_falls_back_to_store_and_flushes(
    deployment: Deployment, redis_url: str
) -> None:
    token, other = login(deployment.a), login(deployment.a)
    for _ in range(2):
        assert me(deployment.a, token).status_code == 200
        assert me(deployment.a, other).status_code == 200
    before = counters(deployment.a)
    assert _kill_subscriptions(deployment, redis_url) == 3

    # During the gap (or right after the reconnect) a revocation elsewhere is honoured.
    response = httpx.post(
        f"{deployment.c.url}/auth/logout", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code in (204, 503)
    if response.status_code == 503:  # C's own bus was still reconnecting: retry is safe
        time.sleep(0.5)
        response = httpx.post(
            f"{deployment.c.url}/auth/logout", headers={"Authorization": f"Bearer {token}"}
        )
        assert response.status_code == 204
    assert rejected_within(deployment.a, token)

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        after = counters(deployment.a)
        if after["bus"]["healthy"] and after["bus"]["resets"] > before["bus"]["resets"]:
            break
        time.sleep(0.05)
    assert after["bus"]["disconnects"] > before["bus"]["disconnects"]
    assert after["bus"]["resets"] > before["bus"]["resets"]
    assert after["strategy"]["cache_flushes"] > before["strategy"]["cache_flushes"]
    # The surviving session was re-read from the store after the flush, then cached again.
    reads = counters(deployment.a)["strategy"]["store_reads"]
    assert me(deployment.a, other).status_code == 200
    assert counters(deployment.a)["strategy"]["store_reads"] > reads
