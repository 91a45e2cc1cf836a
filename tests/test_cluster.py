"""Redis Cluster and replicated durability, on real nodes: failover, replicas, slots.

The contract, atomic, TTL and change-feed suites also run on the ``cluster`` target
(three masters, see conftest); this module covers what only a cluster with
replicas, or a master with a replica, can show.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from redis.exceptions import BusyLoadingError

from motia_state import (
    AsyncState,
    BackendUnavailable,
    InvalidInput,
    NotReplicated,
    Op,
    OutcomeUnknown,
    State,
    Unsupported,
    UpdateFailed,
    VersionConflict,
)
from motia_state.backends import embedded
from motia_state.layout import KeyLayout, key_slot
from motia_state.server import ServerProcess

from .conftest import CLUSTER_CONF, NO_PERSISTENCE, TEST_BINARY
from .servers import Cluster, cluster
from .test_faults import SLOW_LOAD, _answers, _wait_until


def test_replicated_writes_wait_for_the_replica(
    primary_and_replica: tuple[ServerProcess, ServerProcess],
) -> None:
    primary, replica = primary_and_replica
    with State.from_url(primary.url, durability="replicated", replica_timeout=0.5) as state:
        assert state.set("orders", "o1", {"n": 1}) == 1
        state.set_many("orders", {f"k{i}": i for i in range(2500)})  # three script calls
        assert state.increment("orders", "n") == 1
        with state.transaction() as tx:
            tx.delete("orders", "k1")
        with replica.client() as r:  # what returned is on the replica already
            assert r.hget(b"motia:state:orders", b"o1") == b'{"n":1}'
            assert r.hlen(b"motia:state:orders") == 2500 + 2 - 1
        assert replica.proc is not None
        os.kill(replica.proc.pid, signal.SIGSTOP)  # the replica stops confirming
        started = time.monotonic()
        with pytest.raises(NotReplicated, match="0 of 1 replica") as info:
            state.set("orders", "o2", 2)
        assert 0.4 < time.monotonic() - started < 5
        assert info.value.acknowledged == 0
        assert state.get("orders", "o2") == 2  # applied on the primary all the same
        os.kill(replica.proc.pid, signal.SIGCONT)


def test_replicated_writes_from_asyncstate(
    primary_and_replica: tuple[ServerProcess, ServerProcess],
) -> None:
    primary, replica = primary_and_replica

    async def main() -> None:
        async with AsyncState.from_url(primary.url, durability="replicated") as state:
            await asyncio.gather(*(state.set("g", f"k{i}", i) for i in range(200)))
            with replica.client() as r:
                assert r.hlen(b"motia:state:g") == 200
            state2 = AsyncState.from_url(primary.url, durability="replicated", min_replicas=2)
            with pytest.raises(NotReplicated, match="1 of 2"):
                await state2.set("g", "more", 1)
            await state2.aclose()

    asyncio.run(main())


@pytest.mark.parametrize(
    ("options", "error", "match"),
    [
        ({"durability": "always"}, InvalidInput, "durability"),
        ({"durability": "replicated", "min_replicas": 0}, InvalidInput, "min_replicas"),
        ({"durability": "replicated", "replica_timeout": -1}, InvalidInput, "ttl|seconds"),
    ],
)
def test_bad_durability_options(options: Any, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        State.from_url("redis://127.0.0.1:1", **options)


def test_in_process_backends_have_no_replicas() -> None:
    with pytest.raises(Unsupported, match="replicas"):
        State.from_url("memory://", durability="replicated")


@pytest.fixture(scope="module")
def replicated_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    nodes = cluster(
        TEST_BINARY,
        CLUSTER_CONF,
        tmp_path_factory.mktemp("replicated-cluster"),
        *NO_PERSISTENCE,
        masters=3,
        replicas=1,
    )
    try:
        nodes.wait_ok(replicas=1)
        yield nodes
    finally:
        nodes.stop()


def _groups_on_every_master(layout: KeyLayout, c: Cluster) -> list[str]:
    """One group name per master, found by the slots the masters serve."""
    with c.nodes[0].client() as probe:
        ranges = [(int(r[0]), int(r[1])) for r in probe.execute_command("CLUSTER", "SLOTS")]
    names: list[str] = []
    for low, high in sorted(ranges):
        n = 0
        while not low <= key_slot(layout.data(f"g{n}")) <= high:
            n += 1
        names.append(f"g{n}")
    return names


def test_groups_on_every_master_and_names_with_braces(replicated_cluster: Cluster) -> None:
    with State.from_url(replicated_cluster.url, prefix="spread:") as state:
        layout = KeyLayout("spread:", cluster=True)
        names = [*_groups_on_every_master(layout, replicated_cluster), "}y", "x{y}", "{t}a"]
        for name in names:
            state.set(name, "k", name, ttl=0.05)
            state.set(name, "stays", 1)
        assert state.list_groups() == sorted(names)  # SCAN on every master
        time.sleep(0.1)
        assert state.cleanup() == len(names)  # expiry sets found on every master
        with state.watch(since="0", block=0.3) as watch:  # streams found on every master
            seen = _drain_groups(watch)
        assert seen == set(names)
        with pytest.raises(InvalidInput, match="hash slots"), state.transaction() as tx:
            tx.set(names[0], "k", 1), tx.set(names[1], "k", 1)
        for name in names:
            state.clear(name)


def _externals(watch: Any, until: int, timeout: float = 15.0) -> list[tuple[Any, str]]:
    found: list[tuple[Any, str]] = []
    deadline = time.monotonic() + timeout
    while len(found) < until and time.monotonic() < deadline:
        change = next(watch)
        if change is not None and change.op == "external":
            found.append((change.group, change.event))
    return found


def test_the_bridge_listens_on_every_master(replicated_cluster: Cluster) -> None:
    layout = KeyLayout("bridged:", cluster=True)
    names = [*_groups_on_every_master(layout, replicated_cluster), "}y"]
    outside = _outside(replicated_cluster)
    with State.from_url(replicated_cluster.url, prefix="bridged:") as state:
        with state.watch(block=0.3) as watch:
            bridge = state.track()
            try:
                for name in names:
                    state.set(name, "engine", 1)  # in the feed already: never reported again
                    state.delete(name, "engine")
                    outside.hset(layout.data(name), "by-hand", "1")
                found = _externals(watch, until=len(names) + 1)
            finally:
                bridge.stop()
                outside.close()
        assert sorted(found, key=str) == sorted(
            [(None, "gap"), *((name, "hset") for name in names)], key=str
        )
        for name in names:
            state.clear(name)


def test_the_bridge_follows_a_slot_to_its_new_master(replicated_cluster: Cluster) -> None:
    layout = KeyLayout("moved:", cluster=True)
    group = _groups_on_every_master(layout, replicated_cluster)[0]
    slot = key_slot(layout.data(group))
    source = _master_of(replicated_cluster, layout.data(group))
    ids = replicated_cluster.node_ids()
    target = next(
        n
        for n in replicated_cluster.nodes
        if n is not source and n.proc is not None and _is_master(n)
    )
    outside = _outside(replicated_cluster)
    with State.from_url(replicated_cluster.url, prefix="moved:") as state:
        with state.watch(block=0.3) as watch:
            bridge = state.track()
            try:
                assert _externals(watch, until=1) == [(None, "gap")]
                _move_slot(replicated_cluster, slot, ids[target.port or 0])
                deadline = time.monotonic() + 20
                found: list[tuple[Any, str]] = []
                while (None, "gap") not in found and time.monotonic() < deadline:
                    found += _externals(watch, until=1, timeout=1)
                assert found == [(None, "gap")]  # listening again, on the slot's new master
                state.set(group, "engine", 1)  # markers now come from the new master
                outside.hset(layout.data(group), "by-hand", "1")
                assert _externals(watch, until=1) == [(group, "hset")]
            finally:
                bridge.stop()
                outside.close()
                _move_slot(replicated_cluster, slot, ids[source.port or 0], keys_from=target)
        state.clear(group)


def _outside(c: Cluster) -> redis.cluster.RedisCluster:
    """A plain cluster client: another tool editing the data."""
    node = next(n for n in c.nodes if n.proc is not None)
    return redis.cluster.RedisCluster(host=node.host, port=node.port)


def _is_master(node: ServerProcess) -> bool:
    with node.client() as c:
        return bool(c.execute_command("ROLE")[0] == b"master")


def _move_slot(
    c: Cluster, slot: int, owner_id: str, keys_from: ServerProcess | None = None
) -> None:
    """Give one slot to another master; its keys go along (MIGRATE), as redis-cli does."""
    ids = c.node_ids()
    owner = next(n for n in c.nodes if n.proc is not None and ids.get(n.port or 0) == owner_id)
    source = keys_from or _master_of_slot(c, slot)
    _begin_migration(slot, source, owner)
    _migrate_keys(slot, source, owner)
    _end_migration(c, slot, owner_id)


def _begin_migration(slot: int, source: ServerProcess, owner: ServerProcess) -> None:
    with source.client() as s, owner.client() as o:
        o.execute_command(
            "CLUSTER", "SETSLOT", slot, "IMPORTING", s.execute_command("CLUSTER", "MYID")
        )
        s.execute_command(
            "CLUSTER", "SETSLOT", slot, "MIGRATING", o.execute_command("CLUSTER", "MYID")
        )


def _migrate_keys(slot: int, source: ServerProcess, owner: ServerProcess) -> None:
    with source.client() as s:
        while keys := s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100):
            s.execute_command("MIGRATE", owner.host, owner.port, "", 0, 5000, "KEYS", *keys)


def _end_migration(c: Cluster, slot: int, owner_id: str) -> None:
    for node in c.nodes:  # replicas learn it from their masters
        if node.proc is not None and _is_master(node):
            with node.client() as n:
                n.execute_command("CLUSTER", "SETSLOT", slot, "NODE", owner_id)
    c.wait_ok()


def test_commands_follow_a_slot_while_it_migrates(replicated_cluster: Cluster) -> None:
    """During a migration the old owner answers ASK for keys it no longer has, and MOVED
    once the slot is gone; the engine follows both without losing or repeating a write."""
    group, slot, source, owner, owner_id = _migration(replicated_cluster, "migrating:")
    with State.from_url(replicated_cluster.url, prefix="migrating:") as state:
        state.set(group, "before", 1, ttl=600)  # data hash, expiries and stream exist
        _begin_migration(slot, source, owner)
        try:
            with ThreadPoolExecutor(1) as pool:
                _migrate_one_key(slot, source, owner)
                # a script on split keys is refused with TRYAGAIN; the engine keeps asking
                # (it needs the group's versions hash too, which exists nowhere yet, so it
                # passes only once the slot has moved)
                pending = pool.submit(state.increment, group, "before", 1)
                time.sleep(0.3)
                assert not pending.done()
                _migrate_keys(slot, source, owner)
                # every key across: the source answers ASK, the engine asks the new owner
                assert state.get(group, "before") == 1
                assert not pending.done()
                _end_migration(replicated_cluster, slot, owner_id)
                assert pending.result(timeout=10) == 2  # MOVED: the slot map is read again
        finally:
            _end_migration(replicated_cluster, slot, owner_id)
        assert state.set(group, "after", 1) == 1
        assert state.items(group) == {"before": 2, "after": 1}
        with state.watch(group, since="0", block=0.3) as watch:
            keys = [change.key for change in iter(lambda: next(watch), None)]
        assert keys == ["before", "before", "after"]  # each write recorded once
        state.clear(group)


def test_asyncstate_follows_a_slot_while_it_migrates(replicated_cluster: Cluster) -> None:
    """The same, through AsyncState's own cluster seam (auto-pipelines per master)."""
    group, slot, source, owner, owner_id = _migration(replicated_cluster, "amigrating:")

    async def scenario() -> None:
        async with AsyncState.from_url(replicated_cluster.url, prefix="amigrating:") as state:
            await state.set(group, "before", 1, ttl=600)
            _begin_migration(slot, source, owner)
            try:
                _migrate_one_key(slot, source, owner)
                pending = asyncio.ensure_future(state.increment(group, "before", 1))
                await asyncio.sleep(0.3)
                assert not pending.done()  # TRYAGAIN, asked again and again
                _migrate_keys(slot, source, owner)
                assert await state.get(group, "before") == 1  # ASK
                assert not pending.done()
                _end_migration(replicated_cluster, slot, owner_id)
                assert await asyncio.wait_for(pending, 10) == 2  # MOVED
            finally:
                _end_migration(replicated_cluster, slot, owner_id)
            assert await state.set(group, "after", 1) == 1
            assert await state.items(group) == {"before": 2, "after": 1}
            await state.clear(group)

    asyncio.run(scenario())


