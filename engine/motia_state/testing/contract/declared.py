"""A backend's capabilities are what it does: a declared one is tested by every test that
requires it, and a missing one is refused by name (`Unsupported`), with nothing written,
never served half-way (a TTL silently dropped, a compare-and-set that does not compare)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from motia_state import Change, Op, Unsupported
from motia_state.capabilities import CAPABILITIES


def _transaction(state: Any) -> None:
    with state.transaction() as tx:
        tx.set("g", "k", 1)


def _emitting(state: Any) -> None:
    with state.transaction() as tx:
        tx.set("g", "k", 1)
        tx.emit("order.created", {"id": 1})


# The calls each capability exists for: where it is missing, every one raises.
NEEDS: dict[str, list[Callable[[Any], object]]] = {
    "versions": [
        lambda state: state.set("g", "k", 1, version=0),
        lambda state: state.delete("g", "k", version=0),
        lambda state: state.increment("g", "k"),
        lambda state: state.update("g", "k", [Op.set("a", 1)]),
        lambda state: state.group("g").set("k", 1, version=0),
    ],
    "ttl": [
        lambda state: state.set("g", "k", 1, ttl=60),
        lambda state: state.set_many("g", {"k": 1}, ttl=60),
        lambda state: state.expire("g", "k", 60),
    ],
    "transactions": [_transaction],
    "feed": [
        lambda state: state.watch(),
        lambda state: state.on_change("g", print),
        lambda state: state.ack(Change("1-0", "set", "g", "k", 1, 0.0, consumer_group="c")),
        lambda state: state.track(),
        _emitting,  # the outbox: refused before the transaction's writes apply
        lambda state: state.set("g", "k", 1, emit=("order.created", {"id": 1})),
        lambda state: state.events(),
        lambda state: state.on_event("order.created", print),
        lambda state: state.history("g", "k"),
    ],
}


def test_capabilities_are_known_names(state: Any) -> None:
    capabilities = state.capabilities
    assert isinstance(capabilities, frozenset)
    assert capabilities <= CAPABILITIES, sorted(capabilities - CAPABILITIES)
    assert state.capabilities == capabilities  # the same each time it is asked


def test_every_capability_has_its_calls() -> None:
    assert set(NEEDS) == CAPABILITIES


@pytest.mark.parametrize("capability", sorted(CAPABILITIES))
def test_a_missing_capability_is_refused_by_name(state: Any, capability: str) -> None:
    if capability in state.capabilities:
        pytest.skip(f"the backend declares {capability!r}: the tests requiring it prove it")
    for call in NEEDS[capability]:
        with pytest.raises(Unsupported, match=capability):
            call(state)
    assert state.list_groups() == []
