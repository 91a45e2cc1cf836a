"""Async States driven from synchronous test code, so a contract test is written once and
runs unchanged through `State` and through `AsyncState`."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any, cast

from ..async_state import AsyncGroupView
from ..subscriptions import AsyncSubscription
from ..typed import AsyncTypedGroupView, AsyncTypedWatch
from ..watch import AsyncWatch


class Blocking:
    """Drives an `AsyncState` (or a view of one) from synchronous test code.

    Every coroutine is run to completion on one private event loop, async
    iterators are drained item by item, so a contract test written once runs
    unchanged against the async API.
    """

    def __init__(self, target: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._target = target
        self._loop = loop

    def __repr__(self) -> str:
        return f"Blocking({self._target!r})"

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._target, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            if inspect.iscoroutine(result):
                result = self._loop.run_until_complete(result)
                if isinstance(result, AsyncSubscription):
                    return BlockingSubscription(result, self._loop)
                return result
            if isinstance(result, (AsyncWatch, AsyncTypedWatch)):
                started = self._loop.run_until_complete(result._start())
                return BlockingWatch(cast("AsyncWatch | AsyncTypedWatch[Any]", started), self._loop)
            if isinstance(result, AsyncIterator):
                return self._drain(result)
            if isinstance(result, (AsyncGroupView, AsyncTypedGroupView)):
                return Blocking(result, self._loop)
            if hasattr(result, "__aenter__"):
                return self._context(result)
            return result

        return call

    @contextlib.contextmanager
    def _context(self, manager: Any) -> Iterator[Any]:
        value = self._loop.run_until_complete(manager.__aenter__())
        try:
            yield value
        except BaseException as exc:
            if not self._loop.run_until_complete(manager.__aexit__(type(exc), exc, None)):
                raise
        else:
            self._loop.run_until_complete(manager.__aexit__(None, None, None))

    def _drain(self, iterator: AsyncIterator[Any]) -> Iterator[Any]:
        while True:
            try:
                yield self._loop.run_until_complete(iterator.__anext__())
            except StopAsyncIteration:
                return

    def close(self) -> None:
        self._loop.run_until_complete(self._target.aclose())

    def pause(self, seconds: float) -> None:
        """Sleep with the event loop running, so background tasks (the sweeper) get to run."""
        self._loop.run_until_complete(asyncio.sleep(seconds))


class BlockingWatch:
    """`AsyncWatch` (or a typed view's) driven from synchronous code, like
    `motia_state.watch.Watch`."""

    def __init__(
        self, watch: AsyncWatch | AsyncTypedWatch[Any], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._watch = watch
        self._loop = loop

    def __iter__(self) -> BlockingWatch:
        return self

    def __next__(self) -> Any:
        return self._loop.run_until_complete(self._watch.__anext__())

    def close(self) -> None:
        self._loop.run_until_complete(self._watch.aclose())

    def __enter__(self) -> BlockingWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BlockingSubscription:
    """An `AsyncState.on_change` subscription, stopped like a `Subscription` thread."""

    def __init__(self, subscription: AsyncSubscription, loop: asyncio.AbstractEventLoop) -> None:
        self._subscription = subscription
        self._loop = loop

    def stop(self) -> None:
        self._loop.run_until_complete(self._subscription.stop())


def settle(state: Any, seconds: float) -> None:
    """Let time pass; for an async state, with its event loop running its tasks."""
    if isinstance(state, Blocking):
        state.pause(seconds)
    else:
        time.sleep(seconds)
