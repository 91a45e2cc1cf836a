"""lua/query.lua on real servers (Valkey 8.1 embedded, Redis 7.0, Cluster), called by EVALSHA:
the predicate evaluated in place against `query.matches`, the exact number rules, strings as
bytes, values no client can decode (never a match, never an error), expiries, versions, the
budget and the cursor loop, read-only.

The script is driven directly, not through `State.query`, so that each reply field, the budget
and values another tool wrote (escapes, whitespace, duplicate keys, non-minimal msgpack) are
checked at the script's own contract."""

from __future__ import annotations

import json
import math
import random
import struct
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motia_state import query, scripts
from motia_state.codecs import CODECS, Codec
from motia_state.errors import DecodeError
from motia_state.layout import KeyLayout
from motia_state.query import All, AnyOf, Check, Compare, Not, Predicate

from .conftest import Servers, Target

CODEC_NAMES = ("json", "msgpack")
NOPE = Check("isNull", ("nope",))  # holds for every value a client decodes


@dataclass
class Group:
    """One group's three keys on one server, and calls of the script on them."""

    r: Any
    keys: list[bytes]
    codec: str

    @property
    def codec_obj(self) -> Codec:
        return CODECS[self.codec]()

    def call_tokens(
        self,
        tokens: Sequence[bytes | str | int],
        *,
        cursor: str = "0",
        returned: Sequence[bytes] = (),
        count: int = 1000,
        budget: int = 1_000_000,
        wanted: int = 0,
        mode: str = "items",
        ro: bool = False,
    ) -> list[Any]:
        script = scripts.load("query", self.codec)
        marks = "".join(query.digest(k.decode()) for k in returned)  # keys already returned
        args = [cursor, marks, count, budget, wanted, mode, len(tokens), *tokens]
        command = "EVALSHA_RO" if ro else "EVALSHA"
        try:
            reply: list[Any] = self.r.execute_command(command, script.sha, 3, *self.keys, *args)
        except redis.exceptions.NoScriptError:
            self.r.script_load(script.text)
            reply = self.r.execute_command(command, script.sha, 3, *self.keys, *args)
        return reply

    def call(self, where: Predicate | None, **options: Any) -> list[Any]:
        return self.call_tokens(query.wire(where, self.codec_obj, 1 << 20), **options)

    def keys_of(self, where: Predicate | None) -> list[str]:
        """The keys matched, every page, each once."""
        reply = self.call(where)
        assert reply[0] == b"0"
        return sorted(k.decode() for k in reply[3::4])

    def store(self, values: dict[str, bytes]) -> None:
        self.r.delete(*self.keys)
        if values:
            self.r.hset(self.keys[0], mapping=values)


def _group(r: Any, layout: KeyLayout, codec: str, name: str = "g") -> Group:
    return Group(r, [layout.data(name), layout.versions(name), layout.expiries(name)], codec)


@pytest.fixture(params=["embedded", "redis"])
def server(request: pytest.FixtureRequest, servers: Servers) -> Iterator[tuple[Any, KeyLayout]]:
    """A standalone server (Valkey 8.1 or Redis 7.0) and a layout under a prefix of the test's."""
    if request.param == "embedded":
        url = f"unix://{servers.embedded_socket()}"
    else:
        url, _ = servers.redis()
    layout = KeyLayout(f"tq{uuid.uuid4().hex[:10]}:")
    with redis.Redis.from_url(url) as r:
        yield r, layout
        for key in r.scan_iter(match=layout.scan_pattern()):
            r.unlink(key)
        for key in r.scan_iter(match=layout.meta_root + b"*"):
            r.unlink(key)


def _encode(codec: str, value: Any) -> bytes:
    return CODECS[codec]().encode(value)


def _reference(codec: str, where: Predicate, stored: dict[str, bytes]) -> list[str]:
    """The keys `query.matches` selects among the values a client decodes."""
    c = CODECS[codec]()
    node = query.decoded(c, where)
    out = []
    for key, data in stored.items():
        try:
            value = c.decode(data)
        except DecodeError:
            continue
        if query.matches(node, value):
            out.append(key)
    return sorted(out)


# -- every operator, both codecs, on every Redis backend ----------------------------------

ORDERS: dict[str, Any] = {
    "a": {"status": "paid", "total": 120, "tags": ["vip", "eu"], "who": {"city": "Oslo"}},
    "b": {"status": "new", "total": 99.5, "tags": [], "who": {"city": "Rome"}, "note": None},
    "c": {"status": "void", "total": -3, "tags": ["eu", 7, [1]], "who": None},
    "d": {"status": "paid", "total": True, "note": "late"},
    "e": {"status": "Paid", "total": "120", "who": {"city": "Oslo", "zip": 150}},
    "f": [1, "paid", {"status": "paid"}],
    "g": "paid",
    "h": 120,
    "i": None,
}

CASES: list[tuple[Predicate, list[str]]] = [
    (Compare("eq", ("status",), "paid"), ["a", "d"]),
    (Compare("neq", ("status",), "paid"), ["b", "c", "e", "f", "g", "h", "i"]),
    (Compare("eq", ("total",), 120.0), ["a"]),
    (Compare("eq", ("total",), 1), []),  # true is not 1
    (Compare("gt", ("total",), 99.5), ["a"]),
    (Compare("gte", ("total",), 99.5), ["a", "b"]),
    (Compare("lt", ("total",), 100), ["b", "c"]),
    (Compare("lte", ("total",), -3), ["c"]),
    (Compare("gt", ("status",), "paid"), ["c"]),  # bytes: "Paid" < "new" < "paid" < "void"
    (Compare("lt", ("status",), "new"), ["e"]),
    (Compare("contains", ("tags",), "eu"), ["a", "c"]),
    (Compare("contains", ("tags",), [1]), ["c"]),
    (Compare("contains", ("status",), "ai"), ["a", "d", "e"]),
    (Compare("notContains", ("tags",), "eu"), ["b", "d", "e", "f", "g", "h", "i"]),
    (Compare("startsWith", ("status",), "pa"), ["a", "d"]),
    (Compare("endsWith", ("status",), "id"), ["a", "c", "d", "e"]),
    (Compare("startsWith", (), "pa"), ["g"]),
    (Compare("in", ("who", "city"), ["Rome", "Oslo"]), ["a", "b", "e"]),
    (Compare("in", ("total",), ["120", 99.5]), ["b", "e"]),
    (Compare("eq", ("who",), {"zip": 150, "city": "Oslo"}), ["e"]),
    (Compare("eq", (), [1, "paid", {"status": "paid"}]), ["f"]),
    (Compare("eq", (), 120.0), ["h"]),
    (Check("isNull", ("who",)), ["c", "d", "f", "g", "h", "i"]),
    (Check("isNotNull", ("note",)), ["d"]),
    (Check("exists", ("note",)), ["b", "d"]),
    (Check("isNull", ()), ["i"]),
    (Check("exists", ("who", "zip")), ["e"]),
    (All((Compare("eq", ("status",), "paid"), Compare("gt", ("total",), 100))), ["a"]),
    (AnyOf((Compare("eq", (), "paid"), Compare("eq", (), 120))), ["g", "h"]),
    (Not(Check("exists", ("status",))), ["f", "g", "h", "i"]),
    (All(()), sorted(ORDERS)),
    (AnyOf(()), []),
]


