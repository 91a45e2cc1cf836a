"""What `State` and `AsyncState` share: argument checks, encoding and decoding.

Each operation that is one server call is declared once, here, as a `Core` method with
its public signature and docstring that returns a `Plan` (a validated, encoded request
plus the function that decodes its raw result); `facade` makes it a method of `State`,
`AsyncState` and their group views, which run the plan through their backend,
synchronously or with ``await``. Nothing about a call's meaning is written twice.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Coroutine, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Generic, TypeVar, cast

from . import idempotency, ops, updates, validate
from .calls import Call
from .codecs import Codec, decode_all, encode_all
from .errors import DecodeError, InvalidInput, Unsupported, ValueTooLarge, brief

R = TypeVar("R")
DEFAULT_SCAN_BATCH = 1000
UNNAMED = ""  # an emit's group before `Core.grouped` names it (no group is named '')


@dataclass(frozen=True, slots=True)
class Plan(Generic[R]):
    op: ops.Request[Any]
    finish: Callable[[Any], R]
    expiring: bool = False  # gives an item a TTL: the State starts its background cleanup
    # Run instead when `finish` raises DecodeError: a read that skips the keys for speed
    # (get_group) reads again with them, to name the item whose value does not decode.
    fallback: Plan[R] | None = None


def _same(raw: R) -> R:
    return raw


PlanSteps = Generator[Plan[Any], Any, R]


def drive(steps: PlanSteps[R], run: Callable[[Plan[Any]], Any]) -> R:
    """Run an operation made of several plans (a barrier's arrival, a query's pages), written
    once as a generator of plans, with ``run`` (`State._run`): each plan's result is sent
    back in, its error thrown in."""
    try:
        plan = next(steps)
        while True:
            try:
                result = run(plan)
            except Exception as exc:
                plan = steps.throw(exc)
            else:
                plan = steps.send(result)
    except StopIteration as stop:
        return cast(R, stop.value)


async def drive_async(
    steps: PlanSteps[R], run: Callable[[Plan[Any]], Coroutine[Any, Any, Any]]
) -> R:
    """`drive` awaiting ``run`` (`AsyncState._run`)."""
    try:
        plan = next(steps)
        while True:
            try:
                result = await run(plan)
            except Exception as exc:
                plan = steps.throw(exc)
            else:
                plan = steps.send(result)
    except StopIteration as stop:
        return cast(R, stop.value)


class Scan:
    """`iter_items` without I/O: run each plan `next_page` gives until it gives None.

    A plan's result is its page's items not given before, so each item present for the
    whole iteration comes exactly once; items written or deleted meanwhile may or may not.
    """

    def __init__(self, core: Core, group: str, batch: int) -> None:
        self._core = core
        self._group = group
        self._batch = batch
        self._cursor: int | None = 0  # None: the last page was read
        self._seen: set[str] = set()

    def next_page(self) -> Plan[list[tuple[str, Any]]] | None:
        if self._cursor is None:
            return None
        page = self._core.scan_page(self._group, self._cursor, self._batch)
        return Plan(page.op, lambda raw: self._fresh(page.finish(raw)))

    def _fresh(self, page: tuple[int, list[tuple[str, Any]]]) -> list[tuple[str, Any]]:
        cursor, items = page
        self._cursor = cursor or None
        fresh = []
        for key, value in items:
            if key not in self._seen:
                self._seen.add(key)
                fresh.append((key, value))
        return fresh


class Core:
    def __init__(
        self,
        codec: Codec,
        *,
        max_value_bytes: int,
        default_ttl: float | None = None,
        cleanup_interval: float | None = None,
        group_ttl: float | None = None,
        idempotency_ttl: float = idempotency.DEFAULT_TTL_S,
        sweep_receipts: bool = False,
    ) -> None:
        self.codec = codec
        self.max_value_bytes = max_value_bytes
        self.default_ttl_ms = validate.ttl(default_ttl)
        self.cleanup_interval = cleanup_interval
        # Every write slides its group's expiry as a whole to this many ms from now (the
        # group_ttl option, or a ``ttl=`` group view's Core): lua/include/group.lua.
        self.group_ttl_ms = validate.ttl(group_ttl, "group_ttl")
        # How long an idempotency key's receipt is kept (motia_state.idempotency).
        self.idempotency_ttl_ms = validate.ttl(idempotency_ttl, "idempotency_ttl")
        # Receipts expire only when a sweep removes them (off Redis, where the server does
        # not): a keyed write then starts the State's background cleanup, as a TTL does.
        self.sweep_receipts = sweep_receipts

    def sliding(self, ttl: object) -> Core:
        """This Core, with every write sliding its group's expiry to ``ttl`` seconds from now
        (a ``state.group(name, ttl=...)`` view's); ``ttl`` is checked as a TTL."""
        ms = validate.ttl(ttl)
        if ms is None:
            raise InvalidInput("ttl must be a positive number of seconds")
        core = copy.copy(self)
        core.group_ttl_ms = ms
        return core

    def _keyed(self, plan: Plan[R], key: str | None) -> Plan[R]:
        """``plan`` whose write carries the idempotency key ``key``, if any: applied once
        however often it is sent (see `motia_state.idempotency`)."""
        if key is None:
            return plan
        assert self.idempotency_ttl_ms is not None
        op = idempotency.attach(plan.op, key, self.idempotency_ttl_ms)
        if isinstance(op, ops.SetMany | ops.DeleteMany) and not (
            op.items if isinstance(op, ops.SetMany) else op.keys
        ):
            return plan  # an empty batch sends nothing: it writes nothing and binds no key
        return Plan(op, plan.finish, plan.expiring or self.sweep_receipts)

    def _written(self, plan: Plan[R], key: str | None, emit: object) -> Plan[R]:
        """``plan`` with its idempotency key, and with ``emit`` (a (topic, data) pair, or None)
        recorded in the same atomic call: a transaction of the write and the event (the
        outbox), whose result is the write's. The transaction carries the key."""
        if emit is None:
            return self._keyed(plan, key)
        if not isinstance(emit, (tuple, list)) or len(emit) != 2:
            raise InvalidInput(
                f"emit must be a (topic, data) pair, like ('order.created', {{'id': 1}}), "
                f"not {brief(emit)}"
            )
        group = cast("ops.Set | ops.Delete | ops.Update", plan.op).group
        tx = self.transaction([plan, self.emit(group, emit[0], emit[1])], key)
        return Plan(tx.op, lambda raw: tx.finish(raw)[0], tx.expiring)

    def emit(self, group: str | None, topic: str, data: Any) -> Plan[str]:
        """An event for a transaction (`facade.Transaction.emit`): ``data`` encoded by the
        codec and held to ``max_value_bytes`` as a value is; ``group`` None: the group
        `grouped` gives it when the transaction is sent."""
        g = UNNAMED if group is None else validate.group(group)
        t = validate.name("topic", topic)
        data_ = self.codec.encode(data)
        if len(data_) > self.max_value_bytes:
            raise ValueTooLarge(
                f"data of event {brief(t)} encodes to {len(data_)} bytes; "
                f"max_value_bytes is {self.max_value_bytes}"
            )
        return Plan(ops.Emit(g, t, data_), _same)

    @staticmethod
    def grouped(plans: Sequence[Plan[Any]]) -> list[Plan[Any]]:
        """A transaction's plans, each emit that named no group given the group of the first
        op that names one; `InvalidInput` when none does (nothing is sent)."""
        plans = list(plans)
        unnamed = [i for i, p in enumerate(plans) if getattr(p.op, "group", None) == UNNAMED]
        if not unnamed:
            return plans
        named = [p.op.group for p in plans if p.op.group != UNNAMED]  # type: ignore[attr-defined]
        if not named:
            raise InvalidInput(
                "a transaction of emits alone must say which group they go to: "
                "tx.emit(topic, data, group=...)"
            )
        for i in unnamed:
            op = cast("ops.Emit", plans[i].op)
            plans[i] = Plan(replace(op, group=named[0]), plans[i].finish)
        return plans

    def _expiring(self, expire: str) -> bool:
        """Whether a write with this expiry instruction gives something a deadline, so the
        State starts its background sweep: an item's TTL, or its group's."""
        return self.group_ttl_ms is not None or not (expire == "" or expire.startswith("keep"))

    # -- expiry instructions (see lua/include/ttl.lua) -------------------------------

    def _expire_for_set(self, ttl: Any) -> str:
        """A plain write sets its TTL, or the default one, or clears any it had."""
        ms = validate.ttl(ttl)
        ms = self.default_ttl_ms if ms is None else ms
        return "" if ms is None else str(ms)

    def _expire_for_update(self, ttl: Any) -> str:
        """increment/update without ttl= keep the item's expiry (a new item gets the default)."""
        ms = validate.ttl(ttl)
        if ms is not None:
            return str(ms)
        return "keep" if self.default_ttl_ms is None else f"keep:{self.default_ttl_ms}"

    # -- values ----------------------------------------------------------------

    def encode(self, group: str, key: str, value: Any) -> bytes:
        data = self.codec.encode(value)
        if len(data) > self.max_value_bytes:  # inline: a call less on every write
            self._fits(group, key, data)
        return data

    def _fits(self, group: str, key: str, data: bytes) -> None:
        if len(data) > self.max_value_bytes:
            raise ValueTooLarge(
                f"value for {group!r}/{key!r} encodes to {len(data)} bytes; "
                f"max_value_bytes is {self.max_value_bytes}"
            )

    def decode(self, group: str, key: str, data: bytes | None) -> Any:
        if data is None:
            return None
        try:
            return self.codec.decode(data)
        except DecodeError as exc:
            raise DecodeError(f"{group!r}/{key!r}: {exc}") from None

    def decode_removed(self, group: str, key: str, data: bytes | None) -> Any:
        """The value a delete removed; `ops.Undecodable` when it does not decode (see there)."""
        try:
            return self.decode(group, key, data)
        except DecodeError as exc:
            assert data is not None
            return ops.Undecodable(data, str(exc))

    # -- plans -----------------------------------------------------------------

    def get(self, group: str, key: str) -> Plan[Any]:
        """The value, or None when absent (use `get_item` to tell a stored None apart)."""
        g, k = validate.group(group), validate.key(key)
        return Plan(ops.Get(g, k), lambda raw: self.decode(g, k, raw))

    def get_item(self, group: str, key: str) -> Plan[ops.Item | None]:
        g, k = validate.group(group), validate.key(key)

        def finish(raw: ops.RawItem | None) -> ops.Item | None:
            if raw is None:
                return None
            return ops.Item(g, k, self.decode(g, k, raw.data), raw.version, raw.expires_at)

        return Plan(ops.GetItem(g, k), finish)

    def get_many(self, group: str, keys: Iterable[str]) -> Plan[list[Any]]:
        g, ks = validate.group(group), validate.keys(keys)
        return Plan(
            ops.GetMany(g, ks),
            lambda raw: [self.decode(g, k, d) for k, d in zip(ks, raw, strict=True)],
        )

    def items(self, group: str) -> Plan[dict[str, Any]]:
        g = validate.group(group)
        return Plan(ops.GetAll(g), lambda raw: {k: self.decode(g, k, d) for k, d in raw.items()})

    def get_group(self, group: str) -> Plan[list[Any]]:
        """All values of a group (Motia's getGroup)."""
        g = validate.group(group)
        named = Plan(ops.GetAll(g), lambda raw: [self.decode(g, k, d) for k, d in raw.items()])
        return Plan(ops.Values(g), lambda raw: decode_all(self.codec, raw), fallback=named)

    def keys(self, group: str) -> Plan[list[str]]:
        return Plan(ops.Keys(validate.group(group)), _same)

    def scan_page(
        self, group: str, cursor: int, batch: int
    ) -> Plan[tuple[int, list[tuple[str, Any]]]]:
        g = validate.group(group)
        validate.positive_int("batch", batch)

        def finish(raw: tuple[int, list[tuple[str, bytes]]]) -> tuple[int, list[tuple[str, Any]]]:
            return raw[0], [(k, self.decode(g, k, d)) for k, d in raw[1]]

        return Plan(ops.ScanPage(g, cursor, batch), finish)

    def scan(self, group: str, batch: int) -> Scan:
        """`iter_items`' pages; the arguments are checked with the first page's plan."""
        return Scan(self, group, batch)

    def set(
        self,
        group: str,
        key: str,
        value: Any,
        *,
        version: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> Plan[int]:
        """Store ``value``; returns the item's new version (1 on create).

        ``version=N`` writes only if the current version is N, ``version=0`` only
        if the item is absent; otherwise `VersionConflict` and nothing changes.
        ``idempotency_key``: applied once however often it is sent; a repeat returns the
        first call's result (see Exactly-once steps in the README).
        ``emit=(topic, data)``: also record that event in the change feed, in the same atomic
        call, only if the write applies (the outbox: `Transaction.emit`; Redis only).
        """
        g, k = validate.group(group), validate.key(key)
        v = validate.version(version)
        expire = self._expire_for_set(ttl)
        op = ops.Set(g, k, self.encode(g, k, value), v, expire, self.group_ttl_ms)
        return self._written(Plan(op, _same, self._expiring(expire)), idempotency_key, emit)

    def set_many(
        self,
        group: str,
        mapping: Mapping[str, Any],
        *,
        ttl: float | None = None,
        idempotency_key: str | None = None,
    ) -> Plan[int]:
        """Store many items; atomic per server call (up to 1000 items or 4 MiB each)."""
        g = validate.group(group)
        if not isinstance(mapping, Mapping):
            raise InvalidInput(
                f"set_many takes a mapping of key -> value, not {type(mapping).__name__}"
            )
        fault: Exception | None = None
        try:
            if type(mapping) is dict:  # its keys and values() iterate in one order
                keys, values = validate.keys(mapping), list(mapping.values())
            else:  # a subclass or another Mapping pairs them only in items()
                pairs = list(mapping.items())
                keys, values = validate.keys([k for k, _ in pairs]), [v for _, v in pairs]
            datas = encode_all(self.codec, values)
            if datas and max(map(len, datas)) > self.max_value_bytes:
                for k, data in zip(keys, datas, strict=True):
                    self._fits(g, k, data)
        except Exception as exc:
            fault = exc
        if fault is not None:
            # Keys, values and sizes are checked in passes over the whole batch: the fault
            # found may not be the first item's. Item by item, as `set` checks one, the error
            # is the first faulty item's (raised outside the handler: no chained traceback).
            for k, value in mapping.items():
                self.encode(g, validate.key(k), value)
            raise fault
        items = tuple(zip(keys, datas, strict=True))
        expire = self._expire_for_set(ttl)
        op = ops.SetMany(g, items, expire, self.group_ttl_ms)
        return self._keyed(Plan(op, _same, self._expiring(expire)), idempotency_key)

    def delete(
        self,
        group: str,
        key: str,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> Plan[Any]:
        """Remove an item and return its value (None when absent), atomically.
        ``emit=(topic, data)``: also record that event, as `set` does."""
        g, k = validate.group(group), validate.key(key)
        v = validate.version(version)
        plan = Plan(
            ops.Delete(g, k, v, self.group_ttl_ms),
            lambda raw: self.decode_removed(g, k, raw),
            self._expiring(""),
        )
        return self._written(plan, idempotency_key, emit)

    def delete_many(
        self, group: str, keys: Iterable[str], *, idempotency_key: str | None = None
    ) -> Plan[int]:
        g = validate.group(group)
        unique = tuple(dict.fromkeys(validate.keys(keys)))
        plan = Plan(ops.DeleteMany(g, unique, self.group_ttl_ms), _same, self._expiring(""))
        return self._keyed(plan, idempotency_key)

    def clear(self, group: str) -> Plan[int]:
        """Remove every item of a group (and its expiry as a whole); returns how many there
        were."""
        return Plan(ops.Clear(validate.group(group)), _same)

    def list_groups(self) -> Plan[list[str]]:
        """Names of the groups that hold at least one item, sorted."""
        return Plan(ops.ListGroups(), _same)

    def stats(
        self, groups: Iterable[str], *, listed: bool = False
    ) -> Plan[tuple[list[ops.GroupStats], int | None]]:
        """``listed``: the names come from `list_groups`, as the server holds them, so they
        are addressable as they are (one another tool wrote that is not UTF-8 included)."""
        names = tuple(groups) if listed else validate.groups(groups)
        return Plan(ops.Stats(names), _same)

    def ttl(self, group: str, key: str) -> Plan[float | None]:
        """Seconds until the item expires; None when it has no expiry or does not exist.

        In a group that expires as a whole, the earlier of the item's own expiry and the
        group's."""
        return Plan(ops.Ttl(validate.group(group), validate.key(key)), _same)

    def expire(
        self, group: str, key: str, ttl: float, *, idempotency_key: str | None = None
    ) -> Plan[bool]:
        """Give an existing item a TTL of ``ttl`` seconds; False when it does not exist."""
        ms = validate.ttl(ttl)
        if ms is None:
            raise InvalidInput("expire needs a ttl in seconds; use persist() to remove one")
        op = ops.SetExpiry(validate.group(group), validate.key(key), ms, self.group_ttl_ms)
        return self._keyed(Plan(op, _same, True), idempotency_key)

    def persist(self, group: str, key: str, *, idempotency_key: str | None = None) -> Plan[bool]:
        """Remove an item's expiry; True when it had one."""
        op = ops.SetExpiry(validate.group(group), validate.key(key), None, self.group_ttl_ms)
        return self._keyed(Plan(op, _same, self._expiring("")), idempotency_key)

    def expire_group(self, group: str, ttl: float) -> Plan[bool]:
        """Make the whole group expire in ``ttl`` seconds: its items, versions and metadata
        go together (`redis-cli TTL` on its hash shows the time left), and one
        ``expire_group`` change record follows. False when the group does not exist."""
        ms = validate.ttl(ttl)
        if ms is None:
            raise InvalidInput("expire_group needs a ttl in seconds; use persist_group()")
        return Plan(ops.SetGroupExpiry(validate.group(group), ms), bool, True)

    def group_ttl(self, group: str) -> Plan[float | None]:
        """Seconds until the group expires as a whole; None when it has no such expiry or
        does not exist."""
        return Plan(ops.GroupTtl(validate.group(group)), _same)

    def persist_group(self, group: str) -> Plan[bool]:
        """Remove the group's expiry as a whole (its items' own TTLs stay); True when it had
        one."""
        return Plan(ops.SetGroupExpiry(validate.group(group), None), bool)

    def transaction(
        self, plans: Sequence[Plan[Any]], idempotency_key: str | None = None
    ) -> Plan[list[Any]]:
        """One call applying the writes ``plans`` (set, delete, increment, update) in order,
        and recording the events (emit) among them if they apply."""
        plans = list(plans)
        subs = tuple(cast("ops.Set | ops.Delete | ops.Update | ops.Emit", p.op) for p in plans)
        op = ops.Transaction(subs, self.max_value_bytes)
        plan = Plan(
            op,
            lambda raw: [p.finish(r) for p, r in zip(plans, raw, strict=True)],
            any(p.expiring for p in plans),
        )
        return self._keyed(plan, idempotency_key)

    def cleanup(self) -> Plan[int]:
        """Remove expired items now (they are already invisible); returns how many.

        Runs in bounded server-side batches; many processes may sweep at once and
        each item is removed, and counted, once. A background sweep also runs every
        ``cleanup_interval`` seconds once this State has given an item a TTL.
        """
        return Plan(ops.Cleanup(), _same)

    def increment(
        self,
        group: str,
        key: str,
        by: int | float = 1,
        *,
        version: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> Plan[int | float]:
        """Add ``by`` atomically on the server; a missing item starts at 0. Returns the new number.

        Integers stay exact across the signed 64-bit range (`IntegerOverflow` past it);
        a float makes a float. A stored value that is not a number raises `NotANumber`.
        ``emit=(topic, data)``: also record that event, as `set` does.
        """
        by = updates.amount(by, "increment")
        op = {"type": "increment", "path": "", "by": by}
        steps = (updates.Step("increment", (), by, 0, op),)
        plan = self._update(group, key, steps, self.codec.encode(0), "increment", version, ttl)
        return self._written(plan, idempotency_key, emit)

    def update(
        self,
        group: str,
        key: str,
        ops: Iterable[Mapping[str, Any]],
        *,
        version: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> Plan[Any]:
        """Apply Motia v1 UpdateOps atomically on the server; returns the new value.

        All ops apply or none does; every part of the value no op touches stays exactly
        as it was. A missing item starts as ``{}``. ``emit=(topic, data)``: also record that
        event, as `set` does.
        """
        steps = updates.parse(ops)
        plan = self._update(group, key, steps, self.codec.encode({}), "update", version, ttl)
        return self._written(plan, idempotency_key, emit)

    def _update(
        self,
        group: str,
        key: str,
        steps: tuple[updates.Step, ...],
        start: bytes,
        name: str,
        version: int | None,
        ttl: Any,
    ) -> Plan[Any]:
        g, k = validate.group(group), validate.key(key)
        v = validate.version(version)
        expire = self._expire_for_update(ttl)
        if self.codec.name not in ("json", "msgpack"):
            raise Unsupported(f"{name} needs the json or msgpack codec, not {self.codec.name!r}")
        encode, encoded = self.codec.encode, []
        for step in steps:
            operand = b"" if step.kind == "remove" else self.encode(g, k, step.operand)
            encoded.append((operand, tuple([encode(segment) for segment in step.path])))
        op = ops.Update(
            g, k, steps, tuple(encoded), start, name, v, self.max_value_bytes, expire,
            self.group_ttl_ms,
        )  # fmt: skip
        return Plan(op, lambda raw: self.decode(g, k, raw[1]), self._expiring(expire))


class GroupOperations:
    """The operations on one group, each declared once, beside the methods that plan them:
    `facade` makes each a method of `State`, `AsyncState` and their group views (without
    ``group``)."""

    get = Call(Core.get)
    get_item = Call(Core.get_item)
    get_many = Call(Core.get_many)
    get_group = Call(Core.get_group)
    items = Call(Core.items)
    keys = Call(Core.keys)
    set = Call(Core.set)
    set_many = Call(Core.set_many)
    delete = Call(Core.delete)
    delete_many = Call(Core.delete_many)
    clear = Call(Core.clear)
    increment = Call(Core.increment)
    update = Call(Core.update)
    ttl = Call(Core.ttl)
    expire = Call(Core.expire)
    persist = Call(Core.persist)
    expire_group = Call(Core.expire_group)
    group_ttl = Call(Core.group_ttl)
    persist_group = Call(Core.persist_group)


class Operations(GroupOperations):
    """Every operation of `State` and `AsyncState`: those of a group and these."""

    cleanup = Call(Core.cleanup)
    list_groups = Call(Core.list_groups)
