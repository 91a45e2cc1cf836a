"""The state model shared by the in-process backends (memory:// and file://).

Both keep ``{group: {key: Entry}}`` and apply operations to it with exactly the
version and expiry rules of the Redis scripts in ``lua/``; they differ only in
where the model lives between calls. Time is this machine's clock, in ms.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import ops, updates
from ..codecs import Codec
from ..errors import DecodeError, Unsupported, VersionConflict

T = TypeVar("T")

Handler = Callable[["Groups", Any, Codec], Any]
HANDLERS: ops.Handlers[Handler] = ops.Handlers("memory:// and file://")


@dataclass(slots=True)
class Entry:
    data: bytes
    version: int
    expires_at: int | None = None  # ms since the epoch


FLOOR_TTL_MS = 7 * 24 * 3600 * 1000  # as in lua/include/item.lua


class Groups(dict[str, dict[str, Entry]]):
    """``{group: {key: Entry}}``, plus each group's version *floor*: the highest version a
    removed item of the group reached. A new item starts above it, so per item, versions
    only ever increase; an empty group's floor expires after a week (as in
    lua/include/item.lua). ``deadlines``: the groups that expire as a whole, and when (as in
    lua/include/group.lua): past it, a group is absent to every read, and the first write or
    cleanup removes it with its floor; a group emptied loses its deadline."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.floors: dict[str, int] = {}
        self.floor_expiry: dict[str, int] = {}  # ms since the epoch, for empty groups
        self.deadlines: dict[str, int] = {}  # ms since the epoch

    def copy_floors(self, other: Groups) -> None:
        self.floors, self.floor_expiry = dict(other.floors), dict(other.floor_expiry)
        self.deadlines = dict(other.deadlines)

    def alive(self, group: str, now: int) -> dict[str, Entry]:
        """The group's items, none when the group has expired as a whole (expired items
        included: see `_alive`)."""
        at = self.deadlines.get(group)
        if at is not None and at <= now:
            return {}
        return self.get(group, {})

    def deadline(self, group: str, now: int) -> int | None:
        """When the group expires as a whole (ms), if it exists and does."""
        at = self.deadlines.get(group)
        return at if at is not None and at > now and group in self else None

    def settle(self, group: str, now: int) -> bool:
        """Before a write: remove the group if it has expired as a whole, floor and all."""
        at = self.deadlines.get(group)
        if at is None or at > now:
            return False
        del self.deadlines[group]
        self.pop(group, None)
        self.floors.pop(group, None)
        self.floor_expiry.pop(group, None)
        return True

    def slide(self, group: str, ms: int | None, now: int) -> None:
        """After a write that went through: a group TTL moves the group's deadline."""
        if ms is not None and group in self:
            self.deadlines[group] = now + ms

    def first_version(self, group: str) -> int:
        at = self.floor_expiry.pop(group, None)  # the group is no longer empty
        if at is not None and at <= now_ms():
            self.floors.pop(group, None)
        return self.floors.get(group, 0) + 1

    def forget_expired_floors(self, now: int) -> None:
        for group in [g for g, at in self.floor_expiry.items() if at <= now]:
            del self.floor_expiry[group]
            self.floors.pop(group, None)

    def raise_floor(self, group: str, version: int) -> None:
        if version > self.floors.get(group, 0):
            self.floors[group] = version
        if group not in self:
            self.floor_expiry[group] = now_ms() + FLOOR_TTL_MS


def now_ms() -> int:
    return int(time.time() * 1000)


def _alive(entry: Entry | None, now: int) -> Entry | None:
    if entry is None or (entry.expires_at is not None and entry.expires_at <= now):
        return None
    return entry


def _live_items(groups: Groups, group: str, now: int) -> dict[str, Entry]:
    return {k: e for k, e in groups.alive(group, now).items() if _alive(e, now)}


