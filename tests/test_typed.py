"""Typed group views (``state.group(name, model=M)``): values in as plain data, out as the
model, for pydantic models, dataclasses and TypedDicts; a value that is not the model writes
nothing; stored data that does not fit is named by group, key and field path; messages never
hold the value; mypy sees the model."""

from __future__ import annotations

import dataclasses
import pickle
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field, model_validator
from typing_extensions import TypedDict

from motia_state import (
    AsyncGroupView,
    AsyncTypedGroupView,
    AsyncTypedWatch,
    Change,
    DecodeError,
    EncodeError,
    GroupView,
    InvalidInput,
    Item,
    ModelDecodeError,
    ModelValidationError,
    NotANumber,
    Op,
    State,
    TypedChange,
    TypedGroupView,
    TypedItem,
    TypedWatch,
    Undecodable,
    VersionConflict,
)
from motia_state import typed as typed_module

from .conftest import Blocking, Opener, Target, settle
from .test_api_shape import parity, public, shape

ROOT = Path(__file__).resolve().parents[1]


# -- models ----------------------------------------------------------------------------


class Line(BaseModel):
    sku: str
    qty: int = Field(ge=1)


class Shipping(BaseModel):
    city: str
    days: int = Field(ge=0)


class Order(BaseModel):
    id: str
    lines: list[Line]
    shipping: Shipping
    placed: datetime
    total: Decimal
    note: str = Field("", max_length=50)


@dataclass
class Point:
    x: int
    y: int


@dataclass
class Route:
    name: str
    stops: list[Point]
    tags: tuple[str, ...] = ()


class Address(TypedDict):
    city: str
    zip: str


class Customer(TypedDict):
    name: str
    age: int
    addresses: list[Address]


class NotOrder:
    pass


PLACED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@dataclass(frozen=True)
class Kind:
    """One model kind and the values the tests use with it."""

    model: type[Any]
    make: Callable[[int], Any]  # a valid value, numbered
    stored: Callable[[int], Any]  # what that value is stored as: plain JSON data
    wrong: Any  # not the model at all
    bad: Callable[[], Any]  # the model's type, invalid at bad_path
    bad_path: str
    misfit: Any  # plain data written through the untyped API that does not fit
    misfit_path: str

    def __repr__(self) -> str:
        return self.model.__name__


KINDS = [
    Kind(
        Order,
        lambda n: Order(
            id=f"o-{n}",
            lines=[Line(sku="a", qty=n)],
            shipping=Shipping(city="Oslo", days=n),
            placed=PLACED,
            total=Decimal("12.50"),
        ),
        lambda n: {
            "id": f"o-{n}",
            "lines": [{"sku": "a", "qty": n}],
            "shipping": {"city": "Oslo", "days": n},
            "placed": "2026-01-02T03:04:05Z",
            "total": "12.50",
            "note": "",
        },
        {"id": "o-1", "lines": [], "shipping": {"city": "x", "days": 1}, "placed": PLACED},
        # skips validation, as model_construct does: the check before writing must not
        lambda: Order.model_construct(
            id="o",
            lines=[Line.model_construct(sku="a", qty="many")],
            shipping=Shipping(city="x", days=1),
            placed=PLACED,
            total=1,
        ),
        "lines.0.qty",
        {"id": "o", "lines": [{"sku": "a", "qty": 0}], "shipping": {}, "placed": "x", "total": 1},
        "lines.0.qty",
    ),
    Kind(
        Route,
        lambda n: Route(f"r-{n}", [Point(n, n + 1)], ("fast",)),
        lambda n: {"name": f"r-{n}", "stops": [{"x": n, "y": n + 1}], "tags": ["fast"]},
        {"name": "r", "stops": []},
        lambda: Route("r", [Point(1, 2), Point(3, "north")]),  # a dataclass checks nothing
        "stops.1.y",
        {"name": "r", "stops": [{"x": 1}]},
        "stops.0.y",
    ),
    Kind(
        Customer,
        lambda n: {"name": f"c-{n}", "age": n, "addresses": [{"city": "Oslo", "zip": "0150"}]},
        lambda n: {"name": f"c-{n}", "age": n, "addresses": [{"city": "Oslo", "zip": "0150"}]},
        ["not", "a", "dict"],
        lambda: {"name": "c", "age": 3, "addresses": [{"city": "Oslo", "zip": 150}]},
        "addresses.0.zip",
        {"name": "c", "age": "old", "addresses": []},
        "age",
    ),
]


