"""Reading the change feed: plain watchers and durable consumer groups.

`Reader` is sans-I/O like `RedisPlan`: each step yields Redis commands and gets
their replies, so `State.watch` and `AsyncState.watch` share every decision and
differ only in how they send. A watcher reads on a connection of its own (a
blocking XREAD must not hold up other calls), re-issuing the blocking read at
least every `MAX_BLOCK_S` so that a dead server is noticed.

Plain watchers (XREAD) start after the newest entry (``since="$"``, resolved to
a concrete id once, so nothing written between two reads is skipped), after an
id, or at the oldest retained entry (``"0"``). Consumer groups (XREADGROUP)
deliver each entry to one consumer of the group; a consumer first gets back what
it was handed before and never acknowledged (its own pending entries, after a
restart), and with ``claim_after`` it also takes over entries another consumer
left unacknowledged that long (XPENDING IDLE + XCLAIM). Entries of groups the watcher does
not follow are acknowledged for it, so they never sit pending.

Which records a reader hands on (`Records`): state changes (a watch, by default), the events
transactions emitted (``events``, of some topics or all), or both in commit order. The rest
are skipped as entries of other groups are, and acknowledged likewise: a consumer group that
reads only events must not share its name with one that reads changes.
"""

from __future__ import annotations

import time
from collections.abc import Generator, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

from redis.exceptions import ResponseError

from . import changes, validate
from .backends.base import AsyncSession, Session
from .changes import Change
from .codecs import Codec
from .errors import InvalidInput, brief
from .layout import KeyLayout, escape_glob
from .steps import At, Masters, Steps

MAX_BLOCK_S = 5.0
DISCOVER_S = 1.0  # Cluster, every group: how often to look for the streams of new groups
CLUSTER_POLL_S = 0.05  # Cluster, several groups: the wait between rounds of reads
BATCH = 100  # entries per read, by default
# Replies to a consumer group's reads once its stream is gone: Redis unblocks the read with
# UNBLOCKED, Valkey answers NOGROUP.
GROUP_GONE = ("NOGROUP", "UNBLOCKED")
EMIT = changes.EMIT.encode()
SOCKET_SLACK_S = 10.0  # a watcher's socket waits this much longer than its longest block


class Records:
    """Which feed records a reader yields: state changes, emitted events, or both."""

    CHANGES = "changes"
    EVENTS = "events"
    ALL = "all"


def consumer_of(consumer: object) -> tuple[str, str] | None:
    if consumer is None:
        return None
    if (
        not isinstance(consumer, tuple)
        or len(consumer) != 2
        or not all(isinstance(part, str) and part for part in consumer)
    ):
        raise InvalidInput(
            f"consumer must be a (group name, consumer name) pair of non-empty str, "
            f"like ('billing', 'worker-1'), not {brief(consumer)}"
        )
    # names the server keeps: the same rules as a group name (valid unicode, bounded)
    return validate.name("consumer group", consumer[0]), validate.name("consumer", consumer[1])


def group_names(groups: str | Iterable[str] | None) -> list[str] | None:
    """``groups`` as a list (a str is one group name; None: every group)."""
    if groups is None:
        return None
    if isinstance(groups, str):
        return [groups]
    if isinstance(groups, (bytes, bytearray, Mapping)) or not isinstance(groups, Iterable):
        raise InvalidInput(f"groups must be a group name or a list of them, not {brief(groups)}")
    return list(groups)


def topic_names(topics: str | Iterable[str] | None) -> list[str] | None:
    """``topics`` as a list of checked topics (a str is one topic; None: every topic)."""
    if topics is None:
        return None
    if isinstance(topics, str):
        topics = [topics]
    elif isinstance(topics, (bytes, bytearray, Mapping)) or not isinstance(topics, Iterable):
        raise InvalidInput(f"topics must be a topic or a list of them, not {brief(topics)}")
    names = [validate.name("topic", topic) for topic in topics]
    if not names:
        raise InvalidInput("topics must name at least one topic, or be None for all")
    return names


def seconds(name: str, value: object, *, zero: bool = False) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value == value:
        raise InvalidInput(f"{name} must be a number of seconds or None, not {value!r}")
    if value < 0 or (value == 0 and not zero):
        raise InvalidInput(f"{name} must be {'>= 0' if zero else '> 0'} seconds, got {value!r}")
    return float(value)


