"""Timing: warm-up, several rounds, median and spread, and the server's own time per op
(INFO commandstats); nothing here knows any workload."""

from __future__ import annotations

import json
import re
import statistics
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
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
    #: The server's own figures over the timed rounds (`server_figures`), None where the
    #: implementation has no server whose INFO commandstats we read (file://).
    server: dict[str, Any] | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.ops_per_s)

    @property
    def spread(self) -> float:
        """(max - min) / median of the rounds: how noisy this figure is."""
        return (max(self.ops_per_s) - min(self.ops_per_s)) / self.median if self.median else 0.0

    @property
    def server_usec_per_op(self) -> float | None:
        return None if self.server is None else self.server["usec_per_op"]

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


# -- the server's own time: INFO commandstats ------------------------------------------

#: INFO commandstats as ``{command: {"calls": n, "usec": n}}``, the command in lower case
#: ("config|resetstat" for a subcommand).
Stats = dict[str, dict[str, int]]

#: Commands a measurement sends for itself or a connection makes when it opens: not the
#: workload's (CONFIG RESETSTAT is counted by the server once it has reset the counts).
NOT_WORKLOAD = frozenset(
    {
        "config",
        "info",
        "hello",
        "client",
        "select",
        "auth",
        "ping",
        "command",
        "script",
        "cluster",
        "readonly",
    }
)
#: Commands that run server-side code.
SCRIPT_COMMANDS = frozenset({"eval", "evalsha", "eval_ro", "evalsha_ro", "fcall", "fcall_ro"})
#: Commands whose time includes that of other commands, each also counted on its own line.
CONTAINERS = SCRIPT_COMMANDS | {"exec"}
#: Called by the scripts through a variable, not a literal name: common.lua publishes the
#: write marker with ``redis.call(feed.publish, ...)``, PUBLISH or SPUBLISH.
VARIABLE_CALLS = frozenset({"publish", "spublish"})

_LUA_CALL = re.compile(rb"""redis\.p?call\(\s*['"]([A-Za-z_]+)['"]""")


def read_commandstats(client: Any) -> Stats:
    """A server's INFO commandstats (any redis-py client)."""
    return {
        name.removeprefix("cmdstat_").lower(): {"calls": int(s["calls"]), "usec": int(s["usec"])}
        for name, s in client.info("commandstats").items()
        if name.startswith("cmdstat_")
    }


def add_stats(*many: Mapping[str, Mapping[str, int]]) -> Stats:
    """Several commandstats added up (rounds, slices, or the nodes of a cluster)."""
    total: Stats = {}
    for stats in many:
        for name, counts in stats.items():
            mine = total.setdefault(name, {"calls": 0, "usec": 0})
            mine["calls"] += counts["calls"]
            mine["usec"] += counts["usec"]
    return total


def nested_names(lua_dir: Path) -> frozenset[str]:
    """The commands the Lua scripts under ``lua_dir`` (includes too) may call."""
    return nested_in(path.read_bytes() for path in sorted(lua_dir.rglob("*.lua")))


def nested_in(texts: Iterable[bytes]) -> frozenset[str]:
    """The commands Lua script texts may call: for a workload that runs only these scripts
    and also sends, outside them, a command other scripts call (get_group's HVALS, which
    clear.lua calls too): `nested_names` would count it inside the scripts."""
    names = {m.group(1).decode().lower() for text in texts for m in _LUA_CALL.finditer(text)}
    return frozenset(names) | VARIABLE_CALLS