# -- helpers ---------------------------------------------------------------------------


def typed_view_of(state: Any, view: Any) -> Any:
    """A typed view, driven from sync code for an async state (`Blocking` wraps it)."""
    if isinstance(view, AsyncTypedGroupView):
        return Blocking(view, state._loop)
    if isinstance(view, Blocking):
        assert isinstance(view._target, AsyncTypedGroupView), view
        return view
    assert isinstance(view, TypedGroupView), view
    return view


def typed(state: Any, name: str, model: Any) -> Any:
    """``state.group(name, model=model)``; driven from sync code for an async state."""
    return typed_view_of(state, state.group(name, model=model))


def records(state: Any, target: Target, group: str) -> list[Change] | None:
    """Every change record of ``group`` retained (None off Redis, which has no feed)."""
    if not target.is_redis:
        return None
    found = []
    with state.watch(group, since="0", block=0) as changes:
        for change in changes:
            if change is None:
                return found
            found.append(change)
    raise AssertionError("unreachable")


def snapshot(state: Any, target: Target, group: str) -> tuple[Any, Any]:
    """What a refused write must leave as it was: the items and the change records."""
    items = {key: state.get_item(group, key) for key in state.keys(group)}
    return items, records(state, target, group)


# -- values in and out ------------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=repr)
def test_values_go_in_as_plain_data_and_come_out_as_the_model(state: Any, kind: Kind) -> None:
    view = typed(state, "g", kind.model)
    assert view.get("k1") is None
    assert view.get_item("k1") is None
    assert view.set("k1", kind.make(1)) == 1
    assert state.get("g", "k1") == kind.stored(1)  # plain JSON data: readable untyped
    assert view.get("k1") == kind.make(1)
    item = view.get_item("k1")
    assert isinstance(item, TypedItem)
    assert isinstance(item, Item)
    assert (item.group, item.key, item.value, item.version) == ("g", "k1", kind.make(1), 1)
    assert view.set("k1", kind.make(2), version=1) == 2

    assert view.set_many({"k3": kind.make(3), "k4": kind.make(4)}) == 2
    assert view.get_many(["k4", "nope", "k1"]) == [kind.make(4), None, kind.make(2)]
    group = view.get_group()
    assert len(group) == 3
    assert all(kind.make(n) in group for n in (2, 3, 4))
    assert view.items() == {"k1": kind.make(2), "k3": kind.make(3), "k4": kind.make(4)}
    assert dict(view.iter_items(batch=1)) == view.items()
    assert sorted(view.keys()) == ["k1", "k3", "k4"]

    assert view.ttl("k1") is None
    assert view.expire("k1", 600) is True
    assert 0 < view.ttl("k1") <= 600
    assert view.persist("k1") is True
    assert view.ttl("k1") is None

    assert view.delete("k3") == kind.make(3)
    assert view.delete("k3") is None
    assert view.delete_many(["k4", "nope"]) == 1
    assert view.clear() == 1
    assert view.items() == {}
    assert view.get_group() == []


def test_json_mode_keeps_exact_types(state: Any) -> None:
    """Datetimes and decimals go in as text and come back as they were; tuples as lists."""
    orders = typed(state, "orders", Order)
    order = Order(
        id="o",
        lines=[Line(sku="a", qty=2**62)],  # an int stays an int, exactly
        shipping=Shipping(city="Oslo", days=0),
        placed=datetime(2026, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc),
        total=Decimal("0.1000000000000000000000000001"),
    )
    orders.set("o", order)
    assert state.get("orders", "o")["total"] == "0.1000000000000000000000000001"
    assert state.get("orders", "o")["lines"][0]["qty"] == 2**62
    assert orders.get("o") == order
    routes = typed(state, "routes", Route)
    routes.set("r", Route("r", [], ("a", "b")))
    assert state.get("routes", "r")["tags"] == ["a", "b"]
    assert routes.get("r").tags == ("a", "b")


def test_the_engine_codec_still_refuses_what_it_would_lose(state: Any, target: Target) -> None:
    """Ints and floats are left to the codec: an int past 64 bits and NaN under JSON are
    refused as from anyone, and nothing is written."""
    orders = typed(state, "orders", Order)
    before = snapshot(state, target, "orders")
    too_big = KINDS[0].make(1).model_copy(update={"lines": [Line(sku="a", qty=2**70)]})
    with pytest.raises(EncodeError, match="64-bit"):
        orders.set("o", too_big)
    readings = typed(state, "orders", Reading)
    with pytest.raises(EncodeError, match="nan"):  # JSON mode keeps the float NaN, for the codec
        readings.set("r", Reading(value=float("nan")))
    assert snapshot(state, target, "orders") == before