def _migration(c: Cluster, prefix: str) -> tuple[str, int, ServerProcess, ServerProcess, str]:
    """A group, its slot, the master that has it and another master to move it to (with
    that master's node id)."""
    layout = KeyLayout(prefix, cluster=True)
    group = _groups_on_every_master(layout, c)[1]
    source = _master_of(c, layout.data(group))
    owner = next(n for n in c.nodes if n is not source and n.proc is not None and _is_master(n))
    return group, key_slot(layout.data(group)), source, owner, c.node_ids()[owner.port or 0]


def _migrate_one_key(slot: int, source: ServerProcess, owner: ServerProcess) -> None:
    """One key across: the group's keys are split between the two masters."""
    with source.client() as s:
        keys = s.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
        s.execute_command("MIGRATE", owner.host, owner.port, "", 0, 5000, "KEYS", keys[0])


def test_a_state_closed_after_a_failed_write_reconnects(replicated_cluster: Cluster) -> None:
    """A write that timed out marks the slot map stale; closing the `State` then drops its
    cluster client. The next call must build a new client and ask for the slot map, not
    wait forever on the lock that guards both (it once did, in a worker thread, and the
    interpreter then hung at exit joining that thread)."""
    state = State.from_url(replicated_cluster.url, prefix="closed:", socket_timeout=0.3)
    state.set("g", "k", 1)
    master = _master_of(replicated_cluster, KeyLayout("closed:", cluster=True).data("g"))
    assert master.proc is not None
    os.kill(master.proc.pid, signal.SIGSTOP)  # well below cluster-node-timeout: no failover
    try:
        with pytest.raises(OutcomeUnknown):
            state.set("g", "k", 2)
    finally:
        os.kill(master.proc.pid, signal.SIGCONT)
    state.close()
    got: list[Any] = []
    caller = threading.Thread(target=lambda: got.append(state.get("g", "k")), daemon=True)
    caller.start()
    caller.join(30)
    assert got in ([1], [2]), "the call after close did not return"
    state.clear("g")
    state.close()


