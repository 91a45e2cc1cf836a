"""The change feed's records: what a write appends, and what a watcher gets back.

Every write script appends one stream entry per changed item in the same atomic
call as the change (see ``lua/include/common.lua``); the keyspace bridge appends
``external`` entries for changes made by other tools. This module owns the
entry format in both directions: the settings a script receives and the
`Change` a reader decodes.

Entry fields: ``op``, ``group``, ``key`` ('' for a clear), ``version`` (the
item's version after the change; for a clear the group's new version floor),
``prev`` (the version before it; 0 when the item did not exist), and with
``record_values`` also ``value`` and ``old`` (encoded; '' for none). External
entries carry ``event`` (the Redis event) instead of versions that mean anything.

``expire_group`` is one record for a whole group that expired (``expire_group``, a
``ttl=`` view, the ``group_ttl`` option): key '', versions 0, no values. The server removed
the group's keys at its deadline, with no script running, so the record is written after
it, by the next sweep (cleanup) or the group's next write, whichever comes first, and
exactly once (see lua/include/group.lua); its entry id carries the time it was recorded,
not the deadline.

``emit`` is an event a transaction emitted (``tx.emit``, ``emit=``: the outbox), recorded in
the same atomic call as the transaction's changes, after them in op order: ``group`` (the
stream it went to), ``key`` the topic, versions 0, and ``data``, the event's data as the
State's codec encoded it, stored whatever ``record_values`` says. It is a record of the feed
like any other (the same stream, retention, consumer groups, acks and claims), but not a
change of state: a watch yields it only when asked (``watch(events=True)``, `State.events`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from . import validate
from .codecs import Codec
from .errors import DecodeError, InvalidInput, brief
from .ops import Undecodable

ENTRY_ID = re.compile(r"\d{1,20}(-\d{1,20})?")  # fullmatch: a stream entry id
# Ops whose records say something was removed (Motia's state:deleted), and those that name no
# single item, whose version means nothing to a reader.
GONE = frozenset({"delete", "expire", "clear", "expire_group"})
WHOLE_GROUP = frozenset({"clear", "expire_group", "external"})
EMIT = "emit"  # an event's op (the outbox)


@dataclass(frozen=True)
class FeedSettings:
    """How write scripts append to the feed: retention and whether values are recorded."""

    maxlen: int = 100_000
    max_age_ms: int | None = None
    values: bool = False

    def spec(self, channel: bytes, *, sharded: bool = False) -> bytes:
        """The feed settings ARGV of every write script (parsed by feed_open in Lua);
        ``sharded``: the marker channel is a Redis Cluster shard channel (SPUBLISH)."""
        age = b"" if self.max_age_ms is None else b"%d" % self.max_age_ms
        kind = b"s" if sharded else b"p"
        return b"%d:%s:%d:%s:%s" % (self.maxlen, age, self.values, kind, channel)


def feed_settings(maxlen: object, max_age: object, values: object) -> FeedSettings:
    validate.positive_int("changes_maxlen", maxlen)
    if not isinstance(values, bool):
        raise InvalidInput(f"record_values must be True or False, not {brief(values)}")
    age = validate.ttl(max_age, "changes_max_age")
    assert isinstance(maxlen, int)
    return FeedSettings(maxlen, age, values)


def stream_id(since: object) -> str:
    """A ``since`` argument as a stream id: '$' (only new changes), '0' (all retained), an id."""
    if isinstance(since, Change):
        return since.id
    if not isinstance(since, str) or not (since == "$" or ENTRY_ID.fullmatch(since)):
        raise InvalidInput(
            f"since must be '$' (new changes), '0' (every retained change) or a change id "
            f"like '1700000000000-0', not {brief(since)}"
        )
    return since


@dataclass(frozen=True, slots=True)
class Change:
    """One committed change, as recorded in the same atomic call that made it.

    ``version`` is the item's version after the change (None for clear, expire_group and
    external records); per item, versions in the feed strictly increase. ``prev_version``
    is 0 when the change created the item. ``expire_group`` (``key`` None) records a whole
    group expiring, once, after its deadline. ``value`` and ``old_value`` are filled when the
    writer recorded values and the watcher asked for them (``has_values``); after a
    delete or expire ``value`` is None. ``event`` names the Redis event of an
    ``external`` record (``hset``, ``hdel``, ``del``, ``expired``, ``evicted``, ...,
    or ``gap`` when the bridge was disconnected and may have missed some).

    An event a transaction emitted (op ``emit``, `is_event`) has its ``topic`` and ``data``
    (decoded, always; `ops.Undecodable` when it does not decode, so one bad event cannot stop
    a consumer), ``key`` and ``version`` None, and `event_id`, its id for deduplication.
    """

    id: str
    op: str
    group: str | None
    key: str | None
    version: int | None
    ts: float
    prev_version: int = 0
    value: Any = None
    old_value: Any = None
    has_values: bool = False
    event: str | None = None
    topic: str | None = None
    data: Any = None
    stream: bytes = field(default=b"", repr=False, compare=False)
    consumer_group: str | None = field(default=None, repr=False, compare=False)

    @property
    def is_event(self) -> bool:
        """An event a transaction emitted (``tx.emit``, ``emit=``), not a change of state."""
        return self.op == EMIT

    @property
    def event_id(self) -> str:
        """The record's id in the feed: the same on every delivery of it (a consumer's own
        pending entries read again, a claim by another consumer), so a consumer that keeps
        the ids it handled deduplicates redeliveries with it."""
        return self.id

    @property
    def created(self) -> bool:
        """The change brought the item into existence (Motia's ``state:created``)."""
        return self.op in ("set", "update", "increment") and self.prev_version == 0

    def motia_event(self) -> dict[str, Any] | None:
        """This change as Motia v1's state trigger event, or None when Motia has no such event.

        set/update/increment map to ``state:created`` or ``state:updated``; delete, expire,
        clear and expire_group to ``state:deleted`` (clear and expire_group with ``key``
        None: one event for the whole group); external records have no Motia equivalent, nor
        do emitted events, which trigger no state handler (Motia's ``emit`` takes their
        ``topic`` and ``data``).
        """
        if self.op in ("external", EMIT) or self.group is None:
            return None
        if self.op in GONE:
            kind = "state:deleted"
        else:
            kind = "state:created" if self.created else "state:updated"
        return {
            "event_type": kind,
            "scope": self.group,
            "key": self.key,
            "old_value": self.old_value,
            "new_value": self.value,
        }


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="surrogateescape")


