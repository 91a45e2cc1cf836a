"""`AsyncState`: the asyncio API, method for method the same as `State`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, TypeVar

from . import connect, ops, validate
from .backends.base import AsyncBackend
from .bridge import Bridge
from .changes import Change
from .core import DEFAULT_SCAN_BATCH, Core, Plan, Transaction
from .errors import Unsupported
from .ops import GroupStats, Item
from .subscriptions import TICK_S, AsyncSubscription
from .sweeper import sweep_forever
from .watch import BATCH, AsyncWatch, Reader, group_names

R = TypeVar("R")


class AsyncState:
    """The async twin of `State`: every method is a coroutine, `iter_items` an async iterator."""

    def __init__(self, backend: AsyncBackend, core: Core) -> None:
        self._backend = backend
        self._core = core
        self._source: tuple[str | None, dict[str, Any]] | None = None
        self._sweeper: asyncio.Task[None] | None = None

    @classmethod
    def from_url(cls, url: str | None = None, **options: Any) -> AsyncState:
        state = cls(*connect.open_async(url, options))
        state._source = (url, options)
        return state

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

    async def aclose(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        await self._backend.aclose()

    async def _run(self, plan: Plan[R]) -> R:
        result = plan.finish(await self._backend.execute(plan.op))
        if plan.expiring and self._sweeper is None and self._core.cleanup_interval:
            interval = self._core.cleanup_interval
            self._sweeper = asyncio.get_running_loop().create_task(
                sweep_forever(self.cleanup, interval)
            )
        return result

    def group(self, name: str) -> AsyncGroupView:
        return AsyncGroupView(self, validate.group(name))

    async def get(self, group: str, key: str) -> Any:
        return await self._run(self._core.get(group, key))

    async def get_item(self, group: str, key: str) -> Item | None:
        return await self._run(self._core.get_item(group, key))

    async def get_many(self, group: str, keys: Iterable[str]) -> list[Any]:
        return await self._run(self._core.get_many(group, keys))

    async def get_group(self, group: str) -> list[Any]:
        return await self._run(self._core.get_group(group))

    async def items(self, group: str) -> dict[str, Any]:
        return await self._run(self._core.items(group))

    async def keys(self, group: str) -> list[str]:
        return await self._run(self._core.keys(group))

    async def iter_items(
        self, group: str, batch: int = DEFAULT_SCAN_BATCH
    ) -> AsyncIterator[tuple[str, Any]]:
        seen: set[str] = set()
        cursor = 0
        while True:
            cursor, page = await self._run(self._core.scan_page(group, cursor, batch))
            for key, value in page:
                if key not in seen:
                    seen.add(key)
                    yield key, value
            if cursor == 0:
                return

    async def set(
        self,
        group: str,
        key: str,
        value: Any,
        *,
        version: int | None = None,
        ttl: float | None = None,
    ) -> int:
        return await self._run(self._core.set(group, key, value, version, ttl))

    async def set_many(
        self, group: str, mapping: Mapping[str, Any], *, ttl: float | None = None
    ) -> int:
        return await self._run(self._core.set_many(group, mapping, ttl))

    async def delete(self, group: str, key: str, *, version: int | None = None) -> Any:
        return await self._run(self._core.delete(group, key, version))

    async def delete_many(self, group: str, keys: Iterable[str]) -> int:
        return await self._run(self._core.delete_many(group, keys))

    async def clear(self, group: str) -> int:
        return await self._run(self._core.clear(group))

    async def increment(
        self,
        group: str,
        key: str,
        by: int | float = 1,
        *,
        version: int | None = None,
        ttl: float | None = None,
    ) -> int | float:
        """Add ``by`` atomically on the server; a missing item starts at 0. Returns the new number.

        Integers stay exact across the signed 64-bit range (`IntegerOverflow` past it);
        a float makes a float. A stored value that is not a number raises `NotANumber`.
        """
        return await self._run(self._core.increment(group, key, by, version, ttl))

    async def update(
        self,
        group: str,
        key: str,
        ops: Iterable[Mapping[str, Any]],
        *,
        version: int | None = None,
        ttl: float | None = None,
    ) -> Any:
        """Apply Motia v1 UpdateOps atomically on the server; returns the new value.

        All ops apply or none does; every part of the value no op touches stays exactly
        as it was. A missing item starts as ``{}``.
        """
        return await self._run(self._core.update(group, key, ops, version, ttl))

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        """``async with state.transaction() as tx:``; see `State.transaction`."""
        tx = Transaction(self._core)
        yield tx
        if len(tx):
            tx.results = await self._run(tx.plan())

    async def ttl(self, group: str, key: str) -> float | None:
        """Seconds until the item expires; None when it has no expiry or does not exist."""
        return await self._run(self._core.ttl(group, key))

    async def expire(self, group: str, key: str, ttl: float) -> bool:
        """Give an existing item a TTL of ``ttl`` seconds; False when it does not exist."""
        return await self._run(self._core.expire(group, key, ttl))

    async def persist(self, group: str, key: str) -> bool:
        """Remove an item's expiry; True when it had one."""
        return await self._run(self._core.persist(group, key))

    async def cleanup(self) -> int:
        """Remove expired items now (they are already invisible); returns how many.

        Runs in bounded server-side batches; many processes may sweep at once and
        each item is removed, and counted, once. A background sweep also runs every
        ``cleanup_interval`` seconds once this State has given an item a TTL.
        """
        return await self._run(self._core.cleanup())

    async def list_groups(self) -> list[str]:
        return await self._run(self._core.list_groups())

    async def stats(
        self, groups: Iterable[str] | None = None
    ) -> tuple[list[GroupStats], int | None]:
        """`State.stats`."""
        if groups is None:
            return await self._run(self._core.stats(await self.list_groups(), listed=True))
        return await self._run(self._core.stats(groups))

    def watch(
        self,
        groups: str | Iterable[str] | None = None,
        *,
        since: str | Change = "$",
        block: float | None = None,
        consumer: tuple[str, str] | None = None,
        claim_after: float | None = None,
        with_values: bool = False,
        batch: int = BATCH,
    ) -> AsyncWatch:
        """`State.watch` as an async iterator (on a connection of its own, outside the
        auto-pipeline, so a blocking read holds up no other task). ``await`` it to fix its
        position at once; else the first iteration does."""
        session = self._backend.session()
        reader = Reader(
            session.layout,
            self._core.codec,
            groups=groups,
            since=since,
            consumer=consumer,
            claim_after=claim_after,
            block=block,
            with_values=with_values,
            batch=batch,
        )
        return AsyncWatch(session, reader)

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
        names = group_names(groups)

        def watch(last: str | None) -> AsyncWatch:
            return self.watch(
                names,
                since=last or since,
                block=TICK_S,
                consumer=consumer,
                claim_after=claim_after,
                with_values=with_values,
            )

        first = await watch(None)  # checks the arguments, and fixes the position now
        ack = self.ack if consumer else None
        return AsyncSubscription(first, watch, handler, ack)