def _master_of_slot(c: Cluster, slot: int) -> ServerProcess:
    with c.nodes[0].client() as probe:
        for low, high, master, *_ in probe.execute_command("CLUSTER", "SLOTS"):
            if int(low) <= slot <= int(high):
                return next(n for n in c.nodes if n.port == int(master[1]))
    raise AssertionError("no master serves the slot")


def _drain_groups(watch: Any) -> set[str]:
    seen = set()
    for change in watch:
        if change is None:
            return seen
        seen.add(change.group)
    return seen


def test_failover_keeps_every_acknowledged_replicated_write(replicated_cluster: Cluster) -> None:
    """Kill a master mid-load: its replica takes over, the engine follows, nothing acked is lost."""
    url = replicated_cluster.url
    layout = KeyLayout("failover:", cluster=True)
    groups = _groups_on_every_master(layout, replicated_cluster)
    acked: dict[tuple[str, str], int] = {}
    failed = 0
    with (
        State.from_url(
            url, prefix="failover:", durability="replicated", replica_timeout=2.0
        ) as state,
        state.watch(block=0.3) as watch,
    ):
        bridge = state.track()  # listens on every master, the victim's too
        victim_group = groups[0]
        victim = _master_of(replicated_cluster, layout.data(victim_group))
        killed_at = None
        deadline = time.monotonic() + 60
        i = 0
        while time.monotonic() < deadline:
            group = groups[i % len(groups)]
            key = f"k{i}"
            try:
                state.set(group, key, i)
                acked[(group, key)] = i
            except (BackendUnavailable, NotReplicated):
                failed += 1
            i += 1
            if killed_at is None and i == 300:
                assert victim.proc is not None
                victim.proc.kill()  # SIGKILL: no goodbye to the cluster
                victim.proc.wait()
                victim.proc = None
                killed_at = time.monotonic()
            if killed_at is not None and time.monotonic() - killed_at > 3:
                try:  # the promoted replica serves the slot: the engine found it by itself
                    state.set(victim_group, "after", 1)
                    break
                except NotReplicated:
                    break  # written on the new master, which has no replica left to confirm
                except BackendUnavailable:
                    time.sleep(0.1)
        assert killed_at is not None
        assert time.monotonic() < deadline, "the engine never reached the promoted replica"
        assert state.get(victim_group, "after") == 1
        # every write the engine acknowledged is there, on every master including the new one
        for (group, key), value in acked.items():
            assert state.get(group, key) == value, (group, key)
        assert state.items(victim_group)  # reads of the failed-over slot work too
        # the bridge lost the victim, says so with a second gap record once it listens on
        # the promoted replica, and hears edits there
        outside = _outside(replicated_cluster)
        deadline = time.monotonic() + 30
        externals: list[tuple[Any, str]] = []
        while externals.count((None, "gap")) < 2 and time.monotonic() < deadline:
            externals += _externals(watch, until=1, timeout=0.5)
        outside.hset(layout.data(victim_group), "by-hand", "1")
        externals += _externals(watch, until=1)
        outside.close()
        bridge.stop()
        assert externals == [(None, "gap"), (None, "gap"), (victim_group, "hset")]
    assert len(acked) >= 300


