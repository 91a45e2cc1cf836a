"""The change feed: watch, replay, consumer groups, acknowledgements, on_change, Motia's events.

Order is checked per group (a Cluster keeps a stream per group; a single server orders all)."""

from __future__ import annotations

import itertools
import time
from typing import Any

import pytest

from motia_state import Change, InvalidInput, Op
from motia_state.testing import Opener, requires, settle


def drain(watch: Any) -> list[Change]:
    """Every change up to the first quiet ``block`` (the watch must have a block)."""
    found: list[Change] = []
    for change in watch:
        if change is None:
            return found
        found.append(change)
    return found


@requires("feed")
def test_block_yields_none_when_quiet_and_zero_never_waits(state: Any) -> None:
    with state.watch(block=0) as watch:
        started = time.monotonic()
        assert next(watch) is None
        assert time.monotonic() - started < 1
        state.set("g", "k", 1)
        assert next(watch).key == "k"
        assert next(watch) is None


@requires("feed")
def test_replay_from_the_start_and_resume_after_any_id(state: Any) -> None:
    for i in range(20):
        state.set("g", f"k{i % 3}", i)
    with state.watch(since="0", block=0.2) as watch:
        history = drain(watch)
    assert len(history) == 20
    middle = history[7]
    with state.watch(since=middle.id, block=0.2) as watch:
        assert drain(watch) == history[8:]
    with state.watch(since=middle, block=0.2) as watch:  # a Change works as the position too
        assert drain(watch) == history[8:]


@requires("feed", "transactions", "versions")
def test_versions_in_the_feed_strictly_increase_per_item(state: Any) -> None:
    with state.watch(block=0.3) as watch:
        state.set("g", "k", 1)
        state.set("g", "k", 2)
        state.delete("g", "k")
        state.set("g", "k", 3)  # re-created: continues above the delete
        state.set("g", "other", 1)
        state.clear("g")
        state.increment("g", "k")  # after a clear: above everything the group had
        with state.transaction() as tx:
            tx.delete("g", "k")
            tx.set("g", "k", "again")
        changes = drain(watch)
    versions: list[Any] = [c.version for c in changes if c.key == "k"]
    assert versions == [1, 2, 3, 4, 6, 7, 8]
    assert all(b > a for a, b in itertools.pairwise(versions))
    assert state.get_item("g", "k").version == versions[-1]


@requires("feed", "versions")
def test_values_are_recorded_only_when_asked(open_state: Opener) -> None:
    recording = open_state(record_values=True, ttl=None)
    plain = open_state()
    with recording.watch(block=0.3, with_values=True) as watch:
        recording.set("g", "k", {"a": [1, 2]})
        recording.update("g", "k", [Op.set("b", None)])
        recording.increment("g", "n", 3)
        recording.delete("g", "k")
        plain.set("g", "p", "not recorded")
        changes = drain(watch)
    assert [(c.op, c.old_value, c.value, c.has_values) for c in changes] == [
        ("set", None, {"a": [1, 2]}, True),
        ("update", {"a": [1, 2]}, {"a": [1, 2], "b": None}, True),
        ("increment", None, 3, True),
        ("delete", {"a": [1, 2], "b": None}, None, True),
        ("set", None, None, False),
    ]
    with recording.watch(since="0", block=0.2) as watch:  # recorded, but not asked for
        assert all(c.value is None and not c.has_values for c in drain(watch))


@requires("feed", "ttl")
def test_expiry_is_a_change_with_the_old_value(open_state: Opener) -> None:
    state = open_state(record_values=True, cleanup_interval=None)
    with state.watch(block=0.3, with_values=True) as watch:
        state.set("g", "k", "short-lived", ttl=0.05)
        settle(state, 0.2)
        assert state.cleanup() == 1
        changes = drain(watch)
    assert [(c.op, c.version, c.old_value) for c in changes] == [
        ("set", 1, None),
        ("expire", 2, "short-lived"),
    ]
    assert changes[1].motia_event() == {
        "event_type": "state:deleted",
        "scope": "g",
        "key": "k",
        "old_value": "short-lived",
        "new_value": None,
    }


@requires("feed")
def test_motia_event_names(open_state: Opener) -> None:
    state = open_state(record_values=True)
    with state.watch(block=0.3, with_values=True) as watch:
        state.set("orders", "o1", {"total": 1})
        state.set("orders", "o1", {"total": 2})
        state.delete("orders", "o1")
        state.set("orders", "o2", 1)
        state.clear("orders")
        events: list[Any] = [c.motia_event() for c in drain(watch)]
    assert [(e["event_type"], e["key"]) for e in events] == [
        ("state:created", "o1"),
        ("state:updated", "o1"),
        ("state:deleted", "o1"),
        ("state:created", "o2"),
        ("state:deleted", None),
    ]
    assert events[1] == {
        "event_type": "state:updated",
        "scope": "orders",
        "key": "o1",
        "old_value": {"total": 1},
        "new_value": {"total": 2},
    }


