"""The engine over a custom adapter (`motia_state.adapters`): every request carried out with
the adapter's storage methods, under the engine's rules.

Each handler is a generator that yields the adapter calls it wants, ``(method, args)``, and
is sent each result: no I/O of its own (as `RedisPlan` for Redis), so one set of handlers
serves a `StateAdapter` (`run`) and an `AsyncStateAdapter` (`run_async`). The rules are those
of the Redis scripts and of `local` (memory://, file://): an expired item is absent to
reads and purged by the write that finds it, a new item starts above its group's version
floor, a delete or a clear raises that floor. A write runs inside one `atomic` block where
the adapter has one; a transaction writes nothing until every op has applied to an overlay
of its own reads and writes, so a refused op leaves the store as it was.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from collections.abc import Callable, Coroutine, Generator, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from .. import capabilities, idempotency, ops, query, updates
from ..adapters import AsyncStateAdapter, GroupMeta, Record, StateAdapter
from ..codecs import Codec
from ..errors import (
    BackendUnavailable,
    DecodeError,
    IdempotencyKeyReused,
    InvalidInput,
    OutcomeUnknown,
    StateError,
    Unsupported,
    VersionConflict,
    brief,
)
from ..idempotency import RECEIPTS
from ..validate import RESERVED_GROUP_PREFIX

T = TypeVar("T")
A = TypeVar("A", StateAdapter, AsyncStateAdapter)
Use = tuple[str, tuple[Any, ...]]  # an adapter method's name and its arguments
Steps = Generator[Use, Any, T]
Handler = Callable[["Context", Any], Steps[Any]]
HANDLERS: ops.Handlers[Handler] = ops.Handlers("custom adapters")
ATOMIC = frozenset({"versions", "transactions"})
# Which methods a declared capability needs the adapter to have written itself.
NEEDS = {
    "versions": ("atomic", "meta", "set_meta"),
    "transactions": ("atomic",),
    "ttl": ("meta", "set_meta"),
    "feed": ("session", "feed"),
}


@dataclass(frozen=True, slots=True)
class Context:
    """What a handler knows besides its request: the adapter's capabilities, the State's
    codec (update ops apply in it) and the adapter's name for messages."""

    declared: frozenset[str]
    codec: Codec
    describe: str

    def need(self, capability: str, what: str) -> None:
        if capability not in self.declared:
            raise Unsupported(
                f"{self.describe}: {what} needs the capability {capability!r} "
                f"({capabilities.COVERS[capability]}), which it does not declare "
                f"(it declares {sorted(self.declared) or 'none'})"
            )

    @property
    def ttl(self) -> bool:
        return "ttl" in self.declared

    @property
    def versions(self) -> bool:
        return "versions" in self.declared


def capabilities_of(adapter: StateAdapter | AsyncStateAdapter) -> frozenset[str]:
    """The adapter's declared capabilities, checked against what it implements: a promise the
    adapter cannot keep is refused when it is opened, not discovered at the first write."""
    declared = capabilities.check(adapter.capabilities)
    base = AsyncStateAdapter if isinstance(adapter, AsyncStateAdapter) else StateAdapter
    for capability in sorted(declared):
        for method in NEEDS[capability]:
            if getattr(type(adapter), method) is getattr(base, method):
                raise InvalidInput(
                    f"{type(adapter).__name__} declares {capability!r} but does not implement "
                    f"{method}()"
                )
    return declared


# -- what every handler shares ------------------------------------------------------
#
# A group may expire as a whole (a trace scope, ``GroupMeta.expires_at``): past its deadline it
# is absent to every read, and the first write (or cleanup) removes it, floor and all, before
# anything else (`_settle`). A write with a group TTL moves the deadline once it went through
# (`_slide`), and a group that a removal empties loses it, as a Redis hash emptied is deleted
# with its expiry. An item's own expiry and its group's: the earlier wins.


def now_ms() -> int:
    return int(time.time() * 1000)


def expired(at: int | None, now: int) -> bool:
    """Whether an expiry (ms since the epoch, None: none) has passed at ``now``."""
    return at is not None and at <= now


def _earlier(at: int | None, deadline: int | None) -> int | None:
    if at is None or deadline is None:
        return deadline if at is None else at
    return min(at, deadline)


def _deadline(ctx: Context, group: str) -> Steps[int | None]:
    """When the group expires as a whole, if it does (an adapter without ``ttl``: never)."""
    if not ctx.ttl:
        return None
    meta: GroupMeta = yield ("meta", (group,))
    return meta.expires_at


