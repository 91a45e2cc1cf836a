"""Fan-in barriers beyond the contract (engine/motia_state/testing/contract/barrier.py): many
processes racing on one real server with retries of every arrival, exactly one released; the
compare-and-set loop's bound and its reading again after a lost reply, both with real writes;
hostile names and stored values; a backend without compare-and-set."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import multiprocessing
import os
import pickle
import shutil
import signal
import sys
import threading
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from motia_state import (
    AsyncState,
    Contention,
    EncodeError,
    InvalidInput,
    NotABarrier,
    OutcomeUnknown,
    PartiesMismatch,
    Record,
    State,
    Unsupported,
    VersionConflict,
    completed_by,
    register_adapter,
    unregister_adapter,
)
from motia_state import barrier as barriers
from motia_state.backends import embedded
from motia_state.core import Plan
from motia_state.ops import Set
from motia_state.testing.contract.feed import drain

from .conftest import Opener, Servers, Target
from .test_adapters import Plain

BINARY = shutil.which("redis-server") or embedded.valkey_binary()


def layout(parties: int, *arrivals: tuple[str, Any]) -> dict[str, Any]:
    names = [name for name, _ in arrivals]
    return {
        "barrier": 1,
        "parties": parties,
        "arrivals": [[name, data] for name, data in arrivals],
        "released_by": names[parties - 1] if len(names) >= parties else None,
    }


# -- many processes, every arrival retried, on one store ---------------------------------

PROCESSES = 6  # one arrival name each: parties
THREADS = 2  # per process, arriving under the same name at once (a retry racing its original)
RETRIES = 3  # calls per thread and barrier
BARRIERS = 15


def _arrive_all(url: str, options: dict[str, Any], name: str, start: Any, out: str) -> None:
    """One process: for each barrier, THREADS threads arrive as ``name``, RETRIES times each."""
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    with State.from_url(url, **options) as state:

        def thread(t: int) -> None:
            for b in range(BARRIERS):
                for attempt in range(RETRIES):
                    mine = {"pid": os.getpid(), "thread": t, "attempt": attempt}
                    got = state.barrier(
                        "joins", f"b{b}", parties=PROCESSES, arrival=name, data=mine
                    )
                    with lock:
                        results.append(
                            {
                                "barrier": f"b{b}",
                                "released": got.released,
                                "released_by": got.released_by,
                                "arrived": got.arrived,
                                "mine": got.data[name],
                                "sent": mine,
                            }
                        )

        start.wait(120)  # every process imported and connected: they race from here
        threads = [threading.Thread(target=thread, args=(t,)) for t in range(THREADS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    Path(out).write_text(json.dumps(results))


def test_processes_racing_with_retries_release_exactly_one(target: Target, tmp_path: Path) -> None:
    if target.name == "memory":
        pytest.skip("memory:// lives in one process (threads and tasks race on it below)")
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(PROCESSES)
    names = [f"check-{i}" for i in range(PROCESSES)]
    outs = [tmp_path / f"{name}.json" for name in names]
    procs = [
        ctx.Process(target=_arrive_all, args=(target.url, target.options, name, start, str(out)))
        for name, out in zip(names, outs, strict=True)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(600)
    assert [p.exitcode for p in procs] == [0] * PROCESSES
    calls: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for name, out in zip(names, outs, strict=True):
        for call in json.loads(out.read_text()):
            calls[call["barrier"]].append((name, call))
    with State.from_url(target.url, **target.options) as state:
        for b in range(BARRIERS):
            key = f"b{b}"
            made = calls[key]
            assert len(made) == PROCESSES * THREADS * RETRIES
            final = state.barrier_state("joins", key)
            assert final is not None
            assert final.complete
            released = {name for name, call in made if call["released"]}
            assert released == {final.released_by}, key  # one name, every call of it
            for name, call in made:
                assert call["released"] == (name == final.released_by)
                assert call["released_by"] in (None, final.released_by)
                # first application wins: every call was given the data that stands
                assert call["mine"] == final.data[name]
            firsts = {name: [c["sent"] for n, c in made if n == name] for name in names}
            for name in names:
                assert final.data[name] in firsts[name]
            # one write per distinct arrival: retries wrote nothing
            assert state.get_item("joins", key).version == PROCESSES


def test_threads_and_tasks_racing_release_exactly_one(open_state: Any, target: Target) -> None:
    """On every backend, memory:// included: threads on one State (switching as often as the
    interpreter can, so that one's read and write are split by others'), or tasks on one
    loop; several barriers at once, every arrival made three times."""
    state = open_state()
    parties, retries, keys = 8, 3, 10
    calls = [(f"k{k}", f"a{i % parties}") for k in range(keys) for i in range(parties * retries)]
    results: list[tuple[str, str, bool]] = []
    if hasattr(state, "pause"):  # AsyncState behind Blocking: tasks on its loop
        inner, loop = state._target, state._loop

        async def race() -> list[Any]:
            return list(
                await asyncio.gather(
                    *[inner.barrier("g", k, parties=parties, arrival=name) for k, name in calls]
                )
            )

        got = loop.run_until_complete(race())
        results = [(k, name, g.released) for (k, name), g in zip(calls, got, strict=True)]
    else:
        lock = threading.Lock()

        def arrive(key: str, name: str) -> None:
            got = state.barrier("g", key, parties=parties, arrival=name)
            with lock:
                results.append((key, name, got.released))

        threads = [threading.Thread(target=arrive, args=call) for call in calls]
        interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-6)
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            sys.setswitchinterval(interval)
    for k in range(keys):
        key = f"k{k}"
        final = state.barrier_state("g", key)
        assert final.complete
        released = [(name, ok) for kk, name, ok in results if kk == key and ok]
        assert {name for name, _ in released} == {final.released_by}
        assert len(released) == retries
        assert state.get_item("g", key).version == parties  # retries wrote nothing


# -- the change record of completion ---------------------------------------------------


@pytest.mark.redis_only
def test_completion_is_one_record_a_watcher_recognises(open_state: Opener) -> None:
    writer = open_state(record_values=True)
    with writer.watch("joins", block=0.3, with_values=True) as watch:
        writer.barrier("joins", "t", parties=3, arrival="a")
        writer.barrier("joins", "t", parties=3, arrival="a")  # a retry: no record
        writer.barrier("joins", "t", parties=3, arrival="b")
        writer.barrier("joins", "t", parties=3, arrival="c")
        writer.barrier("joins", "t", parties=3, arrival="c")
        writer.barrier("joins", "t", parties=3, arrival="late")
        writer.set("joins", "other", layout(1, ("x", 1)))
        writer.set("joins", "other", layout(1, ("y", 2)))  # complete before
        writer.reset_barrier("joins", "t")
        writer.barrier("joins", "t", parties=1, arrival="again")  # a new use, complete at once
        changes = drain(watch)
    assert [(c.op, c.key) for c in changes] == [
        ("set", "t"),
        ("set", "t"),
        ("set", "t"),
        ("set", "other"),
        ("set", "other"),
        ("delete", "t"),
        ("set", "t"),
    ]
    assert [completed_by(c) for c in changes] == [None, None, "c", "x", None, None, "again"]
    with pytest.raises(InvalidInput, match="with_values"):
        completed_by(dataclasses.replace(changes[0], has_values=False))
    # Without values: the record whose version is the complete barrier's.
    done = writer.barrier_state("joins", "t")
    assert done is not None
    assert done.complete
    assert [c for c in changes if c.key == "t" and c.version == done.version] == [changes[-1]]


# -- the loop's bound and its reading again, with real writes ------------------------------


def test_a_writer_that_never_pauses_meets_the_bound_and_nothing_is_written(
    target: Target,
) -> None:
    """Before each of the arrival's writes another write rewrites the item, so every
    compare-and-set loses for real: the arrival gives up after its allowance, unrecorded,
    and arrives as usual once the writer stops."""
    with State.from_url(target.url, **target.options) as state:
        state.set("g", "k", layout(2, ("other", 1)))
        writes = 0

        def run(plan: Plan[Any]) -> Any:
            nonlocal writes
            if isinstance(plan.op, Set):
                writes += 1
                state.set("g", "k", layout(2, ("other", 1)))  # the rival's write
            return state._run(plan)

        steps = barriers.arrive(state._core, "g", "k", parties=2, arrival="mine")
        with pytest.raises(Contention) as info:
            barriers.drive(steps, run)
        assert writes == info.value.attempts == barriers.attempts_for(2)
        assert "nothing of this call was written" in str(info.value)
        assert state.barrier_state("g", "k").data == {"other": 1}
        assert state.get_item("g", "k").version == 1 + writes  # the rival's writes only
        again = pickle.loads(pickle.dumps(info.value))
        assert (type(again), str(again), again.attempts) == (
            Contention,
            str(info.value),
            info.value.attempts,
        )
        done = state.barrier("g", "k", parties=2, arrival="mine")
        assert (done.released, done.data) == (True, {"other": 1, "mine": None})


def test_a_reset_under_a_writer_that_never_pauses_gives_up_too(target: Target) -> None:
    with State.from_url(target.url, **target.options) as state:
        state.set("g", "k", layout(3, ("other", 1)))
        deletes = 0

        def run(plan: Plan[Any]) -> Any:
            nonlocal deletes
            if type(plan.op).__name__ == "Delete":
                deletes += 1
                state.set("g", "k", layout(3, ("other", deletes)))  # the rival's write
            return state._run(plan)

        with pytest.raises(Contention) as info:
            barriers.drive(barriers.reset(state._core, "g", "k"), run)
        assert deletes == info.value.attempts == barriers.attempts_for(3)
        assert state.barrier_state("g", "k").data == {"other": deletes}  # still there


def test_the_bound_grows_with_the_parties_and_is_capped() -> None:
    assert barriers.attempts_for(1) == 1 + barriers.MARGIN
    assert barriers.attempts_for(1000) == 1000 + barriers.MARGIN
    assert barriers.attempts_for(2**63 - 1) == barriers.MAX_ATTEMPTS


def test_a_reset_racing_an_arrival_loses_nothing_it_did_not_read(target: Target) -> None:
    """The reset deletes only the version it read: an arrival landing in between makes it
    read again, so what it returns is what it removed."""
    with State.from_url(target.url, **target.options) as state:
        state.barrier("g", "k", parties=3, arrival="a")
        raced = False

        def run(plan: Plan[Any]) -> Any:
            nonlocal raced
            if not raced and type(plan.op).__name__ == "Delete":
                raced = True
                state.barrier("g", "k", parties=3, arrival="b")
            return state._run(plan)

        removed = barriers.drive(barriers.reset(state._core, "g", "k"), run)
        assert raced
        assert removed is not None
        assert removed.data == {"a": None, "b": None}
        assert state.barrier_state("g", "k") is None


def test_a_lost_reply_is_settled_by_reading_again(servers: Servers) -> None:
    """The server stops while the arrival's write is in flight: the write times out as
    OutcomeUnknown, and the loop reads again instead of raising (the arrival is idempotent
    and the write was conditional on the version it read): recorded once, released."""
    server = servers.start(BINARY, "barrier-stalled")
    assert server.proc is not None
    with State.from_url(server.url, socket_timeout=0.5, retries=1) as state:
        state.barrier("g", "k", parties=2, arrival="first")
        lost: list[Exception] = []

        def run(plan: Plan[Any]) -> Any:
            if isinstance(plan.op, Set) and not lost:
                assert server.proc is not None
                os.kill(server.proc.pid, signal.SIGSTOP)
                try:
                    return state._run(plan)
                except OutcomeUnknown as exc:
                    lost.append(exc)
                    raise
                finally:
                    os.kill(server.proc.pid, signal.SIGCONT)
            return state._run(plan)

        steps = barriers.arrive(state._core, "g", "k", parties=2, arrival="second", data=2)
        done = barriers.drive(steps, run)
        assert len(lost) == 1
        assert (done.released, done.arrived) == (True, 2)
        stored = state.get("g", "k")
        assert stored == layout(2, ("first", None), ("second", 2))
        assert state.get_item("g", "k").version == 2  # written once, whichever way it went


def test_a_lost_reply_to_a_reset_is_not_sent_again(target: Target) -> None:
    """Had the reset's delete landed, the next use may have begun since: deleting again
    could lose an arrival of it, so the reset says OutcomeUnknown and leaves it there."""
    with State.from_url(target.url, **target.options) as state:
        state.barrier("g", "k", parties=2, arrival="a")
        deletes = 0

        def run(plan: Plan[Any]) -> Any:
            nonlocal deletes
            if type(plan.op).__name__ == "Delete":
                deletes += 1
                state._run(plan)
                raise OutcomeUnknown("the reply was lost")  # it landed, as a lost reply may
            return state._run(plan)

        with pytest.raises(OutcomeUnknown):
            barriers.drive(barriers.reset(state._core, "g", "k"), run)
        assert deletes == 1
        assert state.barrier_state("g", "k") is None


def test_async_drives_the_same_steps() -> None:
    async def main() -> None:
        async with AsyncState.from_url("memory://") as state:
            seen: list[str] = []

            async def run(plan: Plan[Any]) -> Any:
                seen.append(type(plan.op).__name__)
                return await state._run(plan)

            steps = barriers.arrive(state._core, "g", "k", parties=1, arrival="a")
            done = await barriers.drive_async(steps, run)
            assert done.released
            assert seen == ["GetItem", "Set"]
            found = await barriers.drive_async(barriers.read(state._core, "g", "k"), run)
            assert found is not None
            assert found.released_by == "a"

    asyncio.run(main())


# -- hostile input ----------------------------------------------------------------------


class Liar(str):
    """A name that claims to equal every other, and hashes with all of them."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    def __hash__(self) -> int:
        return 0


