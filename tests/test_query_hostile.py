"""Queries attacked (issue 19): cursors forged, stale or resumed across concurrent changes,
values another tool wrote, non-finite and out-of-range numbers in order_by, ACL users, TTLs,
and the limits of a predicate, on every backend.

Each defect found was an ``xfail(strict=True)`` reproduction naming its cause, its mark taken
off with the fix (one left: a refused HSCAN is not named on Redis 7.0); the attacks that
held are plain tests, kept for their coverage. Two defects are only in the report, not here:
they are about server time (a string operand's search in lua/include/predicate.lua is
quadratic; an ``in`` operand is compared element by element), which no test may assert.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import math
import operator
import struct
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest
import redis
from click.testing import CliRunner

from motia_state import F, InvalidInput, PermissionDenied, State, query
from motia_state.cli import main
from motia_state.codecs import CODECS
from motia_state.errors import DecodeError
from motia_state.query import Predicate

from .conftest import Servers, Target, _purge

MAX_PAGES = 2_000  # a cursor that loops fails the test instead of hanging it


def _open(target: Target, **more: Any) -> State:
    return State.from_url(target.url, **{**target.options, "cleanup_interval": None, **more})


def _group() -> str:
    return f"h{uuid.uuid4().hex[:8]}"


def _pages(state: State, group: str, where: Any, limit: int, **options: Any) -> list[str]:
    """Every key a query gives, page after page, in order (repeats kept)."""
    keys: list[str] = []
    cursor = None
    for _ in range(MAX_PAGES):
        page = state.query(group, where, limit=limit, cursor=cursor, **options)
        keys += [item.key for item in page.items]
        if page.cursor is None:
            return keys
        cursor = page.cursor
    raise AssertionError(f"the cursor loops: {len(keys)} keys in {MAX_PAGES} pages")


def _ordered_cursor(kind: Any, value: Any, key: Any) -> str:
    """A cursor shaped as `query._order_cursor` writes one, holding what it is given."""
    return "o:" + base64.urlsafe_b64encode(orjson.dumps([kind, value, key])).decode()


# -- paging across concurrent changes ------------------------------------------------------


@pytest.mark.parametrize("size", [6, 300])  # a listpack (one HSCAN page) and a hashtable
def test_a_match_present_throughout_comes_back_after_returned_ones_leave(
    target: Target, size: int
) -> None:
    """A page of new orders read, the first one handled and deleted, the rest read with the
    cursor: every order not yet returned must come, and once (no rehash: one deletion out of
    hundreds does not shrink the table)."""
    group = _group()
    with _open(target) as state:
        state.set_many(group, {f"k{i:04}": {"status": "new"} for i in range(size)})
        first = state.query(group, F("status") == "new", limit=3)
        assert len(first.items) == 3
        assert first.cursor is not None
        returned = [item.key for item in first.items]
        state.delete(group, returned[0])
        rest: list[str] = []
        cursor: str | None = first.cursor
        for _ in range(MAX_PAGES):
            if cursor is None:
                break
            page = state.query(group, F("status") == "new", limit=3, cursor=cursor)
            rest += [item.key for item in page.items]
            cursor = page.cursor
        unreturned = sorted(f"k{i:04}" for i in range(size) if f"k{i:04}" not in returned)
        assert sorted(set(unreturned) - set(rest)) == []  # none lost
        assert sorted(rest) == unreturned  # none twice


def test_a_match_present_throughout_survives_writes_that_do_not_touch_it(
    target: Target,
) -> None:
    """Held: items added and others changed between pages (no returned match leaving)
    never cost an item present throughout its place."""
    group = _group()
    with _open(target) as state:
        state.set_many(group, {f"k{i:04}": {"n": i} for i in range(300)})
        first = state.query(group, F("n") >= 0, limit=50)
        seen = [item.key for item in first.items]
        state.set_many(group, {f"new{i}": {"n": -1} for i in range(40)})  # no match
        state.set_many(group, {f"k{i:04}": {"n": i, "touched": True} for i in range(0, 300, 7)})
        cursor = first.cursor
        for _ in range(MAX_PAGES):
            if cursor is None:
                break
            page = state.query(group, F("n") >= 0, limit=50, cursor=cursor)
            seen += [item.key for item in page.items]
            cursor = page.cursor
        assert set(seen) == {f"k{i:04}" for i in range(300)}


def test_a_group_that_expires_whole_between_pages_ends_the_query(target: Target) -> None:
    group = _group()
    with _open(target) as state:
        view = state.group(group, ttl=0.3)
        view.set_many({f"k{i}": {"n": i} for i in range(20)})
        first = state.query(group, F("n") >= 0, limit=5)
        assert len(first.items) == 5
        assert first.cursor is not None
        assert all(item.expires_at is not None for item in first.items)
        deadline = time.monotonic() + 10
        while state.count(group) and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for the group to expire, a condition
        page = state.query(group, F("n") >= 0, limit=5, cursor=first.cursor)
        assert (page.items, page.cursor) == ([], None)
        assert state.list_keys(group).keys == []


def test_expired_items_never_match(target: Target) -> None:
    group = _group()
    with _open(target) as state:
        state.set_many(group, {f"k{i}": {"n": i} for i in range(4)})
        state.set(group, "brief", {"n": 100}, ttl=0.05)
        state.set(group, "long", {"n": 200}, ttl=600)
        deadline = time.monotonic() + 10
        while state.get(group, "brief") is not None and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for the item to expire, a condition
        assert state.get(group, "brief") is None
        for where in (None, F("n") >= 100, F("n").exists(), ~(F("n") == 0)):
            keys = _pages(state, group, where, limit=1)
            assert "brief" not in keys, where
        assert state.count(group, F("n") >= 100) == 1
        assert "brief" not in state.list_keys(group).keys
        (item,) = state.query(group, F("n") == 200).items
        assert item.expires_at is not None
        assert item.expires_at > time.time()
        ordered = _pages(state, group, None, limit=2, order_by="n", descending=True)
        assert ordered == ["long", "k3", "k2", "k1", "k0"]


# -- forged and stale cursors ----------------------------------------------------------------


FORGED = [
    ("query", "0:\u00b2"),  # a superscript two: str.isdigit, not int()
    ("query", "\u0661:0"),  # an Arabic-Indic one
    ("query", f"{2**64}:0"),  # past HSCAN's cursors
    ("ordered", _ordered_cursor(0, "x", "k")),  # a string where a number ranks
    ("ordered", _ordered_cursor(1, [1], "k")),
    ("list_keys", "\u00b2"),
    ("list_keys", str(2**64)),
]


@pytest.mark.parametrize(("kind", "cursor"), FORGED)
def test_a_forged_cursor_is_invalid_input(target: Target, kind: str, cursor: str) -> None:
    group = _group()
    with _open(target) as state:
        state.set_many(group, {"a": {"n": 1}, "b": {"n": 2}})
        calls: dict[str, Callable[[], object]] = {
            "query": lambda: state.query(group, F("n") >= 0, cursor=cursor),
            "ordered": lambda: state.query(group, None, order_by="n", cursor=cursor),
            "list_keys": lambda: state.list_keys(group, cursor=cursor),
        }
        with pytest.raises(InvalidInput, match="cursor"):
            calls[kind]()


@pytest.mark.parametrize("target", ["file"], indirect=True)
@pytest.mark.parametrize(
    "args", [["--cursor", "0:\u00b2"], ["--order-by", "n", "--cursor", FORGED[3][1]]]
)
def test_the_cli_refuses_a_forged_cursor_in_one_line(target: Target, args: list[str]) -> None:
    with _open(target) as state:
        state.set_many("g", {"a": {"n": 1}, "b": {"n": 2}})
    result = CliRunner().invoke(main, ["items", "g", "--limit", "1", *args, "--url", target.url])
    assert result.exit_code == 2, result.stderr
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1


@pytest.mark.parametrize(
    "cursor",
    ["", ":", "0", ":0", "-1:0", "0:-1", " 0:0", "0:0 ", "x" * 70, "0:0:0", "o:", "o:e30="],
)
def test_malformed_cursors_are_refused_before_anything_is_sent(target: Target, cursor: str) -> None:
    with _open(target) as state:
        with pytest.raises(InvalidInput, match="cursor"):
            state.query("g", None, cursor=cursor)
        with pytest.raises(InvalidInput, match="cursor"):
            state.query(
                "g", None, order_by="n", cursor=cursor if cursor.startswith("o:") else "1:0"
            )


def test_a_page_all_returned_gives_nothing_more(target: Target) -> None:
    group = _group()
    with _open(target) as state:
        state.set_many(group, {f"k{i}": {"n": i} for i in range(5)})
        # a listpack (Redis) or the adapter's listing: one page, at cursor 0, all returned
        marks = "".join(query.digest(f"k{i}") for i in range(5))
        page = state.query(group, F("n") >= 0, cursor=f"0:{marks}")
        assert (page.items, page.cursor) == ([], None)


# -- order_by: values a cursor must be able to name ----------------------------------------


def test_an_ordered_cursor_resumes_after_an_infinite_value(target: Target) -> None:
    if target.name == "file":
        pytest.skip("file:// keeps JSON, which holds no infinity")
    group = _group()
    with _open(target, codec="msgpack") as state:
        state.set_many(group, {"a": {"n": 1.0}, "b": {"n": math.inf}, "c": {"n": 2}})
        keys = _pages(state, group, None, limit=1, order_by="n", descending=True)
        assert keys == ["b", "c", "a"]


def test_nan_does_not_scramble_the_order_of_numbers(target: Target) -> None:
    if target.name == "file":
        pytest.skip("file:// keeps JSON, which holds no NaN")
    group = _group()
    with _open(target, codec="msgpack") as state:
        state.set_many(group, {"five": {"n": 5}, "nan": {"n": math.nan}, "one": {"n": 1}})
        page = state.query(group, None, order_by="n", limit=3)
        numbers = [item.key for item in page.items if item.key != "nan"]
        assert numbers == ["one", "five"]
        top = state.query(group, None, order_by="n", limit=1).items[0].key
        assert top == page.items[0].key


def test_nan_is_ordered_with_nothing(target: Target) -> None:
    """Held (since f21da43): NaN is neither above, below nor equal to any number, in the
    server and in the reference the adapters filter with."""
    if target.name == "file":
        pytest.skip("file:// keeps JSON, which holds no NaN")
    group = _group()
    with _open(target, codec="msgpack") as state:
        state.set_many(group, {"nan": {"n": math.nan}, "one": {"n": 1}})
        assert state.count(group, F("n") >= 0) == 1
        assert state.count(group, F("n") <= 1) == 1
        assert state.count(group, F("n") >= math.nan) == 0
        assert state.count(group, F("n") == math.nan) == 0


@pytest.mark.redis_only
def test_an_ordered_cursor_names_an_int_beyond_64_bits(target: Target) -> None:
    group = _group()
    with target.raw() as r:
        r.hset(
            target.layout().data(group),
            mapping={"huge": b'{"n":18446744073709551616}', "small": b'{"n":1}'},
        )
    with _open(target) as state:
        assert _pages(state, group, None, limit=1, order_by="n", descending=True) == [
            "huge",
            "small",
        ]


def test_mixed_types_and_signed_zeros_page_in_one_order(target: Target) -> None:
    """Held: numbers (ints and floats, -0.0 tied with 0 by key), then strings, then
    everything else (bools, null, lists, objects, a missing path), in pages of two, each
    once, the same as one page; descending reverses the values only."""
    values: dict[str, Any] = {
        "z0": {"n": 0},
        "zm": {"n": -0.0},
        "zf": {"n": 0.0},
        "big": {"n": 2**63 - 1},
        "bigf": {"n": 2.0**63},
        "neg": {"n": -(2**63)},
        "half": {"n": 0.5},
        "s1": {"n": "a"},
        "s2": {"n": "é"},
        "s3": {"n": "B"},
        "t": {"n": True},
        "null": {"n": None},
        "list": {"n": [1]},
        "obj": {"n": {"a": 1}},
        "none": {"m": 1},
        "scalar": 7,
    }
    expected_up = ["neg", "z0", "zf", "zm", "half", "big", "bigf", "s3", "s1", "s2"]
    rest = sorted(set(values) - set(expected_up))
    group = _group()
    with _open(target) as state:
        state.set_many(group, values)
        up = _pages(state, group, None, limit=2, order_by="n")
        assert up == expected_up + rest
        assert [i.key for i in state.query(group, order_by="n", limit=100).items] == up
        down = _pages(state, group, None, limit=3, order_by="n", descending=True)
        assert down == ["bigf", "big", "half", "z0", "zf", "zm", "neg", "s2", "s1", "s3", *rest]


def test_an_ordered_cursor_outlives_the_item_it_names(target: Target) -> None:
    """Held: an ordered cursor names a rank and a key, not a position, so deleting the item
    it names, or moving another past it, neither loses nor repeats an item left in place."""
    group = _group()
    with _open(target) as state:
        state.set_many(group, {f"k{i}": {"n": i} for i in range(6)})
        first = state.query(group, None, order_by="n", limit=2)
        assert [item.key for item in first.items] == ["k0", "k1"]
        state.delete(group, "k1")
        state.set(group, "k0", {"n": 10})  # moved past the cursor: it comes again, last
        state.set(group, "k3", {"n": 3.5})  # moved, still after the cursor
        rest = []
        cursor = first.cursor
        for _ in range(MAX_PAGES):
            if cursor is None:
                break
            page = state.query(group, None, order_by="n", limit=2, cursor=cursor)
            rest += [item.key for item in page.items]
            cursor = page.cursor
        assert rest == ["k2", "k3", "k4", "k5", "k0"]


# -- values another tool wrote --------------------------------------------------------------


@pytest.mark.redis_only
def test_an_unfiltered_query_leaves_out_values_no_client_decodes(target: Target) -> None:
    group = _group()
    with _open(target) as state:
        state.set_many(group, {"a": {"n": 1}, "b": {"n": 2}})
        with target.raw() as r:
            r.hset(target.layout().data(group), "foreign", b"\xff not json")
        assert state.count(group, F("").exists()) == 2
        assert state.count(group) == 2
        assert sorted(i.key for i in state.query(group).items) == ["a", "b"]
        assert [i.key for i in state.query(group, order_by="n").items] == ["a", "b"]


JSON_RAW: dict[str, bytes] = {
    "u64": b'{"n":18446744073709551615}',
    "u64p1": b'{"n":18446744073709551616}',
    "i64m1": b'{"n":-9223372036854775809}',
    "huge": b'{"n":100000000000000000000000000000000000}',
    "e400": b'{"n":1e400}',
    "me400": b'{"n":-1e400}',
    "em400": b'{"n":1e-400}',
    "m0": b'{"n":-0}',
    "m00": b'{"n":-0.0}',
    "E2": b'{"n":1E2}',
    "p1e1": b'{"n":0.1e1}',
    "inf": b'{"n":Infinity}',
    "minf": b'{"n":-Infinity}',
    "b53p1": b'{"n":9007199254740993}',
    "b53p1f": b'{"n":9007199254740993.0}',
    "bigfrac": b'{"n":12345678901234567890.5}',
    "dup": b'{"n":1,"n":2}',
    "dupobj": b'{"n":{"x":1},"n":3}',
    "nul": b'{"s":"\\u0000x","n":5}',
    "badutf": b'{"s":"\xff","n":6}',
    "cesu": b'{"s":"\xed\xa0\x80","n":6}',
    "lone": b'{"s":"\\ud800","n":7}',
    "pair": b'{"s":"\\ud83d\\ude00","n":8}',
    "bom": b'\xef\xbb\xbf{"n":9}',
    "ws": b' \n{ "n" : 10 } \t',
    "esckey": b'{"\\u006e":11}',
    "escslash": b'{"s":"a\\/b","n":12}',
    "garbage": b'{"n":13}x',
    "lead0": b'{"n":013}',
    "dot": b'{"n":1.}',
    "plus": b'{"n":+1}',
    "hex": b'{"n":0x10}',
    "trail": b'{"n":14,}',
    "single": b"{'n':15}",
    "nulbyte": b'{"n":16}\x00',
    "tab": b'{"s":"a\tb","n":17}',
    "ctl": b'{"s":"a\x01b","n":17}',
    "deep500": b'{"n":' + b"[" * 500 + b"]" * 500 + b"}",
    "deep1100": b'{"n":' + b"[" * 1100 + b"]" * 1100 + b"}",
    "deepobj": b'{"n":1,"d":' + b'{"a":' * 600 + b"1" + b"}" * 600 + b"}",
    "big_str": b'{"s":"' + b"y" * 1_000_000 + b'x","n":18}',
    "denorm": b'{"n":2.4703282292062328e-324}',
    "arr": b'{"n":[1,2,{"x":1}]}',
    "obj": b'{"n":{"b":1,"a":2}}',
    "top": b"[1,2]",
    "str": b'"n"',
    "num": b"123",
    "bool": b'{"n":true}',
    "null": b'{"n":null}',
    "strn": b'{"n":"1"}',
    "int4300": b'{"n":' + b"9" * 4300 + b"}",
    "int4301": b'{"n":' + b"9" * 4301 + b"}",
    "neg4300": b'{"n":-' + b"9" * 4300 + b"}",
    "frac0": b'{"n":100.0}',
    "keysp": b'{"n" :19}',
    "quote_in_key": b'{"a\\"b":1,"n":20}',
    "nested_n": b'{"x":{"n":1},"n":21}',
    "strbrace": b'{"x":"{[","n":22}',
    "strcolon": b'{"x":"\\"n\\":5","n":23}',
    "emptykey": b'{"":1,"n":24}',
    "long_e": b'{"n":1' + b"0" * 30 + b"e-30}",
    "neg_exp": b'{"n":100e-2}',
}


def _mp(*parts: bytes) -> bytes:
    return b"".join(parts)


MSGPACK_RAW: dict[str, bytes] = {
    "f32": _mp(b"\x81\xa1n\xca", struct.pack(">f", 0.1)),
    "f32inf": b"\x81\xa1n\xca\x7f\x80\x00\x00",
    "u64max": _mp(b"\x81\xa1n\xcf", b"\xff" * 8),
    "i64min": _mp(b"\x81\xa1n\xd3\x80", b"\x00" * 7),
    "int8_5": b"\x81\xa1n\xd0\x05",
    "u16_5": b"\x81\xa1n\xcd\x00\x05",
    "intkey": b"\x82\x01\x01\xa1n\x05",
    "ext5": b"\x82\xa1n\x05\xa1e\xd4\x05\x00",
    "stamp": b"\x82\xa1n\x06\xa1t\xd6\xff\x00\x00\x00\x01",
    "ext_m2": b"\x82\xa1n\x07\xa1e\xd4\xfe\x00",
    "bin": b"\x82\xa1n\x08\xa1b\xc4\x01x",
    "binkey": b"\x82\xc4\x01n\x09\xa1n\x0a",
    "str8key": b"\x81\xd9\x01n\x0b",
    "dup": b"\x82\xa1n\x01\xa1n\x02",
    "mzero": _mp(b"\x81\xa1n\xcb\x80", b"\x00" * 7),
    "trailing": b"\x81\xa1n\x01\x00",
    "badutf": b"\x81\xa1s\xa1\xff",
    "truncated": b"\x81\xa1n\xcd\x00",
    "deep500": _mp(b"\x81\xa1n", b"\x91" * 500, b"\x01"),
    "arr16": b"\x81\xa1n\xdc\x00\x02\x01\x02",
    "map16": b"\xde\x00\x01\xa1n\x0c",
}

WHERE: list[Predicate] = [
    F("n") > 2**63 - 1,
    F("n") == -(2**63),
    F("n") == 1,
    F("n") == 2,
    F("n") == 3,
    F("n") == 5,
    F("n") == 10,
    F("n") == 11,
    F("n") < 0,
    F("n") == 0,
    F("n") == 100,
    F("n") == 2**53,
    F("n") == 2**53 + 1,
    F("n") > 2**53,
    F("n") > 1.7976931348623157e308,
    F("n") < -1.7976931348623157e308,
    F("n") == 0.1,
    F("n") == 0.10000000149011612,
    F("n") != 1,
    F("n").exists(),
    F("n").is_null(),
    F("n").is_not_null(),
    F("s").contains("x"),
    F("s").startswith("\x00"),
    F("s") == "a/b",
    F("s") > "\uffff",
    F("s") == "😀",
    F("s") != "zz",
    F("s").not_contains("q"),
    F("n") == [],
    F("n") == [1, 2, {"x": 1}],
    F("n") == [1, 2],
    F("n") == {"a": 2, "b": 1},
    F("") == [1, 2],
    F("") == "n",
    F("") == 123,
    F("n").contains(1),
    F("n").isin([1, 2, 3, 10]),
    F("n") == 5e-324,
    F("n") == 0.0,
    F("n") > 0,
    F(['a"b']) == 1,
    F("n") == 1e30,
    F("n") == 1.0,
    F("d.a.a.a").exists(),
    F("n") == 12345678901234567890.5,
    F("e").exists(),
    F("t").is_not_null(),
    F("b").exists(),
    ~F("n").exists(),
    (F("n") >= 1) & (F("n") <= 12) | F("s").exists(),
]


@pytest.mark.redis_only
@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_values_another_tool_wrote_match_as_the_reference_says(target: Target, codec: str) -> None:
    """Held: ~60 raw JSON texts (uint64, 1e400, -0, 1E2, escapes, \\u0000, lone surrogates,
    duplicate keys, 500 and 1100 levels, 1 MB strings, 4300-digit ints, invalid UTF-8,
    trailing garbage) and ~20 raw msgpack values (float32, uint64, non-minimal ints, int
    and bin keys, ext types, timestamps) agree with `query.matches` on what the codec
    decodes, in query and count; values no client decodes never match."""
    raw = JSON_RAW if codec == "json" else MSGPACK_RAW
    c = CODECS[codec]()
    readable: dict[str, Any] = {}
    for key, data in raw.items():
        with contextlib.suppress(DecodeError):
            readable[key] = c.decode(data)
    assert 0 < len(readable) < len(raw)
    group = _group()
    with target.raw() as r:
        r.hset(target.layout().data(group), mapping=raw)
    with _open(target, codec=codec) as state:
        for where in WHERE:
            node = query.decoded(c, where)
            expected = sorted(k for k, v in readable.items() if query.matches(node, v))
            got = [item.key for item in state.query(group, where, limit=1000).items]
            assert sorted(got) == expected, where
            assert state.count(group, where) == len(expected), where
            assert _pages(state, group, where, limit=4) == got, where


# -- the predicate's limits ------------------------------------------------------------------


def test_a_predicate_of_1000_nodes_runs_and_1001_is_refused(target: Target) -> None:
    group = _group()
    leaves = [F(f"p{i % 30}") != i for i in range(997)]
    with _open(target) as state:
        state.set_many(group, {f"k{i}": {f"p{i}": i, "n": i} for i in range(30)})
        where = query.All((query.AnyOf(tuple(leaves)), F("n") >= 0))  # 1 + 1 + 997 + 1 nodes
        assert state.count(group, where) == 30
        too_big = query.All((query.AnyOf(tuple(leaves)), F("n") >= 0, F("n") >= 0))
        with pytest.raises(InvalidInput, match="1000 nodes"):
            state.count(group, too_big)


@pytest.mark.parametrize("target", ["memory"], indirect=True)
def test_a_long_chain_of_ands_is_not_too_deep(target: Target) -> None:
    conditions = [F(f"p{i}") != i for i in range(40)]
    with _open(target) as state:
        state.set("g", "k", {"p0": 1})
        assert state.count("g", conditions) == 1  # the list form is accepted
        assert state.count("g", functools.reduce(operator.and_, conditions)) == 1


def test_a_16_mib_operand_is_carried_and_compared(target: Target) -> None:
    if target.name in ("file", "sqlite"):
        pytest.skip("a 16 MiB value written to disk: the in-memory reference suffices")
    group = _group()
    size = 16 * 1024 * 1024 - 64
    text = "x" * size
    with _open(target) as state:
        state.set_many(group, {"big": {"s": text}, "small": {"s": "x"}})
        assert state.count(group, F("s") == text) == 1
        assert state.count(group, F("s").startswith(text[:1024])) == 1
        # a substring search is plain (quadratic at worst, in one server call): capped
        with pytest.raises(InvalidInput, match="over 1024 characters"):
            state.count(group, F("s").contains(text[:1025]))
        assert state.count(group, F("s") != text) == 1
        with pytest.raises(InvalidInput, match="over the limit"):
            state.count(group, F("s") == text + "x" * 100)


@pytest.mark.parametrize("target", ["embedded", "redis"], indirect=True)
def test_limit_10000_pages_a_large_group_once(target: Target) -> None:
    group = _group()
    with _open(target) as state:
        state.set_many(group, {f"k{i:05}": {"n": i} for i in range(25_000)})
        pages: list[int] = []
        keys: list[str] = []
        cursor = None
        for _ in range(10):
            page = state.query(group, F("n") >= 0, limit=10_000, cursor=cursor)
            pages.append(len(page.items))
            keys += [item.key for item in page.items]
            if page.cursor is None:
                break
            cursor = page.cursor
        assert pages[:2] == [10_000, 10_000]
        assert sum(pages) == 25_000
        assert len(set(keys)) == 25_000
        assert state.count(group, F("n") < 12_345) == 12_345
        top = state.query(group, F("n") >= 0, order_by="n", descending=True, limit=10_000)
        assert [item.value["n"] for item in top.items] == list(range(24_999, 14_999, -1))
        state.clear(group)


# -- ACL ---------------------------------------------------------------------------------------


@pytest.fixture(params=["redis", "embedded"])
def server(request: pytest.FixtureRequest, servers: Servers) -> str:
    if request.param == "redis":
        return servers.redis()[0]
    return f"unix://{servers.embedded_socket()}?db=0"


def _as(url: str, name: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{name}:{password}@{rest}"


@pytest.fixture
def acl_user(server: str) -> Iterator[tuple[str, str, Any]]:
    """(server URL, key prefix, a function setting a fresh user's rule and giving its URL)."""
    prefix = f"h{uuid.uuid4().hex[:8]}:"
    admin = redis.Redis.from_url(server)
    name = f"hq-{uuid.uuid4().hex[:8]}"

    def with_rule(rule: str) -> str:
        command: Any = admin.execute_command  # redis-py's is untyped
        command("ACL", "SETUSER", name, "reset", "on", ">pw-q", *rule.split())
        return _as(server, name, "pw-q")

    try:
        with State.from_url(server, prefix=prefix, cleanup_interval=None) as full:
            full.set_many("g", {f"k{i}": {"n": i} for i in range(5)})
            full.set("g", "t", {"n": 9}, ttl=600)
        yield server, prefix, with_rule
    finally:
        admin.acl_deluser(name)
        admin.close()
        _purge(server, prefix)


READ_ONLY = "~* +@read +@scripting +@connection +time"


def test_a_read_only_user_queries_and_one_without_hscan_is_refused(
    acl_user: tuple[str, str, Any],
) -> None:
    _, prefix, with_rule = acl_user
    with State.from_url(with_rule(READ_ONLY), prefix=prefix, cleanup_interval=None) as ro:
        assert len(ro.query("g", F("n") >= 0).items) == 6
        assert ro.count("g") == 6
        assert sorted(ro.list_keys("g").keys) == ["k0", "k1", "k2", "k3", "k4", "t"]
        assert [i.key for i in ro.query("g", order_by="n", limit=2).items] == ["k0", "k1"]
    for command in ("hscan", "hmget", "zmscore", "pexpiretime", "time"):
        url = with_rule(f"{READ_ONLY} -{command}")
        with State.from_url(url, prefix=prefix, cleanup_interval=None) as limited:
            with pytest.raises(PermissionDenied) as refused:
                limited.query("g", F("n") >= 0)
            assert "pw-q" not in str(refused.value)
            assert "pw-q" not in repr(refused.value)


@pytest.mark.xfail(
    strict=True,
    reason="lua/query.lua checks no permission before its calls (the write scripts do, with "
    "redis.acl_check_cmd): Redis 7.0 reports a refusal inside a script without the command's "
    "name, so the PermissionDenied does not name HSCAN as the README's ACL section promises",
)
@pytest.mark.parametrize("server", ["redis"], indirect=True)
def test_a_refused_hscan_is_named(acl_user: tuple[str, str, Any]) -> None:
    _, prefix, with_rule = acl_user
    with (
        State.from_url(with_rule(f"{READ_ONLY} -hscan"), prefix=prefix) as limited,
        pytest.raises(PermissionDenied, match=r"(?i)hscan"),
    ):
        limited.query("g", F("n") >= 0)
