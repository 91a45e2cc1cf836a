"""Values come back exactly as they went in: the codecs on their own, and what only Redis can
show (values another tool wrote). The round trips through every backend are exported with the
contract suite (motia_state/testing/contract/values.py)."""

from __future__ import annotations

import json
import math
import re
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motia_state import (
    AsyncState,
    DecodeError,
    EncodeError,
    InvalidInput,
    JsonCodec,
    MsgpackCodec,
    State,
    Undecodable,
)

from .conftest import Target


@pytest.mark.parametrize("api", [State, AsyncState])
def test_the_file_backend_refuses_msgpack_at_once(api: Any, tmp_path: Path) -> None:
    """The contract suite skips its msgpack tests where a backend refuses the codec; file://
    must refuse it when opened, saying which codec it takes, and write nothing."""
    path = tmp_path / "s.json"
    with pytest.raises(InvalidInput, match="codec='json'"):
        api.from_url(f"file://{path}", codec="msgpack")
    assert not path.exists()


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_codecs_round_trip_any_json_value(value: Any) -> None:
    for codec in (JsonCodec(), MsgpackCodec()):
        back = codec.decode(codec.encode(value))
        assert json.dumps(back) == json.dumps(value)


@pytest.mark.parametrize(
    "value",
    [
        {1, 2},
        object(),
        (1, 2),
        {1: "int key"},
        2**63,
        -(2**63) - 1,
        10**30,
        b"bytes",
        "\ud800 lone surrogate",
        [[[[{"deep": float("nan")}]]]],
    ],
    ids=repr,
)
def test_json_refuses_what_it_cannot_give_back(value: Any) -> None:
    with pytest.raises(EncodeError):
        JsonCodec().encode(value)


# Anything at all, hostile leaves included: the batch path (set_many) must take and refuse
# exactly what the walk does, with the walk's message.
_leaves = (
    json_values
    | st.integers()
    | st.floats()
    | st.binary(max_size=4)
    | st.sampled_from([(1, 2), {1, 2}, frozenset(), object(), 2**63, 2**64 - 1, -(2**63) - 1])
    | st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1)
)
any_values = st.recursive(
    _leaves,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.text(max_size=3) | st.integers() | st.binary(max_size=2), children, max_size=4
        )
        | st.tuples(children)
    ),
    max_leaves=12,
)


def _outcome(code: Any, value: Any) -> Any:
    try:
        return code(value)
    except EncodeError as exc:
        return str(exc)
    except DecodeError as exc:
        return exc


@settings(max_examples=400, deadline=None)
@given(st.lists(any_values, max_size=6), st.sampled_from([JsonCodec(), MsgpackCodec()]))
def test_a_batch_is_encoded_and_refused_exactly_as_value_by_value(
    values: list[Any], codec: Any
) -> None:
    one_by_one = [_outcome(codec.encode, value) for value in values]
    refused = [o for o in one_by_one if isinstance(o, str)]
    if refused:
        with pytest.raises(EncodeError) as info:
            codec.encode_many(values)
        assert str(info.value) == refused[0]
    else:
        assert codec.encode_many(values) == one_by_one


@pytest.mark.parametrize("codec", [JsonCodec(), MsgpackCodec()], ids=lambda c: c.name)
@pytest.mark.parametrize(
    "bad",
    [2**63, -(2**63) - 1, 2**64 - 1, (1,), math.nan, {1: 2}, {b"k": 1}, object()],
    ids=repr,
)
def test_one_bad_value_deep_in_a_large_batch_is_refused(codec: Any, bad: Any) -> None:
    """The census over a whole batch must see a leaf the walk refuses wherever it hides."""
    values: list[Any] = [{"id": i, "tags": ["a", i * 0.5], "n": None} for i in range(500)]
    values[321] = {"id": 321, "deep": [{"x": [bad]}]}
    expected = _outcome(codec.encode, values[321])
    if isinstance(expected, str):
        with pytest.raises(EncodeError, match="^" + re.escape(expected) + "$"):
            codec.encode_many(values)
    else:  # what this codec holds exactly (msgpack: NaN, u64 within range...)
        assert codec.encode_many(values)[321] == expected


