"""The near cache (``cache=``): hits served from memory, never staler than the README says.

Real servers only: Redis 7.0 (``redis``), Valkey 8.1 (``embedded``), a Cluster, a Sentinel,
through `State` and `AsyncState`. No test sleeps a fixed time: each waits for a condition.

The guarantee checked everywhere: a read that begins after another client's write was
acknowledged returns that write or a later one, unless the acknowledgement came less than
``max_lag`` before it (on the same host the server sends the invalidation microseconds from
the writer's reply, not always first, and a hit first reads every invalidation already in its
socket; the lease bounds the rest); an item is never returned once the server's clock has
passed its expiry; a lost tracking connection drops everything.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import json
import math
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from motia_state import (
    AsyncState,
    BackendUnavailable,
    CacheStats,
    InvalidInput,
    NearCache,
    Op,
    State,
    Unsupported,
    VersionConflict,
    codecs,
    ops,
)
from motia_state.cache import Cache, deadline, written_groups
from motia_state.codecs import get_codec
from motia_state.layout import KeyLayout, key_slot
from motia_state.server import ServerProcess

from .conftest import (
    CLUSTER_CONF,
    NO_PERSISTENCE,
    REDIS_CONF,
    TEST_BINARY,
    Blocking,
    Opener,
    Servers,
    Target,
    settle,
)
from .servers import Cluster, cluster, standalone
from .test_cluster import _master_of_slot, _move_slot
from .test_sentinel import _eventually, _fail_over, _has_replica, _url, watched  # noqa: F401

CACHED = pytest.mark.parametrize("target", ["redis", "embedded", "cluster"], indirect=True)
WAIT_S = 20.0


def stats(state: Any) -> CacheStats:
    found = state.cache_stats()
    assert found is not None
    return found


def until(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    deadline_at = time.monotonic() + timeout
    while not (result := condition()):
        assert time.monotonic() < deadline_at, f"timed out waiting until {what}"
        time.sleep(0.01)
    return result


def warm(state: Any, group: str, key: str) -> Any:
    """Read until the item is served from the cache (the first read may establish tracking,
    the next one keeps the reply); returns the value the hit gave."""
    deadline_at = time.monotonic() + WAIT_S
    while time.monotonic() < deadline_at:
        before = stats(state).hits
        value = state.get(group, key)
        if stats(state).hits > before:
            return value
        settle(state, 0.005)  # tracking may be retried only after a while
    raise AssertionError(f"{group}/{key} is never served from the cache: {stats(state)}")


def trackers(target: Target, servers: Servers) -> list[redis.Redis]:
    """Admin clients of every server a cached state tracks (each Cluster master)."""
    if target.name == "cluster":
        return [n.client() for n in servers.cluster().nodes if n.proc is not None]
    return [target.raw()]


def kill_tracking(clients: list[redis.Redis]) -> int:
    """CLIENT KILL every tracking connection (flag t), as an operator or a proxy might."""
    killed = 0
    for client in clients:
        for line in client.execute_command("CLIENT", "LIST").decode().splitlines():
            fields = dict(part.split("=", 1) for part in line.split(" ") if "=" in part)
            if "t" in fields["flags"]:
                client.execute_command("CLIENT", "KILL", "ID", fields["id"])
                killed += 1
    return killed


# -- own writes, others' writes ---------------------------------------------------------


@CACHED
def test_hits_are_served_from_memory_and_count(open_state: Opener) -> None:
    state = open_state(cache=True)
    state.set("g", "k", {"a": [1, 2]})
    value = warm(state, "g", "k")
    assert value == {"a": [1, 2]}
    value["a"].append(3)  # the caller's copy: the cached bytes are decoded again per hit
    assert warm(state, "g", "k") == {"a": [1, 2]}
    assert state.get("g", "missing") is None
    assert warm(state, "g", "missing") is None  # an absent item is cached too
    assert state.get_item("g", "missing") is None
    s = stats(state)
    assert s.serving
    assert s.items == 2
    assert s.hits >= 3
    assert s.misses >= 2


@CACHED
def test_own_writes_are_seen_at_once(open_state: Opener) -> None:
    state = open_state(cache=True)
    g = "orders"
    steps: list[tuple[str, Callable[[], Any], str, Any]] = [
        ("set", lambda: state.set(g, "a", 2), "a", 2),
        ("set version=", lambda: state.set(g, "a", 3, version=2), "a", 3),
        ("update", lambda: state.update(g, "a", [Op.increment("n", 1)]), "a", None),
        ("increment", lambda: state.increment(g, "c"), "c", 2),
        ("delete", lambda: state.delete(g, "c"), "c", None),
        ("set_many", lambda: state.set_many(g, {"m1": 5, "m2": 6}), "m1", 5),
        ("delete_many", lambda: state.delete_many(g, ["m1"]), "m1", None),
        ("clear", lambda: state.clear(g), "m2", None),
    ]
    state.set(g, "a", 1)
    state.increment(g, "c")
    state.set(g, "m1", 0)
    for name, write, key, expected in steps:
        if name == "update":
            state.set(g, "a", {"n": 1})
            expected = {"n": 2}
        if name == "clear":
            state.set(g, "m2", 7)
        warm(state, g, key)
        write()
        assert state.get(g, key) == expected, name
    # a transaction, over two groups
    state.set("t1", "x", 1)
    state.set("t1", "y", 1)
    warm(state, "t1", "x")
    warm(state, "t1", "y")
    with state.transaction() as tx:
        tx.set("t1", "x", 10)
        tx.increment("t1", "y", 5)
    assert (state.get("t1", "x"), state.get("t1", "y")) == (10, 6)
    # expiry changes: expire, persist, and a write's ttl=
    state.set(g, "e", "v")
    warm(state, g, "e")
    assert state.expire(g, "e", 60)
    item = state.get_item(g, "e")
    assert item is not None
    assert item.expires_at is not None
    warm(state, g, "e")
    assert state.persist(g, "e")
    item = state.get_item(g, "e")
    assert item is not None
    assert item.expires_at is None
    warm(state, g, "e")
    state.set(g, "e", "w", ttl=60)
    item = state.get_item(g, "e")
    assert item is not None
    assert item.value == "w"
    assert item.expires_at is not None
    # an absent item, cached as absent, then created
    warm(state, g, "new")
    state.set(g, "new", 1)
    assert state.get(g, "new") == 1


@CACHED
def test_a_write_that_fails_still_drops_the_copy(open_state: Opener, target: Target) -> None:
    """A refused write drops the group's copies too (it may have raced another writer)."""
    state = open_state(cache=True)
    other = open_state()
    state.set("g", "k", 1)
    warm(state, "g", "k")
    with pytest.raises(VersionConflict):
        state.set("g", "k", 2, version=99)
    assert state.get("g", "k") == 1
    before = stats(state).hits
    state.get("g", "k")
    assert stats(state).hits == before + 1  # cached again after the miss
    other.set("g", "k", 5)
    assert state.get("g", "k") == 5


