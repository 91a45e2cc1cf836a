"""The workloads, each run by the engine and by its baselines against the same server."""

from __future__ import annotations

import asyncio
import itertools
import json
import multiprocessing
import re
import shutil
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import redis
import redis.asyncio
from tests.servers import cluster

from motia_state import AsyncState, F, Op, State, scripts
from motia_state.backends import embedded
from motia_state.backends.embedded import valkey_binary as embedded_binary
from motia_state.changes import FeedSettings
from motia_state.layout import KeyLayout

from .measure import (
    NOT_WORKLOAD,
    Latencies,
    Result,
    Round,
    compare,
    make_value,
    nested_in,
    nested_names,
    timed,
)
from .report import LIMIT, NEAR_CACHE_GET, fig, server_note

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
    other_keys: tuple[int, ...]  # unrelated keys on the server, which Motia v0's SCAN walks past
    value_small: int = 200
    value_large: int = 20_000


FULL = Sizes(
    rounds=7,
    warmup=1,
    serial_ops=2000,
    small_group=1000,
    large_group=100_000,
    mid_group=10_000,
    set_many_items=20_000,
    async_ops=6400,
    concurrency=64,
    file_ops=200,
    memory_items=100_000,
    other_keys=(100_000, 1_000_000),
)
QUICK = Sizes(
    rounds=2,
    warmup=1,
    serial_ops=100,
    small_group=100,
    large_group=1000,
    mid_group=500,
    set_many_items=1000,
    async_ops=640,
    concurrency=64,
    file_ops=10,
    memory_items=1000,
    other_keys=(2000,),
)


class Bench:
    """One benchmark run: the server under test, the sizes, the results so far."""

    def __init__(self, url: str, sizes: Sizes, say: Callable[[str], None]) -> None:
        self.url = url
        self.sizes = sizes
        self.say = say
        self.results: list[Result] = []
        self.notes: list[str] = []
        self.exact: dict[str, int] = {}
        self.sweep: dict[str, Any] | None = None
        self.raw = redis.Redis.from_url(url)
        #: the commands the engine's scripts call: counted inside their EVALSHA's time
        self.nested = nested_names(Path(scripts.lua_dir()))
        self.v0 = MotiaV0.available()
        if not self.v0:
            self.notes.append(
                "Motia v0 baseline skipped: node or benchmarks/motia_v0/node_modules missing"
            )

    def compare(
        self,
        workload: str,
        params: dict[str, Any],
        impls: dict[str, Round],
        unit: str = "ops",
        servers: dict[str, Sequence[redis.Redis]] | None = None,
        nested: Collection[str] | None = None,
        rounds: int | None = None,
        warmup: int | None = None,
    ) -> None:
        """Each implementation's rounds, interleaved; ``servers[impl]``: the servers whose
        INFO commandstats its rounds are measured on (default: the server under test);
        ``nested``: the commands run inside scripts (default: any the engine's scripts call;
        see `measure.nested_in`); ``rounds``, ``warmup``: fewer than the sizes say, for a
        workload whose every round is long (or warmed up by a round of its own)."""
        s = self.sizes
        on = {name: (servers or {}).get(name, [self.raw]) for name in impls}
        for result in compare(
            workload,
            params,
            impls,
            rounds=min(s.rounds, rounds or s.rounds),
            warmup=s.warmup if warmup is None else min(s.warmup, warmup),
            unit=unit,
            servers=on,
            nested=self.nested if nested is None else nested,
        ):
            self.results.append(result)
            lat = result.latency_us
            tail = f"   p50 {lat['p50']:,.0f} us, p99 {lat['p99']:,.0f} us" if lat else ""
            self.say(
                f"  {workload:<24} {result.impl:<18} {result.median:>12,.0f} {unit}/s"
                f"{server_note(result)}{tail}"
            )

    @contextmanager
    def state(
        self, url: str | None = None, prefix: str | None = None, **more: Any
    ) -> Iterator[State]:
        """A State on a private prefix (Redis) or the given URL, emptied afterwards;
        ``more``: other `State.from_url` options."""
        options = {} if url else {"prefix": prefix or f"bench-{uuid.uuid4().hex[:8]}:"}
        with State.from_url(url or self.url, **options, **more) as st:
            yield st
            for group in st.list_groups():
                st.clear(group)

    @contextmanager
    def raw_hash(self, values: dict[str, Any]) -> Iterator[str]:
        """A plain hash holding ``values`` as JSON, for the redis-py baselines."""
        key = f"bench-raw-{uuid.uuid4().hex[:8]}:group"
        pipe = self.raw.pipeline(transaction=False)
        for k, v in values.items():
            pipe.hset(key, k, dumps(v))
        pipe.execute()
        yield key
        self.raw.delete(key)


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def values_for(items: int, size: int) -> dict[str, dict[str, Any]]:
    return {f"k{i}": make_value(i, size) for i in range(items)}


