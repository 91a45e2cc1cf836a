"""TTL on what the contract suite (motia_state/testing/contract/ttl.py, run on every backend by
test_contract) cannot see: the server's bookkeeping, the background sweeper, several processes
sweeping at once, the clock reads of a batch.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from motia_state import State
from motia_state.layout import KeyLayout
from motia_state.testing.contract import ttl
from motia_state.testing.contract.ttl import TTL, wait_out

from .conftest import TEST_BINARY, Servers, Target


@pytest.mark.redis_only
def test_cleanup_leaves_only_the_groups_bookkeeping(open_state: Any, target: Target) -> None:
    """After the contract's cleanup (1201 items of two groups expired and removed), the
    server holds no expiry bookkeeping: of group "gone" only its version floor, expiring."""
    ttl.test_cleanup_removes_expired_items(open_state(cleanup_interval=None))
    layout = target.layout()
    with target.raw() as r:
        left = set(r.scan_iter(match=layout.meta_root + b"*")) | set(
            r.scan_iter(match=layout.scan_pattern())
        )
    # (on Cluster each group has its own change stream, "gone"'s included)
    assert left == {
        layout.data("g"),
        layout.versions("g"),
        layout.changes("g"),
        layout.versions("gone"),
        layout.changes("gone"),
    }
    with target.raw() as r:
        assert r.hgetall(layout.versions("gone")) == {b"": b"2"}
        assert 0 < r.pttl(layout.versions("gone")) <= 7 * 24 * 3600 * 1000
        assert r.pttl(layout.versions("g")) == -1
    with target.raw() as r:
        streams = {layout.changes("g"), layout.changes("gone")}  # one stream unless Cluster
        records = [f[b"op"] for s in streams for _, f in r.xrange(s)]
    assert records.count(b"expire") == 1201


def test_background_cleanup(open_state: Any, target: Target) -> None:
    state = open_state(cleanup_interval=0.2)
    state.set("g", "k", 1, ttl=0.2)
    deadline = time.time() + 5
    while time.time() < deadline:
        if target.is_redis:
            with target.raw() as r:
                if not r.exists(target.layout().data("g")):
                    break
        elif target.name == "file":  # look at the file itself, not through a read
            text = Path(target.url[len("file://") :]).read_text()
            if "g:k" not in json.loads(text):
                break
        elif state.cleanup() == 0 and state.list_groups() == []:
            break
        getattr(state, "pause", time.sleep)(0.1)  # async: let the loop run its sweeper task
    else:
        pytest.fail("the background sweep did not remove the item")
    assert state.list_groups() == []


def _sweep(url: str, options: dict[str, Any], out: Any) -> None:
    with State.from_url(url, **options, cleanup_interval=None) as state:
        total = 0
        while True:
            removed = state.cleanup()
            total += removed
            if removed == 0 and state.list_groups() == []:
                break
        out.put(total)


def test_three_processes_sweep_at_once(target: Target) -> None:
    if target.name == "memory":
        pytest.skip("memory:// lives in one process")
    n = 10_000 if target.is_redis else 1000
    with State.from_url(target.url, **target.options, cleanup_interval=None) as state:
        state.set_many("g", {f"k{i}": i for i in range(n)}, ttl=TTL)
    wait_out()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_sweep, args=(target.url, target.options, out)) for _ in range(3)]
    for p in procs:
        p.start()
    counts = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(60)
    assert sum(counts) == n  # every item removed, and counted, once
    if target.is_redis:
        with target.raw() as r:
            records = [f[b"op"] for _, f in r.xrange(target.layout().changes("g"))]
            assert records.count(b"expire") == n
            assert not r.exists(target.layout().data("g"), target.layout().expiries("g"))


def _records(target: Target, group: str) -> list[tuple[bytes, bytes]]:
    """(op, key) of every change record of ``group``, oldest first."""
    with target.raw() as r:
        entries = r.xrange(target.layout().changes(group))
    return [(f[b"op"], f[b"key"]) for _, f in entries if f[b"group"] == group.encode()]


@pytest.mark.redis_only
def test_clear_records_every_removal_and_never_counts_below_zero(
    open_state: Any, target: Target
) -> None:
    quiet = open_state(cleanup_interval=None)
    layout = target.layout()
    quiet.set_many("all-expired", {"a": 1, "b": 2}, ttl=60)
    quiet.set("mixed", "live", 1)
    quiet.set("mixed", "dead", 2, ttl=60)
    quiet.set("foreign", "live", 1)
    quiet.set_many("foreign", {"x": 1, "y": 2}, ttl=60)
    past = int(time.time() * 1000) - 1000  # deadlines passed, no sweeper has run yet
    with target.raw() as r:
        r.zadd(layout.expiries("all-expired"), {"a": past, "b": past})
        r.zadd(layout.expiries("mixed"), {"dead": past})
        # another tool removed two items behind the engine's back: their expiry entries stay
        r.hdel(layout.data("foreign"), "x", "y")
        r.zadd(layout.expiries("foreign"), {"x": past, "y": past})
    groups = quiet.list_groups()
    assert "foreign" in groups  # it holds a live item
    assert "all-expired" not in groups
    assert quiet.clear("all-expired") == 0
    assert _records(target, "all-expired")[-2:] == [(b"expire", b"a"), (b"expire", b"b")]
    assert quiet.clear("mixed") == 1
    assert _records(target, "mixed")[-2:] == [(b"expire", b"dead"), (b"clear", b"")]
    assert quiet.clear("foreign") == 1
    assert _records(target, "foreign")[-1:] == [(b"clear", b"")]
    assert quiet.list_groups() == []


def test_a_batch_with_a_ttl_reads_the_clock_once_per_call(servers: Servers) -> None:
    """set_many reads TIME (a small command's cost) at most once per server call, also where the
    group has no expiry yet and the batch gives every item one; so the items of one call share
    one deadline, as a transaction's do."""
    server = servers.start(TEST_BINARY, "clock")
    admin = server.client()
    try:
        with State.from_url(server.url, cleanup_interval=None) as state:
            for group, ttl in (("fresh", 60), ("fresh", 60), ("plain", None), ("plain", 60)):
                admin.config_resetstat()
                state.set_many(group, {f"k{i}": i for i in range(300)}, ttl=ttl)
                stats = admin.info("commandstats")
                assert stats.get("cmdstat_time", {}).get("calls", 0) <= 1, (group, ttl)
                deadlines = {s for _, s in admin.zrange(KeyLayout().expiries(group), 0, -1,
                                                        withscores=True)}  # fmt: skip
                assert len(deadlines) == (1 if ttl else 0)
    finally:
        admin.close()
        server.stop()
