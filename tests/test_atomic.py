"""Atomic operations: increment and lossless update ops, on every backend, sync and async."""

from __future__ import annotations

import json
import math
import multiprocessing
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motia_state import (
    IntegerOverflow,
    InvalidUpdate,
    NotANumber,
    Op,
    State,
    UpdateFailed,
    VersionConflict,
    updates,
)

from .conftest import Servers, Target

LOSSLESS = {
    "floats": [0.30000000000000004, 5e-324, 1e308, -0.0, 1e16, 1e-05, 123.0],
    "ints": [2**63 - 1, -(2**63), 0, 1234567890123456789],
    "empty": {"list": [], "dict": {}},
    "strings": ["a/b", 'quote " and \\ backslash', "\x00\x01\x1f\n\t", "😀 \U0010ffff", "\u2028"],
    "order": {"z": 1, "a": 2, "m": {"y": 1, "b": 2}},
    "nested": [[[]], [{}], {"a": [{"b": []}]}],
}


def test_increment(state: Any) -> None:
    assert state.increment("counters", "n") == 1
    assert state.increment("counters", "n", 41) == 42
    assert state.increment("counters", "n", -50) == -8
    assert state.get_item("counters", "n").version == 3
    assert state.increment("counters", "f", 0.1) == 0.1
    assert state.increment("counters", "f", 0.2) == 0.30000000000000004
    assert isinstance(state.increment("counters", "mixed", 2), int)
    assert state.increment("counters", "mixed", 0.5) == 2.5


def test_increment_stays_exact_to_the_int64_edge(state: Any) -> None:
    state.set("c", "big", 2**63 - 2)
    assert state.increment("c", "big") == 2**63 - 1
    with pytest.raises(IntegerOverflow):
        state.increment("c", "big")
    assert state.get_item("c", "big").value == 2**63 - 1
    assert state.get_item("c", "big").version == 2
    state.set("c", "small", -(2**63) + 1)
    assert state.increment("c", "small", -1) == -(2**63)
    with pytest.raises(IntegerOverflow):
        state.increment("c", "small", -1)


@pytest.mark.parametrize("value", ["text", None, [1], {"a": 1}, True])
def test_increment_of_a_non_number_changes_nothing(state: Any, value: Any) -> None:
    state.set("c", "k", value)
    with pytest.raises(NotANumber) as info:
        state.increment("c", "k")
    assert isinstance(info.value, UpdateFailed)
    assert state.get_item("c", "k").value == value
    assert state.get_item("c", "k").version == 1


@pytest.mark.parametrize("by", [True, "1", math.nan, math.inf, 2**63, None])
def test_bad_amounts(state: Any, by: Any) -> None:
    with pytest.raises(InvalidUpdate):
        state.increment("c", "k", by)
    assert state.list_groups() == []


def test_update_ops(state: Any) -> None:
    state.set("orders", "o1", {"status": "new", "count": 1, "tags": ["a"]})
    new = state.update(
        "orders",
        "o1",
        [
            Op.set("status", "paid"),
            Op.increment("count", 2),
            Op.decrement("count"),
            Op.append("tags", "b"),
            Op.merge("meta", {"by": "ada"}),
            Op.set(["deep", "er", "still"], []),
            Op.remove("nope"),
            {"type": "increment", "path": "stats.views", "by": 5},
        ],
    )
    expected = {
        "status": "paid",
        "count": 2,
        "tags": ["a", "b"],
        "meta": {"by": "ada"},
        "deep": {"er": {"still": []}},
        "stats": {"views": 5},
    }
    assert new == expected
    assert state.get("orders", "o1") == expected
    assert list(state.get("orders", "o1")) == list(expected)  # key order
    assert state.get_item("orders", "o1").version == 2
    assert state.update("orders", "o1", [Op.remove("stats"), Op.remove(["deep"])]) == {
        k: v for k, v in expected.items() if k not in ("stats", "deep")
    }


def test_update_of_a_missing_item_starts_empty(state: Any) -> None:
    assert state.update("g", "new", [Op.set("a.b", 1)]) == {"a": {"b": 1}}
    assert state.get_item("g", "new").version == 1
    assert state.update("g", "root", [Op.set("", [1, 2])]) == [1, 2]
    assert state.update("g", "root", [Op.append("", 3)]) == [1, 2, 3]


def test_update_with_version(state: Any) -> None:
    state.set("g", "k", {"n": 1})
    with pytest.raises(VersionConflict):
        state.update("g", "k", [Op.increment("n")], version=7)
    assert state.update("g", "k", [Op.increment("n")], version=1) == {"n": 2}
    with pytest.raises(VersionConflict):
        state.update("g", "absent", [Op.set("a", 1)], version=1)
    assert state.update("g", "absent", [Op.set("a", 1)], version=0) == {"a": 1}