def test_asyncstate_follows_a_failover(tmp_path: Path) -> None:
    """AsyncState's own seam, 16 writes in flight at a time, a master killed: the slot map
    goes stale on the lost connections, the seam asks again and reaches the promoted
    replica; every acknowledged replicated write is there. (A cluster of its own: the
    module's cluster has lost a master to the test above.)"""
    c = cluster(TEST_BINARY, CLUSTER_CONF, tmp_path, *NO_PERSISTENCE, masters=3, replicas=1)
    layout = KeyLayout("afailover:", cluster=True)
    acked: dict[tuple[str, str], int] = {}

    async def scenario() -> None:
        c.wait_ok(replicas=1)
        groups = _groups_on_every_master(layout, c)
        victim = _master_of(c, layout.data(groups[0]))
        options: dict[str, Any] = {"durability": "replicated", "replica_timeout": 2.0}
        async with AsyncState.from_url(c.url, prefix="afailover:", **options) as state:
            killed_at = None
            deadline = time.monotonic() + 60
            i = 0
            while time.monotonic() < deadline:
                batch = [(groups[n % len(groups)], f"k{n}", n) for n in range(i, i + 16)]
                results = await asyncio.gather(
                    *(state.set(g, k, v) for g, k, v in batch), return_exceptions=True
                )
                for (group, key, value), result in zip(batch, results, strict=True):
                    if isinstance(result, BaseException):
                        assert isinstance(result, (BackendUnavailable, NotReplicated)), result
                    else:
                        acked[(group, key)] = value
                i += 16
                if killed_at is None and i >= 320:
                    assert victim.proc is not None
                    victim.proc.kill()
                    victim.proc.wait()
                    victim.proc = None
                    killed_at = time.monotonic()
                if killed_at is not None and time.monotonic() - killed_at > 3:
                    try:
                        await state.set(groups[0], "after", 1)
                        break
                    except NotReplicated:
                        break  # on the new master, which has no replica left to confirm it
                    except BackendUnavailable:
                        await asyncio.sleep(0.1)
            assert killed_at is not None
            assert time.monotonic() < deadline, "the engine never reached the promoted replica"
            assert await state.get(groups[0], "after") == 1
            for (group, key), value in acked.items():
                assert await state.get(group, key) == value, (group, key)

    try:
        asyncio.run(scenario())
    finally:
        c.stop()
    assert len(acked) >= 320


