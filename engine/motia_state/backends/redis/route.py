"""Everything between a plan and a socket, as sans-I/O generators: routing, accounting, retries.

A plan (`plan.RedisPlan`, the change-feed `watch.Reader`) yields what it wants
done: a command, a `Batch`, `Masters`, a command `At` one master. This layer turns
each into the seams' three primitives and decides everything else once, for every
seam, sync or asyncio, standalone or Cluster:

* `Send(node, calls)`: write these commands to this node and return their
  replies, an error reply in place of its result (a failed connection raises);
* `Sleep(seconds)`: wait before trying again;
* `Refresh()`: ask the cluster for its slot map again (it went stale).

`Direct` routes everything to the one server; `Routed` sends each command to the
master that owns its key's slot, splits batches by node, follows MOVED and ASK,
waits out TRYAGAIN, loads scripts on every master and marks the slot map stale
when a connection fails, so that the next call finds a promoted replica. `drive`
runs a plan through a router and keeps count of what may have reached the server
(`outcome.account`); `operation` runs a request, sending it again after a failure
while that is safe (`outcome.retry_delay`). A seam keeps one loop: it carries out
the primitives this layer yields (`sync.run`, `aio.run_async`).
Because nothing here does I/O, routing is unit-tested with scripted replies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import redis
from redis.exceptions import AskError, MovedError, RedisError, ResponseError, TryAgainError

from ... import ops
from ...errors import BackendUnavailable, OutcomeUnknown
from ...layout import key_slot
from ...steps import At, Batch, Call, Masters, Steps
from .outcome import NotSent, account, retry_delay, translate
from .plan import RedisPlan

log = logging.getLogger("motia_state")

T = TypeVar("T")

TRYAGAIN_S = 5.0  # how long a command refused with TRYAGAIN (mid-migration) is retried
TRYAGAIN_PAUSE_S = 0.02
# Replies that say a command was not run where it was sent: it is sent again, where they say.
REDIRECTED = (MovedError, AskError, TryAgainError)
_KEYLESS = frozenset({"SCAN", "SCRIPT", "PING", "WAIT", "ASKING", "INFO"})


@dataclass(slots=True)
class Send:
    """Write ``calls`` to ``node`` in one pipeline; the reply is their replies, in order."""

    node: Any
    calls: tuple[Call, ...]


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Refresh:
    """Connect, or ask the cluster for its slot map again, if the topology is stale
    (blocking I/O: the seam decides where it runs)."""


Primitive = Send | Sleep | Refresh
IO = Generator[Primitive, Any, T]


class Topology(Protocol):
    """Which master serves what, as far as this process knows (in memory: no I/O)."""

    @property
    def stale(self) -> bool:
        """Whether the slot map must be asked for again (`Refresh`) before it is used."""

    def mark_stale(self) -> None: ...

    def node_for(self, slot: int) -> Any: ...

    def masters(self) -> list[Any]: ...

    def node_at(self, host: str, port: int) -> Any | None: ...


def key_of(call: Call) -> bytes | str | None:
    """The key a command is routed by, or None for a keyless one."""
    name = str(call[0]).upper()
    if name in ("EVALSHA", "EVAL"):
        return call[3] if int(call[2]) > 0 else None
    if name in ("XREAD", "XREADGROUP"):
        return call[[str(a).upper() for a in call].index("STREAMS") + 1]  # type: ignore[no-any-return]
    if name in ("XGROUP", "MEMORY"):  # XGROUP CREATE <key>, MEMORY USAGE <key>
        return call[2]  # type: ignore[no-any-return]
    if name in _KEYLESS:
        return None
    return call[1]  # type: ignore[no-any-return]


def slot_of(key: bytes | str) -> int:
    return key_slot(key if isinstance(key, bytes) else str(key).encode("utf-8"))


def _single(reply: list[Any]) -> Any:
    """The reply of a one-command `Send`: an error reply is raised, as the plan expects."""
    if isinstance(reply[0], BaseException):
        raise reply[0]
    return reply[0]


class Direct:
    """One server: every step goes to it (node None)."""

    def carry(self, step: Call | Batch | Masters | At) -> IO[Any]:
        if isinstance(step, tuple):
            return _single((yield Send(None, (step,))))
        if isinstance(step, Batch):
            return (yield Send(None, step.calls))
        if isinstance(step, Masters):
            return [None]
        return _single((yield Send(None, (step.call,))))


class Routed:
    """Redis Cluster: each command to the master of its key's slot (see the module docstring)."""

    def __init__(self, topology: Topology, describe: str) -> None:
        self.topology = topology
        self.describe = describe

    def carry(self, step: Call | Batch | Masters | At) -> IO[Any]:
        if isinstance(step, tuple):
            return (yield from self._one(step))
        if isinstance(step, Batch):
            return (yield from self._batch(step))
        if isinstance(step, Masters):
            return (yield from self._masters())
        return (yield from self._on_one(step.node, step.call))

    def _fresh(self) -> IO[Topology]:
        if self.topology.stale:
            yield Refresh()
        return self.topology

    def _masters(self) -> IO[list[Any]]:
        return (yield from self._fresh()).masters()

    def _node_for(self, key: bytes | str) -> IO[Any]:
        return (yield from self._fresh()).node_for(slot_of(key))

    def _on(self, node: Any, calls: tuple[Call, ...]) -> IO[list[Any]]:
        """`Send`; a failed connection marks the slot map stale: a failover may be under way."""
        try:
            replies: list[Any] = yield Send(node, calls)
        except (redis.ConnectionError, redis.TimeoutError):
            self.topology.mark_stale()
            raise
        return replies

    def _on_one(self, node: Any, call: Call) -> IO[Any]:
        reply = (yield from self._on(node, (call,)))[0]
        if isinstance(reply, (redis.ConnectionError, redis.TimeoutError)):
            self.topology.mark_stale()  # LOADING: a restarted master
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _one(self, call: Call) -> IO[Any]:
        key = key_of(call)
        if key is None:
            masters = yield from self._masters()
            if str(call[0]).upper() == "SCRIPT":  # load everywhere: any master may run it
                replies = []
                for node in masters:
                    replies.append((yield from self._on_one(node, call)))
                return replies[0]
            return (yield from self._on_one(masters[0], call))
        deadline = time.monotonic() + TRYAGAIN_S
        while True:
            try:
                try:
                    return (yield from self._on_one((yield from self._node_for(key)), call))
                except ResponseError as exc:
                    return (yield from self._redirected(exc, call, key))
            except TryAgainError:
                # The slot is migrating and the script's keys are split between the two
                # masters: refused, not run. redis-cli moves a slot's keys in batches,
                # so this passes quickly; keep asking for a while.
                if time.monotonic() > deadline:
                    raise BackendUnavailable(
                        f"{self.describe}: slot {slot_of(key)} is migrating and its keys "
                        f"stayed split between two masters for {TRYAGAIN_S:.0f} s"
                    ) from None
                yield Sleep(TRYAGAIN_PAUSE_S)

    def _redirected(self, exc: ResponseError, call: Call, key: bytes | str) -> IO[Any]:
        """MOVED: the slot has a new owner; ASK: it is migrating. Either way, one more try;
        TRYAGAIN from the new owner goes up to `_one`."""
        if isinstance(exc, MovedError):
            self.topology.mark_stale()
            yield Refresh()
            return (yield from self._on_one((yield from self._node_for(key)), call))
        if isinstance(exc, AskError):
            node = self.topology.node_at(exc.host, int(exc.port))
            if node is None:
                self.topology.mark_stale()
                yield Refresh()
                node = self.topology.node_at(exc.host, int(exc.port))
            replies = yield from self._on(node, (("ASKING",), call))
            if isinstance(replies[1], BaseException):
                raise replies[1]
            return replies[1]
        raise exc

    def split(self, batch: Batch) -> IO[list[tuple[Any, list[int]]]]:
        """Which node gets which of ``batch``'s commands (by index, in order): each key's
        master; a keyless command (WAIT) follows the one before it."""
        parts: dict[str, tuple[Any, list[int]]] = {}
        node: Any = None
        for i, call in enumerate(batch.calls):
            key = key_of(call)
            if key is not None:
                node = yield from self._node_for(key)
            elif i == 0:
                node = (yield from self._masters())[0]
            parts.setdefault(node.name, (node, []))[1].append(i)
        return list(parts.values())

    def _batch(self, batch: Batch) -> IO[list[Any]]:
        """Each node's share pipelined to it, the replies put back in order."""
        replies: list[Any] = [None] * len(batch.calls)
        for node, indexes in (yield from self.split(batch)):
            got = yield from self._on(node, tuple(batch.calls[i] for i in indexes))
            for i, reply in zip(indexes, got, strict=True):
                replies[i] = reply
        for i, reply in enumerate(replies):
            if isinstance(reply, REDIRECTED):  # refused, not run: send it again
                try:
                    replies[i] = yield from self._one(batch.calls[i])
                except ResponseError as exc:
                    replies[i] = exc
        return replies


