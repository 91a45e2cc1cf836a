"""`on_change`: run a handler for every change, in a thread (`State`) or a task (`AsyncState`).

The common "run this when orders change" case, built on `watch`. With a consumer
group, a change is acknowledged only after the handler returned: a handler that
raises, or a process that dies mid-handler, leaves it pending, and it comes back
to this consumer after a restart or to another one after ``claim_after``. A lost
connection is logged and the watch resumes from the last change it saw, so a
server restart costs no change that is still retained.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

from .changes import Change
from .errors import BackendUnavailable

log = logging.getLogger("motia_state")

TICK_S = 0.5  # how often a subscription notices stop() while nothing happens
RETRY_S = 1.0


class Subscription(threading.Thread):
    """A daemon thread feeding changes to ``handler``; `stop` ends it."""

    def __init__(
        self,
        watch: Callable[[str | None], Iterator[Change | None]],
        handler: Callable[[Change], Any],
        ack: Callable[[Change], Any] | None,
    ) -> None:
        super().__init__(name="motia-state-on-change", daemon=True)
        self._watch = watch
        self._handler = handler
        self._ack = ack
        self._stopped = threading.Event()
        self.handled = 0

    def run(self) -> None:
        last: str | None = None
        while not self._stopped.is_set():
            try:
                for change in self._watch(last):
                    if self._stopped.is_set():
                        return
                    if change is None:
                        continue
                    if _call(self._handler, change):
                        if self._ack is not None:
                            self._ack(change)
                        self.handled += 1
                    last = change.id
            except BackendUnavailable as exc:
                log.warning("on_change: %s; retrying in %.0f s", exc, RETRY_S)
                self._stopped.wait(RETRY_S)

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


async def subscribe(
    watch: Callable[[str | None], AsyncIterator[Change | None]],
    handler: Callable[[Change], Awaitable[Any] | Any],
    ack: Callable[[Change], Awaitable[Any]] | None,
) -> None:
    """The asyncio twin of `Subscription`: run it as a task and cancel it to stop."""
    last: str | None = None
    while True:
        try:
            async for change in watch(last):
                if change is None:
                    continue
                try:
                    result = handler(change)
                    if asyncio.iscoroutine(result):
                        await result
                except Exception:
                    log.exception("on_change handler failed on %s; not acknowledged", change.id)
                    continue
                if ack is not None:
                    await ack(change)
                last = change.id
        except BackendUnavailable as exc:
            log.warning("on_change: %s; retrying in %.0f s", exc, RETRY_S)
            await asyncio.sleep(RETRY_S)
