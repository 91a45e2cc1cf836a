"""The benchmark's server figures: which INFO commandstats lines count as the workload's own
top-level commands, how rounds add up, and what real servers count inside a script or EXEC.

No timing is asserted: only which commands are summed, and that the sums are of the right lines.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import redis
from benchmarks import report
from benchmarks.measure import (
    Result,
    Stats,
    add_stats,
    compare,
    nested_in,
    nested_names,
    read_commandstats,
    server_figures,
    top_level,
)

from motia_state import State, scripts

NESTED = frozenset({"exists", "zrangebyscore", "hset", "hget", "xadd"})


def _s(**lines: tuple[int, int]) -> Stats:
    return {name.replace("__", "|"): {"calls": c, "usec": u} for name, (c, u) in lines.items()}


def test_plain_commands_are_all_counted_and_measurement_commands_none() -> None:
    stats = _s(hset=(100, 150), hget=(50, 40), config__resetstat=(1, 90), info=(1, 12), ping=(2, 1))
    outer, inner = top_level(stats, NESTED)
    assert sorted(outer) == ["hget", "hset"]  # hset is one the scripts call, but none ran
    assert inner == {}
    figures = server_figures(stats, 100, NESTED)
    assert figures["calls"] == 150
    assert figures["usec"] == 190
    assert figures["usec_per_op"] == pytest.approx(1.9)
    assert figures["calls_per_op"] == pytest.approx(1.5)
    assert figures["usec_per_call"] == pytest.approx(190 / 150)


def test_commands_a_script_calls_are_inside_its_time_but_others_beside_it_count() -> None:
    # the engine's get_group: HGETALL pipelined with an EVALSHA whose script calls EXISTS
    stats = _s(evalsha=(10, 40), exists=(10, 5), zrangebyscore=(2, 3), hgetall=(10, 900))
    outer, inner = top_level(stats, NESTED)
    assert sorted(outer) == ["evalsha", "hgetall"]
    assert sorted(inner) == ["exists", "zrangebyscore"]
    figures = server_figures(stats, 1000, NESTED)
    assert figures["usec"] == 940  # not 948: the scripts' own calls are in their 40 usec
    assert figures["calls"] == 20
    assert figures["calls_per_op"] == pytest.approx(0.02)
    assert figures["commands"] == ["evalsha", "hgetall"]
    assert figures["inside"] == ["exists", "zrangebyscore"]


def test_fcall_and_eval_are_scripts_too() -> None:
    for script in ("fcall", "eval_ro", "evalsha_ro"):
        outer, inner = top_level(_s(**{script: (3, 30)}, hset=(3, 6)), NESTED)
        assert list(outer) == [script]
        assert list(inner) == ["hset"]


def test_commands_queued_in_a_transaction_are_inside_exec() -> None:
    stats = _s(multi=(20, 2), exec=(20, 400), hset=(100, 150), hincrby=(100, 120))
    outer, inner = top_level(stats, frozenset())
    assert sorted(outer) == ["exec", "multi"]
    assert sorted(inner) == ["hincrby", "hset"]
    assert server_figures(stats, 20, frozenset())["usec_per_op"] == pytest.approx(20.1)


def test_rounds_and_nodes_add_up() -> None:
    a = _s(evalsha=(2, 10), hset=(2, 3))
    b = _s(evalsha=(3, 20), hget=(1, 1))
    assert add_stats(a, b) == _s(evalsha=(5, 30), hset=(2, 3), hget=(1, 1))
    assert add_stats() == {}
    assert a == _s(evalsha=(2, 10), hset=(2, 3))  # the inputs are left alone


def test_nested_names_reads_the_scripts_calls(tmp_path: Path) -> None:
    (tmp_path / "include").mkdir()
    (tmp_path / "a.lua").write_text("local v = redis.call('HGET', KEYS[1], ARGV[1])\n")
    (tmp_path / "include" / "b.lua").write_text('redis.pcall( "ZMSCORE", KEYS[1])\n')
    assert nested_names(tmp_path) == {"hget", "zmscore", "publish", "spublish"}
    shipped = nested_names(Path(scripts.lua_dir()))
    assert {"hset", "xadd", "exists", "hget"} <= shipped
    # what the engine sends itself beside its scripts must not be among what they call,
    # else its server time would be left out (top_level's one assumption)
    assert not shipped & {"hgetall", "hkeys", "scan", "evalsha", "xread", "wait"}
    # ... except HVALS (get_group; clear.lua calls it too) and HSCAN (iter_items; query.lua
    # calls it too): each one's workload names its one script
    assert {"hvals", "hscan"} <= shipped
    assert "hscan" not in nested_in([scripts.load("expired_among").text])
    reads = nested_in([scripts.load("expired_keys").text])
    assert "hvals" not in reads
    assert "zrangebyscore" in reads
    assert sorted(top_level(_s(evalsha=(1, 4), hvals=(1, 90), zrangebyscore=(1, 2)), reads)[0]) == [
        "evalsha",
        "hvals",
    ]


class FakeServer:
    """Stands in for a redis-py client: commandstats that grow by ``per_round`` each round."""

    def __init__(self, per_round: Stats) -> None:
        self.per_round = per_round
        self.resets = 0
        self.reads = 0

    def config_resetstat(self) -> None:
        self.resets += 1

    def info(self, section: str) -> dict[str, Any]:
        assert section == "commandstats"
        self.reads += 1
        return {f"cmdstat_{n}": {**s, "usec_per_call": 0.0} for n, s in self.per_round.items()}


def test_compare_accumulates_each_implementations_rounds_on_its_own_servers() -> None:
    engine = FakeServer(_s(evalsha=(10, 200), hset=(10, 30), config__resetstat=(1, 50)))
    node_a, node_b = FakeServer(_s(hset=(10, 20))), FakeServer(_s(hset=(10, 40)))
    results = compare(
        "set",
        {},
        {"engine": lambda lat: 10, "raw": lambda lat: (10, 0.01), "file": lambda lat: 10},
        rounds=3,
        warmup=1,
        servers={"engine": [engine], "raw": [node_a, node_b], "file": []},
        nested=NESTED,
    )
    by = {r.impl: r for r in results}
    assert engine.resets == engine.reads == 3  # timed rounds only, not the warm-up
    assert node_a.resets == node_b.reads == 3
    srv = by["engine"].server
    assert srv is not None
    assert (srv["ops"], srv["calls"], srv["usec"]) == (30, 30, 600)
    assert srv["usec_per_op"] == pytest.approx(20.0)
    assert srv["rounds_usec_per_op"] == pytest.approx([20.0] * 3)
    assert by["raw"].server_usec_per_op == pytest.approx(6.0)  # both nodes: (20 + 40) / 10
    assert by["raw"].server["calls_per_op"] == pytest.approx(2.0)  # type: ignore[index]
    assert by["file"].server is None
    assert "server" in by["engine"].to_json()


def _result(workload: str, impl: str, rate: float, usec: float | None, **params: Any) -> Result:
    server = None if usec is None else {"usec_per_op": usec}
    return Result(workload, impl, {"value_bytes": 200, **params}, [rate], server=server)


def test_goals_are_engine_over_baseline_with_their_targets() -> None:
    results = [
        _result("set", "engine", 110, 20.0, items=100),
        _result("set", "redis-py", 100, 1.5, items=100),
        _result("set_many", "engine", 140, 2.0),
        _result("set_many", "redis-py", 100, 1.0),
        _result("set x64 tasks", "engine async", 300, 21.0),
        _result("set x64 tasks", "engine sync serial", 100, 20.0),
        _result("get_group", "engine", 95, 0.2, items=10),
        _result("get_group", report.LIMIT, 100, 0.1, items=10),
        _result("get_group", "engine", 50, 0.2, items=10, other_keys=1000),
        _result("get_group", "engine", 80, 0.3, items=100),
        _result("get_group", report.LIMIT, 100, 0.1, items=100),
    ]
    rows = {r["target"].split(" /")[0]: r for r in report.goals(results, 10, 100)}
    assert list(rows) == [
        "set serial",
        "set_many",
        "AsyncState set, 64 tasks",
        "get_group of 10 items",
        "get_group of 100 items",
    ]
    assert [r["goal"] for r in rows.values()] == [1.0, 1.5, 3.0, 0.9, 0.9]
    assert [r["met"] for r in rows.values()] == [True, False, True, True, False]
    assert rows["get_group of 10 items"]["measured"] == pytest.approx(0.95)  # not the 1000 keys
    assert rows["set serial"]["server_usec_per_op"] == {"engine": 20.0, "baseline": 1.5}
    # a run without a baseline: not measured, not a miss
    alone = report.goals(results[:1], 10, 100)
    assert alone[0]["measured"] is None
    assert alone[0]["met"] is None
    # the near cache's ratio: listed once its workload ran, against its goal of 20x
    name, cached, uncached = report.NEAR_CACHE_GET
    more = [*results, _result(name, cached, 300, 0.0), _result(name, uncached, 100, 9.0)]
    last = report.goals(more, 10, 100)[-1]
    assert last["target"] == "near cache: cached get / uncached get"
    assert last["measured"] == pytest.approx(3.0)
    assert last["goal"] == 20.0
    assert last["met"] is False


def test_the_server_figures_formatting() -> None:
    assert [report.fig(x) for x in (1234.5, 12.34, 1.234, 0.1234, 0.0000212, None)] == [
        "1,234",
        "12.3",
        "1.23",
        "0.123",
        "2.1e-05",
        "-",
    ]
    assert report.server_note(_result("set", "engine", 1, 7.08)) == " · 7.08 us srv"
    assert report.server_note(_result("set", "file", 1, None)) == ""


# -- what real servers do ------------------------------------------------------------------


@pytest.mark.parametrize("which", ["redis", "embedded valkey"])
def test_servers_count_a_scripts_calls_on_their_own_lines_and_top_level_leaves_them_out(
    servers: Any, which: str
) -> None:
    """Redis 7.0 and Valkey 8.1 count what EVALSHA and EXEC run inside as calls of their own,
    so summing every line would count that time twice; top_level sums the outer lines only."""
    if which == "redis":
        client = redis.Redis.from_url(servers.redis()[0])
    else:
        client = redis.Redis(unix_socket_path=servers.embedded_socket())
    key = f"bench-test-{uuid.uuid4().hex[:8]}"
    try:
        sha = client.script_load("redis.call('HSET', KEYS[1], 'a', ARGV[1]) return 1")
        client.config_resetstat()
        for _ in range(5):
            client.evalsha(sha, 1, key, "v")
        stats = read_commandstats(client)
        assert stats["hset"]["calls"] == 5  # counted though no client sent an HSET
        assert stats["evalsha"]["calls"] == 5
        figures = server_figures(stats, 5, frozenset({"hset"}))
        assert figures["commands"] == ["evalsha"]
        assert figures["usec"] == stats["evalsha"]["usec"]

        client.config_resetstat()
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, "b", "1")
        pipe.hincrby(key, "n", 1)
        pipe.execute()
        stats = read_commandstats(client)
        assert stats["hset"]["calls"] == stats["hincrby"]["calls"] == 1
        figures = server_figures(stats, 1, frozenset())
        assert figures["commands"] == ["exec", "multi"]
        assert figures["calls"] == 2
    finally:
        client.delete(key)
        client.close()


def test_the_engines_get_group_counts_its_hvals_and_its_script(servers: Any) -> None:
    url = servers.redis()[0]
    client = redis.Redis.from_url(url)
    with State.from_url(url, prefix=f"bench-test-{uuid.uuid4().hex[:8]}:") as state:
        try:
            state.set_many("g", {f"k{i}": {"i": i} for i in range(20)})
            state.get_group("g")  # scripts loaded
            client.config_resetstat()
            assert len(state.get_group("g")) == 20
            reads = nested_in([scripts.load("expired_keys").text])  # as its workload does
            figures = server_figures(read_commandstats(client), 20, reads)
            assert figures["commands"] == ["evalsha", "hvals"]
            assert "zrangebyscore" in figures["inside"]  # expired_keys.lua's, in its time
            assert figures["calls_per_op"] == pytest.approx(2 / 20)
        finally:
            state.clear("g")
            client.close()
