"""The change feed, live in every open page, and the rate of changes.

One `Hub` per server reads the feed (a plain watch from now on, every group) and hands each
change to every page's stream; a page that cannot keep up (its queue full) is told to reload
instead of being sent a partial picture. The hub also counts changes per second for the
last `WINDOW_S` seconds (the page's changes-per-second picture): counted from when the
server started, since the feed holds records, not a rate.

Backends without a feed (memory, file, sqlite) have no hub: the page polls, and says so.
A feed that fails (the server restarted, a failover) is read again from the last change
seen, so a page misses nothing the feed still holds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

from ..async_state import AsyncState
from ..changes import Change
from ..errors import StateError
from ..jsontext import dumps
from ..watch import AsyncWatch

log = logging.getLogger("motia_state")

WINDOW_S = 300  # seconds of rate kept
QUEUE = 2_000  # changes a page may be behind before it is told to reload
PING_S = 15.0  # an idle stream's comment line, so proxies keep it open
RETRY_S = 1.0  # after the feed failed, before reading it again
QUIET_S = 1.0  # a quiet feed's read returns this often: a feed back is seen within it


def change_json(change: Change) -> dict[str, Any]:
    return {
        "id": change.id,
        "op": (change.event or change.op) if change.op == "external" else change.op,
        "group": change.group,
        "key": change.key,
        "version": change.version,
        "ts": change.ts,
    }


def sse(event: str, data: Any) -> bytes:
    return f"event: {event}\ndata: {dumps(data)}\n\n".encode()


class Hub:
    """The one feed reader of a server and the pages it feeds."""

    def __init__(self, state: AsyncState) -> None:
        self._state = state
        self._pages: set[asyncio.Queue[bytes | None]] = set()
        # [second, changes] for the seconds that had any
        self._counts: deque[list[int]] = deque(maxlen=WINDOW_S)
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self.failing: str | None = None  # why the feed is not being read, for /api/info
        self._ending = False

    def start(self) -> None:
        self._task = asyncio.create_task(self._read(), name="motia-state ui feed")
        self._ticker = asyncio.create_task(self._tick(), name="motia-state ui rate")

    async def stop(self) -> None:
        for task in (self._task, self._ticker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for page in list(self._pages):
            self._close(page)

    async def _read(self) -> None:
        """One watch for the server's life: after a failure it reads on from its own
        position (per stream, '$' resolved when it began), so a page misses nothing the
        feed still holds and sees nothing twice, whenever the failure came."""
        watch: AsyncWatch | None = None
        since = "$"  # the last change seen: where a new watch starts, if one is needed
        try:
            while True:
                try:
                    if watch is None:
                        watch = await self._state.watch(None, since=since, block=QUIET_S)
                    change = await watch.__anext__()
                except StateError as exc:
                    self._failed(str(exc))
                    await asyncio.sleep(RETRY_S)
                    continue
                except Exception:  # a defect: logged with its stack, then a new watch
                    if self.failing is None:  # once, not every retry
                        log.exception("motia-state ui: reading the change feed failed")
                    self._failed("the change feed could not be read (see the server's log)")
                    if watch is not None:
                        with contextlib.suppress(Exception):
                            await watch.aclose()
                        watch = None
                    await asyncio.sleep(RETRY_S)
                    continue
                if self.failing is not None:
                    self.failing = None
                    log.warning("motia-state ui: the change feed is back")
                    self._publish(sse("feed", {"ok": True}))
                if change is not None:
                    since = change.id
                    self._count()
                    self._publish(sse("change", change_json(change)))
        finally:
            if watch is not None:
                await watch.aclose()

    def _failed(self, why: str) -> None:
        """The pages are told once per failure (and when its reason changes)."""
        if self.failing == why:
            return
        if self.failing is None:
            log.warning("motia-state ui: the change feed failed (%s); retrying", why)
        self.failing = why
        self._publish(sse("feed", {"ok": False, "message": why}))

    async def _tick(self) -> None:
        """Once a second: the second just ended, to every page."""
        while True:
            now = time.time()
            await asyncio.sleep(1 - now % 1)
            second = int(time.time()) - 1
            count = next((n for s, n in reversed(self._counts) if s == second), 0)
            self._publish(sse("rate", {"t": second, "count": count}))

    def _count(self) -> None:
        """One change arrived now."""
        second = int(time.time())
        if self._counts and self._counts[-1][0] == second:
            self._counts[-1][1] += 1
        else:
            self._counts.append([second, 1])

    def rate(self) -> list[list[int]]:
        """[second, changes] for each of the last `WINDOW_S` seconds, zeros included."""
        now = int(time.time())
        counts = {second: n for second, n in self._counts}
        return [[s, counts.get(s, 0)] for s in range(now - WINDOW_S + 1, now + 1)]

    def _publish(self, message: bytes) -> None:
        for page in list(self._pages):
            try:
                page.put_nowait(message)
            except asyncio.QueueFull:
                self._close(page)

    def _close(self, page: asyncio.Queue[bytes | None]) -> None:
        """Ends a page's stream: what is queued is dropped for a last ``reload``."""
        self._pages.discard(page)
        while not page.empty():
            page.get_nowait()
        page.put_nowait(sse("reload", {"reason": "this page fell behind the change feed"}))
        page.put_nowait(None)

    def end(self) -> None:
        """Ends every page's stream now (the server is shutting down)."""
        self._ending = True
        for page in list(self._pages):
            self._pages.discard(page)
            while not page.empty():
                page.get_nowait()
            page.put_nowait(None)

    async def stream(self) -> AsyncIterator[bytes]:
        page: asyncio.Queue[bytes | None] = asyncio.Queue(QUEUE)
        if self._ending:
            return
        self._pages.add(page)
        try:
            yield sse("hello", {"live": "feed"})
            while True:
                try:
                    message = await asyncio.wait_for(page.get(), PING_S)
                except asyncio.TimeoutError:
                    yield b": ping\n\n"
                    continue
                if message is None:
                    return
                yield message
        finally:
            self._pages.discard(page)


async def polled(closing: asyncio.Event) -> AsyncIterator[bytes]:
    """A poll backend's stream: it says so, then keeps the connection alive (until
    ``closing``: the server is shutting down)."""
    yield sse("hello", {"live": "poll"})
    while not closing.is_set():
        try:
            await asyncio.wait_for(closing.wait(), PING_S)
        except asyncio.TimeoutError:
            yield b": ping\n\n"
