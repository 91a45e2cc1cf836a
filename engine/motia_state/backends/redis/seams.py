"""The Redis backend: one sans-I/O command plan, driven by a sync or an async client.

`RedisPlan` turns each `Op` into a generator that yields Redis commands and
receives their replies (or has their errors thrown in). All command building,
script handling (EVALSHA, and on NOSCRIPT: SCRIPT LOAD and retry once) and reply
decoding live there, once. `RedisBackend` and `AsyncRedisBackend` are the two
thin I/O seams: each only sends what the plan yields.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import hiredis
import redis
import redis.asyncio
import redis.asyncio.connection
import redis.connection
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    NoPermissionError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.sentinel import MasterNotFoundError

from ... import ops, watch
from ...errors import (
    BackendUnavailable,
    InvalidInput,
    OutcomeUnknown,
    PermissionDenied,
    ServerBusy,
    StateError,
    Unsupported,
)
from ...steps import At, Batch, Call, Masters, Steps
from .plan import RedisPlan

T = TypeVar("T")


def _pack(calls: Sequence[Call]) -> bytes:
    """RESP-encode commands with hiredis (redis-py's asyncio client packs in pure Python)."""
    return b"".join([hiredis.pack_command(call) for call in calls])


class NotSent(redis.ConnectionError):
    """The connection failed before the command was written: nothing reached the server."""


# Seconds to wait before each new attempt of a call that failed on the connection, while
# nothing of it reached the server or it may be re-sent (`ops.Traits.resend`).
RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0)
PEEK_AFTER_S = 0.005  # idle time after which a connection is checked for a close before use


# ACL refusals that a script's redis.call reports as a plain ERR, not NOPERM (Redis 7.0, then
# Valkey 8).
_REFUSED = ("can't run this command", "can't publish to the channel", "ACL failure in script")