def _live(ctx: Context, group: str, key: str, now: int) -> Steps[tuple[Record | None, int | None]]:
    """The item if it is live, with when it expires (its own expiry or its group's)."""
    record: Record | None = yield ("get", (group, key))
    if record is None or expired(record.expires_at, now):
        return None, None
    deadline = yield from _deadline(ctx, group)
    if expired(deadline, now):
        return None, None
    return record, _earlier(record.expires_at, deadline)


def _live_items(ctx: Context, group: str, now: int) -> Steps[list[tuple[str, Record]]]:
    if expired((yield from _deadline(ctx, group)), now):
        return []
    items: Iterable[tuple[str, Record]] = yield ("items", (group,))
    return [(k, r) for k, r in items if not expired(r.expires_at, now)]


def _exists(group: str) -> Steps[bool]:
    items: Iterable[tuple[str, Record]] = yield ("items", (group,))
    return any(True for _ in items)


def _settle(ctx: Context, group: str, now: int) -> Steps[None]:
    """Before a write: a group past its deadline goes first, floor and all."""
    if ctx.ttl:
        meta: GroupMeta = yield ("meta", (group,))
        if expired(meta.expires_at, now):
            yield ("clear", (group,))
            yield ("set_meta", (group, GroupMeta()))


def _slide(ctx: Context, group: str, ms: int | None, now: int) -> Steps[None]:
    """After a write with a group TTL: the group, if it still exists, expires ``ms`` from now."""
    if ms is not None and (yield from _exists(group)):
        meta: GroupMeta = yield ("meta", (group,))
        yield ("set_meta", (group, replace(meta, expires_at=now + ms)))


def _raise_floor(ctx: Context, group: str, version: int) -> Steps[None]:
    if not ctx.versions:
        return
    meta: GroupMeta = yield ("meta", (group,))
    if version > meta.floor:
        yield ("set_meta", (group, replace(meta, floor=version)))


def _current(ctx: Context, group: str, key: str, now: int) -> Steps[Record | None]:
    """The item a write finds (after `_settle`): an expired one is removed first, its version
    still raising the floor, so that the write starts from nothing, as on Redis."""
    record: Record | None = yield ("get", (group, key))
    if record is not None and expired(record.expires_at, now):
        yield from _remove(ctx, group, key, record)
        return None
    return record


def _remove(ctx: Context, group: str, key: str, record: Record) -> Steps[None]:
    yield ("delete", (group, key))
    yield from _raise_floor(ctx, group, record.version + 1)
    if ctx.ttl:
        meta: GroupMeta = yield ("meta", (group,))
        if meta.expires_at is not None and not (yield from _exists(group)):
            yield ("set_meta", (group, replace(meta, expires_at=None)))  # emptied: gone


def _next_version(ctx: Context, group: str, current: Record | None) -> Steps[int]:
    if current is not None:
        return current.version + 1
    if not ctx.versions:
        return 1
    meta: GroupMeta = yield ("meta", (group,))
    return meta.floor + 1


def _check(group: str, key: str, expected: int | None, current: Record | None) -> None:
    found = current.version if current is not None else 0
    if expected is not None and expected != found:
        raise VersionConflict([(group, key, expected, found)])


def _expiry(how: str, previous: int | None, created: bool, now: int) -> int | None:
    """The expiry an instruction leaves (see apply_expiry in lua/include/ttl.lua)."""
    if how == "keep":
        return previous
    if how.startswith("keep:"):
        return now + int(how[5:]) if created else previous
    return now + int(how) if how else None


def _needs(ctx: Context, version: int | None, expire: str, group_ttl: int | None) -> None:
    """What a write asks for beyond plain storage, refused before anything is written."""
    if version is not None:
        ctx.need("versions", "a version= condition")
    if expire and not expire.startswith("keep"):
        ctx.need("ttl", "a TTL")
    if group_ttl is not None:
        ctx.need("ttl", "a group TTL")


# -- reads ----------------------------------------------------------------------------


@HANDLERS.on(ops.Get)
def _get(ctx: Context, op: ops.Get) -> Steps[bytes | None]:
    record, _ = yield from _live(ctx, op.group, op.key, now_ms())
    return record.data if record else None


@HANDLERS.on(ops.GetItem)
def _get_item(ctx: Context, op: ops.GetItem) -> Steps[ops.RawItem | None]:
    record, at = yield from _live(ctx, op.group, op.key, now_ms())
    if record is None:
        return None
    return ops.RawItem(record.data, record.version, at / 1000 if at is not None else None)