def test_a_str_subclass_is_the_name_it_spells(state: Any) -> None:
    state.barrier("g", "k", parties=2, arrival="a", data=1)
    got = state.barrier("g", "k", parties=2, arrival=Liar("b"), data=2)
    assert (got.released, got.released_by, got.data) == (True, "b", {"a": 1, "b": 2})
    assert type(state.get("g", "k")["released_by"]) is str


@pytest.mark.redis_only
@pytest.mark.parametrize("raw", [b"not json", b"\xff\xfe", b"[1,", b"{" * 2000])
def test_foreign_bytes_at_the_key_are_not_a_barrier(state: Any, target: Target, raw: bytes) -> None:
    with target.raw() as r:
        r.hset(target.layout().data("g"), "k", raw)
    with pytest.raises(NotABarrier, match="is not a barrier"):
        state.barrier("g", "k", parties=2, arrival="a")
    with pytest.raises(NotABarrier):
        state.reset_barrier("g", "k")
    with target.raw() as r:
        assert r.hget(target.layout().data("g"), "k") == raw


@pytest.mark.redis_only
def test_a_near_cache_copy_is_never_decided_on(open_state: Any) -> None:
    """A cached read may lag another client's write; the write conditional on it is refused
    and the loop reads again, from the server (a refused write drops the cached group)."""
    cached, other = open_state(cache=True), open_state()
    cached.barrier("g", "k", parties=3, arrival="a")
    assert cached.barrier_state("g", "k").arrived == 1  # a cached copy
    other.barrier("g", "k", parties=3, arrival="b")
    done = cached.barrier("g", "k", parties=3, arrival="c")
    assert (done.released, list(done.data)) == (True, ["a", "b", "c"])


