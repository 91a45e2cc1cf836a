"""What a backend is: something that executes `ops.Request` records, sync or async; and
the two things the change feed and the keyspace bridge need from a Redis backend: a
watch session (a connection of its own that runs a sans-I/O plan) and the list of servers
to listen on (`Shard`)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from ..ops import Request
from ..steps import Steps

if TYPE_CHECKING:
    import redis

    from ..layout import KeyLayout

T = TypeVar("T")


class Session(Protocol):
    """A connection of its own for blocking reads (a watcher) and long-lived jobs (the
    bridge), running the plans of `watch.Reader` and `RedisPlan` on it."""

    @property
    def layout(self) -> KeyLayout: ...

    @property
    def plan(self) -> Any: ...

    def run(self, steps: Steps[T]) -> T: ...

    def close(self) -> None: ...


class AsyncSession(Protocol):
    @property
    def layout(self) -> KeyLayout: ...

    @property
    def plan(self) -> Any: ...

    async def run(self, steps: Steps[T]) -> T: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class Shard:
    """A server the keyspace bridge listens on: a standalone server, or one Cluster master
    with the ``slots`` it serves (their marker channels are shard channels). Two lists of
    shards compare equal while the topology is the same. ``connect`` gives a client for it;
    ``owned``: the listener closes that client when done (a standalone server's is the
    backend's own)."""

    name: str
    slots: tuple[int, ...] | None
    connect: Callable[[], redis.Redis] = field(compare=False)
    owned: bool = field(default=True, compare=False)


@runtime_checkable
class Servers(Protocol):
    """A backend whose servers the keyspace bridge can listen on."""

    def shards(self) -> list[Shard]: ...


class Backend(Protocol):
    """A synchronous backend. ``describe`` is safe to log: it never holds a password.
    ``capabilities``: what it can do beyond plain items (`motia_state.capabilities`)."""

    describe: str
    capabilities: frozenset[str]

    def execute(self, op: Request[T]) -> T: ...

    def close(self) -> None: ...

    def session(self) -> Session:
        """A connection of its own for the change feed; `Unsupported` where there is no feed."""


class AsyncBackend(Protocol):
    describe: str
    capabilities: frozenset[str]

    async def execute(self, op: Request[T]) -> T: ...

    async def aclose(self) -> None: ...

    def session(self) -> AsyncSession: ...


class AsyncOverSync:
    """Serves an in-process backend to `AsyncState`.

    ``threaded`` backends block on disk and locks, so they run in a worker
    thread; pure in-memory ones are quicker to call directly.
    """

    def __init__(self, backend: Backend, *, threaded: bool) -> None:
        self._backend = backend
        self._threaded = threaded
        self.describe = backend.describe
        self.capabilities = backend.capabilities

    async def execute(self, op: Request[T]) -> T:
        if self._threaded:
            return await asyncio.to_thread(self._backend.execute, op)
        return self._backend.execute(op)

    async def aclose(self) -> None:
        self._backend.close()

    def session(self) -> AsyncSession:
        return SessionInThreads(self._backend.session())


class SessionInThreads:
    """A synchronous backend's watch session, driven from asyncio through worker threads."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.layout = session.layout
        self.plan = session.plan

    async def run(self, steps: Steps[T]) -> T:
        return await asyncio.to_thread(self._session.run, steps)

    async def aclose(self) -> None:
        await asyncio.to_thread(self._session.close)
