"""Bad input, fuzzed against a real server: every call either does the right thing or raises
a typed error, and a call that raises leaves the server exactly as it was.

`tests/test_differential.py` compares backends on valid calls; this one throws what a
careless or hostile caller might: names with globs, braces, colons, control characters
and surrogates, non-strings, NaN and infinities, integers past 64 bits, bytes, sets,
deep nesting, oversized values, wrong versions and TTLs, malformed update ops.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motia_state import State, StateError

from .conftest import Servers


def _nest(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


NAMES = st.one_of(
    st.sampled_from(["g", "g*", "g?", "[g]", "a:b", "{t}x", "}y", "ü", "g\\", "", " ", "\x00"]),
    st.text(max_size=8),
    st.text(min_size=300, max_size=600),
    st.sampled_from([None, 1, 1.5, b"g", ["g"], True]),
)
JSONISH = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),  # unbounded: past 64 bits too
        st.floats(),  # NaN and infinities included
        st.text(max_size=10),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=12,
)
VALUES = st.one_of(
    JSONISH,
    st.sampled_from([b"bytes", {1, 2}, (1, 2), object(), {1: "int key"}, "x" * 70_000]),
    st.integers(min_value=0, max_value=60).map(lambda n: _nest(n)),
)
VERSIONS = st.one_of(
    st.none(),
    st.integers(min_value=-2, max_value=4),
    st.sampled_from([2**70, "1", 1.0, True, float("nan")]),
)
TTLS = st.one_of(
    st.none(),
    st.floats(),  # NaN, inf, negative, zero, huge
    st.sampled_from([0, -1, "5", 10**12, True]),
    st.floats(min_value=1, max_value=100),
)
UPDATE_OPS = st.lists(
    st.fixed_dictionaries(
        {
            "type": st.sampled_from(
                ["set", "increment", "decrement", "remove", "merge", "append", "nope", 3]
            )
        },
        optional={
            "path": st.one_of(
                st.text(max_size=5), st.lists(st.text(max_size=3), max_size=3), st.integers()
            ),
            "value": VALUES,
            "by": st.one_of(st.integers(), st.floats(), st.text(max_size=2)),
        },
    ),
    max_size=3,
) | st.sampled_from([None, "ops", [1, 2]])


CALLS = st.one_of(
    st.tuples(st.just("set"), NAMES, NAMES, VALUES, VERSIONS, TTLS),
    st.tuples(
        st.just("set_many"),
        NAMES,
        st.dictionaries(NAMES.filter(lambda n: isinstance(n, str)), VALUES, max_size=3),
        TTLS,
    ),
    st.tuples(
        st.just("increment"),
        NAMES,
        NAMES,
        st.one_of(st.integers(), st.floats(), st.text(max_size=2)),
        VERSIONS,
        TTLS,
    ),
    st.tuples(st.just("update"), NAMES, NAMES, UPDATE_OPS, VERSIONS, TTLS),
    st.tuples(st.just("delete"), NAMES, NAMES, VERSIONS),
    st.tuples(st.just("expire"), NAMES, NAMES, TTLS),
    st.tuples(
        st.just("transaction"),
        st.lists(st.tuples(NAMES, NAMES, VALUES, VERSIONS), min_size=1, max_size=3),
    ),
)


def _call(state: State, call: tuple[Any, ...]) -> Any:
    name, *args = call
    if name == "set":
        group, key, value, version, ttl = args
        return state.set(group, key, value, version=version, ttl=ttl)
    if name == "set_many":
        group, mapping, ttl = args
        return state.set_many(group, mapping, ttl=ttl)
    if name in ("increment", "update"):
        group, key, operand, version, ttl = args
        return getattr(state, name)(group, key, operand, version=version, ttl=ttl)
    if name == "delete":
        group, key, version = args
        return state.delete(group, key, version=version)
    if name == "expire":
        return state.expire(*args)
    with state.transaction() as tx:
        for group, key, value, version in args[0]:
            tx.set(group, key, value, version=version)
    return tx.results


def _snapshot(raw: redis.Redis, prefix: str) -> dict[bytes, Any]:
    """Every key the engine may have touched under ``prefix``, with its whole content."""
    meta = prefix[:-1] + "#"
    found: dict[bytes, Any] = {}
    for pattern in (f"{prefix}*", f"{meta}*"):
        for key in raw.scan_iter(match=pattern.replace("[", "\\["), count=1000):
            kind = raw.type(key)
            if kind == b"hash":
                found[key] = raw.hgetall(key)
            elif kind == b"zset":
                found[key] = raw.zrange(key, 0, -1, withscores=True)
            elif kind == b"stream":
                found[key] = raw.xlen(key)
            elif kind == b"set":
                found[key] = raw.smembers(key)
            else:
                found[key] = raw.get(key)
    return found


@pytest.fixture(scope="module")
def fuzz_target(servers: Servers) -> Iterator[tuple[State, redis.Redis, str]]:
    url, _ = servers.redis()
    prefix = f"fz{uuid.uuid4().hex[:8]}:"
    raw = redis.Redis.from_url(url)
    with State.from_url(url, prefix=prefix, max_value_bytes=64_000, cleanup_interval=None) as state:
        yield state, raw, prefix
    for key in list(_snapshot(raw, prefix)):
        raw.delete(key)
    raw.close()


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(calls=st.lists(CALLS, min_size=1, max_size=4))
def test_bad_input_is_a_typed_error_and_writes_nothing(
    fuzz_target: tuple[State, redis.Redis, str], calls: list[tuple[Any, ...]]
) -> None:
    state, raw, prefix = fuzz_target
    for call in calls:
        before = _snapshot(raw, prefix)
        error: StateError | None = None
        try:
            _call(state, call)
        except StateError as exc:
            error = exc
        if error is None:
            continue
        # typed: a subclass that says what was wrong, never a server error passed through
        assert type(error) is not StateError, (call, error)
        assert "server error" not in str(error), (call, error)
        assert "user_script" not in str(error), (call, error)
        assert _snapshot(raw, prefix) == before, (call, error)  # nothing written
