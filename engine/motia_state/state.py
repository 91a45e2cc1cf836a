"""`State`: the synchronous API. Its operations are declared once, in `core` (see `facade`)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar, overload

from . import barrier as barriers
from . import config, connect, ops, validate
from . import query as queries
from .backends.base import Backend
from .backends.redis.tracking import NearBackend
from .barrier import BarrierState
from .bridge import Bridge
from .cache import CacheStats
from .changes import Change
from .core import DEFAULT_SCAN_BATCH, Core, GroupOperations, Plan, drive
from .errors import DecodeError
from .facade import Facade, Sync, SyncView, Transaction
from .history import DEFAULT_LIMIT as HISTORY_LIMIT
from .history import History
from .layout import KeyLayout
from .ops import GroupStats
from .query import KeyPage, Page
from .subscriptions import Subscription
from .sweeper import Sweeper
from .typed import TypedGroupView
from .watch import Reader, Records, Watch

R = TypeVar("R")
M = TypeVar("M")


class State(Facade[Watch], Sync):
    """Motia-style state: groups of keyed items, every write atomic and versioned.

    Create it with `State.from_url`; close it (or use ``with``) to release the
    connection and, for ``embedded://``, the server.
    """

    _backend: Backend

    def __init__(self, backend: Backend, core: Core) -> None:
        self._backend = backend
        self._core = core
        self._sweeper: Sweeper | None = None
        self._sweeper_lock = threading.Lock()
        if isinstance(backend, NearBackend):  # near-cache hits served before a plan is built
            vars(self).update(backend.fast_reads(self.get, self.get_item, core))

    @classmethod
    def from_url(cls, url: str | None = None, **options: Any) -> State:
        return cls(*connect.open_sync(url, options))

    @classmethod
    def from_config(cls, path: str | os.PathLike[str] | None = None, **overrides: Any) -> State:
        """`from_url` as the ``state:`` section of a YAML file says (Motia's config.yml:
        ``adapter``, ``host``, ``port``, ``password``, ``ttl``, any `from_url` option, and
        ``${VAR}`` from the environment; see `config`). ``path``: else the file named by
        MOTIA_STATE_CONFIG, else ./config.yml. Keyword arguments win over the file's keys."""
        found = config.load(path, overrides)
        return cls.from_url(found.url, **found.options)

    def track(self) -> Bridge:
        """Start the keyspace bridge in this process (a daemon thread; ``stop()`` ends it):
        changes other tools make to the data hashes become ``external`` feed records.
        Run one per server (more stand by); ``motia-state track`` runs it on its own."""
        return Bridge(self._backend).start()

    def __repr__(self) -> str:
        return f"State({self._backend.describe!r})"

    def __enter__(self) -> State:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def capabilities(self) -> frozenset[str]:
        """What this backend can do beyond plain items: some of ``"versions"``, ``"ttl"``,
        ``"transactions"``, ``"feed"`` (`motia_state.capabilities`). A call that needs one
        it lacks raises `Unsupported` naming it, so code can ask first instead."""
        return self._backend.capabilities

    def cache_stats(self) -> CacheStats | None:
        """The near cache's counters (see the ``cache=`` option), or None without one."""
        return self._backend.tracking.stats() if isinstance(self._backend, NearBackend) else None

    def close(self) -> None:
        with self._sweeper_lock:
            if self._sweeper is not None:
                self._sweeper.stop()
                self._sweeper = None
        self._backend.close()

    def _run(self, plan: Plan[R]) -> R:
        raw = self._backend.execute(plan.op)
        try:
            result = plan.finish(raw)
        except DecodeError:
            if plan.fallback is None:
                raise
            return self._run(plan.fallback)
        if plan.expiring and self._sweeper is None and self._core.cleanup_interval:
            self._start_sweeper(self._core.cleanup_interval)
        return result

    def _start_sweeper(self, interval: float) -> None:
        with self._sweeper_lock:
            if self._sweeper is None:
                self._sweeper = Sweeper(self.cleanup, interval)
                self._sweeper.start()

    @overload
    def group(self, name: str, *, ttl: float | None = None) -> GroupView: ...
    @overload
    def group(
        self, name: str, *, model: type[M], ttl: float | None = None
    ) -> TypedGroupView[M]: ...
    def group(
        self, name: str, *, model: type[M] | None = None, ttl: float | None = None
    ) -> GroupView | TypedGroupView[M]:
        """A view bound to one group: the same methods without the group argument. With
        ``model`` (a pydantic model, a dataclass or a TypedDict; needs the ``typed`` extra),
        a `TypedGroupView` whose values are that model. With ``ttl`` (seconds), a trace
        scope: every write through the view also moves the whole group's expiry to ``ttl``
        seconds from now, in the same atomic call (see `expire_group`)."""
        state = self if ttl is None else _Sliding(self, self._core.sliding(ttl))
        view = GroupView(state, validate.group(name))
        return view if model is None else TypedGroupView(view, model)

    def iter_items(self, group: str, batch: int = DEFAULT_SCAN_BATCH) -> Iterator[tuple[str, Any]]:
        """Stream a group too large for one reply, ``batch`` items per round trip.

        Each item present for the whole iteration is yielded exactly once; items
        written or deleted meanwhile may or may not appear.
        """
        scan = self._core.scan(group, batch)
        while (plan := scan.next_page()) is not None:
            yield from self._run(plan)

    def query(
        self,
        group: str,
        where: object = None,
        *,
        order_by: str | Sequence[str] | None = None,
        descending: bool = False,
        limit: int = queries.DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """Items of ``group`` matching ``where``, ``limit`` at a time: a `Page` of items
        (key, value, version, expires_at) and the ``cursor`` of the next page (None: no more).

        ``where``: a predicate built with `F` (``(F("status") == "paid") & (F("total") > 100)``),
        Motia v0's filter dicts (``{"valueKey": "status", "operation": "eq", "value": "paid"}``,
        a list of them: all must hold), or ``{"and"|"or": [...]}``, ``{"not": ...}`` around
        them; None: every item. On Redis it is evaluated in the server over HSCAN pages, each
        call bounded, and only matches cross the network. Without ``order_by`` items come in
        the hash's order, and a cursor resumes where the last page ended (HSCAN's guarantee:
        an item present throughout comes back, once unless the hash was rehashed meanwhile).
        ``order_by`` (a path): the first ``limit`` items by that value (numbers, then strings,
        then the rest; ties by key; ``descending=True`` reverses values), reading the whole
        group and keeping a heap of ``limit`` in the client; its cursor resumes after the
        last item returned."""
        plans = queries.steps(self._core, group, where, order_by, descending, limit, cursor)
        return drive(plans, self._run)

    def list_keys(self, group: str, *, cursor: str | None = None, count: int = 1000) -> KeyPage:
        """One page of ``group``'s keys, about ``count`` of them, and the ``cursor`` of the
        next (None: no more): HSCAN's guarantees (a key present throughout comes back, once
        unless the hash was rehashed meanwhile); values are not decoded."""
        return drive(queries.key_page(self._core, group, cursor, count), self._run)

    def count(self, group: str, where: object = None) -> int:
        """How many items of ``group`` match ``where`` (see `query`): counted in the server,
        page by page, on Redis."""
        return drive(queries.counting(self._core, group, where), self._run)

    def barrier(
        self,
        group: str,
        key: str,
        *,
        parties: int,
        arrival: str,
        data: Any = None,
        ttl: float | None = None,
    ) -> BarrierState:
        """Arrive at the fan-in barrier ``group``/``key`` as ``arrival``: once ``parties``
        distinct arrivals are recorded, the one that completed it gets ``released=True``
        (start the join there), and no other arrival ever does.

        Idempotent per arrival name, for steps run at least once: a retry counts once, its
        ``data`` does not replace the first, and it gets the first answer again (``released``
        included). An arrival after completion is recorded nowhere: complete, not released,
        and absent from ``data``. The item may be given a ``ttl`` as `set` gives one (each
        arrival that records itself sets it anew). Needs the ``versions`` capability; see
        `motia_state.barrier` for the stored layout and `reset_barrier` to use it again."""
        steps = barriers.arrive(
            self._core, group, key, parties=parties, arrival=arrival, data=data, ttl=ttl
        )
        barriers.need_versions(self.capabilities, self._backend.describe, "barrier")
        return barriers.drive(steps, self._run)

    def barrier_state(self, group: str, key: str) -> BarrierState | None:
        """The barrier ``group``/``key`` as stored (None when there is none), without
        arriving: the joining step reads its parties' data here. ``released`` is False."""
        return barriers.drive(barriers.read(self._core, group, key), self._run)

    def reset_barrier(self, group: str, key: str) -> BarrierState | None:
        """Remove the barrier, complete or not, so its key starts a new one; returns what it
        held (None when there was none). An arrival that lands before the reset goes with
        it; one after starts the new use (a late retry of an old arrival included)."""
        steps = barriers.reset(self._core, group, key)
        barriers.need_versions(self.capabilities, self._backend.describe, "reset_barrier")
        return barriers.drive(steps, self._run)

    @contextmanager
    def transaction(self, *, idempotency_key: str | None = None) -> Iterator[Transaction]:
        """Collect set/delete/increment/update ops; commit them as ONE server call on exit.

        All or nothing: a failed ``version=`` condition raises `VersionConflict`
        naming every failing op, and nothing applies. Ops apply in order and see
        each other's effects. An exception inside the block sends nothing.
        ``tx.results`` holds each op's result afterwards. ``idempotency_key``: the
        transaction applies once; a repeat gets the first one's results.
        """
        tx = Transaction(self._core, idempotency_key)
        yield tx
        if len(tx):
            tx.results = self._run(tx.plan())

    def stats(self, groups: Iterable[str] | None = None) -> tuple[list[GroupStats], int | None]:
        """Per group (default: every group): items, items with a TTL, bytes in Redis and
        change records; plus the length of the change stream where every group shares one
        (standalone Redis). For operators (``motia-state stats``): one round trip per group."""
        if groups is None:
            return self._run(self._core.stats(self.list_groups(), listed=True))
        return self._run(self._core.stats(groups))

    def _watching(self, reader: Callable[[KeyLayout], Reader]) -> Watch:
        session = self._backend.session()
        return Watch(session, reader(session.layout))

    def history(
        self, group: str, key: str, *, limit: int = HISTORY_LIMIT, before: str | None = None
    ) -> History:
        """What happened to an item lately, newest first, from the change feed: its own
        records and its group's whole-group ones (``clear``, a group expiry, an outside
        tool's ``del``), with the values writers recorded (``record_values``). Up to
        ``limit`` records; pass the result's ``cursor`` as ``before`` for older ones. One
        call looks at 10,000 records of the feed at most (the cursor goes on from there, so
        an item quiet for long may need several calls). Needs a change feed (a Redis
        backend); reads on a connection of its own."""
        steps = self._history(group, key, limit, before)
        session = self._backend.session()
        try:
            return session.run(steps(session.layout))
        finally:
            session.close()

    def ack(self, *changes: Change) -> int:
        """Acknowledge changes read with ``consumer=``; returns how many were pending."""
        return self._backend.execute(ops.Ack(changes)) if changes else 0

    def on_change(
        self,
        groups: str | Iterable[str] | None,
        handler: Callable[[Change], Any],
        *,
        consumer: tuple[str, str] | None = None,
        claim_after: float | None = None,
        since: str = "$",
        with_values: bool = False,
    ) -> Subscription:
        """Call ``handler(change)`` for every change of ``groups``, in a background thread.

        With ``consumer``, each change is acknowledged after the handler returns; one
        that raises stays pending (logged), for a restart or for ``claim_after``. A lost
        connection is logged and retried. Returns the started thread; ``stop()`` ends it.
        """
        watch = self._reopener(groups, since, consumer, claim_after, with_values)
        first = watch(None)  # checks the arguments, and fixes the position now
        subscription = Subscription(first, watch, handler, self.ack if consumer else None)
        subscription.start()
        return subscription

    def on_event(
        self,
        topics: str | Iterable[str] | None,
        handler: Callable[[Change], Any],
        *,
        consumer: tuple[str, str] | None = None,
        claim_after: float | None = None,
        since: str = "$",
        groups: str | Iterable[str] | None = None,
    ) -> Subscription:
        """`on_change` for the events transactions emitted on ``topics`` (None: every topic;
        see `events`): ``handler(event)`` in a background thread. With ``consumer``, each
        event is acknowledged after the handler returns; one that raises stays pending, for a
        restart or for ``claim_after``: at least once, so deduplicate by ``event.event_id``.
        """
        watch = self._reopener(groups, since, consumer, claim_after, False, Records.EVENTS, topics)
        first = watch(None)  # checks the arguments, and fixes the position now
        subscription = Subscription(first, watch, handler, self.ack if consumer else None)
        subscription.start()
        return subscription


class GroupView(GroupOperations, SyncView[State]):
    """`State` bound to one group (also the per-trace scope of Motia's older docs)."""

    def watch(self, **options: Any) -> Watch:
        """`State.watch` of this group; the same keyword arguments."""
        return self.state.watch(self.name, **options)

    def on_change(self, handler: Callable[[Change], Any], **options: Any) -> Subscription:
        return self.state.on_change(self.name, handler, **options)

    def query(
        self,
        where: object = None,
        *,
        order_by: str | Sequence[str] | None = None,
        descending: bool = False,
        limit: int = queries.DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """`State.query` of this group."""
        return self.state.query(
            self.name,
            where,
            order_by=order_by,
            descending=descending,
            limit=limit,
            cursor=cursor,
        )

    def list_keys(self, *, cursor: str | None = None, count: int = 1000) -> KeyPage:
        """`State.list_keys` of this group."""
        return self.state.list_keys(self.name, cursor=cursor, count=count)

    def count(self, where: object = None) -> int:
        """`State.count` of this group."""
        return self.state.count(self.name, where)

    def iter_items(self, batch: int = DEFAULT_SCAN_BATCH) -> Iterator[tuple[str, Any]]:
        return self.state.iter_items(self.name, batch)

    def barrier(
        self,
        key: str,
        *,
        parties: int,
        arrival: str,
        data: Any = None,
        ttl: float | None = None,
    ) -> BarrierState:
        """`State.barrier` in this group (through a ``ttl=`` view, an arrival that records
        itself slides the group's expiry, as any write there does)."""
        return self.state.barrier(
            self.name, key, parties=parties, arrival=arrival, data=data, ttl=ttl
        )

    def barrier_state(self, key: str) -> BarrierState | None:
        return self.state.barrier_state(self.name, key)

    def history(
        self, key: str, *, limit: int = HISTORY_LIMIT, before: str | None = None
    ) -> History:
        """`State.history` of an item of this group."""
        return self.state.history(self.name, key, limit=limit, before=before)

    def reset_barrier(self, key: str) -> BarrierState | None:
        return self.state.reset_barrier(self.name, key)


class _Sliding(State):
    """What a ``ttl=`` group view runs on: its State, but with a Core whose writes slide their
    group's expiry. Everything else is that State's (backend, near cache, sweeper): plans run
    through it, and closing this closes nothing, as the State owns the backend."""

    def __init__(self, state: State, core: Core) -> None:
        vars(self).update(vars(state))
        self._core = core
        self._owner = state

    def _run(self, plan: Plan[R]) -> R:
        return self._owner._run(plan)

    def close(self) -> None:
        pass
