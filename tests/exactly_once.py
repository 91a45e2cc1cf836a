"""Exactly-once steps under faults: a small order workflow run by worker processes that are
SIGKILLed at random points and retried by a supervisor with the same invocation ids, while
the server is SIGKILLed once and restarted from its append-only file (appendfsync always).

The workflow, per order: ``create`` (the order, and the event ``order.created``), then three
parallel checks (each: its result and ``check.done``, then an arrival at the order's barrier),
and, started by the one arrival the barrier releases, ``pay`` (the order paid, two counters,
and ``order.paid``). Every step's writes and event are one transaction keyed by its
invocation id (``<order>/<step>:0``); a worker that dies anywhere (before its writes, after
its commit, after its arrival) has its step run again by another worker. A consumer process
reads the events through a consumer group, acknowledging each; it is killed once too, and its
successor claims what it left pending.

Afterwards `check` proves: every order paid and every counter exact; exactly one event per
committed step (none twice, none for a step whose writes are absent); every event delivered
to the consumers; every barrier complete and released by exactly one arrival; and that the
faults did happen. ``python -m tests.exactly_once --orders 400`` (``make soak``) runs a longer
one on a server of its own; `tests/test_exactly_once.py` runs a short one in ``make test``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import os
import random
import signal
import tempfile
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from motia_state import Change, Op, State, StateError

from .servers import standalone
from .test_faults import BINARY, DURABLE

CHECKS = ("check-credit", "check-fraud", "check-stock")
TOPICS = ("order.created", "check.done", "order.paid")
# Where a worker may die: before its step writes, after its transaction committed (before it
# reported), after its barrier arrival (before it reported the release).
CRASH_POINTS = ("before", "after-commit", "after-arrival")
Task = tuple[str, str]  # (step, order)


def cents(order: str) -> int:
    return 100 + 37 * int(order.rsplit("-", 1)[1])


def run_step(state: State, task: Task, crash: Callable[[str], None]) -> tuple[list[Task], bool]:
    """One step, as a Motia step handler would run it; returns the steps it starts and
    whether this call was released by the barrier."""
    kind, order = task
    key = f"{order}/{kind}:0"  # the invocation id and the write's position in the step
    crash("before")
    if kind == "create":
        with state.transaction(idempotency_key=key) as tx:
            tx.set("orders", order, {"status": "new", "cents": cents(order)})
            tx.emit("order.created", {"order": order})
        crash("after-commit")
        return [(check, order) for check in CHECKS], False
    if kind in CHECKS:
        with state.transaction(idempotency_key=key) as tx:
            tx.set("checks", f"{order}:{kind}", {"ok": True})
            tx.emit("check.done", {"order": order, "check": kind})
        crash("after-commit")
        joined = state.barrier("joins", order, parties=len(CHECKS), arrival=kind, data=kind)
        crash("after-arrival")
        return ([("pay", order)] if joined.released else []), joined.released
    assert kind == "pay"
    with state.transaction(idempotency_key=key) as tx:
        tx.update("orders", order, [Op.set("status", "paid")])
        tx.increment("stats", "paid_orders")
        tx.increment("stats", "revenue_cents", cents(order))
        tx.emit("order.paid", {"order": order, "cents": cents(order)})
    crash("after-commit")
    return [], False


def _worker(url: str, options: dict[str, Any], conn: Connection, seed: int, rate: float) -> None:
    rng = random.Random(seed)

    def crash(point: str) -> None:
        if rng.random() < rate:
            conn.send(("dying", point))
            os.kill(os.getpid(), signal.SIGKILL)

    with State.from_url(url, **options) as state:
        while (task := conn.recv()) is not None:
            try:
                follow, released = run_step(state, task, crash)
            except StateError as exc:  # a restart outlasted the retries: run it again
                conn.send(("failed", task, f"{type(exc).__name__}: {exc}"))
            else:
                conn.send(("done", task, follow, released))


def _consumer(url: str, options: dict[str, Any], name: str, out: Any, claim: float) -> None:
    def deliver(event: Change) -> None:
        out.put((event.event_id, event.topic, event.data))

    with State.from_url(url, **options) as state:
        sub = state.on_event(
            TOPICS, deliver, consumer=("audit", name), since="0", claim_after=claim
        )
        sub.join()


@dataclass
class Worker:
    proc: multiprocessing.process.BaseProcess
    conn: Connection
    task: Task | None = None
    dying: str | None = None


@dataclass
class Report:
    orders: int
    tasks_done: int = 0
    retried: int = 0
    self_kills: Counter[str] = field(default_factory=Counter)
    supervisor_kills: int = 0
    failures: list[str] = field(default_factory=list)
    restarts: int = 0
    consumer_kills: int = 0
    released: dict[str, list[str]] = field(default_factory=dict)
    delivered: dict[str, tuple[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0


class Supervisor:
    """Hands steps to workers, one at a time each; runs a step again when its worker died
    or failed, with the same invocation id; replaces dead workers."""

    def __init__(
        self, url: str, options: dict[str, Any], workers: int, rate: float, seed: int
    ) -> None:
        self.url, self.options, self.rate = url, options, rate
        self.rng = random.Random(seed)
        self.ctx = multiprocessing.get_context("spawn")
        self.workers = [self._spawn() for _ in range(workers)]

    def _spawn(self) -> Worker:
        mine, theirs = self.ctx.Pipe()
        seed = self.rng.randrange(2**32)
        proc = self.ctx.Process(
            target=_worker, args=(self.url, self.options, theirs, seed, self.rate), daemon=True
        )
        proc.start()
        theirs.close()
        return Worker(proc, mine)

    def run(
        self,
        report: Report,
        tasks: deque[Task],
        restart: Callable[[], None] | None,
        kill_every: int,
        deadline: float,
    ) -> None:
        total_hint = report.orders * (2 + len(CHECKS))
        restarted = restart is None
        while tasks or any(w.task for w in self.workers):
            assert time.monotonic() < deadline, f"the workflow did not finish: {report}"
            for w in self.workers:
                if w.task is None and tasks:
                    w.task = tasks.popleft()
                    w.conn.send(w.task)
            busy = [w for w in self.workers if w.task is not None]
            ready = multiprocessing.connection.wait(
                [w.conn for w in busy] + [w.proc.sentinel for w in busy], timeout=1.0
            )
            for w in busy:
                self._read(w, report, tasks)
                if w.proc.sentinel in ready or not w.proc.is_alive():
                    self._buried(w, report, tasks)
            if not restarted and report.tasks_done >= total_hint // 2:
                assert restart is not None
                restart()
                report.restarts += 1
                restarted = True
            if kill_every and report.tasks_done and self.rng.random() < 1 / kill_every:
                victims = [w for w in self.workers if w.task is not None]
                if victims:  # a random moment: mid-call, mid-transaction, mid-arrival
                    victim = self.rng.choice(victims)
                    victim.proc.kill()
                    report.supervisor_kills += 1

    def _read(self, w: Worker, report: Report, tasks: deque[Task]) -> None:
        while w.task is not None and w.conn.poll():
            try:
                message = w.conn.recv()
            except (EOFError, OSError):
                return
            if message[0] == "dying":
                w.dying = message[1]
            elif message[0] == "done":
                _, task, follow, released = message
                report.tasks_done += 1
                tasks.extend(follow)
                if released:
                    report.released.setdefault(task[1], []).append(task[0])
                w.task = None
            else:  # failed: the same step, the same invocation id, again
                report.failures.append(message[2])
                report.retried += 1
                tasks.append(message[1])
                w.task = None

    def _buried(self, w: Worker, report: Report, tasks: deque[Task]) -> None:
        w.proc.join(5)
        self._read(w, report, tasks)  # what it said before it died
        if w.task is not None:
            report.retried += 1
            tasks.append(w.task)
        if w.dying is not None:
            report.self_kills[w.dying] += 1
        w.conn.close()
        self.workers[self.workers.index(w)] = self._spawn()

    def stop(self) -> None:
        for w in self.workers:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        for w in self.workers:
            w.proc.join(10)
            if w.proc.is_alive():
                w.proc.kill()


def run(
    url: str,
    options: dict[str, Any],
    *,
    orders: int,
    workers: int = 4,
    crash_rate: float = 0.05,
    kill_every: int = 40,
    restart: Callable[[], None] | None = None,
    seed: int = 1,
    timeout: float = 600.0,
) -> Report:
    """The workflow for ``orders`` orders; ``restart`` SIGKILLs the server and starts it again
    from its AOF (called once, half way)."""
    started = time.monotonic()
    deadline = started + timeout
    report = Report(orders)
    ctx = multiprocessing.get_context("spawn")
    delivered = ctx.Queue()
    consumer = ctx.Process(target=_consumer, args=(url, options, "c1", delivered, 1.0), daemon=True)
    consumer.start()
    supervisor = Supervisor(url, options, workers, crash_rate, seed)
    tasks: deque[Task] = deque(("create", f"order-{i}") for i in range(orders))
    successor = None
    try:
        supervisor.run(report, tasks, restart, kill_every, deadline)
        # the first consumer dies with events pending; the next claims them
        consumer.kill()
        consumer.join()
        report.consumer_kills += 1
        successor = ctx.Process(
            target=_consumer, args=(url, options, "c2", delivered, 0.5), daemon=True
        )
        successor.start()
        expected = _event_ids(url, options)
        while not expected <= report.delivered.keys():
            assert time.monotonic() < deadline, "events were never delivered"
            try:
                event_id, topic, data = delivered.get(timeout=1.0)
            except Exception:  # queue.Empty
                continue
            report.delivered[event_id] = (topic, data)
    finally:
        supervisor.stop()
        for proc in (consumer, successor):
            if proc is not None and proc.is_alive():
                proc.kill()
                proc.join()
    report.seconds = time.monotonic() - started
    return report


def _event_ids(url: str, options: dict[str, Any]) -> set[str]:
    with State.from_url(url, **options) as state, state.events(TOPICS, since="0", block=0) as w:
        found = set()
        for event in w:
            if event is None:
                break
            found.add(event.event_id)
    return found


def check(url: str, options: dict[str, Any], report: Report) -> list[str]:
    """Everything the workflow promises; an empty list when all holds."""
    problems: list[str] = []
    n = report.orders
    with State.from_url(url, **options) as state:
        orders = state.items("orders")
        events: list[Change] = []
        with state.events(TOPICS, since="0", block=0) as w:
            for event in w:
                if event is None:
                    break
                events.append(event)
        stats = state.items("stats")
        barriers = {f"order-{i}": state.barrier_state("joins", f"order-{i}") for i in range(n)}
        checks = state.items("checks")
    if len(orders) != n or any(o["status"] != "paid" for o in orders.values()):
        problems.append(f"orders not all paid: {len(orders)} of {n}")
    if stats.get("paid_orders") != n:
        problems.append(f"paid_orders is {stats.get('paid_orders')}, not {n}")
    revenue = sum(cents(f"order-{i}") for i in range(n))
    if stats.get("revenue_cents") != revenue:
        problems.append(f"revenue_cents is {stats.get('revenue_cents')}, not {revenue}")
    per_step = Counter(
        (e.topic, e.data["order"], e.data.get("check")) for e in events if e.data is not None
    )
    wanted = {("order.created", f"order-{i}", None) for i in range(n)}
    wanted |= {("check.done", f"order-{i}", c) for i in range(n) for c in CHECKS}
    wanted |= {("order.paid", f"order-{i}", None) for i in range(n)}
    twice = sorted(str(k) for k, count in per_step.items() if count != 1)
    if twice:
        problems.append(f"steps emitted more than once: {twice[:5]}")
    if set(per_step) != wanted:
        problems.append(
            f"events of steps that did not commit, or missing: {set(per_step) ^ wanted}"
        )
    for step, order, name in per_step:  # each event's writes are there
        if step == "check.done" and f"{order}:{name}" not in checks:
            problems.append(f"{step} {order} {name} without its check")
    undelivered = {e.event_id for e in events} - report.delivered.keys()
    if undelivered:
        problems.append(f"{len(undelivered)} events never delivered")
    for order, joined in barriers.items():
        if joined is None or not joined.complete or joined.released_by not in CHECKS:
            problems.append(f"barrier of {order} is {joined}")
        elif set(report.released.get(order, [])) != {joined.released_by}:
            problems.append(f"{order} released by {report.released.get(order)}")
    return problems


def _server(workdir: Path) -> tuple[str, Callable[[], None], Callable[[], None]]:
    """A Redis server of its own with appendfsync always: its URL, a restart from its AOF
    after SIGKILL, and a stop."""
    conf = Path(__file__).resolve().parents[1] / "docker" / "redis.conf"
    holder = [standalone(BINARY, conf, workdir, *DURABLE)]

    def restart() -> None:
        old = holder[0]
        assert old.proc is not None
        old.proc.kill()
        old.proc.wait()
        old.proc = None
        holder[0] = standalone(BINARY, conf, workdir, *DURABLE, port=old.port)

    return holder[0].url, restart, lambda: holder[0].stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=400)
    parser.add_argument("--workers", type=int, default=6)
    parser.add_argument("--crash-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url, restart, stop = _server(Path(tmp) / "server")
        options = {"prefix": "exactly-once:", "cleanup_interval": None, "retries": 8}
        try:
            report = run(
                url, options, orders=args.orders, workers=args.workers,
                crash_rate=args.crash_rate, restart=restart, seed=args.seed, timeout=3000,
            )  # fmt: skip
            problems = check(url, options, report)
        finally:
            stop()
    summary = {k: v for k, v in vars(report).items() if k not in ("delivered", "released")}
    print(json.dumps({**summary, "seed": args.seed, "events": len(report.delivered)}, indent=2))
    if problems:
        raise SystemExit("\n".join(problems))
    print("exactly once: every counter exact, every event delivered, every barrier released once")


if __name__ == "__main__":
    main()