@pytest.mark.redis_only
@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_every_operator(target: Target, codec: str) -> None:
    """Each case's keys written out by hand, and `query.matches` agreeing (on Cluster too: the
    three keys share the group's slot)."""
    with target.raw() as r:
        g = _group(r, target.layout(), codec)
        stored = {k: _encode(codec, v) for k, v in ORDERS.items()}
        g.store(stored)
        for where, expected in CASES:
            assert _reference(codec, where, stored) == expected, where
            assert g.keys_of(where) == expected, where
        assert g.keys_of(None) == sorted(ORDERS)


# -- the exact rules, with values as other tools write them --------------------------------

# (stored JSON text, op, operand JSON text, expected)
JSON_EXACT: list[tuple[str, str, str, bool]] = [
    ("9223372036854775807", "lt", "9.223372036854775807e18", True),  # 2**63-1 < 2.0**63
    ("9223372036854775807", "eq", "9.223372036854775807e18", False),
    ("9223372036854775807", "eq", "9223372036854775807", True),
    ("9223372036854775807", "gt", "9223372036854775806", True),
    ("-9223372036854775808", "eq", "-9.223372036854775808e18", True),
    ("-9223372036854775808", "lt", "-9223372036854775807", True),
    ("-9223372036854775808", "gt", "-9.223372036854777e18", True),
    ("18446744073709551615", "eq", "18446744073709551615", True),  # 2**64-1, exact
    ("18446744073709551615", "gt", "18446744073709551614", True),
    ("18446744073709551615", "lt", "1.8446744073709552e19", True),  # < 2.0**64
    ("18446744073709551616", "eq", "1.8446744073709552e19", True),  # past uint64: exact still
    ("123456789012345678901234567890", "gt", "123456789012345678901234567889", True),
    ("123456789012345678901234567890", "gt", "1.2345678901234568e29", True),  # ...77877719597056
    ("-123456789012345678901234567890", "lt", "-1.2345678901234568e29", True),
    ("9007199254740993", "eq", "9007199254740992.0", False),  # 2**53+1 is no double
    ("9007199254740993", "gt", "9007199254740992.0", True),
    ("9007199254740992", "eq", "9007199254740992.0", True),
    ("1000000000000000", "lt", "1000000000000000.5", True),  # 16 digits: not a double's
    ("1000000000000000", "eq", "1000000000000000.5", False),
    ("1000000000000001", "gt", "1000000000000000.5", True),
    ("-1000000000000001", "lt", "-1000000000000000.5", True),
    ("-1000000000000000", "gt", "-1000000000000000.5", True),
    ("5e-324", "gt", "0", True),
    ("5e-324", "gt", "0.0", True),
    ("-5e-324", "lt", "0", True),
    ("0.30000000000000004", "gt", "0.3", True),
    ("0.30000000000000004", "eq", "0.3", False),
    ("0.1", "eq", "1e-1", True),
    ("-0.0", "eq", "0.0", True),
    ("-0.0", "eq", "0", True),
    ("-0", "eq", "0", True),
    ("-0", "lt", "0.0", False),
    ("1", "eq", "1.0", True),
    ("1.0", "eq", "1", True),
    ("100", "eq", "1E2", True),
    ("1e400", "gt", "1.7976931348623157e308", True),  # Python reads inf
    ("-1e400", "lt", "-1.7976931348623157e308", True),
    ("1.5", "gt", "1", True),
    ("0.5", "lt", "1", True),
    ("-1.5", "lt", "-1", True),
    ("true", "eq", "1", False),
    ("1", "eq", "true", False),
    ("false", "eq", "0", False),
    ("true", "gt", "0", False),
    ("true", "eq", "true", True),
    ("null", "eq", "null", True),
    ("null", "eq", "false", False),
    ("NaN", "eq", "1", False),
    ("NaN", "neq", "1", True),
    ("NaN", "lt", "1", False),
    ("NaN", "gte", "1", False),
    ("NaN", "lte", "1", False),
    ("Infinity", "gt", "1e308", True),
    ("-Infinity", "lt", "-1e308", True),
    ("[1, 2]", "eq", "[1.0, 2]", True),
    ("[1, 2]", "eq", "[2, 1]", False),
    ("[1]", "eq", "1", False),
    ('{"a": 1, "b": [2]}', "eq", '{"b": [2.0], "a": 1}', True),
    ('{"a": 1}', "eq", '{"a": 1, "b": 2}', False),
    ('{"a": 1, "b": 2}', "eq", '{"a": 1}', False),
    ('{"a": 1, "a": 2}', "eq", '{"a": 2}', True),  # the last of a repeated key, as decoders keep
    ("[[1], 2]", "contains", "[1]", True),
    ("[[1], 2]", "contains", "1", False),
    ("[true]", "contains", "1", False),
    ("[0.0]", "contains", "-0", True),
    ("2", "in", "[1, 2.0]", True),
    ("[2]", "in", "[[2.0]]", True),
    ("2", "in", "[]", False),
    ("true", "in", "[1]", False),
    ('""', "eq", '""', True),
    ('""', "contains", '""', True),
    ('"abc"', "endsWith", '""', True),
    ('"abc"', "startsWith", '"abcd"', False),
    ('"abc"', "endsWith", '"xabc"', False),
    ("[]", "eq", "{}", False),
    ("{}", "eq", "{}", True),
]