class Reader:
    """One watcher's position in the feed and how it moves on."""

    def __init__(
        self,
        layout: KeyLayout,
        codec: Codec,
        *,
        groups: str | Iterable[str] | None,
        since: object,
        consumer: object,
        claim_after: object,
        block: object,
        with_values: bool,
        batch: object = BATCH,
        records: str = Records.CHANGES,
        topics: str | Iterable[str] | None = None,
    ) -> None:
        names = group_names(groups)
        self.groups = None if names is None else frozenset(validate.group(g) for g in names)
        if self.groups is not None and not self.groups:
            raise InvalidInput("groups must name at least one group, or be None for all")
        self.since = changes.stream_id(since)
        self.consumer = consumer_of(consumer)
        self.claim_after = seconds("claim_after", claim_after)
        if self.claim_after is not None and self.consumer is None:
            raise InvalidInput("claim_after needs a consumer=(group, name) to claim for")
        self.block = seconds("block", block, zero=True)
        self.batch = validate.positive_int("batch", batch)
        self.with_values = bool(with_values)
        self._codec = codec
        assert records in (Records.CHANGES, Records.EVENTS, Records.ALL), records
        self._changes = records != Records.EVENTS
        self._events = records != Records.CHANGES
        wanted = topic_names(topics)
        # compared with the entry's raw key field: no decoding of entries skipped
        self._topics = None if wanted is None else frozenset(t.encode() for t in wanted)
        # Standalone: one stream for every group, filtered here; Cluster: one per group,
        # found by SCAN on every master when the watch follows every group.
        self._layout = layout
        self._discover = layout.cluster and self.groups is None
        followed = sorted(self.groups) if layout.cluster and self.groups else [""]
        self.streams = [] if self._discover else list(dict.fromkeys(map(layout.changes, followed)))
        self._last_discovery = 0.0
        self._ids: dict[bytes, str] = {}
        self._claim_cursor: dict[bytes, str] = {}
        self._seen: dict[bytes, str] = {}  # per stream, the last entry id read
        self._behind = False  # whether a read of this round came back full
        self._last_claim = 0.0
        self._started = False
        self._quiet_since = time.monotonic()

    @property
    def _cg(self) -> str:
        assert self.consumer is not None
        return self.consumer[0]

    def start(self) -> Steps[Any]:
        """Fix the starting point: create the consumer group, or resolve '$' to an id."""
        if self._started:
            return
        self._started = True
        if self._discover:
            self.streams = yield from self._find_streams()
        for stream in self.streams:
            yield from self._begin(stream, self.since)
        self._quiet_since = time.monotonic()

    def _begin(self, stream: bytes, since: str) -> Steps[Any]:
        self._claim_cursor[stream] = "-"
        if self.consumer is not None:
            try:
                yield ("XGROUP", "CREATE", stream, self._cg, since, "MKSTREAM")
            except ResponseError as exc:
                if "BUSYGROUP" not in str(exc):  # an existing group keeps its position
                    raise
            self._ids[stream] = "0"  # first: what was handed to this consumer before
        elif since == "$":
            last = yield ("XREVRANGE", stream, "+", "-", "COUNT", 1)
            self._ids[stream] = last[0][0].decode() if last else "0-0"
        else:
            self._ids[stream] = since

    def _find_streams(self) -> Steps[Any]:
        """Every group's change stream on every master (Cluster, watching every group)."""
        self._last_discovery = time.monotonic()
        pattern = escape_glob(self._layout.meta_root + b"changes{") + b"*"
        found: list[bytes] = []
        for node in (yield Masters()):
            cursor = 0
            while True:
                cursor, page = yield At(node, ("SCAN", cursor, "MATCH", pattern, "TYPE", "stream"))
                found += page
                if int(cursor) == 0:
                    break
        return sorted(set(found))

    def _rediscover(self) -> Steps[Any]:
        """Streams of groups that appeared since the watch began: read from their start."""
        if not self._discover or time.monotonic() - self._last_discovery < DISCOVER_S:
            return
        for stream in (yield from self._find_streams()):
            if stream not in self._ids:
                self.streams.append(stream)
                yield from self._begin(stream, "0")

    def round(self) -> Steps[Any]:
        """One read: the changes found, or ``[None]`` once ``block`` elapsed with none."""
        try:
            return (yield from self._round())
        except ResponseError as exc:
            if self.consumer is None or not str(exc).startswith(GROUP_GONE):
                raise
        # The consumer group is gone, with its stream (a DEL or FLUSHALL by another tool) or
        # alone (XGROUP DESTROY): begin again after the last change this reader saw, so
        # nothing is replayed and nothing written since is missed (a new stream's ids are
        # later ones); the next round reads on.
        for stream in self.streams:
            yield from self._begin(stream, self._seen.get(stream, "0"))
        return []

    def _round(self) -> Steps[Any]:
        self._behind = False
        yield from self.start()
        yield from self._rediscover()
        wait = MAX_BLOCK_S if self.block is None else min(self.block, MAX_BLOCK_S)
        if self.claim_after is not None:
            wait = min(wait, self.claim_after / 2)
        pending_phase = any(i != ">" for i in self._ids.values()) and self.consumer is not None
        found = yield from self.poll(wait or None)
        if not found and pending_phase:  # that read did not wait (own pending changes) and
            found = yield from self.poll(wait or None)  # found none: now new ones, waiting
        now = time.monotonic()
        if found:
            self._quiet_since = now
            return found
        if self._behind:  # a full batch, all for other groups: more may wait, read on
            return []
        if self.block is not None and now - self._quiet_since >= self.block:
            if self._discover:  # quiet means quiet in groups that appeared meanwhile too
                self._last_discovery = 0.0
                yield from self._rediscover()
                pending_phase = any(i != ">" for i in self._ids.values())
                found = yield from self.poll(None)
                if not found and pending_phase and self.consumer is not None:
                    found = yield from self.poll(None)  # past the new streams' pending phase
                if found:
                    self._quiet_since = now
                    return found
            self._quiet_since = now
            return [None]
        return []

    def poll(self, block: float | None) -> Steps[Any]:
        """Changes since the last poll, waiting up to ``block`` seconds (None: no waiting)."""
        found: list[Change] = []
        # a consumer reads its own pending changes first (ids other than '>'), without waiting
        history = [s for s in self.streams if self._ids[s] != ">"] if self.consumer else []
        if self.claim_after is not None and not history:
            # only once this consumer's own pending entries are delivered: claimed entries
            # become its own pending entries too, and must not come twice
            found += yield from self._claim()
            if found:
                return found
        if self._layout.cluster and len(self.streams) != 1:
            # Streams in different slots cannot share a read: one read each, without waiting;
            # when all are quiet, wait a little on a key nobody writes, then look again.
            for stream in self.streams:
                found += yield from self._read([stream], [])
            if not found and block is not None:
                ms = max(1, round(min(block, CLUSTER_POLL_S) * 1000))
                yield ("XREAD", "BLOCK", ms, "STREAMS", self._layout.meta_root + b"idle", "$")
            return found
        wait = [] if history or block is None else ["BLOCK", max(1, round(block * 1000))]
        return (yield from self._read(self.streams, wait))

    def _read(self, streams: list[bytes], wait: list[Any]) -> Steps[Any]:
        found: list[Change] = []
        ids = [self._ids[s] for s in streams]
        if self.consumer is None:
            head: tuple[Any, ...] = ("XREAD", "COUNT", self.batch, *wait)
        else:
            head = ("XREADGROUP", "GROUP", self._cg, self.consumer[1], "COUNT", self.batch, *wait)
        reply = yield (*head, "STREAMS", *streams, *ids)
        for stream, entries in _streams(reply):
            self._behind = self._behind or len(entries) >= self.batch
            if not entries and self._ids[stream] != ">" and self.consumer is not None:
                self._ids[stream] = ">"  # own pending entries done: new ones from now on
                continue
            if entries and (self.consumer is None or self._ids[stream] != ">"):
                self._ids[stream] = entries[-1][0].decode()
            found += yield from self._accept(stream, entries)
        return found

    def _claim(self) -> Steps[Any]:
        """Take over entries other consumers of the group left unacknowledged too long.

        XPENDING (IDLE) finds them and XCLAIM moves them, rather than XAUTOCLAIM, which
        would also hand this consumer back the changes it holds right now.
        """
        assert self.claim_after is not None
        assert self.consumer is not None
        now = time.monotonic()
        if now - self._last_claim < self.claim_after / 2:
            return []
        self._last_claim = now
        found: list[Change] = []
        idle = max(1, round(self.claim_after * 1000))
        me = self.consumer[1].encode()
        for stream in self.streams:
            start = self._claim_cursor[stream]
            page = yield ("XPENDING", stream, self._cg, "IDLE", idle, start, "+", self.batch)
            if len(page) < self.batch:
                self._claim_cursor[stream] = "-"  # the end: start over next time
            else:
                self._claim_cursor[stream] = "(" + page[-1][0].decode()
                self._last_claim = 0.0  # more to look at: go on at the next poll
            ids = [entry[0] for entry in page if entry[1] != me]
            if ids:
                entries = yield ("XCLAIM", stream, self._cg, self.consumer[1], idle, *ids)
                found += yield from self._accept(stream, [e for e in entries if e is not None])
        return found

    def _accept(self, stream: bytes, entries: list[Any]) -> Steps[Any]:
        """Decode entries; acknowledge at once those no caller will see (other groups, trimmed)."""
        found: list[Change] = []
        skipped: list[bytes] = []
        cg = None if self.consumer is None else self._cg
        if entries:  # pending and claimed entries come again: keep the latest id
            last = entries[-1][0].decode()
            seen = self._seen.get(stream)
            if seen is None or _id_order(last) > _id_order(seen):
                self._seen[stream] = last
        for entry_id, raw in entries:
            fields = changes.entry_fields(raw)
            if fields is None:  # pending, but trimmed from the stream meanwhile
                skipped.append(entry_id)
                continue
            if not self._wanted(fields):
                skipped.append(entry_id)
                continue
            change = changes.decode_entry(
                stream, entry_id, fields, self._codec, self.with_values, cg
            )
            if self.groups is not None and change.group not in self.groups:
                skipped.append(entry_id)
                continue
            found.append(change)
        if skipped and cg is not None:
            yield ("XACK", stream, cg, *skipped)
        return found

    def _wanted(self, fields: dict[bytes, bytes]) -> bool:
        """Whether the entry is of a kind this reader yields (a change, an event of its
        topics), read from its raw fields before anything is decoded."""
        if fields.get(b"op") != EMIT:
            return self._changes
        return self._events and (self._topics is None or fields.get(b"key", b"") in self._topics)