def test_bad_input_is_refused_before_the_first_step() -> None:
    """The steps are made only from checked arguments: nothing is read for a call that
    cannot write, and the data returned is the data as stored (a str subclass as a str)."""
    with State.from_url("memory://") as state:
        core = state._core
        for bad in ({"data": {1, 2}}, {"arrival": ""}, {"parties": 0}, {"ttl": -1}):
            call: dict[str, Any] = {"parties": 2, "arrival": "a"} | bad
            with pytest.raises((InvalidInput, EncodeError)):
                barriers.arrive(core, "g", "k", **call)
        steps = barriers.arrive(core, "g", "k", parties=1, arrival="a", data=Liar("x"))
        done = barriers.drive(steps, state._run)
        assert type(done.data["a"]) is str


def test_errors_name_the_item_and_cross_processes() -> None:
    error = PartiesMismatch("g", "k\n{x}", 3, 2)
    assert "'k\\n{x}'" in str(error)
    again = pickle.loads(pickle.dumps(error))
    assert (again.recorded, again.given, str(again)) == (3, 2, str(error))
    huge = "k" * 10_000
    assert len(str(PartiesMismatch("g", huge, 3, 2))) < 300
    assert len(str(Contention("g", huge, 5))) < 300


def test_a_typed_view_passes_the_barrier_through_untyped(state: Any) -> None:
    """A barrier's data is its arrivals', not the view's model: it goes through as it is."""
    from pydantic import BaseModel

    class Order(BaseModel):
        id: str

    view = state.group("g", model=Order)
    assert not view.barrier("k", parties=2, arrival="a", data={"not": "an order"}).released
    assert view.barrier("k", parties=2, arrival="b", data=[1]).released
    assert view.barrier_state("k").data == {"a": {"not": "an order"}, "b": [1]}
    assert view.reset_barrier("k").complete
    assert view.barrier_state("k") is None


