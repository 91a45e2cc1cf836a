"""The state model of the in-process backends (memory:// and file://).

Both keep ``{group: {key: Record}}`` (`Groups`) and differ only in where it lives between
calls. Neither has rules of its own: `apply` runs the engine's adapter handlers
(backends/adapter.py, the rules every custom adapter gets, the Redis scripts' rules) on the
model through `GroupsStore`, so memory://, file://, sqlite:// and any adapter cannot drift
apart. Time is this machine's clock, in ms.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from .. import ops
from ..adapters import GroupMeta, Record, StateAdapter
from ..capabilities import IN_PROCESS
from ..codecs import Codec
from ..errors import Unsupported
from . import adapter
from .adapter import now_ms

T = TypeVar("T")

Entry = Record  # what file.py reads and writes: one item
FLOOR_TTL_MS = 7 * 24 * 3600 * 1000  # as in lua/include/item.lua


class Groups(dict[str, dict[str, Record]]):
    """``{group: {key: Record}}``, plus each group's version *floor* (the highest version a
    removed item of the group reached: a new item starts above it, so per item, versions only
    ever increase; an empty group's floor expires after a week, as in lua/include/item.lua)
    and ``deadlines``, when the groups that expire as a whole do (lua/include/group.lua)."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.floors: dict[str, int] = {}
        self.floor_expiry: dict[str, int] = {}  # ms since the epoch, for empty groups
        self.deadlines: dict[str, int] = {}  # ms since the epoch


class GroupsStore(StateAdapter):
    """`Groups` as an adapter. Its backend holds a lock around each call (and file:// its
    file lock around each write), so `atomic` has nothing left to do."""

    capabilities = IN_PROCESS

    def __init__(self, groups: Groups) -> None:
        self.groups = groups

    def get(self, group: str, key: str) -> Record | None:
        return self.groups.get(group, {}).get(key)

    def set(self, group: str, key: str, record: Record) -> None:
        groups = self.groups
        if group not in groups:  # no longer empty: its floor stops expiring, if it has not
            at = groups.floor_expiry.pop(group, None)
            if at is not None and at <= now_ms():
                groups.floors.pop(group, None)
        groups.setdefault(group, {})[key] = record

    def delete(self, group: str, key: str) -> None:
        records = self.groups.get(group)
        if records is not None:
            records.pop(key, None)
            if not records:
                self._emptied(group)

    def clear(self, group: str) -> None:
        if self.groups.get(group):
            self._emptied(group)

    def _emptied(self, group: str) -> None:
        del self.groups[group]
        if group in self.groups.floors:
            self.groups.floor_expiry[group] = now_ms() + FLOOR_TTL_MS

    def cleanup(self, now_ms: int) -> int:
        removed = 0
        for group, records in list(self.groups.items()):
            expired = [k for k, r in records.items() if adapter.expired(r.expires_at, now_ms)]
            for key in expired:
                version = records.pop(key).version
                meta = self.meta(group)  # the removal is the item's last write
                self.set_meta(group, GroupMeta(max(meta.floor, version + 1), meta.expires_at))
            if not records:
                self._emptied(group)
            removed += len(expired)
        for group in [g for g, at in self.groups.floor_expiry.items() if at <= now_ms]:
            del self.groups.floor_expiry[group]
            self.groups.floors.pop(group, None)
        return removed

    def items(self, group: str) -> list[tuple[str, Record]]:
        return list(self.groups.get(group, {}).items())

    def list_groups(self) -> list[str]:
        return list(self.groups)

    def expired_groups(self, now_ms: int) -> list[str]:
        return [g for g, at in self.groups.deadlines.items() if at <= now_ms]

    def meta(self, group: str) -> GroupMeta:
        groups = self.groups
        floor = groups.floors.get(group, 0)
        if adapter.expired(groups.floor_expiry.get(group), now_ms()):
            floor = 0  # an empty group's floor lasts a week
        return GroupMeta(floor, groups.deadlines.get(group))

    def set_meta(self, group: str, meta: GroupMeta) -> None:
        groups = self.groups
        if meta.floor:
            groups.floors[group] = meta.floor
            if group not in groups:
                groups.floor_expiry[group] = now_ms() + FLOOR_TTL_MS
        else:
            groups.floors.pop(group, None)
            groups.floor_expiry.pop(group, None)
        if meta.expires_at is None:
            groups.deadlines.pop(group, None)
        else:
            groups.deadlines[group] = meta.expires_at

    @contextmanager
    def atomic(self) -> Iterator[None]:
        yield


def no_feed(describe: str) -> Unsupported:
    return Unsupported(
        f"{describe} keeps no change feed: watch, ack and the keyspace bridge need a Redis "
        "server (embedded://, redis://, unix://)"
    )


def apply(groups: Groups, op: ops.Request[T], codec: Codec, describe: str) -> T:
    """Carry out ``op`` on ``groups``; ``codec`` is the State's, for update ops."""
    steps = adapter.steps_of(adapter.Context(IN_PROCESS, codec, describe), op)
    return adapter.drive(GroupsStore(groups), steps)


def is_write(op: ops.Request[Any]) -> bool:
    traits = ops.traits(op)
    return traits.writes and not traits.feed  # a feed request raises before any write
