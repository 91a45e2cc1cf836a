"""`State`: the synchronous API. See `core` for what it shares with `AsyncState`."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any, TypeVar

from . import connect, ops, validate
from .backends.base import Backend
from .bridge import Bridge
from .changes import Change
from .core import DEFAULT_SCAN_BATCH, Core, Plan, Transaction
from .ops import GroupStats, Item
from .subscriptions import TICK_S, Subscription
from .sweeper import Sweeper
from .watch import BATCH, Reader, Watch, group_names

R = TypeVar("R")


class State:
    """Motia-style state: groups of keyed items, every write atomic and versioned.

    Create it with `State.from_url`; close it (or use ``with``) to release the
    connection and, for ``embedded://``, the server.
    """

    def __init__(self, backend: Backend, core: Core) -> None:
        self._backend = backend
        self._core = core
        self._sweeper: Sweeper | None = None
        self._sweeper_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str | None = None, **options: Any) -> State:
        return cls(*connect.open_sync(url, options))

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

    def close(self) -> None:
        with self._sweeper_lock:
            if self._sweeper is not None:
                self._sweeper.stop()
                self._sweeper = None
        self._backend.close()

    def _run(self, plan: Plan[R]) -> R:
        result = plan.finish(self._backend.execute(plan.op))
        if plan.expiring and self._sweeper is None and self._core.cleanup_interval:
            with self._sweeper_lock:
                if self._sweeper is None:
                    self._sweeper = Sweeper(self.cleanup, self._core.cleanup_interval)
                    self._sweeper.start()
        return result

    def group(self, name: str) -> GroupView:
        """A view bound to one group: the same methods without the group argument."""
        return GroupView(self, validate.group(name))

    def get(self, group: str, key: str) -> Any:
        """The value, or None when absent (use `get_item` to tell a stored None apart)."""
        return self._run(self._core.get(group, key))

    def get_item(self, group: str, key: str) -> Item | None:
        return self._run(self._core.get_item(group, key))

    def get_many(self, group: str, keys: Iterable[str]) -> list[Any]:
        return self._run(self._core.get_many(group, keys))

    def get_group(self, group: str) -> list[Any]:
        """All values of a group (Motia's getGroup)."""
        return self._run(self._core.get_group(group))

    def items(self, group: str) -> dict[str, Any]:
        return self._run(self._core.items(group))

    def keys(self, group: str) -> list[str]:
        return self._run(self._core.keys(group))

    def iter_items(self, group: str, batch: int = DEFAULT_SCAN_BATCH) -> Iterator[tuple[str, Any]]:
        """Stream a group too large for one reply, ``batch`` items per round trip.

        Each item present for the whole iteration is yielded exactly once; items
        written or deleted meanwhile may or may not appear.
        """
        seen: set[str] = set()
        cursor = 0
        while True:
            cursor, page = self._run(self._core.scan_page(group, cursor, batch))
            for key, value in page:
                if key not in seen:
                    seen.add(key)
                    yield key, value
            if cursor == 0:
                return

    def set(
        self,
        group: str,
        key: str,
        value: Any,
        *,
        version: int | None = None,
        ttl: float | None = None,
    ) -> int:
        """Store ``value``; returns the item's new version (1 on create).

        ``version=N`` writes only if the current version is N, ``version=0`` only
        if the item is absent; otherwise `VersionConflict` and nothing changes.
        """
        return self._run(self._core.set(group, key, value, version, ttl))

    def set_many(self, group: str, mapping: Mapping[str, Any], *, ttl: float | None = None) -> int:
        """Store many items; atomic per server call (up to 1000 items or 4 MiB each)."""
        return self._run(self._core.set_many(group, mapping, ttl))

    def delete(self, group: str, key: str, *, version: int | None = None) -> Any:
        """Remove an item and return its value (None when absent), atomically."""
        return self._run(self._core.delete(group, key, version))

    def delete_many(self, group: str, keys: Iterable[str]) -> int:
        return self._run(self._core.delete_many(group, keys))

    def clear(self, group: str) -> int:
        """Remove every item of a group; returns how many there were."""
        return self._run(self._core.clear(group))

    def increment(
        self,
        group: str,
        key: str,
        by: int | float = 1,
        *,
        version: int | None = None,
        ttl: float | None = None,
    ) -> int | float:
        """Add ``by`` atomically on the server; a missing item starts at 0. Returns the new number.

        Integers stay exact across the signed 64-bit range (`IntegerOverflow` past it);
        a float makes a float. A stored value that is not a number raises `NotANumber`.
        """
        return self._run(self._core.increment(group, key, by, version, ttl))

    def update(
        self,
        group: str,
        key: str,
        ops: Iterable[Mapping[str, Any]],
        *,
        version: int | None = None,
        ttl: float | None = None,
    ) -> Any:
        """Apply Motia v1 UpdateOps atomically on the server; returns the new value.

        All ops apply or none does; every part of the value no op touches stays exactly
        as it was. A missing item starts as ``{}``.
        """
        return self._run(self._core.update(group, key, ops, version, ttl))

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Collect set/delete/increment/update ops; commit them as ONE server call on exit.

        All or nothing: a failed ``version=`` condition raises `VersionConflict`
        naming every failing op, and nothing applies. Ops apply in order and see
        each other's effects. An exception inside the block sends nothing.
        ``tx.results`` holds each op's result afterwards.
        """
        tx = Transaction(self._core)
        yield tx
        if len(tx):
            tx.results = self._run(tx.plan())

    def ttl(self, group: str, key: str) -> float | None:
        """Seconds until the item expires; None when it has no expiry or does not exist."""
        return self._run(self._core.ttl(group, key))

    def expire(self, group: str, key: str, ttl: float) -> bool:
        """Give an existing item a TTL of ``ttl`` seconds; False when it does not exist."""
        return self._run(self._core.expire(group, key, ttl))

    def persist(self, group: str, key: str) -> bool:
        """Remove an item's expiry; True when it had one."""
        return self._run(self._core.persist(group, key))

    def cleanup(self) -> int:
        """Remove expired items now (they are already invisible); returns how many.

        Runs in bounded server-side batches; many processes may sweep at once and
        each item is removed, and counted, once. A background sweep also runs every
        ``cleanup_interval`` seconds once this State has given an item a TTL.
        """
        return self._run(self._core.cleanup())

    def list_groups(self) -> list[str]:
        """Names of the groups that hold at least one item, sorted."""
        return self._run(self._core.list_groups())

    def stats(self, groups: Iterable[str] | None = None) -> tuple[list[GroupStats], int | None]:
        """Per group (default: every group): items, items with a TTL, bytes in Redis and
        change records; plus the length of the change stream where every group shares one
        (standalone Redis). For operators (``motia-state stats``): one round trip per group."""
        if groups is None:
            return self._run(self._core.stats(self.list_groups(), listed=True))
        return self._run(self._core.stats(groups))

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
    ) -> Watch:
        """Iterate over committed changes of ``groups`` (None: every group), in commit order.

        ``since``: '$' only changes from now on, '0' every retained change first, or a
        change id to resume after. ``block``: seconds to wait for a change before yielding
        None (None: wait as long as it takes; 0: never wait). ``consumer=(group, name)``
        reads as that consumer group (created on first use; acknowledge with `ack`);
        ``claim_after``: take over changes another consumer left unacknowledged that many
        seconds. ``with_values``: decode the values writers recorded (``record_values``).
        ``batch``: changes fetched per read (consumers of one group share work per batch).
        The iterator's position is fixed when this returns; it reads on a connection of
        its own: close it (or use ``with``) to release it. Needs a Redis backend;
        memory:// and file:// raise `Unsupported`.
        """
        session = self._backend.session()
        reader = Reader(
            session.layout,
            self._core.codec,
            groups=groups,
            since=since,
            consumer=consumer,
            claim_after=claim_after,
            block=block,
            with_values=with_values,
            batch=batch,
        )
        return Watch(session, reader)

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
        names = group_names(groups)

        def watch(last: str | None) -> Watch:
            return self.watch(
                names,
                since=last or since,
                block=TICK_S,
                consumer=consumer,
                claim_after=claim_after,
                with_values=with_values,
            )

        first = watch(None)  # checks the arguments, and fixes the position now
        subscription = Subscription(first, watch, handler, self.ack if consumer else None)
        subscription.start()
        return subscription