class Reading(BaseModel):
    value: float


# -- writes that are not the model --------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=repr)
def test_a_value_that_is_not_the_model_writes_nothing(
    state: Any, target: Target, kind: Kind
) -> None:
    view = typed(state, "g", kind.model)
    view.set("k", kind.make(1))
    before = snapshot(state, target, "g")
    assert before[1] is None or len(before[1]) == 1

    with pytest.raises(ModelValidationError) as wrong:
        view.set("k", kind.wrong)
    assert wrong.value.paths == [""] or wrong.value.paths[0] == ""
    assert "'g'/'k'" in str(wrong.value)
    with pytest.raises(ModelValidationError) as other:
        view.set("k", NotOrder())
    assert isinstance(other.value, InvalidInput)
    assert isinstance(other.value, ValueError)
    with pytest.raises(ModelValidationError) as bad:
        view.set("k", kind.bad())
    assert kind.bad_path in bad.value.paths
    assert kind.bad_path in str(bad.value)
    assert kind.model.__name__ in str(bad.value)
    with pytest.raises(ModelValidationError):
        view.set("new", kind.bad(), version=0)
    with pytest.raises(ModelValidationError):
        view.set_many({"k2": kind.make(2), "k3": kind.bad(), "k4": kind.make(4)})
    assert snapshot(state, target, "g") == before
    assert state.keys("g") == ["k"]


def test_a_dict_is_not_a_model_and_a_typeddict_is_checked_strictly(state: Any) -> None:
    orders = typed(state, "orders", Order)
    as_dict = Order.model_dump(KINDS[0].make(1))
    with pytest.raises(ModelValidationError, match="expected an instance of Order, not dict"):
        orders.set("o", as_dict)
    customers = typed(state, "customers", Customer)
    with pytest.raises(ModelValidationError) as exc:  # "3" is not an int, strictly
        customers.set("c", {"name": "c", "age": "3", "addresses": []})
    assert exc.value.paths == ["age"]
    mutated = KINDS[0].make(1)
    mutated.lines.append("not a line")  # no validate_assignment: caught before writing
    with pytest.raises(ModelValidationError) as exc:
        orders.set("o", mutated)
    assert exc.value.paths == ["lines.1"]
    assert state.keys("orders") == []
    assert state.keys("customers") == []


def test_set_many_refuses_the_batch_naming_its_first_faulty_item(state: Any) -> None:
    customers = typed(state, "c", Customer)
    good = KINDS[2].make(1)
    bad = KINDS[2].bad()
    with pytest.raises(ModelValidationError) as exc:
        customers.set_many({"a": good, "b": bad, "c": {"name": 1}})
    assert "'c'/'b'" in str(exc.value)
    assert exc.value.paths == ["addresses.0.zip"]
    with pytest.raises(InvalidInput, match="key must not be empty"):
        customers.set_many({"": good, "b": bad})
    with pytest.raises(InvalidInput, match="mapping"):
        customers.set_many([("a", good)])
    with pytest.raises(InvalidInput, match="key must not be empty"):  # the key, before the value
        customers.set("", bad)
    assert state.keys("c") == []


def test_non_utf8_bytes_cannot_be_stored_as_json_text(state: Any) -> None:
    class Blob(BaseModel):
        data: bytes

    blobs = typed(state, "blobs", Blob)
    blobs.set("ok", Blob(data=b"text"))
    assert blobs.get("ok") == Blob(data=b"text")
    with pytest.raises(ModelValidationError, match="cannot be serialized"):
        blobs.set("b", Blob(data=b"\xff\xfe"))
    assert state.keys("blobs") == ["ok"]