@CACHED
def test_another_clients_write_is_seen_by_the_next_read(open_state: Opener, target: Target) -> None:
    """No waiting: a write acknowledged to another client before a read begins is seen by it."""
    state = open_state(cache=True)
    other = open_state()
    layout, raw = target.layout(), target.raw()
    other.set("g", "k", 1)
    for i in range(2, 40):
        warm(state, "g", "k")
        other.set("g", "k", i)
        item = state.get_item("g", "k")
        assert item is not None
        assert item.value == i
    # another tool: a plain HSET, an expiry set on the expiries set, an HDEL
    warm(state, "g", "k")
    raw.hset(layout.data("g"), "k", b'"by hand"')
    assert state.get("g", "k") == "by hand"
    warm(state, "g", "k")
    raw.zadd(layout.expiries("g"), {"k": 1})  # expired since 1970
    assert state.get("g", "k") is None
    other.set("g", "k2", 1)
    warm(state, "g", "k2")
    raw.hdel(layout.data("g"), "k2")
    assert state.get("g", "k2") is None
    # a write to another group leaves this one's copies alone
    other.set("h", "x", 1)
    warm(state, "g", "k2")
    other.set("h", "x", 2)
    before = stats(state).hits
    assert state.get("g", "k2") is None
    assert stats(state).hits == before + 1
    assert stats(state).invalidations > 0
    raw.close()


@CACHED
def test_compare_and_set_through_a_cached_item_stays_exact(
    open_state: Opener, target: Target
) -> None:
    state = open_state(cache=True)
    other = open_state()
    other.set("g", "c", {"n": 1})
    warm(state, "g", "c")
    seen = state.get_item("g", "c")
    assert seen is not None
    assert seen == other.get_item("g", "c")
    assert other.set("g", "c", {"n": 2}) == seen.version + 1
    now = state.get_item("g", "c")  # the copy was dropped: the server's version
    assert now is not None
    assert now.version == seen.version + 1
    with pytest.raises(VersionConflict):  # the version read before another's write
        state.set("g", "c", {"n": 3}, version=seen.version)
    fresh = state.get_item("g", "c")
    assert fresh is not None
    assert (fresh.version, fresh.value) == (seen.version + 1, {"n": 2})
    assert state.set("g", "c", {"n": 3}, version=fresh.version) == fresh.version + 1
    warm(state, "g", "c")
    hit = state.get_item("g", "c")
    assert hit == other.get_item("g", "c")
    assert hit is not None
    assert hit.version == fresh.version + 1