def _matches_raw(codec: str, stored: bytes, op: str, operand: bytes | None) -> bool:
    """The reference on the decoded texts."""
    c = CODECS[codec]()
    path: tuple[str, ...] = ()
    node: Predicate = Check(op, path) if operand is None else Compare(op, path, c.decode(operand))
    return query.matches(node, c.decode(stored))


@pytest.mark.parametrize("case", JSON_EXACT, ids=lambda c: f"{c[0]} {c[1]} {c[2]}")
def test_json_exactness(server: tuple[Any, KeyLayout], case: tuple[str, str, str, bool]) -> None:
    r, layout = server
    stored, op, operand, expected = case
    g = _group(r, layout, "json")
    g.store({"k": stored.encode()})
    reply = g.call_tokens([op, 0, operand.encode()])
    assert reply[3:4] == ([b"k"] if expected else [])


def _mp(fmt: str, *parts: Any) -> bytes:
    return struct.pack(">" + fmt, *parts)


# (stored msgpack bytes, op, operand msgpack bytes, expected); widths other tools may choose
MSGPACK_EXACT: list[tuple[bytes, str, bytes, bool]] = [
    (_mp("BQ", 0xCF, 2**64 - 1), "eq", _mp("BQ", 0xCF, 2**64 - 1), True),
    (_mp("BQ", 0xCF, 2**64 - 1), "gt", _mp("BQ", 0xCF, 2**64 - 2), True),
    (_mp("BQ", 0xCF, 2**64 - 1), "lt", _mp("Bd", 0xCB, 2.0**64), True),
    (_mp("Bq", 0xD3, -(2**63)), "eq", _mp("Bd", 0xCB, -(2.0**63)), True),
    (_mp("Bq", 0xD3, -(2**63)), "lt", _mp("Bq", 0xD3, -(2**63) + 1), True),
    (_mp("Bq", 0xD3, 2**63 - 1), "lt", _mp("Bd", 0xCB, 2.0**63), True),
    (_mp("Bq", 0xD3, 1), "eq", b"\x01", True),  # one int, any width
    (_mp("BQ", 0xCF, 1), "eq", _mp("Bb", 0xD0, 1), True),
    (_mp("Bh", 0xD1, -2), "eq", b"\xfe", True),
    (_mp("Bi", 0xD2, -70000), "lt", _mp("Bh", 0xD1, -32768), True),
    (_mp("BI", 0xCE, 4294967295), "eq", _mp("Bd", 0xCB, 4294967295.0), True),
    (_mp("Bf", 0xCA, 0.5), "eq", _mp("Bd", 0xCB, 0.5), True),  # float32, exactly
    (_mp("Bf", 0xCA, 0.1), "eq", _mp("Bd", 0xCB, 0.1), False),
    (_mp("Bf", 0xCA, 0.1), "gt", _mp("Bd", 0xCB, 0.1), True),
    (_mp("Bd", 0xCB, -0.0), "eq", b"\x00", True),
    (_mp("Bd", 0xCB, 5e-324), "gt", b"\x00", True),
    (_mp("Bd", 0xCB, math.nan), "eq", _mp("Bd", 0xCB, math.nan), False),
    (_mp("Bd", 0xCB, math.nan), "neq", _mp("Bd", 0xCB, math.nan), True),
    (_mp("Bd", 0xCB, math.nan), "lte", _mp("Bd", 0xCB, math.inf), False),
    (_mp("Bd", 0xCB, 1.0), "gte", _mp("Bd", 0xCB, math.nan), False),
    (_mp("Bd", 0xCB, math.inf), "gt", _mp("BQ", 0xCF, 2**64 - 1), True),
    (_mp("Bd", 0xCB, -math.inf), "lt", _mp("Bq", 0xD3, -(2**63)), True),
    (b"\xc3", "eq", b"\x01", False),  # true is not 1
    (b"\xc2", "eq", b"\x00", False),
    (b"\xc4\x02ab", "eq", b"\xc6\x00\x00\x00\x02ab", True),  # bin, any width
    (b"\xc4\x02ab", "eq", b"\xa2ab", False),  # bin is not str
    (b"\xa2ab", "eq", b"\xd9\x02ab", True),  # str, any width
    (b"\xc4\x02ab", "gt", b"\xc4\x01a", False),  # bin does not order
    (b"\xc4\x02ab", "contains", b"\xc4\x01a", False),
    (b"\x92\xc4\x01a\x01", "contains", b"\xc4\x01a", True),
    (b"\xd4\x01\x00", "eq", b"\xc4\x01\x00", False),  # an ext is no bin
    (b"\xd4\x01\x00", "eq", b"\xc7\x01\x01\x00", True),  # the same ext (no client sends one)
    (b"\xd4\x01\x00", "eq", b"\xd4\x02\x00", False),
    (b"\x81\xa1a\x01", "eq", b"\xdf\x00\x00\x00\x01\xda\x00\x01a\x01", True),
    (b"\x82\xa1a\x01\xa1a\x02", "eq", b"\x81\xa1a\x02", True),  # the last of a repeated key
    (b"\x81\xc4\x01a\x01", "eq", b"\x81\xa1a\x01", False),  # a bin key is not a str key
    (b"\xdc\x00\x02\x01\x02", "eq", b"\x92\x01\x02", True),
]


@pytest.mark.parametrize("case", MSGPACK_EXACT, ids=lambda c: f"{c[0].hex()} {c[1]} {c[2].hex()}")
def test_msgpack_exactness(
    server: tuple[Any, KeyLayout], case: tuple[bytes, str, bytes, bool]
) -> None:
    r, layout = server
    stored, op, operand, expected = case
    g = _group(r, layout, "msgpack")
    g.store({"k": stored})
    reply = g.call_tokens([op, 0, operand])
    assert reply[3:4] == ([b"k"] if expected else [])


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(
            ("json", s.encode(), op, o.encode(), e),
            id=f"json {s} {op} {o}",
        )
        for s, op, o, e in JSON_EXACT
    ]
    + [
        pytest.param(
            ("msgpack", s, op, o, e),
            id=f"msgpack {s.hex()} {op} {o.hex()}",
        )
        for s, op, o, e in MSGPACK_EXACT
    ],
)
def test_the_reference_agrees_on_the_exact_cases(case: tuple[str, bytes, str, bytes, bool]) -> None:
    """`query.matches` gives each exact case's written answer too (so the random comparisons
    below rest on it)."""
    codec, stored, op, operand, expected = case
    assert _matches_raw(codec, stored, op, operand) == expected


