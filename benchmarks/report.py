"""What a run produces: the terminal table, the JSON file, the chart, the targets and the
goal ratios."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .measure import Result

#: get_group's physical limit on one server: one HVALS, then each value parsed by orjson.
LIMIT = "limit (HVALS + orjson.loads per value)"


def find(results: list[Result], workload: str, impl: str, **params: Any) -> Result | None:
    """The result of ``impl`` on ``workload`` whose params include ``params`` (None: absent)."""
    for r in results:
        if (
            r.workload == workload
            and r.impl == impl
            and all(r.params.get(k) == v for k, v in params.items())
        ):
            return r
    return None


def _ratio(a: Result | None, b: Result | None) -> float | None:
    return a.median / b.median if a and b and b.median else None


def _row(
    name: str, value: float | None, goal: float | None, higher_is_better: bool = True
) -> dict[str, Any]:
    met = (
        None
        if value is None or goal is None
        else (value >= goal if higher_is_better else value <= goal)
    )
    return {
        "target": name,
        "measured": value,
        "goal": goal,
        "higher_is_better": higher_is_better,
        "met": met,
    }


def fig(x: float | None) -> str:
    """A server figure in a few characters: 1,234 / 12.3 / 1.23 / 0.123 / 2.1e-05."""
    if x is None:
        return "-"
    if x >= 100:
        return f"{x:,.0f}"
    if x >= 10:
        return f"{x:.1f}"
    if x >= 1:
        return f"{x:.2f}"
    return f"{x:.3f}" if x >= 0.01 else f"{x:.2g}"


def server_note(result: Result) -> str:
    """The server's microseconds per op (or item), as " · 7.1 us srv", when measured."""
    usec = result.server_usec_per_op
    return "" if usec is None else f" · {fig(usec)} us srv"


def targets(
    results: list[Result],
    memory: dict[str, Any] | None,
    mid: int,
    large: int,
    other: tuple[int, ...],
) -> list[dict[str, Any]]:
    """Each target of the benchmark issue, with the figure measured in this run."""
    v200 = {"value_bytes": 200}

    t = _row
    get_e, get_r = find(results, "get", "engine", **v200), find(results, "get", "redis-py", **v200)
    set_e, set_r = find(results, "set", "engine", **v200), find(results, "set", "redis-py", **v200)
    group_e = find(results, "get_group", "engine", items=large, **v200)
    group_r = find(results, "get_group", "redis-py", items=large, **v200)
    group_time = _ratio(group_r, group_e)  # time ratio = inverse of the throughput ratio
    rows = [
        t("get serial vs redis-py HGET+decode (x throughput)", _ratio(get_e, get_r), 0.75),
        t("set serial vs redis-py HSET (x throughput)", _ratio(set_e, set_r), 0.75),
        t(
            "set_many vs redis-py pipelined HSET (x items/s)",
            _ratio(find(results, "set_many", "engine"), find(results, "set_many", "redis-py")),
            1.5,
        ),
        t(f"get_group of {large:,} items vs HGETALL+decode (x time)", group_time, 1.5, False),
        t(
            "AsyncState get x64 tasks vs sync serial get (x throughput)",
            _ratio(
                find(results, "get x64 tasks", "engine async"),
                find(results, "get x64 tasks", "engine sync serial"),
            ),
            2.5,
        ),
        t(
            "AsyncState set x64 tasks vs sync serial set (x throughput)",
            _ratio(
                find(results, "set x64 tasks", "engine async"),
                find(results, "set x64 tasks", "engine sync serial"),
            ),
            2.5,
        ),
        t(
            f"get_group of {mid:,} items vs Motia v0 getGroup, server holding only it (x faster)",
            _ratio(
                find(results, "get_group", "engine", items=mid, other_keys=None, **v200),
                find(results, "get_group", "motia v0 (node)", items=mid, other_keys=None),
            ),
            5.0,
        ),
        *[
            t(
                f"get_group of {mid:,} items vs Motia v0 getGroup, {n:,} other keys (x faster)",
                _ratio(
                    find(results, "get_group", "engine", items=mid, other_keys=n),
                    find(results, "get_group", "motia v0 (node)", items=mid, other_keys=n),
                ),
                5.0,
            )
            for n in other
        ],
        t(
            "increment, 4 processes on one hot key vs on 4 keys (x throughput)",
            _ratio(
                find(results, "increment, 4 processes", "one hot key"),
                find(results, "increment, 4 processes", "4 keys"),
            ),
            0.6,
        ),
        t(
            "update, 4 processes on one hot key vs on 4 keys (x throughput)",
            _ratio(
                find(results, "update, 4 processes", "one hot key"),
                find(results, "update, 4 processes", "4 keys"),
            ),
            0.5,
        ),
        t(
            "set vs Motia v0 set (x throughput)",
            _ratio(set_e, find(results, "set", "motia v0 (node)")),
            1.0,
        ),
        t(
            "get vs Motia v0 get (x throughput)",
            _ratio(get_e, find(results, "get", "motia v0 (node)")),
            1.0,
        ),
    ]
    set_ttl = _ratio(
        find(results, "set, TTL or not", "ttl=3600"), find(results, "set, TTL or not", "no TTL")
    )
    get_ttl = _ratio(
        find(results, "get, TTL or not", "ttl=3600"), find(results, "get, TTL or not", "no TTL")
    )
    rows.append(
        t("set with a TTL vs without (x throughput; no target, for the record)", set_ttl, 0.0)
    )
    rows.append(
        t("get of an item with a TTL vs without (x throughput; for the record)", get_ttl, 0.0)
    )
    if memory:
        rows.append(
            t(
                "Redis bytes per item vs Motia v0 layout (x)",
                memory["engine_bytes_per_item"] / memory["motia_v0_bytes_per_item"],
                1.0,
                False,
            )
        )
        rows.append(
            t(
                "Redis bytes per item without the change stream vs Motia v0 (x)",
                (memory["engine_data_hash_per_item"] + memory["engine_versions_hash_per_item"])
                / memory["motia_v0_bytes_per_item"],
                1.0,
                False,
            )
        )
    return rows


