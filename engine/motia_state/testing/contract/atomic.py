"""Atomic operations: increment and lossless update ops, exact to the last digit and bit."""

from __future__ import annotations

import math
from typing import Any

import orjson
import pytest

from motia_state import (
    IntegerOverflow,
    InvalidUpdate,
    NotANumber,
    Op,
    UpdateFailed,
    VersionConflict,
)
from motia_state.testing import requires

from .values import with_codec

LOSSLESS: dict[str, Any] = {
    "floats": [0.30000000000000004, 5e-324, 1e308, -0.0, 1e16, 1e-05, 123.0],
    "ints": [2**63 - 1, -(2**63), 0, 1234567890123456789],
    "empty": {"list": [], "dict": {}},
    "strings": ["a/b", 'quote " and \\ backslash', "\x00\x01\x1f\n\t", "😀 \U0010ffff", "\u2028"],
    "order": {"z": 1, "a": 2, "m": {"y": 1, "b": 2}},
    "nested": [[[]], [{}], {"a": [{"b": []}]}],
}


@requires("versions")
def test_increment(state: Any) -> None:
    assert state.increment("counters", "n") == 1
    assert state.increment("counters", "n", 41) == 42
    assert state.increment("counters", "n", -50) == -8
    assert state.get_item("counters", "n").version == 3
    assert state.increment("counters", "f", 0.1) == 0.1
    assert state.increment("counters", "f", 0.2) == 0.30000000000000004
    assert isinstance(state.increment("counters", "mixed", 2), int)
    assert state.increment("counters", "mixed", 0.5) == 2.5


@requires("versions")
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


@requires("versions")
@pytest.mark.parametrize("value", ["text", None, [1], {"a": 1}, True])
def test_increment_of_a_non_number_changes_nothing(state: Any, value: Any) -> None:
    state.set("c", "k", value)
    with pytest.raises(NotANumber) as info:
        state.increment("c", "k")
    assert isinstance(info.value, UpdateFailed)
    assert state.get_item("c", "k").value == value
    assert state.get_item("c", "k").version == 1


@requires("versions")
@pytest.mark.parametrize("by", [True, "1", math.nan, math.inf, 2**63, None])
def test_bad_amounts(state: Any, by: Any) -> None:
    with pytest.raises(InvalidUpdate):
        state.increment("c", "k", by)
    assert state.list_groups() == []


@requires("versions")
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


@requires("versions")
def test_update_of_a_missing_item_starts_empty(state: Any) -> None:
    assert state.update("g", "new", [Op.set("a.b", 1)]) == {"a": {"b": 1}}
    assert state.get_item("g", "new").version == 1
    assert state.update("g", "root", [Op.set("", [1, 2])]) == [1, 2]
    assert state.update("g", "root", [Op.append("", 3)]) == [1, 2, 3]


@requires("versions")
def test_update_with_version(state: Any) -> None:
    state.set("g", "k", {"n": 1})
    with pytest.raises(VersionConflict):
        state.update("g", "k", [Op.increment("n")], version=7)
    assert state.update("g", "k", [Op.increment("n")], version=1) == {"n": 2}
    with pytest.raises(VersionConflict):
        state.update("g", "absent", [Op.set("a", 1)], version=1)
    assert state.update("g", "absent", [Op.set("a", 1)], version=0) == {"a": 1}


@requires("versions")
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


@requires("versions")
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


@requires("versions")
def test_update_result_over_the_size_limit(open_state: Any) -> None:
    state = open_state(max_value_bytes=100)
    state.set("g", "k", {"a": "x" * 50})
    with pytest.raises(UpdateFailed, match="too_large"):
        state.update("g", "k", [Op.set("b", "y" * 50)])
    assert state.get("g", "k") == {"a": "x" * 50}


@requires("versions")
def test_untouched_parts_come_back_exactly(state: Any) -> None:
    state.set("g", "k", LOSSLESS)
    new = state.update("g", "k", [Op.set("added", 1), Op.increment("counter", 1)])
    assert orjson.dumps({k: new[k] for k in LOSSLESS}) == orjson.dumps(LOSSLESS)
    for a, b in zip(new["floats"], LOSSLESS["floats"], strict=True):
        assert repr(a) == repr(b)
    assert list(new) == [*LOSSLESS, "added", "counter"]


@requires("versions")
def test_msgpack_updates_are_exact(open_state: Any) -> None:
    state = with_codec(open_state, "msgpack")
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
