"""How every request is done on Redis, as a sans-I/O plan: commands out, replies in.

`RedisPlan.steps` turns a request (`ops`) into a generator that yields Redis commands
(`steps`) and receives their replies, or has their error replies thrown in. All
command building, script handling (EVALSHA, and on NOSCRIPT: SCRIPT LOAD and retry
once), WAIT under replicated durability and reply decoding live here, once; how the
commands travel (one server or a cluster, sync or asyncio) is the seams' business.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import fields, is_dataclass
from enum import IntEnum
from itertools import chain
from operator import itemgetter
from typing import Any, TypeVar

from redis.exceptions import NoScriptError, ResponseError

from ... import idempotency, ops, scripts, updates, watch
from ...changes import FeedSettings
from ...errors import (
    DecodeError,
    IdempotencyKeyReused,
    InvalidInput,
    NotReplicated,
    VersionConflict,
    brief,
)
from ...layout import KeyLayout, key_slot
from ...steps import At, Batch, Call, Masters, Steps

T = TypeVar("T")

Handler = Callable[[Any, Any], Steps[Any]]


def _by_convention(kind: type[ops.Request[Any]]) -> Handler | None:
    """The handler of a request declared with a script and a ``group`` field that registers
    none of its own: one call of its script with KEYS the group's keys and ARGV the common
    head (feed settings, group, ``key`` or '') and then its other fields in declaration
    order (None as '', as an absent ``version=`` is sent); the reply is its result as it
    comes. (See ARCHITECTURE.md, adding an operation.)"""
    names: list[str] = [f.name for f in fields(kind)] if is_dataclass(kind) else []
    if ops.REGISTRY[kind].script is None or "group" not in names:
        return None
    rest = [name for name in names if name not in ("group", "key", "idem")]

    def handler(plan: RedisPlan, op: Any) -> Steps[Any]:
        own = ["" if (value := getattr(op, name)) is None else value for name in rest]
        return plan._on_group(op, op.group, getattr(op, "key", ""), *own)

    return handler


HANDLERS: ops.Handlers[Handler] = ops.Handlers("Redis", default=_by_convention)
# How each request a transaction may hold is written into lua/transaction.lua's ARGV.
TRANSACTION_PARTS: ops.Handlers[Callable[[Any, Any], tuple[str, list[Any]]]] = ops.Handlers(
    "Redis transactions", lambda traits: traits.in_transaction
)

# Items per script call in set_many/delete_many: one call stays around a few
# milliseconds of server time, and far below Lua's unpack/stack limits.
CHUNK_ITEMS = 1000
# How lua/include/receipt.lua's refusal of a reused idempotency key begins.
REUSED = "IDEMPOTENCY_KEY_REUSED"
DAMAGED = "IDEMPOTENCY_RECEIPT_DAMAGED"
CHUNK_BYTES = 4 * 1024 * 1024
SCAN_COUNT = 1000
# Expired items removed per cleanup call: about 2 ms of server time on a slow machine.
CLEANUP_BATCH = 100
# Pages of due groups one sweep records at most (standalone), SCAN_COUNT each: the rest wait
# for the next sweep, so one sweep stays bounded however many traces expired at once.
SWEEP_PAGES = 100


class Status(IntEnum):
    """The first element of the reply of a write script that can refuse itself (set, delete,
    update, transaction), as lua/include/status.lua names it."""

    CONFLICT = 0  # a version condition failed: nothing was written
    OK = 1
    REFUSED = 2  # an update op cannot apply: nothing was written


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def _ms(value: int | None) -> int | str:
    """An optional ms argument as the scripts take it: '' for None."""
    return "" if value is None else value


def _pairs(reply: list[bytes] | dict[bytes, bytes]) -> Iterator[tuple[str, bytes]]:
    """(field, value) pairs of an HGETALL/HSCAN reply: a map in RESP3, a flat array in RESP2."""
    if isinstance(reply, dict):
        return ((_text(k), v) for k, v in reply.items())
    it = iter(reply)
    return ((_text(k), v) for k, v in zip(it, it, strict=True))


class RedisPlan:
    """How every operation is done on Redis, independent of how commands are sent."""

    def __init__(
        self,
        layout: KeyLayout,
        *,
        feed: FeedSettings | None = None,
        codec: str = "json",
        wait: tuple[int, int] | None = None,
        retries: int = 3,
        patience: float = 10.0,
    ) -> None:
        self.layout = layout
        self.retries = retries  # new attempts after a connection failure, where safe
        self.patience = patience  # seconds a call the server refused whole is sent again
        self._wait = wait  # (replicas, timeout ms): replicated durability, WAIT after writes
        self.feed = feed or FeedSettings()
        self._feed = self.feed.spec(layout.marker_channel())
        self._feeds: dict[int, bytes] = {}  # Cluster: per slot, whose marker channel is sharded
        self._codec = codec

    def _feed_of(self, group: str) -> bytes:
        """The feed settings for a script on ``group``: on Cluster its marker channel is
        the one of the group's slot."""
        if not self.layout.cluster:
            return self._feed
        slot = key_slot(self.layout.data(group))
        spec = self._feeds.get(slot)
        if spec is None:
            spec = self._feeds[slot] = self.feed.spec(
                self.layout.marker_channel(slot), sharded=True
            )
        return spec

    def _head(self, group: str, key: str = "", *, spans: bool = False) -> list[Any]:
        """ARGV[1..3] of every write script (lua/include/common.lua): the feed settings, the
        group, the item key ('' for a call on no single item). ``spans``: a call across groups
        (a transaction), which names its groups per op: the feed settings are ``group``'s (on
        Cluster all its groups share one slot) and the group is ''."""
        return [self._feed_of(group), "" if spans else group, key]

    def _on_group(self, op: ops.Request[Any], group: str, key: str, *args: Any) -> Steps[Any]:
        """One call of ``op``'s script on ``group``: KEYS the group's keys (layout.group_keys),
        ARGV the head (`_head`) and then ``args``. Returns `_own`'s steps as they are (no
        generator of its own: one frame less on every write)."""
        return self._own(op, self.layout.group_keys(group), [*self._head(group, key), *args])

    def steps(self, op: ops.Request[T]) -> Steps[T]:
        handler = HANDLERS.table.get(type(op)) or HANDLERS.derived(type(op))
        steps: Steps[T] = handler(self, op)
        return steps

    # -- scripts ---------------------------------------------------------------

    @staticmethod
    def _eval(script: scripts.Script, keys: Sequence[bytes], args: Sequence[Any]) -> Call:
        return ("EVALSHA", script.sha, len(keys), *keys, *args)

    def _script(self, name: str, keys: Sequence[bytes], args: Sequence[Any]) -> Steps[Any]:
        """One call of a script, reloaded once if the server lost it; no WAIT (see `_own`)."""
        script = scripts.load(name, self._codec)
        call = self._eval(script, keys, args)
        try:
            return (yield call)
        except NoScriptError:
            yield ("SCRIPT", "LOAD", script.text)
            return (yield call)

    def _own(self, op: ops.Request[Any], keys: Sequence[bytes], args: Sequence[Any]) -> Steps[Any]:
        """One call of the script ``op`` is declared with (`ops.Traits.script`). Returns the
        steps of `_script` itself when there is no WAIT to add: no frame of its own on the
        hot path of every single read and write."""
        traits = ops.REGISTRY[type(op)]
        if (self._wait is None or not traits.writes or traits.feed) and (
            not traits.writes or getattr(op, "idem", None) is None
        ):  # see `_confirms` and `_receipted`
            return self._script(self._script_of(op, traits), keys, args)
        return self._first(self._own_batch(op, keys, [args]))

    def _confirms(self, traits: ops.Traits) -> bool:
        """Whether a call is confirmed with WAIT: replicated durability, and a request that
        writes state (the feed's own bookkeeping is not state)."""
        return self._wait is not None and traits.writes and not traits.feed

    @staticmethod
    def _script_of(op: ops.Request[Any], traits: ops.Traits) -> str:
        assert traits.script is not None, f"{type(op).__name__} is declared without a script"
        return traits.script

    @staticmethod
    def _first(steps: Steps[list[Any]]) -> Steps[Any]:
        return (yield from steps)[0]

    def _own_batch(
        self, op: ops.Request[Any], keys: Sequence[bytes], arg_lists: Sequence[Sequence[Any]]
    ) -> Steps[list[Any]]:
        """Several calls of ``op``'s script, pipelined; confirmed with WAIT when ``op``
        writes state and durability is replicated."""
        traits = ops.traits(op)
        name, confirm = self._script_of(op, traits), self._confirms(traits)
        idem: ops.Idem | None = getattr(op, "idem", None)
        if idem is not None:
            return (yield from self._receipted(op, idem, name, keys, arg_lists, confirm))
        if len(arg_lists) == 1 and not confirm:
            return [(yield from self._script(name, keys, arg_lists[0]))]
        script = scripts.load(name, self._codec)
        calls = [self._eval(script, keys, args) for args in arg_lists]
        return (yield from self._batch_with_reload(script, calls, traits if confirm else None))

    def _receipted(
        self,
        op: ops.Request[Any],
        idem: ops.Idem,
        name: str,
        keys: Sequence[bytes],
        arg_lists: Sequence[Sequence[Any]],
        confirm: bool,
    ) -> Steps[list[Any]]:
        """``op``'s calls with an idempotency key: each call runs the script's receipted
        variant, its receipt (one per call, in the slot of `idempotency.receipt_group`) as the
        last KEYS entry and the receipt spec as the last ARGV entry (lua/include/receipt.lua):
        the fingerprint, the lifetime, and under replicated durability ``w``, for a replay to
        write its receipt again, so that the WAIT after it waits for the first write too (a
        replay on another connection has written nothing a WAIT would count).

        A write sent in several calls (set_many's chunks) sends its first call alone: the key
        reused with other arguments is refused there, before any other chunk runs."""
        group = idempotency.receipt_group(op)
        script = scripts.load(name, self._codec, receipted=True)
        tail = b"%d" % idem.ttl_ms + (b"w" if confirm else b"")
        calls = [
            self._eval(
                script,
                [*keys, self.layout.receipt(group, idem.key, i)],
                [*args, idempotency.part(idem, i) + tail],
            )
            for i, args in enumerate(arg_lists)
        ]
        traits = ops.traits(op) if confirm else None
        try:
            replies = yield from self._batch_with_reload(script, calls[:1], traits)
            if len(calls) > 1:
                replies += yield from self._batch_with_reload(script, calls[1:], traits)
        except ResponseError as exc:
            if str(exc).startswith(REUSED):
                raise IdempotencyKeyReused(
                    f"idempotency key {brief(idem.key)} on group {brief(group)} already applied "
                    "a call with other arguments; nothing was written"
                ) from None
            if str(exc).startswith(DAMAGED):
                raise DecodeError(
                    f"the receipt of idempotency key {brief(idem.key)} on group {brief(group)} "
                    "is damaged (another tool wrote it?); nothing was written"
                ) from None
            raise
        return replies

    def _batch_with_reload(
        self, script: scripts.Script, calls: list[Call], confirm: ops.Traits | None = None
    ) -> Steps[list[Any]]:
        """Calls of one script in one pipeline; on NOSCRIPT, load it and re-send those calls.

        ``confirm``: the traits of a write to confirm (replicated durability): the pipeline
        ends with WAIT, on the same connection (a WAIT counts the writes of its own
        connection), each time it is sent. A conditional write its own condition refused
        wrote nothing, so that refusal, not the replication check, is the answer.
        """
        tail = (("WAIT", *self._wait),) if confirm is not None and self._wait else ()
        sent = yield Batch((*calls, *tail))
        replies, acked = list(sent[: len(calls)]), sent[len(calls) :]
        missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
        if missing:
            # Calls that got NOSCRIPT did nothing, so re-sending exactly those is safe.
            yield ("SCRIPT", "LOAD", script.text)
            retried = yield Batch((*(calls[i] for i in missing), *tail))
            for i, reply in zip(missing, retried, strict=False):
                replies[i] = reply
            acked = retried[len(missing) :]
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        if tail and not (confirm and confirm.conditional and replies[0][0] != Status.OK):
            self._replicated(acked[0])
        return replies

    def _replicated(self, acked: Any) -> None:
        assert self._wait is not None
        needed, ms = self._wait
        if isinstance(acked, Exception):
            raise acked
        if int(acked) < needed:
            raise NotReplicated(int(acked), needed, ms / 1000)

    def _chunks(self, pairs: Sequence[tuple[str, bytes]]) -> list[list[Any]]:
        if pairs and max(map(len, map(itemgetter(1), pairs))) * CHUNK_ITEMS <= CHUNK_BYTES:
            # no chunk of CHUNK_ITEMS can pass CHUNK_BYTES: fixed slices, flattened in C
            return [
                list(chain.from_iterable(pairs[i : i + CHUNK_ITEMS]))
                for i in range(0, len(pairs), CHUNK_ITEMS)
            ]
        chunks: list[list[Any]] = []
        current: list[Any] = []
        size = 0
        for key, data in pairs:
            if current and (len(current) >= 2 * CHUNK_ITEMS or size + len(data) > CHUNK_BYTES):
                chunks.append(current)
                current, size = [], 0
            current += [key, data]
            size += len(data)
        if current:
            chunks.append(current)
        return chunks

    # -- reads -----------------------------------------------------------------

    @HANDLERS.on(ops.Get)
    def _get(self, op: ops.Get) -> Steps[bytes | None]:
        # One script call: for the small values most reads fetch, one command beats HGET
        # pipelined with an expiry check (the whole-group reads below do the latter).
        keys = [self.layout.data(op.group), self.layout.expiries(op.group)]
        reply: bytes | None = yield from self._own(op, keys, [op.key])
        return reply

    @HANDLERS.on(ops.GetItem)
    def _get_item(self, op: ops.GetItem) -> Steps[ops.RawItem | None]:
        g = op.group
        keys = [self.layout.data(g), self.layout.versions(g), self.layout.expiries(g)]
        reply = yield from self._own(op, keys, [op.key])
        if reply is None:
            return None
        expires = int(reply[2]) / 1000 if reply[2] else None
        left = int(reply[3]) if len(reply) > 3 and reply[3] else None
        return ops.RawItem(reply[0], int(reply[1]), expires, left)

    def _with_expired(
        self, group: str, read: Call, among: Sequence[str] | None = None
    ) -> Steps[Any]:
        """``read`` and the keys of the group's expired items, pipelined in one round trip.

        Values come straight from HGET-family commands; only keys pass through Lua.
        ``among`` limits the check to some keys (ZMSCORE), else all expired keys come back.
        """
        name = "expired_keys" if among is None else "expired_among"
        script = scripts.load(name, self._codec)
        check = self._eval(script, [self.layout.expiries(group)], list(among or []))
        reply, expired = yield from self._batch_with_reload(script, [read, check])
        return reply, {_text(k) for k in expired}

    @HANDLERS.on(ops.GetMany)
    def _get_many(self, op: ops.GetMany) -> Steps[list[bytes | None]]:
        values: list[bytes | None] = []
        data = self.layout.data(op.group)
        for i in range(0, len(op.keys), CHUNK_ITEMS):
            chunk = op.keys[i : i + CHUNK_ITEMS]
            reply, expired = yield from self._with_expired(op.group, ("HMGET", data, *chunk), chunk)
            values += [None if k in expired else v for k, v in zip(chunk, reply, strict=True)]
        return values

    @HANDLERS.on(ops.GetAll)
    def _get_all(self, op: ops.GetAll) -> Steps[dict[str, bytes]]:
        read = ("HGETALL", self.layout.data(op.group))
        reply, expired = yield from self._with_expired(op.group, read)
        return {k: v for k, v in _pairs(reply) if k not in expired}

    @HANDLERS.on(ops.Values)
    def _values(self, op: ops.Values) -> Steps[list[bytes]]:
        reply, expired = yield from self._with_expired(
            op.group, ("HVALS", self.layout.data(op.group))
        )
        if not expired:
            return list(reply)
        # expired items not yet cleaned up: their keys tell which values to leave out
        live = yield from self._get_all(ops.GetAll(op.group))
        return list(live.values())

    @HANDLERS.on(ops.Keys)
    def _keys(self, op: ops.Keys) -> Steps[list[str]]:
        read = ("HKEYS", self.layout.data(op.group))
        reply, expired = yield from self._with_expired(op.group, read)
        return [k for k in map(_text, reply) if k not in expired]

    @HANDLERS.on(ops.ScanPage)
    def _scan_page(self, op: ops.ScanPage) -> Steps[tuple[int, list[tuple[str, bytes]]]]:
        cursor, flat = yield ("HSCAN", self.layout.data(op.group), op.cursor, "COUNT", op.count)
        page = list(_pairs(flat))
        if page:  # expired items stay in the hash until cleanup: leave them out
            keys = [self.layout.expiries(op.group)]
            fields = [k.encode("utf-8", errors="surrogateescape") for k, _ in page]  # as read
            expired = yield from self._script("expired_among", keys, fields)
            if expired:
                gone = {_text(k) for k in expired}
                page = [(k, v) for k, v in page if k not in gone]
        return int(cursor), page

    @HANDLERS.on(ops.QueryPage)
    def _query_page(self, op: ops.QueryPage) -> Steps[ops.QueryReply]:
        g = op.group
        keys = [self.layout.data(g), self.layout.versions(g), self.layout.expiries(g)]
        args = [op.cursor, op.returned, op.page_count, op.budget, op.wanted, op.mode]
        reply = yield from self._own(op, keys, [*args, len(op.tokens), *op.tokens])
        cursor, page_cursor, page_matches, *rest = reply
        head = (_text(cursor), _text(page_cursor), int(page_matches))
        if op.mode == "count":
            return ops.QueryReply(*head, [], int(rest[0]))
        it = iter(rest)
        matches = [
            ops.QueryMatch(_text(key), data, int(version), int(at) if at else None)
            for key, data, version, at in zip(it, it, it, it, strict=True)
        ]
        return ops.QueryReply(*head, matches, len(matches))

    def _scan(self, pattern: bytes, kind: str) -> Steps[list[bytes]]:
        """Keys matching ``pattern`` of type ``kind``, from every master."""
        found: list[bytes] = []
        for node in (yield Masters()):
            cursor = 0
            while True:
                scan = ("SCAN", cursor, "MATCH", pattern, "COUNT", SCAN_COUNT, "TYPE", kind)
                cursor, page = yield At(node, scan)
                found += page
                if int(cursor) == 0:
                    break
        return found

    @HANDLERS.on(ops.ListGroups)
    def _list_groups(self, op: ops.ListGroups) -> Steps[list[str]]:
        found = yield from self._scan(self.layout.scan_pattern(), "hash")
        names = sorted({self.layout.group_of(k) for k in found})
        groups: list[str] = []
        script = scripts.load("alive", self._codec)
        for i in range(0, len(names), SCAN_COUNT):  # a group whose items all expired is not listed
            chunk = names[i : i + SCAN_COUNT]
            calls = [
                self._eval(script, [self.layout.data(g), self.layout.expiries(g)], [])
                for g in chunk
            ]
            replies = yield from self._batch_with_reload(script, calls)
            groups += [g for g, alive in zip(chunk, replies, strict=True) if alive]
        return groups

    @HANDLERS.on(ops.Stats)
    def _stats(self, op: ops.Stats) -> Steps[tuple[list[ops.GroupStats], int | None]]:
        layout, rows = self.layout, []
        for group in op.groups:
            data, versions, changes = (
                layout.data(group),
                layout.versions(group),
                layout.changes(group),
            )
            expiries = layout.expiries(group)
            calls: list[Call] = [("HLEN", data), ("ZCARD", expiries)]
            calls += [("MEMORY", "USAGE", key) for key in (data, versions, expiries)]
            if layout.cluster:  # the group's own stream
                calls += [("MEMORY", "USAGE", changes), ("XLEN", changes)]
            replies = yield Batch(tuple(calls))
            for reply in replies:
                if isinstance(reply, Exception):
                    raise reply
            items, with_ttl, *sizes = replies
            length = int(sizes.pop()) if layout.cluster else None
            used = sum(int(n or 0) for n in sizes)
            rows.append(ops.GroupStats(group, int(items), int(with_ttl), used, length))
        if layout.cluster:
            return rows, None
        return rows, int((yield ("XLEN", layout.changes(""))))

    @HANDLERS.on(ops.Ttl)
    def _ttl(self, op: ops.Ttl) -> Steps[float | None]:
        reply = yield from self._on_group(op, op.group, op.key, "get", "")
        if reply is None or not reply[0]:
            return None
        return max(0.0, (int(reply[0]) - int(reply[1])) / 1000)

    @HANDLERS.on(ops.SetExpiry)
    def _set_expiry(self, op: ops.SetExpiry) -> Steps[bool]:
        how = "persist" if op.ms is None else str(op.ms)
        reply = yield from self._on_group(op, op.group, op.key, how, _ms(op.group_ttl))
        return bool(reply)

    @HANDLERS.on(ops.GroupTtl)
    def _group_ttl(self, op: ops.GroupTtl) -> Steps[float | None]:
        left = int((yield ("PTTL", self.layout.data(op.group))))
        return None if left < 0 else left / 1000

    @HANDLERS.on(ops.Cleanup)
    def _cleanup(self, op: ops.Cleanup) -> Steps[int]:
        registry = self.layout.registry()
        if registry is not None:
            members: list[bytes] = yield ("SMEMBERS", registry)
            groups = [_text(m) for m in members]
        else:  # Cluster: no registry (it would span slots); find the expiry sets instead
            found = yield from self._scan(self.layout.expiries_pattern(), "zset")
            groups = [self.layout.group_of_expiries(k) for k in found]
        removed = 0
        for group in groups:
            more = 1
            while more:
                count, more = yield from self._on_group(op, group, "", CLEANUP_BATCH)
                removed += int(count)
        yield from self._sweep_groups(op)
        return removed

    def _sweep_groups(self, op: ops.Cleanup) -> Steps[int]:
        """Record the expiry of every group whose deadline has passed (lua/sweep_group.lua);
        returns how many this call recorded. Off Cluster the registry of deadlines names the
        groups that are due; Cluster has none (it would span slots), so the deadline keys are
        found by SCAN on every master and read there, against that master's clock (the script
        decides by its own: a clock ahead only sends a call that records nothing)."""
        registry, recorded, due = self.layout.deadlines(), 0, []
        for node in (yield Masters()):
            seconds, micros = yield At(node, ("TIME",))
            now = int(seconds) * 1000 + int(micros) // 1000
            if registry is not None:  # one server; each page sent leaves the registry's due part
                for _ in range(SWEEP_PAGES):
                    page = yield ("ZRANGEBYSCORE", registry, "-inf", now, "LIMIT", 0, SCAN_COUNT)
                    recorded += yield from self._sweep(op, [_text(m) for m in page])
                    if len(page) < SCAN_COUNT:
                        break
                continue
            cursor = 0
            while True:
                scan = ("SCAN", cursor, "MATCH", self.layout.deadline_pattern(), "COUNT",
                        SCAN_COUNT, "TYPE", "string")  # fmt: skip
                cursor, keys = yield At(node, scan)
                if keys:
                    deadlines = yield Batch(tuple(("GET", key) for key in keys))
                    due += [
                        self.layout.group_of_deadline(key)
                        for key, at in zip(keys, deadlines, strict=True)
                        if isinstance(at, bytes) and at.isdigit() and int(at) <= now
                    ]
                if int(cursor) == 0:
                    break
        for i in range(0, len(due), SCAN_COUNT):
            recorded += yield from self._sweep(op, due[i : i + SCAN_COUNT])
        return recorded

    def _sweep(self, op: ops.Cleanup, groups: list[str]) -> Steps[int]:
        """sweep_group.lua on each of ``groups``, pipelined; how many expiries it recorded."""
        if not groups:
            return 0
        script = scripts.load("sweep_group", self._codec)
        calls = [self._eval(script, self.layout.group_keys(g), self._head(g)) for g in groups]
        confirm = ops.traits(op) if self._confirms(ops.traits(op)) else None
        replies = yield from self._batch_with_reload(script, calls, confirm)
        return sum(int(n) for n in replies)

    # -- writes ----------------------------------------------------------------

    @staticmethod
    def _expected(version: int | None) -> str:
        return "" if version is None else str(version)

    @HANDLERS.on(ops.Set)
    def _set(self, op: ops.Set) -> Steps[int]:
        status, version = yield from self._on_group(
            op, op.group, op.key, self._expected(op.version), op.expire, op.data, _ms(op.group_ttl)
        )
        if status == Status.CONFLICT:
            raise VersionConflict([(op.group, op.key, op.version, int(version))])
        return int(version)

    @HANDLERS.on(ops.SetMany)
    def _set_many(self, op: ops.SetMany) -> Steps[int]:
        if not op.items:
            return 0
        keys = self.layout.group_keys(op.group)
        head = [*self._head(op.group), op.expire, _ms(op.group_ttl)]
        replies = yield from self._own_batch(
            op, keys, [head + chunk for chunk in self._chunks(op.items)]
        )
        return sum(int(n) for n in replies)

    @HANDLERS.on(ops.Delete)
    def _delete(self, op: ops.Delete) -> Steps[bytes | None]:
        reply = yield from self._on_group(
            op, op.group, op.key, self._expected(op.version), _ms(op.group_ttl)
        )
        if reply[0] == Status.CONFLICT:
            raise VersionConflict([(op.group, op.key, op.version, int(reply[1]))])
        return reply[1] if len(reply) > 1 else None

    @HANDLERS.on(ops.DeleteMany)
    def _delete_many(self, op: ops.DeleteMany) -> Steps[int]:
        if not op.keys:
            return 0
        keys = self.layout.group_keys(op.group)
        head = [*self._head(op.group), _ms(op.group_ttl)]
        chunks = [
            head + list(op.keys[i : i + CHUNK_ITEMS]) for i in range(0, len(op.keys), CHUNK_ITEMS)
        ]
        replies = yield from self._own_batch(op, keys, chunks)
        return sum(int(n) for n in replies)

    @HANDLERS.on(ops.Update)
    def _update(self, op: ops.Update) -> Steps[tuple[int, bytes]]:
        args = [self._expected(op.version), op.expire, op.start, op.name, op.max_bytes]
        args.append(_ms(op.group_ttl))
        reply = yield from self._on_group(op, op.group, op.key, *args, *self._steps(op))
        if reply[0] == Status.CONFLICT:
            raise VersionConflict([(op.group, op.key, op.version, int(reply[1]))])
        if reply[0] == Status.REFUSED:
            index = int(reply[2])
            raise updates.fail(reply[1].decode(), op.steps[index - 1] if index else None)
        return int(reply[1]), reply[2]

    @HANDLERS.on(ops.Transaction)
    def _transaction(self, op: ops.Transaction) -> Steps[list[Any]]:
        groups = {g: n for n, g in enumerate(dict.fromkeys(sub.group for sub in op.ops), 1)}
        if self.layout.cluster and len({key_slot(self.layout.data(g)) for g in groups}) > 1:
            raise InvalidInput(
                f"a transaction over groups {list(groups)} spans Redis Cluster hash slots; "
                "one server call can only touch one slot (give the groups a common {hash tag})"
            )
        keys = [k for g in groups for k in self.layout.group_keys(g)[:5]]
        argv = [*self._head(op.ops[0].group, spans=True), op.max_bytes, len(op.ops)]
        registry, deadlines = self.layout.registry(), self.layout.deadlines()
        if registry is not None and deadlines is not None:
            keys += [deadlines, registry]
        # each group's TTL, as its ops carry it (one Core made them all: they agree); an
        # emit carries none (recording an event slides no group's expiry)
        ttls = {sub.group: sub.group_ttl for sub in op.ops if not isinstance(sub, ops.Emit)}
        argv += [_ms(ttls.get(g)) for g in groups]
        for sub in op.ops:
            if isinstance(sub, ops.Emit):  # the topic in the key's place; no condition, expiry
                head = [sub.group, sub.topic, "", ""]
            else:
                head = [sub.group, sub.key, self._expected(sub.version), getattr(sub, "expire", "")]
            kind, tail = TRANSACTION_PARTS.table[type(sub)](self, sub)
            argv += [kind, groups[sub.group], *head, *tail]
        reply = yield from self._own(op, keys, argv)
        if reply[0] == Status.CONFLICT:
            failed = zip(reply[1][0::2], reply[1][1::2], strict=True)
            raise VersionConflict(
                [
                    (op.ops[i - 1].group, op.ops[i - 1].key, op.ops[i - 1].version, int(v))
                    for i, v in failed
                ]
            )
        if reply[0] == Status.REFUSED:
            sub, step = op.ops[int(reply[2]) - 1], int(reply[3])
            assert isinstance(sub, ops.Update)
            raise updates.fail(reply[1].decode(), sub.steps[step - 1] if step else None)
        results = list(reply[1:])
        assert len(results) == len(op.ops), reply
        for i, sub in enumerate(op.ops):
            if isinstance(sub, ops.Update):
                results[i] = (int(results[i][0]), results[i][1])
            elif isinstance(sub, ops.Emit):  # the event's id
                results[i] = _text(results[i])
        return results

    @TRANSACTION_PARTS.on(ops.Set)
    def _in_transaction_set(self, sub: ops.Set) -> tuple[str, list[Any]]:
        return "set", [sub.data]

    @TRANSACTION_PARTS.on(ops.Delete)
    def _in_transaction_delete(self, sub: ops.Delete) -> tuple[str, list[Any]]:
        return "delete", []

    @TRANSACTION_PARTS.on(ops.Emit)
    def _in_transaction_emit(self, sub: ops.Emit) -> tuple[str, list[Any]]:
        return "emit", [sub.data]

    @HANDLERS.on(ops.Emit)
    def _emit(self, op: ops.Emit) -> Steps[str]:
        """An event alone: a transaction of that one op (its script carries emits)."""
        (event_id,) = yield from self._transaction(ops.Transaction((op,), 0))
        return str(event_id)

    @TRANSACTION_PARTS.on(ops.Update)
    def _in_transaction_update(self, sub: ops.Update) -> tuple[str, list[Any]]:
        return "update", [sub.start, sub.name, *self._steps(sub)]

    def _steps(self, op: ops.Update) -> list[bytes]:
        """The update steps as lua/include/update.lua reads them from ARGV."""
        argv = [b"%d" % len(op.steps)]
        for step, (operand, segments) in zip(op.steps, op.encoded, strict=True):
            argv.append(step.kind.encode())
            argv.append(b"%d" % len(segments))
            argv.extend(segments)
            argv.append(operand)
        return argv

    @HANDLERS.on(ops.Ack)
    def _ack(self, op: ops.Ack) -> Steps[int]:
        replies = yield Batch(tuple(watch.ack_calls(op.changes)))
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return sum(int(n) for n in replies)

    @HANDLERS.on(ops.External)
    def _external(self, op: ops.External) -> Steps[None]:
        stream = self.layout.changes(op.group or "")
        yield from self._own(op, [stream], [*self._head(op.group or ""), op.event])

    @HANDLERS.on(ops.Lease)
    def _lease(self, op: ops.Lease) -> Steps[bool]:
        reply = yield from self._own(op, [self.layout.bridge_lease()], [op.token, op.ms])
        return bool(reply)

    @HANDLERS.on(ops.Clear)
    def _clear(self, op: ops.Clear) -> Steps[int]:
        reply = yield from self._on_group(op, op.group, "")
        return int(reply)
