"""Trace scopes: groups that expire whole (`expire_group`, `group_ttl`, `persist_group`, the
sliding ``state.group(name, ttl=S)`` view, the ``group_ttl`` option), on any backend with the
``ttl`` capability. Time is never waited for by a fixed sleep: a condition is polled until a
deadline. (What a Redis server holds meanwhile: tests/test_group_ttl.py.)"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import pytest

from motia_state import InvalidInput, NotANumber, State, VersionConflict
from motia_state.testing import requires
from motia_state.testing.blocking import settle


def eventually(state: Any, condition: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll ``condition`` until it is truthy (an async state's loop runs meanwhile)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        assert time.monotonic() < deadline, "the condition never held"
        settle(state, 0.02)


def gone(state: Any, group: str) -> bool:
    return state.get_group(group) == [] and state.group_ttl(group) is None


@requires("ttl")
def test_expire_group_persist_group_and_group_ttl_say_what_they_did(open_state: Any) -> None:
    state = open_state(cleanup_interval=None)
    assert state.expire_group("g", 60) is False  # no such group: nothing to expire
    assert state.group_ttl("g") is None
    assert state.persist_group("g") is False
    assert state.list_groups() == []
    state.set("g", "k", 1)
    assert state.group_ttl("g") is None  # an ordinary group does not expire
    assert state.persist_group("g") is False
    assert state.expire_group("g", 60) is True
    left = state.group_ttl("g")
    assert left is not None
    assert 59 < left <= 60
    assert state.persist_group("g") is True
    assert state.group_ttl("g") is None
    assert state.persist_group("g") is False
    assert state.get("g", "k") == 1
    view = state.group("g")
    assert view.expire_group(30) is True
    assert 29 < view.group_ttl() <= 30
    assert view.persist_group() is True


@requires("ttl")
def test_a_group_expires_whole(open_state: Any) -> None:
    state = open_state(cleanup_interval=None)
    state.set("trace", "a", {"step": 1})
    state.set("trace", "a", {"step": 2})  # a recorded version
    state.set("trace", "b", 2, ttl=600)  # an expiry of its own
    state.set("trace", "c", 3)
    state.delete("trace", "c")  # a version floor
    state.set("other", "k", 1)
    assert state.expire_group("trace", 0.3)
    eventually(state, lambda: gone(state, "trace"))
    assert state.get("trace", "a") is None
    assert state.get_item("trace", "b") is None
    assert state.get_many("trace", ["a", "b"]) == [None, None]
    assert state.items("trace") == {}
    assert state.keys("trace") == []
    assert list(state.iter_items("trace")) == []
    assert state.ttl("trace", "a") is None
    assert state.list_groups() == ["other"]
    assert state.expire_group("trace", 60) is False  # it no longer exists
    state.cleanup()
    assert state.get("other", "k") == 1
    assert state.group_ttl("other") is None
    # a group started anew after it expired starts over: its versions went with it
    assert state.set("trace", "a", 1) == 1
    assert state.group_ttl("trace") is None


@requires("ttl")
def test_writes_through_a_ttl_view_slide_the_whole_group(open_state: Any) -> None:
    """Each write through the view moves the deadline to ttl from now: shortened by hand to
    5 s first, the group's TTL is back near 60 after each kind of write."""
    state = open_state(cleanup_interval=None)
    view = state.group("trace", ttl=60)
    assert view.set("a", {"n": 1}) == 1
    assert 59 < state.group_ttl("trace") <= 60
    writes: dict[str, Callable[[], Any]] = {
        "set": lambda: view.set("a", {"n": 2}),
        "set_many": lambda: view.set_many({"b": 1, "c": 2}),
        "delete": lambda: view.delete("b"),
        "delete of nothing": lambda: view.delete("missing"),
        "delete_many": lambda: view.delete_many(["c", "missing"]),
        "increment": lambda: view.increment("n", 2),
        "update": lambda: view.update("a", [{"type": "set", "path": "m", "value": 1}]),
        "expire": lambda: view.expire("a", 600),
        "persist": lambda: view.persist("a"),
    }
    for name, write in writes.items():
        assert state.expire_group("trace", 5)
        assert state.group_ttl("trace") <= 5
        write()
        assert state.group_ttl("trace") > 50, name
    assert state.items("trace") == {"a": {"n": 2, "m": 1}, "n": 2}
    # reads, the State's own writes and a refused write slide nothing
    assert state.expire_group("trace", 5)
    view.get("a")
    view.items()
    view.ttl("a")
    state.set("trace", "plain", 1)
    with pytest.raises(VersionConflict):
        view.set("a", 0, version=99)
    with pytest.raises(NotANumber):
        view.increment("a", 1)
    assert state.group_ttl("trace") <= 5