# -- expiry ----------------------------------------------------------------------------


def _server_ms(target: Target, servers: Servers) -> Callable[[], int]:
    """The server's clock (TIME, as lua/include/clock.lua reads it), in ms."""
    client = trackers(target, servers)[0]  # every node runs on this host, on one clock

    def now() -> int:
        seconds, micros = client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    return now


@CACHED
def test_an_item_is_never_served_once_the_server_says_it_expired(
    open_state: Opener, target: Target, servers: Servers
) -> None:
    state = open_state(cache=True)
    server_ms = _server_ms(target, servers)
    for ttl in (0.3, 0.05):
        key = f"t{ttl}"
        state.set("g", key, {"ttl": ttl}, ttl=ttl)
        first = state.get_item("g", key)
        assert first is not None
        assert first.expires_at is not None
        at = round(first.expires_at * 1000)
        hits, reads = stats(state).hits, 0
        while True:
            before = server_ms()  # the server's clock before the read begins
            item = state.get_item("g", key) if reads % 2 else state.get("g", key)
            reads += 1
            if item is None:
                break
            # served (from memory or not) while the server still had it alive
            assert before < at, f"served {before - at} ms after the server's expiry"
        assert state.get("g", key) is None
        assert state.get_item("g", key) is None
        assert server_ms() >= at - 1  # gone because it expired, not for another reason
        if ttl == 0.3:
            assert stats(state).hits > hits  # the copy was served while it lived


def test_a_copy_expires_by_the_time_the_server_gave_it() -> None:
    """The deadline is the send time plus the ms left, less the ms the server rounds down
    and a margin for clock rates: never later than the server's own expiry."""
    assert deadline(100.0, None) == math.inf
    assert deadline(100.0, 1) == 100.0  # 1 ms left: may already be gone when it arrives
    assert deadline(100.0, 1001) == pytest.approx(100.0 + 1.0 * (1 - 1e-3))
    assert deadline(100.0, 1001) < 100.0 + 1.0


# -- the cache itself, without I/O -------------------------------------------------------


def _raw(version: int = 1, data: bytes = b"1", ms_left: int | None = None) -> ops.RawItem:
    return ops.RawItem(data, version, None, ms_left)


def test_a_reply_is_not_kept_if_its_group_was_invalidated_meanwhile() -> None:
    cache = Cache(NearCache())
    cache.serving_until = math.inf
    ticket = cache.ticket()
    cache.invalidated("g")  # while the read was in flight
    cache.store(ticket, "g", "k", _raw(), 0.0)
    assert cache.hit("g", "k") is None
    other = cache.ticket()
    cache.invalidated("h")  # another group: no reason to refuse
    cache.store(other, "g", "k", _raw(2), 0.0)
    entry = cache.hit("g", "k")
    assert entry is not None
    assert entry.version == 2
    late = cache.ticket()
    cache.flush()  # a lost connection, say
    cache.store(late, "g", "k", _raw(3), 0.0)
    assert cache.hit("g", "k") is None
    assert len(cache) == 0


def test_forgotten_invalidation_marks_refuse_the_replies_in_flight() -> None:
    cache = Cache(NearCache())
    cache.serving_until = math.inf
    ticket = cache.ticket()
    for i in range(5000):  # more groups than it remembers
        cache.drop_group(f"g{i}")
    cache.store(ticket, "x", "k", _raw(), 0.0)
    assert cache.hit("x", "k") is None
    cache.store(cache.ticket(), "x", "k", _raw(), 0.0)
    assert cache.hit("x", "k") is not None


def test_an_expired_copy_and_a_lapsed_lease_are_not_served() -> None:
    cache = Cache(NearCache())
    now = time.monotonic()
    cache.serving_until = now + 60
    cache.store(cache.ticket(), "g", "short", _raw(ms_left=1), now)
    cache.store(cache.ticket(), "g", "long", _raw(ms_left=60_000), now)
    assert cache.hit("g", "short") is None
    assert cache.hit("g", "long") is not None
    cache.serving_until = time.monotonic()
    assert cache.hit("g", "long") is None


