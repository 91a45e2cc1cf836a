"""Capabilities: each built-in backend declares exactly what it does (the contract suite skips
by them, so a claim too many fails its tests and one too few hides them), and a declaration
is checked name by name."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, get_args

import pytest

from motia_state import AsyncState, InvalidInput, State
from motia_state.capabilities import CAPABILITIES, COVERS, EVERY, IN_PROCESS, Capability, check

from .conftest import Target

DECLARED = {
    "memory": IN_PROCESS,
    "file": IN_PROCESS,
    "sqlite": IN_PROCESS,  # every capability but the feed, as memory:// and file://
    "embedded": EVERY,
    "redis": EVERY,
    "cluster": EVERY,
}


def test_each_backend_declares_what_it_does(state: Any, target: Target) -> None:
    assert state.capabilities == DECLARED[target.name]
    assert type(state.capabilities) is frozenset


def test_the_in_process_backends_lack_only_the_feed() -> None:
    assert frozenset({"versions", "ttl", "transactions", "feed"}) == CAPABILITIES == EVERY
    assert {"feed"} == CAPABILITIES - IN_PROCESS
    assert set(COVERS) == CAPABILITIES
    assert set(get_args(Capability)) == CAPABILITIES


@pytest.mark.redis_only
@pytest.mark.parametrize("api", [State, AsyncState])
def test_the_near_cache_declares_what_it_wraps(target: Target, api: Any) -> None:
    state = api.from_url(target.url, **target.options, cache=True)
    try:
        assert state.capabilities == EVERY
        assert type(state.capabilities) is frozenset
    finally:
        if api is State:
            state.close()
        else:
            asyncio.run(state.aclose())


def test_a_state_cannot_be_given_other_capabilities() -> None:
    with State.from_url("memory://") as state, pytest.raises(AttributeError):
        state.capabilities = EVERY  # type: ignore[misc]


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda: ["ttl"], {"ttl"}),
        (lambda: ("ttl", "feed"), {"ttl", "feed"}),
        (lambda: {"versions"}, {"versions"}),
        (lambda: CAPABILITIES, CAPABILITIES),
        (lambda: [], set()),
        (lambda: iter(["feed", "feed"]), {"feed"}),
        (lambda: (name for name in ("ttl", "versions")), {"ttl", "versions"}),
    ],
    ids=["list", "tuple", "set", "all", "none", "iterator", "generator"],
)
def test_check_takes_any_collection_of_known_names(
    make: Callable[[], Any], expected: set[str]
) -> None:
    result = check(make())
    assert type(result) is frozenset
    assert result == expected


class _Liar(str):
    """A str that passes for "ttl" in a set: equal to anything, hashed as "ttl"."""

    def __eq__(self, other: object) -> bool:
        return True

    def __hash__(self) -> int:
        return hash("ttl")


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ("ttl", "collection of names, not str"),
        (b"ttl", "collection of names, not bytes"),
        (None, "not NoneType"),
        (5, "not int"),
        (["ttl", "TTL"], "unknown capability 'TTL'"),
        (["feeds"], "unknown capability 'feeds'"),
        ([b"feed"], "unknown capability b'feed'"),
        ([["feed"]], r"unknown capability \['feed'\]"),
        ([None], "unknown capability None"),
        ([_Liar("nope")], "unknown capability 'nope'"),
        (["x" * 10_000], "unknown capability 'xxx"),
    ],
    ids=repr,
)
def test_check_refuses_anything_else_by_name(names: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message) as info:
        check(names)
    assert len(str(info.value)) < 300
    assert "feed, transactions, ttl, versions" in str(info.value) or "collection" in str(info.value)