# -- stored data that does not fit ------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS, ids=repr)
def test_stored_data_that_does_not_fit_is_named(state: Any, kind: Kind) -> None:
    view = typed(state, "g", kind.model)
    view.set("good", kind.make(1))
    state.set("g", "bad", kind.misfit)  # through the untyped API: nothing checks it

    def named(read: Callable[[], Any]) -> ModelDecodeError:
        with pytest.raises(ModelDecodeError) as exc:
            read()
        error = exc.value
        assert isinstance(error, DecodeError)
        assert (error.group, error.key) == ("g", "bad")
        assert kind.misfit_path in error.paths
        assert f"'g'/'bad': stored value does not fit {kind.model.__name__}" in str(error)
        assert kind.misfit_path in str(error)
        return error

    named(lambda: view.get("bad"))
    named(lambda: view.get_item("bad"))
    named(lambda: view.get_many(["good", "bad"]))
    named(view.get_group)
    named(view.items)
    named(lambda: list(view.iter_items()))
    assert view.get("good") == kind.make(1)
    assert view.get_many(["good", "nope"]) == [kind.make(1), None]

    # the delete goes through: its value comes back Undecodable, not as an error
    removed = view.delete("bad")
    assert isinstance(removed, Undecodable)
    assert kind.misfit_path in removed.reason
    assert state.get("g", "bad") is None
    assert view.get_group() == [kind.make(1)]


def test_a_stored_none_is_absent_to_get_and_a_misfit_to_get_item(state: Any) -> None:
    orders = typed(state, "orders", Order)
    state.set("orders", "n", None)
    assert orders.get("n") is None
    with pytest.raises(ModelDecodeError, match="'orders'/'n'"):
        orders.get_item("n")


# -- update and increment -------------------------------------------------------------------


def test_update_never_writes_an_invalid_result(state: Any, target: Target) -> None:
    orders = typed(state, "orders", Order)
    orders.set("o", KINDS[0].make(1), ttl=600)
    before = snapshot(state, target, "orders")

    with pytest.raises(ModelValidationError) as exc:
        orders.update("o", [Op.set("note", "n"), Op.increment("shipping.days", -2)])
    assert exc.value.paths == ["shipping.days"]
    assert "'orders'/'o' after the update" in str(exc.value)
    with pytest.raises(ModelValidationError):
        orders.update("o", [Op.remove("id")])
    with pytest.raises(NotANumber):  # the ops' own failure, found before anything is sent
        orders.update("o", [Op.increment("id", 1)])
    with pytest.raises(VersionConflict) as conflict:  # a stale version: nothing read is sent
        orders.update("o", [Op.set("note", "x")], version=7)
    assert (conflict.value.expected, conflict.value.actual) == (7, 1)
    with pytest.raises(InvalidInput):
        orders.update("o", {"type": "set", "path": "note", "value": "x"})
    assert snapshot(state, target, "orders") == before

    updated = orders.update("o", [Op.increment("shipping.days", 4), Op.set("note", "rush")])
    assert updated == KINDS[0].make(1).model_copy(
        update={"shipping": Shipping(city="Oslo", days=5), "note": "rush"}
    )
    assert orders.get_item("o").version == 2
    assert 0 < orders.ttl("o") <= 600  # an update keeps the item's expiry, as untyped
    assert orders.update("o", [Op.set("note", "")], version=2).note == ""
    changes = records(state, target, "orders")
    assert changes is None or [c.op for c in changes] == ["set", "update", "update"]

    # a missing item starts as {}, as untyped: the ops must make a whole Order
    with pytest.raises(ModelValidationError):
        orders.update("new", [Op.set("id", "new")])
    assert orders.get_item("new") is None
    made = orders.update("new", [Op.set("", KINDS[0].stored(9))])
    assert made == KINDS[0].make(9)
    assert orders.get_item("new").version >= 1


def test_increment_returns_a_number_model(state: Any, target: Target) -> None:
    counters = typed(state, "counters", int)
    assert counters.increment("n") == 1
    assert counters.increment("n", 41) == 42
    assert counters.get("n") == 42
    with pytest.raises(VersionConflict):
        counters.increment("n", version=1)
    with pytest.raises(InvalidInput, match="increment: the amount"):
        counters.increment("n", "1")
    orders = typed(state, "orders", Order)  # an increment can never make an Order
    before = snapshot(state, target, "orders")
    with pytest.raises(ModelValidationError) as exc:
        orders.increment("o")
    assert exc.value.paths == [""]
    assert snapshot(state, target, "orders") == before
    assert counters.get("n") == 42


class Counted(BaseModel):
    """A model whose validation can run code between a typed update's read and its write."""

    n: int = Field(le=100)

    @model_validator(mode="after")
    def _interfere(self) -> Counted:
        if INTERFERE:
            INTERFERE.pop()()
        return self


