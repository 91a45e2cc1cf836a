"""The server and the reference agree: random values and random predicates, stored and queried
through each backend (on Redis evaluated by lua/query.lua in the server), against
`motia_state.query.matches` in Python, under both codecs."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motia_state import query
from motia_state.query import All, AnyOf, Check, Compare, Not, Predicate

from .conftest import Opener, Target

INT64 = (-(2**63), 2**63 - 1)
EDGES = [0, 1, -1, 2**53, 2**53 + 1, 2**63 - 1, -(2**63), 2**62]
FLOATS = [0.0, -0.0, 5e-324, 0.1, 0.2, 0.30000000000000004, 0.3, 1.0, 1e308, -1e308, 2.0**63]
TEXTS = ["", "a", "ab", "b", "B", "é", "😀", "\u2028", 'q"uote', "back\\slash", "ü", "10"]
KEYS = ("a", "b", "c")
PATHS: list[tuple[str, ...]] = [(), ("a",), ("b",), ("a", "b"), ("c",), ("a", "c"), ("z",)]

ints = st.one_of(st.sampled_from(EDGES), st.integers(*INT64))
floats = st.one_of(
    st.sampled_from(FLOATS), st.floats(allow_nan=False, allow_infinity=False, width=64)
)
texts = st.one_of(
    st.sampled_from(TEXTS),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=4),
)
scalars = st.one_of(st.none(), st.booleans(), ints, floats, texts)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.sampled_from(KEYS), inner, max_size=3),
    ),
    max_leaves=6,
)
paths = st.sampled_from(PATHS)


def _leaf() -> st.SearchStrategy[Predicate]:
    return st.one_of(
        st.builds(
            Compare,
            st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte", "contains", "notContains"]),
            paths,
            values,
        ),
        st.builds(Compare, st.sampled_from(["startsWith", "endsWith"]), paths, texts),
        st.builds(Compare, st.just("in"), paths, st.lists(values, max_size=3)),
        st.builds(Check, st.sampled_from(query.CHECKS), paths),
    )


predicates = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(All, st.lists(inner, max_size=3).map(tuple)),
        st.builds(AnyOf, st.lists(inner, max_size=3).map(tuple)),
        st.builds(Not, inner),
    ),
    max_leaves=5,
)


@pytest.mark.parametrize("codec", ["json", "msgpack"])
@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(items=st.lists(values, min_size=1, max_size=12), where=st.lists(predicates, max_size=3))
def test_the_server_and_the_reference_agree(
    open_state: Opener, target: Target, codec: str, items: list[Any], where: list[Predicate]
) -> None:
    if codec == "msgpack" and target.name == "file":
        pytest.skip("file:// keeps Motia's JSON file: JSON only")
    state = open_state(codec=codec, cleanup_interval=None)
    group = f"q-{uuid.uuid4().hex[:8]}"
    state.set_many(group, {f"k{i}": v for i, v in enumerate(items)})
    stored = state.items(group)  # as the codec gives them back: what the server compares
    for node in where:
        reference = query.decoded(state._core.codec, node)
        expected = sorted(k for k, v in stored.items() if query.matches(reference, v))
        page = state.query(group, node, limit=1000)
        assert page.cursor is None
        got = sorted(item.key for item in page.items)
        assert got == expected, (node, {k: stored[k] for k in set(got) ^ set(expected)})
        assert state.count(group, node) == len(expected), node
    state.clear(group)
