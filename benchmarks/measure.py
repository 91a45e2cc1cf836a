"""Timing: warm-up, several rounds, median and spread; nothing here knows any workload."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

Latencies = list[int]
#: One round of a workload: does the work, appends per-op latencies (ns) where it
#: has single operations, and returns how many operations it did, or (operations,
#: seconds) when it timed itself (a round run in another process).
Round = Callable[[Latencies], "int | tuple[int, float]"]


def make_value(i: int, size: int) -> dict[str, Any]:
    """A JSON object of about ``size`` bytes; driver.mjs builds the same bytes."""
    base: dict[str, Any] = {"id": i, "status": "pending", "payload": ""}
    pad = max(0, size - len(json.dumps(base, separators=(",", ":"))))
    return {**base, "payload": "x" * pad}


@dataclass
class Result:
    workload: str
    impl: str
    params: dict[str, Any]
    ops_per_s: list[float]
    latency_us: dict[str, float] | None = None
    unit: str = "ops"
    notes: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.ops_per_s)

    @property
    def spread(self) -> float:
        """(max - min) / median of the rounds: how noisy this figure is."""
        return (max(self.ops_per_s) - min(self.ops_per_s)) / self.median if self.median else 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(median=self.median, spread=self.spread)
        return data


def percentiles(latencies: Latencies) -> dict[str, float] | None:
    if not latencies:
        return None
    ordered = sorted(latencies)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000

    return {"p50": at(0.5), "p99": at(0.99)}


def compare(
    workload: str,
    params: dict[str, Any],
    impls: dict[str, Round],
    *,
    rounds: int,
    warmup: int = 1,
    unit: str = "ops",
) -> list[Result]:
    """Run every implementation's rounds interleaved, in alternating order (ABBA...).

    On a shared, noisy machine a slow spell then hits every implementation alike,
    so the ratio between them stays meaningful even when the absolute figures drift.
    """
    for one_round in impls.values():
        for _ in range(warmup):
            one_round([])
    throughput: dict[str, list[float]] = {name: [] for name in impls}
    latencies: dict[str, Latencies] = {name: [] for name in impls}
    order = list(impls)
    for n in range(rounds):
        for name in order if n % 2 == 0 else reversed(order):
            start = time.perf_counter()
            done = impls[name](latencies[name])
            elapsed = time.perf_counter() - start
            ops, seconds = done if isinstance(done, tuple) else (done, elapsed)
            throughput[name].append(ops / seconds)
    return [
        Result(workload, name, params, throughput[name], percentiles(latencies[name]), unit)
        for name in impls
    ]


def timed(op: Callable[[], object], latencies: Latencies) -> None:
    t0 = time.perf_counter_ns()
    op()
    latencies.append(time.perf_counter_ns() - t0)