# (stored JSON text, path, op, operand, expected): escapes, whitespace, bytes order
JSON_STRINGS: list[tuple[str, tuple[str, ...], str, Any, bool]] = [
    (r'"caf\u00e9"', (), "eq", "café", True),
    (r'"\ud83d\ude00"', (), "eq", "😀", True),  # a surrogate pair, combined
    (r'"\ud83d\ude00"', (), "gt", "\uffff", True),  # bytes: F0.. > EF..
    (r'"a\"b"', (), "eq", 'a"b', True),
    (r'"a\\b"', (), "eq", "a\\b", True),
    (r'"\/"', (), "eq", "/", True),
    (r'"\u0070aid"', (), "startsWith", "pa", True),
    (r'"\u0070aid"', (), "contains", "ai", True),
    (r'"x\ty"', (), "contains", "\t", True),
    (r'"\u0000"', (), "gt", "", True),
    (r'"a\u0000"', (), "gt", "a", True),
    ('"B"', (), "lt", "a", True),  # bytes, not the server's locale
    ('"é"', (), "gt", "z", True),
    ('"Z"', (), "lt", "z", True),
    (r'"\ud800"', (), "lt", "\ue000", True),  # a lone surrogate (Python reads it) orders by code
    (r'"\ud800"', (), "gt", "\ud7ff", True),
    ('{"st\\u0061tus": "paid"}', ("status",), "eq", "paid", True),
    ('{"a\\"b": 1}', ('a"b',), "eq", 1, True),
    ('{"a": 1, "a": 2}', ("a",), "eq", 2, True),
    ('{"a": 1, "a": 2}', ("a",), "eq", 1, False),
    ('{"a": {"b": 1}, "a": {"c": 2}}', ("a", "b"), "exists", None, False),
    ('{"a":"b","a":"c"}', ("a",), "eq", "c", True),
    ('{"x": "\\"a\\":1", "a": 2}', ("a",), "eq", 2, True),
    ('{"x": "{\\"a\\": 1}"}', ("a",), "exists", None, False),
    ('{"x": ",\\"a\\":1"}', ("a",), "exists", None, False),
    ('{",":":x"}', (":",), "exists", None, False),  # a key of ':' spelled inside others
    ('{"x":"\\"","a":1}', ("a",), "eq", 1, True),
    ('{"x":"}","a":1}', ("a",), "eq", 1, True),
    ('{"x":"a\\"","a":1}', ("a",), "eq", 1, True),
    ('{"x":["a",{"a":2}],"a":1}', ("a",), "eq", 1, True),
    ('{"x":{"a":2}}', ("a",), "exists", None, False),
    ('{"x":[{"a":1}], "y": {"a": [1, {"a": 3}]}, "a": 4}', ("a",), "eq", 4, True),
    (' \n{ "a" :\t{ "b" : [ 1 , 2 ] } , "c" : "d" } \r\n', ("a", "b"), "eq", [1, 2], True),
    (' \n{ "a" :\t{ "b" : [ 1 , 2 ] } , "c" : "d" } \r\n', ("c",), "eq", "d", True),
    ('{"a": "x"}', ("a", "b"), "isNull", None, True),  # a path through a non-object
    ('{"a": [1]}', ("a", "0"), "exists", None, False),  # arrays are not walked
    ('{"a": null}', ("a",), "exists", None, True),
    ('{"a": null}', ("a",), "isNull", None, True),
    ('{"a": null}', ("a", "b"), "isNull", None, True),
    ('{"a": 1}', ("b",), "neq", 1, True),
    ('{"a": 1}', ("b",), "notContains", 1, True),
    ('{"a": 1}', ("b",), "eq", None, False),
    ('{"a": 1}', ("b",), "isNotNull", None, False),
    ('{"a": 1}', ("b",), "in", [None], False),
    ("[1]", ("a",), "isNull", None, True),
    ('{"é": {"😀": 1}}', ("é", "😀"), "eq", 1, True),
    ('{"\\u00e9": {"\\ud83d\\ude00": 1}}', ("é", "😀"), "eq", 1, True),
]


@pytest.mark.parametrize("case", JSON_STRINGS, ids=lambda c: f"{c[0]} {c[1]} {c[2]}")
def test_json_strings_and_paths(
    server: tuple[Any, KeyLayout], case: tuple[str, tuple[str, ...], str, Any, bool]
) -> None:
    r, layout = server
    stored, path, op, operand, expected = case
    where: Predicate = Check(op, path) if op in query.CHECKS else Compare(op, path, operand)
    data = stored.encode("utf-8", "surrogatepass")
    assert _reference("json", where, {"k": data}) == (["k"] if expected else [])
    g = _group(r, layout, "json")
    g.store({"k": data})
    assert g.keys_of(where) == (["k"] if expected else [])


def test_msgpack_keys(server: tuple[Any, KeyLayout]) -> None:
    """A bin key is no path segment; an int key no client decodes (strict_map_key); a key
    repeated: its last value; a key in a str8 header is the same key."""
    r, layout = server
    g = _group(r, layout, "msgpack")
    stored = {
        "bin": msgpack.packb({b"a": 1, "b": 2}, use_bin_type=True),
        "int": b"\x82\x01\x02\xa1a\x01",
        "nil": b"\x81\xc0\x01",
        "twice": b"\x83\xa1a\x03\xa1x\xa1a\xa1a\x04",  # {a: 3, x: "a", a: 4}
        "nested": b"\x82\xa1a\x81\xa1b\x01\xa1a\x81\xa1c\x02",  # {a: {b: 1}, a: {c: 2}}
        "wide": b"\x81\xd9\x01a\x05",
    }
    g.store(stored)
    for where, expected in [
        (Check("exists", ("a",)), ["nested", "twice", "wide"]),
        (Check("isNull", ("a",)), ["bin"]),
        (Compare("eq", ("b",), 2), ["bin"]),
        (Compare("neq", ("a",), 1), ["bin", "nested", "twice", "wide"]),
        (Compare("eq", ("a",), 4), ["twice"]),
        (Compare("eq", ("a",), 3), []),
        (Compare("eq", ("a",), 5), ["wide"]),
        (Check("exists", ("a", "b")), []),
        (Check("exists", ("a", "c")), ["nested"]),
    ]:
        assert _reference("msgpack", where, stored) == expected, where
        assert g.keys_of(where) == expected, where


