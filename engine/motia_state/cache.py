"""The near cache's bookkeeping, without I/O: what is cached, for how long, and when a reply
may still be stored.

Items read from Redis are kept in process memory, as the encoded bytes the server sent (each
hit decodes its own copy, so a caller that changes its result changes nothing cached), with
their version and expiry. The server tells the process which of its keys changed (client
tracking, `backends.redis.tracking`); this module only decides:

* **expiry without comparing clocks**: the server says how many milliseconds an item had
  left when it read it (lua/get_item.lua); the copy lives until the local monotonic time the
  request was *sent* plus that much (less the millisecond the server rounds down, less 0.1 %
  for clocks that run at different rates), which is never later than the server's own
  expiry;
* **races**: a read's reply is stored only if nothing invalidated its group, nor the whole
  cache, between the moment the request was sent and the moment it is stored (`ticket`);
* **the lease**: hits are served only while the server has recently proved that every
  invalidation it sent has been read (`Cache.serving_until`, kept by the tracking side);
* **bounds**: an LRU of ``max_items`` items and about ``max_bytes`` bytes.

One lock (``Cache.lock``) guards it and the tracking connections: `hit` takes it itself (and
calls the two hooks the tracking side installs, to read what the server pushed first); the
tracking side holds it around every other call.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from time import monotonic
from typing import Any

from . import ops
from .errors import InvalidInput

DEFAULT_MAX_ITEMS = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024
DEFAULT_MAX_LAG_S = 1.0
# What one cached item costs beyond its value and names, roughly: the entry object, its
# key tuple, the LRU's node and the group index's set slot (CPython 3.11, 64-bit).
ENTRY_OVERHEAD = 300
# The server's clock may run up to this much faster than ours (NTP slews at most 0.05 %).
CLOCK_RATE_MARGIN = 1e-3
# Groups whose last invalidation is remembered for the replies in flight (see `Cache.store`).
DROPPED_LIMIT = 4096


@dataclass(frozen=True)
class NearCache:
    """The near cache's settings: ``State.from_url(url, cache=NearCache(...))`` (or
    ``cache=True`` for these defaults, ``cache=<int>`` for ``max_items``).

    ``max_items``, ``max_bytes``: the LRU's bounds (bytes: encoded values and names, plus
    about 300 bytes an item). ``max_lag``: seconds a hit may lag behind the server it
    tracks, on any network: hits are served only while the tracking connection has answered
    a request sent less than ``max_lag`` ago (which proves every invalidation sent before
    it was read); otherwise reads go to the server.
    """

    max_items: int = DEFAULT_MAX_ITEMS
    max_bytes: int = DEFAULT_MAX_BYTES
    max_lag: float = DEFAULT_MAX_LAG_S

    def __post_init__(self) -> None:
        for name in ("max_items", "max_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInput(f"NearCache {name} must be an int >= 1, not {value!r}")
        lag = self.max_lag
        if isinstance(lag, bool) or not isinstance(lag, (int, float)) or not 0 < lag < math.inf:
            raise InvalidInput(f"NearCache max_lag must be seconds > 0, not {lag!r}")

    @classmethod
    def parse(cls, value: object) -> NearCache | None:
        """The ``cache=`` option: None or False (off), True (the defaults), an int (that
        many items at most) or a `NearCache`."""
        if value is None or value is False:
            return None
        if value is True:
            return cls()
        if isinstance(value, NearCache):
            return value
        if isinstance(value, int):
            if value < 1:
                raise InvalidInput(f"cache= takes a number of items >= 1, not {value}")
            return cls(max_items=value)
        raise InvalidInput(
            f"cache= takes None, True, a number of items or a NearCache, not {type(value).__name__}"
        )


@dataclass(frozen=True)
class CacheStats:
    """The near cache's counters since the `State` was made.

    ``hits``: reads served from memory; ``misses``: reads that went to the server (while
    the cache was not serving too); ``invalidations``: keys the server said changed;
    ``evictions``: items dropped to stay within the bounds; ``flushes``: whole-cache drops
    (a lost or re-established tracking connection, a server flush, a Cluster topology
    change); ``items``, ``bytes``: what it holds now; ``serving``: whether hits are being
    served now (tracking established and its lease fresh).
    """

    hits: int
    misses: int
    invalidations: int
    evictions: int
    flushes: int
    items: int
    bytes: int
    serving: bool


class Entry:
    """One cached item: its encoded value (None: the item is absent), version and expiry as
    the server gave them, and ``deadline``, the monotonic time from which it is not served."""

    __slots__ = ("data", "deadline", "expires_at", "loads", "size", "version")

    def __init__(
        self, data: bytes | None, version: int, expires_at: float | None, deadline: float, size: int
    ) -> None:
        self.data = data
        self.version = version
        self.expires_at = expires_at
        self.deadline = deadline
        self.size = size
        self.loads: Callable[[bytes], Any] | None = None  # its decoder, chosen at the first hit

    def raw(self) -> ops.RawItem | None:
        if self.data is None:
            return None
        return ops.RawItem(self.data, self.version, self.expires_at)


def deadline(sent: float, ms_left: int | None) -> float:
    """The last moment (exclusive) a copy read with a request sent at ``sent`` (monotonic
    seconds) may be served, for an item the server said had ``ms_left`` ms to live.

    The server reads its clock after ``sent``, in whole milliseconds rounded down: the item
    expires more than ``ms_left - 1`` ms after the server's read, so more than that after
    ``sent``, by the server's clock; 0.1 % covers a server clock running faster than ours.
    """
    if ms_left is None:
        return math.inf
    return sent + max(0, ms_left - 1) / 1000 * (1 - CLOCK_RATE_MARGIN)


def written_groups(op: ops.Request[Any]) -> tuple[str, ...] | None:
    """The groups a write may change, whose cached items are dropped around it (None: any
    group); () for a write that changes no cached item: the feed's own bookkeeping, and
    `ops.Cleanup`, which removes only items whose copies have already expired here (a copy
    never outlives the server's expiry; the removal also comes back as an invalidation)."""
    if isinstance(op, ops.Transaction):
        return tuple({sub.group for sub in op.ops})
    if isinstance(op, ops.Cleanup) or ops.traits(op).feed:
        return ()
    group = getattr(op, "group", None)
    return (group,) if isinstance(group, str) else None


def _nothing() -> None:
    pass


class Cache:
    """The LRU of cached items, the per-group invalidation marks and the counters."""

    def __init__(self, config: NearCache) -> None:
        self.config = config
        self.lock = threading.Lock()
        # Installed by the tracking side while it is established: ``pending(0)`` is true when
        # its sockets hold something unread, ``drain()`` reads it (lock held).
        self.pending: Callable[[int], Any] | None = None
        self.drain: Callable[[], None] = _nothing
        self._entries: OrderedDict[tuple[str, str], Entry] = OrderedDict()
        self._get, self._move_to_end = self._entries.get, self._entries.move_to_end
        self._groups: dict[str, set[str]] = {}  # group -> its cached keys
        self._bytes = 0
        # Generations: every invalidation (a group's or the whole cache's) takes the next
        # tick; a read remembers the tick before it is sent, and its reply is stored only if
        # neither its group nor the whole cache was invalidated after that (`store`).
        self._tick = 0
        self._dropped: dict[str, int] = {}  # group -> the tick of its last invalidation
        self._floor = 0  # the tick of the last whole-cache invalidation
        # Hits are served only before this monotonic time: the lease the tracking side
        # renews while its connections are established and answering (-inf: not serving).
        self.serving_until = -math.inf
        self.hits = self.misses = self.invalidations = self.evictions = self.flushes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def hit(self, group: str, key: str) -> Entry | None:
        """The entry to serve now, or None (a miss is not counted here: the read that goes
        to the server counts it). What the server pushed is read first: a poll of the
        sockets, about half of a hit's cost, and what the staleness guarantee rests on.
        The hot path of every cached read: written for speed (no ``with``)."""
        lock = self.lock
        lock.acquire()
        try:
            pending = self.pending
            if pending is not None and pending(0):
                self.drain()
            now = monotonic()  # after the drain: the moment the answer holds for
            if now >= self.serving_until:
                return None
            name = (group, key)
            entry = self._get(name)
            if entry is None:
                return None
            if now >= entry.deadline:
                self._remove(name, entry)
                return None
            self._move_to_end(name)
            self.hits += 1
            return entry
        finally:
            lock.release()

    def ticket(self) -> int:
        """Taken before a read is sent; hand it to `store` with the reply."""
        self.misses += 1
        return self._tick

    def store(
        self, ticket: int, group: str, key: str, raw: ops.RawItem | None, sent: float
    ) -> None:
        """Keep a read's reply (``raw``: what `ops.GetItem` returned; None, the item is
        absent), read with a request sent at monotonic time ``sent``, unless its group or
        the whole cache was invalidated since ``ticket`` was taken, or it is too large."""
        if ticket < self._floor or self._dropped.get(group, 0) > ticket:
            return
        if raw is None:
            entry = Entry(None, 0, None, math.inf, len(group) + len(key) + ENTRY_OVERHEAD)
        else:
            size = len(raw.data) + len(group) + len(key) + ENTRY_OVERHEAD
            entry = Entry(raw.data, raw.version, raw.expires_at, deadline(sent, raw.ms_left), size)
        if entry.size > self.config.max_bytes:
            return
        name = (group, key)
        old = self._entries.get(name)
        if old is not None:
            self._remove(name, old)
        self._entries[name] = entry
        self._groups.setdefault(group, set()).add(key)
        self._bytes += entry.size
        while len(self._entries) > self.config.max_items or self._bytes > self.config.max_bytes:
            oldest, victim = next(iter(self._entries.items()))
            self._remove(oldest, victim)
            self.evictions += 1

    def _remove(self, name: tuple[str, str], entry: Entry) -> None:
        del self._entries[name]
        self._bytes -= entry.size
        keys = self._groups[name[0]]
        keys.discard(name[1])
        if not keys:
            del self._groups[name[0]]

    def drop_group(self, group: str) -> None:
        """Forget ``group``'s items, and refuse the replies of reads of it already sent: the
        server said one of its keys changed, or this process is writing to it."""
        self._tick += 1
        if len(self._dropped) >= DROPPED_LIMIT:
            # forgetting the marks is safe: the replies in flight are refused instead
            self._dropped.clear()
            self._floor = self._tick
        self._dropped[group] = self._tick
        for key in self._groups.pop(group, ()):
            entry = self._entries.pop((group, key))
            self._bytes -= entry.size

    def invalidated(self, group: str) -> None:
        """`drop_group` for a key the server said changed."""
        self.invalidations += 1
        self.drop_group(group)

    def flush(self) -> None:
        """Forget everything, and refuse the replies of every read already sent."""
        self._tick += 1
        self._floor = self._tick
        self._dropped.clear()
        self._entries.clear()
        self._groups.clear()
        self._bytes = 0
        self.flushes += 1

    def stats(self, now: float) -> CacheStats:
        return CacheStats(
            self.hits,
            self.misses,
            self.invalidations,
            self.evictions,
            self.flushes,
            len(self._entries),
            self._bytes,
            now < self.serving_until,
        )
