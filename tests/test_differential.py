"""Random operation sequences give identical results on every backend.

The contract tests pin the cases we thought of; this pins the ones we did not:
hypothesis drives the same sequence of calls through memory, file, embedded and
Redis and every result, version and error must agree.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from motia_state import Op, State, StateError, UpdateFailed, VersionConflict

from .conftest import Servers

GROUPS = st.sampled_from(["g", "g1", "g10", "x{y}", "}y", "ü"])
KEYS = st.sampled_from(["a", "b", "b:c", "{k}", "é"])
VALUES = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.booleans(), max_size=3),
)
VERSIONS = st.none() | st.integers(min_value=0, max_value=4)

AMOUNTS = st.integers(-(2**62), 2**62) | st.floats(-1e9, 1e9, allow_nan=False)
PATHS = st.sampled_from(["", "a", "a.b", "n"])
UPDATE_OPS = st.lists(
    st.one_of(
        st.builds(Op.set, PATHS, VALUES),
        st.builds(Op.increment, PATHS, AMOUNTS),
        st.builds(Op.merge, PATHS, st.dictionaries(st.sampled_from("xyz"), VALUES, max_size=2)),
        st.builds(Op.append, PATHS, VALUES),
        st.builds(Op.remove, st.sampled_from(["a", "n", "a.b"])),
    ),
    min_size=1,
    max_size=3,
)
TX_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("set"), GROUPS, KEYS, VALUES, VERSIONS),
        st.tuples(st.just("delete"), GROUPS, KEYS, VERSIONS),
        st.tuples(st.just("increment"), GROUPS, KEYS, AMOUNTS, VERSIONS),
        st.tuples(st.just("update"), GROUPS, KEYS, UPDATE_OPS, VERSIONS),
    ),
    min_size=1,
    max_size=4,
)

CALLS = st.one_of(
    st.tuples(st.just("set_ttl"), GROUPS, KEYS, VALUES),
    st.tuples(st.just("expire"), GROUPS, KEYS),
    st.tuples(st.just("persist"), GROUPS, KEYS),
    st.tuples(st.just("has_ttl"), GROUPS, KEYS),
    st.tuples(st.just("increment"), GROUPS, KEYS, AMOUNTS, VERSIONS),
    st.tuples(st.just("update"), GROUPS, KEYS, UPDATE_OPS, VERSIONS),
    st.tuples(st.just("transaction"), TX_OPS),
    st.tuples(st.just("set"), GROUPS, KEYS, VALUES, VERSIONS),
    st.tuples(st.just("delete"), GROUPS, KEYS, VERSIONS),
    st.tuples(st.just("get_item"), GROUPS, KEYS),
    st.tuples(st.just("set_many"), GROUPS, st.dictionaries(KEYS, VALUES, max_size=3)),
    st.tuples(st.just("delete_many"), GROUPS, st.lists(KEYS, max_size=3)),
    st.tuples(st.just("items"), GROUPS),
    st.tuples(st.just("clear"), GROUPS),
    st.tuples(st.just("list_groups")),
)


def _run(state: State, call: tuple[Any, ...]) -> Any:
    name, *args = call
    try:
        if name == "set_ttl":  # long TTLs: the expiry bookkeeping, not the clock, is compared
            return state.set(*args, ttl=60)
        if name == "expire":
            return state.expire(*args, 60)
        if name == "has_ttl":
            return state.ttl(*args) is not None
        if name == "transaction":
            with state.transaction() as tx:
                for sub_name, *sub_args in args[0]:
                    *positional, version = sub_args
                    getattr(tx, sub_name)(*positional, version=version)
            return tx.results
        if name in ("set", "delete", "increment", "update"):
            *positional, version = args
            return getattr(state, name)(*positional, version=version)
        result = getattr(state, name)(*args)
        if name == "get_item" and result is not None:
            # each backend stamps its own deadline a few ms apart: compare that there is one
            return dataclasses.replace(result, expires_at=result.expires_at is not None)
        return sorted(result.items()) if name == "items" else result
    except UpdateFailed as exc:
        return (type(exc).__name__, exc.code, exc.op_index)
    except VersionConflict as exc:
        return ("VersionConflict", exc.conflicts)
    except StateError as exc:
        return type(exc).__name__


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(CALLS, min_size=1, max_size=25))
def test_backends_agree(servers: Servers, tmp_path: Path, calls: list[tuple[Any, ...]]) -> None:
    prefix = f"d{uuid.uuid4().hex[:10]}:"
    servers.embedded_socket()  # keep the embedded server up across examples
    states = [
        State.from_url("memory://"),
        State.from_url(f"file://{tmp_path / uuid.uuid4().hex}.json"),
        State.from_url(f"embedded://{servers.embedded_dir()}", prefix=prefix),
        State.from_url(servers.redis()[0], prefix=prefix),
    ]
    try:
        for call in calls:
            results = [_run(s, call) for s in states]
            assert all(r == results[0] for r in results), (call, results)
    finally:
        for s in states:
            for group in s.list_groups():
                s.clear(group)
            s.close()
