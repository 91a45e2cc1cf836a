"""Faults injected for real: stalled and killed servers, restarts, dead writer processes.

Every test starts servers of its own (signals would disturb the shared ones) from
docker/redis.conf, and checks the promises of the README's Guarantees section.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import multiprocessing
import os
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from queue import Empty
from typing import Any

import pytest
from redis.exceptions import BusyLoadingError

from motia_state import (
    AsyncState,
    BackendUnavailable,
    NotReplicated,
    OutcomeUnknown,
    State,
    VersionConflict,
)
from motia_state.backends import embedded

from .conftest import Servers

BINARY = shutil.which("redis-server") or embedded.valkey_binary()
DURABLE = ("--appendonly", "yes", "--appendfsync", "always")
# 0.5 ms a key at startup, and clients answered (LOADING) while the data loads
SLOW_LOAD = ("--key-load-delay", "500", "--loading-process-events-interval-bytes", "1024")


class Worker:
    """One thread (so one pinned connection) running calls that must return or raise
    within a bound: a call that hangs fails the test instead of hanging it."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1)

    def __call__(self, call: Callable[[], Any], seconds: float = 15) -> Any:
        try:
            return self._pool.submit(call).result(seconds)
        except FutureTimeout:
            raise AssertionError(f"still waiting after {seconds} s: the call hangs") from None

    def close(self) -> None:
        self._pool.shutdown(wait=False)


def test_a_stalled_server_fails_calls_in_time_and_then_recovers(servers: Servers) -> None:
    server = servers.start(BINARY, "stalled")
    assert server.proc is not None
    within = Worker()
    with State.from_url(server.url, socket_timeout=0.3, retries=1) as state:
        within(lambda: state.set("g", "k", 1))
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            # a write that timed out may have been applied: it says so, and is not re-sent
            with pytest.raises(OutcomeUnknown, match="may or may not have been applied"):
                within(lambda: state.set("g", "k", 2))
            # a read is tried again (retries=1), then gives up
            with pytest.raises(BackendUnavailable):
                within(lambda: state.get("g", "k"))
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        # the engine is usable at once; the unknown write was applied whole or not at all
        item = within(lambda: state.get_item("g", "k"))
        assert (item.value, item.version) in ((1, 1), (2, 2))
        assert within(lambda: state.set("g", "k", 3)) == item.version + 1
    within.close()
    server.stop()


