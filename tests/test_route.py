"""Routing, accounting and retries, unit-tested with scripted replies and no server.

`route` is sans-I/O: it yields `Send`, `Sleep` and `Refresh` and is handed their
outcomes, so every routing decision the Cluster and standalone seams share (MOVED,
ASK, TRYAGAIN, batch splitting, SCRIPT LOAD everywhere, a stale slot map) can be
played here step by step, as h11 tests its state machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis
from redis.exceptions import AskError, MovedError, NoScriptError, ResponseError, TryAgainError

from motia_state import ops
from motia_state.backends.redis import outcome, route
from motia_state.backends.redis.outcome import NotSent
from motia_state.backends.redis.plan import RedisPlan
from motia_state.errors import BackendUnavailable, OutcomeUnknown, ServerBusy, StateError
from motia_state.layout import KeyLayout
from motia_state.steps import At, Batch, Masters


@dataclass(frozen=True)
class Node:
    name: str


A, B, C = Node("a:1"), Node("b:2"), Node("c:3")


@dataclass
class Slots:
    """A scripted slot map: slots below 8192 on A, the rest on B; a refresh applies
    ``after_refresh`` (a failover or a moved slot)."""

    owners: dict[int, Node] = field(default_factory=dict)
    default: Callable[[int], Node] = lambda slot: A if slot < 8192 else B
    stale: bool = False
    refreshes: int = 0
    after_refresh: dict[int, Node] = field(default_factory=dict)

    def mark_stale(self) -> None:
        self.stale = True

    def refresh(self) -> None:
        if self.stale:
            self.refreshes += 1
            self.owners.update(self.after_refresh)
            self.stale = False

    def node_for(self, slot: int) -> Node:
        return self.owners.get(slot) or self.default(slot)

    def masters(self) -> list[Node]:
        return [A, B]

    def node_at(self, host: str, port: int) -> Node | None:
        return {("a", 1): A, ("b", 2): B, ("c", 3): C}.get((host, port))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


Responder = Callable[[Node | None, tuple[Any, ...]], list[Any]]


def play(
    io: route.IO[Any], respond: Responder, slots: Slots | None = None, clock: Clock | None = None
) -> tuple[Any, list[Any]]:
    """Run ``io`` to its result, answering each `Send` with ``respond``; returns the result
    and every primitive it yielded."""
    stepper, log = route.Stepper(io), []
    while (step := stepper.next()) is not None:
        log.append(step)
        stepper.reply = None
        try:
            if isinstance(step, route.Send):
                stepper.reply = respond(step.node, step.calls)
            elif isinstance(step, route.Sleep) and clock is not None:
                clock.now += step.seconds
            elif isinstance(step, route.Refresh) and slots is not None:
                slots.refresh()
        except route.SEAM_ERRORS as exc:
            stepper.error = exc
    return stepper.result, log


def sends(log: list[Any]) -> list[tuple[Node | None, tuple[Any, ...]]]:
    return [(s.node, s.calls) for s in log if isinstance(s, route.Send)]


def key_in(node: Node) -> bytes:
    """A key whose slot ``node`` owns in the default map."""
    for i in range(1000):
        key = b"k%d" % i
        if (route.slot_of(key) < 8192) == (node is A):
            return key
    raise AssertionError


KA, KB = key_in(A), key_in(B)


def echo(node: Node | None, calls: tuple[Any, ...]) -> list[Any]:
    return [
        f"{node.name if node else '-'}:{call[0]}:{call[1] if len(call) > 1 else ''}"
        for call in calls
    ]


def routed(slots: Slots) -> route.Routed:
    return route.Routed(slots, "test://")


# -- Routed (Cluster) ------------------------------------------------------------------


def test_a_command_goes_to_the_master_of_its_keys_slot() -> None:
    slots = Slots()
    result, log = play(routed(slots).carry(("HGET", KB, "f")), echo, slots)
    assert sends(log) == [(B, (("HGET", KB, "f"),))]
    assert result == f"b:2:HGET:{KB!r}"


def test_a_script_is_routed_by_its_first_key_and_loaded_on_every_master() -> None:
    slots = Slots()
    _, log = play(routed(slots).carry(("EVALSHA", "sha", 2, KA, KB, "arg")), echo, slots)
    assert [node for node, _ in sends(log)] == [A]
    _, log = play(routed(slots).carry(("SCRIPT", "LOAD", b"return 1")), echo, slots)
    assert [node for node, _ in sends(log)] == [A, B]


def test_a_batch_is_split_by_node_and_its_replies_put_back_in_order() -> None:
    slots = Slots()
    batch = Batch((("HGET", KA, "1"), ("HGET", KB, "2"), ("WAIT", 1, 100), ("HGET", KA, "3")))
    result, log = play(routed(slots).carry(batch), echo, slots)
    assert sends(log) == [
        (A, (("HGET", KA, "1"), ("HGET", KA, "3"))),
        (B, (("HGET", KB, "2"), ("WAIT", 1, 100))),  # WAIT follows the command before it
    ]
    assert [r.split(":")[0] for r in result] == ["a", "b", "b", "a"]


def test_moved_refreshes_the_slot_map_and_sends_once_more_to_the_new_owner() -> None:
    slot = route.slot_of(KA)
    slots = Slots(after_refresh={slot: C})

    def respond(node: Node | None, calls: tuple[Any, ...]) -> list[Any]:
        return [MovedError(f"{slot} c:3")] if node is A else echo(node, calls)

    result, log = play(routed(slots).carry(("HGET", KA, "f")), respond, slots)
    assert [type(s).__name__ for s in log] == ["Send", "Refresh", "Send"]
    assert [node for node, _ in sends(log)] == [A, C]
    assert slots.refreshes == 1
    assert result.startswith("c:3:")


def test_ask_sends_asking_and_the_command_to_the_named_node_once() -> None:
    def respond(node: Node | None, calls: tuple[Any, ...]) -> list[Any]:
        if node is A:
            return [AskError(f"{route.slot_of(KA)} c:3")]
        return ["OK", "value"]

    slots = Slots()
    result, log = play(routed(slots).carry(("HGET", KA, "f")), respond, slots)
    assert sends(log)[1] == (C, (("ASKING",), ("HGET", KA, "f")))
    assert result == "value"
    assert slots.refreshes == 0  # ASK is one command's detour: the map stays


def test_tryagain_is_waited_out_and_then_given_up_on(monkeypatch: pytest.MonkeyPatch) -> None:
    tries = []

    def respond(node: Node | None, calls: tuple[Any, ...]) -> list[Any]:
        tries.append(node)
        return [TryAgainError("TRYAGAIN")] if len(tries) < 4 else ["done"]

    clock, slots = Clock(), Slots()
    monkeypatch.setattr(route, "time", clock)
    result, log = play(routed(slots).carry(("HGET", KA, "f")), respond, slots, clock)
    assert result == "done"
    assert sum(isinstance(s, route.Sleep) for s in log) == 3

    def always(node: Node | None, calls: tuple[Any, ...]) -> list[Any]:
        return [TryAgainError("TRYAGAIN")]

    with pytest.raises(BackendUnavailable, match="migrating"):
        play(routed(slots).carry(("HGET", KA, "f")), always, slots, clock)


def test_a_redirected_command_in_a_batch_is_sent_again_alone() -> None:
    slot = route.slot_of(KB)
    slots = Slots(after_refresh={slot: C})

    def respond(node: Node | None, calls: tuple[Any, ...]) -> list[Any]:
        if node is B:
            return [MovedError(f"{slot} c:3")]
        return echo(node, calls)

    batch = Batch((("HGET", KA, "1"), ("HGET", KB, "2")))
    result, _ = play(routed(slots).carry(batch), respond, slots)
    assert [r.split(":")[0] for r in result] == ["a", "c"]


def test_a_failed_connection_marks_the_map_stale_and_the_next_call_refreshes_first() -> None:
    slots = Slots()

    def down(node: Node | None, calls: tuple[Any, ...]) -> list[Any]:
        raise redis.ConnectionError("connection reset")

    with pytest.raises(redis.ConnectionError):
        play(routed(slots).carry(("HGET", KA, "f")), down, slots)
    assert slots.stale
    _, log = play(routed(slots).carry(("HGET", KA, "f")), echo, slots)
    assert isinstance(log[0], route.Refresh)
    assert slots.refreshes == 1


def test_masters_and_at_steps() -> None:
    slots = Slots()
    result, log = play(routed(slots).carry(Masters()), echo, slots)
    assert result == [A, B]
    assert log == []
    result, log = play(routed(slots).carry(At(B, ("SCAN", 0))), echo, slots)
    assert sends(log) == [(B, (("SCAN", 0),))]


# -- Direct (one server) ---------------------------------------------------------------


def test_direct_raises_a_single_error_reply_and_keeps_a_batchs_in_place() -> None:
    def respond(node: Node | None, calls: tuple[Any, ...]) -> list[Any]:
        assert node is None
        return [ResponseError("ERR nope")] * len(calls)

    with pytest.raises(ResponseError, match="nope"):
        play(route.Direct().carry(("HGET", b"k", "f")), respond)
    result, _ = play(route.Direct().carry(Batch((("A",), ("B",)))), respond)
    assert all(isinstance(r, ResponseError) for r in result)


# -- drive and operation: accounting and retries ---------------------------------------


PLAN = RedisPlan(KeyLayout("motia:state"), retries=2, patience=1.0)


def test_a_read_is_sent_again_after_a_connection_failure() -> None:
    calls = []

    def flaky(node: Node | None, sent: tuple[Any, ...]) -> list[Any]:
        calls.append(sent)
        if len(calls) == 1:
            raise redis.ConnectionError("reset by peer")
        return [b'"v"']

    result, log = play(route.operation(ops.Get("g", "k"), PLAN, route.Direct(), "t://"), flaky)
    assert result == b'"v"'
    assert [type(s).__name__ for s in log] == ["Send", "Sleep", "Send"]


def test_a_write_that_may_have_run_is_never_sent_again() -> None:
    def lost(node: Node | None, sent: tuple[Any, ...]) -> list[Any]:
        raise redis.ConnectionError("reset by peer")

    op = ops.Set("g", "k", b"1", None)
    with pytest.raises(OutcomeUnknown):
        play(route.operation(op, PLAN, route.Direct(), "t://"), lost)


def test_a_write_that_never_left_is_sent_again() -> None:
    calls = []

    def refused_to_connect(node: Node | None, sent: tuple[Any, ...]) -> list[Any]:
        calls.append(sent)
        if len(calls) == 1:
            raise NotSent("connection refused")
        return [[1, 7]]

    result, _ = play(
        route.operation(ops.Set("g", "k", b"1", None), PLAN, route.Direct(), "t://"),
        refused_to_connect,
    )
    assert result == 7


def test_a_call_refused_whole_is_waited_out_until_patience_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    monkeypatch.setattr(route, "time", clock)
    monkeypatch.setattr(outcome, "time", clock)

    def loading(node: Node | None, sent: tuple[Any, ...]) -> list[Any]:
        return [redis.exceptions.BusyLoadingError("LOADING Redis is loading")]

    with pytest.raises(ServerBusy):
        play(
            route.operation(ops.Set("g", "k", b"1", None), PLAN, route.Direct(), "t://"),
            loading,
            clock=clock,
        )
    assert 0 < clock.now - 1000.0 <= PLAN.patience


def test_noscript_loads_the_script_and_sends_the_call_again() -> None:
    replies = iter([[NoScriptError("NOSCRIPT")], ["sha"], [b'"v"']])
    result, log = play(
        route.operation(ops.Get("g", "k"), PLAN, route.Direct(), "t://"),
        lambda node, calls: next(replies),
    )
    assert result == b'"v"'
    assert [c[0][:2] for _, c in sends(log)] == [
        ("EVALSHA", sends(log)[0][1][0][1]),
        ("SCRIPT", "LOAD"),
        ("EVALSHA", sends(log)[0][1][0][1]),
    ]


def test_an_error_reply_becomes_a_typed_error() -> None:
    with pytest.raises(StateError, match="server error: ERR odd"):
        play(
            route.operation(ops.Get("g", "k"), PLAN, route.Direct(), "t://"),
            lambda node, calls: [ResponseError("ERR odd")],
        )
