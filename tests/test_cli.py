"""The installed ``motia-state`` command, run as a user runs it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from motia_state import State

EXE = shutil.which("motia-state") or str(Path(sys.executable).parent / "motia-state")


@pytest.mark.parametrize("url", ["", "memory://", "file://.motia/motia.state.json"])
def test_demo_runs_the_order_workflow(tmp_path: Path, url: str) -> None:
    env = {**os.environ, "MOTIA_STATE_URL": url}
    result = subprocess.run(
        [EXE, "demo", "--keep"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("created order-") == 4
    assert out.count("payment of") == 4
    assert out.count("a racing worker was refused") == 4
    # exactly once: the crashed step's retry counts once; the join is released once
    assert "step crashed: worker killed after paying" in out
    assert "paid_orders went 4 -> 5, once" in out
    assert out.count("releases the join") == 1
    if not url:  # the embedded server has the feed: the event was emitted once
        assert "order.paid events in the feed: 1, for a step that ran twice" in out
    assert "4 order(s), 5 paid, revenue 420.97" in out
    # the demo's own namespace: a prefix of its own on a server, groups of its own elsewhere
    found = re.search(
        r"writes only (?:under the prefix '(motia:demo:\w+:)'|in the groups (\S+)\*)", out
    )
    assert found is not None, out
    prefix, ns = found.group(1) or "motia:state:", found.group(2) or ""
    assert (
        "groups now: "
        + ", ".join(ns + g for g in ("joins", "orders", "payments", "reports", "stats"))
        in out
    )
    assert ("motia:demo:" in prefix) == (url == ""), out  # the default here: the embedded server
    if url.startswith("file://") or not url:
        state_url = url or "embedded://.motia"
        options = {"prefix": prefix} if prefix != "motia:state:" else {}
        with State.from_url(state_url.replace("://.", f"://{tmp_path}/.", 1), **options) as state:
            orders = state.get_group(ns + "orders")
            assert len(orders) == 4
            assert all(o["status"] == "paid" for o in orders)


def test_unreachable_backend_is_one_line_and_exit_4(tmp_path: Path) -> None:
    env = {**os.environ, "MOTIA_STATE_URL": "redis://:hunter2@127.0.0.1:1/0"}
    result = subprocess.run(
        [EXE, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: ")