def test_async_calls_fail_in_time_on_a_stalled_server(servers: Servers) -> None:
    server = servers.start(BINARY, "astalled")
    assert server.proc is not None

    async def main() -> None:
        async with AsyncState.from_url(server.url, socket_timeout=0.3, retries=1) as state:
            await state.set("g", "k", 1)
            os.kill(server.proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
            try:
                with pytest.raises(OutcomeUnknown):
                    await asyncio.wait_for(state.set("g", "k", 2), 15)
                with pytest.raises(BackendUnavailable):
                    await asyncio.wait_for(state.get("g", "k"), 15)
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
            assert await asyncio.wait_for(state.get("g", "k"), 15) in (1, 2)

    asyncio.run(main())
    server.stop()


def test_a_write_during_a_restart_waits_and_is_applied_once(servers: Servers) -> None:
    server = servers.start(BINARY, "bounce")
    port = server.port
    with State.from_url(server.url, retries=5) as state:
        assert state.set("g", "k", "before") == 1
        server.stop()
        # nothing reaches a stopped server (connection refused): that is safe to retry
        with pytest.raises(BackendUnavailable) as refused:
            State.from_url(server.url, retries=0).set("g", "k", "x")
        assert not refused.value.sent
        assert not isinstance(refused.value, OutcomeUnknown)
        # idle past the health-check interval: the PING before the write finds the dead
        # socket, so the write was never sent and is retried until the server is back
        time.sleep(1.1)
        restart = threading.Timer(0.3, lambda: servers.start(BINARY, "bounce2", port=port))
        restart.start()
        assert state.set("g", "k", "during") == 1  # a fresh server (no persistence): created once
        restart.join()
        assert state.get_item("g", "k").version == 1  # type: ignore[union-attr]
    # a restart between two calls, within the health-check interval: the closed connection is
    # found before the write leaves (no OutcomeUnknown), and the write goes to the new server
    bounce = servers.start(BINARY, "bounce3")
    with State.from_url(bounce.url) as state:
        assert state.set("g", "k", 1) == 1
        bounce.stop()
        bounce = servers.start(BINARY, "bounce4", port=bounce.port)
        assert state.set("g", "k", 2) == 1
    bounce.stop()


def _load(url: str, stop: Any, acked: Any, kind: str) -> None:
    """A writer process: writes until stopped, reporting what the server acknowledged."""
    with State.from_url(url, socket_timeout=2, retries=0) as state:
        n = 0
        while not stop.is_set():
            n += 1
            try:
                if kind == "batch":
                    state.set_many(f"batch{n}", {f"k{i}": {"n": n, "i": i} for i in range(50)})
                elif kind == "tx":
                    with state.transaction() as tx:
                        tx.set("pairs-a", f"p{n}", n)
                        tx.set("pairs-b", f"p{n}", n)
                        tx.increment("totals", "pairs", 1)
                else:
                    state.increment("counters", "c", 1)
                acked.put((kind, n))
            except BackendUnavailable:
                acked.put((kind, -n))  # failed or unknown: not acknowledged
                time.sleep(0.05)


def _drain(queue: Any, writers: list[Any]) -> list[Any]:
    """Everything the writers reported, read while they exit (a process does not exit
    until what it put in a queue has been read)."""
    found: list[Any] = []
    deadline = time.monotonic() + 60
    while any(w.is_alive() for w in writers) or not queue.empty():
        assert time.monotonic() < deadline, "the writers did not stop"
        with contextlib.suppress(Empty):
            found.append(queue.get(timeout=0.1))
    return found


def test_kill_9_with_appendfsync_always_keeps_every_acknowledged_write(
    servers: Servers, tmp_path: Path
) -> None:
    server = servers.start(BINARY, "durable", *DURABLE)
    port = server.port
    ctx = multiprocessing.get_context("spawn")
    stop, acked = ctx.Event(), ctx.Queue()
    writers = [
        ctx.Process(target=_load, args=(server.url, stop, acked, k))
        for k in ("batch", "tx", "incr")
    ]
    with State.from_url(server.url, cleanup_interval=0.2) as state:
        state.set("ttl", "early", 1, ttl=600)  # starts this State's background sweeper
        received = []
        sub = state.on_change("pairs-a", received.append, consumer=("audit", "one"))
        try:
            for w in writers:
                w.start()
            deadline = time.monotonic() + 30
            while state.get("counters", "c") is None or state.get("counters", "c") < 50:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            assert server.proc is not None
            server.proc.kill()  # SIGKILL: no shutdown, no last fsync
            server.proc.wait()
            server.proc = None
            time.sleep(0.3)
            server = servers.start(BINARY, "durable", *DURABLE, port=port)  # same dir: its AOF
            time.sleep(1.0)  # the writers reconnect and write on
            stop.set()
            reports = _drain(acked, writers)
            done: dict[str, set[int]] = {"batch": set(), "tx": set(), "incr": set()}
            failed: dict[str, set[int]] = {"batch": set(), "tx": set(), "incr": set()}
            for kind, n in reports:
                (done if n > 0 else failed)[kind].add(abs(n))
            # the same State, never recreated: scripts are loaded again on the new process
            for n in done["batch"]:  # every acknowledged batch is whole
                assert len(state.items(f"batch{n}")) == 50, n
            for n in failed["batch"]:  # an unacknowledged one is whole or absent
                assert len(state.items(f"batch{n}")) in (0, 50), n
            pairs_a, pairs_b = state.items("pairs-a"), state.items("pairs-b")
            assert pairs_a == pairs_b  # every transaction whole or absent
            assert {int(k[1:]) for k in pairs_a} >= done["tx"]
            assert state.get("totals", "pairs") == len(pairs_a)
            count = state.get("counters", "c")
            assert len(done["incr"]) <= count <= len(done["incr"]) + len(failed["incr"])
            # the consumer group survived in the AOF and its subscriber reconnected
            state.set("pairs-a", "after-restart", 1)
            deadline = time.monotonic() + 20
            while not any(c.key == "after-restart" for c in received):
                assert time.monotonic() < deadline, "the subscriber did not resume"
                time.sleep(0.05)
        finally:
            sub.stop()
        # the background sweeper resumed too
        state.set("ttl", "brief", 1, ttl=0.05)
        with server.client() as raw:
            deadline = time.monotonic() + 20
            while raw.hexists("motia:state:ttl", "brief"):
                assert time.monotonic() < deadline, "the sweeper did not resume"
                time.sleep(0.05)
    server.stop()


def _file_writer(url: str, ready: Any) -> None:
    with State.from_url(url) as state:
        n = 0
        while True:
            n += 1
            with state.transaction() as tx:
                tx.set("orders", f"o{n % 50}", {"n": n, "pad": "x" * 200})
                tx.increment("stats", "writes", 1)
            state.set_many("bulk", {f"b{i}": n for i in range(20)})
            if n == 20:
                ready.set()


def test_a_killed_file_writer_leaves_a_valid_file_and_no_stale_lock(tmp_path: Path) -> None:
    path = tmp_path / ".motia" / "motia.state.json"
    url = f"file://{path}"
    ctx = multiprocessing.get_context("spawn")
    for _ in range(3):
        ready = ctx.Event()
        writer = ctx.Process(target=_file_writer, args=(url, ready))
        writer.start()
        assert ready.wait(60)
        time.sleep(0.05)
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)  # mid-write, somewhere
        writer.join()
        content = json.loads(path.read_text())  # always whole JSON: written aside, renamed
        bulk = {k: v for k, v in content.items() if k.startswith("bulk:")}
        assert len(set(bulk.values())) == 1  # every set_many whole
        with State.from_url(url) as state:  # the next writer is not blocked by a lock
            within = Worker()
            assert within(lambda: state.set("probe", "k", 1), 30) >= 1
            within.close()
            assert state.get("stats", "writes") >= 20
            assert len(state.items("bulk")) == 20


