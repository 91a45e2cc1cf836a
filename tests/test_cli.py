"""The installed ``motia-state`` command, run as a user runs it."""

from __future__ import annotations

import os
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
        [EXE, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("created order-") == 4
    assert out.count("payment of") == 4
    assert out.count("a racing worker was refused") == 4
    assert "'revenue': 378.97" in out
    assert "groups now: ['orders', 'payments', 'reports', 'stats']" in out
    assert "'paid': 4" in out
    if url.startswith("file://") or not url:
        state_url = url or "embedded://.motia"
        with State.from_url(state_url.replace("://.", f"://{tmp_path}/.", 1)) as state:
            assert len(state.get_group("orders")) == 4
            assert all(o["status"] == "paid" for o in state.get_group("orders"))


def test_unreachable_backend_is_one_line_and_exit_4(tmp_path: Path) -> None:
    env = {**os.environ, "MOTIA_STATE_URL": "redis://:hunter2@127.0.0.1:1/0"}
    result = subprocess.run(
        [EXE, "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 4
    assert "Traceback" not in result.stderr
    assert "hunter2" not in result.stderr + result.stdout
    assert result.stderr.startswith("error: ")
