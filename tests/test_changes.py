"""The change feed on Redis: commit order, many writers, retention, claims after a crash, the
server's consumer groups and its blocking reads. What any backend with a feed must do is
exported with the contract suite (motia_state/testing/contract/feed.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from motia_state import Change, InvalidInput, Op, State, Unsupported
from motia_state.testing.contract.feed import drain
from motia_state.watch import Watch

from .conftest import Opener, Target, settle

pytestmark = pytest.mark.redis_only


def summary(changes: list[Change]) -> list[tuple[Any, ...]]:
    return [(c.op, c.group, c.key, c.version) for c in changes]


def in_order(got: list[Any], expected: list[Any], target: Target) -> bool:
    """Commit order: global on a standalone server, per group on Cluster (a stream each)."""
    if target.name != "cluster":
        return got == expected
    return sorted(got, key=lambda c: c[1] or "") == sorted(expected, key=lambda c: c[1] or "")


def test_watch_sees_every_kind_of_write_in_commit_order(state: Any, target: Target) -> None:
    state.set("orders", "before", 1)  # before the watch: not seen with since='$'
    with state.watch(block=0.3) as watch:
        state.set("orders", "o1", {"n": 1})
        state.update("orders", "o1", [Op.increment("n", 2)])
        state.increment("stats", "count", 5)
        state.set_many("orders", {"o2": 2, "o3": 3})
        state.delete("orders", "o2")
        state.delete_many("orders", ["o3", "missing"])
        with state.transaction() as tx:
            tx.set("orders", "o4", 4)
            tx.increment("orders", "o1-count")
        state.increment("stats", "count")
        state.clear("stats")
        changes = drain(watch)
    expected = [
        ("set", "orders", "o1", 1),
        ("update", "orders", "o1", 2),
        ("increment", "stats", "count", 1),
        ("set", "orders", "o2", 1),
        ("set", "orders", "o3", 1),
        ("delete", "orders", "o2", 2),
        ("delete", "orders", "o3", 2),
        ("set", "orders", "o4", 3),  # above the group's floor: o2, o3 were deleted at 2
        ("increment", "orders", "o1-count", 3),
        ("increment", "stats", "count", 2),
        ("clear", "stats", None, None),
    ]
    assert in_order(summary(changes), expected, target)
    ids = [c.id for c in changes if c.group == "orders"]
    assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
    assert [c.prev_version for c in changes[:3]] == [0, 1, 0]
    assert all(abs(c.ts - time.time()) < 60 for c in changes)


def test_watch_filters_groups(state: Any, target: Target) -> None:
    with state.watch(["a", "c"], block=0.3) as watch:
        for group in "abcab":
            state.set(group, "k", group)
        got = [(c.op, c.group, c.version) for c in drain(watch)]
    assert in_order(got, [("set", "a", 1), ("set", "c", 1), ("set", "a", 2)], target)


def test_every_committed_change_appears_exactly_once_across_many_writers(
    open_state: Opener, target: Target
) -> None:
    writers, rounds = 4, 150
    watcher = open_state()
    with watcher.watch(block=1.0) as watch:

        def write(n: int) -> None:
            # a State of its own per thread: separate connections, truly concurrent
            with State.from_url(target.url, **target.options) as own:
                for i in range(rounds):
                    own.increment("shared", "counter")
                    own.set("mine", f"w{n}", i)

        threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        changes = drain(watch)
    assert len(changes) == 2 * writers * rounds
    assert len({(c.group, c.id) for c in changes}) == len(changes)  # ids are per stream
    counter = [c.version for c in changes if c.group == "shared"]
    assert counter == list(range(1, writers * rounds + 1))  # commit order, no gaps, no repeats
    per_writer = Counter(c.key for c in changes if c.group == "mine")
    assert per_writer == {f"w{n}": rounds for n in range(writers)}
    for n in range(writers):
        mine = [c.version for c in changes if c.key == f"w{n}"]
        assert mine == list(range(1, rounds + 1))


def test_retention_by_length_and_by_age(open_state: Opener, target: Target) -> None:
    short = open_state(changes_maxlen=50)
    short.set_many("g", {f"k{i}": i for i in range(1000)})
    stream = target.layout().changes("g")
    with target.raw() as r:
        assert 50 <= r.xlen(stream) < 300  # MAXLEN ~ trims whole stream nodes
    for n in range(30):  # set_many trims once per server call (feed_batch): still bounded
        short.set_many("g", {f"m{n}-{i}": i for i in range(200)})
        with target.raw() as r:
            assert 50 <= r.xlen(stream) < 300
    young = open_state(changes_max_age=0.2)
    young.set_many("g", {f"k{i}": i for i in range(500)})
    settle(young, 0.4)
    young.set("g", "last", 1)
    with target.raw() as r:
        first_id = r.xrange(stream, count=1)[0][0]
        assert r.xlen(stream) < 300
    assert int(first_id.split(b"-")[0]) > time.time() * 1000 - 5_000


def test_a_consumer_acknowledges_changes_of_groups_it_does_not_follow(
    state: Any, target: Target
) -> None:
    with state.watch("orders", consumer=("billing", "w1"), block=0.2) as watch:
        state.set("other", "x", 1)
        state.set("orders", "o1", 1)
        got = drain(watch)
        state.ack(*got)
    assert [c.key for c in got] == ["o1"]
    with target.raw() as r:
        pending = r.xpending(target.layout().changes("orders"), "billing")
    assert pending["pending"] == 0


def test_on_change_runs_a_handler_and_acknowledges_after_it(state: Any, target: Target) -> None:
    seen: list[Change] = []
    failed = []

    def handler(change: Change) -> None:
        if change.key == "bad" and not failed:
            failed.append(change)
            raise RuntimeError("handler bug")  # logged; stays pending; claimed again later
        seen.append(change)

    subscription = state.on_change("orders", handler, consumer=("mailer", "m1"), claim_after=0.3)
    try:
        state.set("orders", "o1", 1)
        state.set("elsewhere", "x", 1)
        state.set("orders", "bad", 1)
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            settle(state, 0.1)
    finally:
        subscription.stop()
    assert [c.key for c in seen] == ["o1", "bad"]
    assert failed
    with target.raw() as r:
        assert r.xpending(target.layout().changes("orders"), "mailer")["pending"] == 0


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"record_values": "yes"}, "record_values"),
        ({"changes_max_age": 0}, "ttl|seconds"),
        ({"changes_maxlen": 0}, "changes_maxlen"),
    ],
)
def test_bad_feed_options(target: Target, options: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        State.from_url(target.url, **options)


def test_the_sync_watch_is_its_own_iterator_and_releases_its_connection(
    target: Target,
) -> None:
    with State.from_url(target.url, **target.options) as state:
        watch = state.watch(block=0)
        assert isinstance(watch, Watch)
        with target.raw() as r:
            before = len(r.client_list())
            watch.close()
            assert len(r.client_list()) == before - 1


@pytest.mark.parametrize("scheme", ["memory", "file"])
def test_in_process_backends_say_they_have_no_feed(scheme: str, tmp_path: Any) -> None:
    url = "memory://" if scheme == "memory" else f"file://{tmp_path / 'state.json'}"
    with State.from_url(url) as state:
        state.set("g", "k", 1)
        for call in (
            lambda: state.watch(),
            lambda: state.on_change("g", print),
            lambda: state.track(),
            lambda: state.ack(Change("1-0", "set", "g", "k", 1, 0.0, consumer_group="c")),
        ):
            with pytest.raises(Unsupported, match="change feed"):
                call()


CRASHING_CONSUMER = """
import os, sys
from motia_state import State
state = State.from_url(sys.argv[1], prefix=sys.argv[2])
changes = state.watch("orders", since="0", consumer=("billing", "w1"), block=5)
for _ in range(3):
    print(next(changes).key, flush=True)