@HANDLERS.on(ops.GetMany)
def _get_many(ctx: Context, op: ops.GetMany) -> Steps[list[bytes | None]]:
    now, found = now_ms(), []
    for key in op.keys:
        record, _ = yield from _live(ctx, op.group, key, now)
        found.append(record.data if record else None)
    return found


@HANDLERS.on(ops.GetAll)
def _get_all(ctx: Context, op: ops.GetAll) -> Steps[dict[str, bytes]]:
    return {k: r.data for k, r in (yield from _live_items(ctx, op.group, now_ms()))}


@HANDLERS.on(ops.Values)
def _values(ctx: Context, op: ops.Values) -> Steps[list[bytes]]:
    return [r.data for _, r in (yield from _live_items(ctx, op.group, now_ms()))]


@HANDLERS.on(ops.Keys)
def _keys(ctx: Context, op: ops.Keys) -> Steps[list[str]]:
    return [k for k, _ in (yield from _live_items(ctx, op.group, now_ms()))]


@HANDLERS.on(ops.ScanPage)
def _scan_page(ctx: Context, op: ops.ScanPage) -> Steps[tuple[int, list[tuple[str, bytes]]]]:
    # One page: the adapter's listing is the unit it can give.
    return 0, [(k, r.data) for k, r in (yield from _live_items(ctx, op.group, now_ms()))]


@HANDLERS.on(ops.QueryPage)
def _query_page(ctx: Context, op: ops.QueryPage) -> Steps[ops.QueryReply]:
    """The whole group as one page, filtered by the reference semantics (motia_state.query):
    the adapter's listing is the unit it can give. A value that does not decode matches
    nothing, as on Redis."""
    now = now_ms()
    deadline = yield from _deadline(ctx, op.group)
    found: list[ops.QueryMatch] = []
    for key, record in (yield from _live_items(ctx, op.group, now)):
        try:
            value = ctx.codec.decode(record.data)
        except DecodeError:
            continue
        if query.matches(op.reference, value):
            at = _earlier(record.expires_at, deadline)
            found.append(ops.QueryMatch(key, record.data, record.version, at))
    if op.cursor == "0" and op.returned:
        returned = set(query.digests(op.returned))
        found = [m for m in found if query.digest(m.key) not in returned]
    if op.mode == "count":
        return ops.QueryReply("0", "0", len(found), [], len(found))
    return ops.QueryReply("0", "0", len(found), found, len(found))


@HANDLERS.on(ops.ListGroups)
def _list_groups(ctx: Context, op: ops.ListGroups) -> Steps[list[str]]:
    listed: Iterable[str] = yield ("list_groups", ())
    names = {name for name in listed if not name.startswith(RESERVED_GROUP_PREFIX)}
    if not ctx.ttl:
        return sorted(names)
    now, live = now_ms(), []
    for name in sorted(names):  # a group whose items all expired is not listed
        if (yield from _live_items(ctx, name, now)):
            live.append(name)
    return live


@HANDLERS.on(ops.Stats)
def _stats(ctx: Context, op: ops.Stats) -> Steps[tuple[list[ops.GroupStats], int | None]]:
    now, rows = now_ms(), []
    for group in op.groups:
        gone = expired((yield from _deadline(ctx, group)), now)
        items: list[tuple[str, Record]] = [] if gone else list((yield ("items", (group,))))
        with_ttl = sum(1 for _, r in items if r.expires_at is not None)
        live = sum(1 for _, r in items if not expired(r.expires_at, now))
        rows.append(ops.GroupStats(group, live, with_ttl, None, None))
    return rows, None


@HANDLERS.on(ops.Ttl)
def _ttl(ctx: Context, op: ops.Ttl) -> Steps[float | None]:
    now = now_ms()
    record, at = yield from _live(ctx, op.group, op.key, now)
    if record is None or at is None:
        return None
    return max(0.0, (at - now) / 1000)


@HANDLERS.on(ops.GroupTtl)
def _group_ttl(ctx: Context, op: ops.GroupTtl) -> Steps[float | None]:
    now = now_ms()
    at = yield from _deadline(ctx, op.group)
    if at is None or expired(at, now) or not (yield from _exists(op.group)):
        return None
    return (at - now) / 1000


# -- writes ---------------------------------------------------------------------------


@HANDLERS.on(ops.Set)
def _set(ctx: Context, op: ops.Set) -> Steps[int]:
    _needs(ctx, op.version, op.expire, op.group_ttl)
    now = now_ms()
    yield from _settle(ctx, op.group, now)
    current = yield from _current(ctx, op.group, op.key, now)
    _check(op.group, op.key, op.version, current)
    version = yield from _next_version(ctx, op.group, current)
    record = Record(op.data, version, _expiry(op.expire, None, current is None, now))
    yield ("set", (op.group, op.key, record))
    yield from _slide(ctx, op.group, op.group_ttl, now)
    return version