# -- values no client decodes --------------------------------------------------------------

GARBAGE_JSON = [
    b"",
    b"hello",
    b'{"status": "paid"',
    b'{"status": "paid"} x',
    b'{"status": "paid",}',
    b'{"status" "paid"}',
    b'{status: "paid"}',
    b"[1, 2",
    b"[1 2]",
    b"01",
    b"1.",
    b".5",
    b"-",
    b"1e",
    b"+1",
    b"0x10",
    b"tru",
    b"nul",
    b"Nan",
    b"-NaN",
    b'"\\x41"',
    b'"\\u12"',
    b'"a\x01b"',
    b'"\xff"',
    b'"\xc3"',
    b'"\xed\xa0\x80"',  # a surrogate in UTF-8: strict decoders refuse it
    b'"\xc0\xaf"',  # an overlong
    b'"\xf4\x90\x80\x80"',  # past U+10FFFF
    b'\xef\xbb\xbf{"status": "paid"}',  # a BOM
    b'{"status": "paid"}\x00',
    b'{"a": 1}{"a": 1}',
    b"1" + b"0" * 4300,  # Python refuses ints of more than 4300 digits
    b"[" * 1025 + b"]" * 1025,
]
GOOD_JSON = [
    b'{"status": "paid"}',
    b' {"status":"paid"}\n',
    b"NaN",
    b"[Infinity, -Infinity]",
    b'"\\ud800"',
    b'"\x7f"',
    b"1" + b"0" * 4299,
    b"1" + b"0" * 5000 + b".5",
    b"[" * 1024 + b"]" * 1024,
    b'"\xf4\x8f\xbf\xbf"',
    b'"\xe2\x80\xa8"',
    b'{"a": "\\u0000"}',
]
GARBAGE_MSGPACK = [
    b"",
    b"\xc1",
    b"\x81\xa1a",
    b"\x81\xa1a\x01\x01",  # trailing bytes
    b"\xa3ab",
    b"\xdc\x00\x05\x01",
    b"\xdd\xff\xff\xff\xff",
    b"\xdf\xff\xff\xff\xff\xa1a",
    b"\x81\x01\x02",  # int key
    b"\x81\xc0\x02",  # nil key
    b"\x81\x91\x01\x02",  # array key
    b"\xa1\xff",
    b"\xa3\xed\xa0\x80",
    b"\xa2\xc0\xaf",
    b"\xd6\xff\x00\x00",  # a timestamp of the wrong length
    b"\xd7\xff" + b"\xff" * 8,  # nanoseconds past 999999999
    b"\xd7\xff" + struct.pack(">Q", 1000000000 << 34),
    b"\xc7\x0c\xff" + b"\x3b\x9a\xca\x00" + b"\x00" * 8,
    b"\xd4\x80\x00",  # a reserved ext type
    b"\xd4\xfe\x00",
    b"\x91" * 1025 + b"\x01",
]
GOOD_MSGPACK = [
    msgpack.packb({"status": "paid"}),
    b"\xd6\xff\x00\x00\x00\x01",
    b"\xd7\xff" + struct.pack(">Q", (999999999 << 34) | 5),
    b"\xc7\x0c\xff" + struct.pack(">Iq", 999999999, -5),
    b"\xd4\x01\x00",
    b"\xd4\x7f\x00",
    b"\x81\xc4\x01a\x01",
    b"\x91" * 1024 + b"\x01",
    b"\xa4\xf0\x9f\x98\x80",
    b"\xca\x7f\xc0\x00\x00",
]


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_values_no_client_decodes_never_match(server: tuple[Any, KeyLayout], codec: str) -> None:
    """Whatever the predicate (one true of every value included), and no error; the script
    decides as the client's codec does (each listed value is checked against it first)."""
    r, layout = server
    bad, good = (GARBAGE_JSON, GOOD_JSON) if codec == "json" else (GARBAGE_MSGPACK, GOOD_MSGPACK)
    c = CODECS[codec]()
    stored: dict[str, bytes] = {}
    for n, data in enumerate(bad):
        with pytest.raises(DecodeError):
            c.decode(data)
        stored[f"bad{n}"] = data
    for n, data in enumerate(good):
        c.decode(data)
        stored[f"good{n}"] = data
    g = _group(r, layout, codec)
    g.store(stored)
    wheres: list[Predicate] = [
        NOPE,
        Not(Check("exists", ("status",))),
        Compare("neq", ("status",), "x"),
        Compare("notContains", (), "x"),
        Compare("eq", ("status",), "paid"),
        Not(Compare("eq", (), None)),
        All(()),
    ]
    for where in wheres:
        assert g.keys_of(where) == _reference(codec, where, stored), where
    assert g.keys_of(NOPE) == sorted(f"good{n}" for n in range(len(good)))
    reply = g.call(NOPE, mode="count")
    assert reply[3] == len(good)
    # No predicate: every live item the client's codec decodes (as with a predicate)
    assert g.keys_of(None) == sorted(f"good{n}" for n in range(len(good)))


def _mutations(data: bytes, rng: random.Random) -> bytes:
    out = bytearray(data)
    for _ in range(rng.randint(1, 3)):
        choice = rng.randrange(4)
        at = rng.randrange(len(out) + 1)
        if choice == 0 and out:
            del out[min(at, len(out) - 1)]
        elif choice == 1:
            out.insert(at, rng.randrange(256))
        elif choice == 2 and out:
            out[min(at, len(out) - 1)] = rng.choice(b'"\\{}[],:01-.eE \x00\xc3\xa9\xff\x91\xa1')
        else:
            out[at:at] = out[rng.randrange(len(out) + 1) :][: rng.randrange(4)]
    return bytes(out)