#: Issue 16's cached/uncached get ratio (goal >= 20x): the workload of this name runs these
#: two implementations (workloads.near_cache).
NEAR_CACHE_GET = ("get, near cache", "cached", "uncached")


def goals(results: list[Result], mid: int, large: int) -> list[dict[str, Any]]:
    """Issue 16's goal ratios: the engine's throughput over its baseline's, in this run,
    with both sides' server microseconds per op (or item)."""
    v200 = {"value_bytes": 200}
    pairs: list[tuple[str, Result | None, Result | None, float | None]] = [
        (
            "set serial / raw redis-py HSET",
            find(results, "set", "engine", **v200),
            find(results, "set", "redis-py", **v200),
            1.0,
        ),
        (
            "set_many / pipelined HSET",
            find(results, "set_many", "engine"),
            find(results, "set_many", "redis-py"),
            1.5,
        ),
        (
            "AsyncState set, 64 tasks / sync serial set",
            find(results, "set x64 tasks", "engine async"),
            find(results, "set x64 tasks", "engine sync serial"),
            3.0,
        ),
        *[
            (
                f"get_group of {n:,} items / {LIMIT}",
                find(results, "get_group", "engine", items=n, other_keys=None, **v200),
                find(results, "get_group", LIMIT, items=n, **v200),
                0.9,
            )
            for n in (mid, large)
        ],
    ]
    name, cached, uncached = NEAR_CACHE_GET
    near = find(results, name, cached), find(results, name, uncached)
    if near[0] and near[1]:
        pairs.append(("near cache: cached get / uncached get", *near, 20.0))
    rows = []
    for label, engine, baseline, goal in pairs:
        row = _row(label, _ratio(engine, baseline), goal)
        row["server_usec_per_op"] = {
            "engine": engine.server_usec_per_op if engine else None,
            "baseline": baseline.server_usec_per_op if baseline else None,
        }
        rows.append(row)
    return rows


def _params(r: Result) -> str:
    return ", ".join(f"{k}={v}" for k, v in r.params.items() if k != "ops_per_round")


def table(
    results: list[Result], target_rows: list[dict[str, Any]], say: Callable[[str], None]
) -> None:
    """Every result (with the server's us and calls per op, INFO commandstats), then the
    targets."""
    ww = max([26, *(len(r.workload) for r in results)])
    iw = max([17, *(len(r.impl) for r in results)])
    say("")
    say(
        f"{'workload':<{ww}} {'impl':<{iw}} {'params':<34} {'median/s':>12} {'srv us/op':>9} "
        f"{'calls/op':>8} {'spread':>7} {'p50 us':>8} {'p99 us':>8}"
    )
    for r in results:
        lat = r.latency_us or {}
        srv = r.server or {}
        say(
            f"{r.workload:<{ww}} {r.impl:<{iw}} {_params(r):<34} {r.median:>12,.0f} "
            f"{fig(srv.get('usec_per_op')):>9} {fig(srv.get('calls_per_op')):>8} "
            f"{r.spread:>6.0%} "
            f"{lat.get('p50', float('nan')):>8.1f} {lat.get('p99', float('nan')):>8.1f}"
        )
    say("")
    say(
        "srv us/op, calls/op: the server's own microseconds and commands per op (or item) over "
        "the timed rounds, from INFO commandstats, top-level commands only"
    )
    say("")
    say("targets (ratios measured within this run):")
    for row in target_rows:
        value = "n/a" if row["measured"] is None else f"{row['measured']:.2f}"
        verdict = {True: "met", False: "MISSED", None: "not measured"}[row["met"]]
        sign = ">=" if row["higher_is_better"] else "<="
        say(f"  {row['target']:<84} {value:>6}  (goal {sign} {row['goal']})  {verdict}")