def _earlier(at: int | None, deadline: int | None) -> int | None:
    """An item's expiry in a group that may expire as a whole: the earlier of the two."""
    if at is None or deadline is None:
        return deadline if at is None else at
    return min(at, deadline)


def _purge(groups: Groups, group: str, key: str, now: int) -> None:
    """An expired item is absent to every write (a new one starts above its version)."""
    items = groups.get(group)
    if items and key in items and not _alive(items[key], now):
        _pop(groups, group, key)


def _expiry(how: str, previous: int | None, created: bool, now: int) -> int | None:
    """The expiry an instruction leaves (see apply_expiry in lua/include/ttl.lua)."""
    if how == "keep":
        return previous
    if how.startswith("keep:"):
        return now + int(how[5:]) if created else previous
    return now + int(how) if how else None


def _current(items: dict[str, Entry] | None, key: str) -> int:
    entry = items.get(key) if items else None
    return entry.version if entry else 0


def _check(group: str, key: str, expected: int | None, current: int) -> None:
    if expected is not None and expected != current:
        raise VersionConflict([(group, key, expected, current)])


@HANDLERS.on(ops.Get)
def _get(groups: Groups, op: ops.Get, codec: Codec) -> bytes | None:
    now = now_ms()
    entry = _alive(groups.alive(op.group, now).get(op.key), now)
    return entry.data if entry else None


@HANDLERS.on(ops.GetItem)
def _get_item(groups: Groups, op: ops.GetItem, codec: Codec) -> ops.RawItem | None:
    now = now_ms()
    entry = _alive(groups.alive(op.group, now).get(op.key), now)
    if entry is None:
        return None
    at = _earlier(entry.expires_at, groups.deadline(op.group, now))
    return ops.RawItem(entry.data, entry.version, at / 1000 if at is not None else None)


@HANDLERS.on(ops.GetMany)
def _get_many(groups: Groups, op: ops.GetMany, codec: Codec) -> list[bytes | None]:
    now = now_ms()
    items = groups.alive(op.group, now)
    return [e.data if (e := _alive(items.get(k), now)) else None for k in op.keys]


@HANDLERS.on(ops.GetAll)
def _get_all(groups: Groups, op: ops.GetAll, codec: Codec) -> dict[str, bytes]:
    return {k: e.data for k, e in _live_items(groups, op.group, now_ms()).items()}


@HANDLERS.on(ops.Values)
def _values(groups: Groups, op: ops.Values, codec: Codec) -> list[bytes]:
    return [e.data for e in _live_items(groups, op.group, now_ms()).values()]


@HANDLERS.on(ops.Keys)
def _keys(groups: Groups, op: ops.Keys, codec: Codec) -> list[str]:
    return list(_live_items(groups, op.group, now_ms()))


@HANDLERS.on(ops.ScanPage)
def _scan_page(
    groups: Groups, op: ops.ScanPage, codec: Codec
) -> tuple[int, list[tuple[str, bytes]]]:
    # The whole group is already in this process: one page, decoded lazily by the caller.
    return 0, [(k, e.data) for k, e in _live_items(groups, op.group, now_ms()).items()]


@HANDLERS.on(ops.ListGroups)
def _list_groups(groups: Groups, op: ops.ListGroups, codec: Codec) -> list[str]:
    now = now_ms()
    return sorted(g for g in groups if _live_items(groups, g, now))


@HANDLERS.on(ops.Stats)
def _stats(groups: Groups, op: ops.Stats, codec: Codec) -> tuple[list[ops.GroupStats], int | None]:
    now, rows = now_ms(), []
    for group in op.groups:
        items = groups.alive(group, now)
        with_ttl = sum(1 for e in items.values() if e.expires_at is not None)
        rows.append(
            ops.GroupStats(group, len(_live_items(groups, group, now)), with_ttl, None, None)
        )
    return rows, None


