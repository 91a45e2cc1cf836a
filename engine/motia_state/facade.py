"""`State`, `AsyncState` and their group views from one declaration of each operation.

An operation that is one server call is a `Core` method returning a `Plan`, with its public
signature and docstring; `core.Operations` lists each of them once, as a `Call`;
the four facades derive it. When a facade class is defined, each `Call` it inherits becomes
a plain method carrying the `Core` method's name, docstring and signature: on `State`, one
that runs the plan and returns its result; on `AsyncState`, a coroutine function; on a group
view, one calling its State's with the group (so without the ``group`` argument); on a
`Transaction`, one adding the plan to it. mypy sees the same: `Call`'s ``__get__`` gives each
facade the signature it has at runtime.

What is not one server call (`watch`, `on_change`'s arguments) is shared by `Facade`; what
really differs between the two, starting the sweeper, closing and `track`, are hooks of
`State` and `AsyncState`.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import (
    Any,
    ClassVar,
    Generic,
    ParamSpec,
    TypeVar,
    get_args,
)

from . import validate
from .calls import Call
from .changes import Change
from .core import Core, Operations, Plan
from .errors import InvalidInput, brief
from .history import History
from .history import read as read_history
from .layout import KeyLayout
from .steps import Steps
from .subscriptions import TICK_S
from .watch import BATCH, Reader, Records, group_names, topic_names

P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")
S = TypeVar("S")
W = TypeVar("W")


class Runs:
    """A class whose `Call` declarations become methods when it is defined.

    ``_def`` and ``_body`` make the method that runs a plan; ``_scoped``: the first argument
    of each plan (``group``) comes from the instance, so the method takes the rest;
    ``_collects``: the method only collects the plan (a transaction's), returning None.
    """

    _scoped: ClassVar[bool] = False
    _collects: ClassVar[bool] = False
    # Parameters of the plan the method does not take (it calls the plan with their default).
    _omitted: ClassVar[frozenset[str]] = frozenset()

    _def: ClassVar[str] = "def"
    _body: ClassVar[str]  # the method's one statement: {name} and {args} filled in

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in dir(cls):
            call = inspect.getattr_static(cls, name)
            if isinstance(call, Call):
                method = cls._build(call.plan, name)
                cls._describe(method, name, call.plan)
                setattr(cls, name, method)

    @classmethod
    def _build(cls, plan: Callable[..., Plan[Any]], name: str) -> Callable[..., Any]:
        """The method ``name``, with ``plan``'s own parameters (not ``*args, **kwargs``), so a
        wrong call fails as it would on a hand-written method: named after it, and at once
        (on `AsyncState` too, not when awaited). Made with ``exec``, as dataclasses make
        ``__init__``: nothing is looked up per call."""
        parameters = list(inspect.signature(plan).parameters.values())[1:]  # without self
        if cls._scoped:
            parameters = parameters[1:]  # the view supplies the group
        parameters = [p for p in parameters if p.name not in cls._omitted]
        params, args, namespace = [], [], {"plan": plan}
        for i, param in enumerate(parameters):
            assert param.kind in (param.POSITIONAL_OR_KEYWORD, param.KEYWORD_ONLY), name
            assert param.name not in ("self", "plan"), name
            default = ""
            if param.default is not param.empty:
                namespace[f"_default{i}"] = param.default
                default = f"=_default{i}"
            if param.kind is param.KEYWORD_ONLY and "*" not in params:
                params.append("*")
            params.append(param.name + default)
            args.append(
                f"{param.name}={param.name}" if param.kind is param.KEYWORD_ONLY else param.name
            )
        body = cls._body.format(name=name, args=", ".join(args))
        source = f"{cls._def} {name}(self, {', '.join(params)}):\n    {body}\n"
        exec(source, namespace)
        method: Callable[..., Any] = namespace[name]
        return method

    @classmethod
    def _describe(cls, method: Callable[..., Any], name: str, plan: Callable[..., Any]) -> None:
        """Give ``method`` the name, docstring and signature of ``plan``, the `Core` method."""
        signature = inspect.signature(plan, eval_str=True)
        parameters = [p for p in signature.parameters.values() if p.name not in cls._omitted]
        parameters[0] = parameters[0].replace(name="self", annotation=inspect.Parameter.empty)
        if cls._scoped:
            assert parameters[1].name == "group", f"{name} does not take a group first"
            del parameters[1]
        (returns,) = get_args(signature.return_annotation)  # Plan[R]: R
        doc = plan.__doc__
        if cls._collects:
            returns = None
            doc = f"`State.{name}` as part of the transaction: its result comes in ``results``."
        method.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=parameters, return_annotation=returns
        )
        method.__annotations__ = {
            p.name: p.annotation for p in parameters if p.annotation is not p.empty
        } | {"return": returns}
        method.__name__ = name
        method.__qualname__ = f"{cls.__qualname__}.{name}"
        method.__module__ = cls.__module__
        method.__doc__ = doc


class Sync(Runs):
    """`State`: a method runs its plan (``self._run``) and returns the result."""

    _body = "return self._run(plan(self._core, {args}))"


class Async(Runs):
    """`AsyncState`: a method is a coroutine function awaiting ``self._run``."""

    _def = "async def"
    _body = "return await self._run(plan(self._core, {args}))"


class Collects(Runs):
    """`Transaction`: a method checks and encodes its op, and adds it to ``self._plans``."""

    _collects = True
    # an op's idempotency key: the transaction applies, or repeats, whole, so it takes one;
    # an op's emit=: the transaction's own `Transaction.emit` says it
    _omitted = frozenset({"idempotency_key", "emit"})
    _core: Core
    _plans: list[Plan[Any]]

    _body = "self._plans.append(plan(self._core, {args}))"


class Transaction(Collects):
    """Ops collected inside ``with state.transaction() as tx:``, sent as one call at the end.

    Each op is checked and encoded when it is added, so a bad op raises inside the
    block, before anything is sent. After the block, ``results`` holds each op's
    result in order: the new version (set), the old value (delete), the new number
    (increment), the new value (update), the event's id (emit).
    """

    set = Call(Core.set)
    delete = Call(Core.delete)
    increment = Call(Core.increment)

    def __init__(self, core: Core, idempotency_key: str | None = None) -> None:
        self._core = core
        self._plans = []
        self.results: list[Any] | None = None
        self.idempotency_key = (
            None if idempotency_key is None else validate.idempotency_key(idempotency_key)
        )

    def update(
        self,
        group: str,
        key: str,
        ops_: Any,
        *,
        version: int | None = None,
        ttl: float | None = None,
    ) -> None:
        """`State.update` as part of the transaction: its result comes in ``results``.
        (Its operand is named ``ops_`` here, as it always was.)"""
        self._plans.append(self._core.update(group, key, ops_, version=version, ttl=ttl))

    def emit(self, topic: str, data: Any, *, group: str | None = None) -> None:
        """Record the event ``topic`` with ``data`` (encoded by the State's codec) in the
        change feed, in the same atomic call as the transaction's writes: recorded if they
        apply, not at all if any is refused (the outbox). Read it with `State.events` or
        `State.on_event`; its id comes in ``results``.

        ``group``: the stream it goes to and what ``events(groups=...)`` filters by; by
        default the group of the transaction's first op that names one (a transaction of
        emits alone must name it). On Redis Cluster it lives in that group's stream, so it
        must share the slot of the transaction's groups, and it is ordered with the changes of
        that stream only; on one server every group shares one stream and one order. Needs the
        feed (Redis): elsewhere the transaction raises `Unsupported`, writing nothing."""
        self._plans.append(self._core.emit(group, topic, data))

    def __len__(self) -> int:
        return len(self._plans)

    def plan(self) -> Plan[list[Any]]:
        return self._core.transaction(self._core.grouped(self._plans), self.idempotency_key)


class View(Runs, Generic[S]):
    """A group view: its State's operations on the group ``name``."""

    _scoped = True

    def __init__(self, state: S, group: str) -> None:
        self.state = state
        self.name = group

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.state!r}, {self.name!r})"