@HANDLERS.on(ops.SetMany)
def _set_many(ctx: Context, op: ops.SetMany) -> Steps[int]:
    ctx.need("transactions", "set_many (all or nothing)")
    _needs(ctx, None, op.expire, op.group_ttl)
    if not op.items:
        return 0
    now = now_ms()
    yield from _settle(ctx, op.group, now)
    for key, data in op.items:
        current = yield from _current(ctx, op.group, key, now)
        version = yield from _next_version(ctx, op.group, current)
        record = Record(data, version, _expiry(op.expire, None, current is None, now))
        yield ("set", (op.group, key, record))
    yield from _slide(ctx, op.group, op.group_ttl, now)
    return len(op.items)


@HANDLERS.on(ops.Delete)
def _delete(ctx: Context, op: ops.Delete) -> Steps[bytes | None]:
    _needs(ctx, op.version, "", op.group_ttl)
    now = now_ms()
    yield from _settle(ctx, op.group, now)
    current = yield from _current(ctx, op.group, op.key, now)
    _check(op.group, op.key, op.version, current)
    if current is not None:
        yield from _remove(ctx, op.group, op.key, current)
    yield from _slide(ctx, op.group, op.group_ttl, now)
    return current.data if current else None


@HANDLERS.on(ops.DeleteMany)
def _delete_many(ctx: Context, op: ops.DeleteMany) -> Steps[int]:
    ctx.need("transactions", "delete_many (all or nothing)")
    _needs(ctx, None, "", op.group_ttl)
    now, removed = now_ms(), 0
    yield from _settle(ctx, op.group, now)
    for key in op.keys:
        current = yield from _current(ctx, op.group, key, now)
        if current is not None:
            yield from _remove(ctx, op.group, key, current)
            removed += 1
    yield from _slide(ctx, op.group, op.group_ttl, now)
    return removed


@HANDLERS.on(ops.Clear)
def _clear(ctx: Context, op: ops.Clear) -> Steps[int]:
    now = now_ms()
    yield from _settle(ctx, op.group, now)
    items: list[tuple[str, Record]] = list((yield ("items", (op.group,))))
    yield ("clear", (op.group,))
    if ctx.versions or ctx.ttl:
        meta: GroupMeta = yield ("meta", (op.group,))
        top = max((r.version for _, r in items), default=0)
        floor = max(top, meta.floor) + 1 if items and ctx.versions else meta.floor
        if meta != GroupMeta(floor, None):  # the group's own expiry goes with it
            yield ("set_meta", (op.group, GroupMeta(floor, None)))
    return sum(1 for _, r in items if not expired(r.expires_at, now))


@HANDLERS.on(ops.Update)
def _update(ctx: Context, op: ops.Update) -> Steps[tuple[int, bytes]]:
    ctx.need("versions", f"{op.name} (a read, change and write no other writer may split)")
    _needs(ctx, op.version, op.expire, op.group_ttl)
    now = now_ms()
    yield from _settle(ctx, op.group, now)
    current = yield from _current(ctx, op.group, op.key, now)
    _check(op.group, op.key, op.version, current)
    try:
        value = ctx.codec.decode(current.data if current else op.start)
    except DecodeError:
        raise updates.fail("not_decodable", None) from None
    new = ctx.codec.encode(updates.apply(value, op.steps))
    if len(new) > op.max_bytes:
        raise updates.fail("too_large", None)
    previous = current.expires_at if current else None
    version = yield from _next_version(ctx, op.group, current)
    record = Record(new, version, _expiry(op.expire, previous, current is None, now))
    yield ("set", (op.group, op.key, record))
    yield from _slide(ctx, op.group, op.group_ttl, now)
    return version, new


@HANDLERS.on(ops.SetExpiry)
def _set_expiry(ctx: Context, op: ops.SetExpiry) -> Steps[bool]:
    ctx.need("ttl", "expire and persist")
    now = now_ms()
    yield from _settle(ctx, op.group, now)
    current = yield from _current(ctx, op.group, op.key, now)
    yield from _slide(ctx, op.group, op.group_ttl, now)
    if current is None:
        return False
    if op.ms is None:
        if current.expires_at is None:
            return False
        yield ("set", (op.group, op.key, replace(current, expires_at=None)))
        return True
    yield ("set", (op.group, op.key, replace(current, expires_at=now + op.ms)))
    return True