def test_a_batch_nested_past_the_limit_is_refused() -> None:
    deep: Any = "leaf"
    for _ in range(129):
        deep = {"d": deep}
    for codec in (JsonCodec(), MsgpackCodec()):
        with pytest.raises(EncodeError, match="deeper"):
            codec.encode_many([{"ok": 1}, deep])
        assert len(codec.encode_many([{"ok": 1}, deep["d"]])) == 2


_texts = st.lists(
    st.recursive(
        st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=4),
        lambda children: st.lists(children, max_size=3),
        max_leaves=6,
    ).map(lambda v: json.dumps(v).encode())
    | st.sampled_from(
        [b"[", b'"\xff"', b"NaN", b"12345678901234567890123", b'"' + b"9" * 30 + b'"']
    ),
    max_size=300,
)


@settings(max_examples=200, deadline=None)
@given(_texts)
def test_a_batch_decodes_exactly_as_value_by_value(datas: list[bytes]) -> None:
    """get_group's batch path (C loops, orjson) gives what `decode` gives, huge integers
    included (orjson would read them as floats), or raises where `decode` raises."""
    codec = JsonCodec()
    one_by_one = [_outcome(codec.decode, d) for d in datas]
    if any(isinstance(o, DecodeError) for o in one_by_one):
        with pytest.raises(DecodeError):
            codec.decode_many(datas)
    else:
        assert repr(codec.decode_many(datas)) == repr(one_by_one)


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_json_refuses_non_finite_floats(value: float) -> None:
    with pytest.raises(EncodeError, match="msgpack"):
        JsonCodec().encode({"x": value})


def test_json_text_is_compact_utf8_like_motia() -> None:
    assert JsonCodec().encode({"a": [1, 2], "é": "/"}) == '{"a":[1,2],"é":"/"}'.encode()


def test_dict_and_list_subclasses_are_plain_values() -> None:
    from collections import OrderedDict

    class Tags(list[str]):
        pass

    value = OrderedDict(b=1, a=Tags(["x"]))
    assert JsonCodec().decode(JsonCodec().encode(value)) == {"b": 1, "a": ["x"]}


def test_nesting_is_bounded() -> None:
    deep: Any = []
    for _ in range(300):
        deep = [deep]
    with pytest.raises(EncodeError, match="deeper"):
        JsonCodec().encode(deep)


@settings(max_examples=2000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**63), 2**63 - 1))
def test_json_numbers_are_exact_for_any_reader(number: float) -> None:
    """Any JSON parser (here the stdlib's) reads back the very same double or int."""
    [back] = json.loads(JsonCodec().encode([number]))
    assert type(back) is type(number)
    assert repr(back) == repr(number)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"123456789012345678901234567890", 123456789012345678901234567890),
        # 19 digits, below int64: orjson reads a negative past int64 as a float
        (b"-9223372036854775809", -9223372036854775809),
        (b"[1,-9999999999999999999]", [1, -9999999999999999999]),
        (b"-9223372036854775808", -(2**63)),
        (b"18446744073709551615", 2**64 - 1),
        (b"18446744073709551616", 2**64),
        (b'{"id":"00000000000000000000001"}', {"id": "00000000000000000000001"}),
        (b'"\\ud800"', "\ud800"),
        (b"NaN", None),
    ],
    ids=repr,
)
def test_json_reads_foreign_text_exactly(text: bytes, expected: Any) -> None:
    codec = JsonCodec()
    for got in (codec.decode(text), codec.decode_many([text])[0], codec.decoder(text)(text)):
        if expected is None:
            assert math.isnan(got)
        else:
            assert repr(got) == repr(expected)


