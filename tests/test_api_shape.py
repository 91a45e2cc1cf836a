"""The four facades cannot drift apart: `AsyncState` is `State` method for method, a group view
is its State minus the ``group`` argument, a transaction takes the writes as State does."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from motia_state import AsyncGroupView, AsyncState, GroupView, State, Transaction


def public(cls: type) -> dict[str, Any]:
    return {
        name: member
        for name, member in vars(cls).items()
        if not name.startswith("_") and callable(member)
    }


def shape(function: Any, without: str | None = None) -> list[tuple[str, Any, Any]]:
    """Each parameter's name, kind and default (annotations differ between sync and async)."""
    function = getattr(function, "__func__", function)  # classmethods
    return [
        (p.name, p.kind, p.default)
        for p in inspect.signature(function).parameters.values()
        if p.name not in ("self", "cls", without)
    ]


@pytest.mark.parametrize(
    ("sync", "asynchronous"), [(State, AsyncState), (GroupView, AsyncGroupView)]
)
def test_async_is_sync_method_for_method(sync: type, asynchronous: type) -> None:
    renamed = {"close": "aclose"}
    expected = {renamed.get(name, name): shape(f) for name, f in public(sync).items()}
    assert {name: shape(f) for name, f in public(asynchronous).items()} == expected


@pytest.mark.parametrize(("state", "view"), [(State, GroupView), (AsyncState, AsyncGroupView)])
def test_a_group_view_is_its_state_minus_the_group(state: type, view: type) -> None:
    methods = public(state)
    scoped = {"watch", "on_change"} | {
        name for name, f in methods.items() if "group" in inspect.signature(f).parameters
    }
    assert set(public(view)) == scoped
    for name in scoped:
        params = inspect.signature(methods[name]).parameters
        if "group" in params:
            assert shape(public(view)[name]) == shape(methods[name], "group"), name
        else:  # watch, on_change: the other arguments go through as keywords
            kept = [p for p in shape(methods[name], "groups") if p[1] != p[1].KEYWORD_ONLY]
            got = shape(public(view)[name])
            assert got[:-1] == kept, name
            assert got[-1][1] == inspect.Parameter.VAR_KEYWORD, name


def test_a_transaction_takes_the_writes_as_state_does() -> None:
    writes = public(Transaction).keys() - {"plan"}
    assert writes == {"set", "delete", "increment", "update"}
    for name in writes:
        expected = [
            ("ops_", kind, default) if param == "ops" else (param, kind, default)
            for param, kind, default in shape(public(State)[name])
        ]
        assert shape(public(Transaction)[name]) == expected, name


def test_a_group_view_gives_ttl_to_increment_and_update(state: Any) -> None:
    view = state.group("g")
    view.increment("n", 2, ttl=60)
    view.update("doc", [{"type": "set", "path": "a", "value": 1}], ttl=60)
    assert 0 < state.ttl("g", "n") <= 60
    assert 0 < state.ttl("g", "doc") <= 60
    assert state.items("g") == {"n": 2, "doc": {"a": 1}}
