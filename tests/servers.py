"""Local servers for the test and benchmark harness: free loopback ports, standalone
servers, Sentinels and Clusters, each set up from the configs under ``docker/``.

Kept out of ``motia_state`` because the runtime never needs them (the ``embedded://``
backend runs one server on a unix socket); they start every process through the
runtime's `ServerProcess`, so the harness starts, probes and stops servers exactly as
the engine does. The benchmarks import this module too (``python -m benchmarks`` runs
from the repository root).
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import redis

from motia_state.errors import BackendUnavailable
from motia_state.server import ServerProcess


def free_port(host: str = "127.0.0.1", *, cluster: bool = False) -> int:
    """A free loopback port; ``cluster=True`` also needs port + 10000 free (the cluster bus)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port: int = s.getsockname()[1]
        if not cluster:
            return port
        if port + 10000 <= 65535:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port + 10000))
                except OSError:
                    continue
            return port


def _own_config(workdir: Path, *configs: Path) -> Path:
    """A config file of the server's own that includes ``configs`` (files under ``docker/``).

    A server rewrites its config file when told to (CONFIG REWRITE, which Sentinel sends to
    every server it reconfigures); this way it rewrites its own file, never the shared ones.
    """
    own = workdir / "server.conf"
    own.write_text("".join(f'include "{c.resolve()}"\n' for c in configs))
    return own


def standalone(
    binary: str, config: Path, workdir: Path, *extra: str, port: int | None = None
) -> ServerProcess:
    """A server on a free loopback port from ``config`` (a file under ``docker/``), started."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    args = [str(_own_config(workdir, config)), "--port", str(port), "--dir", str(workdir)]
    args += ["--daemonize", "no", *extra]
    server = ServerProcess(binary, args, log_path=workdir / "server.log", port=port)
    server.start()
    return server


def sentinel(
    binary: str,
    config: Path,
    workdir: Path,
    primary: ServerProcess,
    *,
    service: str = "motia",
    quorum: int = 1,
) -> ServerProcess:
    """A Sentinel on a free loopback port watching ``primary`` as ``service``, started.

    It runs from a copy of ``config`` (docker/sentinel.conf) with the monitor line pointed
    at ``primary``: Sentinel rewrites its file as it learns the topology.
    """
    port = free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    monitor = re.compile(rf"^sentinel monitor {re.escape(service)} .*$", re.MULTILINE)
    text, found = monitor.subn(
        f"sentinel monitor {service} {primary.host} {primary.port} {quorum}", config.read_text()
    )
    if not found:
        raise ValueError(f"{config} has no 'sentinel monitor {service} ...' line")
    copy = workdir / "sentinel.conf"
    copy.write_text(text)
    args = [str(copy), "--sentinel", "--port", str(port), "--dir", str(workdir)]
    server = ServerProcess(binary, args, log_path=workdir / "sentinel.log", port=port)
    server.start()
    return server


class Cluster:
    """A Redis Cluster of local nodes: ``masters`` masters, each with ``replicas`` replicas."""

    def __init__(self, nodes: list[ServerProcess], masters: int) -> None:
        self.nodes = nodes
        self.masters = masters

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{n.host}:{n.port}" for n in self.nodes)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def node_ids(self) -> dict[int, str]:
        ids = {}
        for node in self.nodes:
            if node.proc is not None:
                with node.client() as c:
                    ids[node.port or 0] = c.execute_command("CLUSTER", "MYID").decode()
        return ids

    def wait_ok(self, timeout: float = 30.0, *, replicas: int = 0) -> None:
        """Until every running node reports cluster_state:ok and agrees on who serves which
        slot, and every slot range lists ``replicas`` replicas."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                states = []
                for node in self.nodes:
                    if node.proc is None:
                        continue
                    with node.client() as c:
                        info = c.execute_command("CLUSTER", "INFO").decode()
                        slots = c.execute_command("CLUSTER", "SLOTS")
                    full = all(len(entry) - 3 >= replicas for entry in slots)
                    states.append(("cluster_state:ok" in info and full, len(slots)))
                if states and all(ok for ok, _ in states) and len({n for _, n in states}) == 1:
                    return
            except redis.RedisError:
                pass
            time.sleep(0.1)
        raise BackendUnavailable("the cluster did not reach cluster_state:ok in time")


def cluster(
    binary: str,
    config: Path,
    workdir: Path,
    *extra: str,
    masters: int = 3,
    replicas: int = 0,
    per_node: Callable[[int], Sequence[str]] = lambda port: (),
) -> Cluster:
    """A cluster on free loopback ports from ``config`` (docker/cluster.conf, which builds on
    the redis.conf beside it), ready to use; ``per_node(port)`` adds arguments of a node's
    own (a TLS port, say). The harness sets it up through the plain ports.

    Nodes meet, masters get equal slot ranges, replicas follow their masters; returns once
    every node agrees the cluster is ok.
    """
    nodes: list[ServerProcess] = []
    try:
        for i in range(masters * (1 + replicas)):
            port = free_port(cluster=True)
            node_dir = workdir / f"node-{i}"
            node_dir.mkdir(parents=True, exist_ok=True)
            own = _own_config(node_dir, config, config.parent / "redis.conf")
            args = [str(own), "--port", str(port), "--dir", str(node_dir), *extra]
            args += per_node(port)
            node = ServerProcess(binary, args, log_path=node_dir / "server.log", port=port)
            node.start()
            nodes.append(node)
        first = nodes[0]
        with first.client() as c:
            for node in nodes[1:]:
                c.execute_command("CLUSTER", "MEET", node.host, node.port)
        per = 16384 // masters
        for i, node in enumerate(nodes[:masters]):
            low, high = i * per, 16383 if i == masters - 1 else (i + 1) * per - 1
            with node.client() as c:
                c.execute_command("CLUSTER", "ADDSLOTSRANGE", low, high)
        result = Cluster(nodes, masters)
        deadline = time.monotonic() + 30
        while len(result.node_ids()) < len(nodes) or not _all_known(nodes):
            if time.monotonic() > deadline:
                raise BackendUnavailable("cluster nodes did not meet in time")
            time.sleep(0.05)
        ids = result.node_ids()
        for i, node in enumerate(nodes[masters:]):
            master = nodes[i % masters]
            with node.client() as c:
                c.execute_command("CLUSTER", "REPLICATE", ids[master.port or 0])
        result.wait_ok()
        return result
    except BaseException:
        for node in nodes:
            node.stop()
        raise


def _all_known(nodes: list[ServerProcess]) -> bool:
    for node in nodes:
        with node.client() as c:
            known = c.execute_command("CLUSTER", "NODES").decode().strip().splitlines()
        if len(known) < len(nodes) or any("handshake" in line for line in known):
            return False
    return True
