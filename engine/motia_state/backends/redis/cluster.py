"""redis+cluster:// -- the same `RedisPlan`, routed to the master that owns each key's slot.

redis-py's cluster client does the topology work (CLUSTER SLOTS, node clients with
URL, TLS and auth settings); `ClusterBackend` keeps that slot map (it is the
`route.Topology` the `route.Routed` router asks) and writes the commands the
router sends to a node on that node's connection, as the standalone seam does (raw
replies, hiredis packing, a connection pinned per thread and node). All routing
decisions (MOVED, ASK, TRYAGAIN, batch splitting, SCRIPT LOAD on every master, a
stale slot map after a failed connection) are `route.Routed`'s, shared by both seams.

`ClusterBackend` is the synchronous seam; `AsyncClusterBackend` routes the same way
with the same slot map, through one auto-pipeline per master.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.cluster
import redis.connection
from redis.exceptions import RedisClusterException

from ... import ops
from ...capabilities import EVERY
from ...errors import BackendUnavailable
from ...steps import At, Call, Steps
from ..base import SessionInThreads, Shard
from . import wire
from .aio import AutoPipeline, run_async, through
from .outcome import NotSent
from .plan import RedisPlan
from .route import Routed, drive, operation
from .sync import run

T = TypeVar("T")
Node = redis.cluster.ClusterNode


class ClusterBackend:
    """Synchronous seam for Redis Cluster; `AsyncState` runs it in a worker thread."""

    capabilities = EVERY

    def __init__(
        self,
        plan: RedisPlan,
        connect: Callable[[], redis.cluster.RedisCluster],
        describe: str,
        *,
        dedicated: bool = False,
    ) -> None:
        self.plan = plan
        self.describe = describe
        self._connect = connect
        self._client: redis.cluster.RedisCluster | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._stale = False
        self._dedicated = dedicated
        self._own: dict[str, wire.Connection] = {}
        self._router = Routed(self, describe)

    @property
    def client(self) -> redis.cluster.RedisCluster:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    try:
                        self._client = self._connect()
                    except (redis.RedisError, RedisClusterException) as exc:
                        raise BackendUnavailable(f"{self.describe}: {exc}") from None
        return self._client

    # -- topology (route.Topology) -------------------------------------------------

    def refresh(self) -> None:
        """Connect, or ask the cluster for its slot map again (blocking)."""
        client = self.client  # before the lock: building a client takes it too
        if not self._stale:
            return
        with self._lock:
            try:
                client.nodes_manager.initialize()
            except (redis.RedisError, RedisClusterException) as exc:
                raise BackendUnavailable(f"{self.describe}: {exc}") from None
            self._stale = False

    @property
    def stale(self) -> bool:
        """Whether routing needs the network first: not connected yet, or the map is stale."""
        return self._client is None or self._stale

    def mark_stale(self) -> None:
        self._stale = True

    def node_for(self, slot: int) -> Node:
        return self.client.nodes_manager.get_node_from_slot(slot)

    def masters(self) -> list[Node]:
        return wire.primaries(self.client)

    def node_at(self, host: str, port: int) -> Node | None:
        return wire.node_named(self.client, host=host, port=port)

    def shards(self) -> list[Shard]:
        """Each master with the slots it serves, as the cluster says now (for the keyspace
        bridge, which listens on every master). Asks CLUSTER SLOTS itself rather than
        refreshing the shared topology, which would reset every node's pooled connections."""
        reply: Any = None
        failure: Exception | None = None
        if self.stale:
            self.refresh()
        for node in self.masters():
            try:
                ask = At(node, ("CLUSTER", "SLOTS"))
                reply = run(self._router.carry(ask), self._send, self.refresh)
                break
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                failure = exc
        if reply is None:
            raise BackendUnavailable(f"{self.describe}: no master answers: {failure}")
        client = node.redis_connection or wire.default_node(self.client).redis_connection
        assert client is not None
        pool = client.connection_pool
        kwargs = {k: v for k, v in pool.connection_kwargs.items() if k not in ("host", "port")}
        owners: dict[tuple[str, int], list[int]] = {}
        for low, high, master, *_ in reply:
            host = (master[0].decode() if isinstance(master[0], bytes) else master[0]) or node.host
            owners.setdefault((host, int(master[1])), []).extend(range(int(low), int(high) + 1))
        return [
            Shard(
                f"{host}:{port}",
                tuple(sorted(slots)),
                functools.partial(
                    wire.client, pool.connection_class, {**kwargs, "host": host, "port": port}
                ),
            )
            for (host, port), slots in sorted(owners.items())
        ]

    def _conn(self, node: Node) -> wire.Connection:
        client = node.redis_connection
        if client is None:
            self._stale = True
            self.refresh()
            named = wire.node_named(self.client, name=node.name)
            client = named.redis_connection if named is not None else None
            if client is None:
                raise redis.ConnectionError(f"{node.name} is no longer in the cluster")
        pool = client.connection_pool
        if self._dedicated:  # a session: connections of its own
            conn = self._own.get(node.name)
            if conn is None:
                conn = self._own[node.name] = wire.dedicated(pool)
            return conn
        pins: dict[str, wire.Pin] = self._local.__dict__.setdefault("pins", {})
        pin = pins.get(node.name)
        if pin is None or pin.pool is not pool:
            pin = pins[node.name] = wire.Pin(pool)
        return pin.conn

    def _send(self, node: Node, calls: tuple[Call, ...]) -> list[Any]:
        try:
            conn = self._conn(node)
        except redis.ConnectionError as exc:  # connecting: nothing was sent
            raise NotSent(str(exc)) from exc
        return wire.send(conn, calls)

    def execute(self, op: ops.Request[T]) -> T:
        return run(operation(op, self.plan, self._router, self.describe), self._send, self.refresh)

    def run(self, steps: Steps[T]) -> T:
        """A session's plan (the change feed), on this seam's connections."""
        return run(drive(steps, self._router, self.describe), self._send, self.refresh)

    def session(self) -> ClusterBackend:
        """A seam with connections of its own (for a watcher), sharing this one's topology."""
        return ClusterBackend(self.plan, lambda: self.client, self.describe, dedicated=True)

    @property
    def layout(self) -> Any:
        return self.plan.layout

    def close(self) -> None:
        for conn in self._own.values():
            wire.disconnect(conn)
        self._own.clear()
        if self._dedicated:
            return  # a session: the topology client is its parent's
        if self._client is not None:
            self._local = threading.local()
            self._client.close()
            self._client = None


