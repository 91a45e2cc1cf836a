"""The state model shared by the in-process backends (memory:// and file://).

Both keep ``{group: {key: Entry}}`` and apply operations to it with exactly the
version rules of the Redis scripts in ``lua/``; they differ only in where the
model lives between calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from .. import ops, updates
from ..errors import DecodeError, VersionConflict

T = TypeVar("T")


@dataclass(slots=True)
class Entry:
    data: bytes
    version: int


Groups = dict[str, dict[str, Entry]]


def _current(items: dict[str, Entry] | None, key: str) -> int:
    entry = items.get(key) if items else None
    return entry.version if entry else 0


def _check(group: str, key: str, expected: int | None, current: int) -> None:
    if expected is not None and expected != current:
        raise VersionConflict([(group, key, expected, current)])


def _get(groups: Groups, op: ops.Get) -> bytes | None:
    entry = groups.get(op.group, {}).get(op.key)
    return entry.data if entry else None


def _get_item(groups: Groups, op: ops.GetItem) -> ops.RawItem | None:
    entry = groups.get(op.group, {}).get(op.key)
    return ops.RawItem(entry.data, entry.version) if entry else None


def _get_many(groups: Groups, op: ops.GetMany) -> list[bytes | None]:
    items = groups.get(op.group, {})
    return [e.data if (e := items.get(k)) else None for k in op.keys]


def _get_all(groups: Groups, op: ops.GetAll) -> dict[str, bytes]:
    return {k: e.data for k, e in groups.get(op.group, {}).items()}


def _keys(groups: Groups, op: ops.Keys) -> list[str]:
    return list(groups.get(op.group, {}))


def _scan_page(groups: Groups, op: ops.ScanPage) -> tuple[int, list[tuple[str, bytes]]]:
    # The whole group is already in this process: one page, decoded lazily by the caller.
    return 0, [(k, e.data) for k, e in groups.get(op.group, {}).items()]


def _set(groups: Groups, op: ops.Set) -> int:
    items = groups.get(op.group)
    current = _current(items, op.key)
    _check(op.group, op.key, op.version, current)
    groups.setdefault(op.group, {})[op.key] = Entry(op.data, current + 1)
    return current + 1


def _set_many(groups: Groups, op: ops.SetMany) -> int:
    if not op.items:
        return 0
    items = groups.setdefault(op.group, {})
    for key, data in op.items:
        items[key] = Entry(data, _current(items, key) + 1)
    return len(op.items)


def _pop(groups: Groups, group: str, key: str) -> Entry | None:
    items = groups.get(group)
    entry = items.pop(key, None) if items else None
    if items is not None and not items:
        del groups[group]
    return entry


def _delete(groups: Groups, op: ops.Delete) -> bytes | None:
    _check(op.group, op.key, op.version, _current(groups.get(op.group), op.key))
    entry = _pop(groups, op.group, op.key)
    return entry.data if entry else None


def _delete_many(groups: Groups, op: ops.DeleteMany) -> int:
    return sum(_pop(groups, op.group, k) is not None for k in op.keys)


def _clear(groups: Groups, op: ops.Clear) -> int:
    return len(groups.pop(op.group, {}))


def _update(groups: Groups, op: ops.Update) -> tuple[int, bytes]:
    items = groups.get(op.group)
    current = _current(items, op.key)
    _check(op.group, op.key, op.version, current)
    data = items[op.key].data if items and current else op.start
    try:
        value = op.codec.decode(data)
    except DecodeError:
        raise updates.fail("not_decodable", None) from None
    new = op.codec.encode(updates.apply(value, op.steps))
    if len(new) > op.max_bytes:
        raise updates.fail("too_large", None)
    groups.setdefault(op.group, {})[op.key] = Entry(new, current + 1)
    return current + 1, new


def _transaction(groups: Groups, op: ops.Transaction) -> list[Any]:
    # Work on copies of the touched groups; they replace the originals only if every op
    # applied. Entries are never changed in place, so shallow copies are enough.
    touched = {sub.group for sub in op.ops}
    scratch: Groups = {g: dict(groups[g]) for g in touched if g in groups}
    conflicts: list[tuple[str, str, int | None, int]] = []
    results = []
    for sub in op.ops:
        try:
            results.append(WRITES[type(sub)](scratch, sub))
        except VersionConflict as exc:
            conflicts += exc.conflicts
            results.append(None)
    if conflicts:
        raise VersionConflict(conflicts)
    for g in touched:
        if scratch.get(g):
            groups[g] = scratch[g]
        else:
            groups.pop(g, None)
    return results


def _list_groups(groups: Groups, op: ops.ListGroups) -> list[str]:
    return sorted(g for g, items in groups.items() if items)


READS: dict[type[Any], Callable[[Groups, Any], Any]] = {
    ops.Get: _get,
    ops.GetItem: _get_item,
    ops.GetMany: _get_many,
    ops.GetAll: _get_all,
    ops.Keys: _keys,
    ops.ScanPage: _scan_page,
    ops.ListGroups: _list_groups,
}
WRITES: dict[type[Any], Callable[[Groups, Any], Any]] = {
    ops.Set: _set,
    ops.SetMany: _set_many,
    ops.Delete: _delete,
    ops.DeleteMany: _delete_many,
    ops.Clear: _clear,
    ops.Update: _update,
    ops.Transaction: _transaction,
}


def apply(groups: Groups, op: ops.Op[T]) -> T:
    handler = READS.get(type(op)) or WRITES[type(op)]
    result: T = handler(groups, op)
    return result


def is_write(op: ops.Op[Any]) -> bool:
    return type(op) in WRITES