def _id_order(entry_id: str) -> tuple[int, ...]:
    return tuple(int(part) for part in entry_id.split("-"))


def _streams(reply: Any) -> list[tuple[bytes, list[Any]]]:
    """XREAD/XREADGROUP replies: None on timeout, a map in RESP3, pairs in RESP2."""
    if not reply:
        return []
    if isinstance(reply, dict):
        return [(k, v or []) for k, v in reply.items()]
    return [(k, v or []) for k, v in reply]


def ack_calls(pending: Sequence[Change]) -> list[tuple[Any, ...]]:
    """XACK commands for changes read through a consumer group, one per stream and group."""
    by_target: dict[tuple[bytes, str], list[str]] = {}
    for change in pending:
        if not isinstance(change, Change) or change.consumer_group is None:
            raise InvalidInput(
                f"ack() takes changes read with watch(consumer=(group, name)); got {change!r}"
            )
        by_target.setdefault((change.stream, change.consumer_group), []).append(change.id)
    return [("XACK", s, cg, *ids) for (s, cg), ids in by_target.items()]


X = TypeVar("X", Session, AsyncSession)


class Changes(Generic[X]):
    """What `Watch` and `AsyncWatch` share: a reader on a session, and the changes its
    last round found, handed out one at a time (`_pop`; `_round` finds more)."""

    def __init__(self, session: X, reader: Reader) -> None:
        self._session: X = session
        self._reader = reader
        self._buffer: list[Change | None] = []

    def _round(self) -> Steps[Any] | None:
        """The next round's steps while no change is buffered; None once one is."""
        return None if self._buffer else self._reader.round()

    def _pop(self) -> Change | None:
        return self._buffer.pop(0)