# -- a backend without compare-and-set --------------------------------------------------


@pytest.fixture
def plain() -> Iterator[Plain]:
    adapter = Plain()
    register_adapter("plain-barrier", lambda url: adapter)
    yield adapter
    unregister_adapter("plain-barrier")


def test_without_versions_the_barrier_is_refused_before_any_call(plain: Plain) -> None:
    with State.from_url("plain-barrier://") as state:
        for call in (
            lambda: state.barrier("g", "k", parties=2, arrival="a"),
            lambda: state.reset_barrier("g", "k"),
        ):
            with pytest.raises(Unsupported, match="needs the capability 'versions'"):
                call()
        assert plain.calls == []
        assert state.barrier_state("g", "k") is None  # a read needs no compare-and-set
        plain.groups["g"] = {"k": Record(json.dumps(layout(2, ("a", 1))).encode(), 1)}
        assert state.barrier_state("g", "k").data == {"a": 1}


def test_the_steps_decide_on_a_conflict_as_on_a_fresh_read() -> None:
    """A VersionConflict thrown in is another write landed: the next step reads again."""
    with State.from_url("memory://") as state:
        steps = barriers.arrive(state._core, "g", "k", parties=2, arrival="a")
        first = next(steps)
        assert type(first.op).__name__ == "GetItem"
        write = steps.send(None)
        assert isinstance(write.op, Set)
        assert write.op.version == 0
        again = steps.throw(VersionConflict([("g", "k", 0, 1)]))
        assert type(again.op).__name__ == "GetItem"
        steps.close()
