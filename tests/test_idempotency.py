"""Idempotency keys on a Redis server: what the contract suite (motia_state/testing/contract/
idempotency.py) cannot see from the API: no change record for a repeat, the receipt's key, slot
and lifetime, a lost reply re-sent instead of OutcomeUnknown, a receipt that survives a
restart, a damaged receipt, and processes racing one key."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from typing import Any

import pytest

from motia_state import IdempotencyKeyReused, State, StateError
from motia_state.layout import key_slot

from .conftest import Opener, Servers, Target
from .test_faults import BINARY, DURABLE, Worker

pytestmark = pytest.mark.redis_only


def _records(target: Target, group: str) -> list[tuple[bytes, bytes]]:
    layout = target.layout()
    with target.raw() as r:
        entries = r.xrange(layout.changes(group))
    return [(f[b"op"], f[b"key"]) for _, f in entries if f.get(b"group") == group.encode()]


def test_a_repeat_records_no_change(open_state: Opener, target: Target) -> None:
    state = open_state(cleanup_interval=None)
    for _ in range(3):
        state.set("g", "k", 1, idempotency_key="s")
        state.increment("g", "n", 2, idempotency_key="i")
        state.delete("g", "k", idempotency_key="d")
        with state.transaction(idempotency_key="t") as tx:
            tx.set("g", "a", 1)
            tx.set("g", "b", 2)
    assert _records(target, "g") == [
        (b"set", b"k"), (b"increment", b"n"), (b"delete", b"k"), (b"set", b"a"), (b"set", b"b"),
    ]  # fmt: skip


def test_the_receipt_is_in_the_groups_slot_and_expires_on_its_own(
    open_state: Opener, target: Target
) -> None:
    state = open_state(idempotency_ttl=600)
    state.set("{trace-9}orders", "o", 1, idempotency_key="step-1:0")
    layout = target.layout()
    receipt = layout.receipt("{trace-9}orders", "step-1:0")
    with target.raw() as r:
        assert int(r.pttl(receipt)) in range(590_000, 600_001)
        # everything the write touched is in one slot, the receipt included
        assert key_slot(receipt) == key_slot(layout.data("{trace-9}orders"))
        assert r.type(receipt) == b"string"


def test_a_damaged_receipt_refuses_the_call_and_writes_nothing(
    open_state: Opener, target: Target
) -> None:
    """A receipt key some other tool overwrote: the call cannot know what it answered, so it
    refuses, whatever the damage; nothing is written."""
    state = open_state()
    receipt = target.layout().receipt("g", "k1")
    with target.raw() as r:
        r.set(receipt, b"short")
        with pytest.raises(IdempotencyKeyReused):
            state.set("g", "k", 1, idempotency_key="k1")
        r.delete(receipt)
        r.hset(receipt, "f", "v")  # the wrong type altogether
        with pytest.raises(StateError, match="WRONGTYPE"):
            state.set("g", "k", 1, idempotency_key="k1")
    assert state.get("g", "k") is None
    assert _records(target, "g") == []


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_a_lost_reply_is_sent_again_and_applies_once(servers: Servers) -> None:
    """The server stops after the keyed increment left: no reply comes. Without a key that is
    OutcomeUnknown (test_faults); with one, the engine sends it again until the server
    answers, and the write applies once: the first send, run when the server resumes, or a
    re-send (the receipt answers whichever comes later)."""
    server = servers.start(BINARY, "lost-reply")
    assert server.proc is not None
    seen, logger = _Seen(), logging.getLogger("motia_state")
    logger.addHandler(seen)
    previous = logger.level
    logger.setLevel(logging.INFO)
    within = Worker()
    try:
        with State.from_url(server.url, socket_timeout=0.3, retries=5) as state:
            within(lambda: state.increment("stats", "orders", 1, idempotency_key="inv-1"))
            os.kill(server.proc.pid, signal.SIGSTOP)  # the connection is up: the write leaves
            try:
                pending = within._pool.submit(
                    state.increment, "stats", "orders", 10, idempotency_key="inv-2"
                )
                deadline = time.monotonic() + 30
                while not any("idempotency key" in m for m in seen.messages):
                    assert time.monotonic() < deadline, "the keyed write was never re-sent"
                    time.sleep(0.01)
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            assert pending.result(30) == 11  # not OutcomeUnknown: applied, and once
            assert within(lambda: state.get_item("stats", "orders")).version == 2
            again = within(lambda: state.increment("stats", "orders", 10, idempotency_key="inv-2"))
            assert again == 11
    finally:
        logger.removeHandler(seen)
        logger.setLevel(previous)
        within.close()
        server.stop()


def test_a_receipt_survives_a_restart_with_appendfsync_always(servers: Servers) -> None:
    server = servers.start(BINARY, "receipt-durable", *DURABLE)
    port = server.port
    with State.from_url(server.url, retries=5) as state:
        assert state.increment("stats", "paid", 5, idempotency_key="pay-1") == 5
        assert server.proc is not None
        server.proc.kill()  # SIGKILL: no shutdown, only what the AOF has
        server.proc.wait()
        server.proc = None
        server = servers.start(BINARY, "receipt-durable", *DURABLE, port=port)  # its AOF
        assert state.increment("stats", "paid", 5, idempotency_key="pay-1") == 5
        assert state.get("stats", "paid") == 5
    server.stop()


def _race(url: str, options: dict[str, Any], go: Any, results: Any) -> None:
    with State.from_url(url, **options) as state:
        go.wait()
        results.put(state.increment("race", "n", 7, idempotency_key="step-42"))


def test_processes_racing_one_key_apply_it_once(target: Target) -> None:
    if target.name == "cluster":
        pytest.skip("the race is the same on one slot's master; the slot rule is tested above")
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    url, options = target.url, target.options
    procs = [ctx.Process(target=_race, args=(url, options, go, results)) for _ in range(4)]
    for p in procs:
        p.start()
    go.set()
    answers = [results.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert answers == [7, 7, 7, 7]
    with State.from_url(url, **options) as state:
        assert state.get_item("race", "n").version == 1  # type: ignore[union-attr]
