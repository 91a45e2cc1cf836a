"""Every request is declared once (`ops.REGISTRY`) and every backend handles every one of them:
a request declared and forgotten in a backend fails here, not in a user's call."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from motia_state import ops, scripts
from motia_state.backends import adapter, local
from motia_state.backends.redis import plan
from motia_state.codecs import JsonCodec
from motia_state.errors import Unsupported
from motia_state.layout import KeyLayout
from motia_state.steps import Batch

# Each table of handlers a backend keeps, with the declared requests it must cover. Redis
# Cluster runs the standalone plan (routed per slot), so the plan's tables serve both.
TABLES = {
    "Redis and Redis Cluster": plan.HANDLERS,
    "Redis transactions": plan.TRANSACTION_PARTS,
    "memory://, file://, sqlite:// and custom adapters": adapter.HANDLERS,
}


@contextmanager
def declared(**traits: Any) -> Iterator[type[ops.Request[Any]]]:
    """A request declared for the length of a test, as a new operation would be."""

    @ops.declare(**traits)
    @dataclass(frozen=True, slots=True)
    class Brand_New(ops.Request[int]):
        group: str

    try:
        yield Brand_New
    finally:
        del ops.REGISTRY[Brand_New]


@pytest.mark.parametrize("name", TABLES)
def test_every_declared_request_has_a_handler(name: str) -> None:
    assert TABLES[name].missing() == []


@pytest.mark.parametrize("name", TABLES)
def test_a_request_left_out_of_a_backend_is_reported(name: str) -> None:
    # (without a script: one with a script and a group runs by the Redis plan's convention)
    with declared(writes=True, in_transaction=True) as kind:
        assert TABLES[name].missing() == [kind.__name__]
    assert TABLES[name].missing() == []


def test_a_backend_cannot_handle_one_request_twice() -> None:
    handlers: ops.Handlers[Any] = ops.Handlers("test")
    handlers.on(ops.Get)(lambda op: op)
    with pytest.raises(TypeError, match="second handler for Get"):
        handlers.on(ops.Get)(lambda op: op)


def test_the_in_process_backends_refuse_feed_requests_clearly() -> None:
    """A backend that cannot do something says so (derived from the ``feed`` trait)."""
    feed = [kind for kind, traits in ops.REGISTRY.items() if traits.feed]
    assert {kind.__name__ for kind in feed} == {"Ack", "External", "Lease", "Emit"}
    for kind in feed:
        with pytest.raises(Unsupported, match="needs the capability 'feed'"):
            local.apply(local.Groups(), kind.__new__(kind), JsonCodec(), "memory://")


def test_declared_traits_are_consistent() -> None:
    for kind, traits in ops.REGISTRY.items():
        name = kind.__name__
        if traits.script is not None:  # the script exists and loads
            assert scripts.load(traits.script).text, name
        if traits.in_transaction or traits.conditional:
            assert traits.writes, name
        if not traits.writes:
            assert traits.resend, f"{name}: a read may always be sent again"


def test_writes_are_never_resent_unless_declared_so() -> None:
    """What a lost reply may re-send: reads, and the writes that change nothing the second
    time. Any other write becomes `OutcomeUnknown` (see backends/redis retry_delay)."""
    resent_writes = {k.__name__ for k, t in ops.REGISTRY.items() if t.writes and t.resend}
    assert resent_writes == {"Ack", "Cleanup"}


def test_a_request_with_a_script_runs_by_the_plans_convention_without_a_handler() -> None:
    """ARCHITECTURE.md's promise: a request declared with a script and a group needs no
    handler in plan.py: KEYS the group's keys, ARGV the common head and then its other
    fields in declaration order (checked sans I/O, on the steps the plan yields)."""

    @ops.declare(writes=True, script="set")
    @dataclass(frozen=True, slots=True)
    class Touch(ops.Request[Any]):
        group: str
        key: str
        ms: int
        note: str

    try:
        assert plan.HANDLERS.missing() == []
        redis_plan = plan.RedisPlan(KeyLayout("motia:state"))
        steps = redis_plan.steps(Touch("orders", "o-1", 500, "n"))
        call = next(steps)
        keys = redis_plan.layout.group_keys("orders")
        assert call == (
            "EVALSHA",
            scripts.load("set").sha,
            len(keys),
            *keys,
            *redis_plan._head("orders", "o-1"),
            500,
            "n",
        )
        with pytest.raises(StopIteration) as done:
            steps.send([1, 2])
        assert done.value.value == [1, 2]  # the reply as it comes
    finally:
        del ops.REGISTRY[Touch]
        plan.HANDLERS.table.pop(Touch, None)


def test_a_request_without_a_script_or_handler_is_a_clear_error() -> None:
    with declared(writes=False) as kind:
        assert plan.HANDLERS.missing() == [kind.__name__]
        with pytest.raises(Unsupported, match=f"Redis has no handler for {kind.__name__}"):
            plan.RedisPlan(KeyLayout("motia:state")).steps(kind("g"))


# One request of each kind that writes state, for the plan to build (sans I/O).
WRITES: dict[str, ops.Request[Any]] = {
    "Set": ops.Set("g", "k", b"1", None),
    "SetMany": ops.SetMany("g", (("k", b"1"),)),
    "Delete": ops.Delete("g", "k", None),
    "DeleteMany": ops.DeleteMany("g", ("k",)),
    "Clear": ops.Clear("g"),
    "Update": ops.Update("g", "k", (), (), b"{}", "update", None, 100),
    "Transaction": ops.Transaction((ops.Set("g", "k", b"1", None),), 100),
    "SetExpiry": ops.SetExpiry("g", "k", 1000),
    "SetGroupExpiry": ops.SetGroupExpiry("g", 1000),
    "Cleanup": ops.Cleanup(),
}


def test_every_state_write_is_sampled() -> None:
    declared_writes = {
        kind.__name__ for kind, traits in ops.REGISTRY.items() if traits.writes and not traits.feed
    }
    assert set(WRITES) == declared_writes


@pytest.mark.parametrize("name", WRITES)
def test_under_replicated_durability_every_state_write_is_confirmed_with_wait(name: str) -> None:
    """The ``writes`` trait decides WAIT: a write script's call goes out in one pipeline with
    WAIT on the same connection (update once lost it when its handler bypassed the trait)."""
    redis_plan = plan.RedisPlan(KeyLayout("motia:state"), wait=(1, 100))
    steps = redis_plan.steps(WRITES[name])
    step = next(steps)
    if isinstance(step, tuple) and step[0] == "SMEMBERS":
        step = steps.send([b"g"])  # cleanup first lists the groups with a TTL
    assert isinstance(step, Batch), step
    assert step.calls[0][0] == "EVALSHA"
    assert step.calls[-1] == ("WAIT", 1, 100)
