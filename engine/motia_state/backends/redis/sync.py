"""The synchronous seam for one Redis server (also behind Sentinel): blocking sockets.

It carries out what `route` yields on a connection pinned to the calling thread:
redis-py's client does the connecting (URL, TLS, auth, unix sockets) and the
parsing; commands go straight to the pinned connection, skipping the pool checkout,
retry wrapper and reply callbacks that `Redis.execute_command` wraps around every
call. A `Session` is the same seam on a connection of its own, for blocking reads.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.exceptions import RedisError

from ... import ops
from ...capabilities import EVERY
from ...steps import Call, Steps
from ..base import Shard
from . import wire
from .outcome import NotSent, translate
from .plan import RedisPlan
from .route import DIRECT, IO, SEAM_ERRORS, Send, Sleep, Stepper, drive, operation

T = TypeVar("T")


ClientFactory = Callable[[], "redis.Redis"]


def run(
    io: IO[T],
    send: Callable[[Any, tuple[Call, ...]], list[Any]],
    refresh: Callable[[], None] | None = None,
) -> T:
    """Carry out ``io``'s primitives, blocking: the loop of every synchronous seam."""
    stepper = Stepper(io)
    while (step := stepper.next()) is not None:
        try:
            if isinstance(step, Send):
                stepper.reply = send(step.node, step.calls)
            elif isinstance(step, Sleep):
                time.sleep(step.seconds)
            elif refresh is not None:
                refresh()
        except SEAM_ERRORS as exc:
            stepper.error = exc
    result: T = stepper.result
    return result


class RedisBackend:
    """Synchronous seam: the plan's commands on a connection of the calling thread's own."""

    capabilities = EVERY

    def __init__(
        self,
        plan: RedisPlan,
        connect: ClientFactory,
        describe: str,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.plan = plan
        self.describe = describe
        self._connect = connect
        self._client: redis.Redis | None = None
        self._client_lock = threading.Lock()
        self._local = threading.local()
        self._on_close = on_close

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            with self._client_lock:  # threads share one State: create one client, not two
                if self._client is None:
                    try:
                        self._client = self._connect()
                    except RedisError as exc:
                        raise translate(exc, self.describe, sent=False) from None
        return self._client

    def _send(self, node: Any, calls: tuple[Call, ...]) -> list[Any]:
        pin: wire.Pin | None = getattr(self._local, "pin", None)
        if pin is None or pin.pid != os.getpid():  # a forked child must not share our socket
            try:
                pin = self._local.pin = wire.Pin(self.client.connection_pool)
            except RedisError as exc:  # connecting: nothing was sent
                raise NotSent(str(exc)) from exc
        return wire.send(pin.conn, calls)

    def execute(self, op: ops.Request[T]) -> T:
        return run(operation(op, self.plan, DIRECT, self.describe), self._send)

    def session(self) -> Session:
        return Session(self)

    def shards(self) -> list[Shard]:
        """The one server, for the keyspace bridge; the client is this backend's own."""
        return [Shard(self.describe, None, lambda: self.client, owned=False)]

    def close(self) -> None:
        if self._client is None:
            return
        self._local = threading.local()
        wire.release_pool(self._client)
        self._client = None
        if self._on_close is not None:
            self._on_close()


class Session:
    """A connection of its own, for blocking reads (a watcher) and long-lived jobs (the bridge).

    It is made from the pool's settings (URL, TLS, auth) but never enters the pool, so a
    blocking XREAD on it holds up no other call.
    """

    def __init__(self, backend: RedisBackend) -> None:
        self.layout = backend.plan.layout
        self.plan = backend.plan
        self._backend = backend
        self._conn: wire.Connection | None = None

    def _send(self, node: Any, calls: tuple[Call, ...]) -> list[Any]:
        if self._conn is None:
            self._conn = wire.dedicated(self._backend.client.connection_pool)
        return wire.send(self._conn, calls)

    def run(self, steps: Steps[T]) -> T:
        return run(drive(steps, DIRECT, self._backend.describe), self._send)

    def close(self) -> None:
        if self._conn is not None:
            wire.disconnect(self._conn)
            self._conn = None