def top_level(stats: Stats, nested: Collection[str]) -> tuple[Stats, Stats]:
    """A round's commandstats split into the workload's top-level commands and the commands
    run inside them; measurement and connection commands (`NOT_WORKLOAD`) in neither.

    Redis 7.0 and Valkey 8.1 alike count each command a script (EVAL*, FCALL*) or a
    transaction (EXEC) runs on a line of its own, calls and time, and that time is also
    inside the script's or EXEC's: summing every line counts it twice. So where a script
    ran, the commands ``nested`` names (those the scripts call, `nested_names`) are taken
    as run inside it; where EXEC ran, every command but MULTI, EXEC and the scripts is
    taken as queued inside it. Exact as long as a workload does not also send, outside its
    scripts, a command they call, nor plain commands outside its transactions: the engine's
    get_group sends HVALS, which clear.lua calls too, beside an EVALSHA of expired_keys.lua,
    so its workload names only that script's calls (`nested_in`).
    """
    mine = {n: s for n, s in stats.items() if n.split("|")[0] not in NOT_WORKLOAD}
    scripts = any(n in SCRIPT_COMMANDS for n in mine)
    transaction = "exec" in mine

    def inside(name: str) -> bool:
        base = name.split("|")[0]
        if base in CONTAINERS or base == "multi":
            return False
        return transaction or (scripts and base in nested)

    outer = {n: s for n, s in mine.items() if not inside(n)}
    inner = {n: s for n, s in mine.items() if inside(n)}
    return outer, inner


def server_figures(stats: Stats, ops: float, nested: Collection[str]) -> dict[str, Any]:
    """The workload's own top-level commands over ``ops`` operations: calls, server usec,
    usec per call, per op and calls per op; which commands those were, and which ran
    inside them (counted in their time, not again)."""
    outer, inner = top_level(stats, nested)
    calls = sum(s["calls"] for s in outer.values())
    usec = sum(s["usec"] for s in outer.values())
    return {
        "commands": sorted(outer),
        "inside": sorted(inner),
        "calls": calls,
        "usec": usec,
        "usec_per_call": usec / calls if calls else None,
        "calls_per_op": calls / ops if ops else None,
        "usec_per_op": usec / ops if ops else None,
    }


# -- running the rounds ----------------------------------------------------------------


def compare(
    workload: str,
    params: dict[str, Any],
    impls: dict[str, Round],
    *,
    rounds: int,
    warmup: int = 1,
    unit: str = "ops",
    servers: Mapping[str, Sequence[Any]] | None = None,
    nested: Collection[str] = frozenset(),
) -> list[Result]:
    """Run every implementation's rounds interleaved, in alternating order (ABBA...).

    On a shared, noisy machine a slow spell then hits every implementation alike,
    so the ratio between them stays meaningful even when the absolute figures drift.

    ``servers[impl]``: the redis-py clients of the servers that implementation works
    against (an empty list: none); each of its timed rounds resets their INFO
    commandstats before (CONFIG RESETSTAT) and reads them after, outside the timing, and
    its Result's ``server`` holds the figures over all its rounds (`server_figures`).
    """
    for one_round in impls.values():
        for _ in range(warmup):
            one_round([])
    servers = servers or {}
    throughput: dict[str, list[float]] = {name: [] for name in impls}
    latencies: dict[str, Latencies] = {name: [] for name in impls}
    counted: dict[str, list[tuple[int, Stats]]] = {name: [] for name in impls}
    order = list(impls)
    for n in range(rounds):
        for name in order if n % 2 == 0 else reversed(order):
            clients = servers.get(name, ())
            for client in clients:
                client.config_resetstat()
            start = time.perf_counter()
            done = impls[name](latencies[name])
            elapsed = time.perf_counter() - start
            ops, seconds = done if isinstance(done, tuple) else (done, elapsed)
            throughput[name].append(ops / seconds)
            if clients:
                counted[name].append((ops, add_stats(*map(read_commandstats, clients))))
    return [
        Result(
            workload,
            name,
            params,
            throughput[name],
            percentiles(latencies[name]),
            unit,
            server=_over_rounds(counted[name], nested) if counted[name] else None,
        )
        for name in impls
    ]


def _over_rounds(counted: list[tuple[int, Stats]], nested: Collection[str]) -> dict[str, Any]:
    """`server_figures` over all rounds together, with each round's usec per op beside."""
    ops = sum(o for o, _ in counted)
    figures = server_figures(add_stats(*(s for _, s in counted)), ops, nested)
    figures["ops"] = ops
    figures["rounds_usec_per_op"] = [
        server_figures(stats, o, nested)["usec_per_op"] for o, stats in counted
    ]
    return figures


def timed(op: Callable[[], object], latencies: Latencies) -> None:
    t0 = time.perf_counter_ns()
    op()
    latencies.append(time.perf_counter_ns() - t0)