@requires("feed")
def test_consumer_group_delivers_each_change_once_and_redelivers_unacked(
    open_state: Opener,
) -> None:
    state = open_state()
    for i in range(6):
        state.set("orders", f"o{i}", i)
    first = state.watch("orders", since="0", consumer=("billing", "w1"), block=0.2)
    got = [next(first) for _ in range(6)]
    assert [c.key for c in got] == [f"o{i}" for i in range(6)]
    assert state.ack(*got[:2]) == 2
    first.close()  # "crashes" with four changes unacknowledged

    again = state.watch("orders", consumer=("billing", "w1"), block=0.2)
    assert [c.key for c in drain(again)] == ["o2", "o3", "o4", "o5"]  # its own pending first
    again.close()

    # w1 never comes back: w2 claims what w1 left unacknowledged for claim_after seconds
    settle(state, 0.3)
    other = state.watch("orders", consumer=("billing", "w2"), claim_after=0.2, block=0.3)
    claimed = drain(other)
    assert [c.key for c in claimed] == ["o2", "o3", "o4", "o5"]
    assert state.ack(*claimed) == 4
    state.set("orders", "new", 1)
    assert [c.key for c in drain(other)] == ["new"]
    other.close()
    assert state.ack(*claimed) == 0  # acknowledged once only

    # another consumer group reads the same changes independently, from where it starts
    audit = state.watch(consumer=("audit", "a1"), since="0", block=0.2)
    assert len(drain(audit)) == 7
    audit.close()


@requires("feed")
def test_consumers_of_one_group_share_the_work(open_state: Opener) -> None:
    state = open_state()
    one = state.watch(consumer=("workers", "one"), block=0.2, batch=2)
    two = state.watch(consumer=("workers", "two"), block=0.2, batch=2)
    for i in range(10):
        state.set("jobs", f"j{i}", i)
    a = [next(one) for _ in range(4)]
    b = drain(two)
    rest = drain(one)
    keys = [c.key for c in a + b + rest]
    assert sorted(keys) == sorted(f"j{i}" for i in range(10))  # each delivered exactly once
    assert b  # the second consumer got the entries the first had not taken
    one.close()
    two.close()


@requires("feed")
def test_on_change_without_consumer(state: Any) -> None:
    seen: list[str] = []
    subscription = state.on_change(["a", "b"], lambda change: seen.append(change.key))
    try:
        settle(state, 0.2)
        for group in "abc":
            state.set(group, group, 1)
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            settle(state, 0.1)
    finally:
        subscription.stop()
    assert seen == ["a", "b"]


@requires("feed")
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"since": "yesterday"}, "since"),
        ({"since": 5}, "since"),
        ({"block": -1}, "block"),
        ({"block": float("nan")}, "block"),
        ({"consumer": "billing"}, "consumer"),
        ({"consumer": ("billing", "")}, "consumer"),
        ({"consumer": ("a\ud800", "b")}, "lone surrogate"),
        ({"consumer": ("a", "b\ud800")}, "lone surrogate"),
        ({"claim_after": 1}, "claim_after needs a consumer"),
        ({"consumer": ("a", "b"), "claim_after": 0}, "claim_after"),
        ({"groups": []}, "at least one group"),
        ({"groups": 5}, "groups must be a group name or a list"),
        ({"groups": b"orders"}, "groups must be a group name or a list"),
        ({"groups": ["ok", ""]}, "group must not be empty"),
        ({"batch": 0}, "batch"),
    ],
)
def test_bad_watch_arguments_are_refused_up_front(state: Any, kwargs: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        state.watch(**kwargs)


@requires("feed")
def test_ack_refuses_what_a_consumer_group_did_not_deliver(state: Any) -> None:
    with state.watch(since="0", block=0.2) as watch:
        state.set("g", "k", 1)
        plain = drain(watch)
    with pytest.raises(InvalidInput, match="consumer"):
        state.ack(*plain)
    assert state.ack() == 0


@requires("feed", "transactions", "versions")
def test_every_change_gets_its_record(state: Any) -> None:
    with state.watch(["{t}g", "{t}h"], block=0.3) as changes:
        with state.transaction() as tx:
            tx.set("{t}g", "k", 1)
            tx.increment("{t}g", "k")
            tx.delete("{t}g", "k")
            tx.update("{t}h", "d", [Op.set("a", 1)])
        found: list[tuple[Any, ...]] = []
        for change in changes:
            if change is None:
                break
            found.append((change.op, change.group, change.key, change.version))
    assert found == [
        ("set", "{t}g", "k", 1),
        ("increment", "{t}g", "k", 2),
        ("delete", "{t}g", "k", 3),
        ("update", "{t}h", "d", 1),
    ]