def test_a_killed_redis_writer_leaves_no_partial_batch(servers: Servers) -> None:
    server = servers.start(BINARY, "writer-death")
    ctx = multiprocessing.get_context("spawn")
    stop, acked = ctx.Event(), ctx.Queue()
    writers = [
        ctx.Process(target=_load, args=(server.url, stop, acked, k)) for k in ("batch", "tx")
    ]
    for w in writers:
        w.start()
    with State.from_url(server.url) as state:
        deadline = time.monotonic() + 30
        while state.get("totals", "pairs") is None or state.get("totals", "pairs") < 20:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        for w in writers:
            assert w.pid is not None
            os.kill(w.pid, signal.SIGKILL)
            w.join()
        for group in state.list_groups():
            if group.startswith("batch"):
                assert len(state.items(group)) == 50, group
        assert state.items("pairs-a") == state.items("pairs-b")
        assert state.get("totals", "pairs") == len(state.items("pairs-a"))
        with pytest.raises(VersionConflict):  # and the server is sane: conditions still hold
            state.set("totals", "pairs", 0, version=0)
    server.stop()


def _in_loop(api: str, steps: list[Callable[[Any], Any]], url: str) -> list[Any]:
    """Each step called with one State (sync) or AsyncState (what it returns awaited), in order.
    A step that blocks (a server restart) blocks the event loop too, as a busy loop would."""
    if api == "sync":
        with State.from_url(url) as state:
            return [step(state) for step in steps]

    async def main() -> list[Any]:
        async with AsyncState.from_url(url) as state:
            results = []
            for step in steps:
                result = step(state)
                results.append(await result if inspect.isawaitable(result) else result)
            return results

    return asyncio.run(main())


def _wait_until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.01)


def _answers(server: Any, refusal: Callable[[Exception], bool]) -> Callable[[], bool]:
    """A probe: whether the server now refuses a PING so."""

    def check() -> bool:
        try:
            with server.client(timeout=1.0) as probe:
                probe.ping()
        except Exception as exc:
            return refusal(exc)
        return False

    return check


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_restart_between_two_calls_is_found_before_the_write_leaves(
    servers: Servers, api: str
) -> None:
    """The write after a restart is sent to the new server, not lost as OutcomeUnknown."""
    bounce = servers.start(BINARY, f"between-{api}")

    def restart(state: Any) -> None:
        bounce.stop()
        bounce.start()

    try:
        steps = [lambda s: s.set("g", "k", 1), restart, lambda s: s.set("g", "k", 2)]
        results = _in_loop(api, steps, bounce.url)
    finally:
        bounce.stop()
    assert results == [1, None, 1]  # a fresh server (no persistence): created anew


