"""Fan-in barriers: each arrival counted once however often it is retried, exactly one arrival
released, the stored layout public, bad input and strangers' items refused with nothing
written. (Many processes racing on one server, and the change record of completion:
tests/test_barrier.py.)"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pytest

from motia_state import (
    BarrierState,
    EncodeError,
    InvalidInput,
    NotABarrier,
    PartiesMismatch,
    ValueTooLarge,
)
from motia_state.testing import Opener, requires

from .scopes import eventually
from .values import with_codec

CHECKS = ("check-credit", "check-fraud", "check-stock")


def layout(parties: int, *arrivals: tuple[str, Any], released_by: str | None = None) -> Any:
    return {
        "barrier": 1,
        "parties": parties,
        "arrivals": [[name, data] for name, data in arrivals],
        "released_by": released_by,
    }


@requires("versions")
def test_the_arrival_that_completes_the_barrier_is_the_one_released(state: Any) -> None:
    first = state.barrier("joins", "t1", parties=3, arrival=CHECKS[0], data={"score": 700})
    assert isinstance(first, BarrierState)
    assert (first.arrived, first.parties, first.complete, first.released) == (1, 3, False, False)
    assert first.released_by is None
    assert first.data == {"check-credit": {"score": 700}}
    second = state.barrier("joins", "t1", parties=3, arrival=CHECKS[1], data=False)
    assert (second.arrived, second.complete, second.released) == (2, False, False)
    third = state.barrier("joins", "t1", parties=3, arrival=CHECKS[2], data=[1, [2, 3]])
    assert (third.arrived, third.complete, third.released) == (3, True, True)
    assert third.released_by == "check-stock"
    # in arrival order
    assert list(third.data.items()) == [
        ("check-credit", {"score": 700}),
        ("check-fraud", False),
        ("check-stock", [1, [2, 3]]),
    ]
    assert first.version < second.version < third.version
    assert third.version == state.get_item("joins", "t1").version
    with pytest.raises(dataclasses.FrozenInstanceError):
        third.released = False


@requires("versions")
def test_a_retried_arrival_counts_once_keeps_its_first_data_and_answer(state: Any) -> None:
    state.barrier("g", "k", parties=2, arrival="a", data={"run": 1})
    version = state.get_item("g", "k").version
    again = state.barrier("g", "k", parties=2, arrival="a", data={"run": 2})
    assert (again.arrived, again.complete, again.released) == (1, False, False)
    assert again.data == {"a": {"run": 1}}
    assert again.version == version == state.get_item("g", "k").version  # nothing written
    done = state.barrier("g", "k", parties=2, arrival="b", data="first")
    assert done.released
    for _ in range(3):
        retried = state.barrier("g", "k", parties=2, arrival="b", data="retry")
        assert retried == done  # the releasing arrival's retry is released again, as it was
    late_retry = state.barrier("g", "k", parties=2, arrival="a", data={"run": 3})
    assert (late_retry.complete, late_retry.released, late_retry.released_by) == (True, False, "b")
    assert late_retry.data == {"a": {"run": 1}, "b": "first"}
    assert state.get_item("g", "k").version == done.version


@requires("versions")
def test_an_arrival_after_completion_is_recorded_nowhere_and_never_released(state: Any) -> None:
    for name in CHECKS:
        done = state.barrier("g", "k", parties=3, arrival=name)
    stored = state.get_item("g", "k")
    late = state.barrier("g", "k", parties=3, arrival="check-late", data="lost")
    assert (late.arrived, late.complete, late.released, late.released_by) == (
        3,
        True,
        False,
        "check-stock",
    )
    assert "check-late" not in late.data
    assert late == dataclasses.replace(done, released=False)
    assert state.get_item("g", "k") == stored


@requires("versions")
def test_one_party_is_released_by_its_only_arrival(state: Any) -> None:
    only = state.barrier("g", "k", parties=1, arrival="solo", data=7)
    assert (only.arrived, only.complete, only.released, only.released_by) == (1, True, True, "solo")
    assert state.barrier("g", "k", parties=1, arrival="solo").released
    assert not state.barrier("g", "k", parties=1, arrival="other").released


@requires("versions")
def test_the_stored_layout_is_public(state: Any) -> None:
    state.barrier("g", "k", parties=2, arrival="a", data={"x": 1})
    assert state.get("g", "k") == layout(2, ("a", {"x": 1}))
    state.barrier("g", "k", parties=2, arrival="b")
    assert state.get("g", "k") == layout(2, ("a", {"x": 1}), ("b", None), released_by="b")


@requires("versions")
def test_a_barrier_another_writer_made_is_continued(state: Any) -> None:
    """Another language writes the same layout with a plain set."""
    state.set("g", "k", layout(2, ("from-go", {"ok": True})))
    joined = state.barrier("g", "k", parties=2, arrival="from-python")
    assert joined.released
    assert joined.data == {"from-go": {"ok": True}, "from-python": None}


@requires("versions")
def test_parties_that_disagree_are_refused_and_nothing_is_written(state: Any) -> None:
    state.barrier("g", "k", parties=3, arrival="a")
    before = state.get_item("g", "k")
    for arrival in ("b", "a"):  # a retry that disagrees is refused too
        with pytest.raises(PartiesMismatch) as info:
            state.barrier("g", "k", parties=2, arrival=arrival)
        assert isinstance(info.value, InvalidInput)
        assert (info.value.recorded, info.value.given) == (3, 2)
    assert state.get_item("g", "k") == before


BAD: list[tuple[dict[str, Any], type[Exception]]] = [
    ({"parties": 0}, InvalidInput),
    ({"parties": -3}, InvalidInput),
    ({"parties": True}, InvalidInput),
    ({"parties": 2.0}, InvalidInput),
    ({"parties": "3"}, InvalidInput),
    ({"parties": None}, InvalidInput),
    ({"parties": 2**63}, InvalidInput),
    ({"arrival": ""}, InvalidInput),
    ({"arrival": 5}, InvalidInput),
    ({"arrival": None}, InvalidInput),
    ({"arrival": b"check"}, InvalidInput),
    ({"arrival": "\ud800"}, InvalidInput),
    ({"arrival": "x" * 1025}, InvalidInput),
    ({"data": {1, 2}}, EncodeError),
    ({"data": object()}, EncodeError),
    ({"data": {"nan": math.nan}}, EncodeError),
    ({"data": {3: "int key"}}, EncodeError),
    ({"ttl": -1}, InvalidInput),
    ({"ttl": 0}, InvalidInput),
    ({"ttl": math.nan}, InvalidInput),
    ({"ttl": "60"}, InvalidInput),
    ({"group": ""}, InvalidInput),
    ({"group": 7}, InvalidInput),
    ({"key": ""}, InvalidInput),
    ({"key": None}, InvalidInput),
]


@requires("versions")
@pytest.mark.parametrize(("bad", "error"), BAD, ids=[str(i) for i in range(len(BAD))])
def test_bad_input_is_refused_before_anything_is_written(
    state: Any, bad: dict[str, Any], error: type[Exception]
) -> None:
    call = {"group": "g", "key": "k", "parties": 2, "arrival": "a", "data": None} | bad
    group, key = call.pop("group"), call.pop("key")
    with pytest.raises(error):
        state.barrier(group, key, **call)
    assert state.list_groups() == []
    # and on a barrier that exists, it stays as it was
    state.barrier("g", "k", parties=2, arrival="first")
    before = state.get_item("g", "k")
    with pytest.raises(error):
        state.barrier(group, key, **call)
    assert state.get_item("g", "k") == before


@requires("versions")
def test_data_past_the_size_limit_writes_nothing(open_state: Opener) -> None:
    state = open_state(max_value_bytes=200)
    with pytest.raises(ValueTooLarge):
        state.barrier("g", "k", parties=3, arrival="a", data="x" * 300)
    assert state.list_groups() == []
    state.barrier("g", "k", parties=3, arrival="a", data="x" * 60)
    state.barrier("g", "k", parties=3, arrival="b", data="x" * 60)
    before = state.get_item("g", "k")
    with pytest.raises(ValueTooLarge):  # fits alone, not with the others
        state.barrier("g", "k", parties=3, arrival="c", data="x" * 60)
    assert state.get_item("g", "k") == before


NOT_BARRIERS: list[Any] = [
    5,
    None,
    "barrier",
    [["a", 1]],
    {"parties": 3, "arrivals": []},
    layout(2) | {"barrier": 2},
    layout(2) | {"extra": 1},
    layout(2) | {"parties": True},
    layout(2) | {"parties": 0},
    layout(2) | {"parties": 2.5},
    layout(2) | {"arrivals": {"a": 1}},
    layout(2, ("a", 1), ("a", 2)),
    layout(2, ("", 1)),
    layout(1, ("a", 1), ("b", 2), released_by="a"),
    layout(2, ("a", 1), ("b", 2)),  # complete, but released_by null
    layout(2, ("a", 1), released_by="a"),  # not complete, yet released
    layout(2, ("a", 1), ("b", 2), released_by="a"),  # released by the first, not the last
    layout(2) | {"arrivals": [["a"]]},
    layout(2) | {"arrivals": [[1, "a"]]},
]


@requires("versions")
@pytest.mark.parametrize("value", NOT_BARRIERS, ids=[str(i) for i in range(len(NOT_BARRIERS))])
def test_an_item_that_is_not_a_barrier_is_refused_and_left_alone(state: Any, value: Any) -> None:
    state.set("g", "k", value)
    before = state.get_item("g", "k")
    with pytest.raises(NotABarrier, match="is not a barrier"):
        state.barrier("g", "k", parties=2, arrival="c")
    with pytest.raises(NotABarrier):
        state.barrier_state("g", "k")
    with pytest.raises(NotABarrier):
        state.reset_barrier("g", "k")
    assert state.get_item("g", "k") == before


@requires("versions")
def test_barrier_state_reads_without_arriving(state: Any) -> None:
    assert state.barrier_state("g", "k") is None
    assert state.list_groups() == []
    state.barrier("g", "k", parties=2, arrival="a", data=[1])
    version = state.get_item("g", "k").version
    seen = state.barrier_state("g", "k")
    assert (seen.arrived, seen.complete, seen.released, seen.data) == (1, False, False, {"a": [1]})
    assert seen.version == version == state.get_item("g", "k").version
    state.barrier("g", "k", parties=2, arrival="b")
    seen = state.barrier_state("g", "k")
    assert (seen.complete, seen.released, seen.released_by) == (True, False, "b")
    assert seen.data == {"a": [1], "b": None}


@requires("versions")
def test_reset_lets_the_key_serve_again(state: Any) -> None:
    assert state.reset_barrier("g", "k") is None
    state.barrier("g", "k", parties=2, arrival="a")
    half = state.reset_barrier("g", "k")  # not complete: reset all the same
    assert (half.arrived, half.complete) == (1, False)
    assert state.barrier_state("g", "k") is None
    for name in ("a", "b"):
        done = state.barrier("g", "k", parties=2, arrival=name, data=name)
    removed = state.reset_barrier("g", "k")
    assert removed == dataclasses.replace(done, released=False)
    assert state.barrier_state("g", "k") is None
    assert state.get_item("g", "k") is None
    # a new use: the same names count again, and one of them is released again
    assert state.barrier("g", "k", parties=2, arrival="b").arrived == 1
    again = state.barrier("g", "k", parties=2, arrival="a")
    assert (again.released, again.released_by) == (True, "a")
    # a new use may have another number of parties
    state.reset_barrier("g", "k")
    assert state.barrier("g", "k", parties=5, arrival="a").parties == 5


@requires("versions")
def test_a_group_view_has_the_barrier(state: Any) -> None:
    view = state.group("joins")
    assert view.barrier("t", parties=2, arrival="a", data=1).arrived == 1
    assert view.barrier("t", parties=2, arrival="b", data=2).released
    assert view.barrier_state("t").data == {"a": 1, "b": 2}
    assert state.barrier_state("joins", "t").released_by == "b"
    assert view.reset_barrier("t").complete
    assert view.barrier_state("t") is None


@requires("versions")
def test_hostile_names_are_names_like_any_other(state: Any) -> None:
    names = [
        "released_by",
        "__proto__",
        "a b",
        "a\x00b",
        "😀",
        '"quote',
        "{tag}",
        "*",
        "x" * 1024,
        "0",
    ]
    group, key = "{hash}*:g", "k:{x}\n"
    for name in names:
        state.barrier(group, key, parties=len(names), arrival=name, data=name)
    seen = state.barrier_state(group, key)
    assert seen.complete
    assert seen.released_by == "0"
    assert seen.data == {name: name for name in names}


@requires("versions")
def test_msgpack_holds_bytes_in_the_data(open_state: Opener) -> None:
    state = with_codec(open_state, "msgpack")
    state.barrier("g", "k", parties=2, arrival="a", data=b"\x00\xff")
    done = state.barrier("g", "k", parties=2, arrival="b", data={"nan": math.inf})
    assert done.data == {"a": b"\x00\xff", "b": {"nan": math.inf}}
    assert state.get("g", "k") == layout(
        2, ("a", b"\x00\xff"), ("b", {"nan": math.inf}), released_by="b"
    )


@requires("versions", "ttl")
def test_ttl_gives_the_barrier_an_expiry(state: Any) -> None:
    state.barrier("g", "k", parties=2, arrival="a", ttl=60)
    assert 0 < state.ttl("g", "k") <= 60
    state.barrier("g", "k", parties=2, arrival="b", ttl=120)  # set anew by each recorded one
    assert 60 < state.ttl("g", "k") <= 120
    state.barrier("g", "short", parties=2, arrival="a", ttl=0.2)
    eventually(state, lambda: state.barrier_state("g", "short") is None)
    # expired: the next arrival starts a new use
    assert state.barrier("g", "short", parties=2, arrival="a").arrived == 1


@requires("versions", "ttl")
def test_through_a_ttl_view_a_recorded_arrival_slides_the_group_expiry(state: Any) -> None:
    view = state.group("trace", ttl=60)
    view.barrier("join", parties=3, arrival="a")
    assert 59 < state.group_ttl("trace") <= 60
    state.expire_group("trace", 10)
    view.barrier("join", parties=3, arrival="a")  # a retry writes nothing: nothing slides
    assert state.group_ttl("trace") <= 10
    view.barrier("join", parties=3, arrival="b")
    assert 59 < state.group_ttl("trace") <= 60
    state.set("trace", "other", 1)  # so that the group outlives the barrier's reset
    state.expire_group("trace", 10)
    view.reset_barrier("join")  # a write too
    assert 59 < state.group_ttl("trace") <= 60
