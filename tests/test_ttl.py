"""TTL: per-item and default expiry, invisible the moment it passes, cleaned up server-side.

Real clocks and short TTLs: an item given 0.3 s is checked before and after.
"""

from __future__ import annotations

import json
import multiprocessing
import time
from pathlib import Path
from typing import Any

import pytest

from motia_state import InvalidInput, Op, State, VersionConflict
from motia_state.layout import KeyLayout

from .conftest import TEST_BINARY, Servers, Target

TTL = 0.3


def wait_out(ttl: float = TTL) -> None:
    time.sleep(ttl + 0.15)


@pytest.fixture
def quiet(open_state: Any) -> Any:
    """A state whose background cleanup never runs: reads alone must hide expired items."""
    return open_state(cleanup_interval=None)


def test_an_expired_item_is_invisible_on_every_read_path(quiet: Any) -> None:
    quiet.set("g", "short", "soon gone", ttl=TTL)
    quiet.set("g", "long", "stays")
    quiet.set("only-short", "k", 1, ttl=TTL)
    assert quiet.get("g", "short") == "soon gone"
    assert quiet.list_groups() == ["g", "only-short"]
    wait_out()
    assert quiet.get("g", "short") is None
    assert quiet.get_item("g", "short") is None
    assert quiet.get_many("g", ["short", "long"]) == [None, "stays"]
    assert quiet.get_group("g") == ["stays"]
    assert quiet.items("g") == {"long": "stays"}
    assert quiet.keys("g") == ["long"]
    assert list(quiet.iter_items("g", batch=1)) == [("long", "stays")]
    assert quiet.list_groups() == ["g"]  # a group whose items all expired is not listed
    assert quiet.ttl("g", "short") is None


def test_ttl_and_expires_at(quiet: Any) -> None:
    before = time.time()
    quiet.set("g", "k", 1, ttl=10)
    remaining = quiet.ttl("g", "k")
    assert 9 < remaining <= 10
    expires_at = quiet.get_item("g", "k").expires_at
    assert before + 9.5 < expires_at < time.time() + 10.5
    quiet.set("g", "forever", 1)
    assert quiet.ttl("g", "forever") is None
    assert quiet.get_item("g", "forever").expires_at is None
    assert quiet.ttl("g", "missing") is None


def test_a_write_to_an_expired_item_treats_it_as_absent(quiet: Any) -> None:
    quiet.set("g", "k", "a", ttl=TTL)
    quiet.set("g", "k", "b", ttl=TTL)
    assert quiet.get_item("g", "k").version == 2
    wait_out()
    # absent to writes (version=0 works), and the new item starts above the expired one's
    # versions (2, then 3 for its expiry)
    assert quiet.set("g", "k", "new", version=0) == 4
    assert quiet.get("g", "k") == "new"
    quiet.set("g", "d", 1, ttl=TTL)
    wait_out()
    assert quiet.delete("g", "d") is None
    with pytest.raises(VersionConflict):
        quiet.delete("g", "d", version=1)


def test_overwrites_clear_or_keep_the_expiry(quiet: Any) -> None:
    quiet.set("g", "k", 1, ttl=TTL)
    quiet.set("g", "k", 2)  # a plain write clears it
    assert quiet.ttl("g", "k") is None
    quiet.set("g", "c", 1, ttl=TTL)
    quiet.increment("g", "c")  # increment and update keep it
    quiet.update("g", "doc", [Op.set("a", 1)], ttl=TTL)
    quiet.update("g", "doc", [Op.set("b", 2)])
    assert quiet.ttl("g", "c") is not None
    assert quiet.ttl("g", "doc") is not None
    quiet.increment("g", "c", ttl=60)  # unless given one
    assert quiet.ttl("g", "c") > 50
    wait_out()
    assert quiet.get("g", "doc") is None
    assert quiet.get("g", "c") == 3
    assert quiet.get("g", "k") == 2


def test_expire_and_persist(quiet: Any) -> None:
    assert quiet.expire("g", "missing", 10) is False
    quiet.set("g", "k", 1)
    assert quiet.persist("g", "k") is False  # had none
    assert quiet.expire("g", "k", TTL) is True
    assert quiet.persist("g", "k") is True
    assert quiet.ttl("g", "k") is None
    assert quiet.expire("g", "k", TTL) is True
    wait_out()
    assert quiet.get("g", "k") is None
    assert quiet.expire("g", "k", 10) is False
    assert quiet.persist("g", "k") is False
    group = quiet.group("v")
    group.set("x", 1, ttl=60)
    assert group.ttl("x") > 50
    assert group.persist("x") is True
    assert group.expire("x", 5) is True


def test_default_ttl(open_state: Any) -> None:
    state = open_state(ttl=TTL, cleanup_interval=None)
    state.set("g", "a", 1)
    state.set_many("g", {"b": 2, "c": 3})
    state.increment("g", "n")
    state.set("g", "long", 1, ttl=60)
    with state.transaction() as tx:
        tx.set("g", "t", 1)
    assert state.ttl("g", "a") is not None
    wait_out()
    assert state.items("g") == {"long": 1}


def test_ttl_on_batches_and_transactions(quiet: Any) -> None:
    quiet.set_many("g", {"a": 1, "b": 2}, ttl=TTL)
    with quiet.transaction() as tx:
        tx.set("g", "t1", 1, ttl=TTL)
        tx.increment("g", "t2", ttl=TTL)
        tx.update("g", "t3", [Op.set("x", 1)], ttl=TTL)
        tx.set("g", "keep", 1)
    assert sorted(quiet.keys("g")) == ["a", "b", "keep", "t1", "t2", "t3"]
    wait_out()
    assert quiet.keys("g") == ["keep"]


def test_cleanup_removes_expired_items(quiet: Any, target: Target) -> None:
    quiet.set_many("g", {f"k{i}": i for i in range(1200)}, ttl=TTL)
    quiet.set("g", "stays", 1)
    quiet.set("gone", "k", 1, ttl=TTL)
    assert quiet.cleanup() == 0
    wait_out()
    assert quiet.cleanup() == 1201
    assert quiet.cleanup() == 0
    assert quiet.items("g") == {"stays": 1}
    if target.is_redis:
        layout = target.layout()
        with target.raw() as r:
            left = set(r.scan_iter(match=layout.meta_root + b"*")) | set(
                r.scan_iter(match=layout.scan_pattern())
            )
        # of group "gone" only its version floor remains, expiring; no expiry bookkeeping
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


@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "10", True])
def test_bad_ttls(state: Any, ttl: Any) -> None:
    with pytest.raises(InvalidInput, match="ttl"):
        state.set("g", "k", 1, ttl=ttl)
    with pytest.raises(InvalidInput, match="ttl"):
        state.expire("g", "k", ttl)
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
    quiet: Any, target: Target
) -> None:
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