INTERFERE: list[Callable[[], None]] = []


def test_a_lost_race_is_read_again(open_state: Opener, target: Target) -> None:
    """Another write lands between the typed update's read and its conditional write: the
    write conflicts and the item is read again, so no change is lost and a result made
    invalid by the other write is refused, not written."""
    state = open_state()
    if isinstance(state, Blocking):
        if target.name == "memory":
            pytest.skip("another State on memory:// does not share its items")
        other: Any = State.from_url(target.url, **target.options)
    else:
        other = state
    try:
        view = typed(state, "g", Counted)
        view.set("c", Counted(n=1))
        INTERFERE[:] = [lambda: other.set("g", "c", {"n": 50})]
        assert view.update("c", [Op.increment("n", 1)]).n == 51
        assert INTERFERE == []
        assert view.get_item("c").version == 3

        # 52 was valid when checked, but the other write makes it 101: refused, not written
        INTERFERE[:] = [lambda: other.set("g", "c", {"n": 100})]
        with pytest.raises(ModelValidationError) as exc:
            view.update("c", [Op.increment("n", 1)])
        assert exc.value.paths == ["n"]
        assert INTERFERE == []
        assert (view.get("c").n, view.get_item("c").version) == (100, 4)

        # one who always writes first: the update gives up with the conflict, having
        # written nothing
        view.set("c", Counted(n=0))
        INTERFERE[:] = [
            lambda: other.set("g", "c", {"n": 0}) for _ in range(typed_module.ATTEMPTS + 1)
        ]
        with pytest.raises(VersionConflict):
            view.update("c", [Op.increment("n", 1)])
        assert len(INTERFERE) == 1
        INTERFERE.clear()
        assert view.get("c").n == 0
    finally:
        INTERFERE.clear()
        if other is not state:
            other.close()


def test_concurrent_typed_increments_lose_nothing(target: Target) -> None:
    with State.from_url(target.url, **target.options) as state:
        counters = state.group("counters", model=int)

        def work() -> None:
            for _ in range(15):
                counters.increment("n")

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert counters.get("n") == 60


# -- the change feed ------------------------------------------------------------------------


@pytest.mark.redis_only
def test_watch_yields_changes_whose_values_are_the_model(open_state: Opener) -> None:
    state = open_state(record_values=True)
    orders = typed(state, "orders", Order)
    with orders.watch(since="$", block=5, with_values=True) as changes:
        orders.set("o", KINDS[0].make(1))
        orders.update("o", [Op.set("note", "rush")])
        state.set("orders", "bad", {"id": 1})  # untyped: does not fit
        orders.delete("o")
        first = next(changes)
        assert isinstance(first, TypedChange)
        assert isinstance(first, Change)
        assert (first.op, first.key, first.value, first.old_value) == (
            "set",
            "o",
            KINDS[0].make(1),
            None,
        )
        second = next(changes)
        assert second.value.note == "rush"
        assert second.old_value == KINDS[0].make(1)
        assert second.motia_event()["new_value"] == second.value
        with pytest.raises(ModelDecodeError) as exc:
            next(changes)
        assert (exc.value.group, exc.value.key) == ("orders", "bad")
        assert "the value of change" in str(exc.value)
        assert exc.value.paths == ["id", "lines", "shipping", "placed", "total"]
        deleted = next(changes)  # the watch went on past the misfit
        assert (deleted.op, deleted.value, deleted.old_value) == ("delete", None, second.value)

    # a consumer acknowledges typed changes as it would untyped ones
    with orders.watch(since="0", block=0, consumer=("billing", "w1")) as changes:
        first = next(changes)
        assert isinstance(first, TypedChange)
        assert first.value is None  # no with_values: nothing to validate
        assert state.ack(first) == 1


@pytest.mark.redis_only
def test_on_change_hands_typed_changes(open_state: Opener) -> None:
    state = open_state(record_values=True)
    orders = typed(state, "orders", Order)
    seen: list[Any] = []
    subscription = orders.on_change(seen.append, with_values=True)
    try:
        orders.set("o", KINDS[0].make(3))
        deadline = time.monotonic() + 20
        while not seen:
            assert time.monotonic() < deadline, "no change reached the handler"
            settle(state, 0.05)
    finally:
        subscription.stop()
    assert isinstance(seen[0], TypedChange)
    assert seen[0].value == KINDS[0].make(3)


# -- messages ---------------------------------------------------------------------------------