@requires("ttl")
def test_the_group_ttl_option_makes_every_group_a_trace(open_state: Any) -> None:
    state = open_state(cleanup_interval=None, group_ttl=60)
    state.set("t1", "k", 1)
    state.increment("t2", "n")
    with state.transaction() as tx:
        tx.set("t3", "a", 1)
        tx.increment("t3", "n", 1)
    for group in ("t1", "t2", "t3"):
        assert 59 < state.group_ttl(group) <= 60, group
    assert state.expire_group("t3", 5)
    with state.transaction() as tx:
        tx.delete("t3", "a")
    assert state.group_ttl("t3") > 50  # a transaction slides the groups it writes
    assert state.expire_group("t3", 5)
    with pytest.raises(VersionConflict), state.transaction() as tx:
        tx.set("t3", "n", 2, version=42)
    assert state.group_ttl("t3") <= 5  # ... only when it applies


@requires("ttl")
def test_an_item_ttl_and_the_group_ttl_the_earlier_wins(open_state: Any) -> None:
    state = open_state(cleanup_interval=None)
    view = state.group("g", ttl=60)
    view.set("long", 1, ttl=3600)
    view.set("short", 2, ttl=30)
    view.set("plain", 3)
    assert 29 < state.ttl("g", "short") <= 30  # its own
    assert 59 < state.ttl("g", "long") <= 60  # the group's
    assert 59 < state.ttl("g", "plain") <= 60
    item = state.get_item("g", "plain")
    assert item is not None
    assert item.expires_at is not None
    assert 59 < item.expires_at - time.time() <= 61
    assert state.expire_group("g", 5)
    assert state.ttl("g", "short") <= 5
    assert state.persist_group("g")
    assert 29 < state.ttl("g", "short") <= 30
    assert state.ttl("g", "plain") is None
    # an item's own expiry still comes first, alone
    view.set("brief", 4, ttl=0.2)
    eventually(state, lambda: state.get("g", "brief") is None)
    assert state.get("g", "plain") == 3
    assert 59 < state.group_ttl("g") <= 60


@requires("ttl")
def test_emptying_a_group_ends_its_expiry(open_state: Any) -> None:
    """A group exists while it holds an item: the write that empties it drops its deadline,
    and a group made again by an ordinary write does not expire."""
    state = open_state(cleanup_interval=None)
    view = state.group("g", ttl=60)
    view.set("a", 1)
    view.delete("a")
    assert state.group_ttl("g") is None
    state.set("g", "b", 1)
    assert state.group_ttl("g") is None
    view.set("c", 1)
    assert state.clear("g") == 2
    state.set("g", "d", 1)
    assert state.group_ttl("g") is None


BAD_TTLS = [0, -1, math.nan, math.inf, True, "5", None, 10**12, [1]]


@pytest.mark.parametrize("ttl", BAD_TTLS, ids=repr)
def test_a_bad_ttl_is_refused_and_nothing_is_written(open_state: Any, ttl: Any) -> None:
    state = open_state(cleanup_interval=None)
    state.set("g", "k", 1)
    with pytest.raises(InvalidInput, match="ttl"):
        state.expire_group("g", ttl)
    assert state.group_ttl("g") is None
    if ttl is not None:  # a view without ttl= is the plain view
        with pytest.raises(InvalidInput, match="ttl"):
            state.group("g", ttl=ttl)
        with pytest.raises(InvalidInput, match="group_ttl"):
            open_state(group_ttl=ttl)
    with pytest.raises(InvalidInput, match="group"):
        state.expire_group("", 5)
    with pytest.raises(InvalidInput, match="group"):
        state.group_ttl(42)
    with pytest.raises(InvalidInput, match="group"):
        state.persist_group(None)
    assert state.items("g") == {"k": 1}
    assert state.group_ttl("g") is None


@requires("ttl")
def test_a_ttl_view_closes_nothing(open_state: Any) -> None:
    """Closing what a ``ttl=`` view runs on leaves its State's backend open."""
    state = open_state(cleanup_interval=None)
    view = state.group("g", ttl=60)
    view.set("k", 1)
    if isinstance(view.state, State):
        view.state.close()
    else:
        state._loop.run_until_complete(view.state.aclose())
    assert state.get("g", "k") == 1
    view.set("k", 2)
    assert state.get("g", "k") == 2
