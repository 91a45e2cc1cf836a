"""The Redis backend: one sans-I/O command plan, driven by a sync or an async client.

`RedisPlan` turns each `Op` into a generator that yields Redis commands and
receives their replies (or has their errors thrown in). All command building,
script handling (EVALSHA, and on NOSCRIPT: SCRIPT LOAD and retry once) and reply
decoding live there, once. `RedisBackend` and `AsyncRedisBackend` are the two
thin I/O seams: each only sends what the plan yields.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any, TypeVar

import hiredis
import redis
import redis.asyncio
import redis.asyncio.connection
import redis.connection
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    NoPermissionError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.sentinel import MasterNotFoundError

from .. import ops, scripts, updates, watch
from ..changes import FeedSettings
from ..errors import (
    BackendUnavailable,
    InvalidInput,
    NotReplicated,
    OutcomeUnknown,
    PermissionDenied,
    ServerBusy,
    StateError,
    Unsupported,
    VersionConflict,
)
from ..layout import KeyLayout, key_slot
from ..steps import At, Batch, Call, Masters, Steps

T = TypeVar("T")


# Items per script call in set_many/delete_many: one call stays around a few
# milliseconds of server time, and far below Lua's unpack/stack limits.
CHUNK_ITEMS = 1000
CHUNK_BYTES = 4 * 1024 * 1024
SCAN_COUNT = 1000
# Expired items removed per cleanup call: about 2 ms of server time on a slow machine.
CLEANUP_BATCH = 100
# Scripts that write: with replicated durability each is followed by WAIT.
WRITE_SCRIPTS = frozenset(
    {
        "set",
        "set_many",
        "delete",
        "delete_many",
        "clear",
        "update",
        "transaction",
        "cleanup",
        "expiry",
    }
)


# Write scripts whose reply can say the op's own condition refused it ({0, ...}: a version
# conflict; {2, ...}: an update op that cannot apply): the op itself wrote nothing, so that
# outcome, not NotReplicated, is the answer (an expired item the call found may have been
# purged on the way, which replicas confirm or not like any other write).
CONDITIONAL = frozenset({"set", "delete", "update", "transaction"})


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def _pack(calls: Sequence[Call]) -> bytes:
    """RESP-encode commands with hiredis (redis-py's asyncio client packs in pure Python)."""
    return b"".join([hiredis.pack_command(call) for call in calls])


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
        self._handlers: dict[type[Any], Callable[[Any], Steps[Any]]] = {
            ops.Get: self._get,
            ops.GetItem: self._get_item,
            ops.GetMany: self._get_many,
            ops.GetAll: self._get_all,
            ops.Keys: self._keys,
            ops.ScanPage: self._scan_page,
            ops.Set: self._set,
            ops.SetMany: self._set_many,
            ops.Delete: self._delete,
            ops.DeleteMany: self._delete_many,
            ops.Clear: self._clear,
            ops.ListGroups: self._list_groups,
            ops.Stats: self._stats,
            ops.Update: self._update,
            ops.Transaction: self._transaction,
            ops.Ttl: self._ttl,
            ops.SetExpiry: self._set_expiry,
            ops.Cleanup: self._cleanup,
            ops.Ack: self._ack,
            ops.External: self._external,
            ops.Lease: self._lease,
        }

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

    def steps(self, op: ops.Op[T]) -> Steps[T]:
        return self._handlers[type(op)](op)

    # -- scripts ---------------------------------------------------------------

    @staticmethod
    def _eval(script: scripts.Script, keys: Sequence[bytes], args: Sequence[Any]) -> Call:
        return ("EVALSHA", script.sha, len(keys), *keys, *args)

    def _script(
        self, name: str, keys: Sequence[bytes], args: Sequence[Any], *, confirm: bool = True
    ) -> Steps[Any]:
        """One script call; ``confirm=False`` for a write script's read form (no WAIT)."""
        script = scripts.load(name, self._codec)
        call = self._eval(script, keys, args)
        if self._wait is not None and name in WRITE_SCRIPTS and confirm:
            return (yield from self._batch_with_reload(script, [call]))[0]
        try:
            return (yield call)
        except NoScriptError:
            yield ("SCRIPT", "LOAD", script.text)
            return (yield call)

    def _script_batch(
        self, name: str, keys: Sequence[bytes], arg_lists: Sequence[Sequence[Any]]
    ) -> Steps[list[Any]]:
        """Pipeline several calls of one script; reload it once if the server lost it."""
        if len(arg_lists) == 1:
            return [(yield from self._script(name, keys, arg_lists[0]))]
        script = scripts.load(name, self._codec)
        calls = [self._eval(script, keys, args) for args in arg_lists]
        return (yield from self._batch_with_reload(script, calls))

    def _batch_with_reload(self, script: scripts.Script, calls: list[Call]) -> Steps[list[Any]]:
        """Calls of one script in one pipeline; on NOSCRIPT, load it and re-send those calls.

        With replicated durability, a write script's pipeline ends with WAIT, on the same
        connection (a WAIT counts the writes of its own connection), each time it is sent.
        """
        wait = self._wait if script.name in WRITE_SCRIPTS else None
        tail = (("WAIT", *wait),) if wait is not None else ()
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
        if wait is not None and not (script.name in CONDITIONAL and replies[0][0] != 1):
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

    def _get(self, op: ops.Get) -> Steps[bytes | None]:
        # One script call: for the small values most reads fetch, one command beats HGET
        # pipelined with an expiry check (the whole-group reads below do the latter).
        keys = [self.layout.data(op.group), self.layout.expiries(op.group)]
        reply: bytes | None = yield from self._script("get", keys, [op.key])
        return reply

    def _get_item(self, op: ops.GetItem) -> Steps[ops.RawItem | None]:
        g = op.group
        keys = [self.layout.data(g), self.layout.versions(g), self.layout.expiries(g)]
        reply = yield from self._script("get_item", keys, [op.key])
        if reply is None:
            return None
        expires = int(reply[2]) / 1000 if reply[2] else None
        return ops.RawItem(reply[0], int(reply[1]), expires)

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

    def _get_many(self, op: ops.GetMany) -> Steps[list[bytes | None]]:
        values: list[bytes | None] = []
        data = self.layout.data(op.group)
        for i in range(0, len(op.keys), CHUNK_ITEMS):
            chunk = op.keys[i : i + CHUNK_ITEMS]
            reply, expired = yield from self._with_expired(op.group, ("HMGET", data, *chunk), chunk)
            values += [None if k in expired else v for k, v in zip(chunk, reply, strict=True)]
        return values

    def _get_all(self, op: ops.GetAll) -> Steps[dict[str, bytes]]:
        read = ("HGETALL", self.layout.data(op.group))
        reply, expired = yield from self._with_expired(op.group, read)
        return {k: v for k, v in _pairs(reply) if k not in expired}

    def _keys(self, op: ops.Keys) -> Steps[list[str]]:
        read = ("HKEYS", self.layout.data(op.group))
        reply, expired = yield from self._with_expired(op.group, read)
        return [k for k in map(_text, reply) if k not in expired]

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

    def _ttl(self, op: ops.Ttl) -> Steps[float | None]:
        keys = self.layout.group_keys(op.group)
        reply = yield from self._script(
            "expiry", keys, [op.key, op.group, self._feed_of(op.group), "get"], confirm=False
        )
        if reply is None or not reply[0]:
            return None
        return max(0.0, (int(reply[0]) - int(reply[1])) / 1000)

    def _set_expiry(self, op: ops.SetExpiry) -> Steps[bool]:
        how = "persist" if op.ms is None else str(op.ms)
        keys = self.layout.group_keys(op.group)
        reply = yield from self._script(
            "expiry", keys, [op.key, op.group, self._feed_of(op.group), how]
        )
        return bool(reply)

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
                args = [group, self._feed_of(group), CLEANUP_BATCH]
                count, more = yield from self._script(
                    "cleanup", self.layout.group_keys(group), args
                )
                removed += int(count)
        return removed

    # -- writes ----------------------------------------------------------------

    @staticmethod
    def _expected(version: int | None) -> str:
        return "" if version is None else str(version)

    def _set(self, op: ops.Set) -> Steps[int]:
        keys = self.layout.group_keys(op.group)
        args = [
            op.key,
            op.data,
            self._expected(op.version),
            op.group,
            self._feed_of(op.group),
            op.expire,
        ]
        ok, version = yield from self._script("set", keys, args)
        if not ok:
            raise VersionConflict([(op.group, op.key, op.version, int(version))])
        return int(version)

    def _set_many(self, op: ops.SetMany) -> Steps[int]:
        if not op.items:
            return 0
        keys = self.layout.group_keys(op.group)
        head = [op.group, self._feed_of(op.group), op.expire]
        replies = yield from self._script_batch(
            "set_many", keys, [head + chunk for chunk in self._chunks(op.items)]
        )
        return sum(int(n) for n in replies)

    def _delete(self, op: ops.Delete) -> Steps[bytes | None]:
        keys = self.layout.group_keys(op.group)
        args = [op.key, self._expected(op.version), op.group, self._feed_of(op.group)]
        reply = yield from self._script("delete", keys, args)
        if not reply[0]:
            raise VersionConflict([(op.group, op.key, op.version, int(reply[1]))])
        return reply[1] if len(reply) > 1 else None

    def _delete_many(self, op: ops.DeleteMany) -> Steps[int]:
        if not op.keys:
            return 0
        keys = self.layout.group_keys(op.group)
        head: list[Any] = [op.group, self._feed_of(op.group)]
        chunks = [
            head + list(op.keys[i : i + CHUNK_ITEMS]) for i in range(0, len(op.keys), CHUNK_ITEMS)
        ]
        replies = yield from self._script_batch("delete_many", keys, chunks)
        return sum(int(n) for n in replies)

    def _update(self, op: ops.Update) -> Steps[tuple[int, bytes]]:
        keys = self.layout.group_keys(op.group)
        head = [
            op.key,
            self._expected(op.version),
            op.group,
            self._feed_of(op.group),
            op.start,
            op.max_bytes,
        ]
        reply = yield from self._script("update", keys, [*head, op.name, op.expire, *op.argv])
        if reply[0] == 0:
            raise VersionConflict([(op.group, op.key, op.version, int(reply[1]))])
        if reply[0] == 2:
            index = int(reply[2])
            raise updates.fail(reply[1].decode(), op.steps[index - 1] if index else None)
        return int(reply[1]), reply[2]

    def _transaction(self, op: ops.Transaction) -> Steps[list[Any]]:
        groups = {g: n for n, g in enumerate(dict.fromkeys(sub.group for sub in op.ops), 1)}
        if self.layout.cluster and len({key_slot(self.layout.data(g)) for g in groups}) > 1:
            raise InvalidInput(
                f"a transaction over groups {list(groups)} spans Redis Cluster hash slots; "
                "one server call can only touch one slot (give the groups a common {hash tag})"
            )
        keys = [k for g in groups for k in self.layout.group_keys(g)[:4]]
        argv: list[Any] = [self._feed_of(op.ops[0].group), op.max_bytes, len(op.ops)]
        registry = self.layout.registry()
        if registry is not None:
            keys.append(registry)
        for sub in op.ops:
            head = [sub.group, sub.key, self._expected(sub.version), getattr(sub, "expire", "")]
            if isinstance(sub, ops.Set):
                argv += ["set", groups[sub.group], *head, sub.data]
            elif isinstance(sub, ops.Delete):
                argv += ["delete", groups[sub.group], *head]
            else:
                argv += ["update", groups[sub.group], *head, sub.start, sub.name, *sub.argv]
        reply = yield from self._script("transaction", keys, argv)
        if reply[0] == 0:
            failed = zip(reply[1][0::2], reply[1][1::2], strict=True)
            raise VersionConflict(
                [
                    (op.ops[i - 1].group, op.ops[i - 1].key, op.ops[i - 1].version, int(v))
                    for i, v in failed
                ]
            )
        if reply[0] == 2:
            sub, step = op.ops[int(reply[2]) - 1], int(reply[3])
            assert isinstance(sub, ops.Update)
            raise updates.fail(reply[1].decode(), sub.steps[step - 1] if step else None)
        return [
            (int(r[0]), r[1]) if isinstance(sub, ops.Update) else r
            for sub, r in zip(op.ops, reply[1:], strict=True)
        ]

    def _ack(self, op: ops.Ack) -> Steps[int]:
        replies = yield Batch(tuple(watch.ack_calls(op.changes)))
        for reply in replies:
            if isinstance(reply, Exception):
                raise reply
        return sum(int(n) for n in replies)

    def _external(self, op: ops.External) -> Steps[None]:
        stream = self.layout.changes(op.group or "")
        yield from self._script(
            "external", [stream], [self._feed_of(op.group or ""), op.group or "", op.event]
        )

    def _lease(self, op: ops.Lease) -> Steps[bool]:
        reply = yield from self._script("lease", [self.layout.bridge_lease()], [op.token, op.ms])
        return bool(reply)

    def _clear(self, op: ops.Clear) -> Steps[int]:
        keys = self.layout.group_keys(op.group)
        reply = yield from self._script("clear", keys, [op.group, self._feed_of(op.group)])
        return int(reply)


class NotSent(redis.ConnectionError):
    """The connection failed before the command was written: nothing reached the server."""


# Seconds to wait before each new attempt of a call that failed on the connection, while
# nothing of it reached the server or it is idempotent (`ops.IDEMPOTENT`).
RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0)
PEEK_AFTER_S = 0.005  # idle time after which a connection is checked for a close before use


