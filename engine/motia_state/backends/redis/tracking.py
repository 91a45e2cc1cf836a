"""The near cache's I/O: client tracking connections, and the backends that serve reads from
memory (`NearBackend`, `AsyncNearBackend`).

A near backend wraps a Redis backend (standalone, Sentinel or Cluster) at the seam every call
crosses (``execute``): `ops.Get` and `ops.GetItem` are served from `cache.Cache` when it holds
the item, else read with `ops.GetItem` (value, version and the milliseconds left to live) and
kept; every write drops the cached items of the groups it names, before and after it runs,
whatever its outcome; everything else goes straight through.

The server says what changed through client tracking in broadcast mode: one connection of
its own per server (each Cluster master), speaking RESP3, runs ``CLIENT TRACKING ON BCAST``
with the engine's data-hash and expiries-set prefixes, and the server then pushes, on that
same connection, the name of every key under them that any client changes (or a null for a
flush). Broadcast mode makes this independent of which pooled connection read an item.
redis-py's own client-side cache does not fit (it needs Redis 7.4, keeps tracking per
connection in default mode and caches plain commands, not the engine's scripts); its RESP3
parser does, and reads the pushes here, handed to ``set_invalidation_push_handler``.

Staleness: before a hit is served, every push already in the socket is read (a non-blocking
poll), so a hit reflects every invalidation that reached this process before the read
began. The server writes a write's invalidation and the writer's reply in the same pass of
its event loop, not always in that order: on the same host the push is in this process's
socket microseconds from the moment another process has its acknowledgement, before or
after it. Over a network it may take longer; a lease bounds both: each tracking connection
is asked a question (PING; CLUSTER SLOTS on Cluster, which also shows a topology change)
every ``max_lag / 4``, and hits are served only while every connection has answered one
sent less than ``max_lag`` ago. Its answer comes
after every push the server sent before it, so a hit never misses a write acknowledged more
than ``max_lag`` before it. A connection lost (a restart, ``CLIENT KILL``, a failover), a
lease unanswered for the socket timeout, or a changed slot map drops the whole cache; reads
go to the server until tracking is established again, on a later read.

The sockets are redis-py's synchronous connections for both APIs, read only without
blocking, so a hit (sync or asyncio) drains them in place; what stays idle is drained by a
daemon thread (`NearBackend`) or by the event loop's reader callbacks and a keep-alive task
(`AsyncNearBackend`). Connecting blocks: in asyncio it runs in a worker thread. This module
calls redis-py's untyped connection API directly, as `wire` does for the call path.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import os
import select
import threading
import time
import weakref
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, TypeVar, cast

import redis

from ... import codecs, ops
from ...cache import Cache, CacheStats, Entry, written_groups
from ...errors import BackendUnavailable, DecodeError, StateError
from ...layout import KeyLayout
from ..base import AsyncBackend, AsyncSession, Backend, Servers, Session, Shard
from . import wire
from .cluster import ClusterBackend

T = TypeVar("T")

log = logging.getLogger("motia_state")

RETRY_S = 1.0  # after a failed attempt to establish tracking, reads wait this long to retry
_PUSHED = object()  # what reading a push returns: its keys went to the link's list

ConnectionFactory = Callable[[], wire.Connection]


def tracking_connection(pool: redis.ConnectionPool) -> wire.Connection:
    """A connection with ``pool``'s settings (address, TLS, auth, Sentinel's lookup of the
    primary) speaking RESP3, outside the pool, without redis-py's health-check PINGs (whose
    replies would be read in the middle of the pushes)."""
    kwargs = {**pool.connection_kwargs, "protocol": 3, "health_check_interval": 0}
    conn: wire.Connection = pool.connection_class(**kwargs)
    return conn


class Source(Protocol):
    """Where the tracking connections go: the servers of one backend."""

    cluster: bool

    def servers(self) -> list[tuple[str, ConnectionFactory]]:
        """(name, a new connection to it) for every server that holds data (may block)."""

    def close(self) -> None: ...


class ClientSource:
    """One server (standalone, embedded or the Sentinel's primary), through a synchronous
    redis-py client: the backend's own (``release`` None), or one made for the tracking
    connection only (an `AsyncState`'s), released with ``release``."""

    cluster = False

    def __init__(
        self,
        name: str,
        client: Callable[[], redis.Redis],
        release: Callable[[], None] | None = None,
    ) -> None:
        self._name = name
        self._client = client
        self._made: redis.Redis | None = None
        self._release = release

    def servers(self) -> list[tuple[str, ConnectionFactory]]:
        if self._made is None:
            self._made = self._client()
        pool = self._made.connection_pool
        return [(self._name, functools.partial(tracking_connection, pool))]

    def close(self) -> None:
        made, self._made = self._made, None
        if self._release is not None and made is not None:
            wire.release_pool(made)
            self._release()


class ClusterSource:
    """Every master of a Cluster, as the backend's slot map names them."""

    cluster = True

    def __init__(self, backend: ClusterBackend) -> None:
        self._backend = backend

    def servers(self) -> list[tuple[str, ConnectionFactory]]:
        backend = self._backend
        if backend.stale:
            backend.refresh()
        found: list[tuple[str, ConnectionFactory]] = []
        for node in backend.masters():
            client = node.redis_connection
            if client is None:
                raise BackendUnavailable(f"{backend.describe}: no client for {node.name} yet")
            pool = client.connection_pool
            found.append((node.name, functools.partial(tracking_connection, pool)))
        return found

    def close(self) -> None:
        pass


def _slot_map(reply: Any) -> frozenset[tuple[int, int, bytes]]:
    """A CLUSTER SLOTS reply as (first slot, last slot, master's node id) ranges."""
    return frozenset((int(entry[0]), int(entry[1]), bytes(entry[2][2])) for entry in reply)


class Link:
    """One tracking connection, to one server."""

    def __init__(self, name: str, conn: wire.Connection) -> None:
        self.name = name
        self.conn = conn
        self.fd = -1
        self.keys: list[bytes | None] = []  # invalidated keys read, to apply; None: every key
        self.asked: deque[float] = deque()  # when each unanswered lease question was sent
        self.confirmed = -math.inf  # when the last answered one was sent

    def _push(self, push: Any) -> object:
        if push[1] is None:
            self.keys.append(None)
        else:
            self.keys.extend(push[1])
        return _PUSHED

    def open(self, prefixes: tuple[bytes, ...]) -> None:
        """Connect (HELLO 3, auth, database) and turn tracking on (blocking)."""
        conn = self.conn
        conn.connect()
        conn._parser.set_invalidation_push_handler(self._push)
        command: list[Any] = ["CLIENT", "TRACKING", "ON", "BCAST"]
        for prefix in prefixes:
            command += ["PREFIX", prefix]
        sent = time.monotonic()
        if self.call(*command) != b"OK":
            raise BackendUnavailable(f"{self.name}: CLIENT TRACKING was refused")
        self.confirmed = sent  # every change from here on is pushed to us
        sock = conn._sock
        assert sock is not None
        self.fd = sock.fileno()

    def call(self, *command: Any) -> Any:
        """A command and its reply, blocking (while establishing)."""
        self.conn.send_command(*command, check_health=False)
        return self.conn.read_response()

    def ask(self, command: tuple[str, ...], now: float) -> None:
        """Send a lease question; its answer is read with the pushes (`read`)."""
        self.conn.send_command(*command, check_health=False)
        self.asked.append(now)

    def read(self) -> list[Any]:
        """Every reply already received, without waiting (pushes go to ``keys``); raises a
        redis-py error when the connection is gone."""
        conn, replies = self.conn, list[Any]()
        if conn._sock is None:  # can_read would connect it again, untracked
            raise redis.ConnectionError("the tracking connection is closed")
        while conn.can_read(timeout=0):
            try:
                reply = conn.read_response(push_request=True, timeout=0, disconnect_on_error=False)
            except redis.TimeoutError:  # a part of a message: the rest is not here yet
                break
            if reply is not _PUSHED:
                replies.append(reply)
        return replies

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.disconnect()


class _Poller:
    """Whether the tracking sockets hold anything unread, asked before every hit: epoll
    where there is one (a third cheaper than poll from Python, which counts at a hit's
    scale), else poll. ``poll(0)`` never waits."""

    def __init__(self) -> None:
        self._epoll = select.epoll() if hasattr(select, "epoll") else None
        self._fallback = select.poll()
        self.poll: Callable[[int], list[Any]] = (
            self._epoll.poll if self._epoll is not None else self._fallback.poll
        )

    def register(self, fd: int, mask: int) -> None:
        (self._epoll or self._fallback).register(fd, mask)

    def unregister(self, fd: int) -> None:
        (self._epoll or self._fallback).unregister(fd)

    def forget(self) -> None:
        if self._epoll is not None:
            self._epoll.close()


_TRACKINGS: weakref.WeakSet[Tracking] = weakref.WeakSet()


class Tracking:
    """The cache, its tracking connections and the one lock around both, shared by the sync
    and asyncio near backends: everything but how they wait."""

    def __init__(
        self, cache: Cache, source: Source, layout: KeyLayout, describe: str, timeout: float
    ) -> None:
        self.cache = cache
        self.lock = cache.lock
        self.describe = describe
        self._source = source
        self._layout = layout
        self._prefixes = layout.tracked_prefixes()
        self._lease = ("CLUSTER", "SLOTS") if source.cluster else ("PING",)
        self._every = cache.config.max_lag / 4  # how often each connection is asked
        self._timeout = timeout  # an unanswered question older than this: the link is lost
        self._links: list[Link] = []
        self._poller = _Poller()
        self._poll = self._poller.poll
        cache.drain = self._drain
        self._slots: frozenset[tuple[int, int, bytes]] | None = None  # Cluster
        self.up = False
        self.epoch = 0  # changes whenever links are installed or lost
        self.closed = False
        self._establishing = False
        self._retry_at = -math.inf
        # Called (lock held) with the file descriptors of links about to close: the asyncio
        # backend stops watching them first.
        self.on_close: Callable[[list[int]], None] | None = None
        _TRACKINGS.add(self)

    # -- reads -----------------------------------------------------------------------

    def ticket(self) -> int | None:
        """Before a read is sent: its ticket for `store`, or None when nothing is tracked."""
        with self.lock:
            ticket = self.cache.ticket()
            return ticket if self.up else None

    def store(
        self, ticket: int, group: str, key: str, raw: ops.RawItem | None, sent: float
    ) -> None:
        with self.lock:
            if self.up:
                self.cache.store(ticket, group, key, raw, sent)

    def drop(self, groups: tuple[str, ...] | None) -> None:
        """Around an own write: forget ``groups``' items (None: everything)."""
        with self.lock:
            if groups is None:
                self.cache.flush()
            else:
                for group in groups:
                    self.cache.drop_group(group)

    def stats(self) -> CacheStats:
        with self.lock:
            return self.cache.stats(time.monotonic())

    # -- the connections (lock held) --------------------------------------------------

    def _drain(self) -> None:
        epoch = self.epoch
        for link in self._links:
            try:
                replies = link.read()
            except (redis.RedisError, OSError) as exc:
                self.lose(f"{link.name}: {exc}")
                return
            self._apply(link)
            for reply in replies:
                self._answered(link, reply)
                if self.epoch != epoch:  # lost
                    return

    def _apply(self, link: Link) -> None:
        for key in link.keys:
            if key is None:  # FLUSHALL, FLUSHDB
                self.cache.invalidations += 1
                self.cache.flush()
                continue
            group = self._layout.group_of_tracked(key)
            if group is not None:
                self.cache.invalidated(group)
        link.keys.clear()

    def _answered(self, link: Link, reply: Any) -> None:
        if not link.asked:
            self.lose(f"{link.name}: an answer to nothing ({reply!r:.80})")
            return
        sent = link.asked.popleft()
        if self._slots is not None:
            if _slot_map(reply) != self._slots:
                self.lose("the Cluster's slot map changed")
                return
        elif reply != b"PONG":
            self.lose(f"{link.name}: PING answered {reply!r:.80}")
            return
        link.confirmed = sent
        self._renew()

    def _renew(self) -> None:
        if self.up and self._links:
            oldest = min(link.confirmed for link in self._links)
            self.cache.serving_until = oldest + self.cache.config.max_lag

    def service(self, now: float) -> float:
        """Drain, ask the lease questions that are due, give up on links that do not
        answer; returns the seconds until this is due again (lock held). What runs it in the
        background (a thread, the event loop) never sees it raise: an unexpected failure
        gives the links up rather than leave a cache nobody keeps."""
        try:
            return self._service(now)
        except Exception as exc:
            self.lose(f"keeping the connections failed: {exc!r}")
            return self._every

    def _service(self, now: float) -> float:
        if not self.up:
            return self._every
        if self._poll(0):
            self._drain()
        due = self._every
        for link in list(self._links):
            if link.asked:
                if now - link.asked[0] > self._timeout:
                    self.lose(f"{link.name}: no answer in {self._timeout:g} s")
                    return self._every
                continue
            wait = link.confirmed + self._every - now
            if wait <= 0:
                try:
                    link.ask(self._lease, now)
                except (redis.RedisError, OSError) as exc:
                    self.lose(f"{link.name}: {exc}")
                    return self._every
            else:
                due = min(due, wait)
        return max(due, 0.001)

    def lose(self, reason: str, *, quiet: bool = False) -> None:
        links, self._links = self._links, []
        if links and self.on_close is not None:
            self.on_close([link.fd for link in links])
        for link in links:
            with contextlib.suppress(KeyError, ValueError, OSError):
                self._poller.unregister(link.fd)
            link.close()
        self.up = False
        self.cache.pending = None
        self.epoch += 1
        self.cache.serving_until = -math.inf
        self.cache.flush()
        if not quiet:
            log.warning("near cache on %s: %s; every cached item dropped", self.describe, reason)

    # -- establishing ------------------------------------------------------------------

    def wanted(self) -> bool:
        """Whether the caller should `establish` tracking now (then it must)."""
        with self.lock:
            if self.up or self._establishing or self.closed:
                return False
            if time.monotonic() < self._retry_at:
                return False
            self._establishing = True
            return True

    def establish(self) -> bool:
        """Open a tracking connection to every server and install them (blocking: run it
        outside the event loop); False, logged, when it failed."""
        links: list[Link] = []
        try:
            for name, connection in self._source.servers():
                links.append(Link(name, connection()))
                links[-1].open(self._prefixes)
            slots = self._topology(links) if self._source.cluster else None
        except (redis.RedisError, OSError, StateError) as exc:
            for link in links:
                link.close()
            with self.lock:
                self._establishing = False
                self._retry_at = time.monotonic() + RETRY_S
            log.warning("near cache on %s: cannot track changes (%s)", self.describe, exc)
            return False
        with self.lock:
            self._establishing = False
            if self.closed:
                for link in links:
                    link.close()
                return False
            for link in links:
                link.keys.clear()  # about changes before now: the cache is empty
                self._poller.register(link.fd, select.POLLIN)
            self._links = links
            self._slots = slots
            self.up = True
            self.cache.pending = self._poll
            self.epoch += 1
            self.cache.flush()  # refuses every reply of a read sent before now
            self.cache.flushes -= 1  # not a drop: there was nothing to drop
            self._renew()
        return True

    def _topology(self, links: list[Link]) -> frozenset[tuple[int, int, bytes]]:
        """The slot map every master agrees on, naming exactly the masters linked."""
        ids = {bytes(link.call("CLUSTER", "MYID")) for link in links}
        maps = {_slot_map(link.call("CLUSTER", "SLOTS")) for link in links}
        if len(maps) != 1:
            raise BackendUnavailable("the Cluster's masters disagree on the slot map")
        (slots,) = maps
        if {owner for _, _, owner in slots} != ids:
            raise BackendUnavailable("the Cluster's masters changed while connecting")
        return slots

    def links(self) -> tuple[int, list[int]]:
        """The current epoch and its links' file descriptors (lock held)."""
        return self.epoch, [link.fd for link in self._links]

    def close(self) -> None:
        """Close the tracking connections; the source is released by `release`."""
        with self.lock:
            self.closed = True
            self.lose("closed", quiet=True)
            self._poller.forget()

    def release(self) -> None:
        self._source.close()

    def _after_fork(self) -> None:
        """In a forked child: the parent's sockets and threads are not ours."""
        self.lock = self.cache.lock = threading.Lock()
        self._poller.forget()  # the parent's: only this process's copy of its descriptor
        self._poller = _Poller()
        self._poll = self._poller.poll
        self.cache.pending = None
        links, self._links = self._links, []
        for link in links:
            link.close()  # only this process's copy of the socket: redis-py checks the pid
        self.up = self._establishing = False
        self.epoch += 1
        self.cache.serving_until = -math.inf
        self.cache.flush()


def _forget_in_child() -> None:
    for tracking in list(_TRACKINGS):
        tracking._after_fork()


os.register_at_fork(after_in_child=_forget_in_child)


def _drain_while_idle(ref: weakref.ref[Tracking], epoch: int, fds: list[int]) -> None:
    """A `NearBackend`'s daemon thread: reads the pushes as they come, so the server never
    holds them for an idle process, and keeps the lease. It ends with its links, and holds
    only a weak reference, so a State nobody closed can still be collected."""
    poller = select.poll()
    for fd in fds:
        poller.register(fd, select.POLLIN)
    while (tracking := ref()) is not None:
        with tracking.lock:
            if tracking.epoch != epoch:
                return
            wait = tracking.service(time.monotonic())
        del tracking
        poller.poll(wait * 1000)


def _raw(op: ops.Request[Any], raw: ops.RawItem | None) -> Any:
    """What ``op`` (`ops.Get` or `ops.GetItem`) returns, from a `ops.GetItem` result."""
    if type(op) is ops.GetItem:
        return raw
    return None if raw is None else raw.data


def _served(op: ops.Request[Any], entry: Entry) -> Any:
    return entry.raw() if type(op) is ops.GetItem else entry.data


def _chooser(codec: Any) -> Callable[[Entry], Callable[[bytes], Any]]:
    """What decodes a cached value on a hit: the decoder the codec chose for that text at
    its first hit (for JSON, orjson itself once it is known to read the text exactly: the
    checks cost as much as the parse), kept with the entry. A value that does not decode
    goes to ``core.decode`` for its error, which names the item."""

    def choose(entry: Entry) -> Callable[[bytes], Any]:
        assert entry.data is not None
        entry.loads = loads = codecs.decoder(codec, entry.data)
        return loads

    return choose


def _hits(core: Any) -> tuple[Callable[[Entry, str, str], Any], Callable[[Entry, str, str], Any]]:
    """What a `State`'s (or `AsyncState`'s) ``get`` and ``get_item`` return for a hit: the
    value, decoded by the entry's chosen decoder (`_chooser`), or the `ops.Item`."""
    choose, decode = _chooser(core.codec), core.decode

    def value(entry: Entry, group: str, key: str) -> Any:
        data = entry.data
        if data is None:
            return None
        try:
            return (entry.loads or choose(entry))(data)
        except DecodeError:
            return decode(group, key, data)

    def item(entry: Entry, group: str, key: str) -> Any:
        if entry.data is None:
            return None
        return ops.Item(group, key, value(entry, group, key), entry.version, entry.expires_at)

    return value, item


class NearBackend:
    """A synchronous Redis backend with the near cache in front (see the module)."""

    def __init__(self, inner: Backend, tracking: Tracking) -> None:
        self.inner = inner
        self.tracking = tracking
        self.describe = inner.describe
        self.capabilities = inner.capabilities

    def execute(self, op: ops.Request[T]) -> T:
        kind = type(op)
        if kind is ops.Get or kind is ops.GetItem:
            return cast(T, self._read(op))
        groups = written_groups(op) if ops.REGISTRY[kind].writes else ()
        if groups == ():
            return self.inner.execute(op)
        self.tracking.drop(groups)
        try:
            return self.inner.execute(op)
        finally:
            self.tracking.drop(groups)

    def _read(self, op: Any) -> Any:
        tracking = self.tracking
        entry = tracking.cache.hit(op.group, op.key)
        if entry is not None:
            return _served(op, entry)
        if tracking.wanted() and tracking.establish():
            self._start_draining()
        ticket = tracking.ticket()
        if ticket is None:
            return self.inner.execute(op)
        sent = time.monotonic()
        raw = self.inner.execute(ops.GetItem(op.group, op.key))
        tracking.store(ticket, op.group, op.key, raw, sent)
        return _raw(op, raw)

    def _start_draining(self) -> None:
        with self.tracking.lock:
            epoch, fds = self.tracking.links()
        args = (weakref.ref(self.tracking), epoch, fds)
        thread = threading.Thread(target=_drain_while_idle, args=args, name="motia-state cache")
        thread.daemon = True
        thread.start()

    def fast_reads(
        self, get: Callable[..., Any], get_item: Callable[..., Any], core: Any
    ) -> dict[str, Any]:
        """``get`` and ``get_item`` for a `State`, serving a hit before a plan is built (a
        plan's checks and encoding cost more than the hit itself); a miss, or arguments that
        are not plain str (the only kind cached), take the State's own method."""
        hit, (value, item) = self.tracking.cache.hit, _hits(core)

        def serving(method: Callable[..., Any], answer: Any) -> Any:
            @functools.wraps(method)
            def fast(group: Any, key: Any) -> Any:
                if type(group) is str and type(key) is str:
                    entry = hit(group, key)
                    if entry is not None:
                        return answer(entry, group, key)
                return method(group, key)

            return fast

        return {"get": serving(get, value), "get_item": serving(get_item, item)}

    def session(self) -> Session:
        return self.inner.session()

    def shards(self) -> list[Shard]:
        assert isinstance(self.inner, Servers)
        return self.inner.shards()

    def close(self) -> None:
        self.tracking.close()
        self.tracking.release()
        self.inner.close()


class AsyncNearBackend:
    """`NearBackend` for `AsyncState`: hits drain the sockets in place; idle, the event
    loop watches them (``add_reader``) and a task keeps the lease."""

    def __init__(self, inner: AsyncBackend, tracking: Tracking) -> None:
        self.inner = inner
        self.tracking = tracking
        self.describe = inner.describe
        self.capabilities = inner.capabilities
        self._loop: asyncio.AbstractEventLoop | None = None
        self._watched: list[int] = []
        self._keeper: asyncio.Task[None] | None = None
        tracking.on_close = self._unwatch

    async def execute(self, op: ops.Request[T]) -> T:
        kind = type(op)
        if kind is ops.Get or kind is ops.GetItem:
            return cast(T, await self._read(op))
        groups = written_groups(op) if ops.REGISTRY[kind].writes else ()
        if groups == ():
            return await self.inner.execute(op)
        self.tracking.drop(groups)
        try:
            return await self.inner.execute(op)
        finally:
            self.tracking.drop(groups)

    def _check_loop(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is not None and self._loop is not loop:  # a new asyncio.run(), say
            with self.tracking.lock:
                self.tracking.lose("used from another event loop", quiet=True)
            self._loop = None

    async def _read(self, op: Any) -> Any:
        tracking = self.tracking
        self._check_loop()
        entry = tracking.cache.hit(op.group, op.key)
        if entry is not None:
            return _served(op, entry)
        if tracking.wanted() and await asyncio.to_thread(tracking.establish):
            self._watch(asyncio.get_running_loop())
        ticket = tracking.ticket()
        if ticket is None:
            return await self.inner.execute(op)
        sent = time.monotonic()
        raw = await self.inner.execute(ops.GetItem(op.group, op.key))
        tracking.store(ticket, op.group, op.key, raw, sent)
        return _raw(op, raw)

    def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        with self.tracking.lock:
            epoch, fds = self.tracking.links()
            if not fds:
                return
            self._loop = loop
            self._watched = fds
            for fd in fds:
                loop.add_reader(fd, self._readable, epoch)
        self._keeper = loop.create_task(self._keep(epoch))

    def _readable(self, epoch: int) -> None:
        with self.tracking.lock:
            if self.tracking.epoch == epoch:
                self.tracking.service(time.monotonic())

    async def _keep(self, epoch: int) -> None:
        tracking = self.tracking
        while True:
            with tracking.lock:
                if tracking.epoch != epoch:
                    return
                wait = tracking.service(time.monotonic())
            await asyncio.sleep(wait)

    def _unwatch(self, fds: list[int]) -> None:
        loop, watched, self._watched = self._loop, self._watched, []
        if loop is not None:
            for fd in watched:
                with contextlib.suppress(Exception):  # a loop closed meanwhile
                    loop.remove_reader(fd)
        keeper, self._keeper = self._keeper, None
        if keeper is not None and not keeper.done():
            with contextlib.suppress(RuntimeError):
                keeper.cancel()

    def fast_reads(
        self,
        get: Callable[..., Awaitable[Any]],
        get_item: Callable[..., Awaitable[Any]],
        core: Any,
    ) -> dict[str, Any]:
        """`NearBackend.fast_reads` as coroutine functions."""
        hit, (value, item) = self.tracking.cache.hit, _hits(core)
        check_loop = self._check_loop

        def serving(method: Callable[..., Awaitable[Any]], answer: Any) -> Any:
            @functools.wraps(method)
            async def fast(group: Any, key: Any) -> Any:
                if type(group) is str and type(key) is str:
                    check_loop()
                    entry = hit(group, key)
                    if entry is not None:
                        return answer(entry, group, key)
                return await method(group, key)

            return fast

        return {"get": serving(get, value), "get_item": serving(get_item, item)}

    def session(self) -> AsyncSession:
        return self.inner.session()

    async def aclose(self) -> None:
        keeper = self._keeper
        self.tracking.close()
        if keeper is not None and keeper.get_loop() is asyncio.get_running_loop():
            with contextlib.suppress(asyncio.CancelledError):
                await keeper
        await asyncio.to_thread(self.tracking.release)
        await self.inner.aclose()