@HANDLERS.on(ops.SetGroupExpiry)
def _set_group_expiry(ctx: Context, op: ops.SetGroupExpiry) -> Steps[bool]:
    ctx.need("ttl", "expire_group and persist_group")
    now = now_ms()
    yield from _settle(ctx, op.group, now)
    if not (yield from _exists(op.group)):
        return False
    meta: GroupMeta = yield ("meta", (op.group,))
    if op.ms is None:
        if meta.expires_at is None:
            return False
        yield ("set_meta", (op.group, replace(meta, expires_at=None)))
        return True
    yield ("set_meta", (op.group, replace(meta, expires_at=now + op.ms)))
    return True


@HANDLERS.on(ops.Cleanup)
def _cleanup(ctx: Context, op: ops.Cleanup) -> Steps[int]:
    now = now_ms()
    # Idempotency receipts expire too: removed here, and first, so that the adapter's own
    # cleanup neither counts them as items nor keeps a version floor for their group.
    receipts: list[tuple[str, Record]] = list((yield ("items", (RECEIPTS,))))
    for key, record in receipts:
        if expired(record.expires_at, now):
            yield ("delete", (RECEIPTS, key))
    if not ctx.ttl:  # no item can expire
        return 0
    for group in list((yield ("expired_groups", (now,)))):
        yield from _settle(ctx, group, now)  # not counted: its items expired with it
    removed: int = yield ("cleanup", (now,))
    return removed


@dataclass
class Overlay:
    """A transaction's own view: its writes are kept here, its reads see them, and nothing
    reaches the adapter until `flush`, once every op has applied."""

    records: dict[tuple[str, str], Record | None] = field(default_factory=dict)
    metas: dict[str, GroupMeta] = field(default_factory=dict)
    cleared: set[str] = field(default_factory=set)  # groups an expired scope emptied

    def run(self, steps: Steps[T]) -> Steps[T]:
        try:
            use = next(steps)
            while True:
                method, args = use
                if method == "get" and args in self.records:
                    result: Any = self.records[args]
                elif method == "get" and args[0] in self.cleared:
                    result = None
                elif method == "clear":
                    self.cleared.add(args[0])
                    self.records = {k: v for k, v in self.records.items() if k[0] != args[0]}
                    result = None
                elif method == "meta" and args[0] in self.metas:
                    result = self.metas[args[0]]
                elif method == "set":
                    self.records[args[0], args[1]] = args[2]
                    result = None
                elif method == "delete":
                    self.records[args] = None
                    result = None
                elif method == "set_meta":
                    self.metas[args[0]] = args[1]
                    result = None
                elif method == "items":
                    result = yield from self._items(use)
                elif method in ("get", "meta"):
                    result = yield use
                else:  # a transaction holds item writes only
                    raise AssertionError(f"a transaction op called {method}")
                use = steps.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    def _items(self, use: Use) -> Steps[list[tuple[str, Record]]]:
        group = use[1][0]
        stored: Iterable[tuple[str, Record]] = [] if group in self.cleared else (yield use)
        merged: dict[str, Record | None] = dict(stored)
        merged.update((k, r) for (g, k), r in self.records.items() if g == group)
        return [(k, r) for k, r in merged.items() if r is not None]

    def flush(self) -> Steps[None]:
        for group in self.cleared:
            yield ("clear", (group,))
        for (group, key), record in self.records.items():
            if record is None:
                yield ("delete", (group, key))
            else:
                yield ("set", (group, key, record))
        for group, meta in self.metas.items():
            yield ("set_meta", (group, meta))


@HANDLERS.on(ops.Transaction)
def _transaction(ctx: Context, op: ops.Transaction) -> Steps[list[Any]]:
    emits = {i: sub for i, sub in enumerate(op.ops) if isinstance(sub, ops.Emit)}
    if emits:  # refused before any op applies: an event needs the feed to land in
        ctx.need("feed", OUTBOX)
    ctx.need("transactions", "transaction() (all or nothing)")
    overlay = Overlay()
    results: list[Any] = []
    conflicts: list[tuple[str, str, int | None, int]] = []
    for sub in op.ops:
        if isinstance(sub, ops.Emit):
            results.append(None)  # recorded once every other op has applied
            continue
        try:
            results.append((yield from overlay.run(HANDLERS.table[type(sub)](ctx, sub))))
        except VersionConflict as exc:
            conflicts += exc.conflicts
            results.append(None)
    if conflicts:
        raise VersionConflict(conflicts)
    yield from overlay.flush()
    for i, emit in emits.items():  # in the atomic block, after the state writes, in op order
        results[i] = yield from _emit(emit)
    return results


