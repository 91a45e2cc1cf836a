"""What a type checker sees of typed group views. Never run: `test_typed.test_mypy_sees_the_model`
checks it with mypy and compares each ``reveal_type`` with the ``# revealed:`` comment on its
line (module names left out), and each error with the ``# error:`` code on its line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from typing_extensions import TypedDict, reveal_type

from motia_state import AsyncState, State, TypedChange


class Order(BaseModel):
    id: str
    qty: int


@dataclass
class Point:
    x: int
    y: int


class Profile(TypedDict):
    name: str


class NotOrder:
    pass


def synchronous(state: State) -> None:
    orders = state.group("orders", model=Order)
    reveal_type(orders)  # revealed: TypedGroupView[Order]
    reveal_type(orders.get("k"))  # revealed: Order | None
    reveal_type(orders.get_group())  # revealed: list[Order]
    reveal_type(orders.get_many(["a"]))  # revealed: list[Order | None]
    reveal_type(orders.items())  # revealed: dict[str, Order]
    reveal_type(orders.update("k", []))  # revealed: Order
    reveal_type(orders.increment("k"))  # revealed: Order
    reveal_type(orders.delete("k"))  # revealed: Order | Undecodable | None
    reveal_type(orders.set("k", Order(id="k", qty=1)))  # revealed: int
    reveal_type(orders.keys())  # revealed: list[str]
    item = orders.get_item("k")
    assert item is not None
    reveal_type(item.value)  # revealed: Order
    for _key, value in orders.iter_items():
        reveal_type(value)  # revealed: Order
    for change in orders.watch(with_values=True):
        assert change is not None
        reveal_type(change.value)  # revealed: Order | None

    def handler(change: TypedChange[Order]) -> None:
        pass

    orders.on_change(handler)
    orders.set("k", NotOrder())  # error: arg-type
    orders.set("k", {"id": "k", "qty": 1})  # error: arg-type
    orders.set_many({"k": Point(1, 2)})  # error: dict-item

    points = state.group("points", model=Point)
    reveal_type(points.get("k"))  # revealed: Point | None
    profiles = state.group("profiles", model=Profile)
    reveal_type(profiles.get("k"))  # revealed: TypedDict(Profile, {'name': str}) | None
    profiles.set("k", {"name": "a"})
    profiles.set("k", {"name": 1})  # error: typeddict-item

    plain = state.group("orders")
    reveal_type(plain)  # revealed: GroupView
    reveal_type(plain.get("k"))  # revealed: Any


async def asynchronous(state: AsyncState) -> None:
    orders = state.group("orders", model=Order)
    reveal_type(orders)  # revealed: AsyncTypedGroupView[Order]
    reveal_type(await orders.get("k"))  # revealed: Order | None
    reveal_type(await orders.get_group())  # revealed: list[Order]
    reveal_type(await orders.update("k", []))  # revealed: Order
    async for _key, value in orders.iter_items():
        reveal_type(value)  # revealed: Order
    async for change in orders.watch(with_values=True):
        assert change is not None
        reveal_type(change.old_value)  # revealed: Order | None
    await orders.set("k", NotOrder())  # error: arg-type
    reveal_type(state.group("orders"))  # revealed: AsyncGroupView


def untyped(state: State, model: Any) -> None:
    reveal_type(state.group("orders", model=model))  # revealed: TypedGroupView[Any]
