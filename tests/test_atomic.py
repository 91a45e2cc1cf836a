"""Atomic operations: increment and lossless update ops, on every backend, sync and async."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motia_state import (
    IntegerOverflow,
    Op,
    State,
    UpdateFailed,
    VersionConflict,
    updates,
)

from .conftest import Servers, Target


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