@contextlib.contextmanager
def _loading(servers: Servers, name: str) -> Iterator[Any]:
    """A server restarted with 3,000 keys to load at 0.5 ms a key: 1.5 s of -LOADING replies
    from the moment this yields (its one item, "g"/"k", was written once before)."""
    server = servers.start(BINARY, name)
    port = server.port
    with State.from_url(server.url) as state:
        state.set("g", "k", "before")
    with server.client() as r:
        pipe = r.pipeline(transaction=False)
        for i in range(3000):
            pipe.set(f"filler:{i}", i)
        pipe.execute()
        r.save()  # loaded again at the restart
    server.stop()
    back = threading.Thread(
        target=servers.start, args=(BINARY, name, *SLOW_LOAD), kwargs={"port": port}
    )
    back.start()
    try:
        _wait_until(
            _answers(server, lambda e: isinstance(e, BusyLoadingError)),
            "the server answers LOADING",
        )
        yield server
    finally:
        back.join()
        servers.started[-1].stop()


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_write_refused_while_the_server_loads_waits_and_is_applied_once(
    servers: Servers, api: str
) -> None:
    with _loading(servers, f"loading-{api}") as server:
        # refused while loading, nothing of it ran: waited for and applied once
        assert _in_loop(api, [lambda s: s.set("g", "k", "after")], server.url) == [2]
        with server.client() as r:
            records = [f[b"key"] for _, f in r.xrange("motia:state#changes")]
        assert records == [b"k", b"k"]


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_batch_refused_while_the_server_loads_waits_and_is_applied_once(
    servers: Servers, api: str
) -> None:
    """Every call of a pipeline answered LOADING is refused whole, not a broken connection:
    redis-py drops the connection on reading a LOADING reply, which made the pipeline's next
    reply a connection error and the batch `OutcomeUnknown`."""
    with _loading(servers, f"loading-batch-{api}") as server:
        batch = {f"b{i}": i for i in range(1500)}  # two script calls, one pipeline
        assert _in_loop(api, [lambda s: s.set_many("g", batch)], server.url) == [1500]
        with server.client() as r:
            ops = [f[b"op"] for _, f in r.xrange("motia:state#changes")]
        assert ops == [b"set"] * 1501


def _a_batch_then_a_write(api: str, server: Any) -> None:
    """A set_many of two script calls (both refused whole, right after the script had to be
    loaded), then a single write: each waits, and is applied once with one record an item."""
    batch = {f"b{i}": i for i in range(1500)}
    steps = [lambda s: s.set_many("g", batch), lambda s: s.set("g", "k", 1)]
    assert _in_loop(api, steps, server.url) == [1500, 1]
    with server.client() as r:
        assert [f[b"op"] for _, f in r.xrange("motia:state#changes")] == [b"set"] * 1501


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_write_refused_while_a_script_runs_long_waits_and_is_applied_once(
    servers: Servers, api: str
) -> None:
    server = servers.start(BINARY, f"busy-{api}", "--busy-reply-threshold", "50")
    spin = "local t = redis.call('TIME') repeat local n = redis.call('TIME') until n[1] - t[1] >= 2"
    runner = threading.Thread(target=lambda: server.client(timeout=10).eval(spin, 0))
    runner.start()
    try:
        _wait_until(
            _answers(server, lambda e: str(e).startswith("BUSY")), "the server answers BUSY"
        )
        _a_batch_then_a_write(api, server)
    finally:
        runner.join()
        server.stop()


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_write_refused_for_want_of_replicas_waits_and_is_applied_once(
    servers: Servers, api: str
) -> None:
    """NOREPLICAS (min-replicas-to-write unmet) refuses a script whole; once the server takes
    writes again, the waiting write is applied once."""
    server = servers.start(BINARY, f"noreplicas-{api}", "--min-replicas-to-write", "1")
    relent = threading.Thread(target=_relent_after_refusal, args=(server,))
    relent.start()
    try:
        _a_batch_then_a_write(api, server)
    finally:
        relent.join()
        server.stop()


def test_a_replicated_write_refused_for_want_of_replicas_waits_too(servers: Servers) -> None:
    """With durability="replicated" the write's pipeline ends with WAIT, which answers even
    when the write was refused: the refusal is still waited out, then the write is applied
    (and, with no replica to confirm it, says so with NotReplicated)."""
    server = servers.start(BINARY, "noreplicas-wait", "--min-replicas-to-write", "1")
    relent = threading.Thread(target=_relent_after_refusal, args=(server,))
    relent.start()
    options = {"durability": "replicated", "min_replicas": 1, "replica_timeout": 0.1}
    try:
        with State.from_url(server.url, **options) as state:
            with pytest.raises(NotReplicated, match="0 of 1"):
                state.set("g", "k", 1)
            assert state.get("g", "k") == 1
        with server.client() as r:
            assert [f[b"op"] for _, f in r.xrange("motia:state#changes")] == [b"set"]
    finally:
        relent.join()
        server.stop()


