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
from collections.abc import Awaitable, Callable
from typing import Any

from .aio import raise_if_cancelled
from .changes import Change
from .errors import BackendUnavailable
from .watch import AsyncWatch, Watch

log = logging.getLogger("motia_state")

TICK_S = 0.5  # how often a subscription notices stop() while nothing happens
RETRY_S = 1.0


class Subscription(threading.Thread):
    """A daemon thread feeding changes to ``handler``; `stop` ends it."""

    def __init__(
        self,
        first: Watch,
        watch: Callable[[str | None], Watch],
        handler: Callable[[Change], Any],
        ack: Callable[[Change], Any] | None,
    ) -> None:
        super().__init__(name="motia-state-on-change", daemon=True)
        self._first: Watch | None = first
        self._watch = watch
        self._handler = handler
        self._ack = ack
        self._stopped = threading.Event()
        self.handled = 0
        self.last_id: str | None = None  # where to resume after a lost connection

    def run(self) -> None:
        while not self._stopped.is_set():
            try:
                first, self._first = self._first, None
                with first or self._watch(self.last_id) as changes:
                    self._feed(changes)
            except BackendUnavailable as exc:
                log.warning("on_change: %s; retrying in %.0f s", exc, RETRY_S)
            self._stopped.wait(RETRY_S)

    def _feed(self, changes: Watch) -> None:
        """Hand changes over until stopped, or until a handler fails in a consumer group:
        then the watch is reopened, and a reopened consumer gets its pending changes first."""
        for change in changes:
            if self._stopped.is_set():
                return
            if change is None:
                continue
            if _call(self._handler, change):
                if self._ack is not None:
                    self._ack(change)
                self.handled += 1
            elif self._ack is not None:
                return
            self.last_id = change.id

    def stop(self) -> None:
        self._stopped.set()
        if self is not threading.current_thread():
            self.join(timeout=10)


def _call(handler: Callable[[Change], Any], change: Change) -> bool:
    try:
        handler(change)
    except Exception:
        log.exception("on_change handler failed on %s; not acknowledged", change.id)
        return False
    return True


class AsyncSubscription:
    """The asyncio twin of `Subscription`: a task; ``await stop()`` ends it between reads.

    Stopping by a flag rather than by cancelling the task keeps the watch's connection
    in a known state: a read is never abandoned halfway.
    """

    def __init__(
        self,
        first: AsyncWatch,
        watch: Callable[[str | None], AsyncWatch],
        handler: Callable[[Change], Awaitable[Any] | Any],
        ack: Callable[[Change], Awaitable[Any]] | None,
    ) -> None:
        self._first: AsyncWatch | None = first
        self._watch = watch
        self._handler = handler
        self._ack = ack
        self._stopped = asyncio.Event()
        self.handled = 0
        self.last_id: str | None = None
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._stopped.is_set():
            raise_if_cancelled()
            try:
                first, self._first = self._first, None
                async with first or self._watch(self.last_id) as changes:
                    await self._feed(changes)
            except BackendUnavailable as exc:
                log.warning("on_change: %s; retrying in %.0f s", exc, RETRY_S)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), RETRY_S)

    async def _feed(self, changes: AsyncWatch) -> None:
        async for change in changes:
            if self._stopped.is_set():
                return
            raise_if_cancelled()
            if change is None:
                continue
            try:
                result = self._handler(change)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("on_change handler failed on %s; not acknowledged", change.id)
                if self._ack is not None:
                    return  # reopen: the failed change comes back first
            else:
                if self._ack is not None:
                    await self._ack(change)
                self.handled += 1
            self.last_id = change.id

    async def stop(self) -> None:
        self._stopped.set()
        await self.task