def test_the_lru_keeps_its_bounds() -> None:
    cache = Cache(NearCache(max_items=3, max_bytes=10_000))
    cache.serving_until = math.inf
    for i in range(5):
        cache.store(cache.ticket(), "g", f"k{i}", _raw(), 0.0)
        if i == 2:
            assert cache.hit("g", "k0") is not None  # used: k1 is now the oldest
    assert len(cache) == 3
    assert cache.evictions == 2
    assert cache.hit("g", "k0") is not None
    assert cache.hit("g", "k1") is None
    by_bytes = Cache(NearCache(max_bytes=2000))
    by_bytes.serving_until = math.inf
    for i in range(10):
        by_bytes.store(by_bytes.ticket(), "g", f"k{i}", _raw(data=b"x" * 500), 0.0)
    s = by_bytes.stats(0.0)
    assert s.bytes <= 2000
    assert s.items == 2
    assert s.evictions == 8
    by_bytes.store(by_bytes.ticket(), "g", "huge", _raw(data=b"x" * 5000), 0.0)
    assert by_bytes.hit("g", "huge") is None  # larger than the whole cache: not kept
    assert by_bytes.stats(0.0).items == 2


def test_which_groups_a_write_drops() -> None:
    update = ops.Update("u", "k", (), (), b"{}", "update", None, 1)
    tx = ops.Transaction((ops.Set("a", "k", b"1", None), ops.Delete("b", "k", None), update), 1)
    assert sorted(written_groups(tx) or ()) == ["a", "b", "u"]
    assert written_groups(ops.Set("g", "k", b"1", None)) == ("g",)
    assert written_groups(ops.Clear("g")) == ("g",)
    assert written_groups(ops.SetExpiry("g", "k", 5)) == ("g",)
    assert written_groups(ops.Cleanup()) == ()  # only removes what expired here already
    assert written_groups(ops.Ack(())) == ()  # the feed's bookkeeping
    assert written_groups(ops.Lease("t", 5)) == ()
    for kind, traits in ops.REGISTRY.items():  # every write drops something, or says why not
        if traits.writes and kind not in (ops.Cleanup, ops.Ack, ops.Lease, ops.External):
            assert "group" in kind.__dataclass_fields__ or kind is ops.Transaction, kind


@CACHED
def test_the_bounds_hold_against_a_server(open_state: Opener) -> None:
    state = open_state(cache=NearCache(max_items=3))
    state.set_many("g", {f"k{i}": i for i in range(6)})  # a write drops the group's copies
    for i in range(6):
        warm(state, "g", f"k{i}")
    s = stats(state)
    assert s.items == 3
    assert s.evictions >= 3
    assert [state.get("g", f"k{i}") for i in range(6)] == list(range(6))
    small = open_state(cache=NearCache(max_bytes=1500))
    state.set_many("g", {f"big{i}": "x" * 400 for i in range(6)})
    for i in range(6):
        warm(small, "g", f"big{i}")
    assert stats(small).bytes <= 1500


@pytest.mark.parametrize("cluster_layout", [False, True])
def test_a_tracked_key_names_its_group(cluster_layout: bool) -> None:
    layout = KeyLayout("p:", cluster=cluster_layout)
    data_prefix, expiries_prefix = layout.tracked_prefixes()
    assert not data_prefix.startswith(expiries_prefix)
    assert not expiries_prefix.startswith(data_prefix)  # the server refuses overlapping ones
    for group in ["orders", "a:b", "}y", "{x}", "é", "g{1}"]:
        assert layout.data(group).startswith(data_prefix)
        assert layout.expiries(group).startswith(expiries_prefix)
        assert layout.group_of_tracked(layout.data(group)) == group
        assert layout.group_of_tracked(layout.expiries(group)) == group
    for other in [layout.versions("g"), layout.changes("g"), layout.bridge_lease(), b"x"]:
        assert layout.group_of_tracked(other) is None


def test_a_hit_decodes_with_the_decoder_chosen_for_its_text() -> None:
    json = get_codec("json")
    assert codecs.decoder(json, b'{"a":1}') is orjson.loads
    huge = b"[123456789012345678901234567890]"  # orjson would read a float: the exact path
    assert codecs.decoder(json, huge)(huge) == [123456789012345678901234567890]
    assert codecs.decoder(json, b"NaN") == json.decode  # orjson refuses it: decode decides
    msgpack = get_codec("msgpack")
    assert codecs.decoder(msgpack, b"\x01") == msgpack.decode


def _child_reads(url: str, options: dict[str, Any], out: Any) -> None:
    """In a forked child: the parent's cached State, its cache dropped, tracking its own."""
    state = _FORKED["state"]
    hits = stats(state).hits
    first = state.get("g", "k")
    missed = stats(state).hits == hits
    out.send((first, missed, warm(state, "g", "k")))
    out.close()


_FORKED: dict[str, Any] = {}