Router = Direct | Routed
DIRECT = Direct()


def drive(steps: Steps[T], router: Router, describe: str) -> IO[T]:
    """Run a plan to its result through ``router``, keeping count of whether anything of
    it may have reached the server (an error reply is thrown into the plan; any other
    failure becomes the typed error `outcome.translate` makes of it)."""
    sent = False  # whether any step reached the server and may have run
    reply: Any = None
    error: ResponseError | None = None
    try:
        while True:
            try:
                step = steps.throw(error) if error is not None else steps.send(reply)
            except StopIteration as stop:
                result: T = stop.value
                return result
            error = None
            try:
                if router is DIRECT and type(step) is tuple:  # the hot path: `Direct.carry`'s
                    reply = _single((yield Send(None, (step,))))  # first case, without its frame
                else:
                    reply = yield from router.carry(step)
            except BackendUnavailable as exc:  # routing gave up (TRYAGAIN, a failed refresh)
                exc.sent = exc.sent or sent  # after an earlier step ran, the outcome is unknown
                raise
            except RedisError as exc:
                sent = account(step, exc, sent, describe)
                if not isinstance(exc, ResponseError):
                    raise
                error = exc
            else:
                sent = account(step, reply, sent, describe)
    except RedisError as exc:
        raise translate(exc, describe, sent or not isinstance(exc, NotSent)) from None


