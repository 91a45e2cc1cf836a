"""What a backend is: something that executes `Op` records, sync or async."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol, TypeVar

from ..ops import Request

T = TypeVar("T")


class Backend(Protocol):
    """A synchronous backend. ``describe`` is safe to log: it never holds a password."""

    describe: str

    def execute(self, op: Request[T]) -> T: ...

    def close(self) -> None: ...

    def session(self) -> Any:
        """A connection of its own for the change feed; `Unsupported` where there is no feed."""


class AsyncBackend(Protocol):
    describe: str

    async def execute(self, op: Request[T]) -> T: ...

    async def aclose(self) -> None: ...

    def session(self) -> Any: ...


class AsyncOverSync:
    """Serves an in-process backend to `AsyncState`.

    ``threaded`` backends block on disk and locks, so they run in a worker
    thread; pure in-memory ones are quicker to call directly.
    """

    def __init__(self, backend: Backend, *, threaded: bool) -> None:
        self._backend = backend
        self._threaded = threaded
        self.describe = backend.describe

    async def execute(self, op: Request[T]) -> T:
        if self._threaded:
            return await asyncio.to_thread(self._backend.execute, op)
        return self._backend.execute(op)

    async def aclose(self) -> None:
        self._backend.close()

    def session(self) -> Any:
        return SessionInThreads(self._backend.session())


class SessionInThreads:
    """A synchronous backend's watch session, driven from asyncio through worker threads."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self.layout = session.layout
        self.plan = session.plan

    async def run(self, steps: Any) -> Any:
        return await asyncio.to_thread(self._session.run, steps)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._session.close)