def _master_of(c: Cluster, key: bytes) -> ServerProcess:
    return _master_of_slot(c, key_slot(key))


def test_a_cluster_url_names_nodes() -> None:
    with pytest.raises(InvalidInput, match="host:port"):
        State.from_url("redis+cluster://nohost")
    with pytest.raises(BackendUnavailable), State.from_url("redis+cluster://127.0.0.1:1") as s:
        s.get("g", "k")


def test_scripts_are_loaded_again_after_a_flush(replicated_cluster: Cluster) -> None:
    with State.from_url(replicated_cluster.url, prefix="flush:") as state:
        state.set("g", "k", 1)
        for node in replicated_cluster.nodes:
            if node.proc is not None:
                try:
                    with node.client() as c:
                        c.script_flush()
                except redis.RedisError:
                    pass
        assert state.set("g", "k", 2) == 2  # NOSCRIPT -> SCRIPT LOAD on every master -> retry
        state.clear("g")


def test_a_valkey_cluster_works_too(tmp_path: Path) -> None:
    """The cluster target runs on Debian's redis-server when present; Valkey 8.1 here."""
    nodes = cluster(embedded.valkey_binary(), CLUSTER_CONF, tmp_path, *NO_PERSISTENCE, masters=3)
    try:
        with State.from_url(nodes.url) as state:
            layout = KeyLayout(cluster=True)
            groups = _groups_on_every_master(layout, nodes)
            with state.watch(groups, since="0", block=0.3) as watch:
                for group in groups:
                    state.set(group, "k", {"g": group}, ttl=60)
                    state.increment(group, "n", 2**62)
                    state.update(group, "k", [{"type": "set", "path": "x", "value": []}])
                with state.transaction() as tx:
                    tx.delete(groups[0], "k")
                    tx.set(groups[0], "k", "again")
                assert _drain_groups(watch) == set(groups)
            assert state.list_groups() == sorted(groups)
            assert state.get(groups[1], "k") == {"g": groups[1], "x": []}
            assert state.get(groups[2], "n") == 2**62
            assert state.get_item(groups[0], "k").version == 4
            assert state.ttl(groups[1], "k") is not None
    finally:
        nodes.stop()


