"""Trace scopes: a group that expires whole (issue 17, part 4).

`expire_group` / `group_ttl` / `persist_group`, the sliding ``state.group(name, ttl=S)`` view and
the ``group_ttl`` option, on every backend, sync and async. On the Redis backends the server is
inspected directly: every key of the group carries the deadline (``redis-cli TTL``), nothing of
an expired group is left once it is recorded, and the feed holds exactly one ``expire_group``
record per expiry, however many sweepers race for it. Time is never waited for by a fixed
sleep: a condition is polled until a deadline.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from motia_state import DecodeError, State
from motia_state.changes import Change
from motia_state.layout import KeyLayout, escape_glob
from motia_state.testing.contract.scopes import eventually, gone

from .conftest import Blocking, Opener, Servers, Target
from .test_cache import CACHED, _server_ms

WEEK_MS = 7 * 24 * 3600 * 1000


def server_keys(target: Target) -> dict[bytes, int]:
    """Every key of the test's prefix on the server, with its PTTL."""
    layout = target.layout()
    with target.raw() as r:
        found = set(r.scan_iter(match=layout.scan_pattern(), count=1000))
        found |= set(r.scan_iter(match=escape_glob(layout.meta_root) + b"*", count=1000))
        return {key: int(r.pttl(key)) for key in found}


def records(state: Any, group: str) -> list[Change]:
    """Every retained change record of ``group``."""
    found = []
    with state.watch(group, since="0", block=0) as changes:
        for change in changes:
            if change is None:
                break
            found.append(change)
    return found


def expiries(state: Any, group: str) -> list[Change]:
    return [c for c in records(state, group) if c.op == "expire_group"]


# -- the API, on every backend ------------------------------------------------------------


HOSTILE = ["}y", "x{y}", "{}x", "a{}b{c}", "trace:42:step", "g*?[x]\\", "é" * 40, " "]


def test_hostile_group_names_expire_whole_and_alone(open_state: Opener, target: Target) -> None:
    """Names that play with Cluster hash tags, globs and the file's ':' escaping: each group
    expires alone, found by the sweep and recorded under its own name."""
    state = open_state(cleanup_interval=None)
    for name in HOSTILE:
        state.group(name, ttl=0.3).set("k", name)
        state.set(name + "-kept", "k", 1)
    eventually(state, lambda: all(gone(state, name) for name in HOSTILE))
    state.cleanup()
    assert state.list_groups() == sorted(name + "-kept" for name in HOSTILE)
    if target.is_redis:
        for name in HOSTILE:
            (record,) = expiries(state, name)
            assert record.group == name
        left = server_keys(target)
        layout = target.layout()
        marks = {key: ttl for key, ttl in left.items() if key.startswith(layout.meta_root + b"d{")}
        if target.name == "cluster":  # the '-' that keeps each record's stream a week at most
            assert set(marks) == {layout.deadline(name) for name in HOSTILE}
            assert all(0 < ttl <= WEEK_MS for ttl in marks.values())
        else:
            assert marks == {}
            assert layout.deadlines() not in left


def test_the_file_keeps_group_deadlines(tmp_path: Any) -> None:
    path = tmp_path / "motia.state.json"
    with State.from_url(f"file://{path}", cleanup_interval=None) as one:
        one.group("g", ttl=60).set("k", 1)
        assert "group_expires" in path.read_text()
    with State.from_url(f"file://{path}", cleanup_interval=None) as two:
        assert 59 < two.group_ttl("g") <= 60
        assert two.persist_group("g")
    assert "group_expires" not in path.read_text()


def test_a_damaged_group_deadline_in_the_file_is_refused(tmp_path: Any) -> None:
    path = tmp_path / "motia.state.json"
    path.write_text('{"g:k": "1", "__motia_state__": "{\\"group_expires\\": {\\"g\\": -5}}"}')
    with State.from_url(f"file://{path}") as state, pytest.raises(DecodeError, match="damaged"):
        state.get("g", "k")


def server_ms(r: Any) -> int:
    """The server's clock, which set the deadlines (every test server runs on this machine)."""
    seconds, micros = r.time()
    return int(seconds) * 1000 + int(micros) // 1000


# -- on the server ------------------------------------------------------------------------


