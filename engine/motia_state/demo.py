"""The order workflow from Motia's docs, run against any backend.

Three steps share state the way Motia steps do: one creates orders, one
processes payments (guarded by versions, so a payment is never taken twice even
when two workers race for the same order), one writes the daily report.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from .errors import VersionConflict
from .state import State

Print = Callable[[str], None]

CUSTOMERS = [("ada", 3, 19.99), ("grace", 1, 250.0), ("linus", 2, 4.5), ("margaret", 5, 12.0)]


def create_orders(state: State, out: Print) -> list[str]:
    orders = state.group("orders")
    ids = []
    for customer, quantity, price in CUSTOMERS:
        order_id = f"order-{uuid.uuid4().hex[:8]}"
        order = {
            "id": order_id,
            "customer": customer,
            "quantity": quantity,
            "unit_price": price,
            "status": "pending",
        }
        version = orders.set(order_id, order, version=0)  # version=0: create, never overwrite
        out(f"created {order_id} for {customer}: {quantity} x {price} (version {version})")
        ids.append(order_id)
    return ids


def process_payments(state: State, out: Print) -> None:
    orders = state.group("orders")
    payments = state.group("payments")
    for order_id in orders.keys():
        item = orders.get_item(order_id)
        if item is None or item.value["status"] != "pending":
            continue
        paid = {**item.value, "status": "paid"}
        total = round(item.value["quantity"] * item.value["unit_price"], 2)
        orders.set(order_id, paid, version=item.version)
        payments.set(order_id, {"order": order_id, "amount": total})
        out(f"payment of {total:.2f} taken for {order_id} (order now version {item.version + 1})")
        try:  # a second worker that read the same version loses the race, as it must
            orders.set(order_id, paid, version=item.version)
        except VersionConflict as exc:
            out(f"  a racing worker was refused: {exc}")


def daily_report(state: State, out: Print) -> dict[str, object]:
    payments = state.get_group("payments")
    orders = state.get_group("orders")
    report = {
        "date": dt.date.today().isoformat(),
        "orders": len(orders),
        "paid": sum(1 for o in orders if o["status"] == "paid"),
        "revenue": round(sum(p["amount"] for p in payments), 2),
    }
    state.set("reports", report["date"], report)
    out(f"daily report {report['date']}: {report}")
    return report


def run(state: State, out: Print = print) -> dict[str, object]:
    out(f"backend: {state!r}")
    for group in ("orders", "payments"):
        state.clear(group)
    create_orders(state, out)
    process_payments(state, out)
    report = daily_report(state, out)
    out(f"groups now: {state.list_groups()}")
    return report