def goal_table(goal_rows: list[dict[str, Any]], say: Callable[[str], None]) -> None:
    """Issue 16's goal ratios, the last thing a run prints."""
    say("")
    say("goals (engine / baseline, x throughput, within this run; server us per op or item):")
    for row in goal_rows:
        value = "n/a" if row["measured"] is None else f"{row['measured']:.2f}"
        if row["goal"] is None:
            verdict = "no goal set"
        else:
            verdict = {True: "met", False: "MISSED", None: "not measured"}[row["met"]]
        goal = "" if row["goal"] is None else f">= {row['goal']}"
        srv = row["server_usec_per_op"]
        say(
            f"  {row['target']:<68} {value:>6}  (goal {goal:<6}) {verdict:<12} "
            f"srv {fig(srv['engine'])} vs {fig(srv['baseline'])} us"
        )


def write_json(
    path: Path,
    meta: dict[str, Any],
    results: list[Result],
    memory: dict[str, Any] | None,
    target_rows: list[dict[str, Any]],
    goal_rows: list[dict[str, Any]],
) -> None:
    doc = {
        **meta,
        "results": [r.to_json() for r in results],
        "memory": memory,
        "targets": target_rows,
        "goals": goal_rows,
    }
    path.write_text(json.dumps(doc, indent=2) + "\n")


def chart(path: Path, results: list[Result], title: str) -> bool:
    """Throughput, the server's time per op and latency per workload, engine beside its
    baselines (False: no matplotlib)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    groups: dict[str, list[Result]] = {}
    for r in results:
        groups.setdefault(_label(r), []).append(r)
    impls = list(dict.fromkeys(r.impl for r in results))
    palette = [*plt.get_cmap("tab20").colors, *plt.get_cmap("tab20b").colors]
    colour = {impl: palette[n % len(palette)] for n, impl in enumerate(impls)}
    figure, (top, middle, bottom) = plt.subplots(3, 1, figsize=(16, 17))
    timed = {k: v for k, v in groups.items() if any(r.latency_us for r in v)}
    seen: set[str] = set()
    for x, members in enumerate(groups.values()):
        width = 0.8 / len(members)
        for n, r in enumerate(members):
            label = None if r.impl in seen else r.impl
            seen.add(r.impl)
            pos = x - 0.4 + width * (n + 0.5)
            top.bar(pos, r.median, width, color=colour[r.impl], label=label)
            usec = r.server_usec_per_op
            if usec:
                middle.bar(pos, usec, width, color=colour[r.impl])
                middle.annotate(
                    fig(usec),
                    (pos, usec),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    va="bottom",
                    rotation=90,
                    fontsize=7,
                )
    for x, members in enumerate(timed.values()):
        width = 0.8 / len(members)
        for n, r in enumerate(members):
            if r.latency_us:
                pos = x - 0.4 + width * (n + 0.5)
                bottom.bar(pos, r.latency_us["p99"], width, color=colour[r.impl], alpha=0.35)
                bottom.bar(pos, r.latency_us["p50"], width, color=colour[r.impl])
    top.set_ylabel("ops or items per second (log)")
    middle.set_ylabel("server time per op or item, us (log)")
    middle.set_title(
        "the server's own time (INFO commandstats, top-level commands) over the timed rounds; "
        "file:// has no server",
        fontsize=9,
    )
    middle.margins(y=0.25)
    bottom.set_ylabel("latency per op, us (log): solid p50, pale p99")
    for ax, labels in ((top, list(groups)), (middle, list(groups)), (bottom, list(timed))):
        ax.set_yscale("log")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels, rotation=35, ha="right", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    top.legend(fontsize=8, ncol=3)
    top.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return True


def _label(r: Result) -> str:
    p = r.params
    parts = [
        f"{p['items']} items" if p.get("items") else "",
        f"{p['value_bytes']} B" if p.get("value_bytes") else "",
        f"+{p['other_keys']:,} keys" if p.get("other_keys") else "",
    ]
    return f"{r.workload}\n" + ", ".join(x for x in parts if x)
