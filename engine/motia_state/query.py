"""Queries: filtered, sorted and paged reads of a group, evaluated where the data is.

A ``where`` is a tree of predicates (`Compare`, `Check`, `All`, `AnyOf`, `Not`), built with
`F` (``F("status") == "paid"``), or given as Motia v0's filter dicts
(``{"valueKey": ..., "operation": ..., "value": ...}``, a list of them meaning all), or as
``{"and": [...]}``, ``{"or": [...]}``, ``{"not": ...}`` around them. `parse` checks it once,
before anything is sent.

`matches` is the reference semantics in Python: the in-process backends and adapters filter
with it, and lua/query.lua evaluates the same tree server-side on Redis over HSCAN pages
(`wire` writes it as that script's ARGV tokens), tested against it on random values and
predicates. The rules: a path walks objects by key (an empty path is the whole value); a
value is MISSING where a segment meets a non-object or a missing key; numbers compare by
exact value (an int with a float too: Python's own comparison), booleans are not numbers,
strings compare by code point (= UTF-8 byte order); a comparison between types, or with a
MISSING value, is simply false, never an error; ``neq`` and ``notContains`` are the
negations of ``eq`` and ``contains``, so they hold for a MISSING value.

The paging loop (`run`) is written once without I/O, as a generator of plans that `State`
and `AsyncState` drive (`core.drive`, `core.drive_async`): each plan is one bounded server
call (`ops.QueryPage`), and the loop stops once the page is full or the group is done.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from . import ops, validate
from .codecs import Codec
from .core import Core, Plan, PlanSteps
from .errors import InvalidInput, brief
from .updates import FORBIDDEN_SEGMENTS, MAX_PATH_DEPTH, MAX_SEGMENT_BYTES

COMPARISONS = ("eq", "neq", "gt", "gte", "lt", "lte")
STRINGS = ("contains", "notContains", "startsWith", "endsWith")
OPERAND_OPS = (*COMPARISONS, *STRINGS, "in")
CHECKS = ("isNull", "isNotNull", "exists")
# Motia v0's twelve operations, under their own names: a v0 filter ports unchanged.
MOTIA_V0 = (*COMPARISONS, *STRINGS, "isNull", "isNotNull")
MAX_DEPTH = 32  # nesting of and/or/not
MAX_NODES = 1000
MAX_IN = 256  # values of an `in` list
MAX_NEEDLE = 1024  # characters of a string operand
DEFAULT_LIMIT = 100
MAX_LIMIT = 10_000
# One server call: HSCAN pages of PAGE_COUNT fields until BUDGET fields were examined, or
# WANTED matches found: a few milliseconds of server time at most for values of a few hundred
# bytes (a field the predicate rejects costs about 1-3 us, a match, validated whole, 7-12 us:
# see lua/query.lua).
PAGE_COUNT = 250
BUDGET = 500
WANTED = 250
MISSING: Any = object()

Path = tuple[str, ...]


class Predicate:
    """A node of a ``where`` tree; ``&``, ``|`` and ``~`` combine them."""

    __slots__ = ()

    def __and__(self, other: Predicate) -> All:
        """``a & b & c`` is one `All` of three, not nested: a long chain stays shallow."""
        head = self.nodes if isinstance(self, All) else (self,)
        return All((*head, _node(other)))

    def __or__(self, other: Predicate) -> AnyOf:
        head = self.nodes if isinstance(self, AnyOf) else (self,)
        return AnyOf((*head, _node(other)))

    def __invert__(self) -> Not:
        return Not(self)


@dataclass(frozen=True, slots=True)
class Compare(Predicate):
    """``op`` between the value at ``path`` and ``operand`` (see the module's rules)."""

    op: str
    path: Path
    operand: Any


@dataclass(frozen=True, slots=True)
class Check(Predicate):
    """``isNull``, ``isNotNull`` or ``exists`` of the value at ``path``."""

    op: str
    path: Path


@dataclass(frozen=True, slots=True)
class All(Predicate):
    nodes: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class AnyOf(Predicate):
    nodes: tuple[Predicate, ...]


@dataclass(frozen=True, slots=True)
class Not(Predicate):
    node: Predicate


class F:
    """A path in the values of a group, for building predicates:
    ``(F("status") == "paid") & (F("total") > 100)``, ``F("customer.address.city").isin([...])``.
    """

    __slots__ = ("path",)

    def __init__(self, path: str | Sequence[str] = "") -> None:
        self.path = path_of(path)

    def __eq__(self, operand: object) -> Compare:  # type: ignore[override]
        return Compare("eq", self.path, operand)

    def __ne__(self, operand: object) -> Compare:  # type: ignore[override]
        return Compare("neq", self.path, operand)

    def __gt__(self, operand: object) -> Compare:
        return Compare("gt", self.path, operand)

    def __ge__(self, operand: object) -> Compare:
        return Compare("gte", self.path, operand)

    def __lt__(self, operand: object) -> Compare:
        return Compare("lt", self.path, operand)

    def __le__(self, operand: object) -> Compare:
        return Compare("lte", self.path, operand)

    __hash__ = None  # type: ignore[assignment]

    def contains(self, operand: Any) -> Compare:
        return Compare("contains", self.path, operand)

    def not_contains(self, operand: Any) -> Compare:
        return Compare("notContains", self.path, operand)

    def startswith(self, prefix: str) -> Compare:
        return Compare("startsWith", self.path, prefix)

    def endswith(self, suffix: str) -> Compare:
        return Compare("endsWith", self.path, suffix)

    def isin(self, operands: Iterable[Any]) -> Compare:
        """In ``operands`` (a list; anything else is refused when the query is made)."""
        listed = list(operands) if isinstance(operands, (list, tuple)) else operands
        return Compare("in", self.path, listed)

    def is_null(self) -> Check:
        return Check("isNull", self.path)

    def is_not_null(self) -> Check:
        return Check("isNotNull", self.path)

    def exists(self) -> Check:
        return Check("exists", self.path)


# -- checking ------------------------------------------------------------------------------


def path_of(raw: object) -> Path:
    """A path as update ops take it: ``"a.b.c"`` or a list of non-empty str segments."""
    if isinstance(raw, str):
        segments: tuple[Any, ...] = tuple(raw.split(".")) if raw else ()
    elif isinstance(raw, (list, tuple)):
        segments = tuple(raw)
    else:
        raise InvalidInput(f"a path must be a str or a list of str, not {brief(raw)}")
    if len(segments) > MAX_PATH_DEPTH:
        raise InvalidInput(f"path {brief(raw)} is deeper than {MAX_PATH_DEPTH}")
    for seg in segments:
        if not isinstance(seg, str) or not seg:
            raise InvalidInput(f"path {brief(raw)}: segments must be non-empty str")
        try:
            size = len(seg.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidInput(f"path {brief(raw)}: a segment is not valid unicode") from None
        if size > MAX_SEGMENT_BYTES:
            raise InvalidInput(f"path {brief(raw)}: a segment is over {MAX_SEGMENT_BYTES} bytes")
        if seg in FORBIDDEN_SEGMENTS:
            raise InvalidInput(f"path {brief(raw)}: segment {seg!r} is not allowed")
    return segments


def _node(value: object) -> Predicate:
    if not isinstance(value, Predicate):
        raise InvalidInput(f"a predicate combines only with predicates, not {brief(value)}")
    return value


def parse(where: object) -> Predicate | None:
    """``where`` as a checked tree; None: every item. Raises `InvalidInput` naming the fault."""
    if where is None:
        return None
    node = _parse(where, 0)
    _check(node, 0, [0])
    return node


def _parse(where: object, depth: int) -> Predicate:
    if depth > MAX_DEPTH:
        raise InvalidInput(f"where is nested deeper than {MAX_DEPTH}")
    if isinstance(where, Predicate):
        return where
    if isinstance(where, (list, tuple)):  # Motia v0's filter list: every one must hold
        return All(tuple(_parse(w, depth + 1) for w in where))
    if not isinstance(where, Mapping):
        raise InvalidInput(f"where must be a predicate, a dict or a list, not {brief(where)}")
    if "operation" in where or "valueKey" in where:
        unknown = set(where) - {"valueKey", "operation", "value"}
        if unknown:
            raise InvalidInput(f"filter {brief(where)}: unknown keys {sorted(map(str, unknown))}")
        op, path = where.get("operation"), path_of(where.get("valueKey", ""))
        if op in CHECKS:
            return Check(str(op), path)
        if op not in OPERAND_OPS:
            raise InvalidInput(
                f"filter {brief(where)}: operation must be one of {[*OPERAND_OPS, *CHECKS]}"
            )
        if "value" not in where:
            raise InvalidInput(f"filter {brief(where)}: {op} needs a value")
        return Compare(str(op), path, where["value"])
    if len(where) != 1:
        raise InvalidInput(
            f"where {brief(where)}: a dict is a filter (valueKey, operation, value) or one "
            "of {'and': [...]}, {'or': [...]}, {'not': ...}"
        )
    ((kind, inner),) = where.items()
    if kind == "not":
        return Not(_parse(inner, depth + 1))
    if kind in ("and", "or"):
        if not isinstance(inner, (list, tuple)):
            raise InvalidInput(f"where {brief(where)}: {kind} takes a list")
        nodes = tuple(_parse(w, depth + 1) for w in inner)
        return All(nodes) if kind == "and" else AnyOf(nodes)
    raise InvalidInput(f"where {brief(where)}: unknown key {brief(kind)}")


def _check(node: Predicate, depth: int, count: list[int]) -> None:
    """The tree built by hand (`Compare` and friends) obeys the rules `_parse` enforces."""
    count[0] += 1
    if depth > MAX_DEPTH or count[0] > MAX_NODES:
        raise InvalidInput(f"where is deeper than {MAX_DEPTH} or larger than {MAX_NODES} nodes")
    if isinstance(node, Compare):
        if node.op not in OPERAND_OPS:
            raise InvalidInput(f"unknown operation {brief(node.op)}")
        path_of(node.path)
        if node.op in ("startsWith", "endsWith") and not isinstance(node.operand, str):
            raise InvalidInput(f"{node.op} takes a str, not {brief(node.operand)}")
        if node.op == "in" and not isinstance(node.operand, (list, tuple)):
            raise InvalidInput(f"in takes a list of values, not {brief(node.operand)}")
        # The server compares a value with each element of an `in` list, and searches a
        # string by plain substring search: operands this size keep a call's time bounded.
        if node.op == "in" and len(node.operand) > MAX_IN:
            raise InvalidInput(f"in takes at most {MAX_IN} values, got {len(node.operand)}")
        if node.op in STRINGS and isinstance(node.operand, str) and len(node.operand) > MAX_NEEDLE:
            raise InvalidInput(f"a {node.op} string operand is over {MAX_NEEDLE} characters")
    elif isinstance(node, Check):
        if node.op not in CHECKS:
            raise InvalidInput(f"unknown check {brief(node.op)}")
        path_of(node.path)
    elif isinstance(node, (All, AnyOf)):
        for child in node.nodes:
            _check(_node(child), depth + 1, count)
    elif isinstance(node, Not):
        _check(_node(node.node), depth + 1, count)
    else:
        raise InvalidInput(f"where holds {brief(node)}, which is not a predicate")


# -- the reference semantics ---------------------------------------------------------------


def at(value: Any, path: Path) -> Any:
    """The value at ``path``, or MISSING."""
    for seg in path:
        if not isinstance(value, dict) or seg not in value:
            return MISSING
        value = value[seg]
    return value


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def equal(a: Any, b: Any) -> bool:
    """Deep equality by the query rules: booleans are not numbers, numbers by exact value,
    object key order ignored."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if _number(a) or _number(b):
        return _number(a) and _number(b) and a == b
    if isinstance(a, list) or isinstance(b, list):
        return (
            isinstance(a, list)
            and isinstance(b, list)
            and len(a) == len(b)
            and all(equal(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict) or isinstance(b, dict):
        return (
            isinstance(a, dict)
            and isinstance(b, dict)
            and a.keys() == b.keys()
            and all(equal(a[k], b[k]) for k in a)
        )
    return type(a) is type(b) and a == b  # str, bytes (msgpack bin), None


def _ordered(a: Any, b: Any) -> int | None:
    """-1, 0 or 1 when ``a`` and ``b`` are both numbers or both strings; else None."""
    if (_number(a) and _number(b)) or (isinstance(a, str) and isinstance(b, str)):
        if a < b:
            return -1
        if a > b:
            return 1
        return 0 if a == b else None  # NaN (another tool's msgpack) is unordered
    return None


def _contains(v: Any, operand: Any) -> bool:
    if isinstance(v, str):
        return isinstance(operand, str) and operand in v
    if isinstance(v, list):
        return any(equal(item, operand) for item in v)
    return False


def matches(node: Predicate | None, value: Any) -> bool:
    """Whether an item whose decoded value is ``value`` matches ``node`` (None: all do)."""
    if node is None:
        return True
    if isinstance(node, All):
        return all(matches(n, value) for n in node.nodes)
    if isinstance(node, AnyOf):
        return any(matches(n, value) for n in node.nodes)
    if isinstance(node, Not):
        return not matches(node.node, value)
    assert isinstance(node, (Compare, Check))
    v = at(value, node.path)
    if isinstance(node, Check):
        if node.op == "exists":
            return v is not MISSING
        null = v is MISSING or v is None
        return null if node.op == "isNull" else not null
    assert isinstance(node, Compare)
    op, operand = node.op, node.operand
    if op == "neq":
        return not (v is not MISSING and equal(v, operand))
    if op == "notContains":
        return not _contains(v, operand)
    if v is MISSING:
        return False
    if op == "eq":
        return equal(v, operand)
    if op == "in":
        return any(equal(v, o) for o in operand)
    if op == "contains":
        return _contains(v, operand)
    if op in ("startsWith", "endsWith"):
        if not (isinstance(v, str) and isinstance(operand, str)):
            return False
        return v.startswith(operand) if op == "startsWith" else v.endswith(operand)
    order = _ordered(v, operand)
    if order is None:
        return False
    return {"gt": order > 0, "gte": order >= 0, "lt": order < 0, "lte": order <= 0}[op]


def plain(operand: Any) -> Any:
    """An operand as the codec will store it (tuples as lists), for `matches` off Redis."""
    if isinstance(operand, tuple):
        return [plain(o) for o in operand]
    if isinstance(operand, list):
        return [plain(o) for o in operand]
    if isinstance(operand, dict):
        return {k: plain(v) for k, v in operand.items()}
    return operand


# -- on the wire ---------------------------------------------------------------------------


def wire(node: Predicate | None, codec: Codec, max_bytes: int) -> tuple[bytes, ...]:
    """lua/query.lua's predicate tokens, in prefix order: the segments and operands encoded
    by the State's codec (an operand over ``max_bytes`` is refused)."""
    tokens: list[bytes] = []

    def path(p: Path) -> None:
        tokens.append(b"%d" % len(p))
        tokens.extend(codec.encode(seg) for seg in p)

    def walk(n: Predicate) -> None:
        if isinstance(n, (All, AnyOf)):
            tokens.extend((b"and" if isinstance(n, All) else b"or", b"%d" % len(n.nodes)))
            for child in n.nodes:
                walk(child)
        elif isinstance(n, Not):
            tokens.append(b"not")
            walk(n.node)
        elif isinstance(n, Check):
            tokens.append(n.op.encode())
            path(n.path)
        else:
            assert isinstance(n, Compare)
            tokens.append(n.op.encode())
            path(n.path)
            data = codec.encode(plain(n.operand))
            if len(data) > max_bytes:
                raise InvalidInput(f"a {n.op} operand encodes to {len(data)} bytes: over the limit")
            tokens.append(data)

    if node is not None:
        walk(node)
    return tuple(tokens)


def decoded(codec: Codec, node: Predicate | None) -> Predicate | None:
    """``node`` with each operand as the codec gives it back (a tuple as a list, and what the
    codec refuses refused now): what the server compares with, so `matches` compares with
    the same off Redis."""
    if node is None:
        return None
    if isinstance(node, All):
        return All(tuple(decoded(codec, n) for n in node.nodes))  # type: ignore[misc]
    if isinstance(node, AnyOf):
        return AnyOf(tuple(decoded(codec, n) for n in node.nodes))  # type: ignore[misc]
    if isinstance(node, Not):
        inner = decoded(codec, node.node)
        assert inner is not None
        return Not(inner)
    if isinstance(node, Compare):
        return Compare(node.op, node.path, codec.decode(codec.encode(plain(node.operand))))
    return node


# -- paging --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a query: its items in the order found (by ``order_by`` when given) and
    the cursor of the next page (None: there is none)."""

    items: list[ops.Item]
    cursor: str | None


@dataclass(frozen=True, slots=True)
class KeyPage:
    keys: list[str]
    cursor: str | None


_SCAN_CURSOR = re.compile(r"(0|[1-9][0-9]{0,19}):((?:[0-9a-f]{16})*)")
MAX_SCAN_CURSOR = 2**64 - 1


def digest(key: str) -> str:
    """A returned match's mark in a cursor: the first 16 hex digits of its key's SHA1 (the
    script computes the same with redis.sha1hex)."""
    return hashlib.sha1(key.encode("utf-8", errors="surrogateescape")).hexdigest()[:16]


def digests(marks: str) -> list[str]:
    return [marks[i : i + 16] for i in range(0, len(marks), 16)]


def _scan_cursor(cursor: object) -> tuple[str, str]:
    """A page cursor as `Page.cursor` writes it: ``<HSCAN cursor>:<the digests of the
    matches of that page already returned>``."""
    if cursor is None:
        return "0", ""
    if isinstance(cursor, str) and len(cursor) <= 21 + 16 * 100_000:
        found = _SCAN_CURSOR.fullmatch(cursor)
        if found and int(found[1]) <= MAX_SCAN_CURSOR:
            return found[1], found[2]
    raise InvalidInput(f"cursor {brief(cursor)} is not one a query page gave")


def limit_of(limit: object) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInput(f"limit must be an int from 1 to {MAX_LIMIT}, got {brief(limit)}")
    return limit


class Query:
    """A query's checked arguments and the plans of its server calls."""

    def __init__(self, core: Core, group: str, where: object) -> None:
        self.core = core
        self.group = validate.group(group)
        self.node = parse(where)
        self.tokens = wire(self.node, core.codec, core.max_value_bytes)
        self.reference = decoded(core.codec, self.node)

    def page(self, cursor: str, returned: str, wanted: int, mode: str) -> Plan[Any]:
        op = ops.QueryPage(
            self.group, cursor, returned, PAGE_COUNT, BUDGET, wanted, mode, self.tokens,
            self.reference,
        )  # fmt: skip
        return Plan(op, _same)

    def item(self, raw: ops.QueryMatch) -> ops.Item:
        value = self.core.decode(self.group, raw.key, raw.data)
        expires = raw.expires_at / 1000 if raw.expires_at is not None else None
        return ops.Item(self.group, raw.key, value, raw.version, expires)


def _same(raw: Any) -> Any:
    return raw


def run(query: Query, limit: int, cursor: object) -> PlanSteps[Page]:
    """The items of one page, in the order the group's hash gives them. A page that ends
    inside a server page names, in its cursor, the matches of that server page it returned,
    so that the next call leaves out exactly those (whatever was deleted meanwhile)."""
    scan, returned = _scan_cursor(cursor)
    found: list[ops.Item] = []
    while True:
        need = limit - len(found)
        reply: ops.QueryReply = yield query.page(scan, returned, min(need, WANTED), "items")
        matches = reply.matches
        if len(matches) > need:  # the call stopped after the page that reached the count
            taken = matches[:need]  # the cut is in that last page
            from_page = taken[len(matches) - reply.page_matches :]
            before = returned if reply.page_cursor == scan else ""
            found += [query.item(m) for m in taken]
            marks = before + "".join(digest(m.key) for m in from_page)
            return Page(found, f"{reply.page_cursor}:{marks}")
        found += [query.item(m) for m in matches]
        if reply.cursor == "0":
            return Page(found, None)
        scan, returned = reply.cursor, ""
        if len(found) == limit:
            return Page(found, f"{scan}:")


def count(query: Query) -> PlanSteps[int]:
    scan, total = "0", 0
    while True:
        reply: ops.QueryReply = yield query.page(scan, "", 0, "count")
        total += reply.count
        if reply.cursor == "0":
            return total
        scan = reply.cursor


# -- order_by: every page, a bounded heap ---------------------------------------------------


def _sort_key(value: Any) -> tuple[int, Any]:
    """Numbers first, then strings; anything else (a MISSING value, NaN) last."""
    if _number(value) and value == value:
        return 0, value
    if isinstance(value, str):
        return 1, value
    return 2, None


class _Ranked:
    """An item in the bounded heap, whose top is the worst item kept."""

    __slots__ = ("desc", "item", "key", "rank")

    def __init__(self, rank: tuple[int, Any], key: str, item: ops.Item, desc: bool) -> None:
        self.rank, self.key, self.item, self.desc = rank, key, item, desc

    def __lt__(self, other: _Ranked) -> bool:
        return _after(self, other)


def _before(a: tuple[tuple[int, Any], str], b: tuple[tuple[int, Any], str], desc: bool) -> bool:
    (ka, va), (kb, vb) = a[0], b[0]
    if ka != kb:
        return ka < kb  # the kind's order holds both ways: the rest stays last
    if ka != 2 and va != vb:
        return bool(va > vb) if desc else bool(va < vb)
    return a[1] < b[1]


def _after(x: _Ranked, y: _Ranked) -> bool:
    """Whether ``x`` comes after ``y`` in the query's order."""
    return _before((y.rank, y.key), (x.rank, x.key), x.desc)


def _order_cursor(rank: tuple[int, Any], key: str) -> str:
    """The last item's place: its rank, its value as text (an int of any size, a float by
    repr, infinities included), its key."""
    kind, value = rank
    text = "" if kind == 2 else (repr(value) if isinstance(value, float) else str(value))
    tag = "f" if isinstance(value, float) else ("i" if kind == 0 else "s")
    raw = orjson.dumps([kind, tag, text, key])
    return "o:" + base64.urlsafe_b64encode(raw).decode()


def _after_cursor(cursor: object) -> tuple[tuple[int, Any], str] | None:
    if cursor is None:
        return None
    if isinstance(cursor, str) and cursor.startswith("o:") and len(cursor) < 20_000:
        try:
            kind, tag, text, key = orjson.loads(base64.urlsafe_b64decode(cursor[2:]))
            if not isinstance(key, str) or not isinstance(text, str):
                raise TypeError
            value: Any = None
            if kind == 0 and tag == "i" and re.fullmatch(r"-?[0-9]{1,400}", text):
                value = int(text)
            elif kind == 0 and tag == "f":
                value = float(text)
                if value != value:
                    raise ValueError
            elif kind == 1 and tag == "s":
                value = text
            elif kind != 2:
                raise ValueError
            return (kind, value), key
        except (ValueError, TypeError):
            pass
    raise InvalidInput(f"cursor {brief(cursor)} is not one an ordered query page gave")


def ordered(
    query: Query, order_by: Path, descending: bool, limit: int, cursor: object
) -> PlanSteps[Page]:
    """The first ``limit`` items by the value at ``order_by`` (ties by key), after the item
    ``cursor`` names: every page of the group is read (bounded server calls), and a heap of
    ``limit`` items is kept in the client."""
    after = _after_cursor(cursor)
    heap: list[_Ranked] = []
    scan = "0"
    while True:
        reply: ops.QueryReply = yield query.page(scan, "", WANTED, "items")
        for raw in reply.matches:
            item = query.item(raw)
            rank = _sort_key(at(item.value, order_by))
            if after is not None and not _before(after, (rank, item.key), descending):
                continue
            entry = _Ranked(rank, item.key, item, descending)
            if len(heap) < limit:
                heapq.heappush(heap, entry)
            elif _after(heap[0], entry):
                heapq.heapreplace(heap, entry)
        if reply.cursor == "0":
            break
        scan = reply.cursor
    best = sorted(heap, key=_Sorter)
    items = [e.item for e in best]
    more = len(best) == limit
    return Page(items, _order_cursor(best[-1].rank, best[-1].key) if more and best else None)


class _Sorter:
    __slots__ = ("entry",)

    def __init__(self, entry: _Ranked) -> None:
        self.entry = entry

    def __lt__(self, other: _Sorter) -> bool:
        a, b = self.entry, other.entry
        return _before((a.rank, a.key), (b.rank, b.key), a.desc)


def order_path(order_by: object) -> Path:
    path = path_of(order_by)
    if not path:
        raise InvalidInput("order_by needs a path into the values, e.g. 'total'")
    return path


def steps(
    core: Core,
    group: str,
    where: object,
    order_by: object,
    descending: object,
    limit: object,
    cursor: object,
) -> PlanSteps[Page]:
    """`State.query`'s plans; every argument is checked now, before anything is sent."""
    q, n = Query(core, group, where), limit_of(limit)
    if not isinstance(descending, bool):
        raise InvalidInput(f"descending must be True or False, not {brief(descending)}")
    if order_by is None:
        _scan_cursor(cursor)
        return run(q, n, cursor)
    path = order_path(order_by)
    _after_cursor(cursor)
    return ordered(q, path, descending, n, cursor)


def counting(core: Core, group: str, where: object) -> PlanSteps[int]:
    """`State.count`'s plans, its arguments checked now."""
    return count(Query(core, group, where))


MAX_KEY_PAGE = 10_000


def key_page(core: Core, group: str, cursor: object, count: object) -> PlanSteps[KeyPage]:
    """`State.list_keys`: one HSCAN page of a group's live keys (iii's ``list_keys``): about
    ``count`` of them, the values not decoded (one another tool wrote that is not valid for
    the codec is listed too)."""
    g = validate.group(group)
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_KEY_PAGE:
        raise InvalidInput(f"count must be an int from 1 to {MAX_KEY_PAGE}, got {brief(count)}")
    if cursor is None:
        scan = 0
    elif isinstance(cursor, str) and re.fullmatch(r"[1-9][0-9]{0,19}", cursor):
        scan = int(cursor)
        if scan > MAX_SCAN_CURSOR:
            raise InvalidInput(f"cursor {brief(cursor)} is not one a key page gave")
    else:
        raise InvalidInput(f"cursor {brief(cursor)} is not one a key page gave")
    raw: tuple[int, list[tuple[str, bytes]]] = yield Plan(ops.ScanPage(g, scan, count), _same)
    following, pairs = raw
    return KeyPage([key for key, _ in pairs], str(following) if following else None)