class AsyncClusterBackend:
    """AsyncState's seam for Redis Cluster: the routing of `ClusterBackend` (whose slot map
    it shares), with an auto-pipeline per master instead of a connection per thread, so
    concurrent tasks' commands to one master travel together, as on a single server.

    Looking up a slot is in memory; connecting and refreshing a stale slot map block, so
    they run in a worker thread. Watch sessions keep the synchronous seam (in threads).
    """

    capabilities = EVERY

    def __init__(self, sync: ClusterBackend, node_kwargs: dict[str, Any]) -> None:
        self.plan = sync.plan
        self.describe = sync.describe
        self._sync = sync
        self._kwargs = node_kwargs
        self._pipelines: dict[str, tuple[redis.asyncio.Redis, AutoPipeline]] = {}
        # the routing of the sync seam, on its slot map: stale (or not yet connected)
        # makes the router ask for a `Refresh`, which runs in a worker thread
        self._router = Routed(sync, sync.describe)

    def _pipeline(self, node: Node) -> AutoPipeline:
        entry = self._pipelines.get(node.name)
        if entry is None:
            client = redis.asyncio.Redis(host=node.host, port=node.port, **self._kwargs)
            entry = self._pipelines[node.name] = (client, AutoPipeline(client))
        return entry[1]

    async def _send(self, node: Node, calls: tuple[Call, ...]) -> list[Any]:
        return await through(self._pipeline(node), calls)

    async def execute(self, op: ops.Request[T]) -> T:
        io = operation(op, self.plan, self._router, self.describe)
        return await run_async(io, self._send, self._sync.refresh)

    def session(self) -> SessionInThreads:
        return SessionInThreads(self._sync.session())

    async def aclose(self) -> None:
        pipelines, self._pipelines = self._pipelines, {}
        for client, pipeline in pipelines.values():
            await pipeline.aclose()
            await client.aclose()
        await asyncio.to_thread(self._sync.close)