def test_a_master_restarted_between_two_calls_gets_the_next_write(tmp_path: Path) -> None:
    """The closed connection to the restarted master is found before the write leaves (the
    seams' idle peek), so the write goes to the restarted master instead of OutcomeUnknown;
    State and AsyncState."""
    c = cluster(TEST_BINARY, CLUSTER_CONF, tmp_path, *NO_PERSISTENCE, masters=3)
    layout = KeyLayout()
    try:
        master = _master_of(c, layout.data("g"))

        def restart() -> None:
            master.stop()
            master.start()  # its slots are in its nodes.conf; its data is gone (no persistence)
            c.wait_ok()

        with State.from_url(c.url) as state:
            assert state.set("g", "k", 1) == 1
            restart()
            assert state.set("g", "k", 2) == 1

        async def main() -> None:
            async with AsyncState.from_url(c.url) as state:
                assert await state.set("g", "a", 1) == 1
                restart()  # blocks the event loop, as a busy loop would
                assert await state.set("g", "a", 2) == 1

        asyncio.run(main())
    finally:
        c.stop()


def test_a_write_to_a_master_still_loading_waits_and_is_applied_once(tmp_path: Path) -> None:
    """A master restarting loads its data for a while (LOADING): the write it refuses never
    ran, so it waits and is applied once; State and AsyncState, one restart each."""
    c = cluster(TEST_BINARY, CLUSTER_CONF, tmp_path, *NO_PERSISTENCE, masters=3)
    layout = KeyLayout(cluster=True)
    try:
        master = _master_of(c, layout.data("g"))
        with master.client() as m:  # 3,000 keys in the group's slot, loaded again at restarts
            pipe = m.pipeline(transaction=False)
            for i in range(3000):
                pipe.set(b"{" + layout.data("g") + b"}:filler:%d" % i, i)
            pipe.execute()
        master.args += SLOW_LOAD

        def slow_restart() -> threading.Thread:
            with master.client() as m:
                m.save()
            master.stop()
            back = threading.Thread(target=master.start)
            back.start()
            _wait_until(_answers(master, lambda e: isinstance(e, BusyLoadingError)), "LOADING")
            return back

        with State.from_url(c.url) as state:
            assert state.set("g", "k", 1) == 1
            back = slow_restart()
            try:
                assert state.set("g", "k", 2) == 2
            finally:
                back.join()

        async def main() -> None:
            async with AsyncState.from_url(c.url) as state:
                assert await state.set("g", "a", 1) == 1
                back = slow_restart()
                try:
                    assert await state.set("g", "a", 2) == 2
                finally:
                    await asyncio.to_thread(back.join)

        asyncio.run(main())
        with master.client() as m:
            records = [(f[b"key"], f[b"version"]) for _, f in m.xrange(layout.changes("g"))]
        assert records == [(b"k", b"1"), (b"k", b"2"), (b"a", b"1"), (b"a", b"2")]
    finally:
        c.stop()


