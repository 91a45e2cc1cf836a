"""Idempotency keys attacked: retries whose arguments differ only in how they were built, a
key reused with a request sent in more server calls than the first, typed views, damaged
receipts, receipts left behind, and the counts and listings that must not see them.

Each defect found here was fixed with its test (they were xfail(strict) until then)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import pytest
from pydantic import BaseModel, Field

from motia_state import (
    BackendUnavailable,
    DecodeError,
    IdempotencyKeyReused,
    NotReplicated,
    State,
    StateError,
)
from motia_state.backends import embedded
from motia_state.server import ServerProcess
from motia_state.testing.contract.scopes import eventually

from .conftest import NO_PERSISTENCE, REDIS_CONF, TEST_BINARY, Opener, Servers, Target
from .servers import standalone

RECEIPTS_IN_FILE = "\x00motia-state%3Areceipts:"  # file://'s entry names for the reserved group


# -- a key reused with a request sent in more server calls than the first ------------------


@pytest.mark.redis_only
def test_a_reused_key_on_a_bigger_set_many_writes_nothing(state: Any) -> None:
    assert state.set_many("g", {"first": 1}, idempotency_key="batch") == 1
    bigger = {f"k{i:04}": i for i in range(1500)}  # two server calls: 1000 + 500 items
    with pytest.raises(IdempotencyKeyReused):
        state.set_many("g", bigger, idempotency_key="batch")
    assert state.keys("g") == ["first"]


def test_a_reused_key_on_a_bigger_set_many_writes_nothing_off_redis(
    target: Target, state: Any
) -> None:
    """The adapters send set_many in one atomic call: the refusal holds whole."""
    if target.is_redis:
        pytest.skip("see test_a_reused_key_on_a_bigger_set_many_writes_nothing")
    state.set_many("g", {"first": 1}, idempotency_key="batch")
    with pytest.raises(IdempotencyKeyReused):
        state.set_many("g", {f"k{i:04}": i for i in range(1500)}, idempotency_key="batch")
    assert state.keys("g") == ["first"]


@pytest.mark.redis_only
def test_a_reused_key_on_a_bigger_delete_many_deletes_nothing(state: Any) -> None:
    keep = {f"k{i:04}": i for i in range(1500)}
    state.set_many("g", keep)
    assert state.delete_many("g", ["k0000"], idempotency_key="purge") == 1
    with pytest.raises(IdempotencyKeyReused):
        state.delete_many("g", list(keep), idempotency_key="purge")
    assert len(state.keys("g")) == 1499


def test_an_empty_batch_binds_no_key_on_any_backend(state: Any) -> None:
    """An empty batch sends nothing, so it writes nothing and leaves no receipt: the key is
    free for the call with items, as on Redis, where nothing is sent at all."""
    assert state.set_many("g", {}, idempotency_key="e") == 0
    assert state.set_many("g", {"a": 1}, idempotency_key="e") == 1
    assert state.delete_many("g", [], idempotency_key="d") == 0
    assert state.delete_many("g", ["a"], idempotency_key="d") == 1
    assert state.get("g", "a") is None


# -- arguments that differ only in how the retry built them --------------------------------


def test_set_many_with_an_equal_mapping_in_another_order_repeats(state: Any) -> None:
    assert state.set_many("g", {"a": 1, "b": 2}, idempotency_key="m") == 2
    assert state.set_many("g", {"b": 2, "a": 1}, idempotency_key="m") == 2


def test_delete_many_with_the_same_keys_in_another_order_repeats(state: Any) -> None:
    state.set_many("g", {"a": 1, "b": 2})
    assert state.delete_many("g", ["a", "b"], idempotency_key="d") == 2
    assert state.delete_many("g", ["b", "a"], idempotency_key="d") == 2


_RETRY = """
import sys
from motia_state import State
url, prefix = sys.argv[1], sys.argv[2]
keys = {f"order-{i}" for i in range(12)}
with State.from_url(url, **({"prefix": prefix} if prefix else {})) as state:
    try:
        print(state.delete_many("orders", keys, idempotency_key="step-7"))
    except Exception as exc:
        print(type(exc).__name__)
