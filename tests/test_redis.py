"""What is specific to the Redis backends: the stored layout, scripts, interop, failures."""

from __future__ import annotations

import asyncio
import json
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from motia_state import AsyncState, BackendUnavailable, State, StateError
from motia_state.backends import embedded
from motia_state.connect import redact
from motia_state.layout import KeyLayout, key_slot

from .conftest import Servers, Target

pytestmark = pytest.mark.redis_only


def test_group_is_one_readable_hash(state: Any, target: Target) -> None:
    state.set("orders", "o1", {"total": 10, "items": []})
    state.set("orders", "o2", "two")
    layout = target.layout()
    with target.raw() as r:
        assert r.type(layout.data("orders")) == b"hash"
        assert r.hgetall(layout.data("orders")) == {
            b"o1": b'{"total":10,"items":[]}',
            b"o2": b'"two"',
        }
        assert not r.exists(layout.versions("orders"))  # version 1 is implicit, never stored
    state.set("orders", "o2", "two again")
    with target.raw() as r:
        assert r.hgetall(layout.versions("orders")) == {b"o2": b"2"}
        every_key = set(r.scan_iter(match=layout.scan_pattern())) | set(
            r.scan_iter(match=layout.meta_root + b"*")
        )
    assert every_key == {layout.data("orders"), layout.versions("orders"), layout.changes("orders")}


def test_a_recreated_item_continues_above_a_stale_version(state: Any, target: Target) -> None:
    state.set("g", "k", 1)
    state.set("g", "k", 2)
    layout = target.layout()
    with target.raw() as r:
        r.hdel(layout.data("g"), "k")  # someone else deletes the item, not its version
    assert state.set("g", "k", 3) == 3  # never version 1 again: watchers saw 1 and 2
    with target.raw() as r:
        r.hdel(layout.data("g"), "k")
    assert state.set_many("g", {"k": 5}) == 1
    assert state.get_item("g", "k").version == 4
    with target.raw() as r:
        r.hdel(layout.data("g"), "k")
        r.hset(layout.data("g"), "k", "6")  # written by another tool: no version recorded
    assert state.get_item("g", "k").version == 4  # the stale entry still counts
    assert state.set("g", "k", 7) == 5


def test_every_write_appends_a_change_record(state: Any, target: Target) -> None:
    state.set("g", "a", 1)
    state.set("g", "a", 2, version=1)
    state.set_many("g", {"b": 1, "c": 2})
    state.delete("g", "b")
    state.delete_many("g", ["c", "missing"])
    state.clear("g")
    with pytest.raises(StateError):
        state.set("g", "a", 3, version=7)  # refused writes leave no record
    with target.raw() as r:
        entries = r.xrange(target.layout().changes("g"))
    records = [
        (f[b"op"].decode(), f[b"group"].decode(), f[b"key"].decode(), int(f[b"version"]))
        for _, f in entries
    ]
    assert records == [
        ("set", "g", "a", 1),
        ("set", "g", "a", 2),
        ("set", "g", "b", 1),
        ("set", "g", "c", 1),
        ("delete", "g", "b", 2),
        ("delete", "g", "c", 2),
        ("clear", "g", "", 3),  # the group's new version floor
    ]
    stamps = [int(entry_id.split(b"-")[0]) for entry_id, _ in entries]
    assert stamps == sorted(stamps)
    assert stamps[0] > 1_700_000_000_000  # server time, in ms


def test_change_stream_is_trimmed(open_state: Any, target: Target) -> None:
    state = open_state(changes_maxlen=10)
    state.set_many("g", {f"k{i}": i for i in range(2000)})
    with target.raw() as r:
        length = r.xlen(target.layout().changes("g"))
    assert 10 <= length < 2000  # MAXLEN ~ trims whole stream nodes


def test_values_written_by_other_tools(state: Any, target: Target) -> None:
    layout = target.layout()
    with target.raw() as r:
        r.hset(layout.data("orders"), "o1", '{"from":"redis-cli"}')
        r.hset(layout.data("orders"), "bad", "not json")
    assert state.get("orders", "o1") == {"from": "redis-cli"}
    assert state.get_item("orders", "o1").version == 1  # unversioned: counts as written once
    assert state.set("orders", "o1", {"from": "engine"}, version=1) == 2
    with pytest.raises(StateError, match="'orders'/'bad': stored value is not JSON"):
        state.get("orders", "bad")
    assert state.set("orders", "bad", "fixed") == 2


def test_motia_v1_prefix_shares_its_hashes(open_state: Any, target: Target) -> None:
    prefix = target.options["prefix"] + "state:"
    with target.raw() as r:
        r.hset(prefix + "orders", "o1", json.dumps({"written": "by motia v1"}))
    state = open_state(prefix=prefix)
    assert state.items("orders") == {"o1": {"written": "by motia v1"}}
    state.set("orders", "o2", [1, 2])
    with target.raw() as r:
        assert r.hget(prefix + "orders", "o2") == b"[1,2]"


def test_scripts_reload_after_script_flush(state: Any, target: Target) -> None:
    state.set("g", "warm", 1)
    with target.raw() as r:
        r.script_flush()
    assert state.set("g", "k", 1) == 1
    with target.raw() as r:
        r.script_flush()
    # several script calls pipelined, all answered NOSCRIPT, all re-sent once
    assert state.set_many("g", {f"k{i}": i for i in range(3500)}) == 3500
    with target.raw() as r:
        r.script_flush()
    assert state.delete_many("g", [f"k{i}" for i in range(3500)]) == 3500
    with target.raw() as r:
        r.script_flush()
        r.function_flush()  # the engine keeps no FUNCTION library; flushing them changes nothing
    assert state.get_item("g", "warm").version == 1
    assert state.clear("g") == 2  # "warm" and "k"