# What the adapter's `feed` is handed an `ops.Emit` for: see `_emit`.
OUTBOX = "tx.emit and emit= (events recorded in the feed with the state: the outbox)"


def _emit(op: ops.Emit) -> Steps[str]:
    """An event, as an adapter that declares ``feed`` (and ``transactions``) records it: its
    `feed` method gets the `ops.Emit` inside the transaction's atomic block, after the state
    writes, and returns the event's id (a non-empty str, the entry id its watch plans read).
    Anything else is a broken promise, a `BackendUnavailable` raised inside the block, which
    rolls back the state writes with it."""
    event_id = yield ("feed", (op,))
    if type(event_id) is not str or not event_id:
        raise TypeError(f"feed() returned {brief(event_id)} for an ops.Emit, not an event id")
    return event_id


@HANDLERS.on(ops.Emit)
def _emit_alone(ctx: Context, op: ops.Emit) -> Steps[str]:
    """An event alone: a transaction of that one op, refused and recorded as in any other."""
    (event_id,) = yield from _transaction(ctx, ops.Transaction((op,), 0))
    return str(event_id)


def _receipted(ctx: Context, op: Any, idem: ops.Idem, steps: Steps[T]) -> Steps[T]:
    """``steps`` of a write with an idempotency key: a live receipt of the key answers with
    the first call's result, running nothing; else the write runs and leaves its receipt, in
    the same atomic block (see `motia_state.idempotency`). A write its condition refused
    raises before the receipt, so its retry is a first attempt."""
    ctx.need("versions", "an idempotency key (a receipt written in the write's atomic block)")
    group = idempotency.receipt_group(op)
    key, now = idempotency.receipt_key(group, idem), now_ms()
    receipt: Record | None = yield ("get", (RECEIPTS, key))
    if receipt is not None and not expired(receipt.expires_at, now):
        unpacked = idempotency.unpack(receipt.data)
        if unpacked is not None and unpacked[0] != idem.fingerprint:
            raise IdempotencyKeyReused(
                f"idempotency key {brief(idem.key)} on group {brief(group)} already applied a "
                "call with other arguments; nothing was written"
            )
        if unpacked is None or not idempotency.fits(op, unpacked[1]):
            raise DecodeError(
                f"the receipt of idempotency key {brief(idem.key)} on group {brief(group)} is "
                "damaged (another tool wrote it?); nothing was written"
            )
        result = unpacked[1]
        steps.close()
        return result  # type: ignore[no-any-return]
    result = yield from steps
    blob = idempotency.pack(idem.fingerprint, result)
    yield ("set", (RECEIPTS, key, Record(blob, 1, now + idem.ttl_ms)))
    return result


def steps_of(ctx: Context, op: ops.Request[T]) -> Steps[T]:
    """The handler's steps for ``op``, receipted when it carries an idempotency key."""
    steps: Steps[T] = HANDLERS.table[type(op)](ctx, op)
    idem: ops.Idem | None = getattr(op, "idem", None)
    return steps if idem is None else _receipted(ctx, op, idem, steps)


def _feed(ctx: Context, op: ops.Request[Any]) -> Steps[Any]:
    ctx.need("feed", "the change feed (watch, on_change, ack, the keyspace bridge)")
    return (yield ("feed", (op,)))


for _kind in [kind for kind, traits in ops.REGISTRY.items() if traits.feed]:
    if _kind is not ops.Emit:  # (its own handler, above)
        HANDLERS.on(_kind)(_feed)


