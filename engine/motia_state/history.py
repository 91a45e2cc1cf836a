"""An item's past, read backward from the change feed (`State.history`).

A watch reads the feed forward, from a position; the question "what happened to this item
lately" wants the newest records first and must not read 100,000 of them to find out. So
this reads the stream with XREVRANGE, newest first, a batch at a time, keeps the records of
the item (and those of its whole group: a ``clear``, a group's expiry, an outside tool's
``del``) and stops at ``limit`` of them or after ``budget`` records looked at, whichever is
first; the cursor resumes older. Records are matched on their raw fields, so the records of
other groups are never decoded. Sans-I/O like `watch.Reader`: `State` and `AsyncState` run
the same steps on a session of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from . import changes, validate
from .changes import Change
from .codecs import Codec
from .errors import DecodeError, InvalidInput, brief
from .layout import KeyLayout
from .ops import Undecodable
from .steps import Steps

DEFAULT_LIMIT = 20
BUDGET = 10_000  # records looked at per call, at most
BATCH = 1_000  # records per XREVRANGE
_WHOLE = frozenset(op.encode() for op in changes.WHOLE_GROUP)


@dataclass(frozen=True)
class History:
    """``changes``: the item's records, newest first; ``cursor``: pass it as ``before=`` for
    older ones (None: the feed retains nothing older)."""

    changes: list[Change]
    cursor: str | None


def _cursor(before: object) -> str | None:
    if before is None:
        return None
    if not isinstance(before, str) or not changes.ENTRY_ID.fullmatch(before):
        raise InvalidInput(f"before must be a change id or a history cursor, not {brief(before)}")
    return before


def read(
    layout: KeyLayout,
    codec: Codec,
    group: str,
    key: str,
    *,
    limit: object = DEFAULT_LIMIT,
    before: object = None,
    budget: int = BUDGET,
) -> Steps[History]:
    """The steps of one `State.history` call (arguments checked before any is sent)."""
    wanted = validate.positive_int("limit", limit)
    start = _cursor(before)
    raw_group = validate.group(group).encode("utf-8", "surrogateescape")
    raw_key = validate.key(key).encode("utf-8", "surrogateescape")
    return _read(layout, codec, group, raw_group, raw_key, wanted, start, budget)


def _decoded(stream: bytes, entry_id: bytes, fields: dict[bytes, bytes], codec: Codec) -> Change:
    """A record with its values; one that does not decode (another tool's bytes, or a
    codec other than the writer's) comes as `Undecodable`, so the rest of the history
    still shows."""
    try:
        return changes.decode_entry(stream, entry_id, fields, codec, True, None)
    except DecodeError:
        change = changes.decode_entry(stream, entry_id, fields, codec, False, None)
    value, old = (_lenient(fields.get(name), codec) for name in (b"value", b"old"))
    return replace(change, value=value, old_value=old, has_values=b"value" in fields)


def _lenient(raw: bytes | None, codec: Codec) -> Any:
    if not raw:
        return None
    try:
        return codec.decode(raw)
    except DecodeError as exc:
        return Undecodable(raw, str(exc))


def _read(
    layout: KeyLayout,
    codec: Codec,
    group: str,
    raw_group: bytes,
    raw_key: bytes,
    wanted: int,
    start: str | None,
    budget: int,
) -> Steps[History]:
    stream = layout.changes(group if layout.cluster else "")
    found: list[Change] = []
    end = "+" if start is None else "(" + start
    looked = 0
    while looked < budget:
        count = min(BATCH, budget - looked)
        entries: list[Any] = yield ("XREVRANGE", stream, end, "-", "COUNT", count)
        for entry_id, raw in entries:
            looked += 1
            end = "(" + entry_id.decode()
            fields = changes.entry_fields(raw)
            if fields is None or fields.get(b"group") != raw_group:
                continue
            mine = fields.get(b"key") == raw_key and fields.get(b"op") != changes.EMIT.encode()
            if mine or (not fields.get(b"key") and fields.get(b"op") in _WHOLE):
                found.append(_decoded(stream, entry_id, fields, codec))
                if len(found) == wanted:
                    return History(found, end[1:])
        if len(entries) < count:  # the oldest record retained was among them
            return History(found, None)
    return History(found, end[1:])
