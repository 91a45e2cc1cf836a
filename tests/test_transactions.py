"""transaction(): ops across keys and groups, in order, in one call, all or nothing."""

from __future__ import annotations

from typing import Any

import pytest

from motia_state import InvalidInput, Undecodable
from motia_state import ops as ops_module
from motia_state.backends.redis import RedisPlan
from motia_state.codecs import JsonCodec
from motia_state.core import Core
from motia_state.layout import KeyLayout

from .conftest import Target


def test_cluster_refuses_transactions_across_slots() -> None:
    plan = RedisPlan(KeyLayout(cluster=True))
    core = Core(JsonCodec(), max_value_bytes=1000)
    tx_ops = (core.set("a", "k", 1).op, core.set("b", "k", 1).op)
    steps = plan.steps(ops_module.Transaction(tx_ops, 1000))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="hash slots"):
        next(steps)
    same_slot = (core.set("{t}a", "k", 1).op, core.set("{t}b", "k", 1).op)
    call = next(plan.steps(ops_module.Transaction(same_slot, 1000)))  # type: ignore[arg-type]
    assert call[0] == "EVALSHA"


@pytest.mark.redis_only
def test_a_delete_of_an_undecodable_value_goes_through_and_says_so(
    state: Any, target: Target
) -> None:
    """Raising DecodeError after the delete committed would report a write that happened as
    failed (and a transaction retried on it would apply twice)."""
    layout = target.layout()
    with target.raw() as r:  # written by another tool: not JSON, not UTF-8
        r.hset(layout.data("holds"), mapping={"h1": b"legacy:not-json", "h2": b"\xff"})
    removed = state.delete("holds", "h1")
    assert isinstance(removed, Undecodable)
    assert removed.raw == b"legacy:not-json"
    assert "'holds'/'h1'" in removed.reason
    assert state.get("holds", "h1") is None
    state.set("holds", "balance", 100)
    with state.transaction() as tx:
        tx.increment("holds", "balance", -30)
        tx.delete("holds", "h2")
    assert state.get("holds", "balance") == 70
    assert tx.results[0] == 70
    assert tx.results[1] == Undecodable(b"\xff", tx.results[1].reason)
    assert state.keys("holds") == ["balance"]
