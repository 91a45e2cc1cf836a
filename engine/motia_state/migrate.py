"""Copying state into an engine backend: from Motia v0's layouts, or between backends.

Sources:

* **Motia v0's Redis adapter**: one string per item at ``<prefix><group>:<key>``
  holding ``JSON.stringify(value)``, some with a TTL (SETEX). Read with SCAN (never
  KEYS) and, per page, one pipeline of GET and PTTL.
* **Motia's state file** (``.motia/motia.state.json``): ``{"<group>:<key>": "<JSON
  text>"}``.
* **Any URL of this engine** (memory, file, embedded, Redis, Cluster): every group,
  read in HSCAN pages, TTLs carried over.

Both Motia layouts join group and key with ``:`` and allow ``:`` in both, so a name
like ``a:b:c`` has two readings. A `Splitter` decides: a list of known groups (the
longest that fits wins), else a rule (split at the first or at the last ``:``); every
name that had more than one reading is reported.

A run is idempotent and resumable without any checkpoint: each page of the source is
compared with the target (one read per page) and only items that are missing or
different are written, by the engine's own atomic writes. An interrupted run has
written whole pages or single items, never half an item; running it again writes
what is still missing and counts the rest as unchanged. The source is only read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from . import connect, validate
from .backends.file import entry_group
from .codecs import get_codec
from .errors import BackendUnavailable, DecodeError, EncodeError, InvalidInput, StateError
from .layout import DEFAULT_PREFIX, escape_glob
from .state import State

PAGE = 500
EXAMPLES = 20  # names kept per kind of problem in the report
REFUSED = (InvalidInput, EncodeError)  # what a target refuses before sending anything


@dataclass(frozen=True, slots=True)
class Entry:
    """One item as the source holds it; ``ttl`` in seconds, None for none."""

    group: str
    key: str
    value: Any
    ttl: float | None = None


@dataclass
class Report:
    """What a run did (or, with ``dry_run``, would do)."""

    dry_run: bool = False
    read: int = 0  # items found at the source
    written: int = 0  # missing or different at the target: written (or would be)
    unchanged: int = 0  # already at the target with the same value
    groups: set[str] = field(default_factory=set)
    ambiguous: int = 0  # names with more than one group/key reading (copied by the rule)
    outside: int = 0  # names under no group of --groups (not copied)
    unreadable: int = 0  # values that are not JSON, names with an empty group or key
    refused: int = 0  # items the target cannot store (a bad group name, an int past 64 bits)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, name: str) -> None:
        setattr(self, kind, getattr(self, kind) + 1)
        names = self.examples.setdefault(kind, [])
        if len(names) < EXAMPLES:
            names.append(name)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "read": self.read,
            "written": self.written,
            "unchanged": self.unchanged,
            "groups": len(self.groups),
            "ambiguous": self.ambiguous,
            "outside": self.outside,
            "unreadable": self.unreadable,
            "refused": self.refused,
            "examples": self.examples,
        }


class Splitter:
    """Turns a joined ``group:key`` name into (group, key), the way the user said."""

    def __init__(self, groups: list[str] | None = None, split: str = "first") -> None:
        if split not in ("first", "last"):
            raise InvalidInput(f"split must be 'first' or 'last', not {split!r}")
        self.groups = sorted(set(groups or ()), key=len, reverse=True)  # longest first
        self.split = split

    def __call__(self, name: str, report: Report) -> tuple[str, str] | None:
        if self.groups:
            fits = [g for g in self.groups if name.startswith(g + ":") and len(name) > len(g) + 1]
            if not fits:
                report.note("outside", name)
                return None
            if len(fits) > 1:
                report.note("ambiguous", name)
            return fits[0], name[len(fits[0]) + 1 :]
        if name.count(":") > 1:
            report.note("ambiguous", name)
        group, sep, key = name.partition(":") if self.split == "first" else name.rpartition(":")
        if not sep or not group or not key:
            report.note("unreadable", name)
            return None
        return group, key


def _json(text: bytes | str, name: str, report: Report) -> tuple[bool, Any]:
    try:
        return True, get_codec("json").decode(text if isinstance(text, bytes) else text.encode())
    except (DecodeError, ValueError):
        report.note("unreadable", name)
        return False, None


def from_v0_redis(
    url: str, prefix: str, splitter: Splitter, report: Report
) -> Iterator[list[Entry]]:
    """Pages of Motia v0's string items under ``prefix`` (SCAN ... TYPE string)."""
    client = connect.raw_client(url)
    head = prefix.encode()
    try:
        names: list[bytes] = []
        scan = client.scan_iter(match=escape_glob(head) + b"*", count=1000, _type="STRING")
        for name in scan:
            names.append(name)
            if len(names) >= PAGE:
                yield _v0_page(client, names, head, splitter, report)
                names = []
        if names:
            yield _v0_page(client, names, head, splitter, report)
    except (redis.ConnectionError, redis.TimeoutError) as exc:
        raise BackendUnavailable(f"cannot read {connect.redact(url)}: {exc}") from None
    finally:
        client.close()