@CACHED
@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_a_forked_child_does_not_share_the_parents_tracking(target: Target) -> None:
    """The child neither reads the parent's socket (it would steal its invalidations) nor
    serves the parent's copies; the parent's cache keeps working."""
    ctx = multiprocessing.get_context("fork")
    with (
        State.from_url(target.url, cache=True, **target.options) as state,
        State.from_url(target.url, **target.options) as other,
    ):
        other.set("g", "k", 1)
        warm(state, "g", "k")
        _FORKED["state"] = state
        receive, send = ctx.Pipe(duplex=False)
        child = ctx.Process(target=_child_reads, args=(target.url, target.options, send))
        child.start()
        first, missed, warmed = receive.recv()
        child.join(60)
        assert child.exitcode == 0
        assert (first, missed, warmed) == (1, True, 1)  # read from the server, then cached
        other.set("g", "k", 2)  # the parent still gets its invalidations
        assert state.get("g", "k") == 2
        assert warm(state, "g", "k") == 2
    _FORKED.clear()


# -- options ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["yes", 0, -5, 1.5, [], NearCache, {"max_items": 3}], ids=repr)
def test_bad_cache_values_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInput, match="cache="):
        State.from_url("redis://127.0.0.1:1/0", cache=value)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_items": 0},
        {"max_bytes": True},
        {"max_lag": 0},
        {"max_lag": math.inf},
        {"max_lag": "1"},
    ],
)
def test_bad_near_cache_settings_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="NearCache"):
        NearCache(**kwargs)


@pytest.mark.parametrize("url", ["memory://", "file://{tmp}/s.json", "sqlite://{tmp}/s.db"])
def test_in_process_backends_refuse_a_near_cache(url: str, tmp_path: Path) -> None:
    for opener in (State.from_url, AsyncState.from_url):
        with pytest.raises(Unsupported, match="is not a Redis server: cache= is for Redis"):
            opener(url.format(tmp=tmp_path), cache=True)
    with State.from_url("memory://", cache=False) as state:
        assert state.cache_stats() is None


def test_the_option_forms() -> None:
    assert NearCache.parse(None) is None
    assert NearCache.parse(False) is None
    assert NearCache.parse(True) == NearCache()
    assert NearCache.parse(50) == NearCache(max_items=50)
    config = NearCache(max_bytes=1 << 20, max_lag=0.5)
    assert NearCache.parse(config) is config


# -- writers in other threads and processes ----------------------------------------------


# The readers' lease: a hit may miss a write acknowledged less than this before it began.
LAG_S = 0.25


def check_reads(
    acks: list[tuple[str, int, float]],
    reads: list[tuple[str, float, int | None, Any]],
    feed: dict[tuple[str, int], Any],
) -> int:
    """Every read against the writer's acknowledgements and the feed; returns how many reads
    were checked against an earlier acknowledgement.

    ``acks``: (group, version, monotonic time the writer had its reply) for the item ``k``
    of each group; ``reads``: (group, monotonic time the read began, version or None,
    value); ``feed``: the value of every (group, version) as the change records have it. A
    read must return the value the feed recorded for its version, and a version no older
    than the last one acknowledged before it began, unless the first write it misses was
    acknowledged less than `LAG_S` (the readers' ``max_lag``) before. On the same host that
    is microseconds: the server writes the invalidation and the writer's reply in one pass of
    its loop, not always in that order (CI saw a read 6 us after the acknowledgement miss it,
    on Valkey 8.1 under load); the lease is the bound the README promises.
    """
    by_group: dict[str, tuple[list[float], list[int]]] = {}
    for group, version, at in sorted(acks, key=lambda a: a[2]):
        times, versions = by_group.setdefault(group, ([], []))
        times.append(at)
        versions.append(max(version, versions[-1] if versions else 0))
    checked = 0
    for group, began, version, value in reads:
        times, versions = by_group.get(group, ([], []))
        i = bisect.bisect_left(times, began)  # acks strictly before the read began
        floor = versions[i - 1] if i else 0
        if floor:
            checked += 1
        assert version is not None, (group, began)
        if version < floor:
            missed = times[bisect.bisect_right(versions, version)]  # the first newer ack
            assert began - missed < LAG_S, (
                f"{group}: read at {began:.6f} returned version {version}, but version "
                f"{floor} was acknowledged {(began - missed) * 1e3:.1f} ms before it began"
            )
        assert feed[(group, version)] == value, (group, version)
    return checked


def _feed(url: str, options: dict[str, Any], groups: list[str]) -> dict[tuple[str, int], Any]:
    """(group, version) -> value of the item ``k``, from the change feed."""
    with (
        State.from_url(url, **options) as state,
        state.watch(groups, since="0", block=0, with_values=True) as watch,
    ):
        found = {}
        for change in watch:
            if change is None:
                return found
            assert change.group is not None
            assert change.version is not None
            found[(change.group, change.version)] = change.value
    raise AssertionError("the feed ended")