def _relent_after_refusal(server: Any) -> None:
    """Once the server has refused a write for want of replicas, let it take writes."""
    with server.client() as r:
        _wait_until(lambda: "errorstat_NOREPLICAS" in r.info("errorstats"), "a write was refused")
        r.config_set("min-replicas-to-write", 0)


def test_a_server_killed_midway_through_a_large_set_many(servers: Servers) -> None:
    """A 20k-item set_many is streamed in pieces (wire.packed) and applied by the server a
    chunk at a time. Killed midway (once its first chunk is applied, the rest still on its
    way), the call raises OutcomeUnknown, never a count nor an error that would let it be sent
    again; what was applied is whole chunks, each item at version 1. A get_group through the
    dead server fails whole, and reads everything once it is back."""
    batch = {f"k{i:05}": {"i": i, "pad": "x" * 1000} for i in range(20_000)}
    for attempt in range(5):  # the kill comes after the last chunk only if this thread stalls
        server = servers.start(BINARY, f"midsend{attempt}", *DURABLE)
        assert server.proc is not None
        outcome: list[Any] = []
        with (
            State.from_url(server.url, retries=1, socket_timeout=10) as state,
            server.client() as raw,
        ):

            def write(state: State = state, outcome: list[Any] = outcome) -> None:
                try:
                    outcome.append(state.set_many("big", batch))
                except Exception as exc:
                    outcome.append(exc)

            writer = threading.Thread(target=write)
            writer.start()
            _wait_until(lambda: raw.hlen("motia:state:big") > 0, "the first chunk is applied")
            server.proc.kill()  # SIGKILL
            server.proc.wait()
            server.proc = None
            writer.join(30)
            assert not writer.is_alive()
            [result] = outcome
            if result == len(batch):  # all applied before the kill: try again
                continue
            assert isinstance(result, OutcomeUnknown), repr(result)
            with pytest.raises(BackendUnavailable):
                state.get_group("big")
            server = servers.start(BINARY, f"midsend{attempt}", *DURABLE, port=server.port)
            applied = state.items("big")  # the AOF's: every write the server applied
            assert 0 < len(applied) < len(batch)
            assert len(applied) % 1000 == 0  # whole server calls only
            assert applied == {k: batch[k] for k in applied}
            assert {state.get_item("big", k).version for k in list(applied)[::997]} == {1}  # type: ignore[union-attr]
            # sent again: every item whole, those applied before one version on
            assert state.set_many("big", batch) == len(batch)
            assert len(state.get_group("big")) == len(batch)
            assert state.get_item("big", next(iter(applied))).version == 2  # type: ignore[union-attr]
            assert state.get_item("big", "k19999").version == 1  # type: ignore[union-attr]
        server.stop()
        return
    raise AssertionError("every set_many was applied whole before the kill")


class _LooseCodec:
    """A user's codec that breaks the contract for one value: bytearray, which the RESP
    packer refuses (only str, int, float and bytes)."""

    name = "loose"

    def encode(self, value: Any) -> bytes:
        data = json.dumps(value).encode()
        return bytearray(data) if value == "odd" else data  # type: ignore[return-value]

    def decode(self, data: bytes) -> Any:
        return json.loads(data)


def test_a_pipeline_that_fails_to_pack_midway_is_not_a_silent_half(servers: Servers) -> None:
    """A large set_many streams its server calls as they are packed: one that cannot be
    packed after earlier ones left is OutcomeUnknown (they may have run), not a bare error
    that reads as if nothing was written."""
    server = servers.start(BINARY, "badpack")
    batch = {f"k{i:05}": "x" * 100 for i in range(20_000)}
    batch["k19999"] = "odd"  # in the last server call
    with State.from_url(server.url, codec=_LooseCodec()) as state:
        state.set_many("warm", {"a": 1})  # scripts loaded: the chunks run as they arrive
        with pytest.raises(TypeError):  # one server call: nothing left before it failed
            state.set_many("one", {"a": "odd"})
        assert state.keys("one") == []
        with pytest.raises(OutcomeUnknown, match="could not be packed"):
            state.set_many("big", batch)
        assert len(state.keys("big")) < len(batch)
    server.stop()
