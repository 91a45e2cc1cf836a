"""`on_change`: run a handler for every change, in a thread (`State`) or a task (`AsyncState`).

The common "run this when orders change" case, built on `watch`. With a consumer
group, a change is acknowledged only after the handler returned. A handler that
raises leaves it pending: the subscription reopens its watch a second later, and
a reopened consumer gets its pending changes first, so the change is retried. A
process that dies mid-handler gets it back when it restarts, or another consumer
takes it over after ``claim_after``. Without a consumer group, a failing change
is logged and skipped. A lost connection is logged and the watch resumes from the
last change it saw, so a server restart costs no change that is still retained.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, Generic, TypeVar

from .aio import raise_if_cancelled
from .changes import Change
from .errors import BackendUnavailable
from .watch import AsyncWatch, Watch

log = logging.getLogger("motia_state")

TICK_S = 0.5  # how often a subscription notices stop() while nothing happens
RETRY_S = 1.0

W = TypeVar("W", Watch, AsyncWatch)
A = TypeVar("A")


class Feed(Generic[W, A]):
    """What the thread and the task share: which watch to read, and what each change
    does once its handler ran. ``W``: the watch; ``A``: what ``ack`` returns."""

    def __init__(
        self,
        first: W,
        watch: Callable[[str | None], W],
        handler: Callable[[Change], Awaitable[Any] | Any],
        ack: Callable[[Change], A] | None,
    ) -> None:
        self._first: W | None = first
        self._watch: Callable[[str | None], W] = watch
        self._handler = handler
        self._ack = ack
        self.handled = 0
        self.last_id: str | None = None  # where to resume after a lost connection
        self._begin()

    def _begin(self) -> None:
        """Set up the thread, or start the task."""
        raise NotImplementedError

    def _changes(self) -> W:
        """The watch to read next: the first one, then one resuming after ``last_id``."""
        first, self._first = self._first, None
        return first or self._watch(self.last_id)

    def _done(self, change: Change, ok: bool) -> bool:
        """Count ``change`` once its handler ran (``ok``: without raising) and, ok in a
        consumer group, it was acknowledged; whether to read on. A failed
        change in a consumer group stays pending: reading stops, the watch is reopened,
        and a reopened consumer gets its pending changes first, so the change is retried."""
        if ok:
            self.handled += 1
        elif self._ack is not None:
            return False
        self.last_id = change.id
        return True


@contextlib.contextmanager
def _retried() -> Iterator[None]:
    """A lost connection is logged; the subscription reopens its watch a second later."""
    try:
        yield
    except BackendUnavailable as exc:
        log.warning("on_change: %s; retrying in %.0f s", exc, RETRY_S)


def _failed(change: Change) -> bool:
    """Log the failure of the handler on ``change``; False, the handler's outcome."""
    log.exception("on_change handler failed on %s; not acknowledged", change.id)
    return False


class Subscription(Feed[Watch, Any], threading.Thread):
    """A daemon thread feeding changes to ``handler``; `stop` ends it."""

    def _begin(self) -> None:
        threading.Thread.__init__(self, name="motia-state-on-change", daemon=True)
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            with _retried(), self._changes() as changes:
                self._feed(changes)
            self._stopped.wait(RETRY_S)

    def _feed(self, changes: Watch) -> None:
        """Hand changes over until stopped, or until `_done` says to reopen the watch."""
        for change in changes:
            if self._stopped.is_set():
                return
            if change is None:
                continue
            ok = self._call(change)
            if ok and self._ack is not None:
                self._ack(change)
            if not self._done(change, ok):
                return

    def _call(self, change: Change) -> bool:
        try:
            self._handler(change)
        except Exception:
            return _failed(change)
        return True

    def stop(self) -> None:
        self._stopped.set()
        if self is not threading.current_thread():
            self.join(timeout=10)


class AsyncSubscription(Feed[AsyncWatch, Awaitable[Any]]):
    """The asyncio twin of `Subscription`: a task; ``await stop()`` ends it between reads.

    Stopping by a flag rather than by cancelling the task keeps the watch's connection
    in a known state: a read is never abandoned halfway.
    """

    task: asyncio.Task[None]

    def _begin(self) -> None:
        self._stopped = asyncio.Event()
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._stopped.is_set():
            raise_if_cancelled()
            with _retried():
                async with self._changes() as changes:
                    await self._feed(changes)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), RETRY_S)

    async def _feed(self, changes: AsyncWatch) -> None:
        async for change in changes:
            if self._stopped.is_set():
                return
            raise_if_cancelled()
            if change is None:
                continue
            ok = await self._call(change)
            if ok and self._ack is not None:
                await self._ack(change)
            if not self._done(change, ok):
                return

    async def _call(self, change: Change) -> bool:
        try:
            result = self._handler(change)
            if inspect.isawaitable(result):
                await result
        except Exception:
            return _failed(change)
        return True

    async def stop(self) -> None:
        self._stopped.set()
        await self.task