def decode_entry(
    stream: bytes,
    entry_id: bytes,
    fields: dict[bytes, bytes],
    codec: Codec,
    with_values: bool,
    consumer_group: str | None,
) -> Change:
    """A stream entry as a `Change`; values are decoded only when asked for, an event's data
    always."""
    ident = _text(entry_id)
    op = _text(fields.get(b"op", b"external"))
    group = _text(fields[b"group"]) if fields.get(b"group") else None
    key = _text(fields[b"key"]) if fields.get(b"key") else None
    if op == EMIT:
        return Change(
            id=ident,
            op=op,
            group=group,
            key=None,
            version=None,
            ts=int(ident.split("-", 1)[0]) / 1000,
            topic=key or "",
            data=_event_data(fields.get(b"data", b""), codec),
            stream=stream,
            consumer_group=consumer_group,
        )
    version = _count(fields.get(b"version"))
    has_values = with_values and b"value" in fields
    value = old = None
    if has_values:
        if fields[b"value"]:
            value = codec.decode(fields[b"value"])
        if fields.get(b"old"):
            old = codec.decode(fields[b"old"])
    event = fields.get(b"event")
    return Change(
        id=ident,
        op=op,
        group=group,
        key=key,
        version=version if op not in WHOLE_GROUP else None,
        ts=int(ident.split("-", 1)[0]) / 1000,
        prev_version=_count(fields.get(b"prev")),
        value=value,
        old_value=old,
        has_values=has_values,
        event=_text(event) if event is not None else None,
        stream=stream,
        consumer_group=consumer_group,
    )


def _count(raw: bytes | None) -> int:
    """A version field; 0 when missing or not a number (a record another tool appended must
    not stop every reader of the feed)."""
    return int(raw) if raw is not None and _DIGITS.fullmatch(raw) else 0


_DIGITS = re.compile(rb"[0-9]{1,20}")


def _event_data(raw: bytes, codec: Codec) -> Any:
    try:
        return codec.decode(raw)
    except DecodeError as exc:
        return Undecodable(raw, str(exc))


def entry_fields(raw: list[bytes] | dict[bytes, bytes] | None) -> dict[bytes, bytes] | None:
    """An entry's field list (RESP2: flat array; RESP3: map); None for a deleted entry."""
    if raw is None:
        return None
    if isinstance(raw, dict):
        return raw
    it = iter(raw)
    return dict(zip(it, it, strict=True))
