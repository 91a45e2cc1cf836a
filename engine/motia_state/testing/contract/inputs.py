"""Bad input: a clear, typed error, and nothing written anywhere."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from motia_state import (
    EncodeError,
    InvalidInput,
    State,
    StateError,
    ValueTooLarge,
)
from motia_state.testing import Target, requires

BAD_NAMES = [
    ("", "must not be empty"),
    (None, "must be a str"),
    (1, "must be a str"),
    (b"bytes", "must be a str"),
    ("\ud800", "not valid unicode"),
]


def assert_nothing_written(state: Any) -> None:
    assert state.list_groups() == []


@pytest.mark.parametrize(("name", "message"), BAD_NAMES, ids=repr)
def test_bad_group_or_key(state: Any, name: Any, message: str) -> None:
    call: Callable[[], object]
    for call in (
        lambda: state.set(name, "k", 1),
        lambda: state.set("g", name, 1),
        lambda: state.get(name, "k"),
        lambda: state.get_item("g", name),
        lambda: state.delete(name, "k"),
        lambda: state.set_many("g", {"ok": 1, name: 2}),
        lambda: state.get_many("g", ["ok", name]),
        lambda: state.delete_many("g", [name]),
        lambda: state.clear(name),
        lambda: state.items(name),
    ):
        with pytest.raises(InvalidInput, match=message) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, StateError)
    assert_nothing_written(state)


def test_names_over_the_limit(state: Any) -> None:
    with pytest.raises(InvalidInput, match="limit is 1024"):
        state.set("g" * 1025, "k", 1)
    with pytest.raises(InvalidInput, match="limit is 8192"):
        state.set("g", "k" * 8193, 1)
    with pytest.raises(InvalidInput, match="limit is 1024"):
        state.set("é" * 513, "k", 1)  # the limit counts UTF-8 bytes
    many = {f"k{i}": i for i in range(100)}  # batches take a quicker path when all is plain
    for bad in ("k" * 8193, "é" * 4097, "🚀" * 2049):
        with pytest.raises(InvalidInput, match="limit is 8192"):
            state.set_many("g", {**many, bad: 1})
        with pytest.raises(InvalidInput, match="limit is 8192"):
            state.delete_many("g", [*many, bad])
    assert_nothing_written(state)
    state.set_many("g", {**many, "🚀" * 2048: 1})  # 8192 bytes: at the limit, taken
    assert state.get("g", "🚀" * 2048) == 1


def test_keys_argument_must_be_a_list(state: Any) -> None:
    with pytest.raises(InvalidInput, match="not a single string"):
        state.get_many("g", "abc")


@requires("versions")
@pytest.mark.parametrize(
    "value",
    [{1, 2}, object(), math.nan, math.inf, 2**64, {"nested": [math.nan]}, {1: "x"}, (1, 2)],
    ids=repr,
)
def test_unencodable_values(state: Any, value: Any) -> None:
    state.set("g", "k", "before")
    with pytest.raises(EncodeError) as info:
        state.set("g", "k", value)
    assert isinstance(info.value, TypeError)
    with pytest.raises(EncodeError):
        state.set_many("g", {"a": 1, "b": value})
    assert state.items("g") == {"k": "before"}
    assert state.get_item("g", "k").version == 1


def test_oversized_value(open_state: Any) -> None:
    state = open_state(max_value_bytes=1000)
    state.set("g", "small", "x" * 900)
    with pytest.raises(ValueTooLarge, match="max_value_bytes is 1000"):
        state.set("g", "big", "x" * 1000)
    with pytest.raises(ValueTooLarge):
        state.set_many("g", {"ok": 1, "big": "x" * 5000})
    assert state.keys("g") == ["small"]


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ({"big": "x" * 2000, "nan": math.nan}, ValueTooLarge),
        ({"nan": math.nan, "big": "x" * 2000}, EncodeError),
        ({"big": "x" * 2000, "\ud800": 1}, ValueTooLarge),
        ({"\ud800": 1, "nan": math.nan}, InvalidInput),
        ({"nan": (1,), "\ud800": 1}, EncodeError),
    ],
    ids=["too large, then NaN", "NaN, then too large", "too large, then a bad key",
         "a bad key, then NaN", "a tuple, then a bad key"],
)  # fmt: skip
def test_a_batch_with_several_faults_names_the_first(
    open_state: Any, faults: dict[str, Any], expected: type[Exception]
) -> None:
    """set_many refuses a batch with the error its first faulty item gets from set, item by
    item, whatever the kind of each fault (the batch checks keys, values and sizes in passes)."""
    state = open_state(max_value_bytes=1000)
    batch = {**{f"k{i}": i for i in range(100)}, **faults}
    with pytest.raises(StateError) as info:
        state.set_many("g", batch)
    assert type(info.value) is expected
    key, value = next(iter(faults.items()))
    with pytest.raises(expected) as alone:
        state.set("g", key, value)
    assert str(info.value) == str(alone.value)
    assert_nothing_written(state)


@requires("versions")
@pytest.mark.parametrize("version", [-1, 2**53 + 1, "1", 1.0, True], ids=repr)
def test_bad_versions(state: Any, version: Any) -> None:
    with pytest.raises(InvalidInput, match="version"):
        state.set("g", "k", 1, version=version)
    with pytest.raises(InvalidInput, match="version"):
        state.delete("g", "k", version=version)
    assert_nothing_written(state)


def test_bad_batch(state: Any) -> None:
    with pytest.raises(InvalidInput, match="batch"):
        list(state.iter_items("g", batch=0))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"codec": "yaml"}, "unknown codec"),
        ({"colour": "blue"}, "unknown option"),
        ({"changes_maxlen": 0}, "changes_maxlen"),
        ({"max_value_bytes": -5}, "max_value_bytes"),
    ],
)
def test_bad_options(target: Target, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        State.from_url(target.url, **{**target.options, **options})


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def test_lists_of_names_must_be_lists(state: Any) -> None:
    call: Callable[[], object]
    for call in (
        lambda: state.get_many("g", None),
        lambda: state.get_many("g", 5),
        lambda: state.delete_many("g", 5),
        lambda: state.delete_many("g", b"k"),
        lambda: state.stats(5),
        lambda: state.stats("g"),  # one name, not a list of one-letter groups
    ):
        with pytest.raises(InvalidInput):
            call()
    assert_nothing_written(state)


@requires("versions", "transactions")
def test_update_of_a_value_too_deep_is_an_encode_error(state: Any) -> None:
    deep = nested(1000)
    for ops in (
        [{"type": "set", "path": "a", "value": deep}],
        [{"type": "merge", "path": "a", "value": {"x": deep}}],
        [{"type": "append", "path": "a", "value": deep}],
    ):
        with pytest.raises(EncodeError, match="deeper"):
            state.update("g", "k", ops)
        with pytest.raises(EncodeError, match="deeper"), state.transaction() as tx:
            tx.update("g", "k", ops)
        with pytest.raises(EncodeError, match="deeper"):
            state.group("g").update("k", ops)
    assert_nothing_written(state)


def test_hostile_arguments_are_typed_errors_with_short_messages(state: Any) -> None:
    deep, huge = nested(2000), 10**5000
    for call in (
        lambda: state.update("g", "k", [{"type": deep, "path": "a"}]),
        lambda: state.update("g", "k", [{"type": "set", "path": deep, "value": 1}]),
        lambda: state.update("g", "k", [{"type": "increment", "path": "a", "by": deep}]),
        lambda: state.update("g", "k", [{"type": "set", "path": ["a"] * 10_000, "value": 1}]),
        lambda: state.update("g", "k", deep),
        lambda: state.increment("g", "k", deep),
        lambda: state.increment("g", "k", huge),
        lambda: state.set("g", "k", 1, version=huge),
        lambda: state.set("g", "k", huge),
        lambda: state.set("g", "k", {"a": deep}),
        lambda: state.set("g", "k", 1, ttl=huge),
        lambda: state.set("g", "\ud800" * 100_000, 1),
        lambda: list(state.iter_items("g", batch=deep)),
        lambda: list(state.iter_items("g", batch=2**64)),
    ):
        with pytest.raises(StateError) as info:
            call()
        assert len(str(info.value)) < 1000
    assert_nothing_written(state)


def test_a_group_view_checks_its_name_at_once(state: Any) -> None:
    for name in (None, "", nested(2000), "g" * 1025):
        with pytest.raises(InvalidInput):
            state.group(name)
