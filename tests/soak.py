"""A bounded soak: writer processes run mixed traffic against one server while a watcher
follows the feed; then every count is checked.

``python -m tests.soak --url redis://... --processes 8 --seconds 60`` (``make soak``);
`tests/test_soak.py` runs a short one in ``make test``. Per writer, per round: a shared
counter increment, an update op on a shared document, a transfer between two accounts in
a transaction, a set with a short TTL, and reads (get, get_group). Afterwards:

* no call raised (loopback: no fault is expected),
* the counters equal the acknowledged increments exactly, the accounts' sum is unchanged,
* the watcher saw exactly one record per acknowledged write (plus one per expiry),
* after cleanup no expired item, expiry entry or TTL group is left behind.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from motia_state import State
from motia_state.backends import embedded

from .servers import standalone

GROUPS = ("soak-counters", "soak-docs", "soak-accounts", "soak-ttl")
ACCOUNTS = 10
START_BALANCE = 1_000


def _writer(url: str, prefix: str, seconds: float, index: int, results: Any) -> None:
    counts = {"writes": 0, "increments": 0, "updates": 0, "transfers": 0, "errors": 0}
    error = ""
    options = {"prefix": prefix, "changes_maxlen": 10_000_000, "cleanup_interval": 0.5}
    with State.from_url(url, **options) as state:
        deadline = time.monotonic() + seconds
        n = 0
        while time.monotonic() < deadline:
            n += 1
            try:
                state.increment("soak-counters", "shared", 1)
                counts["increments"] += 1
                counts["writes"] += 1
                state.update(
                    "soak-docs",
                    "doc",
                    [{"type": "increment", "path": f"by.w{index}", "by": 1}],
                )
                counts["updates"] += 1
                counts["writes"] += 1
                a, b = (n + index) % ACCOUNTS, (n + index + 1) % ACCOUNTS
                with state.transaction() as tx:
                    tx.increment("soak-accounts", f"a{a}", -1)
                    tx.increment("soak-accounts", f"a{b}", 1)
                counts["transfers"] += 1
                counts["writes"] += 2
                state.set("soak-ttl", f"w{index}-{n % 100}", {"n": n}, ttl=0.2)
                counts["writes"] += 1
                state.get("soak-counters", "shared")
                if n % 20 == 0:
                    state.get_group("soak-accounts")
            except Exception as exc:  # any failure is a finding: count it, keep the first
                counts["errors"] += 1
                error = error or f"{type(exc).__name__}: {exc}"
    results.put((index, counts, error))


def _watcher(url: str, prefix: str, stop: Any, results: Any) -> None:
    seen: dict[str, int] = {}
    with (
        State.from_url(url, prefix=prefix) as state,
        state.watch(list(GROUPS), since="0", consumer=("soak", "w"), block=0.5) as watch,
    ):
        quiet = 0
        while quiet < 3:  # after the stop, until the feed has been quiet for a while
            change = next(watch)
            if change is None:
                quiet += stop.is_set()
                continue
            quiet = 0
            seen[change.op] = seen.get(change.op, 0) + 1
            state.ack(change)
    results.put(("watcher", seen, ""))


def run(url: str, processes: int, seconds: float, prefix: str | None = None) -> dict[str, Any]:
    """Run the soak; returns the report (see the module docstring for what is checked)."""
    prefix = prefix or f"soak{int(time.time() * 1000) % 10**8}:"
    with State.from_url(url, prefix=prefix, changes_maxlen=10_000_000) as state:
        state.set_many("soak-accounts", {f"a{i}": START_BALANCE for i in range(ACCOUNTS)})
        ctx = multiprocessing.get_context("spawn")
        results, stop = ctx.Queue(), ctx.Event()
        watcher = ctx.Process(target=_watcher, args=(url, prefix, stop, results))
        watcher.start()
        time.sleep(1.0)  # the watcher's consumer group exists before the first write
        writers = [
            ctx.Process(target=_writer, args=(url, prefix, seconds, i, results))
            for i in range(processes)
        ]
        started = time.monotonic()
        for w in writers:
            w.start()
        reports = [results.get(timeout=seconds + 120) for _ in writers]
        elapsed = time.monotonic() - started
        for w in writers:
            w.join(30)
        stop.set()
        seen = results.get(timeout=120)[1]
        watcher.join(30)
        totals = {k: sum(r[1][k] for r in reports) for k in reports[0][1]}
        time.sleep(0.3)
        removed = state.cleanup()
        rows = {row.group: row for row in state.stats(GROUPS)[0]}
        accounts = state.items("soak-accounts")
        report = {
            "processes": processes,
            "seconds": round(elapsed, 1),
            "ops_per_s": round(totals["writes"] / elapsed),
            **totals,
            "first_error": next((r[2] for r in reports if r[2]), ""),
            "counter": state.get("soak-counters", "shared"),
            "doc_total": sum((state.get("soak-docs", "doc") or {}).get("by", {}).values()),
            "balance": sum(accounts.values()),
            "expected_balance": START_BALANCE * ACCOUNTS,
            "feed": seen,
            "feed_writes": sum(v for k, v in seen.items() if k != "expire"),
            "expired_records": seen.get("expire", 0),
            "cleanup_removed": removed,
            "ttl_items_left": rows["soak-ttl"].items,
            "ttl_entries_left": rows["soak-ttl"].with_ttl,
        }
        for group in GROUPS:
            state.clear(group)
    return report


def check(report: dict[str, Any]) -> list[str]:
    """What the report shows to be wrong (empty: the soak passed)."""
    problems = []
    if report["errors"]:
        problems.append(f"{report['errors']} failed call(s), first: {report['first_error']}")
    if report["counter"] != report["increments"]:
        problems.append(f"counter {report['counter']} != {report['increments']} increments")
    if report["doc_total"] != report["updates"]:
        problems.append(f"document total {report['doc_total']} != {report['updates']} updates")
    if report["balance"] != report["expected_balance"]:
        problems.append(f"accounts sum to {report['balance']}, not {report['expected_balance']}")
    if report["feed_writes"] != report["writes"] + ACCOUNTS:  # + the opening set_many
        problems.append(f"feed has {report['feed_writes']} write records for {report['writes']}")
    if report["ttl_items_left"] or report["ttl_entries_left"]:
        problems.append("expired items or expiry entries left after cleanup")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="default: a redis-server started from docker/redis.conf")
    parser.add_argument("--processes", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    args = parser.parse_args()
    if args.url:
        report = run(args.url, args.processes, args.seconds)
    else:
        with tempfile.TemporaryDirectory() as workdir:
            binary = shutil.which("redis-server") or embedded.valkey_binary()
            conf = Path(__file__).parent.parent / "docker" / "redis.conf"
            server = standalone(binary, conf, Path(workdir), "--save", "", "--appendonly", "no")
            try:
                report = run(server.url, args.processes, args.seconds)
            finally:
                server.stop()
    print(json.dumps(report, indent=2))
    problems = check(report)
    for problem in problems:
        print("FAILED:", problem)
    raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