# Replies that prove the command never ran: the server refused it whole, for a reason that
# passes. redis-py names some by class, but not always: an error reply read in a pipeline,
# or raised inside a script, can come as a plain ResponseError holding the code.
_PASSING = (BusyLoadingError, ClusterDownError, ReadOnlyError, TryAgainError)  # MASTERDOWN too
_PASSING_CODES = tuple(
    f"{code} " for code in ("BUSY", "NOREPLICAS", "LOADING", "READONLY", "MASTERDOWN",
                            "CLUSTERDOWN", "TRYAGAIN")
)  # fmt: skip


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` is a reply refusing a command whole (see `ServerBusy`), or a failure
    to connect because the server refused the handshake so (`NotSent` keeps it as its cause)."""
    if isinstance(exc, NotSent) and exc.__cause__ is not None:
        return refused(exc.__cause__)
    if isinstance(exc, redis.ConnectionError) and isinstance(exc.__context__, ReadOnlyError):
        return True  # redis-py's Sentinel client reports a demoted primary's READONLY so
    return isinstance(exc, _PASSING) or (
        isinstance(exc, ResponseError) and str(exc).startswith(_PASSING_CODES)
    )


def _translate(exc: RedisError, describe: str, sent: bool = True) -> StateError:
    if isinstance(exc, MasterNotFoundError):  # its text lists every Sentinel client's repr
        service = str(exc).split(" : ", 1)[0]
        exc = MasterNotFoundError(f"{service}: no Sentinel named in the URL knows it")
    cause = exc.__cause__ if isinstance(exc, NotSent) else exc
    if isinstance(cause, AuthenticationError):  # trying again cannot help
        return PermissionDenied(f"{describe}: the server refused the credentials: {cause}")
    if isinstance(cause, ResponseError) and "DB index is out of range" in str(cause):
        return InvalidInput(f"{describe}: the server has no such database ({cause})")
    if refused(exc):  # after an earlier step ran (sent), retried only if the op is idempotent
        busy = ServerBusy(f"{describe}: the server refused the call, nothing of it ran: {exc}")
        busy.sent = sent
        return busy
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        error = BackendUnavailable(f"{describe}: {exc}")
        error.sent = sent
        return error
    if isinstance(exc, NoPermissionError) or any(text in str(exc) for text in _REFUSED):
        return PermissionDenied(
            f"{describe}: {exc} (the engine's ACL user needs the commands and key patterns "
            "listed under Guarantees > ACL in the README)"
        )
    return StateError(f"{describe}: server error: {exc}")


def retry_delay(
    op: ops.Request[Any], exc: BackendUnavailable, attempt: int, plan: RedisPlan, started: float
) -> float:
    """How long to wait before sending ``op`` again after ``exc``; raises when it must not be:
    a write that may have reached the server becomes `OutcomeUnknown`. A call the server
    refused whole (`ServerBusy`) is sent again until ``plan.patience`` has passed since
    ``started``, whatever the attempt: a server loading its data takes seconds, not tries."""
    if exc.sent and not ops.traits(op).resend:
        raise OutcomeUnknown(
            f"{exc}; the write was sent but no reply came: it may or may not have been "
            "applied (read the item's version to find out)"
        ) from None
    delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
    if isinstance(exc, ServerBusy):
        if time.monotonic() - started + delay > plan.patience:
            raise exc
        return delay
    if attempt >= plan.retries:
        raise exc
    return delay


class _Driver:
    """Feeds replies (or errors) into a plan's generator until it returns."""

    __slots__ = ("error", "gen", "reply")

    def __init__(self, gen: Steps[Any]) -> None:
        self.gen = gen
        self.reply: Any = None
        self.error: ResponseError | None = None

    def next_call(self) -> Call | Batch | Masters | At:
        """The next command to send; StopIteration carries the result."""
        error, self.error = self.error, None
        return self.gen.throw(error) if error is not None else self.gen.send(self.reply)


def _step_outcome(call: Any, outcome: Any) -> tuple[bool, RedisError | None]:
    """What a step's outcome (the error it raised, or its reply: a batch's errors come in
    place) says: whether anything of it may have run, and, when nothing did because the
    server refused it whole for a reason that passes, that refusal. NOSCRIPT replies and
    SCRIPT LOAD run nothing; a WAIT that a write's batch ends with is no part of the write."""
    if isinstance(call, tuple) and not isinstance(outcome, RedisError):  # a reply: it ran,
        return call[:2] != ("SCRIPT", "LOAD"), None  # unless it only loaded a script
    if isinstance(call, Masters):
        return False, None
    if isinstance(outcome, NotSent) and not refused(outcome):
        return False, None  # never reached the server
    if isinstance(call, Batch) and isinstance(outcome, list):
        replies = [r for c, r in zip(call.calls, outcome, strict=True) if c[0] != "WAIT"]
    else:
        replies = [outcome]
    if not all(isinstance(r, NoScriptError) or refused(r) for r in replies):
        return True, None
    return False, next((r for r in replies if isinstance(r, RedisError) and refused(r)), None)


def _account(call: Any, outcome: Any, sent: bool, describe: str) -> bool:
    """Whether anything of the call may have run once this step is done (``sent``: before
    it). A step refused whole before anything ran raises `ServerBusy`: the call may be sent
    again. A refusal after an earlier step ran proves nothing about that step, so it takes
    the ordinary way."""
    if sent:  # the common case, and the hot path: only a first step can be refused whole
        return True
    ran, refusal = _step_outcome(call, outcome)
    if refusal is not None:
        raise _translate(refusal, describe, sent=False) from None
    return ran


def drive(steps: Steps[T], send: Callable[[Call | Batch | Masters | At], Any], describe: str) -> T:
    """Run a plan to its result, each step sent with ``send`` (the synchronous seams)."""
    driver = _Driver(steps)
    sent = False  # whether any step reached the server and may have run
    try:
        while True:
            try:
                call = driver.next_call()
            except StopIteration as stop:
                result: T = stop.value
                return result
            try:
                driver.reply = send(call)
            except RedisError as exc:
                sent = _account(call, exc, sent, describe)
                if not isinstance(exc, ResponseError):
                    raise
                driver.error = exc
            else:
                sent = _account(call, driver.reply, sent, describe)
    except RedisError as exc:
        raise _translate(exc, describe, sent or not isinstance(exc, NotSent)) from None


def execute_with_retries(op: ops.Request[T], run: Callable[[], T], plan: RedisPlan) -> T:
    """``run()`` the op, again after a connection failure while that is safe (`retry_delay`)."""
    attempt, started = 0, time.monotonic()
    while True:
        try:
            return run()
        except BackendUnavailable as exc:
            if isinstance(exc, OutcomeUnknown):
                raise
            delay = retry_delay(op, exc, attempt, plan, started)
        time.sleep(delay)
        attempt += 1


async def adrive(
    steps: Steps[T], send: Callable[[Call | Batch | Masters | At], Awaitable[Any]], describe: str
) -> T:
    """`drive`, awaiting each step (the asyncio seams)."""
    driver = _Driver(steps)
    sent = False  # whether any step reached the server and may have run
    try:
        while True:
            try:
                call = driver.next_call()
            except StopIteration as stop:
                result: T = stop.value
                return result
            try:
                driver.reply = await send(call)
            except RedisError as exc:
                sent = _account(call, exc, sent, describe)
                if not isinstance(exc, ResponseError):
                    raise
                driver.error = exc
            else:
                sent = _account(call, driver.reply, sent, describe)
    except RedisError as exc:
        raise _translate(exc, describe, sent or not isinstance(exc, NotSent)) from None


async def aexecute_with_retries(
    op: ops.Request[T], run: Callable[[], Awaitable[T]], plan: RedisPlan
) -> T:
    """`execute_with_retries`, awaiting."""
    attempt, started = 0, time.monotonic()
    while True:
        try:
            return await run()
        except BackendUnavailable as exc:
            if isinstance(exc, OutcomeUnknown):
                raise
            delay = retry_delay(op, exc, attempt, plan, started)
        await asyncio.sleep(delay)
        attempt += 1


ClientFactory = Callable[[], "redis.Redis"]
AsyncClientFactory = Callable[[], Awaitable["redis.asyncio.Redis"]]


class _Pin:
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


class RedisBackend:
    """Synchronous I/O seam: writes the plan's commands on a connection of this thread's own.

    redis-py's client does the connecting (URL, TLS, auth, unix sockets) and
    parsing; commands go straight to a pinned connection, skipping the pool
    checkout, retry wrapper and reply callbacks that `Redis.execute_command`
    wraps around every call.
    """

    def __init__(
        self,
        plan: RedisPlan,
        connect: ClientFactory,
        describe: str,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.plan = plan
        self.describe = describe
        self._connect = connect
        self._client: redis.Redis | None = None
        self._client_lock = threading.Lock()
        self._local = threading.local()
        self._on_close = on_close

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            with self._client_lock:  # threads share one State: create one client, not two
                if self._client is None:
                    try:
                        self._client = self._connect()
                    except RedisError as exc:
                        raise _translate(exc, self.describe, sent=False) from None
        return self._client

    def _connection(self) -> redis.connection.Connection:
        pin: _Pin | None = getattr(self._local, "pin", None)
        if pin is None or pin.pid != os.getpid():  # a forked child must not share our socket
            pin = self._local.pin = _Pin(self.client.connection_pool)
        return pin.conn

    def execute(self, op: ops.Request[T]) -> T:
        return execute_with_retries(
            op,
            lambda: self.run(self.plan.steps(op), self._connection),
            self.plan,
        )

    def run(self, steps: Steps[T], connection: Callable[[], redis.connection.Connection]) -> T:
        """Drive a plan to its result on the connection ``connection()`` gives."""
        try:
            conn = connection()
        except RedisError as exc:
            raise _translate(exc, self.describe, sent=False) from None
        return drive(steps, lambda call: _send(conn, call), self.describe)

    def session(self) -> Session:
        return Session(self)

    def close(self) -> None:
        if self._client is None:
            return
        self._local = threading.local()
        self._client.connection_pool.disconnect()
        self._client.close()
        self._client = None
        if self._on_close is not None:
            self._on_close()


def _demoted(reply: Any) -> bool:
    """Whether a reply says the server is a replica now (READONLY): its connection is then
    dropped, so that the call's next attempt connects anew, and through Sentinel to the
    promoted primary (redis-py's Sentinel client does so only for replies it parses itself)."""
    return isinstance(reply, ReadOnlyError) or (
        isinstance(reply, ResponseError) and str(reply).startswith("READONLY ")
    )


def _send(conn: redis.connection.Connection, call: Call | Batch | Masters | At) -> Any:
    if isinstance(call, Masters):
        return [None]
    if isinstance(call, At):
        call = call.call
    try:
        # Connect, and PING a connection idle past the health-check interval, before writing:
        # a failure there means the command never left, which makes it safe to send again.
        # A connection idle for a moment is also peeked at (one non-blocking read): a server
        # that restarted meanwhile has closed it, and that is found here, not after sending.
        conn.connect()
        conn.check_health()
        idle = time.monotonic() - conn.next_health_check + conn.health_check_interval
        if idle > PEEK_AFTER_S and conn.can_read(timeout=0):
            raise redis.ConnectionError("unexpected data on an idle connection")
    except RedisError as exc:
        conn.disconnect()
        raise NotSent(str(exc)) from exc
    try:
        if isinstance(call, Batch):
            conn.send_packed_command([_pack(call.calls)], check_health=False)  # chunks
            replies = [_read(conn) for _ in call.calls]
            if any(map(_demoted, replies)):
                conn.disconnect()
            return replies
        conn.send_packed_command([hiredis.pack_command(call)], check_health=False)
        return conn.read_response()
    except ResponseError as exc:
        if _demoted(exc):
            conn.disconnect()
        raise
    except BaseException:
        conn.disconnect()  # whatever was in flight, this socket's state is unknown
        raise


def _session_timeout(kwargs: dict[str, Any]) -> float:
    """A session's socket timeout: above its longest blocking read, and the configured one."""
    return max(watch.MAX_BLOCK_S + watch.SOCKET_SLACK_S, kwargs.get("socket_timeout") or 0)


class Session:
    """A connection of its own, for blocking reads (a watcher) and long-lived jobs (the bridge).

    It is made from the pool's settings (URL, TLS, auth) but never enters the pool, so a
    blocking XREAD on it holds up no other call.
    """

    def __init__(self, backend: RedisBackend) -> None:
        self.layout = backend.plan.layout
        self.plan = backend.plan
        self._backend = backend
        self._conn: redis.connection.Connection | None = None

    def _connection(self) -> redis.connection.Connection:
        if self._conn is None:
            pool = self._backend.client.connection_pool
            kwargs = dict(pool.connection_kwargs)
            kwargs["socket_timeout"] = _session_timeout(kwargs)
            self._conn = pool.connection_class(**kwargs)
        return self._conn

    def run(self, steps: Steps[T]) -> T:
        return self._backend.run(steps, self._connection)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None


# Error replies of a pipeline, returned in place so that each call is judged on its own reply
# (redis-py raises LOADING as a connection error, but it is a whole reply like any other).
_IN_PLACE = (ResponseError, BusyLoadingError)


def _read(conn: redis.connection.Connection) -> Any:
    """One reply of a pipeline; an error reply is returned in place, not raised."""
    try:
        return conn.read_response()
    except _IN_PLACE as exc:
        return exc


class _AutoPipeline:
    """Coalesces the commands that concurrent tasks issue into one pipelined write.

    Every command is queued with a future; the first one queued schedules a flush
    for the next turn of the event loop, by which time the other ready tasks have
    queued theirs. The flush writes the whole queue on one pool connection and
    hands each task its own reply or error. Each task still waits for its reply
    before its next command, so its own commands stay in order; commands of
    different tasks were never ordered. One round trip and one connection
    checkout then serve many tasks, which is what makes concurrency pay on a
    client that is busy with Python rather than waiting on the network.
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._pool = client.connection_pool
        self._queue: list[tuple[Call, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def _enqueue(self, call: Call) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._start_flush)
        self._queue.append((call, future))
        return future

    async def send(self, call: Call) -> Any:
        return await self._enqueue(call)

    async def send_many(self, calls: Sequence[Call]) -> list[Any]:
        """Commands of one plan step: queued together, so one flush writes them in order.

        Replies come back in order, an error reply in place of its result.
        """
        futures = [self._enqueue(call) for call in calls]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    async def _write(self, calls: Sequence[Call]) -> list[Any]:
        """Write ``calls`` on one pool connection and read their replies, errors in place."""
        try:  # connected and healthy before anything is written (see the sync _send)
            conn = await self._pool.get_connection()
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
            await conn.send_packed_command(_pack(calls), check_health=False)
            replies = [await _aread(conn) for _ in calls]
            if any(map(_demoted, replies)):
                await conn.disconnect()
            return replies
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await self._pool.release(conn)

    def _start_flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Ends flushes still under way (their callers are gone or get CancelledError) before
        the client closes: a flush left pending would be destroyed with its event loop."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _flush(self, batch: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._write([call for call, _ in batch])
        except Exception as exc:  # the connection failed: every waiting task gets the error
            replies = [exc] * len(batch)
        except asyncio.CancelledError:  # closed under it (aclose): no caller waits forever
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its task was cancelled meanwhile
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


def _closed_while_idle(conn: redis.asyncio.connection.AbstractConnection) -> bool:
    """The asyncio twin of the sync seam's peek (see `_send`): whether a connection idle for a
    moment has something to read, which on an idle connection means the server closed it (a
    restart). The socket itself is asked (select, nothing is consumed): the stream learns of
    the close only once the event loop has run its reader, which a busy loop may not have.
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


async def _aread(conn: redis.asyncio.connection.AbstractConnection) -> Any:
    try:
        return await conn.read_response()
    except _IN_PLACE as exc:
        return exc


class AsyncRedisBackend:
    """Asynchronous I/O seam: redis-py's asyncio client, created on first use."""

    def __init__(
        self,
        plan: RedisPlan,
        connect: AsyncClientFactory,
        describe: str,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.plan = plan
        self.describe = describe
        self._connect = connect
        self._client: redis.asyncio.Redis | None = None
        self._pipeline: _AutoPipeline | None = None
        self._on_close = on_close

    async def client(self) -> redis.asyncio.Redis:
        if self._client is None:
            try:
                self._client = await self._connect()
            except RedisError as exc:
                raise _translate(exc, self.describe, sent=False) from None
            self._pipeline = _AutoPipeline(self._client)
        return self._client

    async def _send(self, call: Call | Batch | Masters | At) -> Any:
        await self.client()
        assert self._pipeline is not None
        if isinstance(call, Masters):
            return [None]
        if isinstance(call, At):
            call = call.call
        if isinstance(call, Batch):
            return await self._pipeline.send_many(call.calls)
        return await self._pipeline.send(call)

    async def execute(self, op: ops.Request[T]) -> T:
        return await aexecute_with_retries(
            op, lambda: self.run(self.plan.steps(op), self._send), self.plan
        )

    def session(self) -> AsyncSession:
        return AsyncSession(self)

    async def run(
        self, steps: Steps[T], send: Callable[[Call | Batch | Masters | At], Awaitable[Any]]
    ) -> T:
        return await adrive(steps, send, self.describe)

    async def aclose(self) -> None:
        if self._client is None:
            return
        if self._pipeline is not None:
            await self._pipeline.aclose()
        await self._client.aclose()
        self._client = self._pipeline = None
        if self._on_close is not None:
            await self._on_close()


class AsyncSession:
    """`Session` for asyncio: a connection of its own, outside the pool and the auto-pipeline."""

    def __init__(self, backend: AsyncRedisBackend) -> None:
        self.layout = backend.plan.layout
        self.plan = backend.plan
        self._backend = backend
        self._conn: redis.asyncio.connection.AbstractConnection | None = None

    async def _send(self, call: Call | Batch | Masters | At) -> Any:
        if isinstance(call, (Masters, At)):
            raise Unsupported("a watch session sends no per-master commands")
        if self._conn is None:
            pool = (await self._backend.client()).connection_pool
            kwargs = dict(pool.connection_kwargs)
            kwargs["socket_timeout"] = _session_timeout(kwargs)
            self._conn = pool.connection_class(**kwargs)
        conn = self._conn
        calls = call.calls if isinstance(call, Batch) else (call,)
        try:
            await conn.send_packed_command(_pack(calls))
            if isinstance(call, Batch):
                return [await _aread(conn) for _ in calls]
            return await conn.read_response()
        except ResponseError:
            raise
        except BaseException:
            await conn.disconnect()
            raise

    async def run(self, steps: Steps[T]) -> T:
        return await self._backend.run(steps, self._send)

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.disconnect()
            self._conn = None