class MotiaV0:
    """Motia v0's Node adapter in a child process, one round per request."""

    @staticmethod
    def available() -> bool:
        return shutil.which("node") is not None and (HERE / "motia_v0" / "node_modules").is_dir()

    def __init__(
        self, url: str, workload: str, items: int, ops: int, value_bytes: int, **more: Any
    ) -> None:
        args = {
            "url": url,
            "prefix": f"bench-v0-{uuid.uuid4().hex[:8]}:",
            "workload": workload,
            "group": "g",
            "items": items,
            "ops": ops,
            "valueBytes": value_bytes,
            **more,  # a workload's own (driver.mjs reads them)
        }
        self.proc = subprocess.Popen(
            [str(shutil.which("node")), str(NODE_DRIVER), json.dumps(args)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert json.loads(self._line())["ready"]

    def _line(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"Motia v0 driver exited ({self.proc.wait()})")
        return line

    def round(self, latencies: Latencies) -> tuple[int, float]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("round\n")
        self.proc.stdin.flush()
        data = json.loads(self._line())
        latencies.extend(data["latencies_ns"])
        return data["ops"], data["seconds"]

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        self.proc.wait(60)


@contextmanager
def motia_v0(
    b: Bench, workload: str, items: int, ops: int, value_bytes: int, **more: Any
) -> Iterator[dict[str, Round]]:
    """``{"motia v0 (node)": round}`` when the Node adapter is installed, else nothing."""
    if not b.v0:
        yield {}
        return
    try:
        driver = MotiaV0(b.url, workload, items, ops, value_bytes, **more)
    except (RuntimeError, OSError, ValueError) as exc:  # a broken Node install: say so, go on
        b.notes.append(f"Motia v0 baseline skipped for {workload}: {exc}")
        b.say(f"  (Motia v0 driver failed to start: {exc})")
        yield {}
        return
    try:
        yield {"motia v0 (node)": driver.round}
    finally:
        driver.close()


# -- serial get and set ---------------------------------------------------------------


def serial(b: Bench) -> None:
    for size in (b.sizes.value_small, b.sizes.value_large):
        _serial(b, size)


def _serial(b: Bench, size: int) -> None:
    s = b.sizes
    n, items = s.serial_ops, s.small_group
    params = {"items": items, "value_bytes": size, "ops_per_round": n}
    values = values_for(items, size)
    keys = [f"k{i % items}" for i in range(n)]
    r = b.raw
    with b.state() as state, b.raw_hash(values) as key:
        state.set_many("g", values)

        def engine_get(lat: Latencies) -> int:
            for k in keys:
                timed(lambda k=k: state.get("g", k), lat)
            return n

        def engine_set(lat: Latencies) -> int:
            for k in keys:
                timed(lambda k=k: state.set("g", k, values[k]), lat)
            return n

        def raw_get(lat: Latencies) -> int:
            for k in keys:
                timed(lambda k=k: json.loads(r.hget(key, k)), lat)  # type: ignore[arg-type]
            return n

        def raw_set(lat: Latencies) -> int:
            for k in keys:
                timed(lambda k=k: r.hset(key, k, dumps(values[k])), lat)
            return n

        with motia_v0(b, "get", items, n, size) as v0:
            b.compare("get", params, {"engine": engine_get, "redis-py": raw_get, **v0})
        with motia_v0(b, "set", items, n, size) as v0:
            b.compare("set", params, {"engine": engine_set, "redis-py": raw_set, **v0})


# -- the write scripts' ACL checks ------------------------------------------------------


def acl_checks(b: Bench) -> None:
    """What the permission checks every write script makes before writing cost: set.lua as
    shipped against the same text with its one ``acl_group(...)`` call taken out, and a raw
    HSET, interleaved on one server; then the server's own microseconds per EVALSHA."""
    s = b.sizes
    n = s.serial_ops
    shipped = scripts.load("set")
    unchecked = re.sub(rb"\nacl_group\(KEYS[^\n]*\)\n", b"\n", shipped.text, count=1)
    assert unchecked != shipped.text, "set.lua no longer calls acl_group(KEYS, ...)"
    r = b.raw
    shas = {"set.lua": r.script_load(shipped.text), "no ACL checks": r.script_load(unchecked)}
    layout = KeyLayout(f"bench-{uuid.uuid4().hex[:8]}:")
    feed = FeedSettings().spec(layout.marker_channel())
    value = dumps(make_value(0, s.value_small))

    def script_round(sha: str, group: str, count: int = n) -> Round:
        keys = layout.group_keys(group)

        def one_round(lat: Latencies) -> int:
            for i in range(count):
                call = (sha, len(keys), *keys, feed, group, f"k{i}", "", "", value)
                timed(lambda call=call: r.evalsha(*call), lat)
            return count

        return one_round

    def raw_round(lat: Latencies) -> int:
        for i in range(n):
            timed(lambda i=i: r.hset(layout.data("raw"), f"k{i}", value), lat)
        return n

    params = {"ops_per_round": n, "value_bytes": s.value_small}
    impls = {name: script_round(sha, name) for name, sha in shas.items()}
    b.compare("set script", params, {**impls, "redis-py HSET": raw_round})
    for name, sha in shas.items():
        r.config_resetstat()
        script_round(sha, name, 1000)([])
        usec = r.info("commandstats")["cmdstat_evalsha"]["usec_per_call"]
        b.notes.append(f"set script, {name}: {usec} us of server time per EVALSHA")
        b.say(f"  server time per EVALSHA, {name}: {usec} us")
    for key in r.scan_iter(match=layout.meta_root + b"*"):
        r.unlink(key)
    for key in r.scan_iter(match=layout.scan_pattern()):
        r.unlink(key)


# -- AsyncState with many concurrent tasks --------------------------------------------


def concurrent(b: Bench) -> None:
    s = b.sizes
    params = {
        "items": s.small_group,
        "value_bytes": s.value_small,
        "tasks": s.concurrency,
        "ops_per_round": s.async_ops,
    }
    values = values_for(s.small_group, s.value_small)
    loop = asyncio.new_event_loop()
    astate = AsyncState.from_url(b.url, prefix=f"bench-{uuid.uuid4().hex[:8]}:")
    araw = redis.asyncio.Redis.from_url(b.url, max_connections=s.concurrency)
    loop.run_until_complete(astate.set_many("g", values))

    def fan_out(op: Callable[[str], Any]) -> Round:
        return _fan_out(loop, s, op)

    with b.state() as state, b.raw_hash(values) as key:
        state.set_many("g", values)

        async def raw_get(k: str) -> Any:
            return json.loads(await araw.hget(key, k))  # type: ignore[arg-type]

        async def raw_set(k: str) -> Any:
            return await araw.hset(key, k, dumps(values[k]))

        def serial_get(lat: Latencies) -> int:
            for i in range(s.async_ops):
                state.get("g", f"k{i % s.small_group}")
            return s.async_ops

        def serial_set(lat: Latencies) -> int:
            for i in range(s.async_ops):
                k = f"k{i % s.small_group}"
                state.set("g", k, values[k])
            return s.async_ops

        b.compare(
            "get x64 tasks",
            params,
            {
                "engine async": fan_out(lambda k: astate.get("g", k)),
                "redis-py async": fan_out(raw_get),
                "engine sync serial": serial_get,
            },
        )
        b.compare(
            "set x64 tasks",
            params,
            {
                "engine async": fan_out(lambda k: astate.set("g", k, values[k])),
                "redis-py async": fan_out(raw_set),
                "engine sync serial": serial_set,
            },
        )
    loop.run_until_complete(astate.clear("g"))
    loop.run_until_complete(astate.aclose())
    loop.run_until_complete(araw.aclose())
    loop.close()


def _fan_out(loop: asyncio.AbstractEventLoop, s: Sizes, op: Callable[[str], Any]) -> Round:
    """A round of ``s.async_ops`` calls of ``op`` from ``s.concurrency`` tasks at once."""
    per_task = s.async_ops // s.concurrency

    async def task(t: int) -> None:
        for j in range(per_task):
            await op(f"k{(t * per_task + j) % s.small_group}")

    async def all_tasks() -> None:
        await asyncio.gather(*(task(t) for t in range(s.concurrency)))

    def one_round(lat: Latencies) -> int:
        loop.run_until_complete(all_tasks())
        return per_task * s.concurrency

    return one_round


def _cluster_async(b: Bench, url: str, nodes: Sequence[redis.Redis]) -> None:
    """AsyncState's own cluster seam: 64 tasks against sync serial calls, same cluster."""
    s = b.sizes
    values = values_for(s.small_group, s.value_small)
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    loop = asyncio.new_event_loop()
    astate = AsyncState.from_url(url, prefix=prefix)
    params = {"tasks": s.concurrency, "ops_per_round": s.async_ops, "masters": 3, "groups": 8}
    try:
        with State.from_url(url, prefix=prefix) as state:

            def group(k: str) -> str:  # spread over the masters, as a real workload would
                return f"g{int(k[1:]) % 8}"

            def serial_set(lat: Latencies) -> int:
                for i in range(s.async_ops):
                    k = f"k{i % s.small_group}"
                    state.set(group(k), k, values[k])
                return s.async_ops

            b.compare(
                "cluster set x64 tasks",
                params,
                {
                    "engine async": _fan_out(loop, s, lambda k: astate.set(group(k), k, values[k])),
                    "engine sync serial": serial_set,
                },
                servers={"engine async": nodes, "engine sync serial": nodes},
            )
            for n in range(8):
                state.clear(f"g{n}")
    finally:
        loop.run_until_complete(astate.aclose())
        loop.close()


# -- batches and whole groups ---------------------------------------------------------


def batches(b: Bench) -> None:
    s = b.sizes
    n = s.set_many_items
    values = values_for(n, s.value_small)
    params = {"items": n, "value_bytes": s.value_small}
    with b.state() as state, b.raw_hash({}) as key:

        def raw_pipeline(lat: Latencies) -> int:
            pipe = b.raw.pipeline(transaction=False)
            for k, v in values.items():
                pipe.hset(key, k, dumps(v))
            pipe.execute()
            return n

        b.compare(
            "set_many",
            params,
            {
                "engine": lambda lat: state.set_many("g", values),
                "redis-py": raw_pipeline,
            },
            unit="items",
        )


def groups(b: Bench) -> None:
    s = b.sizes
    # get_group sends HVALS beside the one script it runs, whose calls alone are nested
    reads = nested_in([scripts.load("expired_keys").text])
    cases = [
        (s.small_group, s.value_small),
        (s.small_group, s.value_large),
        (s.mid_group, s.value_small),
        (s.large_group, s.value_small),
    ]
    for items, size in cases:
        params = {"items": items, "value_bytes": size}
        values = values_for(items, size)
        with b.state() as state, b.raw_hash(values) as key:
            state.set_many("g", values)

            def engine_group(lat: Latencies) -> int:
                return len(state.get_group("g"))

            def raw_group(lat: Latencies) -> int:
                return len([json.loads(v) for v in b.raw.hgetall(key).values()])

            def limit_group(lat: Latencies) -> int:
                return len([orjson.loads(v) for v in b.raw.hvals(key)])

            limit: dict[str, Round] = (
                {LIMIT: limit_group}
                if size == s.value_small and items in (s.mid_group, s.large_group)
                else {}
            )
            v0_case = (
                motia_v0(b, "getGroup", items, 1, size)
                if size == s.value_small
                else nullcontext({})
            )
            with v0_case as v0:
                b.compare(
                    "get_group",
                    params,
                    {"engine": engine_group, "redis-py": raw_group, **limit, **v0},
                    unit="items",
                    nested=reads,
                )
            if items == s.mid_group and b.v0:
                # A production server holds more than one group: v0 lists a group by
                # SCANning the whole keyspace, this engine reads one hash.
                for others in s.other_keys:
                    with other_keys(b, others), motia_v0(b, "getGroup", items, 1, size) as v0:
                        b.compare(
                            "get_group",
                            {**params, "other_keys": others},
                            {"engine": engine_group, **v0},
                            unit="items",
                            nested=reads,
                        )
            if items == s.large_group:

                def engine_iter(lat: Latencies) -> int:
                    return sum(1 for _ in state.iter_items("g", batch=1000))

                def raw_iter(lat: Latencies) -> int:
                    return len([json.loads(v) for _, v in b.raw.hscan_iter(key, count=1000)])

                b.compare(
                    "iter_items",
                    params,
                    {"engine": engine_iter, "redis-py": raw_iter},
                    unit="items",
                    # HSCAN is sent at top level beside expired_among.lua (query.lua calls
                    # it too): only that script's calls are inside it
                    nested=nested_in([scripts.load("expired_among").text]),
                )


@contextmanager
def other_keys(b: Bench, n: int) -> Iterator[None]:
    """``n`` small unrelated string keys on the server for the duration of the block."""
    keys = [f"bench-other:{uuid.uuid4().hex[:8]}:{i}" for i in range(n)]
    for start in range(0, n, 10_000):
        pipe = b.raw.pipeline(transaction=False)
        for k in keys[start : start + 10_000]:
            pipe.set(k, "x")
        pipe.execute()
    try:
        yield
    finally:
        for start in range(0, n, 10_000):
            b.raw.unlink(*keys[start : start + 10_000])


# -- queries: a filter evaluated in the server, or in the client ------------------------

QUERY = "query, 1 % match"
QUERY_MATCH_EVERY = 100  # item i matches when i % 100 == 0: 1 %
#: Rounds of the query suite at most: every round is one query over the whole group, and
#: Motia v0's takes seconds (a GET per key).
QUERY_ROUNDS = 3
#: Untimed queries whose longest call is read (the median is reported: one pause of the shared
#: machine is in one of them); Motia v0's takes seconds and its longest call is a GET: one.
QUERY_PROBES = 3
#: SLOWLOG entries kept while the longest call is read: every command of a query, Motia v0's
#: GET per key included, with room to spare (SLOWLOG keeps only the latest).
SLOWLOG_ENTRIES = 250_000


def status_value(i: int, size: int, every: int) -> dict[str, Any]:
    """`measure.make_value` whose status is "match" when ``i % every == 0``, the padding
    made up for it; driver.mjs builds the same bytes (its ``matchEvery``)."""
    base: dict[str, Any] = {
        "id": i,
        "status": "match" if i % every == 0 else "pending",
        "payload": "",
    }
    pad = max(0, size - len(dumps(base)))
    return {**base, "payload": "x" * pad}


def query(b: Bench) -> None:
    """Issue 19: the 1 % of a 100k-item group whose status is "match", one query per round:
    evaluated in the server (state.query paged 10,000 at a time, state.count), in the client
    through the engine (get_group, then a Python filter) and at the client side's limit
    (HGETALL, orjson, the same filter), and Motia v0's items() with its filter. Then, outside
    the timed rounds, each one's bytes over the wire per query (INFO stats) and its longest
    single server call (SLOWLOG with every command logged)."""
    s = b.sizes
    n, size, every = s.large_group, s.value_small, QUERY_MATCH_EVERY
    values = {f"k{i}": status_value(i, size, every) for i in range(n)}
    matching = len(range(0, n, every))
    where = F("status") == "match"
    params = {"items": n, "value_bytes": size, "matching": matching}
    r = b.raw
    # no sweeper: a background call would be in the SLOWLOG read
    with b.state(cleanup_interval=None) as state, b.raw_hash(values) as key:
        state.set_many("g", values)

        def matched(found: int) -> int:
            if found != matching:
                raise AssertionError(f"{found} items matched, not {matching}")
            return 1

        def engine_query(lat: Latencies) -> int:
            def pages() -> int:
                found, cursor = 0, None
                while True:
                    page = state.query("g", where, limit=10_000, cursor=cursor)
                    found += len(page.items)
                    if page.cursor is None:
                        return found
                    cursor = page.cursor

            t0 = time.perf_counter_ns()
            found = pages()
            lat.append(time.perf_counter_ns() - t0)
            return matched(found)

        def engine_count(lat: Latencies) -> int:
            t0 = time.perf_counter_ns()
            found = state.count("g", where)
            lat.append(time.perf_counter_ns() - t0)
            return matched(found)

        def engine_filter(lat: Latencies) -> int:
            t0 = time.perf_counter_ns()
            found = [v for v in state.get_group("g") if v.get("status") == "match"]
            lat.append(time.perf_counter_ns() - t0)
            return matched(len(found))

        def raw_filter(lat: Latencies) -> int:
            t0 = time.perf_counter_ns()
            found = {}
            for k, v in r.hgetall(key).items():
                value = orjson.loads(v)
                if value.get("status") == "match":
                    found[k] = value
            lat.append(time.perf_counter_ns() - t0)
            return matched(len(found))

        impls: dict[str, Round] = {
            "engine query": engine_query,
            "engine count": engine_count,
            "engine get_group + filter": engine_filter,
            "redis-py HGETALL + orjson + filter": raw_filter,
        }
        # the scripts' calls: query.lua's (HMGET and ZMSCORE through a helper, by name) and
        # get_group's expired_keys.lua; HVALS, HGETALL, SCAN and GET are sent at top level
        reads = nested_in([scripts.load(name).text for name in ("query", "expired_keys")])
        with motia_v0(b, "items", n, 1, size, matchEvery=every) as v0:
            impls.update(v0)
            # the untimed round that reads the wire is Motia v0's warm-up (its query takes
            # seconds); the others warm up before theirs, so a script's first load is not in it
            for name, one_round in impls.items():
                if name not in v0:
                    one_round([])
            on_wire = {
                name: wire_figures(b, one_round, 1 if name in v0 else QUERY_PROBES)
                for name, one_round in impls.items()
            }
            b.compare(
                QUERY,
                params,
                impls,
                unit="queries",
                nested=reads | {"hmget", "zmscore"},
                rounds=QUERY_ROUNDS,
                warmup=0,
            )
    found = {r.impl: r for r in b.results if r.workload == QUERY and r.params == params}
    for name, result in found.items():
        if result.server is not None:
            result.server.update(on_wire[name])
    ms = {name: 1000 / result.median for name, result in found.items()}
    for name, result in found.items():
        srv, wire = result.server or {}, on_wire[name]
        b.say(
            f"  {name:<36} {ms[name]:>9,.1f} ms/query ({ms[name] / ms['engine query']:.2f}x), "
            f"{wire['net_output_bytes_per_op'] / 1e6:.3f} MB out, "
            f"{wire['net_input_bytes_per_op'] / 1e6:.3f} MB in; longest call "
            f"{wire['longest_call']} {wire['longest_call_us']:,} us "
            f"(each: {', '.join(f'{us:,}' for us in wire['longest_call_us_each'])}); srv "
            f"{fig(srv.get('usec_per_call'))} us/call x {fig(srv.get('calls_per_op'))} calls"
        )


def wire_figures(b: Bench, one_round: Round, repeats: int) -> dict[str, Any]:
    """``repeats`` more rounds of ``one_round``, untimed: the bytes the server sent and
    received per op in the first (INFO stats' totals, zeroed by CONFIG RESETSTAT just before),
    and each round's longest single command (SLOWLOG, every command logged; the measurement's
    own left out): their median, and the longest of all."""
    r = b.raw
    saved = r.config_get("slowlog-*")
    r.config_set("slowlog-log-slower-than", 0)
    r.config_set("slowlog-max-len", SLOWLOG_ENTRIES)
    rounds: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] = []
    try:
        for _ in range(repeats):
            r.slowlog_reset()
            r.config_resetstat()
            done = one_round([])
            stats = r.info("stats")
            log = r.slowlog_get(SLOWLOG_ENTRIES)
            rounds.append((done[0] if isinstance(done, tuple) else done, stats, log))
    finally:
        for name, value in saved.items():
            r.config_set(name, value)
        r.slowlog_reset()
    longest: list[tuple[int, str]] = []
    for _, _, log in rounds:
        calls = [(int(e["duration"]), e["command"].split(b" ", 1)[0].decode().lower()) for e in log]
        mine = [(us, name) for us, name in calls if name not in NOT_WORKLOAD | {"slowlog"}]
        longest.append(max(mine, default=(0, "-")))
    ops, stats, log = rounds[0]
    median_us, name = sorted(longest)[len(longest) // 2]
    return {
        "net_output_bytes_per_op": int(stats["total_net_output_bytes"]) / ops,
        "net_input_bytes_per_op": int(stats["total_net_input_bytes"]) / ops,
        "longest_call_us": median_us,
        "longest_call": name.upper(),
        "longest_call_us_each": [us for us, _ in longest],
        "slowlog_full": any(len(log) >= SLOWLOG_ENTRIES for _, _, log in rounds),
    }


# -- the default install: file vs embedded ---------------------------------------------


def default_install(b: Bench) -> None:
    """The stores that need no server of their own: file://, sqlite:// (as shipped, fsync on
    every commit, and in WAL's normal mode), embedded://; and the machine's limit for
    sqlite://, plain sqlite3 doing the same statement per call in its own transaction."""
    s = b.sizes
    params = {"items": s.small_group, "value_bytes": s.value_small, "ops_per_round": s.file_ops}
    values = values_for(s.small_group, s.value_small)
    keys = [f"k{i % s.small_group}" for i in range(s.file_ops)]
    with (
        tempfile.TemporaryDirectory() as tmp,
        b.state(f"file://{tmp}/motia.state.json") as file,
        b.state(f"sqlite://{tmp}/full.db") as lite,
        b.state(f"sqlite://{tmp}/normal.db?synchronous=normal") as lite_normal,
        b.state(f"embedded://{tmp}/e") as emb,
        _raw_sqlite(f"{tmp}/raw.db", values) as (raw_set, raw_get),
    ):
        sets: dict[str, Round] = {}
        gets: dict[str, Round] = {}
        stores = {"file": file, "sqlite": lite, "sqlite (normal)": lite_normal, "embedded": emb}
        for name, state in stores.items():
            state.set_many("g", values)

            def do_set(lat: Latencies, state: State = state) -> int:
                for k in keys:
                    timed(lambda k=k: state.set("g", k, values[k]), lat)
                return len(keys)

            def do_get(lat: Latencies, state: State = state) -> int:
                for k in keys:
                    timed(lambda k=k: state.get("g", k), lat)
                return len(keys)

            sets[name], gets[name] = do_set, do_get

        def sqlite3_set(lat: Latencies) -> int:
            for k in keys:
                timed(lambda k=k: raw_set(k), lat)
            return len(keys)

        def sqlite3_get(lat: Latencies) -> int:
            for k in keys:
                timed(lambda k=k: raw_get(k), lat)
            return len(keys)

        sets["sqlite3 (raw)"], gets["sqlite3 (raw)"] = sqlite3_set, sqlite3_get
        # file:// and sqlite:// have no server; embedded:// its own, on a unix socket
        data_dir = f"{tmp}/e"
        private = redis.Redis(unix_socket_path=embedded.acquire(data_dir))
        on: dict[str, Sequence[redis.Redis]] = {name: [] for name in sets}
        on["embedded"] = [private]
        try:
            b.compare("default install: set", params, sets, servers=on)
            b.compare("default install: get", params, gets, servers=on)
        finally:
            private.close()
            embedded.release(data_dir)


@contextmanager
def _raw_sqlite(
    path: str, values: dict[str, Any]
) -> Iterator[tuple[Callable[[str], None], Callable[[str], Any]]]:
    """sqlite3 itself, as sqlite:// sets it up (WAL, synchronous=FULL), one statement per
    call in a transaction of its own: what a write through the engine cannot beat."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE items (key TEXT PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID")
    encoded = {k: dumps(v).encode() for k, v in values.items()}
    db.executemany("INSERT INTO items VALUES (?, ?)", encoded.items())

    def set_one(key: str) -> None:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO items VALUES (?, ?)", (key, encoded[key]))
        db.execute("COMMIT")

    def get_one(key: str) -> Any:
        (data,) = db.execute("SELECT data FROM items WHERE key = ?", (key,)).fetchone()
        return json.loads(data)

    try:
        yield set_one, get_one
    finally:
        db.close()


# -- memory per item ------------------------------------------------------------------


def memory(b: Bench) -> dict[str, Any]:
    """Bytes per item in Redis for small items: this engine's layout vs Motia v0's.

    Flushes the server: run only on the harness's own server.
    """
    n = b.sizes.memory_items
    values = values_for(n, 40)
    r = b.raw

    def used() -> int:
        r.execute_command("MEMORY", "PURGE")
        return int(r.info("memory")["used_memory"])

    r.flushall()
    before = used()
    layout = KeyLayout("membench:")
    with State.from_url(b.url, prefix="membench:", changes_maxlen=n) as state:
        state.set_many("g", values)
        engine_total = used() - before
        stream = int(r.memory_usage(layout.changes("g")) or 0)
        versions = int(r.memory_usage(layout.versions("g")) or 0)
        data = int(r.memory_usage(layout.data("g")) or 0)
    r.flushall()
    before = used()
    pipe = r.pipeline(transaction=False)
    for k, v in values.items():  # exactly what Motia v0 writes: SET motia:state:<group>:<key> JSON
        pipe.set(f"motia:state:g:{k}", dumps(v))
    pipe.execute()
    v0_total = used() - before
    r.flushall()
    result = {
        "items": n,
        "value_bytes": len(dumps(values["k0"])),
        "engine_bytes_per_item": engine_total / n,
        "engine_data_hash_per_item": data / n,
        "engine_versions_hash_per_item": versions / n,
        "engine_change_stream_per_item": stream / n,
        "motia_v0_bytes_per_item": v0_total / n,
    }
    b.say(
        "  engine {engine_bytes_per_item:.0f} B per item (data hash "
        "{engine_data_hash_per_item:.0f}, "
        "versions {engine_versions_hash_per_item:.0f}, change stream "
        "{engine_change_stream_per_item:.0f}); Motia v0 {motia_v0_bytes_per_item:.0f} B".format(
            **result
        )
    )
    return result


# -- atomic operations ----------------------------------------------------------------


def _hot_worker(args: tuple[str, str, str, str, int]) -> tuple[int, float]:
    """One process's share of a hot-key round: ``n`` ops on ``key``; returns (ops, seconds)."""
    url, prefix, how, key, n = args
    with State.from_url(url, prefix=prefix) as state:
        state.get("hot", key)  # connect before the clock starts
        start = time.perf_counter()
        for _ in range(n):
            if how == "increment":
                state.increment("hot", key)
            else:
                state.update("hot", key, [Op.increment("count"), Op.set("last", "x")])
        return n, time.perf_counter() - start


def atomic(b: Bench) -> None:
    s = b.sizes
    n = s.serial_ops
    params = {"items": 1, "ops_per_round": n}
    with b.state() as state, b.raw_hash({"doc": {"count": 0}}) as key:
        r = b.raw

        def engine_increment(lat: Latencies) -> int:
            for _ in range(n):
                timed(lambda: state.increment("c", "counter"), lat)
            return n

        def raw_increment(lat: Latencies) -> int:
            for _ in range(n):
                timed(lambda: r.hincrby(key, "counter", 1), lat)
            return n

        ops = [Op.increment("count"), Op.set("status", "seen")]

        def engine_update(lat: Latencies) -> int:
            for _ in range(n):
                timed(lambda: state.update("c", "doc", ops), lat)
            return n

        def read_modify_write() -> None:  # the plain equivalent: not atomic, for scale only
            doc = json.loads(r.hget(key, "doc"))  # type: ignore[arg-type]
            doc["count"] += 1
            doc["status"] = "seen"
            r.hset(key, "doc", dumps(doc))

        def raw_update(lat: Latencies) -> int:
            for _ in range(n):
                timed(read_modify_write, lat)
            return n

        b.compare("increment", params, {"engine": engine_increment, "redis-py": raw_increment})
        b.compare("update (2 ops)", params, {"engine": engine_update, "redis-py": raw_update})

        m = max(1, n // 10)

        def engine_tx(lat: Latencies) -> int:
            for i in range(m):
                with state.transaction() as tx:
                    for j in range(5):
                        tx.set("tx", f"k{j}", {"i": i})
                        tx.increment("tx-stats", f"n{j}")
            return m

        def engine_ten_calls(lat: Latencies) -> int:
            for i in range(m):
                for j in range(5):
                    state.set("tx", f"k{j}", {"i": i})
                    state.increment("tx-stats", f"n{j}")
            return m

        def raw_multi(lat: Latencies) -> int:
            for i in range(m):
                pipe = r.pipeline(transaction=True)
                for j in range(5):
                    pipe.hset(key, f"k{j}", dumps({"i": i}))
                    pipe.hincrby(key, f"n{j}", 1)
                pipe.execute()
            return m

        b.compare(
            "transaction of 10 ops",
            {"ops_per_round": m},
            {
                "engine": engine_tx,
                "engine, 10 calls": engine_ten_calls,
                "redis-py MULTI": raw_multi,
            },
            unit="tx",
        )


def idempotency(b: Bench) -> None:
    """What an idempotency key costs: the first application of each key (a fresh key per
    call, as every step's call is), a repeat (the same key: the receipt answers), beside the
    same call without a key and plain redis-py; and what a receipt takes in memory."""
    s = b.sizes
    n = s.serial_ops
    params = {"items": 1, "ops_per_round": n}
    fresh = itertools.count()
    layout = KeyLayout(f"bench-{uuid.uuid4().hex[:8]}:")
    with b.state(prefix=layout.prefix.decode()) as state, b.raw_hash({}) as key:
        r = b.raw
        value = make_value(0, 100)

        def calls(call: Callable[[], object]) -> Callable[[Latencies], int]:
            def run(lat: Latencies) -> int:
                for _ in range(n):
                    timed(call, lat)
                return n

            return run

        def keyed(call: Callable[[str], object]) -> Callable[[Latencies], int]:
            def run(lat: Latencies) -> int:
                for _ in range(n):
                    timed(lambda: call(f"inv-{next(fresh)}:0"), lat)
                return n

            return run

        state.set("g", "k", value, idempotency_key="repeat")
        state.increment("c", "n", idempotency_key="repeat")
        b.compare(
            "set, idempotency key",
            params,
            {
                "engine": calls(lambda: state.set("g", "k", value)),
                "engine, keyed": keyed(lambda k: state.set("g", "k", value, idempotency_key=k)),
                "engine, repeat": calls(
                    lambda: state.set("g", "k", value, idempotency_key="repeat")
                ),
                "redis-py": calls(lambda: r.hset(key, "k", dumps(value))),
            },
        )
        b.compare(
            "increment, idem. key",
            params,
            {
                "engine": calls(lambda: state.increment("c", "n")),
                "engine, keyed": keyed(lambda k: state.increment("c", "n", idempotency_key=k)),
                "engine, repeat": calls(
                    lambda: state.increment("c", "n", idempotency_key="repeat")
                ),
                "redis-py": calls(lambda: r.hincrby(key, "n", 1)),
            },
        )
        for group, what in (("g", "set"), ("c", "increment")):
            used = r.memory_usage(layout.receipt(group, "repeat"))
            b.notes.append(
                f"idempotency receipt of a {what}: {used} bytes (MEMORY USAGE), kept for "
                "idempotency_ttl (24 h by default)"
            )
        receipts = list(r.scan_iter(match=layout.meta_root + b"i{*", count=1000))
        for i in range(0, len(receipts), 1000):
            r.delete(*receipts[i : i + 1000])


def hot_key(b: Bench) -> None:
    """4 processes on one key vs on 4 keys: server-side ops keep a hot key from collapsing."""
    s = b.sizes
    n = s.serial_ops // 2
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(4) as pool:
        for how in ("increment", "update"):

            def run_round(keys: list[str], how: str = how) -> Round:
                def one_round(lat: Latencies) -> tuple[int, float]:
                    tasks = [(b.url, prefix, how, k, n) for k in keys]
                    done = pool.map(_hot_worker, tasks)
                    return sum(o for o, _ in done), max(t for _, t in done)

                return one_round

            b.compare(
                f"{how}, 4 processes",
                {"processes": 4, "ops_per_round": 4 * n},
                {
                    "one hot key": run_round([f"{how}-hot"] * 4),
                    "4 keys": run_round([f"{how}-{i}" for i in range(4)]),
                },
            )
    expected = (s.warmup + s.rounds) * 4 * n
    with State.from_url(b.url, prefix=prefix) as state:
        counted = state.get("hot", "increment-hot"), state.get("hot", "update-hot")["count"]
        b.exact = {
            "hot key ops": expected,
            "increment counted": counted[0],
            "update counted": counted[1],
        }
        b.say(
            f"  hot key: {expected} ops each; increment counted {counted[0]}, update {counted[1]}"
        )
        state.clear("hot")


# -- TTL --------------------------------------------------------------------------------


def ttl(b: Bench) -> None:
    """The price of a TTL on set and get, and how fast expired items are swept."""
    s = b.sizes
    n, items = s.serial_ops, s.small_group
    params = {"items": items, "value_bytes": s.value_small, "ops_per_round": n}
    values = values_for(items, s.value_small)
    keys = [f"k{i % items}" for i in range(n)]
    with b.state() as state:
        state.set_many("plain", values)
        state.set_many("expiring", values, ttl=3600)

        def set_plain(lat: Latencies) -> int:
            for k in keys:
                timed(lambda k=k: state.set("plain", k, values[k]), lat)
            return n

        def set_ttl(lat: Latencies) -> int:
            for k in keys:
                timed(lambda k=k: state.set("expiring", k, values[k], ttl=3600), lat)
            return n

        def get_plain(lat: Latencies) -> int:
            for k in keys:
                timed(lambda k=k: state.get("plain", k), lat)
            return n

        def get_ttl(lat: Latencies) -> int:
            for k in keys:
                timed(lambda k=k: state.get("expiring", k), lat)
            return n

        b.compare("set, TTL or not", params, {"no TTL": set_plain, "ttl=3600": set_ttl})
        b.compare("get, TTL or not", params, {"no TTL": get_plain, "ttl=3600": get_ttl})

    # The sweep: expired items removed per second, and the longest single cleanup call,
    # read from the server's own SLOWLOG (every command logged while the sweep runs).
    m = s.set_many_items
    with State.from_url(
        b.url, prefix=f"bench-{uuid.uuid4().hex[:8]}:", cleanup_interval=None
    ) as st:
        st.set_many("sweep", values_for(m, s.value_small), ttl=0.05)
        time.sleep(0.2)
        old = b.raw.config_get("slowlog-log-slower-than")["slowlog-log-slower-than"]
        b.raw.config_set("slowlog-log-slower-than", 0)
        b.raw.slowlog_reset()
        start = time.perf_counter()
        removed = st.cleanup()
        elapsed = time.perf_counter() - start
        log = b.raw.slowlog_get(100_000)
        b.raw.config_set("slowlog-log-slower-than", old)
    longest = max(
        (int(e["duration"]) for e in log if e["command"].startswith(b"EVALSHA")), default=0
    )
    b.sweep = {
        "items": m,
        "removed": removed,
        "items_per_s": removed / elapsed,
        "longest_call_us": longest,
    }
    b.say(
        f"  sweep: {removed:,} of {m:,} expired items in {elapsed * 1000:.0f} ms "
        f"({removed / elapsed:,.0f}/s), longest single call {longest} us"
    )


# -- change feed --------------------------------------------------------------------------


def _feed_watcher(args: tuple[str, str | None, Any]) -> None:
    """A watcher in a process of its own: reports (key, CLOCK_MONOTONIC ns) per change seen.

    ``prefix`` None watches a plain stream with redis-py's XREAD (the baseline).
    """
    url, prefix, conn = args
    if prefix is None:
        r = redis.Redis.from_url(url)
        last = "$"
        conn.send("ready")
        while True:
            reply = r.xread({"bench-raw-feed": last}, block=1000, count=100)
            for _, entries in reply or []:
                for entry_id, fields in entries:
                    conn.send((fields[b"key"].decode(), time.monotonic_ns()))
                    last = entry_id
    with State.from_url(url, prefix=prefix) as state, state.watch("feed", block=1.0) as watch:
        conn.send("ready")
        for change in watch:
            if change is not None:
                conn.send((change.key, time.monotonic_ns()))


def feed(b: Bench) -> None:
    """The change feed: what recording values costs a write, and set-to-watcher latency."""
    s = b.sizes
    n = s.serial_ops
    params = {"items": s.small_group, "value_bytes": s.value_small, "ops_per_round": n}
    values = values_for(s.small_group, s.value_small)
    keys = [f"k{i % s.small_group}" for i in range(n)]
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    with (
        State.from_url(b.url, prefix=prefix) as plain,
        State.from_url(b.url, prefix=prefix, record_values=True) as recording,
    ):

        def writes(state: State) -> Round:
            def one_round(lat: Latencies) -> int:
                for k in keys:
                    timed(lambda k=k: state.set("g", k, values[k]), lat)
                return n

            return one_round

        b.compare(
            "set, values in the feed",
            params,
            {"not recorded": writes(plain), "record_values": writes(recording)},
        )
        plain.clear("g")

        # set -> watcher latency: one write per millisecond, each timed from just before the
        # write until a watcher in another process has it (CLOCK_MONOTONIC is system-wide)
        m = max(50, n // 4)
        context = multiprocessing.get_context("spawn")
        pipes = {}
        procs = []
        for name, watch_prefix in (("engine watch", prefix), ("raw XADD/XREAD", None)):
            mine, theirs = context.Pipe()
            proc = context.Process(target=_feed_watcher, args=((b.url, watch_prefix, theirs),))
            proc.daemon = True
            proc.start()
            assert mine.recv() == "ready"
            pipes[name] = mine
            procs.append(proc)

        def latency(name: str, send: Callable[[str], Any]) -> Round:
            def one_round(lat: Latencies) -> int:
                # receipts are drained as they come: a full pipe would stall the watcher
                got: list[tuple[str, int]] = []
                drain = threading.Thread(
                    target=lambda: got.extend(pipes[name].recv() for _ in range(m))
                )
                drain.start()
                sent = {}
                for i in range(m):
                    key = f"k{i}"
                    sent[key] = time.monotonic_ns()
                    send(key)
                    time.sleep(0.001)
                drain.join()
                lat.extend(seen - sent[key] for key, seen in got)
                return m

            return one_round

        try:
            b.compare(
                "set -> watcher latency",
                {"writes_per_round": m, "spacing_ms": 1},
                {
                    "engine watch": latency("engine watch", lambda k: plain.set("feed", k, 1)),
                    "raw XADD/XREAD": latency(
                        "raw XADD/XREAD",
                        lambda k: b.raw.xadd("bench-raw-feed", {"key": k}, maxlen=10_000),
                    ),
                },
                unit="writes",
            )
        finally:
            for proc in procs:
                proc.terminate()
                proc.join(timeout=10)
            b.raw.delete("bench-raw-feed")
            plain.clear("feed")


# -- Redis Cluster -----------------------------------------------------------------------


def _cluster_worker(args: tuple[str, str, str, int, int]) -> tuple[int, float]:
    """One process's share: ``n`` ops spread over 64 groups (so over every master)."""
    url, prefix, how, n, me = args
    with State.from_url(url, prefix=prefix) as state:
        state.get("g0", "k")  # connect (and learn the slot map) before the clock starts
        start = time.perf_counter()
        for i in range(n):
            group, key = f"g{i % 64}", f"{how}-p{me}-k{i % 100}"
            if how == "set":
                state.set(group, key, {"i": i, "payload": "x" * 150})
            elif how == "get":
                state.get(group, key)
            else:
                state.increment(group, key)
        return n, time.perf_counter() - start


def cluster_scaling(b: Bench) -> None:
    """set/get/increment from 4 processes against a 1-master and a 3-master cluster.

    Both clusters run on this machine's 2 cores, with the clients: the figures show what the
    engine costs on Cluster and that nothing serialises across masters, not how it scales
    on real machines (see README, Performance).
    """
    s = b.sizes
    n = s.serial_ops // 2
    binary = shutil.which("redis-server") or embedded_binary()
    config = HERE.parent / "docker" / "cluster.conf"
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory() as tmp:
        clusters = {
            f"{m} master{'s' if m > 1 else ''}": cluster(
                binary, config, Path(tmp) / f"c{m}", "--appendonly", "no", "--save", "", masters=m
            )
            for m in (1, 3)
        }
        ctx = multiprocessing.get_context("spawn")
        nodes = {
            name: [redis.Redis(host=n.host, port=n.port) for n in c.nodes]
            for name, c in clusters.items()
        }
        try:
            with ctx.Pool(4) as pool:
                for how in ("set", "get", "increment"):

                    def run_round(url: str, how: str = how) -> Round:
                        def one_round(lat: Latencies) -> tuple[int, float]:
                            tasks = [(url, prefix, how, n, p) for p in range(4)]
                            done = pool.map(_cluster_worker, tasks)
                            return sum(o for o, _ in done), max(t for _, t in done)

                        return one_round

                    b.compare(
                        f"cluster {how}, 4 processes",
                        {"processes": 4, "ops_per_round": 4 * n, "groups": 64},
                        {name: run_round(c.url) for name, c in clusters.items()},
                        servers=nodes,
                    )
            _cluster_async(b, clusters["3 masters"].url, nodes["3 masters"])
        finally:
            for clients in nodes.values():
                for client in clients:
                    client.close()
            for c in clusters.values():
                c.stop()


# -- the near cache ---------------------------------------------------------------------


def near_cache(b: Bench) -> None:
    """Hot reads: the same serial gets of a 1k-item group through a State with the near
    cache (every item read once before the timed rounds, so they are hits) and through one
    without, interleaved on one server."""
    s = b.sizes
    n, items = s.serial_ops, s.small_group
    values = values_for(items, s.value_small)
    keys = [f"k{i % items}" for i in range(n)]
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    with (
        State.from_url(b.url, prefix=prefix, cache=True) as cached,
        State.from_url(b.url, prefix=prefix) as uncached,
    ):
        cached.set_many("g", values)
        try:
            for k in values:
                cached.get("g", k)

            def read(state: State) -> Round:
                # untimed calls: a hit costs about what timing each call would add
                def one_round(lat: Latencies) -> int:
                    get = state.get
                    for k in keys:
                        get("g", k)
                    return n

                return one_round

            name, hit, miss = NEAR_CACHE_GET
            b.compare(
                name,
                {"items": items, "value_bytes": s.value_small, "ops_per_round": n},
                {hit: read(cached), miss: read(uncached)},
            )
            b.say(f"  near cache: {cached.cache_stats()}")
        finally:
            uncached.clear("g")


INSPECTOR_PAGE = 50  # rows per page, as the page asks
INSPECTOR_HISTORY = 10_000  # feed records one history request looks at, at most


def inspector(b: Bench) -> None:
    """Issue 20: what the inspector's requests cost over HTTP (the real ``motia-state ui``,
    a keep-alive httpx client), beside the engine call each one makes and plain redis-py at
    the machine's limit: a page of 50 rows of a 100k-item group (/api/items, state.query,
    HSCAN COUNT 50 + orjson), one item (/api/item, state.get_item, HGET + orjson), and the
    history of an item the last 10,000 feed records do not name, the most one request reads
    (/api/history, state.history, one XREVRANGE COUNT 10000)."""
    from tests.ui_server import Inspector

    s = b.sizes
    n = s.large_group
    calls = max(20, s.serial_ops // 20)
    values = values_for(n, s.value_small)
    prefix = f"bench-{uuid.uuid4().hex[:8]}:"
    r = b.raw
    with (
        b.state(prefix=prefix, cleanup_interval=None, record_values=True) as state,
        b.raw_hash(values) as key,
        Inspector(b.url, prefix=prefix) as ui,
    ):
        state.set_many("g", values)
        stream = KeyLayout(prefix).changes("")
        client = ui.client

        def timed_calls(call: Callable[[], Any]) -> Round:
            def one_round(lat: Latencies) -> int:
                for _ in range(calls):
                    timed(call, lat)
                return calls

            return one_round

        def api(path: str, **params: Any) -> Callable[[], Any]:
            def call() -> Any:
                response = client.get(path, params=params)
                if response.status_code != 200:
                    raise AssertionError(response.text)
                return response.json()

            return call

        def raw_page() -> Any:
            _, page = r.hscan(key, 0, count=INSPECTOR_PAGE)
            return [orjson.loads(v) for v in page.values()]

        params = {"items": n, "value_bytes": s.value_small, "ops_per_round": calls}
        b.compare(
            "inspector: a page of 50 rows",
            params,
            {
                "GET /api/items": timed_calls(api("/api/items", group="g", limit=INSPECTOR_PAGE)),
                "state.query": timed_calls(lambda: state.query("g", limit=INSPECTOR_PAGE)),
                "redis-py HSCAN + orjson": timed_calls(raw_page),
            },
        )
        b.compare(
            "inspector: one item",
            params,
            {
                "GET /api/item": timed_calls(api("/api/item", group="g", key="k7")),
                "state.get_item": timed_calls(lambda: state.get_item("g", "k7")),
                "redis-py HGET + orjson": timed_calls(lambda: orjson.loads(r.hget(key, "k7"))),
            },
        )
        history_calls = max(5, calls // 10)

        def histories(call: Callable[[], Any]) -> Round:
            def one_round(lat: Latencies) -> int:
                for _ in range(history_calls):
                    timed(call, lat)
                return history_calls

            return one_round

        b.compare(
            "inspector: a history reading 10,000 records",
            {**params, "ops_per_round": history_calls, "records": INSPECTOR_HISTORY},
            {
                "GET /api/history": histories(api("/api/history", group="g", key="nowhere")),
                "state.history": histories(lambda: state.history("g", "nowhere")),
                "redis-py XREVRANGE": histories(
                    lambda: r.xrevrange(stream, "+", "-", count=INSPECTOR_HISTORY)
                ),
            },
        )


SUITES: list[tuple[str, Callable[[Bench], None]]] = [
    ("serial get/set", serial),
    ("near cache", near_cache),
    ("ACL checks in the write scripts", acl_checks),
    ("atomic operations", atomic),
    ("idempotency keys", idempotency),
    ("hot key, 4 processes", hot_key),
    ("AsyncState, 64 tasks", concurrent),
    ("set_many", batches),
    ("get_group / iter_items", groups),
    ("query: the server filters", query),
    ("inspector: its requests over HTTP", inspector),
    ("default install: file vs embedded", default_install),
    ("TTL", ttl),
    ("change feed", feed),
    ("Redis Cluster: 1 vs 3 masters", cluster_scaling),
]