print("|".join(keys))
"""


def _step_in_a_process(target: Target, seed: int) -> tuple[str, str]:
    """The step above in a fresh process with ``seed``: (its answer, its set's order)."""
    env = {**os.environ, "PYTHONHASHSEED": str(seed)}
    prefix = target.options.get("prefix", "")
    done = subprocess.run(
        [sys.executable, "-c", _RETRY, target.url, prefix],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    answer, order = done.stdout.strip().splitlines()
    return answer, order


def test_a_retried_process_passing_a_set_of_keys_repeats(target: Target) -> None:
    if target.name == "memory":
        pytest.skip("memory:// is private to a process")
    with State.from_url(target.url, **target.options) as state:
        state.set_many("orders", {f"order-{i}": i for i in range(12)})
    first, first_order = _step_in_a_process(target, 1)
    second, second_order = _step_in_a_process(target, 2)
    assert first_order != second_order  # the premise: two processes, two set orders
    assert (first, second) == ("12", "12")


def test_an_equal_value_built_in_another_order_is_another_value(state: Any) -> None:
    """The engine stores a dict's key order as given (lossless), so a value rebuilt in
    another order is another value: the key is refused, and nothing is written."""
    assert state.set("g", "k", {"a": 1, "b": 2}, idempotency_key="v") == 1
    with pytest.raises(IdempotencyKeyReused):
        state.set("g", "k", {"b": 2, "a": 1}, idempotency_key="v")
    assert list(state.get("g", "k")) == ["a", "b"]


def test_a_ttl_rounding_to_the_same_ms_repeats(state: Any) -> None:
    """A TTL is asked to the millisecond: a retry whose float differs below it repeats."""
    assert state.set("g", "k", 1, ttl=1.0, idempotency_key="t") == 1
    assert state.set("g", "k", 1, ttl=1.0000001, idempotency_key="t") == 1
    assert state.get_item("g", "k").version == 1


def test_a_keyed_transaction_listed_in_another_order_does_not_apply_twice(state: Any) -> None:
    if "transactions" not in state.capabilities:
        pytest.skip("no transactions")
    for groups in (("{shop}orders", "{shop}stats"), ("{shop}stats", "{shop}orders")):
        try:  # the step retried, its writes listed from an unordered source
            with state.transaction(idempotency_key="pay-9") as tx:
                for group in groups:
                    tx.increment(group, "paid", 1)
        except IdempotencyKeyReused:
            pass
    assert (state.get("{shop}orders", "paid"), state.get("{shop}stats", "paid")) == (1, 1)


# -- typed views: their local checks run before the receipt is asked ------------------------


class Order(BaseModel):
    paid: Annotated[int, Field(le=1)] = 0


def test_a_typed_update_retried_returns_its_first_result(state: Any) -> None:
    orders = state.group("orders", model=Order)
    orders.set("o-1", Order())
    pay = [{"type": "increment", "path": "paid", "by": 1}]
    assert orders.update("o-1", pay, idempotency_key="pay-1") == Order(paid=1)
    assert orders.update("o-1", pay, idempotency_key="pay-1") == Order(paid=1)


def test_a_typed_increment_retried_with_its_version_returns_its_first_result(
    state: Any,
) -> None:
    counters = state.group("stats", model=int)
    counters.set("paid", 5)
    assert counters.increment("paid", 1, version=1, idempotency_key="inc-1") == 6
    assert state.increment("stats", "paid", 1, version=1, idempotency_key="inc-1") == 6
    assert counters.increment("paid", 1, version=1, idempotency_key="inc-1") == 6


def test_an_untyped_retry_with_its_old_version_returns_its_first_result(state: Any) -> None:
    """What the typed view should match: the condition is not what the key names."""
    state.set("stats", "paid", 5)
    assert state.increment("stats", "paid", 1, version=1, idempotency_key="inc-1") == 6
    assert state.increment("stats", "paid", 1, version=1, idempotency_key="inc-1") == 6
    assert state.get_item("stats", "paid").version == 2


# -- receipts left behind off Redis ---------------------------------------------------------


def _past(ms: float) -> None:
    """Wait until ``ms`` milliseconds have passed on the clock receipts expire by."""
    until = time.time() + ms / 1000
    while time.time() < until:
        time.sleep(0.001)


def test_cleanup_counts_expired_items_not_receipts(
    request: pytest.FixtureRequest, open_state: Opener, target: Target
) -> None:
    state = open_state(idempotency_ttl=0.001, cleanup_interval=None)
    for i in range(3):
        state.set("g", f"k{i}", i, idempotency_key=f"step-{i}")
    _past(5)
    assert state.cleanup() == 0
    assert len(state.keys("g")) == 3


def _receipts_in_store(target: Target) -> int:
    path = Path(target.url.split("://", 1)[1])
    if target.name == "file":
        entries = json.loads(path.read_text())
        return sum(name.startswith(RECEIPTS_IN_FILE) for name in entries)
    import sqlite3

    with sqlite3.connect(path) as db:
        (count,) = db.execute(
            "SELECT count(*) FROM items WHERE grp = ?", ("\x00motia-state:receipts",)
        ).fetchone()
    return int(count)


def test_expired_receipts_are_swept_off_redis(target: Target) -> None:
    if target.name not in ("file", "sqlite"):
        pytest.skip("the store is read from outside: file and sqlite")
    with State.from_url(target.url, idempotency_ttl=0.001, cleanup_interval=0.02) as state:
        for i in range(20):
            state.set("g", f"k{i}", i, idempotency_key=f"step-{i}")
        assert _receipts_in_store(target) > 0  # the premise: they were written there
        eventually(state, lambda: _receipts_in_store(target) == 0, timeout=3)


def test_migrating_a_file_the_engine_wrote_copies_no_receipts(tmp_path: Path) -> None:
    from motia_state import migrate

    source = f"file://{tmp_path / 'motia.state.json'}"
    with State.from_url(source) as state:
        state.set("orders", "o-1", {"total": 3}, idempotency_key="step-1")
        state.increment("stats", "paid", idempotency_key="step-2")
    report = migrate.Report()
    pages, _ = migrate.open_source(source, "motia-v0", splitter=migrate.Splitter(), report=report)
    with State.from_url("memory://") as target:
        migrate.copy(pages, target, report)
        assert target.list_groups() == ["orders", "stats"]
    assert report.written == 2


# -- damaged receipts -----------------------------------------------------------------------


@pytest.mark.redis_only
def test_a_receipt_with_its_result_cut_off_is_a_typed_error(
    open_state: Opener, target: Target
) -> None:
    state = open_state()
    state.set("g", "o", {"a": 1}, idempotency_key="k")
    receipt = target.layout().receipt("g", "k")
    with target.raw() as r:
        stored = r.get(receipt)
        r.set(receipt, stored[:16], keepttl=True)  # the fingerprint, and nothing after it
    with pytest.raises(StateError):
        state.set("g", "o", {"a": 1}, idempotency_key="k")
    assert state.get_item("g", "o").version == 1


def test_a_receipt_whose_result_has_the_wrong_shape_is_refused(target: Target) -> None:
    import base64

    import msgpack

    if target.name != "file":
        pytest.skip("the receipt is edited in the file, as another tool would")
    path = Path(target.url.split("://", 1)[1])
    with State.from_url(target.url) as state:
        assert state.set("g", "o", 1, idempotency_key="k") == 1
        entries = json.loads(path.read_text())
        (name,) = [n for n in entries if n.startswith(RECEIPTS_IN_FILE)]
        receipt = json.loads(entries[name])
        receipt["result"] = base64.b64encode(msgpack.packb(None)).decode()
        entries[name] = json.dumps(receipt)
        path.write_text(json.dumps(entries))
        with pytest.raises(DecodeError, match="damaged"):  # not None handed on as a version
            state.set("g", "o", 1, idempotency_key="k")
        assert state.get_item("g", "o").version == 1  # type: ignore[union-attr]


# -- replicated durability ------------------------------------------------------------------


@pytest.fixture(
    params=[
        "redis-7.0",
        "valkey-8.1",
    ]
)
def primary_and_stopped_replica(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """A primary and its replica, synced, on Debian's Redis 7.0 or the embedded Valkey 8.1,
    which differ in what WAIT counts for a client that wrote nothing."""
    binary = TEST_BINARY if request.param == "redis-7.0" else embedded.valkey_binary()
    if request.param == "redis-7.0" and "valkey" in binary:
        pytest.skip("Debian's redis-server is not installed")
    primary = standalone(binary, REDIS_CONF, tmp_path / "primary", *NO_PERSISTENCE)
    replica = standalone(
        binary, REDIS_CONF, tmp_path / "replica", *NO_PERSISTENCE,
        "--replicaof", "127.0.0.1", str(primary.port),
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        with replica.client() as c:
            while c.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.05)
        yield primary, replica
    finally:
        if replica.proc is not None:
            os.kill(replica.proc.pid, signal.SIGCONT)
        replica.stop()
        primary.stop()


def test_a_replay_on_a_new_connection_still_waits_for_the_first_write(
    primary_and_stopped_replica: tuple[ServerProcess, ServerProcess],
) -> None:
    primary, replica = primary_and_stopped_replica
    assert replica.proc is not None
    options: dict[str, Any] = {"durability": "replicated", "replica_timeout": 0.3}
    with State.from_url(primary.url, **options) as first:
        first.set("orders", "warm", 0)  # connected and replicated before the replica stops
        os.kill(replica.proc.pid, signal.SIGSTOP)
        try:
            with pytest.raises(NotReplicated):
                first.set("orders", "o-1", {"paid": True}, idempotency_key="pay-1")
            with (
                State.from_url(primary.url, **options) as retry,  # the step, retried
                pytest.raises(NotReplicated),
            ):
                retry.set("orders", "o-1", {"paid": True}, idempotency_key="pay-1")
        finally:
            os.kill(replica.proc.pid, signal.SIGCONT)


# -- a lost reply to a request that carries no key ------------------------------------------


class _Log(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_lost_reply_to_cleanup_says_nothing_of_idempotency_keys(servers: Servers) -> None:
    server = servers.start(TEST_BINARY, "cleanup-lost-reply")
    assert server.proc is not None
    seen, logger = _Log(), logging.getLogger("motia_state")
    logger.addHandler(seen)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        with State.from_url(
            server.url, socket_timeout=0.3, retries=1, cleanup_interval=None
        ) as state:
            state.set("g", "k", 1, ttl=600)  # connected: the registry names the group
            os.kill(server.proc.pid, signal.SIGSTOP)
            try:
                with pytest.raises(BackendUnavailable) as info:
                    state.cleanup()
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
        said = [*seen.messages, str(info.value)]
        assert not [m for m in said if "idempotency key" in m], said
    finally:
        logger.removeHandler(seen)
        logger.setLevel(previous)
        server.stop()


# -- what held ------------------------------------------------------------------------------


def test_a_big_set_many_repeats_every_chunk_and_writes_nothing(state: Any) -> None:
    """2500 items: three server calls on Redis, each with its receipt; one call elsewhere."""
    batch = {f"k{i:04}": i for i in range(2500)}
    assert state.set_many("g", batch, idempotency_key="bulk") == 2500
    state.set("g", "k0001", "moved on")  # another writer meanwhile
    assert state.set_many("g", batch, idempotency_key="bulk") == 2500
    assert state.get("g", "k0001") == "moved on"
    assert state.get_item("g", "k2499").version == 1
    assert state.delete_many("g", list(batch), idempotency_key="drop") == 2500
    state.set("g", "k2000", "back")
    assert state.delete_many("g", list(batch), idempotency_key="drop") == 2500
    assert state.get("g", "k2000") == "back"


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_a_transaction_replays_exactly_what_it_first_returned(
    open_state: Opener, target: Target, codec: str
) -> None:
    """Floats, integers at the edge of int64, text outside ASCII and nested values come back
    from the receipt (cmsgpack on Redis, msgpack in JSON off it) exactly as first returned."""
    if target.name == "file" and codec != "json":
        pytest.skip("file:// keeps Motia's JSON")
    state = open_state(codec=codec)
    if "transactions" not in state.capabilities:
        pytest.skip("no transactions")
    state.set("{t}g", "gone", {"nested": [1, 2.5, "ü€𝄞", None, {"x": 2**63 - 1}]})
    state.set("{t}g", "f", 0.1)
    state.set("{t}g", "big", 2**63 - 3)

    def run() -> list[Any]:
        with state.transaction(idempotency_key="tx-exact") as tx:
            tx.increment("{t}g", "f", 0.2)
            tx.increment("{t}g", "big", 2)
            tx.delete("{t}g", "gone")
            tx.delete("{t}g", "never-there")  # a nil among the replies
            tx.update("{t}g", "u", [{"type": "set", "path": "a", "value": -0.0}])
            tx.set("{t}g", "s", "é")
        results: list[Any] | None = tx.results
        assert results is not None
        return results

    first = run()
    assert first[:2] == [0.1 + 0.2, 2**63 - 1]
    again = run()
    assert again == first
    assert [type(v) for v in again] == [type(v) for v in first]
    assert repr(again) == repr(first)  # -0.0 stays -0.0, 0.30000000000000004 stays so
    assert state.get("{t}g", "big") == 2**63 - 1


def test_threads_and_tasks_on_one_store_apply_a_key_once(
    open_state: Opener, target: Target
) -> None:
    """One State (or AsyncState) shared by 16 concurrent callers of one key; on memory:// a
    named store shared by States (the contract's race uses private stores there)."""
    import asyncio
    import threading

    from motia_state.testing import Blocking

    if target.name == "memory":
        state = open_state()
        url = f"memory://race-{id(state)}"
        states = [State.from_url(url) for _ in range(4)]
        shared = [states[i % 4] for i in range(16)]
    else:
        state = open_state()
        states, shared = [], [state] * 16
    try:
        if isinstance(state, Blocking) and target.name != "memory":

            async def together() -> list[Any]:
                calls = [
                    state._target.increment("r", "n", 3, idempotency_key="one") for _ in range(16)
                ]
                return list(await asyncio.gather(*calls))

            results = state._loop.run_until_complete(together())
        else:
            results = []
            start = threading.Barrier(16)

            def step(s: Any) -> None:
                start.wait()
                results.append(s.increment("r", "n", 3, idempotency_key="one"))

            threads = [threading.Thread(target=step, args=(s,)) for s in shared]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        assert results == [3] * 16
        reader: Any = states[0] if states else state
        assert reader.get_item("r", "n").version == 1
    finally:
        for s in states:
            s.close()


@pytest.mark.redis_only
def test_a_replay_through_the_near_cache_serves_the_current_value(
    open_state: Opener, target: Target
) -> None:
    cached = open_state(cache=True)
    other = open_state()
    assert cached.set("g", "k", "first", idempotency_key="w") == 1
    other.set("g", "k", "second")
    eventually(cached, lambda: cached.get("g", "k") == "second")
    cached.get("g", "k")  # a copy kept
    assert cached.set("g", "k", "first", idempotency_key="w") == 1  # the replay: no write
    assert cached.get("g", "k") == "second"
    assert cached.get_item("g", "k").version == 2


def test_a_huge_multibyte_key_repeats_and_is_named_briefly(state: Any) -> None:
    key = "\U0001d11e" * 2048  # 8192 bytes of UTF-8: the longest key there is
    assert state.set("g", "k", 1, idempotency_key=key) == 1
    assert state.set("g", "k", 1, idempotency_key=key) == 1
    assert state.set("g", "k", 1, idempotency_key=key[:-1] + "x") == 2  # another key
    with pytest.raises(IdempotencyKeyReused) as info:
        state.set("g", "k", 2, idempotency_key=key)
    assert len(str(info.value)) < 400
    for odd in ("\x00", "a\nb", "{g}", "*", "%3A:"):
        assert state.increment("odd", odd, idempotency_key=odd) == 1
        assert state.increment("odd", odd, idempotency_key=odd) == 1


def test_a_replay_after_the_trace_scope_expired_applies_nothing(open_state: Opener) -> None:
    """The receipt outlives its group's expiry as a whole: the late retry gets the first
    answer and leaves the expired group expired."""
    state = open_state()
    if "ttl" not in state.capabilities:
        pytest.skip("no ttl")
    scope = state.group("trace-1", ttl=0.1)
    assert scope.increment("n", 5, idempotency_key="inv") == 5
    eventually(state, lambda: state.get("trace-1", "n") is None)
    assert scope.increment("n", 5, idempotency_key="inv") == 5
    assert state.get("trace-1", "n") is None
    assert state.list_groups() == []


@pytest.mark.redis_only
def test_receipts_and_their_expiry_are_not_external_changes(
    open_state: Opener, target: Target
) -> None:
    from .test_bridge import externals

    state = open_state(idempotency_ttl=0.05)
    layout = target.layout()
    with state.watch(block=0.2) as watch:
        bridge = state.track()
        try:
            state.set("orders", "o1", 1, idempotency_key="a")
            state.set("orders", "o1", 1, idempotency_key="a")
            with target.raw() as r:
                receipt = layout.receipt("orders", "a")
                eventually(state, lambda: not r.exists(receipt))  # expired on the server
                r.hset(layout.data("orders"), "manual", b"1")  # one external edit, last
            found = externals(watch, until=2)
        finally:
            bridge.stop()
    assert found == [(None, "gap"), ("orders", "hset")]


@pytest.mark.parametrize("url", ["memo://race", "amemo://race"])
def test_the_example_adapters_apply_a_key_once_under_threads(url: str) -> None:
    """A custom adapter (the examples' package, installed by entry points): sync, and async
    under the synchronous State (its own loop in a thread), 16 threads on one key."""
    import threading

    named = f"{url}-{time.monotonic_ns()}"  # a store of this test's own, shared by four
    states = [State.from_url(named) for _ in range(4)]
    try:
        results: list[Any] = []
        start = threading.Barrier(16)

        def step(s: Any) -> None:
            start.wait()
            results.append(s.increment("r", "n", 3, idempotency_key="one"))

        threads = [threading.Thread(target=step, args=(states[i % 4],)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert results == [3] * 16
        item = states[0].get_item("r", "n")
        assert item is not None
        assert item.version == 1
    finally:
        for s in states:
            s.close()


def test_a_lost_reply_on_the_async_api_is_sent_again_and_applies_once(
    servers: Servers,
) -> None:
    """test_idempotency's lost reply, through AsyncState's auto-pipeline: the keyed write
    in flight when the server stops is re-sent, and applies once."""
    import asyncio

    from motia_state import AsyncState

    server = servers.start(TEST_BINARY, "async-lost-reply")
    assert server.proc is not None
    pid = server.proc.pid
    seen, logger = _Log(), logging.getLogger("motia_state")
    logger.addHandler(seen)
    previous = logger.level
    logger.setLevel(logging.INFO)

    async def main() -> tuple[Any, Any, Any]:
        async with AsyncState.from_url(server.url, socket_timeout=0.3, retries=5) as state:
            await state.increment("stats", "orders", 1, idempotency_key="inv-1")
            os.kill(pid, signal.SIGSTOP)
            try:
                pending = asyncio.ensure_future(
                    state.increment("stats", "orders", 10, idempotency_key="inv-2")
                )
                deadline = time.monotonic() + 30
                while not any("idempotency key" in m for m in seen.messages):
                    assert time.monotonic() < deadline, "the keyed write was never re-sent"
                    await asyncio.sleep(0.01)
            finally:
                os.kill(pid, signal.SIGCONT)
            result = await asyncio.wait_for(pending, 30)
            item = await state.get_item("stats", "orders")
            again = await state.increment("stats", "orders", 10, idempotency_key="inv-2")
            return result, item.version if item else None, again

    try:
        assert asyncio.run(main()) == (11, 2, 11)
    finally:
        logger.removeHandler(seen)
        logger.setLevel(previous)
        server.stop()