@HANDLERS.on(ops.Ttl)
def _ttl(groups: Groups, op: ops.Ttl, codec: Codec) -> float | None:
    now = now_ms()
    entry = _alive(groups.alive(op.group, now).get(op.key), now)
    at = None if entry is None else _earlier(entry.expires_at, groups.deadline(op.group, now))
    if at is None:
        return None
    return max(0.0, (at - now) / 1000)


@HANDLERS.on(ops.GroupTtl)
def _group_ttl(groups: Groups, op: ops.GroupTtl, codec: Codec) -> float | None:
    now = now_ms()
    at = groups.deadline(op.group, now)
    return None if at is None else (at - now) / 1000


@HANDLERS.on(ops.SetGroupExpiry)
def _set_group_expiry(groups: Groups, op: ops.SetGroupExpiry, codec: Codec) -> bool:
    now = now_ms()
    groups.settle(op.group, now)
    if op.group not in groups:
        return False
    if op.ms is None:
        return groups.deadlines.pop(op.group, None) is not None
    groups.deadlines[op.group] = now + op.ms
    return True


@HANDLERS.on(ops.Set)
def _set(groups: Groups, op: ops.Set, codec: Codec) -> int:
    now = now_ms()
    groups.settle(op.group, now)
    _purge(groups, op.group, op.key, now)
    items = groups.get(op.group)
    current = _current(items, op.key)
    _check(op.group, op.key, op.version, current)
    version = current + 1 if current else groups.first_version(op.group)
    expires = _expiry(op.expire, None, current == 0, now)
    groups.setdefault(op.group, {})[op.key] = Entry(op.data, version, expires)
    groups.slide(op.group, op.group_ttl, now)
    return version


@HANDLERS.on(ops.SetMany)
def _set_many(groups: Groups, op: ops.SetMany, codec: Codec) -> int:
    if not op.items:
        return 0
    now = now_ms()
    groups.settle(op.group, now)
    for key, _ in op.items:
        _purge(groups, op.group, key, now)
    items = groups.setdefault(op.group, {})
    for key, data in op.items:
        current = _current(items, key)
        version = current + 1 if current else groups.first_version(op.group)
        items[key] = Entry(data, version, _expiry(op.expire, None, current == 0, now))
    groups.slide(op.group, op.group_ttl, now)
    return len(op.items)


def _pop(groups: Groups, group: str, key: str) -> Entry | None:
    items = groups.get(group)
    entry = items.pop(key, None) if items else None
    if items is not None and not items:
        del groups[group]
        groups.deadlines.pop(group, None)  # a group emptied no longer exists, nor its expiry
    if entry is not None:
        groups.raise_floor(group, entry.version + 1)
    return entry


@HANDLERS.on(ops.Delete)
def _delete(groups: Groups, op: ops.Delete, codec: Codec) -> bytes | None:
    now = now_ms()
    groups.settle(op.group, now)
    _purge(groups, op.group, op.key, now)
    _check(op.group, op.key, op.version, _current(groups.get(op.group), op.key))
    entry = _pop(groups, op.group, op.key)
    groups.slide(op.group, op.group_ttl, now)
    return entry.data if entry else None


@HANDLERS.on(ops.DeleteMany)
def _delete_many(groups: Groups, op: ops.DeleteMany, codec: Codec) -> int:
    now = now_ms()
    groups.settle(op.group, now)
    for key in op.keys:
        _purge(groups, op.group, key, now)
    removed = sum(_pop(groups, op.group, k) is not None for k in op.keys)
    groups.slide(op.group, op.group_ttl, now)
    return removed


@HANDLERS.on(ops.Clear)
def _clear(groups: Groups, op: ops.Clear, codec: Codec) -> int:
    now = now_ms()
    groups.settle(op.group, now)
    live = len(_live_items(groups, op.group, now))
    groups.deadlines.pop(op.group, None)
    items = groups.pop(op.group, None)
    if items:
        top = max(e.version for e in items.values())
        groups.raise_floor(op.group, max(top, groups.floors.get(op.group, 0)) + 1)
    return live