class SyncView(View[S]):
    """`GroupView`: a method calls its State's, with the group."""

    _body = "return self.state.{name}(self.name, {args})"


class AsyncView(View[S]):
    """`AsyncGroupView`: a method awaits its AsyncState's, with the group."""

    _def = "async def"
    _body = "return await self.state.{name}(self.name, {args})"


class Facade(Operations, Generic[W]):
    """What `State` and `AsyncState` share beyond the operations; ``W``: their watch."""

    _core: Core

    def _watching(self, reader: Callable[[KeyLayout], Reader]) -> W:
        """A watch on a connection of its own (a backend ``session()``), reading the feed
        with ``reader(session.layout)``."""
        raise NotImplementedError

    def _history(
        self, group: str, key: str, limit: int, before: str | None
    ) -> Callable[[KeyLayout], Steps[History]]:
        """`history`'s steps for a session's layout, its arguments checked now."""
        read_history(KeyLayout(), self._core.codec, group, key, limit=limit, before=before)
        return lambda layout: read_history(
            layout, self._core.codec, group, key, limit=limit, before=before
        )

    def watch(
        self,
        groups: str | Iterable[str] | None = None,
        *,
        since: str | Change = "$",
        block: float | None = None,
        consumer: tuple[str, str] | None = None,
        claim_after: float | None = None,
        with_values: bool = False,
        batch: int = BATCH,
        events: bool = False,
    ) -> W:
        """Iterate over committed changes of ``groups`` (None: every group), in commit order.

        ``since``: '$' only changes from now on, '0' every retained change first, or a
        change id to resume after. ``block``: seconds to wait for a change before yielding
        None (None: wait as long as it takes; 0: never wait). ``consumer=(group, name)``
        reads as that consumer group (created on first use; acknowledge with `ack`);
        ``claim_after``: take over changes another consumer left unacknowledged that many
        seconds. ``with_values``: decode the values writers recorded (``record_values``).
        ``batch``: changes fetched per read (consumers of one group share work per batch).
        ``events``: also yield the events transactions emitted (``tx.emit``; `Change.is_event`),
        in commit order with the changes; by default a watch yields changes of state only.
        The iterator's position is fixed when this returns; it reads on a connection of
        its own: close it (or use ``with``) to release it. Needs a Redis backend;
        memory:// and file:// raise `Unsupported`.

        On `AsyncState` it is an async iterator (on a connection of its own, outside the
        auto-pipeline, so a blocking read holds up no other task): ``await`` it to fix its
        position at once, else the first iteration does; `aclose` it (or ``async with``).
        """
        if not isinstance(events, bool):
            raise InvalidInput(f"events must be True or False, not {brief(events)}")
        records = Records.ALL if events else Records.CHANGES
        return self._watch(
            groups, since, block, consumer, claim_after, with_values, batch, records, None
        )

    def events(
        self,
        topics: str | Iterable[str] | None = None,
        *,
        groups: str | Iterable[str] | None = None,
        since: str | Change = "$",
        block: float | None = None,
        consumer: tuple[str, str] | None = None,
        claim_after: float | None = None,
        batch: int = BATCH,
    ) -> W:
        """Iterate over the events transactions emitted (``tx.emit``, ``emit=``) on
        ``topics`` (None: every topic), of ``groups`` (None: every group), in commit order:
        `Change` records with ``topic``, ``data`` and ``event_id``. A watch that yields events
        only; its arguments are `watch`'s.

        Delivery is at least once. With ``consumer=(group, name)`` an event stays pending
        until acknowledged (`ack`), comes back to its consumer after a restart and to another
        after ``claim_after``; it keeps its ``event_id`` on every delivery, so a handler with
        effects outside the state deduplicates by it. Name a consumer group that reads events
        only: entries a reader skips (changes, other topics) are acknowledged for its group.
        A new consumer group starts at ``since`` ('$': events from now on; '0': every event
        the feed still retains). Events obey the feed's retention (``changes_maxlen``,
        ``changes_max_age``): one trimmed before it was read is lost."""
        return self._watch(
            groups, since, block, consumer, claim_after, False, batch, Records.EVENTS, topics
        )

    def _watch(
        self,
        groups: str | Iterable[str] | None,
        since: str | Change,
        block: float | None,
        consumer: tuple[str, str] | None,
        claim_after: float | None,
        with_values: bool,
        batch: int,
        records: str,
        topics: str | Iterable[str] | None,
    ) -> W:
        def reader(layout: KeyLayout) -> Reader:
            return Reader(
                layout,
                self._core.codec,
                groups=groups,
                since=since,
                consumer=consumer,
                claim_after=claim_after,
                block=block,
                with_values=with_values,
                batch=batch,
                records=records,
                topics=topics,
            )

        return self._watching(reader)

    def _reopener(
        self,
        groups: str | Iterable[str] | None,
        since: str,
        consumer: tuple[str, str] | None,
        claim_after: float | None,
        with_values: bool,
        records: str = Records.CHANGES,
        topics: str | Iterable[str] | None = None,
    ) -> Callable[[str | None], W]:
        """``on_change``'s (``on_event``'s) watches: the first (``None``), and one resuming
        after a change id."""
        names, wanted = group_names(groups), topic_names(topics)

        def watch(last: str | None) -> W:
            return self._watch(
                names,
                last or since,
                TICK_S,
                consumer,
                claim_after,
                with_values,
                BATCH,
                records,
                wanted,
            )

        return watch