@pytest.mark.parametrize("codec", CODEC_NAMES)
@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(seed=st.integers(0, 2**32 - 1))
def test_damaged_values_match_exactly_when_a_client_decodes_them(
    server: tuple[Any, KeyLayout], codec: str, seed: int
) -> None:
    """Random damage to values: the script's validation agrees with the client's codec."""
    r, layout = server
    rng = random.Random(seed)
    base = [
        {"status": "paid", "n": [1, 2.5, -3, None, True], "s": 'é"\\😀', "o": {"a": {}}},
        ["x", {"y": [False, 1e300, -0.0]}, 18446744073709551615],
        "a plain string",
        -9223372036854775808,
    ]
    stored: dict[str, bytes] = {}
    for n in range(24):
        value = rng.choice(base)
        if codec == "json":
            data = json.dumps(value, ensure_ascii=rng.random() < 0.5).encode()
        else:
            data = msgpack.packb(value, use_bin_type=True)
        stored[f"k{n}"] = _mutations(data, rng)
    g = _group(r, layout, codec)
    g.store(stored)
    assert g.keys_of(NOPE) == _reference(codec, NOPE, stored)


# -- random values as other tools write them, random predicates ---------------------------

KEYS_ = ("a", "b", "é", 'q"', "")
PATHS_: list[tuple[str, ...]] = [(), ("a",), ("b",), ("a", "b"), ("é",), ('q"',), ("a", "é")]
INT_EDGES = [0, 1, -1, 2**53, 2**53 + 1, 2**63 - 1, -(2**63), 2**63, 2**64 - 1]
FLOAT_EDGES = [0.0, -0.0, 5e-324, 0.1, 0.3, 0.30000000000000004, 1.0, 2.0**63, 2.0**64, 1e308]
TEXT_EDGES = ["", "a", "B", "b", "é", "😀", "\uffff", "\u2028", 'q"', "\\", "\x00", "ab"]


def _values(codec: str, operand: bool = False) -> st.SearchStrategy[Any]:
    """Values as stored (ints over int64 and uint64), or as operands the client's codec
    encodes (``operand``: ints within int64)."""
    top = 2**63 - 1 if operand else 2**64 - 1
    ints = st.one_of(
        st.sampled_from([i for i in INT_EDGES if i <= top]), st.integers(-(2**63), top)
    )
    floats = st.one_of(
        st.sampled_from(FLOAT_EDGES),
        # NaN and the infinities only where a stored msgpack value can hold them
        st.floats(
            allow_nan=codec == "msgpack" and not operand,
            allow_infinity=codec == "msgpack",
            width=64,
        ),
    )
    texts = st.one_of(
        st.sampled_from(TEXT_EDGES),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=4),
    )
    scalars: list[st.SearchStrategy[Any]] = [st.none(), st.booleans(), ints, floats, texts]
    if codec == "msgpack":
        scalars.append(st.binary(max_size=3))
    return st.recursive(
        st.one_of(*scalars),
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.sampled_from(KEYS_), inner, max_size=3),
        ),
        max_leaves=6,
    )


def _predicates(codec: str) -> st.SearchStrategy[Predicate]:
    paths = st.sampled_from([p for p in PATHS_ if "" not in p])
    texts = st.sampled_from(TEXT_EDGES)
    leaf = st.one_of(
        st.builds(
            Compare,
            st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "contains", "notContains"]),
            paths,
            _values(codec, operand=True),
        ),
        st.builds(Compare, st.sampled_from(["startsWith", "endsWith"]), paths, texts),
        st.builds(
            Compare, st.just("in"), paths, st.lists(_values(codec, operand=True), max_size=3)
        ),
        st.builds(Check, st.sampled_from(query.CHECKS), paths),
    )
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.builds(All, st.lists(inner, max_size=3).map(tuple)),
            st.builds(AnyOf, st.lists(inner, max_size=3).map(tuple)),
            st.builds(Not, inner),
        ),
        max_leaves=5,
    )


def _foreign_json(value: Any, rng: random.Random) -> bytes:
    """JSON as other writers spell it: escaped or raw non-ASCII, spaces, newlines."""
    indent = rng.choice([None, None, 0, 2])
    separators = rng.choice([(",", ":"), (", ", ": "), (" ,", " : ")])
    text = json.dumps(value, ensure_ascii=rng.random() < 0.5, indent=indent, separators=separators)
    return text.encode()


def _foreign_msgpack(value: Any, rng: random.Random) -> bytes:
    """msgpack with headers of random widths (all of them valid), floats as float32 where
    that is exact."""
    if value is None:
        return b"\xc0"
    if value is True or value is False:
        return b"\xc3" if value else b"\xc2"
    if isinstance(value, int):
        forms = []
        if 0 <= value < 128:
            forms.append(bytes([value]))
        if -32 <= value < 0:
            forms.append(struct.pack(">b", value))
        for code, fmt, lo, hi in [
            (0xCC, "B", 0, 2**8), (0xCD, "H", 0, 2**16), (0xCE, "I", 0, 2**32),
            (0xCF, "Q", 0, 2**64), (0xD0, "b", -(2**7), 2**7), (0xD1, "h", -(2**15), 2**15),
            (0xD2, "i", -(2**31), 2**31), (0xD3, "q", -(2**63), 2**63),
        ]:  # fmt: skip
            if lo <= value < hi:
                forms.append(bytes([code]) + struct.pack(">" + fmt, value))
        return rng.choice(forms)
    if isinstance(value, float):
        try:
            single = struct.pack(">f", value)
        except OverflowError:  # past float32's range
            single = b""
        if single and struct.unpack(">f", single)[0] == value and rng.random() < 0.5:
            return b"\xca" + single
        return b"\xcb" + struct.pack(">d", value)
    if isinstance(value, (str, bytes)):
        raw = value.encode() if isinstance(value, str) else value
        n = len(raw)
        if isinstance(value, str):
            forms = [b"\xd9" + struct.pack(">B", n)] if n < 256 else []
            forms += [b"\xda" + struct.pack(">H", n), b"\xdb" + struct.pack(">I", n)]
            if n < 32:
                forms.append(bytes([0xA0 + n]))
        else:
            forms = [b"\xc4" + struct.pack(">B", n), b"\xc5" + struct.pack(">H", n)]
            forms.append(b"\xc6" + struct.pack(">I", n))
        return rng.choice(forms) + raw
    if isinstance(value, list):
        n = len(value)
        heads = [b"\xdc" + struct.pack(">H", n), b"\xdd" + struct.pack(">I", n)]
        heads += [bytes([0x90 + n])] if n < 16 else []
        return rng.choice(heads) + b"".join(_foreign_msgpack(v, rng) for v in value)
    assert isinstance(value, dict)
    n = len(value)
    heads = [b"\xde" + struct.pack(">H", n), b"\xdf" + struct.pack(">I", n)]
    heads += [bytes([0x80 + n])] if n < 16 else []
    body = b"".join(_foreign_msgpack(k, rng) + _foreign_msgpack(v, rng) for k, v in value.items())
    return rng.choice(heads) + body