def _write_for(
    url: str, options: dict[str, Any], groups: list[str], out: str, events: Any, hits: Any
) -> None:
    """The writer process: creates the item ``k`` of each group, then sets them round-robin
    while the reader reads, recording when each acknowledgement arrived. After each write it
    waits until the reader has had another hit, so that the reads of items just written are
    served from memory too, not only missed (a write drops its group's copies)."""
    created, go, done = events
    acks = []
    try:
        with State.from_url(url, **options) as state:
            for group in groups:
                version = state.set(group, "k", {"by": "writer", "n": 0})
                acks.append((group, version, time.monotonic()))
            created.set()
            assert go.wait(60)
            stop_at = time.monotonic() + 1.5
            n = 0
            while time.monotonic() < stop_at:
                n += 1
                group = groups[n % len(groups)]
                seen = hits.value
                version = state.set(group, "k", {"by": "writer", "n": n})
                acks.append((group, version, time.monotonic()))
                wait_until = time.monotonic() + WAIT_S
                while hits.value <= seen:
                    assert time.monotonic() < wait_until, "the reader has no hits"
                    time.sleep(0)
    finally:
        done.set()
    Path(out).write_text(json.dumps(acks))


def _read_while(
    url: str, options: dict[str, Any], groups: list[str], out: str, events: Any, hits: Any,
    mode: str,
) -> None:  # fmt: skip
    """The cached reader process: once the items exist, reads them round-robin until the
    writer is done, recording when each read began and what it returned. (A write drops
    its group's copies: the other groups' are hits meanwhile.)"""
    created, go, done = events
    reads: list[tuple[str, float, int | None, Any]] = []

    def record(group: str, began: float, item: Any) -> None:
        reads.append((group, began, item and item.version, item and item.value))

    assert created.wait(60)
    if mode == "sync":
        with State.from_url(url, cache=NearCache(max_lag=LAG_S), **options) as state:
            for group in groups:  # establishes tracking, then warms the items
                state.get_item(group, "k")
            go.set()
            cache = state._backend.tracking.cache  # its hit count, for the writer's pace
            n = 0
            while not done.is_set():
                n += 1
                group = groups[n % len(groups)]
                began = time.monotonic()
                record(group, began, state.get_item(group, "k"))
                hits.value = cache.hits
            stats = state.cache_stats()
    else:

        async def main() -> CacheStats | None:
            async with AsyncState.from_url(url, cache=NearCache(max_lag=LAG_S), **options) as state:
                for group in groups:
                    await state.get_item(group, "k")
                go.set()
                cache = state._backend.tracking.cache
                n = 0
                while not done.is_set():
                    n += 1
                    group = groups[n % len(groups)]
                    began = time.monotonic()
                    record(group, began, await state.get_item(group, "k"))
                    hits.value = cache.hits
                    if n % 64 == 0:
                        await asyncio.sleep(0)  # let the loop's own callbacks run too
                return state.cache_stats()

        stats = asyncio.run(main())
    assert stats is not None
    Path(out).write_text(json.dumps({"reads": reads, "stats": stats.__dict__}))


def cross_process(url: str, options: dict[str, Any], mode: str, tmp_path: Path) -> None:
    """A writer process and a cached reader process on ``url``; every read checked."""
    ctx = multiprocessing.get_context("spawn")
    events = (ctx.Event(), ctx.Event(), ctx.Event())
    hits = ctx.Value("q", 0, lock=False)  # the reader's hits so far
    groups = ["cross-a", "cross-b"]
    options = {**options, "record_values": True}
    acks_at, reads_at = str(tmp_path / "acks.json"), str(tmp_path / "reads.json")
    writer = ctx.Process(target=_write_for, args=(url, options, groups, acks_at, events, hits))
    reader = ctx.Process(
        target=_read_while, args=(url, options, groups, reads_at, events, hits, mode)
    )
    writer.start()
    reader.start()
    for process in (writer, reader):
        process.join(120)
        assert process.exitcode == 0, f"{process.name} exited with {process.exitcode}"
    acks = [tuple(a) for a in json.loads(Path(acks_at).read_text())]
    result = json.loads(Path(reads_at).read_text())
    reads = [tuple(r) for r in result["reads"]]
    checked = check_reads(acks, reads, _feed(url, options, groups))  # type: ignore[arg-type]
    reader_stats = result["stats"]
    assert checked > 100, checked
    assert reader_stats["hits"] > 100, reader_stats  # the reads did come from the cache
    assert reader_stats["invalidations"] > 100, reader_stats