def test_messages_never_hold_the_value(state: Any) -> None:
    huge = "x" * 1_000_000
    orders = typed(state, "orders", Order)
    order = KINDS[0].make(1).model_copy(update={"note": huge})  # past max_length
    with pytest.raises(ModelValidationError) as exc:
        orders.set("o", order)
    assert exc.value.paths == ["note"]
    assert len(str(exc.value)) < 500
    assert "xxxxxxxxxx" not in str(exc.value)
    assert "xxxxxxxxxx" not in repr(exc.value.problems)
    # nor does a traceback: pydantic's own error (which quotes the input) is not chained
    assert exc.value.__cause__ is None
    assert exc.value.__suppress_context__

    # a message quoting a piece of the input (a discriminator's tag) is cut short
    state.set("pets", "p", {"pet": {"kind": "x" * 100_000}})
    with pytest.raises(ModelDecodeError) as tagged:
        typed(state, "pets", Owner).get("p")
    assert tagged.value.paths == ["pet"]
    assert "union_tag_invalid" in str(tagged.value)
    assert len(str(tagged.value)) < 500

    state.set("orders", "stored", {**KINDS[0].stored(1), "lines": [{"sku": 1, "qty": huge}]})
    with pytest.raises(ModelDecodeError) as decoded:
        orders.get("stored")
    assert len(str(decoded.value)) < 500
    assert "xxxxxxxxxx" not in str(decoded.value)

    # a field path made of stored keys: cut, not dumped
    scores = typed(state, "scores", Scores)
    state.set("scores", "s", {"by": {"k" * 100_000: "many"}})
    with pytest.raises(ModelDecodeError) as keyed:
        scores.get("s")
    assert len(str(keyed.value)) < 500
    assert keyed.value.paths == ["by." + "k" * 61 + "..."]

    many = {"name": "c", "age": 1, "addresses": [{"city": 1, "zip": 2}] * 10_000}
    customers = typed(state, "customers", Customer)
    with pytest.raises(ModelValidationError) as counted:
        customers.set("c", many)
    assert counted.value.count == 20_000
    assert len(counted.value.problems) <= typed_module.PROBLEMS_KEPT
    assert "(and 19997 more)" in str(counted.value)
    assert len(str(counted.value)) < 1000


class Scores(BaseModel):
    by: dict[str, int]


class Cat(BaseModel):
    kind: Literal["cat"]


class Dog(BaseModel):
    kind: Literal["dog"]


class Owner(BaseModel):
    pet: Cat | Dog = Field(discriminator="kind")


def test_errors_cross_process_boundaries() -> None:
    refused = ModelValidationError("'g'/'k'", "Order", [("lines.0.qty", "too small")], 3)
    again = pickle.loads(pickle.dumps(refused))
    assert (type(again), str(again), again.paths, again.count) == (
        ModelValidationError,
        str(refused),
        ["lines.0.qty"],
        3,
    )
    misfit = ModelDecodeError("g", "k", "Order", [("id", "missing")], what="stored value")
    again = pickle.loads(pickle.dumps(misfit))
    assert (again.group, again.key, again.paths, str(again)) == ("g", "k", ["id"], str(misfit))


# -- the model argument, and the API --------------------------------------------------------------


def test_the_model_argument_is_checked(state: Any) -> None:
    class Plain:
        pass

    import typing

    class OldTypedDict(typing.TypedDict):  # pydantic needs typing_extensions' before 3.12
        name: str

    bad: list[Any] = [
        "orders",
        list[int],
        Plain,
        42,
        KINDS[0].make(1),
    ]
    if sys.version_info < (3, 12):
        bad.append(OldTypedDict)
    for model in bad:
        with pytest.raises(InvalidInput, match="model"):
            state.group("orders", model=model)
    with pytest.raises(InvalidInput, match="group"):
        state.group("", model=Order)
    plain = getattr(state.group("orders"), "_target", state.group("orders"))
    assert isinstance(plain, (GroupView, AsyncGroupView))
    view = typed(state, "orders", Order)
    text = repr(getattr(view, "_target", view))
    assert re.fullmatch(r"(Async)?TypedGroupView\((Async)?GroupView\(.*, 'orders'\), Order\)", text)


