"""Bad input: a clear, typed error, and nothing written anywhere."""

from __future__ import annotations

import math
from typing import Any

import pytest

from motia_state import (
    EncodeError,
    InvalidInput,
    State,
    StateError,
    ValueTooLarge,
)

from .conftest import Target

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
    assert_nothing_written(state)


def test_keys_argument_must_be_a_list(state: Any) -> None:
    with pytest.raises(InvalidInput, match="not a single string"):
        state.get_many("g", "abc")


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


def test_bad_urls() -> None:
    with pytest.raises(InvalidInput, match="unknown URL scheme"):
        State.from_url("mysql://localhost")
    with pytest.raises(InvalidInput, match="expected scheme"):
        State.from_url("localhost:6379")
    with pytest.raises(InvalidInput, match="host:port"):
        State.from_url("redis+cluster://127.0.0.1")
    with pytest.raises(InvalidInput, match="prefix"):
        State.from_url("memory://", prefix="x:")
    with pytest.raises(InvalidInput, match="prefix"):
        State.from_url("redis://127.0.0.1:1", prefix="a{b}:")
    with pytest.raises(InvalidInput, match="prefix"):
        State.from_url("redis://127.0.0.1:1", prefix="")


def test_errors_survive_pickling() -> None:
    """They cross process boundaries (multiprocessing pools, concurrent.futures)."""
    import pickle

    from motia_state import NotReplicated, UpdateFailed, VersionConflict

    for error in (
        VersionConflict([("g", "k", 1, 2)]),
        UpdateFailed("not_number", 0, {"type": "increment"}, "detail"),
        NotReplicated(0, 1, 0.5),
        InvalidInput("bad"),
    ):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert str(again) == str(error)
