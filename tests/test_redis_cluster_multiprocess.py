"""Three real ``satchel serve`` processes on a real Redis Cluster: revocation and failover.

Everything (users, keys, sessions, the revocation channel) lives on the session's 6-node
cluster (``redis_cluster``). The key prefix is chosen so that the accounts' slot and the
revocation channel's slot sit on the same master, so killing that master takes both away:
every request must then answer 503 until the replica has taken over, and no revoked
credential may be accepted at any moment, before, during or after the failover.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest
from redis.crc import key_slot

from procs import SatchelServer, satchel_cli, start_servers
from redis_cluster import LocalCluster
from test_multiprocess import PASSWORD, USER, counters, login, me, rejected_within

pytestmark = [pytest.mark.slow, pytest.mark.redis]


@dataclass
class ClusterDeployment:
    cluster: LocalCluster
    env: dict[str, str]
    servers: list[SatchelServer]
    prefix: str

    @property
    def a(self) -> SatchelServer:
        return self.servers[0]

    @property
    def b(self) -> SatchelServer:
        return self.servers[1]

    @property
    def c(self) -> SatchelServer:
        return self.servers[2]


def colocated_prefix(cluster: LocalCluster) -> str:
    """A key prefix whose account slot and revocation channel slot share one master."""
    owners = {}
    for node in cluster.masters():
        for line in cluster.cli(node, "cluster", "nodes").splitlines():
            parts = line.split()
            if "myself" in parts[2]:
                for spec in parts[8:]:
                    low, _, high = spec.partition("-")
                    owners[(int(low), int(high or low))] = node.port
    for _ in range(1000):
        prefix = f"rc{secrets.token_hex(4)}"
        slots = [key_slot(f"{{{prefix}:{tag}}}".encode()) for tag in ("users", "revocations")]
        homes = {port for (low, high), port in owners.items() for s in slots if low <= s <= high}
        if len(homes) == 1:
            return prefix
    raise RuntimeError("no co-located prefix found")


@pytest.fixture(scope="module")
def deployment(redis_cluster: LocalCluster) -> Iterator[ClusterDeployment]:
    prefix = colocated_prefix(redis_cluster)
    env = {
        "SATCHEL_STORE": redis_cluster.url,
        "SATCHEL_KEY_PREFIX": prefix,
        "SATCHEL_TRANSPORTS": "bearer",
        "SATCHEL_EXPOSE_COUNTERS": "true",
        "SATCHEL_CACHE_TTL": "60",
        # A request that meets the dead master answers 503 within a second.
        "SATCHEL_STORE_TIMEOUT": "1",
    }
    done = satchel_cli(["users", "add", USER, "--password-stdin"], env, PASSWORD + "\n")
    assert done.returncode == 0, done.stderr
    servers = start_servers([env] * 3, ["A", "B", "C"])
    try:
        yield ClusterDeployment(redis_cluster, env, servers, prefix)
    finally:
        for server in servers:
            server.stop()


def logout(server: SatchelServer, token: str) -> int:
    response = httpx.post(
        f"{server.url}/auth/logout", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    return response.status_code


def test_every_process_runs_the_sharded_cluster_bus(deployment: ClusterDeployment) -> None:
    for server in deployment.servers:
        bus = counters(server)["bus"]
        assert bus["kind"] == "RedisClusterBus" and bus["healthy"] is True


def test_logout_on_C_is_refused_on_A_and_B_and_costs_no_store_reads(
    deployment: ClusterDeployment,
) -> None:
    token = login(deployment.a)
    for server in deployment.servers:
        for _ in range(2):
            assert me(server, token).status_code == 200
    before = counters(deployment.a)["strategy"]
    for _ in range(200):
        assert me(deployment.a, token).status_code == 200
    after = counters(deployment.a)["strategy"]
    assert after["store_reads"] == before["store_reads"]  # served from the cache
    assert logout(deployment.c, token) == 204
    assert me(deployment.c, token).status_code == 401
    assert rejected_within(deployment.a, token)
    assert rejected_within(deployment.b, token)
    assert counters(deployment.a)["strategy"]["revocations_received"] >= 1


def test_revoke_one_session_from_another_process(deployment: ClusterDeployment) -> None:
    victim, admin = login(deployment.a), login(deployment.b)
    sid = me(deployment.a, victim).json()["session_id"]
    for server in deployment.servers:
        assert me(server, victim).status_code == 200
    response = httpx.delete(
        f"{deployment.c.url}/auth/sessions/{sid}",
        headers={"Authorization": f"Bearer {admin}"},
        timeout=10,
    )
    assert response.status_code == 204
    assert rejected_within(deployment.a, victim)
    assert rejected_within(deployment.b, victim)
    assert me(deployment.a, admin).status_code == 200


@dataclass
class Watch:
    """Every answer of the poller: (monotonic time the request was sent, server, token name,
    status). A request sent before a logout returned may still be answered 200 after it (it
    was in flight); one sent after may not."""

    answers: list[tuple[float, str, str, int]] = field(default_factory=list)
    revoked_at: dict[str, float] = field(default_factory=dict)
    running: bool = True


async def poll(deployment: ClusterDeployment, tokens: dict[str, str], watch: Watch) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        while watch.running:
            for name, token in tokens.items():
                for server in deployment.servers:
                    sent = time.monotonic()
                    response = await client.get(
                        f"{server.url}/auth/me", headers={"Authorization": f"Bearer {token}"}
                    )
                    watch.answers.append((sent, server.name, name, response.status_code))
            await asyncio.sleep(0.01)


async def test_failover_503_during_the_gap_then_success_and_no_revoked_credential_ever(
    deployment: ClusterDeployment,
) -> None:
    cluster = deployment.cluster
    channel = f"{{{deployment.prefix}:revocations}}"
    victim = cluster.master_for_slot(key_slot(channel.encode()))
    tokens = {
        name: login(deployment.servers[i % 3])
        for i, name in enumerate(("keep", "before", "during"))
    }
    for token in tokens.values():
        for server in deployment.servers:
            assert me(server, token).status_code == 200  # cached everywhere
    flushes = {s.name: counters(s)["strategy"]["cache_flushes"] for s in deployment.servers}

    watch = Watch()
    poller = asyncio.create_task(poll(deployment, tokens, watch))
    try:
        await asyncio.sleep(0.2)
        assert await asyncio.to_thread(logout, deployment.c, tokens["before"]) == 204
        watch.revoked_at["before"] = time.monotonic()
        killed_at = time.monotonic()
        cluster.kill(victim)
        # Revoke during the gap: 503 until the store answers again, then 204.
        give_up = time.monotonic() + 30
        while (status := await asyncio.to_thread(logout, deployment.b, tokens["during"])) != 204:
            assert status == 503
            assert time.monotonic() < give_up, "the logout never succeeded after the failover"
            await asyncio.sleep(0.1)
        watch.revoked_at["during"] = time.monotonic()
        await asyncio.to_thread(cluster.wait_ok, 30, replicas_synced=False)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            states = [await asyncio.to_thread(counters, s) for s in deployment.servers]
            if all(st["bus"]["healthy"] for st in states):
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(0.5)
    finally:
        watch.running = False
        await poller
        await asyncio.to_thread(cluster.restart, victim)
        await asyncio.to_thread(cluster.wait_ok, 30)

    statuses = {status for _, _, _, status in watch.answers}
    assert statuses <= {200, 401, 503}, statuses
    # No revoked credential is accepted at any moment after its revocation returned.
    for name, revoked in watch.revoked_at.items():
        late = [a for a in watch.answers if a[2] == name and a[0] > revoked and a[3] == 200]
        assert not late, f"{name} accepted after its revocation: {late[:3]}"
    # The gap answered 503 (the accounts' master was gone), and it ended.
    gap = [a for a in watch.answers if a[0] > killed_at and a[3] == 503]
    assert gap, "no request answered 503 while the master was down"
    recovered = max(a[0] for a in gap)
    print(f"503s for {recovered - killed_at:.2f} s after the kill ({len(gap)} answers)")
    for server in deployment.servers:
        assert me(server, tokens["keep"]).status_code == 200
        assert me(server, tokens["before"]).status_code == 401
        assert me(server, tokens["during"]).status_code == 401
        # The bus resubscribed on the promoted replica and flushed the cache.
        assert counters(server)["strategy"]["cache_flushes"] > flushes[server.name]
