"""The facades cannot drift apart: `AsyncState` is `State` method for method, and so are the
group views, the watches and the subscriptions; a group view is its State minus the ``group``
argument, a transaction takes the writes as State does."""

from __future__ import annotations

import inspect
import threading
from typing import Any, Generic

import pytest

from motia_state import (
    AsyncGroupView,
    AsyncState,
    GroupView,
    State,
    Transaction,
)
from motia_state.core import Core, Plan
from motia_state.facade import Call
from motia_state.subscriptions import AsyncSubscription, Subscription
from motia_state.watch import AsyncWatch, Watch

# What a sync method is called on the async side, where the name differs.
ASYNC_NAME = {
    "close": "aclose",
    "__iter__": "__aiter__",
    "__next__": "__anext__",
    "__enter__": "__aenter__",
    "__exit__": "__aexit__",
}
PROTOCOL = {"__init__", *ASYNC_NAME, *ASYNC_NAME.values()}
NOT_OURS = (object, Generic, threading.Thread)


def public(cls: type) -> dict[str, Any]:
    """The public methods of ``cls`` (inherited ones too) and its protocol methods (``with``,
    ``for``, the constructor), as the class holds them."""
    names = {
        name
        for klass in cls.__mro__
        if klass not in NOT_OURS
        for name in vars(klass)
        if name in PROTOCOL or not name.startswith("_")
    }
    found = {name: inspect.getattr_static(cls, name) for name in names}
    return {
        name: member
        for name, member in found.items()
        if callable(member) or isinstance(member, (classmethod, staticmethod))
    }


def parameters(function: Any) -> dict[str, inspect.Parameter]:
    function = getattr(function, "__func__", function)  # classmethods
    return dict(inspect.signature(function).parameters)


def shape(function: Any, without: str | None = None) -> list[tuple[str, Any, Any]]:
    """Each parameter's name, kind and default (annotations differ between sync and async)."""
    return [
        (p.name, p.kind, p.default)
        for p in parameters(function).values()
        if p.name not in ("self", "cls", without)
    ]


def parity(
    sync: type,
    asynchronous: type,
    *,
    only_sync: frozenset[str] = frozenset(),
    only_async: frozenset[str] = frozenset(),
) -> list[str]:
    """How ``asynchronous`` differs from ``sync``, method for method and parameter for
    parameter (a sync name maps to its async one: close to aclose, ...): one line each."""
    expected = {
        ASYNC_NAME.get(name, name): f for name, f in public(sync).items() if name not in only_sync
    }
    got = {name: f for name, f in public(asynchronous).items() if name not in only_async}
    name = asynchronous.__name__
    problems = [f"{name} lacks {missing}" for missing in sorted(expected.keys() - got)]
    problems += [f"{name}.{extra} is extra" for extra in sorted(got - expected.keys())]
    for both in sorted(expected.keys() & got.keys()):
        if shape(expected[both]) != shape(got[both]):
            problems.append(f"{both}: {shape(got[both])} where {shape(expected[both])}")
    return problems


TWINS = [
    (State, AsyncState, {}),
    (GroupView, AsyncGroupView, {}),
    (Watch, AsyncWatch, {}),
    # the thread's run() is its body; the task's is private
    (Subscription, AsyncSubscription, {"only_sync": frozenset({"run"})}),
]


@pytest.mark.parametrize(("sync", "asynchronous", "exceptions"), TWINS)
def test_async_is_sync_method_for_method(
    sync: type, asynchronous: type, exceptions: dict[str, Any]
) -> None:
    assert parity(sync, asynchronous, **exceptions) == []


def _set_without_ttl(
    core: Core, group: str, key: str, value: Any, *, version: int | None = None
) -> Plan[int]:
    return core.set(group, key, value, version=version)


def test_the_parity_check_finds_a_parameter_left_out() -> None:
    class Lacking(AsyncState):  # declared as the facades are: from a Core method
        set = Call(_set_without_ttl)

    assert list(parameters(Lacking.set)) == ["self", "group", "key", "value", "version"]
    problems = parity(State, Lacking)
    assert len(problems) == 1
    assert problems[0].startswith("set: "), problems


def test_the_parity_check_finds_a_method_left_out() -> None:
    for sync, asynchronous, left_out in [
        (State, AsyncState, "persist"),
        (GroupView, AsyncGroupView, "iter_items"),
        (Watch, AsyncWatch, "aclose"),
        (Subscription, AsyncSubscription, "stop"),
    ]:
        members = {k: v for k, v in public(asynchronous).items() if k != left_out}
        lacking = type(asynchronous.__name__, (), members)
        problems = parity(sync, lacking, only_sync=frozenset({"run"}))
        assert problems == [f"{asynchronous.__name__} lacks {left_out}"]


def test_the_parity_check_finds_a_method_added() -> None:
    class Extra(AsyncWatch):
        async def peek(self) -> None: ...

    assert parity(Watch, Extra) == ["Extra.peek is extra"]


@pytest.mark.parametrize(("state", "view"), [(State, GroupView), (AsyncState, AsyncGroupView)])
def test_a_group_view_is_its_state_minus_the_group(state: type, view: type) -> None:
    methods = {name: f for name, f in public(state).items() if not name.startswith("_")}
    scoped = {"watch", "on_change"} | {
        name for name, f in methods.items() if "group" in parameters(f)
    }
    assert {name for name in public(view) if not name.startswith("_")} == scoped
    for name in scoped:
        if "group" in parameters(methods[name]):
            assert shape(public(view)[name]) == shape(methods[name], "group"), name
        else:  # watch, on_change: the other arguments go through as keywords
            kept = [p for p in shape(methods[name], "groups") if p[1] != p[1].KEYWORD_ONLY]
            got = shape(public(view)[name])
            assert got[:-1] == kept, name
            assert got[-1][1] == inspect.Parameter.VAR_KEYWORD, name


def test_a_transaction_takes_the_writes_as_state_does() -> None:
    """Less what belongs to the whole call (its idempotency key: `State.transaction` takes it)."""
    writes = public(Transaction).keys() - {"plan", "__init__", "emit"}  # emit: its own
    assert writes == {"set", "delete", "increment", "update"}
    for name in writes:
        expected = [
            ("ops_", kind, default) if param == "ops" else (param, kind, default)
            for param, kind, default in shape(public(State)[name])
            if param not in Transaction._omitted
        ]
        assert "idempotency_key" in Transaction._omitted
        assert shape(public(Transaction)[name]) == expected, name


def test_an_operation_is_its_core_method() -> None:
    """Name, docstring and signature: what ``help()`` shows is the declaration in `Core`."""
    for cls in (State, AsyncState):
        method = cls.set
        assert method.__qualname__ == f"{cls.__name__}.set"
        assert method.__doc__ == Core.set.__doc__
        assert shape(method) == shape(Core.set)
        assert inspect.iscoroutinefunction(method) == (cls is AsyncState)
    assert shape(GroupView.update) == shape(Core.update, "group")


def test_a_group_view_gives_ttl_to_increment_and_update(state: Any) -> None:
    view = state.group("g")
    view.increment("n", 2, ttl=60)
    view.update("doc", [{"type": "set", "path": "a", "value": 1}], ttl=60)
    assert 0 < state.ttl("g", "n") <= 60
    assert 0 < state.ttl("g", "doc") <= 60
    assert state.items("g") == {"n": 2, "doc": {"a": 1}}
