"""redis+cluster:// -- the same `RedisPlan`, routed to the master that owns each key's slot.

redis-py's cluster client does the topology work (CLUSTER SLOTS, node clients with
URL, TLS and auth settings); this seam only asks it which node serves a slot and
writes the plan's commands on that node's connection, as the standalone seam does
(raw replies, hiredis packing, a connection pinned per thread and node).

What a cluster adds:

* every command is routed by its key (all keys of one script share a slot by the
  layout's design); SCAN goes to each master in turn (`Masters`/`At` steps) and
  SCRIPT LOAD to every master, so a NOSCRIPT anywhere, also on a replica promoted
  by a failover, is healed in one step;
* a batch is split by node, each part pipelined to its node, the replies put back
  in order;
* MOVED refreshes the slot map and re-sends the command once, to the new owner
  (the command was refused, not run); ASK re-sends it once with ASKING; TRYAGAIN
  (a migrating slot whose keys are split between two masters) re-sends it for up
  to `TRYAGAIN_S`;
* a connection error marks the slot map stale, so the next call asks the cluster
  again: after a failover the engine finds the promoted replica by itself. The
  failed call itself is not re-sent (its fate is unknown) and raises
  `BackendUnavailable`.

`ClusterBackend` is the synchronous seam; `AsyncClusterBackend` routes the same way
with the same slot map, through one auto-pipeline per master.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
import redis.asyncio
import redis.cluster
import redis.connection
from redis.exceptions import (
    AskError,
    MovedError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)

from .. import ops
from ..errors import BackendUnavailable
from ..layout import key_slot
from ..steps import At, Batch, Call, Masters, Steps
from .base import _SessionInThreads
from .redis import seams as standalone
from .redis.plan import RedisPlan
from .redis.seams import _AutoPipeline, _Pin

T = TypeVar("T")
Node = redis.cluster.ClusterNode

TRYAGAIN_S = 5.0  # how long a command refused with TRYAGAIN (mid-migration) is retried
# Replies that say a command was not run here: it is sent again, where the reply says.
REFUSED = (MovedError, AskError, TryAgainError)
_KEYLESS = frozenset({"SCAN", "SCRIPT", "PING", "WAIT", "ASKING", "INFO"})


def key_of(call: Call) -> bytes | str | None:
    """The key a command is routed by, or None for a keyless one."""
    name = str(call[0]).upper()
    if name in ("EVALSHA", "EVAL"):
        return call[3] if int(call[2]) > 0 else None
    if name in ("XREAD", "XREADGROUP"):
        return call[[str(a).upper() for a in call].index("STREAMS") + 1]  # type: ignore[no-any-return]
    if name in ("XGROUP", "MEMORY"):  # XGROUP CREATE <key>, MEMORY USAGE <key>
        return call[2]  # type: ignore[no-any-return]
    if name in _KEYLESS:
        return None
    return call[1]  # type: ignore[no-any-return]


def _as_bytes(key: bytes | str) -> bytes:
    return key if isinstance(key, bytes) else str(key).encode("utf-8")


@dataclass(frozen=True)
class Shard:
    """One master and the slots it serves; `client` connects to it with the cluster's
    settings (auth, TLS, timeouts)."""

    host: str
    port: int
    slots: list[int]
    kwargs: dict[str, Any] = field(compare=False)
    connection_class: type[redis.connection.AbstractConnection] = field(compare=False)

    @property
    def name(self) -> str:
        return f"{self.host}:{self.port}"

    def client(self) -> redis.Redis:
        pool = redis.ConnectionPool(connection_class=self.connection_class, **self.kwargs)
        return redis.Redis(connection_pool=pool)


class ClusterBackend:
    """Synchronous seam for Redis Cluster; `AsyncState` runs it in a worker thread."""

    def __init__(
        self,
        plan: RedisPlan,
        connect: Callable[[], redis.cluster.RedisCluster],
        describe: str,
        *,
        dedicated_timeout: float | None = None,
    ) -> None:
        self.plan = plan
        self.describe = describe
        self._connect = connect
        self._client: redis.cluster.RedisCluster | None = None
        self._lock = threading.Lock()
        self._local = threading.local()
        self._stale = False
        self._dedicated_timeout = dedicated_timeout
        self._own: dict[str, redis.connection.Connection] = {}

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

    # -- topology ------------------------------------------------------------------

    def _refresh(self) -> None:
        client = self.client  # before the lock: building a client takes it too
        with self._lock:
            try:
                client.nodes_manager.initialize()
            except (redis.RedisError, RedisClusterException) as exc:
                raise BackendUnavailable(f"{self.describe}: {exc}") from None
            self._stale = False

    def ready(self) -> bool:
        """Whether routing needs no network: connected, and the slot map not stale."""
        return self._client is not None and not self._stale

    def prepare(self) -> None:
        """Connect, or ask the cluster for its slot map again if it went stale (blocking)."""
        if self._stale:
            self._refresh()
        else:
            _ = self.client

    def _node_for(self, key: bytes | str) -> Node:
        if self._stale:
            self._refresh()
        return self.client.nodes_manager.get_node_from_slot(key_slot(_as_bytes(key)))

    def _masters(self) -> list[Node]:
        if self._stale:
            self._refresh()
        return list(self.client.get_primaries())

    def shards(self) -> list[Shard]:
        """Each master with the slots it serves, as the cluster says now (for the keyspace
        bridge, which listens on every master). Asks CLUSTER SLOTS itself rather than
        refreshing the shared topology, which would reset every node's pooled connections."""
        reply: Any = None
        failure: Exception | None = None
        for node in self._masters():
            try:
                reply = self._on(node, ("CLUSTER", "SLOTS"))
                break
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                failure = exc
        if reply is None:
            raise BackendUnavailable(f"{self.describe}: no master answers: {failure}")
        client = node.redis_connection or self.client.get_default_node().redis_connection
        assert client is not None
        pool = client.connection_pool
        kwargs = {k: v for k, v in pool.connection_kwargs.items() if k not in ("host", "port")}
        owners: dict[tuple[str, int], list[int]] = {}
        for low, high, master, *_ in reply:
            host = (master[0].decode() if isinstance(master[0], bytes) else master[0]) or node.host
            owners.setdefault((host, int(master[1])), []).extend(range(int(low), int(high) + 1))
        return [
            Shard(
                host,
                port,
                sorted(slots),
                {**kwargs, "host": host, "port": port},
                pool.connection_class,
            )
            for (host, port), slots in sorted(owners.items())
        ]

    def _conn(self, node: Node) -> redis.connection.Connection:
        client = node.redis_connection
        if client is None:
            self._refresh()
            client = self.client.get_node(node_name=node.name).redis_connection
        pool = client.connection_pool
        if self._dedicated_timeout is not None:  # a session: connections of its own
            conn = self._own.get(node.name)
            if conn is None:
                kwargs = dict(pool.connection_kwargs)
                kwargs["socket_timeout"] = self._dedicated_timeout
                conn = self._own[node.name] = pool.connection_class(**kwargs)
            return conn
        pins: dict[str, _Pin] = self._local.__dict__.setdefault("pins", {})
        pin = pins.get(node.name)
        if pin is None or pin.pool is not pool:
            pin = pins[node.name] = _Pin(pool)
        return pin.conn

    # -- sending -------------------------------------------------------------------

    def _on(self, node: Node, call: Call | Batch) -> Any:
        try:
            try:
                conn = self._conn(node)
            except redis.ConnectionError as exc:  # connecting: nothing was sent
                raise standalone.NotSent(str(exc)) from exc
            return standalone._send(conn, call)
        except (redis.ConnectionError, redis.TimeoutError):
            self._stale = True  # a failover may be under way: ask the cluster next time
            raise

    def _one(self, call: Call) -> Any:
        key = key_of(call)
        if key is None:
            if str(call[0]).upper() == "SCRIPT":  # load everywhere: any master may run it
                replies = [self._on(node, call) for node in self._masters()]
                return replies[0]
            return self._on(self._masters()[0], call)
        deadline = time.monotonic() + TRYAGAIN_S
        while True:
            try:
                try:
                    return self._on(self._node_for(key), call)
                except ResponseError as exc:
                    return self._redirected(exc, call)
            except TryAgainError:
                # The slot is migrating and the script's keys are split between the two
                # masters: refused, not run. redis-cli moves a slot's keys in batches,
                # so this passes quickly; keep asking for a while.
                if time.monotonic() > deadline:
                    raise BackendUnavailable(
                        f"{self.describe}: slot {key_slot(_as_bytes(key))} is migrating and "
                        f"its keys stayed split between two masters for {TRYAGAIN_S:.0f} s"
                    ) from None
                time.sleep(0.02)

    def _redirected(self, exc: ResponseError, call: Call) -> Any:
        """MOVED: the slot has a new owner; ASK: it is migrating. Either way, one more try."""
        if isinstance(exc, MovedError):
            self._refresh()
            return self._on(self._node_for(key_of(call) or b""), call)
        if isinstance(exc, AskError):
            host, port = exc.host, exc.port
            node = self.client.get_node(host=host, port=int(port))
            if node is None:
                self._refresh()
                node = self.client.get_node(host=host, port=int(port))
            replies = self._on(node, Batch((("ASKING",), call)))
            if isinstance(replies[1], Exception):
                raise replies[1]
            return replies[1]
        raise exc

    def split(self, batch: Batch) -> list[tuple[Node, list[int]]]:
        """Which node gets which of ``batch``'s commands (by index, in order): each key's
        master; a keyless command (WAIT) follows the one before it."""
        parts: dict[str, tuple[Node, list[int]]] = {}
        node: Node | None = None
        for i, call in enumerate(batch.calls):
            key = key_of(call)
            if key is not None or node is None:
                node = self._node_for(key) if key is not None else self._masters()[0]
            parts.setdefault(node.name, (node, []))[1].append(i)
        return list(parts.values())

    def _batch(self, batch: Batch) -> list[Any]:
        """Each node's share pipelined to it, the replies put back in order."""
        replies: list[Any] = [None] * len(batch.calls)
        for target, indexes in self.split(batch):
            got = self._on(target, Batch(tuple(batch.calls[i] for i in indexes)))
            for i, reply in zip(indexes, got, strict=True):
                replies[i] = reply
        for i, reply in enumerate(replies):
            if isinstance(reply, REFUSED):  # refused, not run: send it again
                try:
                    replies[i] = self._one(batch.calls[i])
                except ResponseError as exc:
                    replies[i] = exc
        return replies

    def _send(self, call: Call | Batch | Masters | At) -> Any:
        if isinstance(call, Masters):
            return self._masters()
        if isinstance(call, At):
            return self._on(call.node, call.call)
        if isinstance(call, Batch):
            return self._batch(call)
        return self._one(call)

    def run(self, steps: Steps[T]) -> T:
        return standalone.drive(steps, self._send, self.describe)

    def execute(self, op: ops.Request[T]) -> T:
        return standalone.execute_with_retries(op, lambda: self.run(self.plan.steps(op)), self.plan)

    def session(self) -> ClusterBackend:
        """A seam with connections of its own (for a watcher), sharing this one's topology."""
        own = ClusterBackend(
            self.plan,
            lambda: self.client,
            self.describe,
            dedicated_timeout=standalone._session_timeout({}),
        )
        return own

    @property
    def layout(self) -> Any:
        return self.plan.layout

    def close(self) -> None:
        for conn in self._own.values():
            conn.disconnect()
        self._own.clear()
        if self._dedicated_timeout is not None:
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

    def __init__(self, sync: ClusterBackend, node_kwargs: dict[str, Any]) -> None:
        self.plan = sync.plan
        self.describe = sync.describe
        self._sync = sync
        self._kwargs = node_kwargs
        self._pipelines: dict[str, tuple[redis.asyncio.Redis, _AutoPipeline]] = {}

    async def _topology(self) -> ClusterBackend:
        """The shared slot map, current. Use it before the next ``await``: another task may
        mark it stale meanwhile, and a lookup would then refresh it inside the event loop."""
        if not self._sync.ready():
            await asyncio.to_thread(self._sync.prepare)
        return self._sync

    def _pipeline(self, node: Node) -> _AutoPipeline:
        entry = self._pipelines.get(node.name)
        if entry is None:
            client = redis.asyncio.Redis(host=node.host, port=node.port, **self._kwargs)
            entry = self._pipelines[node.name] = (client, _AutoPipeline(client))
        return entry[1]

    async def _on(self, node: Node, call: Call | Batch) -> Any:
        try:
            if isinstance(call, Batch):
                replies = await self._pipeline(node).send_many(call.calls)
                for reply in replies:
                    if isinstance(reply, (redis.ConnectionError, redis.TimeoutError)):
                        raise reply
                return replies
            return await self._pipeline(node).send(call)
        except (redis.ConnectionError, redis.TimeoutError):
            self._sync._stale = True  # a failover may be under way: ask the cluster next time
            raise

    async def _one(self, call: Call) -> Any:
        key = key_of(call)
        if key is None:
            masters = (await self._topology())._masters()
            if str(call[0]).upper() == "SCRIPT":  # load everywhere: any master may run it
                replies = [await self._on(node, call) for node in masters]
                return replies[0]
            return await self._on(masters[0], call)
        deadline = time.monotonic() + TRYAGAIN_S
        while True:
            try:
                try:
                    return await self._on((await self._topology())._node_for(key), call)
                except ResponseError as exc:
                    return await self._redirected(exc, call)
            except TryAgainError:  # see ClusterBackend._one
                if time.monotonic() > deadline:
                    raise BackendUnavailable(
                        f"{self.describe}: slot {key_slot(_as_bytes(key))} is migrating and "
                        f"its keys stayed split between two masters for {TRYAGAIN_S:.0f} s"
                    ) from None
                await asyncio.sleep(0.02)

    async def _redirected(self, exc: ResponseError, call: Call) -> Any:
        """See `ClusterBackend._redirected`; TRYAGAIN from the new owner goes up to `_one`."""
        if isinstance(exc, MovedError):
            self._sync._stale = True  # the slot map is out of date: `_topology` asks again
            return await self._on((await self._topology())._node_for(key_of(call) or b""), call)
        if isinstance(exc, AskError):
            node = (await self._topology()).client.get_node(host=exc.host, port=int(exc.port))
            if node is None:
                self._sync._stale = True
                node = (await self._topology()).client.get_node(host=exc.host, port=int(exc.port))
            replies = await self._on(node, Batch((("ASKING",), call)))
            if isinstance(replies[1], Exception):
                raise replies[1]
            return replies[1]
        raise exc

    async def _batch(self, batch: Batch) -> list[Any]:
        """Each node's share pipelined to it, the replies put back in order."""
        replies: list[Any] = [None] * len(batch.calls)
        for target, indexes in (await self._topology()).split(batch):
            got = await self._on(target, Batch(tuple(batch.calls[i] for i in indexes)))
            for i, reply in zip(indexes, got, strict=True):
                replies[i] = reply
        for i, reply in enumerate(replies):
            if isinstance(reply, REFUSED):  # refused, not run: send it again
                try:
                    replies[i] = await self._one(batch.calls[i])
                except ResponseError as exc:
                    replies[i] = exc
        return replies

    async def _send(self, call: Call | Batch | Masters | At) -> Any:
        if isinstance(call, Masters):
            return (await self._topology())._masters()
        if isinstance(call, At):
            return await self._on(call.node, call.call)
        if isinstance(call, Batch):
            return await self._batch(call)
        return await self._one(call)

    async def execute(self, op: ops.Request[T]) -> T:
        return await standalone.aexecute_with_retries(
            op,
            lambda: standalone.adrive(self.plan.steps(op), self._send, self.describe),
            self.plan,
        )

    def session(self) -> _SessionInThreads:
        return _SessionInThreads(self._sync.session())

    async def aclose(self) -> None:
        pipelines, self._pipelines = self._pipelines, {}
        for client, pipeline in pipelines.values():
            await pipeline.aclose()
            await client.aclose()
        await asyncio.to_thread(self._sync.close)