@pytest.mark.parametrize(
    ("ops", "error", "code", "index"),
    [
        ([Op.set("a", 1), Op.increment("s")], "NotANumber", "not_number", 1),
        ([Op.merge("s", {"x": 1})], "UpdateFailed", "not_object", 0),
        ([Op.set("z", 1), Op.append("s", 1)], "UpdateFailed", "not_array", 1),
        ([Op.set("s.x", 1)], "UpdateFailed", "path_not_object", 0),
        ([Op.set("l", 1), Op.increment("big")], "IntegerOverflow", "overflow", 1),
    ],
)
def test_a_failing_op_applies_nothing(
    state: Any, ops: list[dict[str, Any]], error: str, code: str, index: int
) -> None:
    before = {"s": "text", "big": 2**63 - 1, "n": 1}
    state.set("g", "k", before)
    with pytest.raises(UpdateFailed) as info:
        state.update("g", "k", ops)
    assert type(info.value).__name__ == error
    assert (info.value.code, info.value.op_index) == (code, index)
    assert info.value.op == ops[index]
    assert state.get_item("g", "k").value == before
    assert state.get_item("g", "k").version == 1


@pytest.mark.parametrize(
    "ops",
    [
        {"type": "set", "path": "a", "value": 1},
        [{"type": "bogus", "path": "a"}],
        [{"path": "a", "value": 1}],
        [Op.set(".".join(["p"] * 33), 1)],
        [Op.set("x" * 257, 1)],
        [Op.set("a.__proto__.b", 1)],
        [Op.set(["constructor"], 1)],
        [Op.set("a..b", 1)],
        [Op.remove("")],
        [{"type": "merge", "path": "a", "value": [1]}],
        [{"type": "set", "path": "a"}],
        [],
        ["set"],
    ],
    ids=repr,
)
def test_invalid_ops_are_refused_before_anything_is_sent(state: Any, ops: Any) -> None:
    with pytest.raises(InvalidUpdate):
        state.update("g", "k", ops)
    assert state.list_groups() == []


def test_update_result_over_the_size_limit(open_state: Any) -> None:
    state = open_state(max_value_bytes=100)
    state.set("g", "k", {"a": "x" * 50})
    with pytest.raises(UpdateFailed, match="too_large"):
        state.update("g", "k", [Op.set("b", "y" * 50)])
    assert state.get("g", "k") == {"a": "x" * 50}


def test_untouched_parts_come_back_exactly(state: Any) -> None:
    state.set("g", "k", LOSSLESS)
    new = state.update("g", "k", [Op.set("added", 1), Op.increment("counter", 1)])
    assert orjson.dumps({k: new[k] for k in LOSSLESS}) == orjson.dumps(LOSSLESS)
    for a, b in zip(new["floats"], LOSSLESS["floats"], strict=True):
        assert repr(a) == repr(b)
    assert list(new) == [*LOSSLESS, "added", "counter"]


def test_msgpack_updates_are_exact(open_state: Any, target: Target) -> None:
    if target.name == "file":
        pytest.skip("the file backend is JSON only")
    state = open_state(codec="msgpack")
    value = {
        **LOSSLESS,
        "raw": b"\x00\xff",
        "nan": math.nan,
        "inf": -math.inf,
        "n": 2**63 - 2,
        "f": 0.1,
        "neg": -(2**63) + 1,
        "small": -33,
    }
    state.set("g", "k", value)
    new = state.update(
        "g",
        "k",
        [
            Op.increment("n"),
            Op.increment("f", 0.2),
            Op.decrement("neg"),
            Op.increment("small", -100),
            Op.set("added", [1.5, -0.0, None]),
        ],
    )
    assert new["n"] == 2**63 - 1
    assert new["f"] == 0.30000000000000004
    assert new["neg"] == -(2**63)
    assert new["small"] == -133
    assert repr(new["added"][1]) == "-0.0"
    assert math.isnan(new["nan"])
    assert new["raw"] == b"\x00\xff"
    untouched = {k: new[k] for k in LOSSLESS}
    assert orjson.dumps(untouched) == orjson.dumps(LOSSLESS)
    assert list(new) == [*value, "added"]
    with pytest.raises(IntegerOverflow):
        state.update("g", "k", [Op.increment("n")])
    assert state.increment("g", "counter", 2**62) == 2**62
    assert state.increment("g", "counter", 2**62 - 1) == 2**63 - 1


@pytest.mark.redis_only
def test_stored_text_is_kept_byte_for_byte(state: Any, target: Target) -> None:
    """Text written by another tool keeps its own spelling wherever no op touched it."""
    foreign = '{"pi":3.141592653589793,"e":1E5,"s":"a\\/b \\u00e9","l":[ ],"o":{ },"n":1.50}'
    with target.raw() as r:
        r.hset(target.layout().data("g"), "k", foreign)
    state.update("g", "k", [Op.increment("n", 1), Op.set("new", "x")])
    with target.raw() as r:
        stored = r.hget(target.layout().data("g"), "k")
    assert stored == (
        b'{"pi":3.141592653589793,"e":1E5,"s":"a\\/b \\u00e9","l":[],"o":{},"n":2.5,"new":"x"}'
    )
    with target.raw() as r:
        r.hset(target.layout().data("g"), "bad", "not json")
    with pytest.raises(UpdateFailed, match="not_decodable"):
        state.update("g", "bad", [Op.set("a", 1)])


