"""The before/after comparer runs end to end in its quickest form and reports in shape.

No timing is asserted: only that both sides ran from their own trees and every figure is there.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_compare_head_with_itself(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.compare",
            "--base",
            "HEAD",
            "--quick",
            "--rounds",
            "1",
            "--only",
            "get_group",
            "--out",
            str(tmp_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    # each side imported the engine and its Lua scripts from its own tree
    where = dict(
        re.findall(r"^  (base|head): motia_state from (.+?), lua from", result.stdout, re.M)
    )
    base_engine = Path(where["base"])
    assert base_engine.parts[-3:] == ("engine", "motia_state", "__init__.py")
    head_engine = Path(where["head"])  # a copy of the working tree taken at the start
    assert head_engine.parts[-3:] == ("engine", "motia_state", "__init__.py")
    assert head_engine.parents[3] == base_engine.parents[3] != ROOT
    assert f"lua from {base_engine.parents[2] / 'lua'}" in result.stdout
    assert f"lua from {head_engine.parents[2] / 'lua'}" in result.stdout
    # and the base checkout is gone again, from disk and from git's list of worktrees
    base_tree = base_engine.parents[2]
    assert not base_tree.exists()
    worktrees = subprocess.run(
        ["git", "worktree", "list", "--porcelain"], cwd=ROOT, capture_output=True, text=True
    ).stdout
    assert str(base_tree) not in worktrees
    assert not base_tree.parent.exists()  # nor the copy of the working tree beside it

    doc = json.loads((tmp_path / "compare.json").read_text())
    assert doc["sizes"] == "quick"
    assert doc["rounds"] == 1
    assert doc["base"]["rev"] == "HEAD"
    assert len(doc["base"]["commit"]) == 40
    assert [w["workload"] for w in doc["workloads"]] == ["get_group"]
    row = doc["workloads"][0]
    for side in ("base", "head"):
        figures = row[side]
        assert len(figures["rates"]) == 1
        assert len(figures["rounds"][0]["slice_rates"]) == doc["slices_per_round"] == 2
        assert figures["median"] > 0
        assert figures["server_usec_per_call"] > 0
        assert figures["calls_per_op"] > 0
        assert figures["server_cpu_usec_per_op"] is not None
        assert "evalsha" in figures["commands"]
    assert row["ratio"] > 0
    assert row["ratio_quartiles"][0] <= row["ratio"] <= row["ratio_quartiles"][1]
    assert row["ratio_of_medians"] > 0
    assert isinstance(row["slower"], bool)
    assert doc["slower"] == (["get_group"] if row["slower"] else [])

    table = (tmp_path / "compare.md").read_text()
    assert "| workload | params | base /s | head /s | head/base |" in table
    assert re.search(r"^\| get_group \| 500 items", table, re.M)
    assert table in result.stdout
