"""A process that exits with everything still open exits promptly.

Steps often never close their `State`: the background sweeper, a subscription, an
open watch, the keyspace bridge and an ``embedded://`` server are all left running
here, with threads busy writing, and the interpreter must still get out in moments
(daemon threads, pinned pool connections released by ``__del__``, the embedded
server saved and stopped at exit). Each case runs in a fresh process, several times,
because a shutdown race shows up only now and then.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import Servers

RUNS = 4
EXIT_WITHIN_S = 30

SYNC = """
import sys, threading, time
from motia_state import State

url, data_dir = sys.argv[1], sys.argv[2]
state = State.from_url(url, cleanup_interval=0.01)
state.set("g", "k", 1, ttl=0.02)  # starts the background sweeper
state.on_change("g", lambda change: None)
watch = state.watch("g", since="0", block=0.05)
next(watch)
state.track()

def busy() -> None:
    while True:
        state.set("g", f"k{time.monotonic_ns() % 50}", 1, ttl=0.01)

for _ in range(3):
    threading.Thread(target=busy, daemon=True).start()
local = State.from_url(f"embedded://{data_dir}", cleanup_interval=0.01)
local.set("g", "k", 1, ttl=0.01)
time.sleep(0.3)
print("leaving", flush=True)
"""

ASYNC = """
import asyncio, sys
from motia_state import AsyncState

async def main(url: str, data_dir: str) -> None:
    state = AsyncState.from_url(url, cleanup_interval=0.01)
    await state.set("g", "k", 1, ttl=0.02)
    await state.on_change("g", lambda change: None)
    watch = await state.watch("g", since="0", block=0.05)
    await watch.__anext__()
    local = AsyncState.from_url(f"embedded://{data_dir}", cleanup_interval=0.01)
    await local.set("g", "k", 1, ttl=0.01)
    for n in range(50):
        asyncio.ensure_future(state.set("g", f"k{n}", n, ttl=0.01))
    await asyncio.sleep(0.3)
    print("leaving", flush=True)

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


@pytest.mark.parametrize("script", [SYNC, ASYNC], ids=["State", "AsyncState"])
def test_a_process_leaving_everything_open_exits_promptly(
    servers: Servers, tmp_path: Path, script: str
) -> None:
    url, _ = servers.redis()
    path = tmp_path / "leave_open.py"
    path.write_text(textwrap.dedent(script))
    for run in range(RUNS):
        data_dir = tmp_path / f"embedded{run}"
        try:
            done = subprocess.run(
                [sys.executable, str(path), url, str(data_dir)],
                capture_output=True,
                text=True,
                timeout=EXIT_WITHIN_S,
            )
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(f"run {run}: still running after {EXIT_WITHIN_S} s") from exc
        assert done.returncode == 0, done.stderr[-3000:]
        assert done.stdout == "leaving\n"
        assert "Traceback" not in done.stderr, done.stderr[-3000:]
        # the embedded server was stopped at exit (its socket is gone) and saved its data
        assert not (data_dir / "valkey.sock").exists()
        assert (data_dir / "appendonlydir").is_dir()