# -- running the handlers ------------------------------------------------------------------


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret of the URL replaced by ``***``: an adapter's own message may
    quote the URL it was opened with, password and all."""
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


def failure_text(exc: BaseException, secrets: Iterable[str]) -> tuple[str, bool]:
    """An adapter's exception for a message, and whether it held a secret (then the
    exception itself must not travel along as the cause)."""
    text = brief(str(exc))
    shown = scrub(text, secrets)
    return f"{type(exc).__name__}: {shown}", shown != text


def scrubbed(exc: StateError, secrets: Iterable[str]) -> StateError:
    """An adapter may raise the engine's own errors too (sqlite:// does, naming its file):
    such an error goes on as it is, typed as the adapter chose, but not with a secret of the
    URL in its message, nor with the exception it came from, which may quote it too."""
    text = str(exc)
    shown = scrub(text, secrets)
    if shown != text:
        exc.args = (shown,)
        exc.__cause__, exc.__suppress_context__ = None, True
    return exc


def _failed(
    describe: str, op: ops.Request[Any], exc: Exception, atomic: bool, secrets: Iterable[str]
) -> StateError:
    """An adapter's own exception as the engine's: a write that may have stored part of its
    work (no all-or-nothing block around it) is `OutcomeUnknown`. Its cause is the adapter's
    exception unless that quoted a secret."""
    text, secret = failure_text(exc, secrets)
    detail = f"{describe}: {text}"
    traits = ops.traits(op)
    error: StateError
    if traits.writes and not traits.resend and not atomic:
        error = OutcomeUnknown(f"{detail} (the write may have applied in part)")
    else:
        error = BackendUnavailable(detail)
    error.__cause__ = None if secret else exc
    return error


class Run(Generic[T]):
    """What became of the handler inside an `atomic` block, told apart from what the block's
    exit did: an exception the block swallowed (an ``except: rollback()`` that forgot to
    raise again) must still reach the caller, and a failure after the handler finished (the
    commit) may have applied the write, so its outcome is unknown, not "nothing written"."""

    __slots__ = ("failure", "ran", "value")

    def __init__(self) -> None:
        self.failure: BaseException | None = None
        self.ran = False  # the handler finished: everything after it is the commit
        self.value: T

    def block(self, drive: Callable[[Steps[T]], T], steps: Steps[T]) -> None:
        try:
            self.value = drive(steps)
        except BaseException as exc:
            self.failure = exc
            raise
        self.ran = True

    def result(self) -> T:
        if self.failure is not None:  # atomic() suppressed it; whatever it did, the call failed
            raise self.failure
        return self.value


def _record(record: object, where: str) -> Record:
    if not isinstance(record, Record):
        raise TypeError(f"{where} {type(record).__name__}, not a Record")
    data, version, at = record.data, record.version, record.expires_at
    if not isinstance(data, bytes):
        raise TypeError(f"{where} a Record whose Record.data is {type(data).__name__}, not bytes")
    if not isinstance(version, int) or isinstance(version, bool):
        raise TypeError(f"{where} a Record whose Record.version is {brief(version)}")
    if at is not None and (not isinstance(at, int) or isinstance(at, bool)):
        raise TypeError(f"{where} a Record whose Record.expires_at is {brief(at)}")
    return record


def checked(adapter: object, method: str, result: Any) -> Any:
    """What an adapter returned, as the handlers expect it: a wrong type is a `TypeError`
    naming the method (so a `BackendUnavailable`), never a wrong value handed on to the
    caller or an error of the engine's own code. Listings are read once, here."""
    where = f"{type(adapter).__name__}.{method} returned"
    if method == "get":
        return None if result is None else _record(result, where)
    if method == "items":
        if isinstance(result, (dict, str, bytes)) or not isinstance(result, Iterable):
            raise TypeError(f"{where} {type(result).__name__}, not (key, Record) pairs")
        pairs = list(result)
        for pair in pairs:  # exact types first: this runs for every item of a group read
            if type(pair) is tuple and len(pair) == 2 and type(pair[0]) is str:
                record = pair[1]
                if (
                    type(record) is Record
                    and type(record.data) is bytes
                    and type(record.version) is int
                    and (record.expires_at is None or type(record.expires_at) is int)
                ):
                    continue
            elif not (isinstance(pair, tuple) and len(pair) == 2 and isinstance(pair[0], str)):
                raise TypeError(f"{where} {brief(pair)} among its (key, Record) pairs")
            _record(pair[1], where)
        return pairs
    if method in ("list_groups", "expired_groups"):
        if isinstance(result, (dict, str, bytes)) or not isinstance(result, Iterable):
            raise TypeError(f"{where} {type(result).__name__}, not group names")
        names = list(result)
        if not all(isinstance(name, str) for name in names):
            raise TypeError(f"{where} a name that is not a str")
        return names
    if method == "meta":
        if not isinstance(result, GroupMeta):
            raise TypeError(f"{where} {brief(result)}, not a GroupMeta")
        floor, at = result.floor, result.expires_at
        if not isinstance(floor, int) or isinstance(floor, bool):
            raise TypeError(f"{where} a GroupMeta whose floor is {brief(floor)}")
        if at is not None and (not isinstance(at, int) or isinstance(at, bool)):
            raise TypeError(f"{where} a GroupMeta whose expires_at is {brief(at)}")
        return result
    if method == "cleanup" and (not isinstance(result, int) or isinstance(result, bool)):
        raise TypeError(f"{where} {brief(result)}, not a count")
    return result


