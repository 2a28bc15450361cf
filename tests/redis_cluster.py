"""A throw-away 6-node Redis Cluster (3 masters, 3 replicas) for tests and benchmarks.

:class:`LocalCluster` starts six ``redis-server --cluster-enabled yes`` processes on free
loopback ports in a directory of its own (no persistence), joins them with
``redis-cli --cluster create ... --cluster-replicas 1`` and waits until every node reports
``cluster_state:ok``. ``--cluster-node-timeout`` is short (1 s by default), so a killed
master is replaced by its replica within a few seconds. :meth:`LocalCluster.kill` is a
SIGKILL (a crash); :meth:`LocalCluster.stop` ends every node and removes the directory.

Loaded by file path from the benchmarks too (``benchmarks/services.py``), so it imports
only the standard library and redis-py.
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

NODES = 6
#: Cluster node ports are below 55536: Redis listens on port + 10000 for the cluster bus.
_MAX_PORT = 55_000


def _free_cluster_port(taken: set[int]) -> int:
    """A free loopback port whose cluster-bus port (+10000) is free too."""
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port > _MAX_PORT or port in taken or port + 10_000 in taken:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as bus:
            try:
                bus.bind(("127.0.0.1", port + 10_000))
            except OSError:
                continue
        return port
    raise RuntimeError("no free port pair for a Redis Cluster node")


def available() -> str | None:
    """None when redis-server and redis-cli are installed, else what is missing."""
    missing = [name for name in ("redis-server", "redis-cli") if shutil.which(name) is None]
    return ", ".join(missing) or None


@dataclass
class Node:
    port: int
    proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class LocalCluster:
    """Six local cluster nodes; see the module docstring."""

    node_timeout_ms: int = 1000
    nodes: list[Node] = field(default_factory=list)
    workdir: Path | None = None

    @property
    def url(self) -> str:
        """The store URL naming every node: ``redis+cluster://h:p,h:p,...``."""
        return "redis+cluster://" + ",".join(n.address for n in self.nodes)

    @property
    def seed_url(self) -> str:
        """A ``redis+cluster://`` URL naming only three nodes (discovery finds the rest)."""
        return "redis+cluster://" + ",".join(n.address for n in self.nodes[:3])

    def start(self, timeout: float = 30.0) -> LocalCluster:
        """Start the nodes, create the cluster and wait until it is ``ok`` everywhere."""
        self.workdir = Path(tempfile.mkdtemp(prefix="satchel-cluster-"))
        # A run that ends without the fixture's teardown (an error, an interrupt) still
        # stops the nodes. (Not PR_SET_PDEATHSIG: it fires when the *thread* that started
        # a node exits, and tests restart nodes from worker threads.)
        atexit.register(self.stop)
        taken: set[int] = set()
        try:
            for _ in range(NODES):
                port = _free_cluster_port(taken)
                taken |= {port, port + 10_000}
                node = Node(port)
                self.nodes.append(node)
                self._spawn(node)
            for node in self.nodes:
                self._wait_ping(node, 10.0)
            created = subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *(n.address for n in self.nodes),
                    "--cluster-replicas",
                    "1",
                    "--cluster-yes",
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout[-2000:]}")
            self.wait_ok(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, node: Node) -> None:
        assert self.workdir is not None
        directory = self.workdir / str(node.port)
        directory.mkdir(exist_ok=True)
        node.proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(node.port),
                "--bind",
                "127.0.0.1",
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                str(directory / "nodes.conf"),
                "--cluster-node-timeout",
                str(self.node_timeout_ms),
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
                # Replicas sync at once (the default waits 5 s for more replicas to join).
                "--repl-diskless-sync-delay",
                "0",
                "--dir",
                str(directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def cli(self, node: Node, *args: str, timeout: float = 5.0) -> str:
        """``redis-cli -p <node> args...``; its output (empty when the node is down)."""
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(node.port), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        return done.stdout

    def _wait_ping(self, node: Node, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.cli(node, "ping").strip() == "PONG":
                return
            if node.proc is not None and node.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError(f"cluster node {node.port} did not start")

    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.proc is not None and n.proc.poll() is None]

    def wait_ok(self, timeout: float = 30.0, *, replicas_synced: bool = True) -> None:
        """Until every live node says ``cluster_state:ok``, three live masters serve all
        slots and (``replicas_synced``) every live replica's link to its master is up: a
        replica that never finished its first sync cannot take over."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            live = self.alive()
            states = [self.cli(n, "cluster", "info") for n in live]
            ok = live and all("cluster_state:ok" in s for s in states) and self._covered(live[0])
            if ok and (not replicas_synced or self._replicas_synced(live)):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the Redis Cluster did not reach cluster_state:ok:\n{self.describe()}")

    def describe(self) -> str:
        """Each live node's view of itself: role, replicas or link, and the slot map."""
        live = self.alive()
        lines = []
        for node in live:
            info = self.cli(node, "info", "replication").splitlines()
            keep = ("role", "connected_slaves", "master_link_status", "master_port")
            lines.append(f"{node.port}: " + " ".join(i for i in info if i.startswith(keep)))
        if live:
            lines.append(self.cli(live[0], "cluster", "nodes"))
        return "\n".join(lines)

    def _replicas_synced(self, live: list[Node]) -> bool:
        """Every replica's link is up and every master has a replica: a node restarted
        after a kill first comes back as a master without slots and only then turns into
        the replica of its successor, which has no replica (nothing to fail over to) until
        it has."""
        serving = {n.port for n in self.masters(via=live[0])}
        for node in live:
            info = self.cli(node, "info", "replication")
            if "role:slave" in info:
                if "master_link_status:up" not in info:
                    return False
            elif node.port not in serving or "connected_slaves:0" in info:
                return False
        return True

    def _covered(self, node: Node) -> bool:
        masters = [n for n in self.masters(via=node) if n.proc is not None]
        alive = {n.port for n in self.alive()}
        return len(masters) == 3 and all(n.port in alive for n in masters)

    def masters(self, via: Node | None = None) -> list[Node]:
        """The nodes that serve slots right now, as a live node sees it."""
        via = via or self.alive()[0]
        by_port = {n.port: n for n in self.nodes}
        out = []
        for line in self.cli(via, "cluster", "nodes").splitlines():
            parts = line.split()
            if len(parts) < 8 or "master" not in parts[2] or "fail" in parts[2]:
                continue
            if len(parts) < 9:  # a master without slots
                continue
            port = int(parts[1].split("@", 1)[0].rsplit(":", 1)[1])
            if port in by_port:
                out.append(by_port[port])
        return out

    def master_for_slot(self, slot: int) -> Node:
        """The master serving ``slot`` now."""
        via = self.alive()[0]
        by_port = {n.port: n for n in self.nodes}
        for line in self.cli(via, "cluster", "nodes").splitlines():
            parts = line.split()
            if len(parts) < 9 or "master" not in parts[2] or "fail" in parts[2]:
                continue
            for spec in parts[8:]:
                if spec.startswith("["):
                    continue
                low, _, high = spec.partition("-")
                if int(low) <= slot <= int(high or low):
                    return by_port[int(parts[1].split("@", 1)[0].rsplit(":", 1)[1])]
        raise RuntimeError(f"no master serves slot {slot}")

    def keyslot(self, key: str) -> int:
        return int(self.cli(self.alive()[0], "cluster", "keyslot", key).strip())

    def kill(self, node: Node) -> None:
        """SIGKILL one node (a crash: no goodbye to the cluster)."""
        proc = node.proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(5)

    def restart(self, node: Node) -> None:
        """Start a killed node again on its port and config (it rejoins, as a replica)."""
        if node.proc is not None and node.proc.poll() is None:
            return
        self._spawn(node)
        self._wait_ping(node, 10.0)

    def stop(self) -> None:
        """Kill every node and remove the working directory."""
        for node in self.nodes:
            self.kill(node)
        if self.workdir is not None:
            with contextlib.suppress(OSError):
                shutil.rmtree(self.workdir)
            self.workdir = None


async def drop_prefix(url: str, prefix: str) -> None:
    """Delete every key of a store ``prefix`` (``prefix:*`` and ``{prefix:*``) on every master."""
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    seeds = [
        ClusterNode(host, int(port))
        for host, port in (item.rsplit(":", 1) for item in url.split("://", 1)[1].split(","))
    ]
    client = RedisCluster(startup_nodes=seeds, socket_timeout=5)
    try:
        escaped = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in prefix)
        for pattern in (f"{escaped}:*", f"{{{escaped}:*"):
            keys = [key async for key in client.scan_iter(match=pattern, count=10_000)]
            for start in range(0, len(keys), 500):
                await client.unlink(*keys[start : start + 500])
    finally:
        await client.aclose()


def node_id(cluster: LocalCluster, node: Node) -> str:
    return cluster.cli(node, "cluster", "myid").strip()


def move_slot(cluster: LocalCluster, slot: int, target: Node) -> None:
    """Move one slot (holding no keys) to the master ``target``, as a resharding would."""
    source = cluster.master_for_slot(slot)
    if source.port == target.port:
        return
    source_id, target_id = node_id(cluster, source), node_id(cluster, target)
    cluster.cli(target, "cluster", "setslot", str(slot), "importing", source_id)
    cluster.cli(source, "cluster", "setslot", str(slot), "migrating", target_id)
    for node in (target, source):
        cluster.cli(node, "cluster", "setslot", str(slot), "node", target_id)
    for node in cluster.masters():
        if node.port not in (source.port, target.port):
            cluster.cli(node, "cluster", "setslot", str(slot), "node", target_id)