def _v0_page(
    client: Any, names: list[bytes], head: bytes, splitter: Splitter, report: Report
) -> list[Entry]:
    pipe = client.pipeline(transaction=False)
    for name in names:
        pipe.get(name)
        pipe.pttl(name)
    replies = pipe.execute()
    page = []
    for name, text, pttl in zip(names, replies[0::2], replies[1::2], strict=True):
        if text is None or pttl == -2:
            continue  # expired or deleted since the SCAN saw it
        joined = name[len(head) :].decode("utf-8", errors="surrogateescape")
        page += _entry(joined, text, pttl / 1000 if pttl > 0 else None, splitter, report)
    return page


def _entry(
    name: str, text: bytes | str, ttl: float | None, splitter: Splitter, report: Report
) -> list[Entry]:
    report.read += 1
    split = splitter(name, report)
    if split is None:
        return []
    ok, value = _json(text, name, report)
    return [Entry(split[0], split[1], value, ttl)] if ok else []


def from_motia_file(path: str, splitter: Splitter, report: Report) -> Iterator[list[Entry]]:
    """Pages of Motia's state file: ``{"<group>:<key>": "<JSON text>"}``."""
    try:
        content = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise StateError(f"cannot read {path}: {exc}") from None
    except ValueError as exc:
        raise InvalidInput(f"{path} is not a Motia state file (not JSON: {exc})") from None
    if not isinstance(content, dict):
        raise InvalidInput(f"{path} is not a Motia state file (expected a JSON object)")
    page: list[Entry] = []
    # this engine's idempotency receipts (file:// keeps them as entries of a reserved group)
    reserved = entry_group(validate.RESERVED_GROUP_PREFIX)
    for name, text in content.items():
        if name.startswith(reserved):
            continue
        if not isinstance(text, str):
            report.read += 1
            report.note("unreadable", name)
            continue
        page += _entry(name, text, None, splitter, report)
        if len(page) >= PAGE:
            yield page
            page = []
    if page:
        yield page


def lenient_items(state: State, group: str, batch: int = PAGE) -> Iterator[tuple[str, Any]]:
    """(key, value) of every item of a group; a value that cannot be read comes as its error.

    The engine refuses a whole read over one value it cannot decode (text another tool
    wrote), but a tool that shows or copies foreign data must still reach the rest. The
    group streams in HSCAN pages until such a value; the keys not yet seen are then read
    in pages, item by item only in a page that holds one.
    """
    seen: set[str] = set()
    try:
        for key, value in state.iter_items(group, batch):
            seen.add(key)
            yield key, value
        return
    except DecodeError:
        pass
    rest = [k for k in state.keys(group) if k not in seen]
    for i in range(0, len(rest), batch):
        keys = rest[i : i + batch]
        try:
            values = state.get_many(group, keys)
        except (DecodeError, InvalidInput):  # InvalidInput: a key that is not UTF-8
            values = [_one(state, group, key) for key in keys]
        yield from zip(keys, values, strict=True)


def _one(state: State, group: str, key: str) -> Any:
    try:
        return state.get(group, key)
    except (DecodeError, InvalidInput) as exc:
        return exc