@HANDLERS.on(ops.Update)
def _update(groups: Groups, op: ops.Update, codec: Codec) -> tuple[int, bytes]:
    now = now_ms()
    groups.settle(op.group, now)
    _purge(groups, op.group, op.key, now)
    items = groups.get(op.group)
    current = _current(items, op.key)
    _check(op.group, op.key, op.version, current)
    previous = items[op.key] if items and current else None
    data = previous.data if previous else op.start
    try:
        value = codec.decode(data)
    except DecodeError:
        raise updates.fail("not_decodable", None) from None
    new = codec.encode(updates.apply(value, op.steps))
    if len(new) > op.max_bytes:
        raise updates.fail("too_large", None)
    expires = _expiry(op.expire, previous.expires_at if previous else None, current == 0, now)
    version = current + 1 if current else groups.first_version(op.group)
    groups.setdefault(op.group, {})[op.key] = Entry(new, version, expires)
    groups.slide(op.group, op.group_ttl, now)
    return version, new


@HANDLERS.on(ops.SetExpiry)
def _set_expiry(groups: Groups, op: ops.SetExpiry, codec: Codec) -> bool:
    now = now_ms()
    groups.settle(op.group, now)
    _purge(groups, op.group, op.key, now)
    groups.slide(op.group, op.group_ttl, now)
    entry = groups.get(op.group, {}).get(op.key)
    if entry is None:
        return False
    if op.ms is None:
        had = entry.expires_at is not None
        entry.expires_at = None
        return had
    entry.expires_at = now + op.ms
    return True


@HANDLERS.on(ops.Cleanup)
def _cleanup(groups: Groups, op: ops.Cleanup, codec: Codec) -> int:
    now = now_ms()
    for group in [g for g, at in groups.deadlines.items() if at <= now]:
        groups.settle(group, now)  # not counted: its items expired with it, as on Redis
    expired = [
        (g, k) for g, items in groups.items() for k, e in items.items() if not _alive(e, now)
    ]
    for group, key in expired:
        _pop(groups, group, key)
    groups.forget_expired_floors(now)
    return len(expired)


@HANDLERS.on(ops.Transaction)
def _transaction(groups: Groups, op: ops.Transaction, codec: Codec) -> list[Any]:
    # Work on copies of the touched groups; they replace the originals only if every op
    # applied. Entries are never changed in place here, so shallow copies are enough.
    touched = {sub.group for sub in op.ops}
    scratch = Groups({g: dict(groups[g]) for g in touched if g in groups})
    scratch.copy_floors(groups)
    conflicts: list[tuple[str, str, int | None, int]] = []
    results = []
    for sub in op.ops:
        try:
            results.append(HANDLERS.table[type(sub)](scratch, sub, codec))
        except VersionConflict as exc:
            conflicts += exc.conflicts
            results.append(None)
    if conflicts:
        raise VersionConflict(conflicts)
    groups.copy_floors(scratch)
    for g in touched:
        if scratch.get(g):
            groups[g] = scratch[g]
        else:
            groups.pop(g, None)
    return results


def no_feed(describe: str) -> Unsupported:
    return Unsupported(
        f"{describe} keeps no change feed: watch, ack and the keyspace bridge need a Redis "
        "server (embedded://, redis://, unix://)"
    )


def _without_feed(groups: Groups, op: ops.Request[Any], codec: Codec) -> None:
    raise no_feed("this backend")


for _kind in [kind for kind, traits in ops.REGISTRY.items() if traits.feed]:
    HANDLERS.on(_kind)(_without_feed)


def apply(groups: Groups, op: ops.Request[T], codec: Codec) -> T:
    """Carry out ``op`` on ``groups``; ``codec`` is the State's, for update ops."""
    result: T = HANDLERS.table[type(op)](groups, op, codec)
    return result


def is_write(op: ops.Request[Any]) -> bool:
    traits = ops.traits(op)
    return traits.writes and not traits.feed  # a feed request raises before any write
