"""An example adapter package: state in a dict of this process, through the public adapter API.

``memo://NAME`` is a synchronous `StateAdapter`, ``amemo://NAME`` an `AsyncStateAdapter`;
every State that names one NAME shares its store (``memo://`` alone: a store of its own).
They declare every capability but the feed, and keep each with a lock: `atomic` holds it for
a whole write, which is what makes versions exact, and the engine's transactions write
nothing until every op has applied, so holding it is also what makes them all or nothing.

Installed, this package's entry points (see pyproject.toml) register both schemes, and
``pytest -p motia_state.testing --motia-state-url memo://`` proves the contract on them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field

from motia_state import AsyncStateAdapter, GroupMeta, Record, StateAdapter

CAPABILITIES = frozenset({"versions", "transactions", "ttl"})


@dataclass
class Store:
    """One named store: records per group, each group's metadata, and the lock."""

    groups: dict[str, dict[str, Record]] = field(default_factory=dict)
    metas: dict[str, GroupMeta] = field(default_factory=dict)
    lock: threading.RLock = field(default_factory=threading.RLock)

    def cleanup(self, now_ms: int) -> int:
        removed = 0
        for group, records in list(self.groups.items()):
            expired = [
                k for k, r in records.items() if r.expires_at is not None and r.expires_at <= now_ms
            ]
            for key in expired:
                record = records.pop(key)
                meta = self.metas.get(group, GroupMeta())
                if record.version + 1 > meta.floor:  # the removal is the item's last write
                    self.metas[group] = GroupMeta(record.version + 1, meta.expires_at)
            if not records:
                del self.groups[group]
            removed += len(expired)
        return removed


_stores: dict[str, Store] = {}
_stores_lock = threading.Lock()


def _store(url: str) -> Store:
    name = url.split("://", 1)[1]
    if not name:
        return Store()
    with _stores_lock:
        return _stores.setdefault(name, Store())


class MemoAdapter(StateAdapter):
    capabilities = CAPABILITIES

    def __init__(self, store: Store) -> None:
        self.store = store

    def get(self, group: str, key: str) -> Record | None:
        with self.store.lock:
            return self.store.groups.get(group, {}).get(key)

    def set(self, group: str, key: str, record: Record) -> None:
        with self.store.lock:
            self.store.groups.setdefault(group, {})[key] = record

    def delete(self, group: str, key: str) -> None:
        with self.store.lock:
            records = self.store.groups.get(group, {})
            records.pop(key, None)
            if not records:
                self.store.groups.pop(group, None)

    def clear(self, group: str) -> None:
        with self.store.lock:
            self.store.groups.pop(group, None)

    def cleanup(self, now_ms: int) -> int:
        with self.store.lock:
            return self.store.cleanup(now_ms)

    def items(self, group: str) -> list[tuple[str, Record]]:
        with self.store.lock:
            return list(self.store.groups.get(group, {}).items())

    def list_groups(self) -> list[str]:
        with self.store.lock:
            return list(self.store.groups)

    def meta(self, group: str) -> GroupMeta:
        with self.store.lock:
            return self.store.metas.get(group, GroupMeta())

    def set_meta(self, group: str, meta: GroupMeta) -> None:
        with self.store.lock:
            if meta == GroupMeta():
                self.store.metas.pop(group, None)
            else:
                self.store.metas[group] = meta

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self.store.lock:
            yield


class AsyncMemoAdapter(AsyncStateAdapter):
    """The same store for asyncio: each method is a coroutine; `atomic` holds an asyncio
    lock (tasks of one loop) as well as the store's (other threads)."""

    capabilities = CAPABILITIES

    def __init__(self, store: Store) -> None:
        self._sync = MemoAdapter(store)
        self._tasks = asyncio.Lock()

    async def get(self, group: str, key: str) -> Record | None:
        return self._sync.get(group, key)

    async def set(self, group: str, key: str, record: Record) -> None:
        self._sync.set(group, key, record)

    async def delete(self, group: str, key: str) -> None:
        self._sync.delete(group, key)

    async def clear(self, group: str) -> None:
        self._sync.clear(group)

    async def cleanup(self, now_ms: int) -> int:
        return self._sync.cleanup(now_ms)

    async def items(self, group: str) -> list[tuple[str, Record]]:
        return self._sync.items(group)

    async def list_groups(self) -> list[str]:
        return self._sync.list_groups()

    async def meta(self, group: str) -> GroupMeta:
        return self._sync.meta(group)

    async def set_meta(self, group: str, meta: GroupMeta) -> None:
        self._sync.set_meta(group, meta)

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        async with self._tasks:
            with self._sync.store.lock:
                yield


def open_memo(url: str) -> MemoAdapter:
    return MemoAdapter(_store(url))


def open_amemo(url: str) -> AsyncMemoAdapter:
    return AsyncMemoAdapter(_store(url))