# Integers another tool wrote, at orjson's edges: it reads an integer outside int64/uint64 as a
# float. Runs of 19 and 20 digits, negative and not, alone and beside others in the batch.
_EDGE_INTS = [
    2**63 - 1,
    2**63,
    2**64 - 1,
    2**64,
    -(2**63),
    -(2**63) - 1,
    -(10**19) + 1,
    -(10**19),
    10**19 - 1,
    10**19,
]


@pytest.mark.redis_only
def test_foreign_integers_at_the_64_bit_edges_read_exactly(open_state: Any, target: Target) -> None:
    state = open_state()
    texts = {f"i{n}": json.dumps([n]).encode() for n in _EDGE_INTS}
    # digits on both sides of where get_group's batch check joins two values
    texts |= {"tail": b"[1234567890]", "head": b"1234567890", "neg": b"[-1234567890]"}
    with target.raw() as raw:
        raw.hset(target.layout().data("edges"), mapping=texts)
    expected = {k: json.loads(t) for k, t in texts.items()}
    assert repr(sorted(state.get_group("edges"), key=repr)) == repr(
        sorted(expected.values(), key=repr)
    )
    assert repr(dict(sorted(state.items("edges").items()))) == repr(dict(sorted(expected.items())))
    for key, value in expected.items():
        assert repr(state.get("edges", key)) == repr(value)


FOREIGN = {
    "json": {
        "deep-list": b"[" * 1500 + b"]" * 1500,
        "deep-object": b'{"a":' * 1500 + b"1" + b"}" * 1500,
        "deep-with-long-digits": b"[" * 1500 + b"12345678901234567890" + b"]" * 1500,
        "not-utf8": b'"\xff\xfe"',
        "utf8-surrogate": b'"\xed\xa0\x80"',
    },
    "msgpack": {
        "deep-list": b"\x91" * 1500 + b"\xc0",
        "not-utf8": b"\xa2\xff\xfe",
        "utf8-surrogate": b"\xa3\xed\xa0\x80",
    },
}


@pytest.mark.redis_only
@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_foreign_values_that_cannot_be_read_are_decode_errors(
    open_state: Any, target: Target, codec: str
) -> None:
    """Written by another tool straight into the group's hash: every read path raises a
    DecodeError naming the group and the key, never a RecursionError or UnicodeDecodeError."""
    state = open_state(codec=codec)
    state.set("fine", "k", [1])
    with target.raw() as raw:
        for key, data in FOREIGN[codec].items():
            raw.hset(target.layout().data(key), key, data)
    reads = (
        lambda key: state.get(key, key),
        lambda key: state.get_item(key, key),
        lambda key: state.get_many(key, [key]),
        lambda key: state.get_group(key),
        lambda key: state.items(key),
        lambda key: list(state.iter_items(key)),
        lambda key: state.group(key).get(key),
    )
    for key in FOREIGN[codec]:  # the group is named like the key
        for read in reads:
            with pytest.raises(DecodeError) as info:
                read(key)
            assert f"{key!r}/{key!r}" in str(info.value)
        # a delete goes through (raising after it committed would call it failed)
        removed = state.delete(key, key)
        assert isinstance(removed, Undecodable)
        assert f"{key!r}/{key!r}" in removed.reason
        assert state.keys(key) == []
    assert state.items("fine") == {"k": [1]}


def test_how_deep_a_stored_value_may_nest_does_not_depend_on_the_recursion_limit() -> None:
    """An application (or mypy, in the same process) may raise the recursion limit: foreign
    JSON deeper than orjson reads is still refused, on the stdlib parser's path too, and text
    as deep as orjson reads still decodes there."""
    codec = JsonCodec()
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        for data in FOREIGN["json"].values():
            with pytest.raises(DecodeError):
                codec.decode(data)
        deep = b"[" * 1024 + b"12345678901234567890" + b"]" * 1024  # the stdlib's path
        assert codec.decode(deep) is not None
        quoted = b'["' + b"[" * 2000 + b'", 123456789012345678901]'  # brackets in a string
        assert codec.decode(quoted) == ["[" * 2000, 123456789012345678901]
    finally:
        sys.setrecursionlimit(limit)