def test_a_write_its_condition_refused_is_not_reported_unreplicated(
    primary_and_replica: tuple[ServerProcess, ServerProcess],
) -> None:
    """Two replicas asked for, one there: a compare-and-set that lost, or an update op that
    cannot apply, wrote nothing, and says so, not NotReplicated ("written on the master"); a
    ttl() read waits for no replica."""
    primary, _ = primary_and_replica
    with State.from_url(primary.url) as plain:
        plain.set("g", "k", "text")
    options = {"durability": "replicated", "min_replicas": 2, "replica_timeout": 0.2}
    refused = [
        lambda s: s.set("g", "k", 1, version=99),
        lambda s: s.set("g", "k", 1, version=0),
        lambda s: s.delete("g", "k", version=99),
        lambda s: s.increment("g", "k"),
        lambda s: s.update("g", "k", [Op.increment("n", 1)]),
    ]
    with State.from_url(primary.url, **options) as state:
        for write in refused:
            with pytest.raises((VersionConflict, UpdateFailed)):
                write(state)
        with pytest.raises(VersionConflict), state.transaction() as tx:
            tx.set("g", "k", 1, version=99)
        assert state.ttl("g", "k") is None
        with pytest.raises(NotReplicated, match="1 of 2"):
            state.set("g", "other", 1)  # a write that was applied still says so

    async def main() -> None:
        async with AsyncState.from_url(primary.url, **options) as state:
            with pytest.raises(VersionConflict):
                await state.set("g", "k", 1, version=99)

    asyncio.run(main())
    with State.from_url(primary.url) as plain:
        assert plain.get_item("g", "k").version == 1  # type: ignore[union-attr]