@pytest.mark.parametrize("codec", CODEC_NAMES)
@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_the_script_and_the_reference_agree(
    server: tuple[Any, KeyLayout], codec: str, data: st.DataObject
) -> None:
    """Random values (ints over int64 and uint64, awkward floats, escapes, bin) written as
    other tools write them, random predicate trees: the script selects what `query.matches`
    does, in items and in count mode."""
    r, layout = server
    values = data.draw(st.lists(_values(codec), min_size=1, max_size=10))
    wheres = data.draw(st.lists(_predicates(codec), min_size=1, max_size=3))
    rng = random.Random(data.draw(st.integers(0, 2**32 - 1)))
    write = _foreign_json if codec == "json" else _foreign_msgpack
    stored = {f"k{n}": write(v, rng) for n, v in enumerate(values)}
    g = _group(r, layout, codec)
    g.store(stored)
    for where in wheres:
        expected = _reference(codec, where, stored)
        assert g.keys_of(where) == expected, (where, stored)
        assert g.call(where, mode="count")[3] == len(expected)


# -- items: versions, expiries; paging and the budget --------------------------------------


def _server_ms(r: Any) -> int:
    seconds, micros = r.time()
    return int(seconds) * 1000 + int(micros) // 1000


@pytest.mark.redis_only
@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_items_carry_version_and_expiry_and_expired_ones_never_match(
    target: Target, codec: str
) -> None:
    with target.raw() as r:
        g = _group(r, target.layout(), codec)
        data, versions, expiries = g.keys
        g.store({k: _encode(codec, {"n": n}) for n, k in enumerate("abcde")})
        r.hset(versions, mapping={"a": 7, "b": 2})
        now = _server_ms(r)
        far = now + 3_600_000
        r.zadd(expiries, {"b": now - 1, "c": now - 60_000, "d": far})
        reply = g.call(Check("exists", ("n",)))
        assert reply[:3] == [b"0", b"0", 3]
        got = {reply[i]: reply[i + 1 : i + 4] for i in range(3, len(reply), 4)}
        assert got == {
            b"a": [_encode(codec, {"n": 0}), 7, None],
            b"d": [_encode(codec, {"n": 3}), 1, far],
            b"e": [_encode(codec, {"n": 4}), 1, None],
        }
        assert g.call(Check("exists", ("n",)), mode="count")[3] == 3
        assert g.call(None, mode="count")[3] == 3  # no predicate: still only the live
        # The group's own deadline (the data hash's expiry) bounds each item's, as get_item's.
        deadline = now + 60_000
        r.pexpireat(data, deadline)
        reply = g.call(Compare("gte", ("n",), 3))
        items = {reply[i]: reply[i + 3] for i in range(3, len(reply), 4)}
        assert items == {b"d": deadline, b"e": deadline}


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_a_page_of_thousands_of_matches(server: tuple[Any, KeyLayout], codec: str) -> None:
    """Expiries and versions are asked in chunks (unpack's limit): each match keeps its own."""
    r, layout = server
    g = _group(r, layout, codec)
    _, versions, expiries = g.keys
    n = 2600
    g.store({f"k{i:04}": _encode(codec, i) for i in range(n)})
    r.hset(versions, mapping={f"k{i:04}": i + 2 for i in range(0, n, 3)})
    now = _server_ms(r)
    r.zadd(expiries, {f"k{i:04}": (now - 1 if i % 7 == 0 else now + 10**6 + i) for i in range(n)})
    reply = g.call(Compare("gte", (), 0), count=10_000)
    assert reply[:2] == [b"0", b"0"]
    got = {reply[j]: tuple(reply[j + 1 : j + 4]) for j in range(3, len(reply), 4)}
    assert got == {
        b"k%04d" % i: (_encode(codec, i), i + 2 if i % 3 == 0 else 1, now + 10**6 + i)
        for i in range(n)
        if i % 7
    }
    assert g.call(Compare("gte", (), 0), count=10_000, mode="count")[3] == len(got)


