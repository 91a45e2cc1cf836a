"""The benchmark harness runs end to end at smoke size and writes well-formed results.

No timing is asserted: only that every workload ran and every figure is there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_quick_benchmark_writes_results(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    doc = json.loads((tmp_path / "latest.json").read_text())
    assert doc["sizes"] == "quick"
    assert doc["machine"]["cores"] >= 1
    workloads = {(r["workload"], r["impl"]) for r in doc["results"]}
    for expected in [
        ("get", "engine"),
        ("get", "redis-py"),
        ("set", "engine"),
        ("set", "redis-py"),
        ("get x64 tasks", "engine async"),
        ("set x64 tasks", "engine sync serial"),
        ("set_many", "engine"),
        ("set_many", "redis-py"),
        ("get_group", "engine"),
        ("iter_items", "redis-py"),
        ("increment", "engine"),
        ("update (2 ops)", "redis-py"),
        ("transaction of 10 ops", "engine"),
        ("increment, 4 processes", "one hot key"),
        ("update, 4 processes", "4 keys"),
        ("set, TTL or not", "ttl=3600"),
        ("get, TTL or not", "no TTL"),
        ("default install: set", "file"),
        ("default install: get", "embedded"),
        ("default install: set", "sqlite"),
        ("default install: get", "sqlite3 (raw)"),
        ("get, near cache", "cached"),
        ("get, near cache", "uncached"),
        ("inspector: one item", "GET /api/item"),
        ("inspector: a page of 50 rows", "redis-py HSCAN + orjson"),
    ]:
        assert expected in workloads
    assert ("get_group", "limit (HVALS + orjson.loads per value)") in workloads
    for r in doc["results"]:
        assert len(r["ops_per_s"]) == 2
        assert all(x > 0 for x in r["ops_per_s"])
        assert r["median"] > 0
        if r["impl"] in ("file", "sqlite", "sqlite (normal)", "sqlite3 (raw)"):  # no server
            assert r["server"] is None
            continue
        if (r["workload"], r["impl"]) == ("get, near cache", "cached"):
            assert r["server"]["calls_per_op"] < 0.01, r  # hits: at most a lease PING now and then
            continue
        # the server's own time over the timed rounds, on every server-backed result
        assert r["server"]["ops"] > 0, r
        assert r["server"]["calls_per_op"] > 0, r
        assert r["server"]["usec_per_op"] is not None, r
        assert len(r["server"]["rounds_usec_per_op"]) == 2
    engine_set = next(r for r in doc["results"] if (r["workload"], r["impl"]) == ("set", "engine"))
    assert engine_set["server"]["commands"] == ["evalsha"]  # its script's HSET etc. not again
    assert [g["goal"] for g in doc["goals"]] == [1.0, 1.5, 3.0, 0.9, 0.9, 20.0]
    assert all(g["measured"] is not None for g in doc["goals"])
    assert doc["sweep"]["removed"] == doc["sweep"]["items"] > 0
    assert doc["sweep"]["longest_call_us"] > 0
    exact = doc["exact"]
    assert exact["increment counted"] == exact["update counted"] == exact["hot key ops"] > 0
    assert doc["memory"]["engine_bytes_per_item"] > 0
    assert doc["memory"]["motia_v0_bytes_per_item"] > 0
    assert doc["targets"]
    assert all("met" in t for t in doc["targets"])
    png = (tmp_path / "latest.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    assert len(png) > 10_000
    assert "targets (ratios measured within this run)" in result.stdout
    assert " us srv" in result.stdout
    last = result.stdout.rstrip().splitlines()[-1]
    assert last.startswith("  near cache: cached get")  # the goals come last
