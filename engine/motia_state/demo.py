"""The order workflow from Motia's docs, run against any backend.

Three steps share state the way Motia steps do: one creates orders, one
processes payments (a transaction guarded by the order's version, so a payment
is never taken twice even when two workers race for the same order, and the
day's counters move with it), one writes the daily report.

The demo runs wherever ``motia-state demo`` points, real servers included, so it
never touches data it did not write: on a Redis server it works under a fresh prefix
of its own (its change stream too), elsewhere in groups named for the run, and it
removes all of it afterwards unless asked to keep it.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable

from . import connect
from .errors import VersionConflict
from .layout import DEFAULT_PREFIX, KeyLayout
from .state import State
from .updates import Op

Print = Callable[[str], None]

CUSTOMERS = [("ada", 3, 19.99), ("grace", 1, 250.0), ("linus", 2, 4.5), ("margaret", 5, 12.0)]
GROUPS = ("orders", "payments", "stats", "reports", "joins")


def create_orders(state: State, out: Print, ns: str = "") -> list[str]:
    orders = state.group(ns + "orders")
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


def process_payments(state: State, out: Print, ns: str = "") -> None:
    orders = state.group(ns + "orders")
    for order_id in orders.keys():
        item = orders.get_item(order_id)
        if item is None or item.value["status"] != "pending":
            continue
        total = round(item.value["quantity"] * item.value["unit_price"], 2)
        # The order, its payment and the day's totals change together, or not at all.
        with state.transaction() as tx:
            tx.update(ns + "orders", order_id, [Op.set("status", "paid")], version=item.version)
            tx.set(ns + "payments", order_id, {"order": order_id, "amount": total}, version=0)
            tx.increment(ns + "stats", "paid_orders")
            tx.increment(ns + "stats", "revenue", total)
        out(f"payment of {total:.2f} taken for {order_id} (order now version {item.version + 1})")
        try:  # a second worker that read the same version loses the race, as it must
            with state.transaction() as tx:
                tx.update(ns + "orders", order_id, [Op.set("status", "paid")], version=item.version)
                tx.set(ns + "payments", order_id, {"order": order_id, "amount": total}, version=0)
        except VersionConflict as exc:
            out(f"  a racing worker was refused: {exc}")


def daily_report(state: State, out: Print, ns: str = "") -> dict[str, object]:
    orders = state.get_group(ns + "orders")
    today = dt.date.today().isoformat()
    report = {
        "date": today,
        "orders": len(orders),
        "paid": state.get(ns + "stats", "paid_orders") or 0,
        "revenue": round(state.get(ns + "stats", "revenue") or 0, 2),
    }
    state.set(ns + "reports", today, report)
    out(
        f"daily report {today}: {report['orders']} order(s), {report['paid']} paid, "
        f"revenue {report['revenue']:.2f}"
    )
    return report


class SimulatedCrash(Exception):
    """The worker dies after its write committed and before it acknowledged its event."""


def exactly_once(state: State, out: Print, ns: str = "") -> None:
    """A step runs at least once: here it crashes after its writes and is retried with the
    same invocation id, as a supervisor would. With idempotency keys the retry changes
    nothing a second time: the counters stay exact, and the fan-in barrier after three
    parallel checks (one of them retried) releases the join exactly once."""
    order_id = f"order-{uuid.uuid4().hex[:8]}"
    invocation = f"pay-{order_id}"  # the step's invocation id, the same on every retry
    feed = "feed" in state.capabilities  # the outbox needs the change feed (a Redis server)

    def pay_step(crash: bool) -> list[object]:
        with state.transaction(idempotency_key=f"{invocation}:0") as tx:
            tx.set(ns + "payments", order_id, {"order": order_id, "amount": 42.0})
            tx.increment(ns + "stats", "paid_orders")
            tx.increment(ns + "stats", "revenue", 42.0)
            if feed:  # the event commits with the writes: both or neither, and once
                tx.emit("order.paid", {"order": order_id, "amount": 42.0})
        if crash:
            raise SimulatedCrash(f"worker killed after paying {order_id}")
        assert tx.results is not None
        return tx.results

    before = state.get(ns + "stats", "paid_orders") or 0
    try:
        pay_step(crash=True)
    except SimulatedCrash as exc:
        out(f"step crashed: {exc}; the supervisor retries it with invocation id {invocation}")
    results = pay_step(crash=False)
    after = state.get(ns + "stats", "paid_orders")
    out(
        f"retried: the same results {results[1:3]} came back from the first run's receipt; "
        f"paid_orders went {before} -> {after}, once"
    )
    if feed:
        with state.events("order.paid", groups=ns + "payments", since="0", block=0) as events:
            paid = [e.data for e in iter(events.__next__, None)]
        out(f"order.paid events in the feed: {len(paid)}, for a step that ran twice")
    for check in ("check-credit", "check-fraud", "check-stock", "check-fraud"):  # one retried
        joined = state.barrier(ns + "joins", order_id, parties=3, arrival=check, data={"ok": True})
        word = "releases the join" if joined.released else "waits"
        out(f"  {check} arrives: {joined.arrived}/{joined.parties}, {word}")


def run(state: State, out: Print = print, ns: str = "") -> dict[str, object]:
    """The workflow in the groups ``ns + GROUPS``, which must be empty: its own."""
    create_orders(state, out, ns)
    process_payments(state, out, ns)
    exactly_once(state, out, ns)
    report = daily_report(state, out, ns)
    mine = [g for g in state.list_groups() if g.startswith(ns)]
    out(f"groups now: {', '.join(mine)}")
    return report


def in_own_namespace(url: str | None, out: Print = print, *, keep: bool = False) -> None:
    """`run` where it can touch nothing else, then remove what it wrote (unless ``keep``)."""
    url = url or connect.default_url()
    tag = uuid.uuid4().hex[:8]
    server = url.partition("://")[0].lower() in (*connect.ANY_REDIS_SCHEME, "embedded")
    prefix, ns = (f"motia:demo:{tag}:", "") if server else (DEFAULT_PREFIX, f"demo-{tag}-")
    where = f"under the prefix {prefix!r}" if server else f"in the groups {ns}*"
    with State.from_url(url, prefix=prefix, cleanup_interval=None) as state:
        out(f"backend: {state!r}; the demo writes only {where}")
        try:
            run(state, out, ns)
        finally:
            if keep:
                look = f" --prefix {prefix}" if server else ""
                out(f"kept; look with: motia-state items {ns}orders{look}")
                out(f"or in a browser: motia-state ui{look}")
            else:
                for group in GROUPS:
                    state.clear(ns + group)
                if server:
                    _drop_prefix(state, prefix)
                out("removed everything the demo wrote")
                out("to look at it in a browser: motia-state demo --keep, then the ui command")


def _drop_prefix(state: State, prefix: str) -> None:
    """Remove the keys left under the demo's own prefix once its groups are cleared (its
    change stream): no State call removes those, and nobody else writes there."""
    client = state._backend.client  # type: ignore[attr-defined]
    layout = KeyLayout(prefix)
    for pattern in (layout.scan_pattern(), layout.meta_root + b"*"):
        for key in list(client.scan_iter(match=pattern, count=1000)):
            client.unlink(key)