@CACHED
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_reader_in_another_process_is_never_behind_an_acknowledged_write(
    target: Target, mode: str, tmp_path: Path
) -> None:
    cross_process(target.url, target.options, mode, tmp_path)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_reader_in_another_process_on_sentinel(
    watched: tuple[ServerProcess, ServerProcess, ServerProcess],  # noqa: F811
    mode: str,
    tmp_path: Path,
) -> None:
    cross_process(_url(watched[2]), {}, mode, tmp_path)


@CACHED
def test_threads_sharing_a_cached_state(target: Target) -> None:
    """Reader threads of one cached State, a writer thread on another State: the same check."""
    groups = ["threads-a", "threads-b"]
    options = {**target.options, "record_values": True}
    acks: list[tuple[str, int, float]] = []
    reads: list[tuple[str, float, int | None, Any]] = []
    done = threading.Event()
    errors: list[BaseException] = []
    with (
        State.from_url(target.url, cache=NearCache(max_lag=LAG_S), **options) as cached,
        State.from_url(target.url, **options) as writer,
    ):
        for group in groups:
            acks.append((group, writer.set(group, "k", 0), time.monotonic()))
            warm(cached, group, "k")

        def read() -> None:
            try:
                n = 0
                while not done.is_set():
                    n += 1
                    group = groups[n % 2]
                    began = time.monotonic()
                    item = cached.get_item(group, "k")
                    reads.append((group, began, item and item.version, item and item.value))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=read) for _ in range(4)]
        for thread in threads:
            thread.start()
        try:
            for n in range(1, 200):
                group = groups[n % 2]
                acks.append((group, writer.set(group, "k", n), time.monotonic()))
                hits = stats(cached).hits  # the readers get a hit in before the next write
                until(lambda: stats(cached).hits > hits, "a hit")  # noqa: B023
        finally:
            done.set()
            for thread in threads:
                thread.join(30)
        assert not errors, errors
        hits = stats(cached).hits
    assert check_reads(acks, reads, _feed(target.url, options, groups)) > 100
    assert hits > 100


# -- connection loss --------------------------------------------------------------------


@CACHED
def test_a_killed_tracking_connection_drops_the_cache(
    open_state: Opener, target: Target, servers: Servers
) -> None:
    state = open_state(cache=True)
    other = open_state()
    other.set("g", "k", 1)
    warm(state, "g", "k")
    flushes = stats(state).flushes
    admins = trackers(target, servers)
    assert kill_tracking(admins) >= 1
    other.set("g", "k", 2)  # its invalidation has nowhere to go
    assert state.get("g", "k") == 2
    assert stats(state).flushes == flushes + 1
    assert warm(state, "g", "k") == 2  # tracking is back: hits again
    other.set("g", "k", 3)
    assert state.get("g", "k") == 3
    for admin in admins:
        admin.close()


def test_a_cached_state_nobody_closed_is_collected(private_server: ServerProcess) -> None:
    """Its background thread holds it only weakly: collected, its tracking connection goes."""

    def tracking_clients() -> int:
        with private_server.client() as admin:
            listed = admin.execute_command("CLIENT", "LIST").decode().splitlines()
        return sum(" flags=t" in line for line in listed)

    state = State.from_url(private_server.url, cache=True)
    state.set("g", "k", 1)
    warm(state, "g", "k")
    assert tracking_clients() == 1
    del state
    gc.collect()
    until(lambda: tracking_clients() == 0, "the tracking connection is closed")


@pytest.fixture
def private_server(tmp_path: Path) -> Iterator[ServerProcess]:
    server = standalone(TEST_BINARY, REDIS_CONF, tmp_path / "server", *NO_PERSISTENCE)
    try:
        yield server
    finally:
        if server.proc is not None:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