class Watch(Changes[Session]):
    """`State.watch`'s iterator: started (its position fixed) when created; `close` it, or
    leave the loop, to release its connection."""

    def __init__(self, session: Session, reader: Reader) -> None:
        super().__init__(session, reader)
        try:
            session.run(reader.start())
        except BaseException:
            session.close()
            raise

    def __iter__(self) -> Watch:
        return self

    def __next__(self) -> Change | None:
        while (steps := self._round()) is not None:
            self._buffer = self._session.run(steps)
        return self._pop()

    def close(self) -> None:
        self._session.close()

    def __enter__(self) -> Watch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        self._session.close()


class AsyncWatch(Changes[AsyncSession]):
    """`AsyncState.watch`'s async iterator. ``await`` it to fix its position at once (else
    the first ``__anext__`` does); `aclose` it to release its connection."""

    def __await__(self) -> Generator[Any, None, AsyncWatch]:
        return self._start().__await__()

    async def _start(self) -> AsyncWatch:
        try:
            await self._session.run(self._reader.start())
        except BaseException:
            await self._session.aclose()
            raise
        return self

    def __aiter__(self) -> AsyncWatch:
        return self

    async def __anext__(self) -> Change | None:
        while (steps := self._round()) is not None:
            self._buffer = await self._session.run(steps)
        return self._pop()

    async def aclose(self) -> None:
        await self._session.aclose()

    async def __aenter__(self) -> AsyncWatch:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