class GroupView:
    """`State` bound to one group (also the per-trace scope of Motia's older docs)."""

    def __init__(self, state: State, group: str) -> None:
        self.state = state
        self.name = group

    def __repr__(self) -> str:
        return f"GroupView({self.state!r}, {self.name!r})"

    def get(self, key: str) -> Any:
        return self.state.get(self.name, key)

    def watch(self, **options: Any) -> Watch:
        """`State.watch` of this group; the same keyword arguments."""
        return self.state.watch(self.name, **options)

    def on_change(self, handler: Callable[[Change], Any], **options: Any) -> Subscription:
        return self.state.on_change(self.name, handler, **options)

    def get_item(self, key: str) -> Item | None:
        return self.state.get_item(self.name, key)

    def get_many(self, keys: Iterable[str]) -> list[Any]:
        return self.state.get_many(self.name, keys)

    def get_group(self) -> list[Any]:
        return self.state.get_group(self.name)

    def items(self) -> dict[str, Any]:
        return self.state.items(self.name)

    def keys(self) -> list[str]:
        return self.state.keys(self.name)

    def iter_items(self, batch: int = DEFAULT_SCAN_BATCH) -> Iterator[tuple[str, Any]]:
        return self.state.iter_items(self.name, batch)

    def set(
        self, key: str, value: Any, *, version: int | None = None, ttl: float | None = None
    ) -> int:
        return self.state.set(self.name, key, value, version=version, ttl=ttl)

    def set_many(self, mapping: Mapping[str, Any], *, ttl: float | None = None) -> int:
        return self.state.set_many(self.name, mapping, ttl=ttl)

    def ttl(self, key: str) -> float | None:
        return self.state.ttl(self.name, key)

    def expire(self, key: str, ttl: float) -> bool:
        return self.state.expire(self.name, key, ttl)

    def persist(self, key: str) -> bool:
        return self.state.persist(self.name, key)

    def delete(self, key: str, *, version: int | None = None) -> Any:
        return self.state.delete(self.name, key, version=version)

    def delete_many(self, keys: Iterable[str]) -> int:
        return self.state.delete_many(self.name, keys)

    def clear(self) -> int:
        return self.state.clear(self.name)

    def increment(
        self, key: str, by: int | float = 1, *, version: int | None = None, ttl: float | None = None
    ) -> int | float:
        return self.state.increment(self.name, key, by, version=version, ttl=ttl)

    def update(
        self,
        key: str,
        ops: Iterable[Mapping[str, Any]],
        *,
        version: int | None = None,
        ttl: float | None = None,
    ) -> Any:
        return self.state.update(self.name, key, ops, version=version, ttl=ttl)