os.kill(os.getpid(), 9)  # dies mid-work: nothing acknowledged, nothing closed
"""


def test_changes_a_killed_consumer_held_go_to_another_consumer(
    open_state: Opener, target: Target
) -> None:
    state = open_state()
    for i in range(6):
        state.set("orders", f"o{i}", i)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_CONSUMER, target.url, target.options["prefix"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert crashed.returncode == -signal.SIGKILL
    assert crashed.stdout.split() == ["o0", "o1", "o2"]
    settle(state, 0.4)
    with state.watch("orders", consumer=("billing", "w2"), claim_after=0.3, block=0.5) as w2:
        taken = drain(w2)
        assert state.ack(*taken) == 6
    # everything w1 had fetched (a whole batch), each change once, nothing lost
    assert sorted(c.key for c in taken) == [f"o{i}" for i in range(6)]
    with target.raw() as r:
        assert r.xpending(target.layout().changes("orders"), "billing")["pending"] == 0


def _xread_calls(target: Target) -> int | None:
    """XREAD calls the server has served (None on Cluster, whose stats are per node)."""
    if target.name == "cluster":
        return None
    with target.raw() as r:
        stats = r.info("commandstats")
    return int(stats.get("cmdstat_xread", {}).get("calls", 0))


def _idle_cost(state: Any, target: Target, wait: Callable[[], None]) -> tuple[float, int | None]:
    """(process CPU seconds per wall second, XREAD calls) while ``wait()`` waits for nothing."""
    before = _xread_calls(target)
    cpu, wall = time.process_time(), time.monotonic()
    wait()
    used, elapsed = time.process_time() - cpu, time.monotonic() - wall
    after = _xread_calls(target)
    return used / elapsed, None if before is None or after is None else after - before


@pytest.mark.redis_only
def test_an_idle_watcher_waits_in_the_server(state: Any, target: Target) -> None:
    with state.watch(block=1) as watch:
        assert next(watch) is None  # open, and quiet

        def wait() -> None:
            for _ in range(2):
                assert next(watch) is None

        share, xreads = _idle_cost(state, target, wait)
    assert share < 0.1  # a busy poll used 50 % to 100 % of a core
    assert xreads is None or xreads <= 10  # a busy poll sent about 40,000 a second


@pytest.mark.redis_only
def test_an_idle_on_change_waits_in_the_server(state: Any, target: Target) -> None:
    subscription = state.on_change(["a"], lambda change: None)
    try:
        settle(state, 0.3)
        share, xreads = _idle_cost(state, target, lambda: settle(state, 2.0))
    finally:
        subscription.stop()
    assert share < 0.1
    assert xreads is None or xreads <= 20


def test_a_consumer_with_block_zero_reads_new_changes_before_saying_none(state: Any) -> None:
    for i in range(3):
        state.set("orders", f"o{i}", i)
    with state.watch("orders", since="0", consumer=("billing", "w1"), block=0) as watch:
        # the README's idiom: stop at the first None
        keys = [change.key for change in iter(lambda: next(watch), None)]
        assert keys == ["o0", "o1", "o2"]
        state.set("orders", "o3", 3)
        assert next(watch).key == "o3"
        assert next(watch) is None


@pytest.mark.redis_only
def test_a_consumer_carries_on_when_its_stream_is_removed(state: Any, target: Target) -> None:
    """A DEL (or FLUSHALL) of the feed under a blocked consumer-group read: Redis answers
    UNBLOCKED, Valkey NOGROUP. The subscription begins again and later changes arrive (before:
    its thread died and nothing more came)."""
    seen: list[str] = []
    subscription = state.on_change(
        "g", lambda change: seen.append(change.key), consumer=("cg", "w")
    )

    def wait_for(key: str) -> None:
        deadline = time.monotonic() + 15
        while key not in seen:
            assert time.monotonic() < deadline, f"{key} never arrived: {seen}"
            settle(state, 0.05)

    try:
        state.set("g", "before", 1)
        wait_for("before")
        settle(state, 0.3)  # the subscription is back in its blocking read
        with target.raw() as r:
            assert r.delete(target.layout().changes("g")) == 1
        settle(state, 0.3)
        state.set("g", "after", 1)
        wait_for("after")
    finally:
        subscription.stop()
    assert seen == ["before", "after"]


@pytest.mark.redis_only
def test_a_consumer_whose_group_is_destroyed_resumes_after_what_it_saw(
    state: Any, target: Target
) -> None:
    """XGROUP DESTROY leaves the stream and its history: the consumer begins again after the
    last change it read, replaying none of it."""
    stream = target.layout().changes("g")
    with state.watch("g", since="0", consumer=("cg", "w"), block=0.2) as watch:
        state.set("g", "a", 1)
        first = next(watch)
        assert first.key == "a"
        state.ack(first)
        with target.raw() as r:
            assert r.xgroup_destroy(stream, "cg") == 1
        state.set("g", "b", 1)
        keys = [change.key for change in iter(lambda: next(watch), None)]
    assert keys == ["b"]


@pytest.mark.redis_only
def test_a_watcher_reads_past_other_groups_changes_before_saying_none(state: Any) -> None:
    """Entries of groups it does not follow are skipped batch by batch; a full batch of them
    is not quiet (before: block=0 yielded None after the first batch, missing its group's)."""
    state.set_many("others", {f"o{i}": i for i in range(300)})
    state.set("mine", "k", 1)
    for consumer in (None, ("cg", "w")):
        with state.watch("mine", since="0", block=0, batch=50, consumer=consumer) as watch:
            assert [change.key for change in iter(lambda: next(watch), None)] == ["k"]
