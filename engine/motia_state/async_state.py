"""`AsyncState`: the asyncio API, method for method the same as `State` (see `facade`)."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar, overload

from . import barrier as barriers
from . import config, connect, ops, validate
from . import query as queries
from .backends.base import AsyncBackend
from .backends.redis.tracking import AsyncNearBackend
from .barrier import BarrierState
from .bridge import Bridge
from .cache import CacheStats
from .changes import Change
from .core import DEFAULT_SCAN_BATCH, Core, GroupOperations, Plan, drive_async
from .errors import DecodeError, Unsupported
from .facade import Async, AsyncView, Facade, Transaction
from .history import DEFAULT_LIMIT as HISTORY_LIMIT
from .history import History
from .layout import KeyLayout
from .ops import GroupStats
from .query import KeyPage, Page
from .subscriptions import AsyncSubscription
from .sweeper import sweep_forever
from .typed import AsyncTypedGroupView
from .watch import AsyncWatch, Reader, Records

R = TypeVar("R")
M = TypeVar("M")


class AsyncState(Facade[AsyncWatch], Async):
    """The async twin of `State`: every method is a coroutine, `iter_items` an async iterator."""

    _backend: AsyncBackend

    def __init__(self, backend: AsyncBackend, core: Core) -> None:
        self._backend = backend
        self._core = core
        self._source: tuple[str | None, dict[str, Any]] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        if isinstance(backend, AsyncNearBackend):  # near-cache hits served before a plan
            vars(self).update(backend.fast_reads(self.get, self.get_item, core))

    @classmethod
    def from_url(cls, url: str | None = None, **options: Any) -> AsyncState:
        state = cls(*connect.open_async(url, options))
        state._source = (url, options)
        return state

    @classmethod
    def from_config(
        cls, path: str | os.PathLike[str] | None = None, **overrides: Any
    ) -> AsyncState:
        """`from_url` as the ``state:`` section of a YAML file says (Motia's config.yml:
        ``adapter``, ``host``, ``port``, ``password``, ``ttl``, any `from_url` option, and
        ``${VAR}`` from the environment; see `config`). ``path``: else the file named by
        MOTIA_STATE_CONFIG, else ./config.yml. Keyword arguments win over the file's keys."""
        found = config.load(path, overrides)
        return cls.from_url(found.url, **found.options)

    async def track(self) -> Bridge:
        """`State.track`: the bridge runs in a thread with connections of its own."""
        self._backend.session()  # Unsupported where there is no feed
        if self._source is None:
            raise Unsupported("track() needs an AsyncState made by AsyncState.from_url")
        url, options = self._source
        bridge = await asyncio.to_thread(Bridge.from_url, url, **options)
        return await asyncio.to_thread(bridge.start)

    def __repr__(self) -> str:
        return f"AsyncState({self._backend.describe!r})"

    async def __aenter__(self) -> AsyncState:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def capabilities(self) -> frozenset[str]:
        """`State.capabilities`."""
        return self._backend.capabilities

    def cache_stats(self) -> CacheStats | None:
        """`State.cache_stats` (not a coroutine: it reads counters in memory)."""
        backend = self._backend
        return backend.tracking.stats() if isinstance(backend, AsyncNearBackend) else None

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self._backend.aclose()

    async def _run(self, plan: Plan[R]) -> R:
        raw = await self._backend.execute(plan.op)
        try:
            result = plan.finish(raw)
        except DecodeError:
            if plan.fallback is None:
                raise
            return await self._run(plan.fallback)
        if plan.expiring and self._sweeper is None and self._core.cleanup_interval:
            self._start_sweeper(self._core.cleanup_interval)
        return result

    def _start_sweeper(self, interval: float) -> None:
        loop = asyncio.get_running_loop()
        self._sweeper = loop.create_task(sweep_forever(self.cleanup, interval))

    @overload
    def group(self, name: str, *, ttl: float | None = None) -> AsyncGroupView: ...
    @overload
    def group(
        self, name: str, *, model: type[M], ttl: float | None = None
    ) -> AsyncTypedGroupView[M]: ...
    def group(
        self, name: str, *, model: type[M] | None = None, ttl: float | None = None
    ) -> AsyncGroupView | AsyncTypedGroupView[M]:
        """`State.group`: with ``model``, an `AsyncTypedGroupView`; with ``ttl``, a trace
        scope whose every write moves the whole group's expiry."""
        state = self if ttl is None else _AsyncSliding(self, self._core.sliding(ttl))
        view = AsyncGroupView(state, validate.group(name))
        return view if model is None else AsyncTypedGroupView(view, model)

    async def iter_items(
        self, group: str, batch: int = DEFAULT_SCAN_BATCH
    ) -> AsyncIterator[tuple[str, Any]]:
        """`State.iter_items` as an async iterator."""
        scan = self._core.scan(group, batch)
        while (plan := scan.next_page()) is not None:
            for item in await self._run(plan):
                yield item

    async def query(
        self,
        group: str,
        where: object = None,
        *,
        order_by: str | Sequence[str] | None = None,
        descending: bool = False,
        limit: int = queries.DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """`State.query`."""
        plans = queries.steps(self._core, group, where, order_by, descending, limit, cursor)
        return await drive_async(plans, self._run)

    async def list_keys(
        self, group: str, *, cursor: str | None = None, count: int = 1000
    ) -> KeyPage:
        """`State.list_keys`."""
        return await drive_async(queries.key_page(self._core, group, cursor, count), self._run)

    async def count(self, group: str, where: object = None) -> int:
        """`State.count`."""
        return await drive_async(queries.counting(self._core, group, where), self._run)

    async def barrier(
        self,
        group: str,
        key: str,
        *,
        parties: int,
        arrival: str,
        data: Any = None,
        ttl: float | None = None,
    ) -> BarrierState:
        """`State.barrier`."""
        steps = barriers.arrive(
            self._core, group, key, parties=parties, arrival=arrival, data=data, ttl=ttl
        )
        barriers.need_versions(self.capabilities, self._backend.describe, "barrier")
        return await barriers.drive_async(steps, self._run)

    async def barrier_state(self, group: str, key: str) -> BarrierState | None:
        """`State.barrier_state`."""
        return await barriers.drive_async(barriers.read(self._core, group, key), self._run)

    async def reset_barrier(self, group: str, key: str) -> BarrierState | None:
        """`State.reset_barrier`."""
        steps = barriers.reset(self._core, group, key)
        barriers.need_versions(self.capabilities, self._backend.describe, "reset_barrier")
        return await barriers.drive_async(steps, self._run)

    @asynccontextmanager
    async def transaction(
        self, *, idempotency_key: str | None = None
    ) -> AsyncIterator[Transaction]:
        """``async with state.transaction() as tx:``; see `State.transaction`."""
        tx = Transaction(self._core, idempotency_key)
        yield tx
        if len(tx):
            tx.results = await self._run(tx.plan())

    async def stats(
        self, groups: Iterable[str] | None = None
    ) -> tuple[list[GroupStats], int | None]:
        """`State.stats`."""
        if groups is None:
            return await self._run(self._core.stats(await self.list_groups(), listed=True))
        return await self._run(self._core.stats(groups))

    def _watching(self, reader: Callable[[KeyLayout], Reader]) -> AsyncWatch:
        session = self._backend.session()
        return AsyncWatch(session, reader(session.layout))

    async def history(
        self, group: str, key: str, *, limit: int = HISTORY_LIMIT, before: str | None = None
    ) -> History:
        """`State.history`."""
        steps = self._history(group, key, limit, before)
        session = self._backend.session()
        try:
            return await session.run(steps(session.layout))
        finally:
            await session.aclose()

    async def ack(self, *changes: Change) -> int:
        return await self._backend.execute(ops.Ack(changes)) if changes else 0

    async def on_change(
        self,
        groups: str | Iterable[str] | None,
        handler: Callable[[Change], Awaitable[Any] | Any],
        *,
        consumer: tuple[str, str] | None = None,
        claim_after: float | None = None,
        since: str = "$",
        with_values: bool = False,
    ) -> AsyncSubscription:
        """`State.on_change` as a task started now (the handler may be a coroutine function);
        ``await subscription.stop()`` ends it."""
        watch = self._reopener(groups, since, consumer, claim_after, with_values)
        first = await watch(None)  # checks the arguments, and fixes the position now
        return AsyncSubscription(first, watch, handler, self.ack if consumer else None)

    async def on_event(
        self,
        topics: str | Iterable[str] | None,
        handler: Callable[[Change], Awaitable[Any] | Any],
        *,
        consumer: tuple[str, str] | None = None,
        claim_after: float | None = None,
        since: str = "$",
        groups: str | Iterable[str] | None = None,
    ) -> AsyncSubscription:
        """`State.on_event` as a task started now (the handler may be a coroutine function);
        ``await subscription.stop()`` ends it."""
        watch = self._reopener(groups, since, consumer, claim_after, False, Records.EVENTS, topics)
        first = await watch(None)  # checks the arguments, and fixes the position now
        return AsyncSubscription(first, watch, handler, self.ack if consumer else None)


class AsyncGroupView(GroupOperations, AsyncView[AsyncState]):
    def watch(self, **options: Any) -> AsyncWatch:
        return self.state.watch(self.name, **options)

    async def on_change(
        self, handler: Callable[[Change], Awaitable[Any] | Any], **options: Any
    ) -> AsyncSubscription:
        return await self.state.on_change(self.name, handler, **options)

    async def query(
        self,
        where: object = None,
        *,
        order_by: str | Sequence[str] | None = None,
        descending: bool = False,
        limit: int = queries.DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """`State.query` of this group."""
        return await self.state.query(
            self.name,
            where,
            order_by=order_by,
            descending=descending,
            limit=limit,
            cursor=cursor,
        )

    async def list_keys(self, *, cursor: str | None = None, count: int = 1000) -> KeyPage:
        """`State.list_keys` of this group."""
        return await self.state.list_keys(self.name, cursor=cursor, count=count)

    async def count(self, where: object = None) -> int:
        """`State.count` of this group."""
        return await self.state.count(self.name, where)

    def iter_items(self, batch: int = DEFAULT_SCAN_BATCH) -> AsyncIterator[tuple[str, Any]]:
        return self.state.iter_items(self.name, batch)

    async def barrier(
        self,
        key: str,
        *,
        parties: int,
        arrival: str,
        data: Any = None,
        ttl: float | None = None,
    ) -> BarrierState:
        """`GroupView.barrier`."""
        return await self.state.barrier(
            self.name, key, parties=parties, arrival=arrival, data=data, ttl=ttl
        )

    async def barrier_state(self, key: str) -> BarrierState | None:
        return await self.state.barrier_state(self.name, key)

    async def history(
        self, key: str, *, limit: int = HISTORY_LIMIT, before: str | None = None
    ) -> History:
        """`State.history` of an item of this group."""
        return await self.state.history(self.name, key, limit=limit, before=before)

    async def reset_barrier(self, key: str) -> BarrierState | None:
        return await self.state.reset_barrier(self.name, key)


class _AsyncSliding(AsyncState):
    """`state._Sliding` for `AsyncState`: what a ``ttl=`` group view runs on."""

    def __init__(self, state: AsyncState, core: Core) -> None:
        vars(self).update(vars(state))
        self._core = core
        self._owner = state

    async def _run(self, plan: Plan[R]) -> R:
        return await self._owner._run(plan)

    async def aclose(self) -> None:
        pass
