"""transaction(): ops across keys and groups, in order, in one call, all or nothing."""

# A transaction block is the statement under test: it holds several collected ops.
# ruff: noqa: PT012

from __future__ import annotations

from typing import Any

import pytest

from motia_state import InvalidInput, NotANumber, Op, State, VersionConflict
from motia_state.testing import Target, requires

# One hash tag: on Redis Cluster a transaction's groups must share a slot.
ACCOUNTS, LEDGER, STATS = "{bank}accounts", "{bank}ledger", "{bank}stats"


@requires("transactions", "versions")
def test_ops_across_groups_commit_together(state: Any) -> None:
    state.set(ACCOUNTS, "a", {"balance": 100})
    state.set(ACCOUNTS, "b", {"balance": 5})
    with state.transaction() as tx:
        tx.update(ACCOUNTS, "a", [Op.decrement("balance", 30)])
        tx.update(ACCOUNTS, "b", [Op.increment("balance", 30)])
        tx.set(LEDGER, "t1", {"from": "a", "to": "b", "amount": 30}, version=0)
        tx.increment(STATS, "transfers")
        tx.delete(ACCOUNTS, "missing")
    assert tx.results == [
        {"balance": 70},
        {"balance": 35},
        1,
        1,
        None,
    ]
    assert state.get(ACCOUNTS, "a") == {"balance": 70}
    assert state.get(LEDGER, "t1")["amount"] == 30
    assert state.get(STATS, "transfers") == 1
    assert state.list_groups() == [ACCOUNTS, LEDGER, STATS]
    # (the {bank} hash tag puts the three groups in one Redis Cluster slot, which a
    # transaction across groups needs there; other backends take any names)


@requires("transactions", "versions")
def test_ops_apply_in_order(state: Any) -> None:
    state.set("g", "k1", "one")
    with state.transaction() as tx:
        tx.delete("g", "k1")
        tx.set("g", "k2", "two")
        tx.delete("g", "k2")
        tx.set("g", "k3", "three")
    assert state.items("g") == {"k3": "three"}
    # each delete raised the group's version floor (k1 ended at 2, k2 at 4): new items start
    # above it, exactly as they would one call at a time
    assert tx.results == ["one", 3, "two", 5]
    with state.transaction() as tx:
        tx.set("h", "n", 1)
        tx.increment("h", "n", 2)
        tx.update("h", "n", [Op.increment("", 3)])
        tx.set("h", "n", 10, version=3)
    assert state.get_item("h", "n").value == 10
    assert state.get_item("h", "n").version == 4
    assert tx.results == [1, 3, 6, 4]


@requires("transactions", "versions")
def test_a_failed_condition_applies_nothing_and_names_every_failure(state: Any) -> None:
    state.set("g", "a", 1)
    state.set("g", "b", 1)
    state.set("g", "b", 2)
    with pytest.raises(VersionConflict) as info, state.transaction() as tx:
        tx.set("g", "new", "x")
        tx.set("g", "a", 10, version=5)
        tx.increment("g", "c")
        tx.delete("g", "b", version=1)
        tx.update("g", "a", [Op.set("", 3)], version=0)
    assert info.value.conflicts == [("g", "a", 5, 1), ("g", "b", 1, 2), ("g", "a", 0, 1)]
    assert state.items("g") == {"a": 1, "b": 2}
    assert state.get_item("g", "b").version == 2


@requires("transactions", "versions")
def test_a_failing_update_applies_nothing(state: Any) -> None:
    state.set("g", "text", "hello")
    with pytest.raises(NotANumber), state.transaction() as tx:
        tx.set("g", "x", 1)
        tx.increment("g", "text")
    assert state.items("g") == {"text": "hello"}


@requires("transactions")
def test_an_exception_in_the_block_sends_nothing(state: Any) -> None:
    with pytest.raises(RuntimeError), state.transaction() as tx:
        tx.set("g", "k", 1)
        raise RuntimeError("changed my mind")
    assert state.list_groups() == []
    with pytest.raises(InvalidInput), state.transaction() as tx:
        tx.set("g", "k", 1)
        tx.set("", "k", 1)  # refused while collecting
    assert state.list_groups() == []


@requires("transactions")
def test_empty_transaction_does_nothing(state: Any) -> None:
    with state.transaction() as tx:
        pass
    assert tx.results is None


@requires("transactions", "versions")
def test_transaction_on_a_state_instance(target: Target) -> None:
    with State.from_url(target.url, **target.options) as state, state.transaction() as tx:
        tx.set("g", "k", 1)
    assert tx.results == [1]


@requires("transactions", "versions")
def test_a_large_transaction(state: Any) -> None:
    """Thousands of ops in one call; thousands of failed conditions reported in one error."""
    with state.transaction() as tx:
        for i in range(3000):
            tx.set("big", f"k{i}", i)
    assert tx.results == [1] * 3000
    with pytest.raises(VersionConflict) as info, state.transaction() as tx:
        for i in range(9000):
            tx.set("big", f"k{i % 3000}", i, version=0)
    assert len(info.value.conflicts) == 9000
    assert state.get("big", "k2999") == 2999