class AsyncGroupView:
    def __init__(self, state: AsyncState, group: str) -> None:
        self.state = state
        self.name = group

    def __repr__(self) -> str:
        return f"AsyncGroupView({self.state!r}, {self.name!r})"

    async def get(self, key: str) -> Any:
        return await self.state.get(self.name, key)

    def watch(self, **options: Any) -> AsyncWatch:
        return self.state.watch(self.name, **options)

    async def on_change(
        self, handler: Callable[[Change], Awaitable[Any] | Any], **options: Any
    ) -> AsyncSubscription:
        return await self.state.on_change(self.name, handler, **options)

    async def get_item(self, key: str) -> Item | None:
        return await self.state.get_item(self.name, key)

    async def get_many(self, keys: Iterable[str]) -> list[Any]:
        return await self.state.get_many(self.name, keys)

    async def get_group(self) -> list[Any]:
        return await self.state.get_group(self.name)

    async def items(self) -> dict[str, Any]:
        return await self.state.items(self.name)

    async def keys(self) -> list[str]:
        return await self.state.keys(self.name)

    def iter_items(self, batch: int = DEFAULT_SCAN_BATCH) -> AsyncIterator[tuple[str, Any]]:
        return self.state.iter_items(self.name, batch)

    async def set(
        self, key: str, value: Any, *, version: int | None = None, ttl: float | None = None
    ) -> int:
        return await self.state.set(self.name, key, value, version=version, ttl=ttl)

    async def set_many(self, mapping: Mapping[str, Any], *, ttl: float | None = None) -> int:
        return await self.state.set_many(self.name, mapping, ttl=ttl)

    async def ttl(self, key: str) -> float | None:
        return await self.state.ttl(self.name, key)

    async def expire(self, key: str, ttl: float) -> bool:
        return await self.state.expire(self.name, key, ttl)

    async def persist(self, key: str) -> bool:
        return await self.state.persist(self.name, key)

    async def delete(self, key: str, *, version: int | None = None) -> Any:
        return await self.state.delete(self.name, key, version=version)

    async def delete_many(self, keys: Iterable[str]) -> int:
        return await self.state.delete_many(self.name, keys)

    async def clear(self) -> int:
        return await self.state.clear(self.name)

    async def increment(
        self, key: str, by: int | float = 1, *, version: int | None = None, ttl: float | None = None
    ) -> int | float:
        return await self.state.increment(self.name, key, by, version=version, ttl=ttl)

    async def update(
        self,
        key: str,
        ops: Iterable[Mapping[str, Any]],
        *,
        version: int | None = None,
        ttl: float | None = None,
    ) -> Any:
        return await self.state.update(self.name, key, ops, version=version, ttl=ttl)
