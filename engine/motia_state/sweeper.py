"""Background cleanup of expired items: a thread for `State`, a task for `AsyncState`.

Expired items are invisible to reads at once; sweeping only reclaims their
memory and writes their ``expire`` change records, so a failed sweep is logged
and retried at the next interval rather than raised into the caller's code.
A group that expired whole is gone on the server at its deadline; the sweep is
what writes its ``expire_group`` record (if no write to the group did first), so
while some State sweeps, that record is at most one interval late.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager

from .aio import raise_if_cancelled
from .errors import StateError

log = logging.getLogger("motia_state")


@contextmanager
def sweeping() -> Iterator[None]:
    """One background sweep: a failure is logged, and the next interval tries again."""
    try:
        yield
    except StateError as exc:
        log.warning("background cleanup failed, will retry: %s", exc)


class Sweeper(threading.Thread):
    """A daemon thread calling ``cleanup()`` every ``interval`` seconds until stopped."""

    def __init__(self, cleanup: Callable[[], int], interval: float) -> None:
        super().__init__(name="motia-state-cleanup", daemon=True)
        self._cleanup = cleanup
        self._interval = interval
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.wait(self._interval):
            with sweeping():
                self._cleanup()

    def stop(self) -> None:
        self._stopped.set()
        if self is not threading.current_thread():
            self.join(timeout=10)


async def sweep_forever(cleanup: Callable[[], Awaitable[int]], interval: float) -> None:
    """The asyncio twin of `Sweeper`: run it as a task and cancel it to stop."""
    while True:
        await asyncio.sleep(interval)
        raise_if_cancelled()
        with sweeping():
            await cleanup()
