"""The one place that touches redis-py's connection API, which carries no type annotations.

Everything else calls these typed functions: write commands on a connection and
read their replies, an error reply in place of its result. Before anything is
written, the connection is connected, PINGed when idle past the health-check
interval, and peeked at when idle for a moment (a server that restarted meanwhile
has closed it); a failure there raises `NotSent`, since nothing left, which makes
the call safe to send again. A READONLY reply (a demoted primary) drops the
connection, and so does any failure mid-call: that socket's state is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import time
from collections.abc import Iterator, Sequence
from typing import Any

import hiredis
import redis
import redis.asyncio
import redis.asyncio.connection
import redis.asyncio.sentinel
import redis.client
import redis.cluster
import redis.connection
import redis.sentinel
from redis.exceptions import RedisError

from ... import watch
from ...steps import Call
from .outcome import IN_PLACE, NotSent, demoted

PEEK_AFTER_S = 0.005  # idle time after which a connection is checked for a close before use
# A session's socket timeout: above its longest blocking read (and the configured one).
SESSION_TIMEOUT_S = watch.MAX_BLOCK_S + watch.SOCKET_SLACK_S

Connection = redis.connection.AbstractConnection
AsyncConnection = redis.asyncio.connection.AbstractConnection


def pack(calls: Sequence[Call]) -> bytes:
    """RESP-encode commands with hiredis (redis-py's asyncio client packs in pure Python)."""
    return b"".join([hiredis.pack_command(call) for call in calls])


STREAM_BYTES = 64 * 1024


def packed(calls: Sequence[Call]) -> Iterator[bytes]:
    """`pack` as a stream of writes of at least STREAM_BYTES: the server starts on the first
    commands of a large pipeline (set_many's chunks) while the rest are packed and sent.

    A command that cannot be packed (an argument of a type RESP has no form for: a user's
    codec returning a bytearray, say) raises as `pack` would while nothing has left; once
    earlier commands have, they may have run, so it is a connection error, which the caller
    accounts as sent (OutcomeUnknown for a write), never a bare error over a half-applied call.
    """
    batch: list[bytes] = []
    size = 0
    sent = False
    for call in calls:
        try:
            batch.append(hiredis.pack_command(call))
        except Exception as exc:
            if not sent:
                raise
            raise redis.ConnectionError(
                f"a command could not be packed after earlier ones of its pipeline were sent: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        size += len(batch[-1])
        if size >= STREAM_BYTES:
            yield b"".join(batch)
            batch, size, sent = [], 0, True
    if batch:
        yield b"".join(batch)


def _read(conn: Connection) -> Any:
    """One reply, an error reply in place. redis-py would drop the connection on reading a
    LOADING reply (it raises it as a connection error), which turns the next reply of the
    pipeline into a broken connection: the caller's `send` drops it on real failures."""
    try:
        return conn.read_response(disconnect_on_error=False)
    except IN_PLACE as exc:
        return exc


def send(conn: Connection, calls: Sequence[Call]) -> list[Any]:
    """Write ``calls`` on ``conn`` in one pipeline and read their replies (see the module)."""
    try:
        conn.connect()
        conn.check_health()
        idle = time.monotonic() - conn.next_health_check + conn.health_check_interval
        if idle > PEEK_AFTER_S and conn.can_read(timeout=0):
            raise redis.ConnectionError("unexpected data on an idle connection")
    except RedisError as exc:
        conn.disconnect()
        raise NotSent(str(exc)) from exc
    try:
        stream = [hiredis.pack_command(calls[0])] if len(calls) == 1 else packed(calls)
        conn.send_packed_command(stream, check_health=False)
        replies = [_read(conn) for _ in calls]
    except BaseException:
        conn.disconnect()
        raise
    for reply in replies:
        if isinstance(reply, IN_PLACE) and demoted(reply):
            conn.disconnect()
            break
    return replies


def _session_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {**kwargs, "socket_timeout": max(SESSION_TIMEOUT_S, kwargs.get("socket_timeout") or 0)}


def dedicated(pool: redis.ConnectionPool) -> Connection:
    """A connection with ``pool``'s settings (URL, TLS, auth) that never enters the pool, for
    a session: its socket waits longer than its longest blocking read."""
    conn: Connection = pool.connection_class(**_session_kwargs(pool.connection_kwargs))
    return conn


def disconnect(conn: Connection) -> None:
    conn.disconnect()


class Pin:
    """A pool connection pinned to one thread; returned to the pool when the thread ends."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.conn: redis.connection.Connection = pool.get_connection()

    def __del__(self) -> None:
        # In a forked child (os.fork, or the child side of a fork-then-exec) other threads'
        # pins are dropped with their thread states: the pool's locks may be held by a
        # thread that no longer exists there, and the connection is the parent's anyway.
        if os.getpid() != self.pid:
            return
        with contextlib.suppress(Exception):
            self.pool.release(self.conn)


def client(connection_class: type[Connection], kwargs: dict[str, Any]) -> redis.Redis:
    """A client of its own for one server (a Cluster master the keyspace bridge listens on)."""
    pool = redis.ConnectionPool(connection_class=connection_class, **kwargs)
    return redis.Redis(connection_pool=pool)


def release_pool(client: redis.Redis) -> None:
    client.connection_pool.disconnect()
    client.close()


# -- asyncio -----------------------------------------------------------------------


async def _aread(conn: AsyncConnection) -> Any:
    """`_read` for asyncio."""
    try:
        return await conn.read_response(disconnect_on_error=False)
    except IN_PLACE as exc:
        return exc


async def asend(pool: redis.asyncio.ConnectionPool, calls: Sequence[Call]) -> list[Any]:
    """`send` for asyncio, on a connection checked out of ``pool`` for these calls."""
    try:
        conn = await pool.get_connection()
    except RedisError as exc:
        raise NotSent(str(exc)) from exc
    try:
        try:
            await conn.check_health()
            if _closed_while_idle(conn):
                raise redis.ConnectionError("unexpected data on an idle connection")
        except RedisError as exc:
            await conn.disconnect()
            raise NotSent(str(exc)) from exc
        await conn.send_packed_command(pack(calls), check_health=False)
        replies = [await _aread(conn) for _ in calls]
        if any(map(demoted, replies)):
            await conn.disconnect()
        return replies
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)


async def asend_on(conn: AsyncConnection, calls: Sequence[Call]) -> list[Any]:
    """Calls on a connection of a session's own (no pool, no health checks: it blocks)."""
    try:
        await conn.send_packed_command(pack(calls))
        return [await _aread(conn) for _ in calls]
    except BaseException:
        await conn.disconnect()
        raise


def adedicated(pool: redis.asyncio.ConnectionPool) -> AsyncConnection:
    conn: AsyncConnection = pool.connection_class(**_session_kwargs(pool.connection_kwargs))
    return conn


async def adisconnect(conn: AsyncConnection) -> None:
    await conn.disconnect()


def _closed_while_idle(conn: AsyncConnection) -> bool:
    """The asyncio twin of `send`'s peek: whether a connection idle for a moment has
    something to read, which on an idle connection means the server closed it (a restart).
    The socket itself is asked (select, nothing is consumed): the stream learns of the
    close only once the event loop has run its reader, which a busy loop may not have.
    """
    loop_time = asyncio.get_running_loop().time()
    idle = loop_time - conn.next_health_check + conn.health_check_interval
    writer = getattr(conn, "_writer", None)
    if idle <= PEEK_AFTER_S or writer is None:
        return False
    reader = getattr(conn, "_reader", None)
    if writer.is_closing() or (reader is not None and reader.at_eof()):
        return True  # the loop has already seen the close (and, for TLS, let the socket go)
    sock = writer.transport.get_extra_info("socket")
    if sock is None or sock.fileno() < 0:
        return True
    return bool(select.select([sock.fileno()], [], [], 0)[0])


# -- the rest of redis-py's untyped surface the engine uses ------------------------------


def parse_url(url: str) -> dict[str, Any]:
    kwargs: dict[str, Any] = redis.connection.parse_url(url)
    return kwargs


def cluster_node(host: str, port: int) -> redis.cluster.ClusterNode:
    return redis.cluster.ClusterNode(host, port)


def primaries(client: redis.cluster.RedisCluster) -> list[redis.cluster.ClusterNode]:
    return list(client.get_primaries())


def node_named(
    client: redis.cluster.RedisCluster,
    *,
    host: str | None = None,
    port: int | None = None,
    name: str | None = None,
) -> redis.cluster.ClusterNode | None:
    node: redis.cluster.ClusterNode | None = client.get_node(host=host, port=port, node_name=name)
    return node


def default_node(client: redis.cluster.RedisCluster) -> redis.cluster.ClusterNode:
    node: redis.cluster.ClusterNode = client.get_default_node()
    return node


class SentinelConnection(redis.sentinel.SentinelManagedConnection):
    """A connection to the primary a Sentinel names, asked again on every connect.

    redis-py asks only in ``connect``; a connection its health check or a send reconnects
    (``connect_check_health``) goes back to the address it had, which after a failover is
    the demoted primary: it answers reads as a replica, behind the new primary (and a near
    cache tracking the new primary would keep what it read from there)."""

    _addressed = False  # connect_to has just set the address

    def connect_to(self, address: tuple[str, int]) -> None:
        self._addressed = True
        super().connect_to(address)

    def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if not self._sock and not self._addressed and self.connection_pool.is_master:
            self.host, self.port = self.connection_pool.get_master_address()
        self._addressed = False
        super().connect_check_health(check_health, retry_socket_connect)


class SentinelSSLConnection(SentinelConnection, redis.connection.SSLConnection):
    pass


class AsyncSentinelConnection(redis.asyncio.sentinel.SentinelManagedConnection):
    """`SentinelConnection` for asyncio."""

    _addressed = False

    async def connect_to(self, address: tuple[str, int]) -> None:
        self._addressed = True
        await super().connect_to(address)

    async def connect_check_health(
        self, check_health: bool = True, retry_socket_connect: bool = True
    ) -> None:
        if not self.is_connected and not self._addressed and self.connection_pool.is_master:
            self.host, self.port = await self.connection_pool.get_master_address()
        self._addressed = False
        await super().connect_check_health(check_health, retry_socket_connect)


class AsyncSentinelSSLConnection(AsyncSentinelConnection, redis.asyncio.connection.SSLConnection):
    pass


def sentinel(nodes: list[tuple[str, int]], kwargs: dict[str, Any]) -> redis.sentinel.Sentinel:
    return redis.sentinel.Sentinel(nodes, sentinel_kwargs=kwargs)


def async_sentinel(
    nodes: list[tuple[str, int]], kwargs: dict[str, Any]
) -> redis.asyncio.sentinel.Sentinel:
    return redis.asyncio.sentinel.Sentinel(nodes, sentinel_kwargs=kwargs)


def master_for(sentinels: redis.sentinel.Sentinel, service: str, **kwargs: Any) -> redis.Redis:
    kind = SentinelSSLConnection if kwargs.get("ssl") else SentinelConnection
    client: redis.Redis = sentinels.master_for(service, connection_class=kind, **kwargs)
    return client


def async_master_for(
    sentinels: redis.asyncio.sentinel.Sentinel, service: str, **kwargs: Any
) -> redis.asyncio.Redis:
    kind = AsyncSentinelSSLConnection if kwargs.get("ssl") else AsyncSentinelConnection
    client: redis.asyncio.Redis = sentinels.master_for(service, connection_class=kind, **kwargs)
    return client


def pubsub(client: redis.Redis) -> redis.client.PubSub:
    subscriber: redis.client.PubSub = client.pubsub()
    return subscriber


def subscribed_on(subscriber: redis.client.PubSub) -> object:
    """The socket a subscriber listens on: another one after redis-py reconnected it."""
    conn = subscriber.connection
    return None if conn is None else conn._sock