def _simulate(
    r: Any, key: bytes, cursor: str, count: int, budget: int, wanted: int, match: Any
) -> tuple[str, str, list[bytes], list[bytes], int]:
    """The script's stopping rule, run with HSCAN from the client: (next cursor, last page's
    cursor, every field examined, the matches, the last page's size)."""
    examined: list[bytes] = []
    found: list[bytes] = []
    while True:
        page_cursor = cursor
        nxt, page = r.hscan(key, int(cursor), count=count)
        cursor = str(nxt)
        examined += list(page)
        found += [k for k, v in page.items() if match(k, v)]
        if cursor == "0" or len(examined) >= budget or (wanted and len(found) >= wanted):
            return cursor, page_cursor, examined, found, len(page)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_budget_and_wanted_stop_where_they_say(server: tuple[Any, KeyLayout], codec: str) -> None:
    """Each call stops after the page in which `budget` fields were examined or `wanted`
    matches found: exactly the pages HSCAN gives the client for the same cursor and COUNT. So a
    call examines at most budget - 1 + one page."""
    r, layout = server
    g = _group(r, layout, codec)
    g.store({f"k{n:04}": _encode(codec, {"n": n}) for n in range(3000)})
    assert r.object("encoding", g.keys[0]) == b"hashtable"
    where = Compare("lt", ("n",), 300)

    def match(_: bytes, v: bytes) -> bool:
        return bool(CODECS[codec]().decode(v)["n"] < 300)

    for count, budget, wanted in [(50, 1, 0), (50, 120, 0), (100, 1000, 5), (10, 10**6, 40)]:
        cursor, calls = "0", 0
        while cursor != "0" or calls == 0:
            expected = _simulate(r, g.keys[0], cursor, count, budget, wanted, match)
            reply = g.call(where, cursor=cursor, count=count, budget=budget, wanted=wanted)
            nxt, page_cursor = reply[0].decode(), reply[1].decode()
            assert (nxt, page_cursor) == expected[:2]
            assert reply[3::4] == expected[3]
            examined, last = len(expected[2]), expected[4]
            assert examined <= max(budget - 1, 0) + last
            assert last <= 2 * count + 8
            if wanted == 0:  # no predicate, count mode: every field examined is counted
                counted = g.call(None, cursor=cursor, count=count, budget=budget, mode="count")
                assert counted[:2] == reply[:2]
                assert counted[3] == examined
            cursor, calls = nxt, calls + 1
        assert calls > 1
    # At the boundaries: a budget (or wanted) reached exactly by a page stops after it.
    half = Compare("lt", ("n",), 1500)

    def halves(_: bytes, v: bytes) -> bool:
        return bool(CODECS[codec]().decode(v)["n"] < 1500)

    c1, p1 = r.hscan(g.keys[0], 0, count=50)
    _, p2 = r.hscan(g.keys[0], c1, count=50)
    m1 = sum(map(halves, p1, p1.values()))
    assert m1 > 0
    for budget, wanted in [
        (len(p1), 0),
        (len(p1) + 1, 0),
        (len(p1) + len(p2), 0),
        (10**6, m1),
        (10**6, m1 + 1),
    ]:
        expected = _simulate(r, g.keys[0], "0", 50, budget, wanted, halves)
        reply = g.call(half, count=50, budget=budget, wanted=wanted)
        assert [reply[0].decode(), reply[1].decode()] == list(expected[:2]), (budget, wanted)
        assert reply[3::4] == expected[3]
    assert _simulate(r, g.keys[0], "0", 50, len(p1), 0, halves)[0] == str(c1)


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_every_item_once_through_the_cursor_loop(server: tuple[Any, KeyLayout], codec: str) -> None:
    """5,000 items, no writes meanwhile: resuming at the last page's cursor with a skip (a
    limit that cuts pages) returns each match once, and all of them; count mode agrees."""
    r, layout = server
    g = _group(r, layout, codec)
    g.store({f"k{n:04}": _encode(codec, {"n": n, "odd": n % 2 == 1}) for n in range(5000)})
    where = Compare("eq", ("odd",), True)
    for limit in (1, 7, 333):
        cursor, returned, seen = "0", [], []
        calls = 0
        while True:
            assert calls <= 2500 * 2, "the loop does not end"  # a lost skip repeats forever
            reply = g.call(
                where, cursor=cursor, returned=returned, count=200, budget=600, wanted=limit
            )
            calls += 1
            keys = reply[3::4]
            if len(keys) > limit:  # the cut falls in the last page: resume inside it
                from_page = keys[:limit][len(keys) - reply[2] :]
                returned = (returned if reply[1].decode() == cursor else []) + from_page
                cursor = reply[1].decode()
                keys = keys[:limit]
            else:
                cursor, returned = reply[0].decode(), []
            seen += keys
            if cursor == "0" and not returned:
                break
        assert len(seen) == len(set(seen)) == 2500, limit
        assert sorted(seen) == [b"k%04d" % n for n in range(1, 5000, 2)]
        assert calls >= 2500 // limit
    total, cursor = 0, "0"
    while True:
        reply = g.call(where, cursor=cursor, count=200, budget=600, mode="count")
        total += reply[3]
        cursor = reply[0].decode()
        if cursor == "0":
            break
    assert total == 2500


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_a_small_hash_is_one_page_and_skip_resumes_inside_it(
    server: tuple[Any, KeyLayout], codec: str
) -> None:
    """A listpack hash comes back whole from HSCAN whatever COUNT says: one page; the matches
    already returned are left out by key, and page_matches counts what is left."""
    r, layout = server
    g = _group(r, layout, codec)
    g.store({f"k{n:02}": _encode(codec, n) for n in range(60)})
    assert r.object("encoding", g.keys[0]) == b"listpack"
    where = Compare("gte", (), 10)
    full = g.call(where, count=1, budget=1, wanted=1)
    assert full[:3] == [b"0", b"0", 50]
    assert len(full[3::4]) == 50
    first = full[3::4][:45]
    rest = g.call(where, returned=first, count=1, budget=1, wanted=1)
    assert rest[:3] == [b"0", b"0", 5]
    assert rest[3::4] == full[3::4][45:]
    assert g.call(where, returned=first, mode="count")[2:] == [5, 5]
    assert g.call(where, returned=full[3::4])[:3] == [b"0", b"0", 0]


def test_a_missing_group_is_done_at_once(server: tuple[Any, KeyLayout]) -> None:
    r, layout = server
    g = _group(r, layout, "json")
    g.store({})
    assert g.call(NOPE) == [b"0", b"0", 0]
    assert g.call(NOPE, mode="count") == [b"0", b"0", 0, 0]


# -- read only, refusals -------------------------------------------------------------------


@pytest.mark.parametrize("codec", CODEC_NAMES)
def test_it_runs_read_only(server: tuple[Any, KeyLayout], codec: str) -> None:
    """EVALSHA_RO: the server refuses any write command the script would call."""
    r, layout = server
    g = _group(r, layout, codec)
    g.store({f"k{n}": _encode(codec, {"n": n}) for n in range(300)})
    r.zadd(g.keys[2], {"k1": _server_ms(r) + 60_000, "k2": 1})
    r.hset(g.keys[1], "k3", 5)
    for mode in ("items", "count"):
        reply = g.call(Compare("lt", ("n",), 10), mode=mode, count=50, budget=100, ro=True)
        assert reply[0] != b""


def test_malformed_tokens_and_modes_raise(server: tuple[Any, KeyLayout]) -> None:
    """The client never sends these; the script says so rather than guessing."""
    r, layout = server
    g = _group(r, layout, "json")
    g.store({"k": b"1"})
    bad: list[tuple[list[bytes | str | int], str]] = [
        (["eq", "0"], "malformed"),  # no operand
        (["eq", "0", b"1", b"extra"], "malformed"),
        (["nope", "0"], "unknown predicate"),
        (["and", "2", "exists", "0"], "malformed"),
        (["eq", "1", b"1", b"1"], "malformed"),  # a segment that is no string
        (["eq", "1", b'"a"', b"1 2"], "malformed"),
    ]
    for tokens, message in bad:
        with pytest.raises(redis.exceptions.ResponseError, match=message):
            g.call_tokens(tokens)
    with pytest.raises(redis.exceptions.ResponseError, match="mode"):
        g.call_tokens([], mode="keys")
