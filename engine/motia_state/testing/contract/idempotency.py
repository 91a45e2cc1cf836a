"""Idempotency keys: a keyed write applies once, however often a retried step sends it; a
repeat returns the first call's result and writes nothing."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any

import pytest

from motia_state import IdempotencyKeyReused, InvalidInput, UpdateFailed, VersionConflict
from motia_state.testing import requires
from motia_state.testing.blocking import Blocking

from .scopes import eventually


@requires("versions")
def test_a_repeated_set_returns_the_first_version_and_writes_nothing(state: Any) -> None:
    assert state.set("orders", "o-1", {"total": 3}, idempotency_key="step-1:0") == 1
    for _ in range(3):
        assert state.set("orders", "o-1", {"total": 3}, idempotency_key="step-1:0") == 1
    assert state.get_item("orders", "o-1").version == 1
    # another writer meanwhile: the repeat still answers with its own first result
    assert state.set("orders", "o-1", {"total": 4}) == 2
    assert state.set("orders", "o-1", {"total": 3}, idempotency_key="step-1:0") == 1
    assert state.get("orders", "o-1") == {"total": 4}


@requires("versions")
def test_a_counter_stays_exact_under_retries(state: Any) -> None:
    for step in range(5):
        for _retry in range(3):
            assert state.increment("stats", "orders", 2, idempotency_key=f"inv-{step}") == 2 * (
                step + 1
            )
    assert state.get("stats", "orders") == 10
    assert state.get_item("stats", "orders").version == 5


@requires("versions")
def test_every_write_repeats_its_first_result(state: Any) -> None:
    state.set("g", "gone", {"was": "here"})
    assert state.delete("g", "gone", idempotency_key="d") == {"was": "here"}
    state.set("g", "gone", "back")  # the repeat answers as the first call did, and keeps this
    assert state.delete("g", "gone", idempotency_key="d") == {"was": "here"}
    assert state.get("g", "gone") == "back"

    ops = [{"type": "increment", "path": "n", "by": 1}]
    assert state.update("g", "u", ops, idempotency_key="u") == {"n": 1}
    assert state.update("g", "u", ops, idempotency_key="u") == {"n": 1}
    assert state.get("g", "u") == {"n": 1}

    batch = {f"k{i}": i for i in range(5)}
    assert state.set_many("g", batch, idempotency_key="m") == 5
    versions = [state.get_item("g", k).version for k in batch]
    assert state.set_many("g", batch, idempotency_key="m") == 5
    assert [state.get_item("g", k).version for k in batch] == versions
    assert state.delete_many("g", ["k0", "k1", "nope"], idempotency_key="dm") == 2
    state.set("g", "k0", "again")
    assert state.delete_many("g", ["k0", "k1", "nope"], idempotency_key="dm") == 2
    assert state.get("g", "k0") == "again"


@requires("versions", "ttl")
def test_expire_and_persist_repeat(state: Any) -> None:
    state.set("g", "k", 1)
    assert state.expire("g", "k", 600, idempotency_key="e") is True
    assert state.persist("g", "k", idempotency_key="p") is True
    assert state.expire("g", "k", 600, idempotency_key="e") is True  # no new TTL
    assert state.ttl("g", "k") is None
    assert state.persist("g", "k", idempotency_key="p") is True  # the first answer


@requires("versions", "transactions")
def test_a_transaction_repeats_whole(state: Any) -> None:
    for _ in range(3):
        with state.transaction(idempotency_key="pay-7") as tx:  # one slot on Cluster: {shop}
            tx.increment("{shop}stats", "paid", 1)
            tx.set("{shop}orders", "o-7", {"paid": True})
            tx.update("{shop}orders", "o-8", [{"type": "set", "path": "seen", "value": 1}])
        assert tx.results == [1, 1, {"seen": 1}]
    assert state.get("{shop}stats", "paid") == 1
    assert state.get_item("{shop}orders", "o-7").version == 1


@requires("versions")
def test_the_key_with_other_arguments_is_refused_and_writes_nothing(state: Any) -> None:
    state.set("g", "k", 1, idempotency_key="once")
    others: list[Callable[[], Any]] = [
        lambda: state.set("g", "k", 2, idempotency_key="once"),
        lambda: state.set("g", "k2", 1, idempotency_key="once"),
        lambda: state.set("g", "k", 1, ttl=60, idempotency_key="once"),
        lambda: state.increment("g", "k", 1, idempotency_key="once"),
        lambda: state.delete("g", "k", idempotency_key="once"),
    ]
    for other in others:
        with pytest.raises(IdempotencyKeyReused, match="other arguments"):
            other()
    assert state.get_item("g", "k").version == 1
    assert state.get("g", "k2") is None


@requires("versions")
def test_a_version_read_anew_by_the_retry_gets_the_receipt(state: Any) -> None:
    """A retried step reads the item again and finds the version its first run wrote: the
    condition is not part of what the key names, so the receipt answers."""
    state.set("g", "k", "v1")
    assert state.set("g", "k", "v2", version=1, idempotency_key="cas") == 2
    assert state.set("g", "k", "v2", version=2, idempotency_key="cas") == 2
    assert state.get_item("g", "k").version == 2


@requires("versions")
def test_a_refused_call_leaves_no_receipt(state: Any) -> None:
    state.set("g", "k", "v1")
    with pytest.raises(VersionConflict):
        state.set("g", "k", "v2", version=5, idempotency_key="cas")
    assert state.set("g", "k", "v2", version=1, idempotency_key="cas") == 2  # a first attempt
    state.set("g", "text", "not a number")
    with pytest.raises(UpdateFailed):
        state.increment("g", "text", 1, idempotency_key="inc")
    state.set("g", "text", 41)
    assert state.increment("g", "text", 1, idempotency_key="inc") == 42


@requires("versions")
def test_a_key_belongs_to_its_group(state: Any) -> None:
    assert state.increment("a", "n", idempotency_key="k") == 1
    assert state.increment("b", "n", idempotency_key="k") == 1
    assert state.increment("a", "n", idempotency_key="k") == 1
    assert (state.get("a", "n"), state.get("b", "n")) == (1, 1)


@requires("versions")
def test_receipts_are_invisible(state: Any) -> None:
    state.set("orders", "o", 1, idempotency_key="x")
    state.delete("orders", "o", idempotency_key="y")
    assert state.list_groups() == []
    with pytest.raises(InvalidInput, match="reserved"):
        state.get_group("\x00motia-state:receipts")


@requires("versions")
def test_receipts_expire(open_state: Any) -> None:
    state = open_state(idempotency_ttl=0.3)
    assert state.increment("g", "n", idempotency_key="k") == 1
    # kept for 0.3 s, then gone: the same key applies again
    eventually(state, lambda: state.increment("g", "n", idempotency_key="k") == 2)
    assert state.get("g", "n") == 2


@pytest.mark.parametrize(
    "key",
    ["", 7, b"bytes", "\udc80", "k" * 8193],
    ids=["empty", "int", "bytes", "surrogate", "too-long"],
)
def test_a_bad_key_is_refused_before_anything_is_written(state: Any, key: Any) -> None:
    with pytest.raises(InvalidInput, match="idempotency_key"):
        state.set("g", "k", 1, idempotency_key=key)
    with (
        pytest.raises(InvalidInput, match="idempotency_key"),
        state.transaction(idempotency_key=key) as tx,
    ):
        tx.set("g", "k", 1)
    assert state.get("g", "k") is None


def test_an_op_in_a_transaction_takes_no_key(state: Any) -> None:
    with pytest.raises(TypeError, match="idempotency_key"), state.transaction() as tx:
        tx.set("g", "k", 1, idempotency_key="x")
    assert state.get("g", "k") is None


@requires("versions")
def test_racing_repeats_apply_once_and_agree(open_state: Any) -> None:
    """States of their own send one keyed increment at once (threads; tasks on one loop for
    the async API): exactly one applies, and every caller gets its result."""
    states = [open_state() for _ in range(4)]
    if isinstance(states[0], Blocking):
        loop = states[0]._loop

        async def together() -> list[Any]:
            calls = [s._target.increment("race", "n", 5, idempotency_key="one") for s in states]
            return list(await asyncio.gather(*calls))

        results = loop.run_until_complete(together())
    else:
        results = []
        start = threading.Barrier(len(states))

        def step(s: Any) -> None:
            start.wait()
            results.append(s.increment("race", "n", 5, idempotency_key="one"))

        threads = [threading.Thread(target=step, args=(s,)) for s in states]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert results == [5, 5, 5, 5]
    assert states[0].get_item("race", "n").version == 1