# ACL refusals that a script's redis.call reports as a plain ERR, not NOPERM (Redis 7.0, then
# Valkey 8).
_REFUSED = ("can't run this command", "can't publish to the channel", "ACL failure in script")


# Replies that prove the command never ran: the server refused it whole, for a reason that
# passes. redis-py names some by class, but not always: an error reply read in a pipeline,
# or raised inside a script, can come as a plain ResponseError holding the code.
_PASSING = (BusyLoadingError, ClusterDownError, ReadOnlyError, TryAgainError)  # MASTERDOWN too
_PASSING_CODES = tuple(
    f"{code} " for code in ("BUSY", "NOREPLICAS", "LOADING", "READONLY", "MASTERDOWN",
                            "CLUSTERDOWN", "TRYAGAIN")
)  # fmt: skip


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` is a reply refusing a command whole (see `ServerBusy`), or a failure
    to connect because the server refused the handshake so (`NotSent` keeps it as its cause)."""
    if isinstance(exc, NotSent) and exc.__cause__ is not None:
        return refused(exc.__cause__)
    if isinstance(exc, redis.ConnectionError) and isinstance(exc.__context__, ReadOnlyError):
        return True  # redis-py's Sentinel client reports a demoted primary's READONLY so
    return isinstance(exc, _PASSING) or (
        isinstance(exc, ResponseError) and str(exc).startswith(_PASSING_CODES)
    )


def _translate(exc: RedisError, describe: str, sent: bool = True) -> StateError:
    if isinstance(exc, MasterNotFoundError):  # its text lists every Sentinel client's repr
        service = str(exc).split(" : ", 1)[0]
        exc = MasterNotFoundError(f"{service}: no Sentinel named in the URL knows it")
    cause = exc.__cause__ if isinstance(exc, NotSent) else exc
    if isinstance(cause, AuthenticationError):  # trying again cannot help
        return PermissionDenied(f"{describe}: the server refused the credentials: {cause}")
    if isinstance(cause, ResponseError) and "DB index is out of range" in str(cause):
        return InvalidInput(f"{describe}: the server has no such database ({cause})")
    if refused(exc):  # after an earlier step ran (sent), retried only if the op is idempotent
        busy = ServerBusy(f"{describe}: the server refused the call, nothing of it ran: {exc}")
        busy.sent = sent
        return busy
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        error = BackendUnavailable(f"{describe}: {exc}")
        error.sent = sent
        return error
    if isinstance(exc, NoPermissionError) or any(text in str(exc) for text in _REFUSED):
        return PermissionDenied(
            f"{describe}: {exc} (the engine's ACL user needs the commands and key patterns "
            "listed under Guarantees > ACL in the README)"
        )
    return StateError(f"{describe}: server error: {exc}")


def retry_delay(
    op: ops.Op[Any], exc: BackendUnavailable, attempt: int, plan: RedisPlan, started: float
) -> float:
    """How long to wait before sending ``op`` again after ``exc``; raises when it must not be:
    a write that may have reached the server becomes `OutcomeUnknown`. A call the server
    refused whole (`ServerBusy`) is sent again until ``plan.patience`` has passed since
    ``started``, whatever the attempt: a server loading its data takes seconds, not tries."""
    if exc.sent and type(op) not in ops.IDEMPOTENT:
        raise OutcomeUnknown(
            f"{exc}; the write was sent but no reply came: it may or may not have been "
            "applied (read the item's version to find out)"
        ) from None
    delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
    if isinstance(exc, ServerBusy):
        if time.monotonic() - started + delay > plan.patience:
            raise exc
        return delay
    if attempt >= plan.retries:
        raise exc
    return delay


class _Driver:
    """Feeds replies (or errors) into a plan's generator until it returns."""

    __slots__ = ("error", "gen", "reply")

    def __init__(self, gen: Steps[Any]) -> None:
        self.gen = gen
        self.reply: Any = None
        self.error: ResponseError | None = None

    def next_call(self) -> Call | Batch | Masters | At:
        """The next command to send; StopIteration carries the result."""
        error, self.error = self.error, None
        return self.gen.throw(error) if error is not None else self.gen.send(self.reply)


def _step_outcome(call: Any, outcome: Any) -> tuple[bool, RedisError | None]:
    """What a step's outcome (the error it raised, or its reply: a batch's errors come in
    place) says: whether anything of it may have run, and, when nothing did because the
    server refused it whole for a reason that passes, that refusal. NOSCRIPT replies and
    SCRIPT LOAD run nothing; a WAIT that a write's batch ends with is no part of the write."""
    if isinstance(call, tuple) and not isinstance(outcome, RedisError):  # a reply: it ran,
        return call[:2] != ("SCRIPT", "LOAD"), None  # unless it only loaded a script
    if isinstance(call, Masters):
        return False, None
    if isinstance(outcome, NotSent) and not refused(outcome):
        return False, None  # never reached the server
    if isinstance(call, Batch) and isinstance(outcome, list):
        replies = [r for c, r in zip(call.calls, outcome, strict=True) if c[0] != "WAIT"]
    else:
        replies = [outcome]
    if not all(isinstance(r, NoScriptError) or refused(r) for r in replies):
        return True, None
    return False, next((r for r in replies if isinstance(r, RedisError) and refused(r)), None)


def _account(call: Any, outcome: Any, sent: bool, describe: str) -> bool:
    """Whether anything of the call may have run once this step is done (``sent``: before
    it). A step refused whole before anything ran raises `ServerBusy`: the call may be sent
    again. A refusal after an earlier step ran proves nothing about that step, so it takes
    the ordinary way."""
    if sent:  # the common case, and the hot path: only a first step can be refused whole
        return True
    ran, refusal = _step_outcome(call, outcome)
    if refusal is not None:
        raise _translate(refusal, describe, sent=False) from None
    return ran


def drive(steps: Steps[T], send: Callable[[Call | Batch | Masters | At], Any], describe: str) -> T:
    """Run a plan to its result, each step sent with ``send`` (the synchronous seams)."""
    driver = _Driver(steps)
    sent = False  # whether any step reached the server and may have run
    try:
        while True:
            try:
                call = driver.next_call()
            except StopIteration as stop:
                result: T = stop.value
                return result
            try:
                driver.reply = send(call)
            except RedisError as exc:
                sent = _account(call, exc, sent, describe)
                if not isinstance(exc, ResponseError):
                    raise
                driver.error = exc
            else:
                sent = _account(call, driver.reply, sent, describe)
    except RedisError as exc:
        raise _translate(exc, describe, sent or not isinstance(exc, NotSent)) from None


def execute_with_retries(op: ops.Op[T], run: Callable[[], T], plan: RedisPlan) -> T:
    """``run()`` the op, again after a connection failure while that is safe (`retry_delay`)."""
    attempt, started = 0, time.monotonic()
    while True:
        try:
            return run()
        except BackendUnavailable as exc:
            if isinstance(exc, OutcomeUnknown):
                raise
            delay = retry_delay(op, exc, attempt, plan, started)
        time.sleep(delay)
        attempt += 1


async def adrive(
    steps: Steps[T], send: Callable[[Call | Batch | Masters | At], Awaitable[Any]], describe: str
) -> T:
    """`drive`, awaiting each step (the asyncio seams)."""
    driver = _Driver(steps)
    sent = False  # whether any step reached the server and may have run
    try:
        while True:
            try:
                call = driver.next_call()
            except StopIteration as stop:
                result: T = stop.value
                return result
            try:
                driver.reply = await send(call)
            except RedisError as exc:
                sent = _account(call, exc, sent, describe)
                if not isinstance(exc, ResponseError):
                    raise
                driver.error = exc
            else:
                sent = _account(call, driver.reply, sent, describe)
    except RedisError as exc:
        raise _translate(exc, describe, sent or not isinstance(exc, NotSent)) from None


async def aexecute_with_retries(
    op: ops.Op[T], run: Callable[[], Awaitable[T]], plan: RedisPlan
) -> T:
    """`execute_with_retries`, awaiting."""
    attempt, started = 0, time.monotonic()
    while True:
        try:
            return await run()
        except BackendUnavailable as exc:
            if isinstance(exc, OutcomeUnknown):
                raise
            delay = retry_delay(op, exc, attempt, plan, started)
        await asyncio.sleep(delay)
        attempt += 1


ClientFactory = Callable[[], "redis.Redis"]
AsyncClientFactory = Callable[[], Awaitable["redis.asyncio.Redis"]]


class _Pin:
    """A pool connection pinned to one thread; returned to the pool when the thread ends."""

    def __init__(self, pool: redis.ConnectionPool) -> None:
        self.pool = pool
        self.pid = os.getpid()
        self.conn: redis.connection.Connection = pool.get_connection()

    def __del__(self) -> None:
        # In a forked child (os.fork, or the child side of a fork-then-exec) other threads'
        # pins are dropped with their thread states: the pool's locks may be held by a
        # thread that no longer exists there, and the connection is the parent's anyway.
        if os.getpid() != self.pid:
            return
        with contextlib.suppress(Exception):
            self.pool.release(self.conn)


class RedisBackend:
    """Synchronous I/O seam: writes the plan's commands on a connection of this thread's own.

    redis-py's client does the connecting (URL, TLS, auth, unix sockets) and
    parsing; commands go straight to a pinned connection, skipping the pool
    checkout, retry wrapper and reply callbacks that `Redis.execute_command`
    wraps around every call.
    """

    def __init__(
        self,
        plan: RedisPlan,
        connect: ClientFactory,
        describe: str,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        self.plan = plan
        self.describe = describe
        self._connect = connect
        self._client: redis.Redis | None = None
        self._client_lock = threading.Lock()
        self._local = threading.local()
        self._on_close = on_close

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            with self._client_lock:  # threads share one State: create one client, not two
                if self._client is None:
                    try:
                        self._client = self._connect()
                    except RedisError as exc:
                        raise _translate(exc, self.describe, sent=False) from None
        return self._client

    def _connection(self) -> redis.connection.Connection:
        pin: _Pin | None = getattr(self._local, "pin", None)
        if pin is None or pin.pid != os.getpid():  # a forked child must not share our socket
            pin = self._local.pin = _Pin(self.client.connection_pool)
        return pin.conn

    def execute(self, op: ops.Op[T]) -> T:
        return execute_with_retries(
            op,
            lambda: self.run(self.plan.steps(op), self._connection),
            self.plan,
        )

    def run(self, steps: Steps[T], connection: Callable[[], redis.connection.Connection]) -> T:
        """Drive a plan to its result on the connection ``connection()`` gives."""
        try:
            conn = connection()
        except RedisError as exc:
            raise _translate(exc, self.describe, sent=False) from None
        return drive(steps, lambda call: _send(conn, call), self.describe)

    def session(self) -> Session:
        return Session(self)

    def close(self) -> None:
        if self._client is None:
            return
        self._local = threading.local()
        self._client.connection_pool.disconnect()
        self._client.close()
        self._client = None
        if self._on_close is not None:
            self._on_close()


def _demoted(reply: Any) -> bool:
    """Whether a reply says the server is a replica now (READONLY): its connection is then
    dropped, so that the call's next attempt connects anew, and through Sentinel to the
    promoted primary (redis-py's Sentinel client does so only for replies it parses itself)."""
    return isinstance(reply, ReadOnlyError) or (
        isinstance(reply, ResponseError) and str(reply).startswith("READONLY ")
    )


def _send(conn: redis.connection.Connection, call: Call | Batch | Masters | At) -> Any:
    if isinstance(call, Masters):
        return [None]
    if isinstance(call, At):
        call = call.call
    try:
        # Connect, and PING a connection idle past the health-check interval, before writing:
        # a failure there means the command never left, which makes it safe to send again.
        # A connection idle for a moment is also peeked at (one non-blocking read): a server
        # that restarted meanwhile has closed it, and that is found here, not after sending.
        conn.connect()
        conn.check_health()
        idle = time.monotonic() - conn.next_health_check + conn.health_check_interval
        if idle > PEEK_AFTER_S and conn.can_read(timeout=0):
            raise redis.ConnectionError("unexpected data on an idle connection")
    except RedisError as exc:
        conn.disconnect()
        raise NotSent(str(exc)) from exc
    try:
        if isinstance(call, Batch):
            conn.send_packed_command([_pack(call.calls)], check_health=False)  # chunks
            replies = [_read(conn) for _ in call.calls]
            if any(map(_demoted, replies)):
                conn.disconnect()
            return replies
        conn.send_packed_command([hiredis.pack_command(call)], check_health=False)
        return conn.read_response()
    except ResponseError as exc:
        if _demoted(exc):
            conn.disconnect()
        raise
    except BaseException:
        conn.disconnect()  # whatever was in flight, this socket's state is unknown
        raise


def _session_timeout(kwargs: dict[str, Any]) -> float:
    """A session's socket timeout: above its longest blocking read, and the configured one."""
    return max(watch.MAX_BLOCK_S + watch.SOCKET_SLACK_S, kwargs.get("socket_timeout") or 0)


class Session:
    """A connection of its own, for blocking reads (a watcher) and long-lived jobs (the bridge).

    It is made from the pool's settings (URL, TLS, auth) but never enters the pool, so a
    blocking XREAD on it holds up no other call.
    """

    def __init__(self, backend: RedisBackend) -> None:
        self.layout = backend.plan.layout
        self.plan = backend.plan
        self._backend = backend
        self._conn: redis.connection.Connection | None = None

    def _connection(self) -> redis.connection.Connection:
        if self._conn is None:
            pool = self._backend.client.connection_pool
            kwargs = dict(pool.connection_kwargs)
            kwargs["socket_timeout"] = _session_timeout(kwargs)
            self._conn = pool.connection_class(**kwargs)
        return self._conn

    def run(self, steps: Steps[T]) -> T:
        return self._backend.run(steps, self._connection)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None


# Error replies of a pipeline, returned in place so that each call is judged on its own reply
# (redis-py raises LOADING as a connection error, but it is a whole reply like any other).
_IN_PLACE = (ResponseError, BusyLoadingError)


def _read(conn: redis.connection.Connection) -> Any:
    """One reply of a pipeline; an error reply is returned in place, not raised."""
    try:
        return conn.read_response()
    except _IN_PLACE as exc:
        return exc


class _AutoPipeline:
    """Coalesces the commands that concurrent tasks issue into one pipelined write.

    Every command is queued with a future; the first one queued schedules a flush
    for the next turn of the event loop, by which time the other ready tasks have
    queued theirs. The flush writes the whole queue on one pool connection and
    hands each task its own reply or error. Each task still waits for its reply
    before its next command, so its own commands stay in order; commands of
    different tasks were never ordered. One round trip and one connection
    checkout then serve many tasks, which is what makes concurrency pay on a
    client that is busy with Python rather than waiting on the network.
    """

    def __init__(self, client: redis.asyncio.Redis) -> None:
        self._pool = client.connection_pool
        self._queue: list[tuple[Call, asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def _enqueue(self, call: Call) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._queue:
            loop.call_soon(self._start_flush)
        self._queue.append((call, future))
        return future

    async def send(self, call: Call) -> Any:
        return await self._enqueue(call)

    async def send_many(self, calls: Sequence[Call]) -> list[Any]:
        """Commands of one plan step: queued together, so one flush writes them in order.

        Replies come back in order, an error reply in place of its result.
        """
        futures = [self._enqueue(call) for call in calls]
        return list(await asyncio.gather(*futures, return_exceptions=True))

    async def _write(self, calls: Sequence[Call]) -> list[Any]:
        """Write ``calls`` on one pool connection and read their replies, errors in place."""
        try:  # connected and healthy before anything is written (see the sync _send)
            conn = await self._pool.get_connection()
        except RedisError as exc:
            raise NotSent(str(exc)) from exc
        try:
            try:
                await conn.check_health()
                if _closed_while_idle(conn):
                    raise redis.ConnectionError("unexpected data on an idle connection")
            except RedisError as exc:
                await conn.disconnect()
                raise NotSent(str(exc)) from exc
            await conn.send_packed_command(_pack(calls), check_health=False)
            replies = [await _aread(conn) for _ in calls]
            if any(map(_demoted, replies)):
                await conn.disconnect()
            return replies
        except BaseException:
            await conn.disconnect()
            raise
        finally:
            await self._pool.release(conn)

    def _start_flush(self) -> None:
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._flush(batch))
        self._tasks.add(task)  # keep a reference until done
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        """Ends flushes still under way (their callers are gone or get CancelledError) before
        the client closes: a flush left pending would be destroyed with its event loop."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _flush(self, batch: list[tuple[Call, asyncio.Future[Any]]]) -> None:
        try:
            replies = await self._write([call for call, _ in batch])
        except Exception as exc:  # the connection failed: every waiting task gets the error
            replies = [exc] * len(batch)
        except asyncio.CancelledError:  # closed under it (aclose): no caller waits forever
            for _, future in batch:
                future.cancel()
            raise
        for (_, future), reply in zip(batch, replies, strict=True):
            if future.done():  # its task was cancelled meanwhile
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)


def _closed_while_idle(conn: redis.asyncio.connection.AbstractConnection) -> bool:
    """The asyncio twin of the sync seam's peek (see `_send`): whether a connection idle for a
    moment has something to read, which on an idle connection means the server closed it (a
    restart). The socket itself is asked (select, nothing is consumed): the stream learns of
    the close only once the event loop has run its reader, which a busy loop may not have.
    """
    loop_time = asyncio.get_running_loop().time()
    idle = loop_time - conn.next_health_check + conn.health_check_interval
    writer = getattr(conn, "_writer", None)
    if idle <= PEEK_AFTER_S or writer is None:
        return False
    reader = getattr(conn, "_reader", None)
    if writer.is_closing() or (reader is not None and reader.at_eof()):
        return True  # the loop has already seen the close (and, for TLS, let the socket go)
    sock = writer.transport.get_extra_info("socket")
    if sock is None or sock.fileno() < 0:
        return True
    return bool(select.select([sock.fileno()], [], [], 0)[0])


async def _aread(conn: redis.asyncio.connection.AbstractConnection) -> Any:
    try:
        return await conn.read_response()
    except _IN_PLACE as exc:
        return exc


class AsyncRedisBackend:
    """Asynchronous I/O seam: redis-py's asyncio client, created on first use."""

    def __init__(
        self,
        plan: RedisPlan,
        connect: AsyncClientFactory,
        describe: str,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.plan = plan
        self.describe = describe
        self._connect = connect
        self._client: redis.asyncio.Redis | None = None
        self._pipeline: _AutoPipeline | None = None
        self._on_close = on_close

    async def client(self) -> redis.asyncio.Redis:
        if self._client is None:
            try:
                self._client = await self._connect()
            except RedisError as exc:
                raise _translate(exc, self.describe, sent=False) from None
            self._pipeline = _AutoPipeline(self._client)
        return self._client

    async def _send(self, call: Call | Batch | Masters | At) -> Any:
        await self.client()
        assert self._pipeline is not None
        if isinstance(call, Masters):
            return [None]
        if isinstance(call, At):
            call = call.call
        if isinstance(call, Batch):
            return await self._pipeline.send_many(call.calls)
        return await self._pipeline.send(call)

    async def execute(self, op: ops.Op[T]) -> T:
        return await aexecute_with_retries(
            op, lambda: self.run(self.plan.steps(op), self._send), self.plan
        )

    def session(self) -> AsyncSession:
        return AsyncSession(self)

    async def run(
        self, steps: Steps[T], send: Callable[[Call | Batch | Masters | At], Awaitable[Any]]
    ) -> T:
        return await adrive(steps, send, self.describe)

    async def aclose(self) -> None:
        if self._client is None:
            return
        if self._pipeline is not None:
            await self._pipeline.aclose()
        await self._client.aclose()
        self._client = self._pipeline = None
        if self._on_close is not None:
            await self._on_close()


class AsyncSession:
    """`Session` for asyncio: a connection of its own, outside the pool and the auto-pipeline."""

    def __init__(self, backend: AsyncRedisBackend) -> None:
        self.layout = backend.plan.layout
        self.plan = backend.plan
        self._backend = backend
        self._conn: redis.asyncio.connection.AbstractConnection | None = None

    async def _send(self, call: Call | Batch | Masters | At) -> Any:
        if isinstance(call, (Masters, At)):
            raise Unsupported("a watch session sends no per-master commands")
        if self._conn is None:
            pool = (await self._backend.client()).connection_pool
            kwargs = dict(pool.connection_kwargs)
            kwargs["socket_timeout"] = _session_timeout(kwargs)
            self._conn = pool.connection_class(**kwargs)
        conn = self._conn
        calls = call.calls if isinstance(call, Batch) else (call,)
        try:
            await conn.send_packed_command(_pack(calls))
            if isinstance(call, Batch):
                return [await _aread(conn) for _ in calls]
            return await conn.read_response()
        except ResponseError:
            raise
        except BaseException:
            await conn.disconnect()
            raise

    async def run(self, steps: Steps[T]) -> T:
        return await self._backend.run(steps, self._send)

    async def aclose(self) -> None:
        if self._conn is not None:
            await self._conn.disconnect()
            self._conn = None