def drive(
    adapter: StateAdapter, steps: Steps[T], check: Callable[[object, str, Any], Any] | None = None
) -> T:
    """Run a handler's steps on a synchronous adapter; ``check`` vets each result (`checked`;
    none for the engine's own in-process model)."""
    try:
        method, args = next(steps)
        while True:
            result = getattr(adapter, method)(*args)
            method, args = steps.send(result if check is None else check(adapter, method, result))
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]


class _Backend(Generic[A]):
    """What the sync and async backends over an adapter share: everything but the I/O."""

    def __init__(
        self, adapter: A, codec: Codec, describe: str, secrets: Iterable[str] = ()
    ) -> None:
        self.adapter: A = adapter
        self._secrets = tuple(secrets)
        self.capabilities = capabilities_of(adapter)
        self.describe = describe
        self._context = Context(self.capabilities, codec, self.describe)
        self._all_or_nothing = "transactions" in self.capabilities

    def session(self) -> Any:
        self._context.need("feed", "the change feed (watch, on_change, ack, the keyspace bridge)")
        return self.adapter.session()


class AdapterBackend(_Backend[StateAdapter]):
    """A `StateAdapter` as the engine's synchronous backend."""

    def execute(self, op: ops.Request[T]) -> T:
        steps = steps_of(self._context, op)
        run: Run[T] = Run()
        try:
            if not (ops.traits(op).writes and self.capabilities & ATOMIC):
                return self._drive(steps)
            with self.adapter.atomic():
                run.block(self._drive, steps)
            return run.result()
        except StateError as exc:
            raise scrubbed(exc, self._secrets)  # noqa: B904 (the same error, re-raised)
        except Exception as exc:
            all_or_nothing = self._all_or_nothing and not run.ran
            error = _failed(self.describe, op, exc, all_or_nothing, self._secrets)
            raise error from error.__cause__

    def _drive(self, steps: Steps[T]) -> T:
        return drive(self.adapter, steps, checked)

    def close(self) -> None:
        self.adapter.close()


class AsyncAdapterBackend(_Backend[AsyncStateAdapter]):
    """An `AsyncStateAdapter` as the engine's asyncio backend."""

    async def execute(self, op: ops.Request[T]) -> T:
        steps = steps_of(self._context, op)
        run: Run[T] = Run()
        try:
            if not (ops.traits(op).writes and self.capabilities & ATOMIC):
                return await self._drive(steps)
            async with self.adapter.atomic():
                try:
                    run.value = await self._drive(steps)
                except BaseException as exc:
                    run.failure = exc
                    raise
                run.ran = True
            return run.result()
        except StateError as exc:
            raise scrubbed(exc, self._secrets)  # noqa: B904 (the same error, re-raised)
        except Exception as exc:
            all_or_nothing = self._all_or_nothing and not run.ran
            error = _failed(self.describe, op, exc, all_or_nothing, self._secrets)
            raise error from error.__cause__

    async def _drive(self, steps: Steps[T]) -> T:
        adapter = self.adapter
        try:
            method, args = next(steps)
            while True:
                result = checked(adapter, method, await getattr(adapter, method)(*args))
                method, args = steps.send(result)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        await self.adapter.close()


class OnLoop:
    """An `AsyncStateAdapter` under the synchronous `State`: its coroutines run on an event
    loop of this backend's own, in a daemon thread, so that callers in any thread share the
    adapter's connections (which belong to that loop). `close` lets the calls in flight end
    before it closes the adapter and the loop: a call whose loop stopped under it would wait
    for ever. After it, calls are refused."""

    def __init__(self, backend: AsyncAdapterBackend) -> None:
        self._backend = backend
        self.capabilities = backend.capabilities
        self.describe = backend.describe
        self._loop = asyncio.new_event_loop()
        self._guard = threading.Lock()
        self._closed = False
        self._calls: set[concurrent.futures.Future[Any]] = set()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"motia-state {self.describe}", daemon=True
        )
        self._thread.start()

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        with self._guard:
            if self._closed:
                coroutine.close()  # never started: nothing of the call ran
                raise BackendUnavailable(f"{self.describe} is closed")
            future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
            self._calls.add(future)
        try:
            return future.result()
        finally:
            with self._guard:
                self._calls.discard(future)

    def execute(self, op: ops.Request[T]) -> T:
        return self._call(self._backend.execute(op))

    def close(self) -> None:
        with self._guard:
            if self._closed:
                return
            self._closed = True
            in_flight = list(self._calls)
        concurrent.futures.wait(in_flight)
        try:
            asyncio.run_coroutine_threadsafe(self._backend.aclose(), self._loop).result()
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
            self._loop.close()

    def session(self) -> Any:
        return self._backend.session()