def _scenario(mode: str, steps: Callable[[Any], Any], url: str, cache: Any = True) -> None:
    """Run ``steps(state)`` on a cached State, or on an AsyncState (``steps`` then gets a
    synchronous stand-in whose methods run on one event loop)."""
    if mode == "sync":
        with State.from_url(url, cache=cache) as state:
            steps(state)
        return
    loop = asyncio.new_event_loop()
    blocking = Blocking(AsyncState.from_url(url, cache=cache), loop)
    try:
        steps(blocking)
    finally:
        blocking.close()
        loop.close()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_restarted_server_drops_the_cache(private_server: ServerProcess, mode: str) -> None:
    def steps(state: Any) -> None:
        state.set("g", "k", 1)
        warm(state, "g", "k")
        private_server.stop()
        private_server.start()  # without persistence: the item is gone
        assert _eventually(lambda: state.get("g", "k")) is None
        assert stats(state).flushes == 1
        state.set("g", "k", 2)
        assert warm(state, "g", "k") == 2
        with private_server.client() as admin:  # FLUSHALL: a null invalidation
            admin.flushall()
        # The server writes the push in the same pass of its loop as the admin's reply, but may
        # write the reply first (Redis 7.0 writes the client queued last first): microseconds.
        assert _eventually(lambda: state.get("g", "k")) is None

    _scenario(mode, steps, private_server.url)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_hits_stop_when_the_server_stops_answering(
    private_server: ServerProcess, mode: str
) -> None:
    """The lease: a server that goes silent (SIGSTOP: no FIN, no RST) is not trusted for
    longer than max_lag; hits resume once it answers again."""

    def steps(state: Any) -> None:
        state.set("g", "k", 1)
        warm(state, "g", "k")
        assert private_server.proc is not None
        os.kill(private_server.proc.pid, signal.SIGSTOP)
        try:
            until(lambda: not serving(state), "the lease lapsed")
            # lapsed, not lost: the copy is kept, only not served (a lost connection is
            # given up after the socket timeout, 10 s, and drops everything)
            assert stats(state).flushes == 0
            assert stats(state).items == 1
        finally:
            os.kill(private_server.proc.pid, signal.SIGCONT)
        until(lambda: serving(state), "hits are served again")
        hits = stats(state).hits
        assert state.get("g", "k") == 1
        assert stats(state).hits == hits + 1  # the same copy, served again

    def serving(state: Any) -> bool:
        if hasattr(state, "pause"):
            state.pause(0.01)  # the event loop runs its keep-alive task meanwhile
        return stats(state).serving

    _scenario(mode, steps, private_server.url, NearCache(max_lag=0.3))


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_sentinel_failover_drops_the_cache(
    watched: tuple[ServerProcess, ServerProcess, ServerProcess],  # noqa: F811
    mode: str,
) -> None:
    _, replica, watcher = watched
    url = _url(watcher)

    def steps(state: Any) -> None:
        with State.from_url(url) as other:
            other.set("g", "k", 1)
            warm(state, "g", "k")
            _fail_over(watcher, to=replica)
            _has_replica(replica)  # the old primary is demoted: its clients were dropped
            _eventually(lambda: other.set("g", "k", 2))
            assert _eventually(lambda: state.get("g", "k")) == 2
            assert stats(state).flushes >= 1
            assert warm(state, "g", "k") == 2  # tracking on the new primary
            other.set("g", "k", 3)
            assert state.get("g", "k") == 3

    _scenario(mode, steps, url)


@pytest.fixture(scope="module")
def private_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = cluster(
        TEST_BINARY, CLUSTER_CONF, tmp_path_factory.mktemp("cache-cluster"), *NO_PERSISTENCE
    )
    try:
        yield c
    finally:
        c.stop()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_cluster_master_restart_and_a_slot_move_drop_the_cache(
    private_cluster: Cluster, mode: str
) -> None:
    c = private_cluster
    layout = KeyLayout(cluster=True)
    slot = key_slot(layout.data("g"))

    def steps(state: Any) -> None:
        with State.from_url(c.url) as other:
            other.set("g", "k", 1)
            warm(state, "g", "k")
            master = _master_of_slot(c, slot)
            master.stop()
            master.start()  # its slots are in its nodes.conf; its data is gone
            c.wait_ok()
            assert _eventually(lambda: state.get("g", "k")) is None
            flushes = stats(state).flushes
            assert flushes >= 1
            other.set("g", "k", 2)
            assert warm(state, "g", "k") == 2
            # another slot, empty, changes hands: the slot map is not what tracking set up
            moved = (slot + 1) % 16384
            owner = next(n for n in c.nodes[: c.masters] if n is not _master_of_slot(c, moved))
            with owner.client() as o:
                owner_id = o.execute_command("CLUSTER", "MYID").decode()
            _move_slot(c, moved, owner_id)

            def dropped() -> bool:
                if hasattr(state, "pause"):
                    state.pause(0.01)
                return stats(state).flushes > flushes

            until(dropped, "the slot map change dropped the cache")
            other.set("g", "k", 3)
            assert state.get("g", "k") == 3
            assert warm(state, "g", "k") == 3

    _scenario(mode, steps, c.url)


def test_a_lost_connection_is_not_silently_reopened_untracked(
    private_server: ServerProcess,
) -> None:
    """While tracking cannot be established (the server is gone), reads go to the server and
    nothing is cached; once it is back, tracking is established again by a read."""
    with State.from_url(private_server.url, cache=True, retries=0) as state:
        state.set("g", "k", 1)
        warm(state, "g", "k")
        private_server.stop()
        with pytest.raises(BackendUnavailable):
            state.get("g", "k")
        assert not stats(state).serving
        assert stats(state).items == 0
        private_server.start()
        assert _eventually(lambda: state.get("g", "k")) is None
        state.set("g", "k", 2)
        assert warm(state, "g", "k") == 2