def from_engine(source: State, report: Report) -> Iterator[list[Entry]]:
    """Pages of every group of an engine backend, with each item's remaining TTL."""
    for row in source.stats()[0]:
        try:
            validate.group(row.group)
        except InvalidInput:  # a name another tool wrote (not UTF-8): no call can address it
            report.read += row.items
            report.note("unreadable", f"{row.group} (the whole group: {row.items} item(s))")
            continue
        page: list[Entry] = []
        for key, value in lenient_items(source, row.group):
            report.read += 1
            if isinstance(value, StateError):
                report.note("unreadable", f"{row.group}:{key}")
                continue
            ttl = source.ttl(row.group, key) if row.with_ttl else None
            page.append(Entry(row.group, key, value, ttl))
            if len(page) >= PAGE:
                yield page
                page = []
        if page:
            yield page


def copy(
    pages: Iterator[list[Entry]],
    target: State,
    report: Report,
    progress: Callable[[Report], None] | None = None,
) -> Report:
    """Write what the target lacks or holds differently, page by page."""
    for page in pages:
        by_group: dict[str, list[Entry]] = {}
        for entry in page:
            by_group.setdefault(entry.group, []).append(entry)
        for group, entries in by_group.items():
            report.groups.add(group)
            _copy_group(target, group, entries, report)
        if progress is not None:
            progress(report)
    return report


_ABSENT = object()


def _copy_group(target: State, group: str, entries: list[Entry], report: Report) -> None:
    try:
        current = target.get_many(group, [e.key for e in entries])
    except InvalidInput:  # a group name the engine refuses
        for entry in entries:
            report.note("refused", f"{group}:{entry.key}")
        return
    plain: dict[str, Any] = {}
    timed: list[Entry] = []
    for entry, now in zip(entries, current, strict=True):
        if not _storable(target, group, entry):
            report.note("refused", f"{group}:{entry.key}")
            continue
        if now is None and target.get_item(group, entry.key) is None:
            now = _ABSENT  # a stored None is a value too
        if now is not _ABSENT and _same(now, entry.value):
            report.unchanged += 1
            continue
        report.written += 1
        if entry.ttl is None:
            plain[entry.key] = entry.value
        else:
            timed.append(entry)
    if report.dry_run:
        return
    try:
        if plain:
            target.set_many(group, plain)
    except REFUSED:  # one item refused the whole page: write one by one to find it
        timed += [Entry(group, k, v) for k, v in plain.items()]
    for entry in timed:
        try:
            target.set(group, entry.key, entry.value, ttl=entry.ttl)
        except REFUSED:
            report.written -= 1
            report.note("refused", f"{group}:{entry.key}")


class _Checked(Exception):
    """Leaves a transaction block after its checks, so that nothing is sent."""


def _storable(target: State, group: str, entry: Entry) -> bool:
    """Whether the target takes the item, checked as its write will be (validated and
    encoded, nothing sent): a dry run then refuses exactly what a real run refuses."""
    try:
        with target.transaction() as tx:
            tx.set(group, entry.key, entry.value, ttl=entry.ttl)
            raise _Checked
    except _Checked:
        return True
    except REFUSED:
        return False


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: 1 and 1.0 differ, as do True and 1 (Python says otherwise)."""
    return type(a) is type(b) and (
        a == b
        if not isinstance(a, (dict, list))
        else json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    )


def open_source(
    url: str,
    layout: str,
    *,
    prefix: str = DEFAULT_PREFIX,
    codec: str = "json",
    splitter: Splitter,
    report: Report,
) -> tuple[Iterator[list[Entry]], State | None]:
    """The source's pages, and the State to close afterwards (for engine sources)."""
    if layout == "engine":
        source = State.from_url(url, prefix=prefix, codec=codec, cleanup_interval=None)
        return from_engine(source, report), source
    if layout != "motia-v0":
        raise InvalidInput(f"layout must be 'engine' or 'motia-v0', not {layout!r}")
    if url.startswith("file://"):
        return from_motia_file(url[len("file://") :], splitter, report), None
    if url.split("://", 1)[0] in connect.ANY_REDIS_SCHEME:
        return from_v0_redis(url, prefix, splitter, report), None
    raise InvalidInput(
        f"a Motia v0 source is a Redis URL (redis://, rediss://, unix://, redis+cluster://, "
        f"redis+sentinel://) or file://<path to .motia/motia.state.json>, not "
        f"{connect.redact(url)!r}"
    )
