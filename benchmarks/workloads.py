"""The workloads, each run by the engine and by its baselines against the same server."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import redis.asyncio

from motia_state import AsyncState, State

from .measure import Latencies, Result, make_value, run, timed

HERE = Path(__file__).resolve().parent
NODE_DRIVER = HERE / "motia_v0" / "driver.mjs"


@dataclass(frozen=True)
class Sizes:
    rounds: int
    warmup: int
    serial_ops: int  # operations per round of the serial get/set workloads
    small_group: int  # "1k items per group"
    large_group: int  # "100k items per group"
    mid_group: int  # the getGroup size compared with Motia v0
    set_many_items: int
    async_ops: int
    concurrency: int
    file_ops: int
    memory_items: int
    value_small: int = 200
    value_large: int = 20_000


FULL = Sizes(
    rounds=5, warmup=1, serial_ops=2000, small_group=1000, large_group=100_000, mid_group=10_000,
    set_many_items=20_000, async_ops=6400, concurrency=64, file_ops=200, memory_items=100_000,
)
QUICK = Sizes(
    rounds=2, warmup=1, serial_ops=100, small_group=100, large_group=1000, mid_group=500,
    set_many_items=1000, async_ops=640, concurrency=64, file_ops=10, memory_items=1000,
)


class Bench:
    """One benchmark run: the server under test, the sizes, the results so far."""

    def __init__(self, url: str, sizes: Sizes, say: Callable[[str], None]) -> None:
        self.url = url
        self.sizes = sizes
        self.say = say
        self.results: list[Result] = []
        self.notes: list[str] = []
        self.raw = redis.Redis.from_url(url)

    def add(self, result: Result) -> None:
        self.results.append(result)
        self.say(f"  {result.workload:<28} {result.impl:<18} {result.median:>12,.0f} {result.unit}/s")

    def run(self, workload: str, impl: str, params: dict[str, Any], fn: Any, unit: str = "ops") -> None:
        s = self.sizes
        self.add(run(workload, impl, params, fn, rounds=s.rounds, warmup=s.warmup, unit=unit))

    @contextmanager
    def state(self, url: str | None = None, **options: Any) -> Iterator[State]:
        prefix = f"bench-{uuid.uuid4().hex[:8]}:"
        is_redis = url is None or url.startswith(("redis", "unix", "embedded"))
        with State.from_url(url or self.url, **({"prefix": prefix} | options if is_redis else options)) as st:
            yield st
            for group in st.list_groups():
                st.clear(group)

    def fresh_key(self) -> str:
        return f"bench-raw-{uuid.uuid4().hex[:8]}:group"


# -- serial get and set ---------------------------------------------------------------


def serial(b: Bench) -> None:
    s = b.sizes
    for size in (s.value_small, s.value_large):
        params = {"items": s.small_group, "value_bytes": size, "ops_per_round": s.serial_ops}
        values = {f"k{i}": make_value(i, size) for i in range(s.small_group)}
        with b.state() as state:
            state.set_many("g", values)

            def engine_get(lat: Latencies) -> int:
                for i in range(s.serial_ops):
                    timed(lambda i=i: state.get("g", f"k{i % s.small_group}"), lat)
                return s.serial_ops

            def engine_set(lat: Latencies) -> int:
                for i in range(s.serial_ops):
                    timed(lambda i=i: state.set("g", f"k{i % s.small_group}", values[f"k{i % s.small_group}"]), lat)
                return s.serial_ops

            b.run("get", "engine", params, engine_get)
            b.run("set", "engine", params, engine_set)

        key = b.fresh_key()
        r = b.raw
        r.hset(key, mapping={k: json.dumps(v) for k, v in values.items()})

        def raw_get(lat: Latencies) -> int:
            for i in range(s.serial_ops):
                timed(lambda i=i: json.loads(r.hget(key, f"k{i % s.small_group}")), lat)  # type: ignore[arg-type]
            return s.serial_ops

        def raw_set(lat: Latencies) -> int:
            for i in range(s.serial_ops):
                k = f"k{i % s.small_group}"
                timed(lambda k=k: r.hset(key, k, json.dumps(values[k], separators=(",", ":"))), lat)
            return s.serial_ops

        b.run("get", "redis-py", params, raw_get)
        b.run("set", "redis-py", params, raw_set)
        r.delete(key)


# -- AsyncState with many concurrent tasks --------------------------------------------


def concurrent(b: Bench) -> None:
    s = b.sizes
    params = {"items": s.small_group, "value_bytes": s.value_small, "tasks": s.concurrency,
              "ops_per_round": s.async_ops}
    values = {f"k{i}": make_value(i, s.value_small) for i in range(s.small_group)}
    per_task = s.async_ops // s.concurrency
    loop = asyncio.new_event_loop()
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    astate = AsyncState.from_url(b.url, prefix=prefix)
    loop.run_until_complete(astate.set_many("g", values))

    def fan_out(op: Callable[[int], Any]) -> Callable[[Latencies], int]:
        async def task(t: int) -> None:
            for j in range(per_task):
                await op(t * per_task + j)

        async def all_tasks() -> None:
            await asyncio.gather(*(task(t) for t in range(s.concurrency)))

        def one_round(lat: Latencies) -> int:
            loop.run_until_complete(all_tasks())
            return per_task * s.concurrency

        return one_round

    b.run("get x64 tasks", "engine async", params, fan_out(lambda i: astate.get("g", f"k{i % s.small_group}")))
    b.run("set x64 tasks", "engine async", params,
          fan_out(lambda i: astate.set("g", f"k{i % s.small_group}", values[f"k{i % s.small_group}"])))
    loop.run_until_complete(astate.clear("g"))
    loop.run_until_complete(astate.aclose())

    araw = redis.asyncio.Redis.from_url(b.url, max_connections=s.concurrency)
    key = b.fresh_key()
    loop.run_until_complete(araw.hset(key, mapping={k: json.dumps(v) for k, v in values.items()}))

    async def raw_get(i: int) -> Any:
        return json.loads(await araw.hget(key, f"k{i % s.small_group}"))  # type: ignore[arg-type]

    async def raw_set(i: int) -> Any:
        k = f"k{i % s.small_group}"
        return await araw.hset(key, k, json.dumps(values[k], separators=(",", ":")))

    b.run("get x64 tasks", "redis-py async", params, fan_out(raw_get))
    b.run("set x64 tasks", "redis-py async", params, fan_out(raw_set))
    loop.run_until_complete(araw.delete(key))
    loop.run_until_complete(araw.aclose())
    loop.close()


# -- batches and whole groups ---------------------------------------------------------


def batches(b: Bench) -> None:
    s = b.sizes
    n = s.set_many_items
    values = {f"k{i}": make_value(i, s.value_small) for i in range(n)}
    params = {"items": n, "value_bytes": s.value_small}
    with b.state() as state:
        b.run("set_many", "engine", params, lambda lat: state.set_many("g", values), unit="items")
    key = b.fresh_key()

    def raw_pipeline(lat: Latencies) -> int:
        pipe = b.raw.pipeline(transaction=False)
        for k, v in values.items():
            pipe.hset(key, k, json.dumps(v, separators=(",", ":")))
        pipe.execute()
        return n

    b.run("set_many", "redis-py", params, raw_pipeline, unit="items")
    b.raw.delete(key)


def groups(b: Bench) -> None:
    s = b.sizes
    cases = [(s.small_group, s.value_small), (s.small_group, s.value_large),
             (s.mid_group, s.value_small), (s.large_group, s.value_small)]
    for items, size in cases:
        params = {"items": items, "value_bytes": size}
        values = {f"k{i}": make_value(i, size) for i in range(items)}
        with b.state() as state:
            state.set_many("g", values)

            def engine_group(lat: Latencies) -> int:
                assert len(state.get_group("g")) == items
                return items

            b.run("get_group", "engine", params, engine_group, unit="items")
            if items == s.large_group:
                b.run("iter_items", "engine", params,
                      lambda lat: sum(1 for _ in state.iter_items("g", batch=1000)), unit="items")
        key = b.fresh_key()
        pipe = b.raw.pipeline(transaction=False)
        for k, v in values.items():
            pipe.hset(key, k, json.dumps(v))
        pipe.execute()

        def raw_group(lat: Latencies) -> int:
            return len([json.loads(v) for v in b.raw.hgetall(key).values()])

        b.run("get_group", "redis-py", params, raw_group, unit="items")
        if items == s.large_group:
            b.run("iter_items", "redis-py", params,
                  lambda lat: sum(1 for _, v in b.raw.hscan_iter(key, count=1000) if json.loads(v) or True),
                  unit="items")
        b.raw.delete(key)


# -- Motia v0's Node adapter ----------------------------------------------------------


def motia_v0(b: Bench) -> None:
    s = b.sizes
    node = shutil.which("node")
    if node is None or not (HERE / "motia_v0" / "node_modules").is_dir():
        b.notes.append("Motia v0 baseline skipped: node or benchmarks/motia_v0/node_modules missing")
        b.say("  (skipped Motia v0: run `make bench`, which installs it)")
        return
    cases = [
        ("set", {"items": s.small_group, "ops": s.serial_ops}),
        ("get", {"items": s.small_group, "ops": s.serial_ops}),
        ("getGroup", {"items": s.small_group, "ops": 1}),
        ("getGroup", {"items": s.mid_group, "ops": 1}),
    ]
    for workload, case in cases:
        args = {"url": b.url, "prefix": f"bench-v0-{uuid.uuid4().hex[:8]}:", "workload": workload,
                "group": "g", "valueBytes": s.value_small, "rounds": s.rounds, "warmup": s.warmup, **case}
        out = subprocess.run([node, str(NODE_DRIVER), json.dumps(args)], capture_output=True,
                             text=True, timeout=600, check=True).stdout
        data = json.loads(out.strip().splitlines()[-1])
        name = {"getGroup": "get_group"}.get(workload, workload)
        unit = "items" if workload == "getGroup" else "ops"
        per_round = case["items"] if workload == "getGroup" else case["ops"]
        params = {"items": case["items"], "value_bytes": s.value_small}
        if workload != "getGroup":
            params["ops_per_round"] = s.serial_ops
        lat = data["latency_ns"]
        b.add(Result(name, "motia v0 (node)", params,
                     [per_round / r["seconds"] for r in data["rounds"]],
                     {k: v / 1000 for k, v in lat.items()} if lat else None, unit))


# -- the default install: file vs embedded ---------------------------------------------


def default_install(b: Bench) -> None:
    s = b.sizes
    params = {"items": s.small_group, "value_bytes": s.value_small, "ops_per_round": s.file_ops}
    values = {f"k{i}": make_value(i, s.value_small) for i in range(s.small_group)}
    with tempfile.TemporaryDirectory() as tmp:
        for impl, url in (("file", f"file://{tmp}/motia.state.json"), ("embedded", f"embedded://{tmp}/e")):
            with b.state(url) as state:
                state.set_many("g", values)

                def do_set(lat: Latencies, state: State = state) -> int:
                    for i in range(s.file_ops):
                        timed(lambda i=i: state.set("g", f"k{i}", values[f"k{i}"]), lat)
                    return s.file_ops

                def do_get(lat: Latencies, state: State = state) -> int:
                    for i in range(s.file_ops):
                        timed(lambda i=i: state.get("g", f"k{i}"), lat)
                    return s.file_ops

                b.run("default install: set", impl, params, do_set)
                b.run("default install: get", impl, params, do_get)


# -- memory per item ------------------------------------------------------------------


def memory(b: Bench) -> dict[str, Any]:
    """Bytes per item in Redis for small items: this engine's layout vs Motia v0's."""
    s = b.sizes
    n = s.memory_items
    values = {f"k{i}": make_value(i, 40) for i in range(n)}
    r = b.raw

    def used() -> int:
        r.execute_command("MEMORY", "PURGE")
        return int(r.info("memory")["used_memory"])

    r.flushall()
    before = used()
    prefix = "membench:"
    with State.from_url(b.url, prefix=prefix, changes_maxlen=max(n, 1)) as state:
        state.set_many("g", values)
        engine_total = used() - before
        layout = state._backend.plan.layout  # type: ignore[attr-defined]
        stream = int(r.memory_usage(layout.changes("g")) or 0)
        versions = int(r.memory_usage(layout.versions("g")) or 0)
        data = int(r.memory_usage(layout.data("g")) or 0)
    r.flushall()
    before = used()
    pipe = r.pipeline(transaction=False)
    for k, v in values.items():  # exactly what Motia v0 writes: SET motia:state:<group>:<key> JSON
        pipe.set(f"motia:state:g:{k}", json.dumps(v, separators=(",", ":")))
    pipe.execute()
    v0_total = used() - before
    r.flushall()
    result = {
        "items": n,
        "value_bytes": len(json.dumps(values["k0"], separators=(",", ":"))),
        "engine_bytes_per_item": engine_total / n,
        "engine_data_hash_per_item": data / n,
        "engine_versions_hash_per_item": versions / n,
        "engine_change_stream_per_item": stream / n,
        "motia_v0_bytes_per_item": v0_total / n,
    }
    b.say(f"  memory per item: engine {result['engine_bytes_per_item']:.0f} B "
          f"(data {result['engine_data_hash_per_item']:.0f}, versions "
          f"{result['engine_versions_hash_per_item']:.0f}, change stream "
          f"{result['engine_change_stream_per_item']:.0f}); "
          f"Motia v0 {result['motia_v0_bytes_per_item']:.0f} B")
    return result


SUITES: list[tuple[str, Callable[[Bench], None]]] = [
    ("serial get/set", serial),
    ("AsyncState, 64 tasks", concurrent),
    ("set_many", batches),
    ("get_group / iter_items", groups),
    ("Motia v0 Node adapter", motia_v0),
    ("default install: file vs embedded", default_install),
]