def test_a_data_key_of_another_type_is_a_clear_error(state: Any, target: Target) -> None:
    with target.raw() as r:
        r.set(target.layout().data("v0"), "a motia v0 string")
    with pytest.raises(StateError, match="WRONGTYPE"):
        state.set("v0", "k", 1)
    with pytest.raises(StateError, match="WRONGTYPE"):
        state.get("v0", "k")


def test_list_groups_sees_only_data_hashes(state: Any, target: Target) -> None:
    layout = target.layout()
    with target.raw() as r:
        r.set(layout.data("a-string"), "x")  # not a hash: not a group
        r.set(layout.prefix[:-1] + b"other", "x")
    state.set("real", "k", 1)
    assert state.list_groups() == ["real"]


@pytest.mark.parametrize("api", ["sync", "async"])
def test_connection_refused_is_backend_unavailable_without_password(api: str) -> None:
    url = "redis://user:s3cret-pass@127.0.0.1:1/0"
    if api == "sync":
        state: Any = State.from_url(url)
        assert "s3cret" not in repr(state)
        with pytest.raises(BackendUnavailable) as info:
            state.get("g", "k")
    else:
        astate = AsyncState.from_url(url)
        assert "s3cret" not in repr(astate)
        with pytest.raises(BackendUnavailable) as info:
            asyncio.run(astate.get("g", "k"))
    assert "s3cret" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)


def test_redact() -> None:
    assert redact("redis://u:pw@h:1/0") == "redis://u:***@h:1/0"
    assert redact("rediss://:pw@h:1") == "rediss://:***@h:1"
    assert redact("unix:///tmp/s.sock?db=1&password=pw") == "unix:///tmp/s.sock?db=1&password=***"
    assert redact("redis://h:1") == "redis://h:1"


def test_survives_a_server_restart(servers: Servers, tmp_path: Path) -> None:
    binary = shutil.which("redis-server") or embedded.valkey_binary()
    server = servers.start(binary, f"restart-{tmp_path.name}")
    port = server.port
    with State.from_url(server.url) as state:
        state.set("g", "k", 1)
        server.stop()
        with pytest.raises(BackendUnavailable):
            state.get("g", "k")
        server2 = servers.start(binary, f"restart2-{tmp_path.name}", port=port)
        # a new process: empty data (no persistence here) and an empty script cache
        assert state.set("g", "k", 2) == 1
        assert state.get("g", "k") == 2
        # restarted while the client was idle: the dead socket is noticed before use
        server2.stop()
        server3 = servers.start(binary, f"restart3-{tmp_path.name}", port=port)
        time.sleep(1.1)  # past the health-check interval: a PING finds the dead socket
        assert state.set("g", "k", 3) == 1
        server3.stop()


def test_async_survives_a_server_restart(servers: Servers, tmp_path: Path) -> None:
    binary = shutil.which("redis-server") or embedded.valkey_binary()
    server = servers.start(binary, f"arestart-{tmp_path.name}")
    port = server.port

    async def main() -> None:
        async with AsyncState.from_url(server.url) as state:
            await state.set("g", "k", 1)
            server.stop()
            restarted = servers.start(binary, f"arestart2-{tmp_path.name}", port=port)
            await asyncio.sleep(1.1)  # past the health-check interval: a PING finds the dead socket
            assert await state.set("g", "k", 2) == 1
            assert await state.get("g", "k") == 2
            restarted.stop()

    asyncio.run(main())


def test_slot_of_every_group_key_is_the_data_keys_slot() -> None:
    layout = KeyLayout(cluster=True)
    for group in ["orders", "x{y}", "}y", "{y", "{}x", "a{}b{c}", "}{", "{{}}", "é" * 300]:
        keys = layout.group_keys(group)
        slots = {redis.crc.key_slot(k) for k in keys}
        assert slots == {key_slot(layout.data(group))}, group


def test_standalone_keeps_one_change_stream() -> None:
    layout = KeyLayout()
    assert layout.changes("a") == layout.changes("b") == b"motia:state#changes"
    assert KeyLayout(cluster=True).changes("a") != KeyLayout(cluster=True).changes("b")


def test_unix_socket_url(servers: Servers) -> None:
    socket = servers.embedded_socket()
    with State.from_url(f"unix://{socket}", prefix="unix-test:") as state:
        state.set("g", "k", "over a unix socket")
        assert state.get("g", "k") == "over a unix socket"
        assert state.clear("g") == 1


@pytest.mark.parametrize("protocol", [2, 3])
def test_both_resp_protocols(servers: Servers, protocol: int) -> None:
    """Replies are maps in RESP3 and flat arrays in RESP2; the engine reads both."""
    url, _ = servers.redis()
    with State.from_url(f"{url}?protocol={protocol}", prefix=f"resp{protocol}:") as state:
        state.set_many("g", {f"k{i}": {"i": i} for i in range(300)})
        assert state.items("g") == {f"k{i}": {"i": i} for i in range(300)}
        assert len(dict(state.iter_items("g", batch=50))) == 300
        assert state.get_item("g", "k1").version == 1
        assert state.get_many("g", ["k1", "nope"]) == [{"i": 1}, None]
        assert state.list_groups() == ["g"]
        assert state.clear("g") == 300


def test_batches_of_100k_items(state: Any) -> None:
    """Far past Lua's unpack limit and one call's size: chunked, every item accounted for."""
    n = 100_000
    assert state.set_many("big", {f"k{i}": i for i in range(n)}) == n
    keys = [f"k{i}" for i in range(n)] + ["missing"]
    values = state.get_many("big", keys)
    assert values[:n] == list(range(n))
    assert values[n] is None
    assert state.delete_many("big", keys) == n
    assert state.list_groups() == []