@pytest.mark.redis_only
def test_every_key_of_the_group_carries_the_deadline(open_state: Opener, target: Target) -> None:
    """`redis-cli TTL motia:state:<group>` shows what `group_ttl` says; the group's other keys
    expire with it, and its deadline key a week after, for the record to be written."""
    state = open_state(cleanup_interval=None)
    layout = target.layout()
    view = state.group("trace", ttl=60)
    view.set("a", 1)
    view.set("a", 2)
    with target.raw() as r:
        before = server_ms(r)
        view.set("b", 1, ttl=600)
        after = server_ms(r)
        # absolute deadlines: one write set them all, so they are equal to the millisecond
        data = int(r.pexpiretime(layout.data("trace")))
        assert before + 60_000 <= data <= after + 60_000
        left = state.group_ttl("trace")
        assert left is not None
        assert 0 < left * 1000 <= data - before
        same = [layout.versions("trace"), layout.expiries("trace")]
        if target.name == "cluster":
            same.append(layout.changes("trace"))  # the group's own stream goes with it
        else:
            assert int(r.pttl(layout.changes("trace"))) == -1  # the shared one never
        for key in same:
            assert int(r.pexpiretime(key)) == data, key
        assert int(r.pexpiretime(layout.deadline("trace"))) == data + WEEK_MS
    assert state.persist_group("trace")
    with target.raw() as r:
        for key in [layout.data("trace"), *same]:
            assert int(r.pttl(key)) == -1, key
        assert r.exists(layout.deadline("trace")) == 0


@pytest.mark.redis_only
def test_an_expired_group_leaves_nothing_and_is_recorded_once(
    open_state: Opener, target: Target
) -> None:
    state = open_state(cleanup_interval=None)
    layout = target.layout()
    view = state.group("trace", ttl=0.3)
    view.set("a", 1)
    view.set("a", 2)
    view.set("b", 1, ttl=600)
    view.set("c", 1)
    view.delete("c")
    eventually(state, lambda: gone(state, "trace"))
    assert expiries(state, "trace") == []  # the server removed it; nobody recorded it yet
    assert layout.data("trace") not in server_keys(target)
    state.cleanup()
    state.cleanup()
    (record,) = expiries(state, "trace")
    assert (record.group, record.key, record.version, record.prev_version) == ("trace", None,
                                                                               None, 0)  # fmt: skip
    assert record.motia_event() == {
        "event_type": "state:deleted",
        "scope": "trace",
        "key": None,
        "old_value": None,
        "new_value": None,
    }
    left = server_keys(target)
    if target.name == "cluster":
        # the record's stream, and the mark that keeps it from outliving a new start
        assert set(left) == {layout.changes("trace"), layout.deadline("trace")}
        assert all(0 < ttl <= WEEK_MS for ttl in left.values()), left
    else:
        assert set(left) == {layout.changes("trace")}  # the feed every group shares


@pytest.mark.redis_only
def test_the_next_write_records_the_expiry_first(open_state: Opener, target: Target) -> None:
    """No sweeper ran: the group's next write records its expiry, then starts it anew."""
    state = open_state(cleanup_interval=None)
    view = state.group("trace", ttl=0.2)
    view.set("a", 1)
    view.set("a", 2)
    eventually(state, lambda: gone(state, "trace"))
    # started anew with a TTL long enough to outlive the checks below on a slow machine
    assert state.group("trace", ttl=60).set("a", 3) == 1
    ops = [(c.op, c.key, c.version) for c in records(state, "trace")]
    assert ops[-2:] == [("expire_group", None, None), ("set", "a", 1)]
    state.cleanup()
    assert len(expiries(state, "trace")) == 1
    if target.name == "cluster":  # the group's stream slides with the new start
        layout = target.layout()
        with target.raw() as r:
            data = int(r.pexpiretime(layout.data("trace")))
            assert data > 0
            assert int(r.pexpiretime(layout.changes("trace"))) == data


@pytest.mark.redis_only
def test_a_group_back_after_its_record_keeps_its_stream(open_state: Opener, target: Target) -> None:
    state = open_state(cleanup_interval=None)
    state.group("trace", ttl=0.2).set("a", 1)
    eventually(state, lambda: gone(state, "trace"))
    state.cleanup()
    state.set("trace", "b", 1)  # no TTL this time
    layout = target.layout()
    with target.raw() as r:
        assert int(r.pttl(layout.changes("trace"))) == -1
        assert r.exists(layout.deadline("trace")) == 0
    assert [c.op for c in records(state, "trace")][-2:] == ["expire_group", "set"]


