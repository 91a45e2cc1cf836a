"""The order workflow from Motia's docs, run against any backend.

Three steps share state the way Motia steps do: one creates orders, one
processes payments (a transaction guarded by the order's version, so a payment
is never taken twice even when two workers race for the same order, and the
day's counters move with it), one writes the daily report.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from .errors import VersionConflict
from .state import State
from .updates import Op

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
    for order_id in orders.keys():
        item = orders.get_item(order_id)
        if item is None or item.value["status"] != "pending":
            continue
        total = round(item.value["quantity"] * item.value["unit_price"], 2)
        # The order, its payment and the day's totals change together, or not at all.
        with state.transaction() as tx:
            tx.update("orders", order_id, [Op.set("status", "paid")], version=item.version)
            tx.set("payments", order_id, {"order": order_id, "amount": total}, version=0)
            tx.increment("stats", "paid_orders")
            tx.increment("stats", "revenue", total)
        out(f"payment of {total:.2f} taken for {order_id} (order now version {item.version + 1})")
        try:  # a second worker that read the same version loses the race, as it must
            with state.transaction() as tx:
                tx.update("orders", order_id, [Op.set("status", "paid")], version=item.version)
                tx.set("payments", order_id, {"order": order_id, "amount": total}, version=0)
        except VersionConflict as exc:
            out(f"  a racing worker was refused: {exc}")


def daily_report(state: State, out: Print) -> dict[str, object]:
    orders = state.get_group("orders")
    today = dt.date.today().isoformat()
    report = {
        "date": today,
        "orders": len(orders),
        "paid": state.get("stats", "paid_orders") or 0,
        "revenue": round(state.get("stats", "revenue") or 0, 2),
    }
    state.set("reports", today, report)
    out(f"daily report {today}: {report}")
    return report


def run(state: State, out: Print = print) -> dict[str, object]:
    out(f"backend: {state!r}")
    for group in ("orders", "payments", "stats"):
        state.clear(group)
    create_orders(state, out)
    process_payments(state, out)
    report = daily_report(state, out)
    out(f"groups now: {state.list_groups()}")
    return report