def operation(op: ops.Request[T], plan: RedisPlan, router: Router, describe: str) -> IO[T]:
    """Carry out ``op``, again after a failure while that is safe (`outcome.retry_delay`)."""
    attempt, started = 0, time.monotonic()
    while True:
        try:
            return (yield from drive(plan.steps(op), router, describe))
        except BackendUnavailable as exc:
            if isinstance(exc, OutcomeUnknown):
                raise
            delay = retry_delay(op, exc, attempt, plan, started)
            if exc.sent and getattr(op, "idem", None) is not None:
                log.info(
                    "%s: no reply to a write with an idempotency key (%s); sending it again "
                    "(if it applied, its receipt answers)",
                    describe,
                    exc,
                )
        yield Sleep(delay)
        attempt += 1


class Stepper:
    """Feeds a seam's outcomes into an `IO` generator: the part of a seam's loop that
    does not depend on how it waits (``while (step := stepper.next()) is not None``)."""

    __slots__ = ("error", "io", "reply", "result")

    def __init__(self, io: IO[Any]) -> None:
        self.io = io
        self.reply: Any = None
        self.error: BaseException | None = None
        self.result: Any = None

    def next(self) -> Primitive | None:
        """The next primitive to carry out; None once the generator returned `result`."""
        error, self.error = self.error, None
        try:
            return self.io.throw(error) if error is not None else self.io.send(self.reply)
        except StopIteration as stop:
            self.result = stop.value
            return None


# What a seam hands back to the generator rather than raising: a failed send (RedisError)
# and a failed refresh (BackendUnavailable) are decided on by the layers above.
SEAM_ERRORS = (RedisError, BackendUnavailable)
