"""The change feed: watch, replay, consumer groups, acknowledgements, on_change, Motia's events.

Order is checked per group (a Cluster keeps a stream per group; a single server orders all)."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from typing import Any

import pytest

from motia_state import (
    Change,
    EncodeError,
    IdempotencyKeyReused,
    InvalidInput,
    NotANumber,
    Op,
    ValueTooLarge,
    VersionConflict,
)
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


# -- the outbox: events a transaction emits, recorded with its changes -------------------------
#
# One group per test where order is checked: on Redis Cluster each group has its own stream.


def events_of(state: Any, **options: Any) -> list[Change]:
    """Every retained event (of ``options``' topics, groups), read from the start."""
    with state.events(since="0", block=0.2, **options) as events:
        return drain(events)


@requires("feed", "transactions")
def test_an_event_commits_with_its_transaction(state: Any) -> None:
    with state.watch("orders", block=0.3, events=True) as watch:
        with state.transaction() as tx:
            tx.set("orders", "o-1", {"total": 3})
            tx.emit("order.created", {"id": "o-1", "total": 3})
        found = drain(watch)
    assert tx.results is not None
    version, event_id = tx.results
    assert version == 1
    assert isinstance(event_id, str)
    assert [(c.op, c.key, c.topic) for c in found] == [
        ("set", "o-1", None),
        ("emit", None, "order.created"),
    ]
    event = found[1]
    assert event.is_event
    assert not found[0].is_event
    assert (event.group, event.data, event.version) == ("orders", {"id": "o-1", "total": 3}, None)
    assert event.event_id == event.id == event_id  # the id the transaction got back
    assert event.motia_event() is None  # no state trigger: Motia's emit takes topic and data
    assert not event.has_values
    assert event.value is None
    assert state.get("orders", "o-1") == {"total": 3}


@requires("feed", "transactions", "versions")
def test_a_refused_transaction_emits_nothing(state: Any) -> None:
    state.set("orders", "o-1", {"total": 3})
    state.set("orders", "text", "not a number")
    with pytest.raises(VersionConflict), state.transaction() as tx:  # noqa: PT012
        tx.emit("order.paid", {"id": "o-1"})
        tx.set("orders", "o-1", {"total": 4}, version=7)
    with pytest.raises(NotANumber), state.transaction() as tx:  # noqa: PT012
        tx.set("orders", "o-2", {"total": 1})
        tx.emit("order.created", {"id": "o-2"})
        tx.increment("orders", "text")
    with pytest.raises(RuntimeError), state.transaction() as tx:  # noqa: PT012
        tx.emit("order.created", {"id": "o-3"}, group="orders")
        raise RuntimeError("the step failed")
    with pytest.raises(VersionConflict):
        state.set("orders", "o-1", 5, version=9, emit=("order.paid", {"id": "o-1"}))
    assert events_of(state) == []
    assert state.items("orders") == {"o-1": {"total": 3}, "text": "not a number"}
    assert state.get_item("orders", "o-1").version == 1


@requires("feed", "transactions", "versions")
def test_emit_on_a_write_returns_what_the_write_returns(state: Any) -> None:
    view = state.group("orders")
    with state.watch("orders", block=0.3, events=True) as watch:
        assert state.set("orders", "o-1", {"total": 3}, emit=("order.created", {"id": 1})) == 1
        assert state.increment("orders", "n", 2, emit=("counted", 2)) == 2
        ops = [Op.set("paid", True)]
        assert state.update("orders", "o-1", ops, emit=["order.paid", None]) == {
            "total": 3,
            "paid": True,
        }
        assert state.delete("orders", "o-1", emit=("order.deleted", {"id": 1})) == {
            "total": 3,
            "paid": True,
        }
        # (above the group's floor: o-1 was removed at version 3)
        assert view.set("o-2", "two", version=0, emit=("order.created", {"id": 2})) == 4
        assert state.delete("orders", "absent", emit=("order.deleted", {"id": 3})) is None
        found = drain(watch)
    assert [(c.op, c.key or c.topic, c.data) for c in found] == [
        ("set", "o-1", None),
        ("emit", "order.created", {"id": 1}),
        ("increment", "n", None),
        ("emit", "counted", 2),
        ("update", "o-1", None),
        ("emit", "order.paid", None),
        ("delete", "o-1", None),
        ("emit", "order.deleted", {"id": 1}),
        ("set", "o-2", None),
        ("emit", "order.created", {"id": 2}),
        ("emit", "order.deleted", {"id": 3}),  # a delete of nothing still applies: it emits
    ]


@requires("feed", "transactions", "versions")
def test_a_keyed_transaction_repeated_emits_once(state: Any) -> None:
    results = []
    for _retry in range(3):
        with state.transaction(idempotency_key="step-7") as tx:
            tx.increment("orders", "count")
            tx.emit("order.counted", {"step": 7})
        results.append(tx.results)
    assert results[0] == results[1] == results[2]  # the same event id too
    for _retry in range(3):
        assert state.set("orders", "o-1", 1, idempotency_key="s", emit=("order.created", 1)) == 1
    with pytest.raises(IdempotencyKeyReused):  # the key without the event asks another thing
        state.set("orders", "o-1", 1, idempotency_key="s")
    found = events_of(state)
    assert [(c.topic, c.data) for c in found] == [
        ("order.counted", {"step": 7}),
        ("order.created", 1),
    ]
    assert found[0].event_id == results[0][1]
    assert state.get("orders", "count") == 1


@requires("feed", "transactions")
def test_events_and_changes_share_one_order(state: Any) -> None:
    with state.watch("g", block=0.3, events=True) as watch:
        with state.transaction() as tx:
            tx.emit("first", 1)  # before any write: the group is the first op's that names one
            tx.set("g", "a", 1)
            tx.emit("second", 2)
            tx.delete("g", "a")
            tx.emit("third", 3)
        state.set("g", "b", 2, emit=("fourth", 4))
        everything = drain(watch)
    with state.watch("g", since="0", block=0.2) as watch:  # a plain watch: changes only
        changes = drain(watch)
    assert [c.op if c.op != "emit" else c.topic for c in everything] == [
        "first", "set", "second", "delete", "third", "set", "fourth"
    ]  # fmt: skip
    assert [c.op for c in changes] == ["set", "delete", "set"]
    assert all(c.group == "g" for c in everything)


@requires("feed", "transactions")
def test_events_are_filtered_by_topic_and_group(state: Any) -> None:
    for group, topic in [("a", "x"), ("a", "y"), ("b", "x"), ("b", "z")]:
        with state.transaction() as tx:
            tx.emit(topic, f"{group}{topic}", group=group)
    assert [c.data for c in events_of(state, topics="x")] == ["ax", "bx"]
    assert [c.data for c in events_of(state, topics=["y", "z"])] == ["ay", "bz"]
    assert [c.data for c in events_of(state, topics="x", groups="b")] == ["bx"]
    assert [c.data for c in events_of(state, topics="nobody")] == []
    assert sorted(c.data for c in events_of(state)) == ["ax", "ay", "bx", "bz"]
    with state.watch(since="0", block=0.2) as watch:
        assert drain(watch) == []  # events only, and a watch yields changes by default


@requires("feed", "transactions")
def test_consumers_of_events_ack_resume_and_claim(open_state: Opener) -> None:
    state = open_state()
    mailer = state.events("order.created", consumer=("mailer", "m1"), block=0.2)
    for i in range(5):
        state.set("orders", f"o{i}", i, emit=("order.created", {"id": i}))
        state.set("orders", f"o{i}", i + 1, emit=("order.updated", {"id": i}))
    got = [next(mailer) for _ in range(5)]
    assert [c.data for c in got] == [{"id": i} for i in range(5)]
    assert state.ack(*got[:2]) == 2
    mailer.close()  # "crashes" with three events unacknowledged

    again = state.events("order.created", consumer=("mailer", "m1"), block=0.2)
    resumed = drain(again)  # its own pending events first, with the ids they had
    assert [c.event_id for c in resumed] == [c.event_id for c in got[2:]]
    again.close()

    settle(state, 0.3)  # m1 never comes back: m2 claims what it left that long
    other = state.events("order.created", consumer=("mailer", "m2"), claim_after=0.2, block=0.3)
    claimed = drain(other)
    assert [c.event_id for c in claimed] == [c.event_id for c in got[2:]]
    assert state.ack(*claimed) == 3
    state.set("orders", "new", 1, emit=("order.created", {"id": "new"}))
    assert [c.data for c in drain(other)] == [{"id": "new"}]
    other.close()
    assert state.ack(*claimed) == 0  # acknowledged once only


@requires("feed", "transactions")
def test_on_event_acks_after_the_handler_and_retries_a_failure(state: Any) -> None:
    seen: list[tuple[str, Any]] = []
    failed: list[str] = []

    def handler(event: Change) -> None:
        if event.data == "flaky" and not failed:
            failed.append(event.event_id)
            raise RuntimeError("the mail server is down")
        seen.append((event.event_id, event.data))

    subscription = state.on_event(["mail"], handler, consumer=("mailer", "m1"))
    try:
        for data in ["one", "flaky", "two"]:
            state.set("orders", data, 1, emit=("mail", data))
        state.set("orders", "other", 1, emit=("sms", "not mine"))
        deadline = time.monotonic() + 15
        while len({d for _, d in seen}) < 3 and time.monotonic() < deadline:
            settle(state, 0.1)
    finally:
        subscription.stop()
    assert {d for _, d in seen} == {"one", "flaky", "two"}
    assert [i for i, d in seen if d == "flaky"] == failed  # retried under the same id
    assert all(d != "not mine" for _, d in seen)
    with state.events("mail", consumer=("mailer", "m1"), block=0.2) as pending:
        assert drain(pending) == []  # every one acknowledged once handled


@requires("feed", "transactions")
def test_an_emit_names_its_group(state: Any) -> None:
    with state.transaction() as tx:
        tx.set("{o}a", "k", 1)
        tx.emit("default", 1)
        tx.emit("named", 2, group="{o}b")
    with state.transaction() as tx:
        tx.emit("alone", 3, group="{o}b")
    assert [(c.topic, c.group) for c in events_of(state, groups="{o}a")] == [("default", "{o}a")]
    assert [(c.topic, c.group) for c in events_of(state, groups="{o}b")] == [
        ("named", "{o}b"),
        ("alone", "{o}b"),
    ]
    assert state.list_groups() == ["{o}a"]  # an event is no item: its group stays empty
    with pytest.raises(InvalidInput, match="group="), state.transaction() as tx:
        tx.emit("nowhere", 1)
    assert len(events_of(state)) == 3


@requires("feed", "transactions")
@pytest.mark.parametrize(
    ("emit", "error", "match"),
    [
        (lambda tx, s: tx.emit("", 1), InvalidInput, "topic must not be empty"),
        (lambda tx, s: tx.emit(None, 1), InvalidInput, "topic must be a str"),
        (lambda tx, s: tx.emit(b"t", 1), InvalidInput, "topic must be a str"),
        (lambda tx, s: tx.emit("t\ud800", 1), InvalidInput, "lone surrogate"),
        (lambda tx, s: tx.emit("t" * 1025, 1), InvalidInput, "limit is 1024"),
        (lambda tx, s: tx.emit("t", {1, 2}), EncodeError, None),
        (lambda tx, s: tx.emit("t", object()), EncodeError, None),
        (lambda tx, s: tx.emit("t", float("nan")), EncodeError, None),
        (lambda tx, s: tx.emit("t", "x" * 2048), ValueTooLarge, "data of event 't'"),
        (lambda tx, s: tx.emit("t", 1, group=""), InvalidInput, "group must not be empty"),
        (lambda tx, s: tx.emit("t", 1, group=5), InvalidInput, "group must be a str"),
        (lambda tx, s: tx.set("g", "k", 1, emit=("t", 1)), TypeError, "emit"),
        (lambda tx, s: s.set("g", "k", 1, emit="t"), InvalidInput, "emit must be a"),
        (lambda tx, s: s.set("g", "k", 1, emit=("t", 1, 2)), InvalidInput, "emit must be a"),
        (lambda tx, s: s.set("g", "k", 1, emit={"t": 1}), InvalidInput, "emit must be a"),
        (lambda tx, s: s.set("g", "k", 1, emit=("", 1)), InvalidInput, "topic"),
        (lambda tx, s: s.delete("g", "k", emit=("t", {1})), EncodeError, None),
        (lambda tx, s: s.increment("g", "k", emit=("t", "x" * 2048)), ValueTooLarge, "event"),
    ],
)
def test_a_bad_event_is_refused_and_nothing_is_written(
    open_state: Opener,
    emit: Callable[[Any, Any], None],
    error: type[Exception],
    match: str | None,
) -> None:
    state = open_state(max_value_bytes=1024)
    with pytest.raises(error, match=match), state.transaction() as tx:  # noqa: PT012
        tx.set("g", "k", "kept out")
        emit(tx, state)
    assert state.list_groups() == []
    assert events_of(state) == []


@requires("feed")
@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda s: s.events(topics=[]), "at least one topic"),
        (lambda s: s.events(topics=5), "topics must be a topic or a list"),
        (lambda s: s.events(topics=b"t"), "topics must be a topic or a list"),
        (lambda s: s.events(topics=["ok", ""]), "topic must not be empty"),
        (lambda s: s.events(groups=[]), "at least one group"),
        (lambda s: s.events(since="yesterday"), "since"),
        (lambda s: s.events(claim_after=1), "claim_after needs a consumer"),
        (lambda s: s.watch(events="yes"), "events must be True or False"),
        (lambda s: s.on_event(["t", None], print), "topic must be a str"),
    ],
)
def test_bad_event_reader_arguments_are_refused_up_front(state: Any, call: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        call(state)


@requires("feed")
def test_history_is_an_items_records_newest_first_and_pages_back(open_state: Opener) -> None:
    state = open_state(record_values=True)
    state.set("g", "k", {"a": 1})
    state.set("g", "other", 1)  # another item, another group, an event: not its history
    state.set("h", "k", 2)
    state.set("g", "k", {"a": 1}, emit=("k.set", {"n": 1}))
    state.update("g", "k", [Op.set("b", 2)])
    state.delete("g", "k")
    state.increment("g", "k", 5)
    state.clear("g")  # a whole-group record is part of every item's history
    with state.watch("g", since="0", block=0, with_values=True) as watch:
        expected = [c for c in drain(watch) if c.key in ("k", None)][::-1]
    assert [c.op for c in expected] == ["clear", "increment", "delete", "update", "set", "set"]
    whole = state.history("g", "k", limit=100)
    assert whole.changes == expected
    assert whole.cursor is None
    assert whole.changes[3].value == {"a": 1, "b": 2}
    assert whole.changes[3].old_value == {"a": 1}
    pages, cursor = [], None
    while True:
        page = state.history("g", "k", limit=4, before=cursor)
        pages += page.changes
        if page.cursor is None:
            break
        cursor = page.cursor
    assert pages == expected
    assert state.history("g", "never").changes == expected[:1]  # only the group's clear
    assert state.history("elsewhere", "k").changes == []
    assert state.history("g", "k", before=expected[0].id).changes == expected[1:]


@requires("feed")
@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": True}, "limit"),
        ({"before": "1-0\n"}, "before"),
        ({"before": "9" * 21}, "before"),
        ({"before": 1}, "before"),
        ({"before": "$"}, "before"),
    ],
)
def test_history_refuses_bad_arguments(state: Any, arguments: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        state.history("g", "k", **arguments)
    with pytest.raises(InvalidInput, match="group"):
        state.history("", "k")