@pytest.mark.redis_only
def test_racing_sweepers_and_writers_record_each_expiry_once(
    open_state: Opener, target: Target
) -> None:
    sweepers = [open_state(cleanup_interval=None) for _ in range(3)]
    writer = sweepers[0]
    groups = [f"trace-{i}" for i in range(12)]
    for group in groups:
        view = writer.group(group, ttl=0.3)
        view.set("a", 1)
        view.set_many({"b": 2, "c": 3})
    eventually(writer, lambda: all(gone(writer, g) for g in groups))
    start = threading.Barrier(len(sweepers) + 1)
    failures: list[BaseException] = []

    def sweep(state: Any) -> None:
        try:
            start.wait()
            for _ in range(3):
                state.cleanup()
        except BaseException as exc:  # reported below
            failures.append(exc)

    if isinstance(writer, Blocking):  # one event loop: the sweeps run as concurrent tasks
        raw = [state._target for state in sweepers]

        async def race() -> None:
            await asyncio.gather(*(state.cleanup() for state in raw for _ in range(3)))

        writer._loop.run_until_complete(race())
    else:
        threads = [threading.Thread(target=sweep, args=(s,)) for s in sweepers]
        for thread in threads:
            thread.start()
        start.wait()
        for thread in threads:
            thread.join(30)
    # and a write to half of them, racing nobody now, records nothing a second time
    for group in groups[::2]:
        writer.set(group, "again", 1)
    assert not failures, failures
    for group in groups:
        assert len(expiries(writer, group)) == 1, group


@pytest.mark.redis_only
def test_the_background_sweep_records_the_expiry(open_state: Opener) -> None:
    state = open_state(cleanup_interval=0.05)
    state.group("trace", ttl=0.2).set("a", 1)  # starts the State's sweeper
    eventually(state, lambda: expiries(state, "trace"))
    assert gone(state, "trace")


@pytest.mark.redis_only
def test_a_late_sweep_still_records_the_expiry(open_state: Opener) -> None:
    """Nobody was running at the deadline: the first sweep afterwards records it."""
    writer = open_state(cleanup_interval=None)
    writer.group("trace", ttl=0.2).set("a", 1)
    writer.close()
    later = open_state(cleanup_interval=None)
    eventually(later, lambda: gone(later, "trace"))
    assert expiries(later, "trace") == []
    later.cleanup()
    assert len(expiries(later, "trace")) == 1


@CACHED
def test_the_near_cache_never_serves_past_the_groups_expiry(
    open_state: Opener, target: Target, servers: Servers
) -> None:
    state = open_state(cache=True, cleanup_interval=None)
    server_ms = _server_ms(target, servers)
    state.group("trace", ttl=0.4).set("k", {"v": 1})  # no expiry of its own
    first = state.get_item("trace", "k")
    assert first is not None
    assert first.expires_at is not None  # the group's deadline times the cached copy
    at = round(first.expires_at * 1000)
    hits = state.cache_stats().hits
    while True:
        before = server_ms()  # the server's clock before the read begins
        if state.get("trace", "k") is None:
            break
        # Redis removes a key once its clock is past the deadline: during the deadline's own
        # millisecond the server still serves it, and so may the cache
        assert before <= at, f"served {before - at} ms after the group expired"
    assert state.get_item("trace", "k") is None
    assert server_ms() >= at - 1  # gone because the group expired, not for another reason
    assert state.cache_stats().hits > hits  # the copy was served while the group lived


def test_a_layout_names_the_deadline_keys() -> None:
    for cluster in (False, True):
        layout = KeyLayout(cluster=cluster)
        for name in HOSTILE:  # the cluster sweep finds groups by these names
            assert layout.group_of_deadline(layout.deadline(name)) == name
        key = layout.deadline("x{y}")
        assert key.startswith(layout.meta_root + b"d{")
        keys = layout.group_keys("x{y}")
        assert keys[4] == key
        assert keys[5:] == ([] if cluster else [layout.deadlines(), layout.registry()])
