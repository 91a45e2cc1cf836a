"""The asyncio seam for one Redis server (also behind Sentinel).

It carries out what `route` yields through an `AutoPipeline`: the commands that
concurrent tasks issue within one turn of the event loop travel together, in one
write on one pool connection. An `AsyncSession` is the same seam on a connection of
its own, for blocking reads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import redis.asyncio
from redis.exceptions import RedisError

from ... import ops
from ...capabilities import EVERY
from ...steps import Call, Steps
from . import wire
from .outcome import IN_PLACE, translate
from .plan import RedisPlan
from .route import DIRECT, IO, SEAM_ERRORS, Send, Sleep, Stepper, drive, operation

T = TypeVar("T")

AsyncClientFactory = Callable[[], Awaitable["redis.asyncio.Redis"]]


async def run_async(
    io: IO[T],
    send: Callable[[Any, tuple[Call, ...]], Awaitable[list[Any]]],
    refresh: Callable[[], Any] | None = None,
) -> T:
    """Carry out ``io``'s primitives, awaiting: the loop of every asyncio seam (``refresh``
    blocks, so it runs in a worker thread)."""
    stepper = Stepper(io)
    while (step := stepper.next()) is not None:
        try:
            if isinstance(step, Send):
                stepper.reply = await send(step.node, step.calls)
            elif isinstance(step, Sleep):
                await asyncio.sleep(step.seconds)
            elif refresh is not None:
                await asyncio.to_thread(refresh)
        except SEAM_ERRORS as exc:
            stepper.error = exc
    result: T = stepper.result
    return result


class AutoPipeline:
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
            replies = await wire.asend(self._pool, [call for call, _ in batch])
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


async def through(pipeline: AutoPipeline, calls: tuple[Call, ...]) -> list[Any]:
    """``calls`` through ``pipeline``, as `route.Send` wants them: error replies in place,
    a failed connection raised."""
    if len(calls) == 1:
        try:
            return [await pipeline.send(calls[0])]
        except IN_PLACE as exc:
            return [exc]
    replies = await pipeline.send_many(calls)
    for reply in replies:
        if isinstance(reply, BaseException) and not isinstance(reply, IN_PLACE):
            raise reply
    return replies


class AsyncRedisBackend:
    """Asynchronous I/O seam: redis-py's asyncio client, created on first use."""

    capabilities = EVERY

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
        self._pipeline: AutoPipeline | None = None
        self._on_close = on_close

    async def client(self) -> redis.asyncio.Redis:
        if self._client is None:
            try:
                self._client = await self._connect()
            except RedisError as exc:
                raise translate(exc, self.describe, sent=False) from None
            self._pipeline = AutoPipeline(self._client)
        return self._client

    async def _send(self, node: Any, calls: tuple[Call, ...]) -> list[Any]:
        if self._pipeline is None:
            await self.client()
            assert self._pipeline is not None
        return await through(self._pipeline, calls)

    async def execute(self, op: ops.Request[T]) -> T:
        return await run_async(operation(op, self.plan, DIRECT, self.describe), self._send)

    def session(self) -> AsyncSession:
        return AsyncSession(self)

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
    """`sync.Session` for asyncio: a connection of its own, outside the pool and the
    auto-pipeline."""

    def __init__(self, backend: AsyncRedisBackend) -> None:
        self.layout = backend.plan.layout
        self.plan = backend.plan
        self._backend = backend
        self._conn: wire.AsyncConnection | None = None

    async def _send(self, node: Any, calls: tuple[Call, ...]) -> list[Any]:
        if self._conn is None:
            pool = (await self._backend.client()).connection_pool
            self._conn = wire.adedicated(pool)
        return await wire.asend_on(self._conn, calls)

    async def run(self, steps: Steps[T]) -> T:
        return await run_async(drive(steps, DIRECT, self._backend.describe), self._send)

    async def aclose(self) -> None:
        if self._conn is not None:
            await wire.adisconnect(self._conn)
            self._conn = None