def test_pydantic_is_needed_only_for_model() -> None:
    """``import motia_state`` works without pydantic and does not import it; ``model=``
    without it says what to install."""
    script = """
import sys
sys.modules["pydantic"] = None  # import pydantic raises ImportError
from dataclasses import dataclass
import motia_state
from motia_state import State, Unsupported
assert "pydantic_core" not in sys.modules
@dataclass
class Point:
    x: int
with State.from_url("memory://") as state:
    state.group("g").set("k", 1)
    try:
        state.group("g", model=Point)
    except Unsupported as exc:
        print(exc)
"""
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert run.returncode == 0, run.stderr
    assert "pip install 'motia-state[typed]'" in run.stdout

    script = "import sys, motia_state; print('pydantic' in sys.modules)"
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True
    )
    assert run.stdout.strip() == "False"


def test_typed_views_have_every_view_method() -> None:
    """A method added to the untyped views must be added here too (the typed view would
    lack it); sync and async typed views and watches are twins."""
    for untyped, typed_view in [(GroupView, TypedGroupView), (AsyncGroupView, AsyncTypedGroupView)]:
        theirs, ours = public(untyped), public(typed_view)
        missing = sorted(name for name in theirs if name not in ours)
        assert missing == [], f"{typed_view.__name__} lacks {missing}"
        for name in theirs:
            if name != "__init__":
                assert shape(ours[name]) == shape(theirs[name]), name
    assert parity(TypedGroupView, AsyncTypedGroupView) == []
    assert parity(TypedWatch, AsyncTypedWatch) == []


def test_the_adapters_are_built_once_per_model() -> None:
    assert typed_module.model_of(Order) is typed_module.model_of(Order)
    assert typed_module.model_of(Route) is not typed_module.model_of(Order)


REVEALED = re.compile(r'^.*?:(\d+): note: Revealed type is "(.*)"$')
ERROR = re.compile(r"^.*?:(\d+): error: .*\[([\w-]+)\]$")


def _unqualified(text: str) -> str:
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+([A-Za-z_]\w*)", r"\1", text)


def test_mypy_sees_the_model() -> None:
    """mypy (strict, the project's configuration) on tests/typing_typed_views.py: each
    ``reveal_type`` is what its line's ``# revealed:`` comment says, and the errors are
    exactly those its ``# error:`` comments name."""
    from mypy import api

    source = ROOT / "tests" / "typing_typed_views.py"
    expected_types, expected_errors = {}, {}
    for number, line in enumerate(source.read_text().splitlines(), 1):
        if "# revealed: " in line:
            expected_types[number] = line.split("# revealed: ", 1)[1].strip()
        if "# error: " in line:
            expected_errors[number] = line.split("# error: ", 1)[1].strip()
    assert len(expected_types) > 20
    out, err, _ = api.run([str(source), "--config-file", str(ROOT / "pyproject.toml")])
    revealed, errors = {}, {}
    for line in out.splitlines():
        if match := REVEALED.match(line):
            revealed[int(match[1])] = _unqualified(match[2])
        elif match := ERROR.match(line):
            errors[int(match[1])] = match[2]
    assert err == ""
    assert revealed == expected_types, out
    assert errors == expected_errors, out


@pytest.fixture(autouse=True)
def _no_interference() -> Iterator[None]:
    yield
    INTERFERE.clear()


def test_typed_change_and_item_keep_their_base_behaviour() -> None:
    change = TypedChange(id="1-0", op="set", group="g", key="k", version=1, ts=0.0)
    assert dataclasses.replace(change, version=2).version == 2
    assert change.created
    item = TypedItem("g", "k", Point(1, 2), 3)
    assert pickle.loads(pickle.dumps(item)) == item


def test_a_typed_view_of_a_trace_scope_slides_the_group_expiry(state: Any) -> None:
    """``group(name, model=M, ttl=...)``: the typed view wraps the sliding view, so its
    writes, a typed update's included, move the whole group's expiry."""
    scope = state.group("trace-1", model=Point, ttl=600)
    scope = typed_view_of(state, scope)
    assert scope.group_ttl() is None
    scope.set("p", Point(1, 2))
    assert 0 < scope.group_ttl() <= 600
    assert scope.persist_group() is True
    assert scope.group_ttl() is None
    counters = typed_view_of(state, state.group("trace-1", model=int, ttl=300))
    counters.increment("n")
    assert 0 < counters.group_ttl() <= 300
    assert scope.get("p") == Point(1, 2)
    assert scope.expire_group(60) is True
    assert 0 < scope.group_ttl() <= 60