# -- the server's semantics are Python's ------------------------------------------------

segments = st.sampled_from(["a", "b", "c", "é", "x/y"])
paths = st.lists(segments, max_size=3)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=4),
)
values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=3) | st.dictionaries(segments, c, max_size=3),
    max_leaves=8,
)
amounts = st.integers(-(2**40), 2**40) | st.floats(-1e6, 1e6, allow_nan=False)
op_strategy = st.one_of(
    st.builds(Op.set, paths, values),
    st.builds(Op.increment, paths, amounts),
    st.builds(Op.decrement, paths, amounts),
    st.builds(Op.remove, st.lists(segments, min_size=1, max_size=3)),
    st.builds(Op.merge, paths, st.dictionaries(segments, values, max_size=3)),
    st.builds(Op.append, paths, values),
)


def _expected(start: Any, ops: list[dict[str, Any]]) -> Any:
    try:
        return updates.apply(json.loads(json.dumps(start)), updates.parse(ops))
    except UpdateFailed as exc:
        return (exc.code, exc.op_index)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(start=values, ops=st.lists(op_strategy, min_size=1, max_size=5))
def test_server_applies_ops_as_python_does(
    servers: Servers, codec: str, start: Any, ops: Any
) -> None:
    url, _ = servers.redis()
    with State.from_url(url, prefix="prop:", codec=codec) as state:
        state.set("g", "k", start)
        try:
            got = state.update("g", "k", ops)
        except UpdateFailed as exc:
            got = (exc.code, exc.op_index)
        expected = _expected(start, ops)
        assert orjson.dumps(got) == orjson.dumps(expected)
        if not isinstance(expected, tuple):
            assert orjson.dumps(state.get("g", "k")) == orjson.dumps(expected)
        state.clear("g")


# -- contention across processes ------------------------------------------------------


def _hammer(url: str, options: dict[str, Any], how: str, n: int) -> None:
    with State.from_url(url, **options) as state:
        for _ in range(n):
            if how == "increment":
                state.increment("hot", "counter")
            elif how == "update":
                state.update("hot", "doc", [Op.increment("count")])
            else:  # a client-side compare-and-set loop
                while True:
                    item = state.get_item("hot", "cas")
                    try:
                        if item is None:
                            state.set("hot", "cas", 1, version=0)
                        else:
                            state.set("hot", "cas", item.value + 1, version=item.version)
                        break
                    except VersionConflict:
                        continue


@pytest.mark.parametrize("how", ["increment", "update", "cas"])
def test_four_processes_on_one_key_lose_nothing(target: Target, how: str, tmp_path: Path) -> None:
    if target.name == "memory":
        pytest.skip("memory:// lives in one process")
    per_process = 2500 if target.is_redis else 100
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_hammer, args=(target.url, target.options, how, per_process))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)
        assert p.exitcode == 0
    with State.from_url(target.url, **target.options) as state:
        key = {"increment": "counter", "update": "doc", "cas": "cas"}[how]
        item = state.get_item("hot", key)
        value = item.value["count"] if how == "update" else item.value
        assert value == 4 * per_process
        assert item.version == 4 * per_process


@pytest.mark.redis_only
def test_stored_msgpack_is_kept_byte_for_byte(open_state: Any, target: Target) -> None:
    """Encodings Python would not choose (float32, a wide int) survive untouched, exactly."""
    import msgpack

    state = open_state(codec="msgpack")
    foreign = (
        b"\x84"  # map of 4
        + msgpack.packb("f32")
        + b"\xca\x3f\xc0\x00\x00"  # 1.5 as float32
        + msgpack.packb("wide")
        + b"\xd3\x00\x00\x00\x00\x00\x00\x00\x07"  # 7 as int64
        + msgpack.packb("u64")
        + b"\xcf\xff\xff\xff\xff\xff\xff\xff\xff"  # 2**64 - 1
        + msgpack.packb("n")
        + b"\x01"
    )
    with target.raw() as r:
        r.hset(target.layout().data("g"), "k", foreign)
    assert state.update("g", "k", [Op.increment("n")]) == {
        "f32": 1.5,
        "wide": 7,
        "u64": 2**64 - 1,
        "n": 2,
    }
    with target.raw() as r:
        assert r.hget(target.layout().data("g"), "k") == foreign[:-1] + b"\x02"
    assert state.update("g", "k", [Op.increment("wide", 1), Op.increment("f32", 1)])["f32"] == 2.5
    with target.raw() as r:
        stored = r.hget(target.layout().data("g"), "k")
    assert b"\x08" in stored  # 8 written as Python writes it: a one-byte fixint
    assert msgpack.unpackb(stored)["wide"] == 8
    with pytest.raises(IntegerOverflow):
        state.update("g", "k", [Op.increment("u64")])
