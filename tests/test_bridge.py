"""The keyspace bridge: edits made outside the engine become ``external`` feed records."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from motia_state import AsyncState, Bridge, PermissionDenied, State, StateError, Unsupported
from motia_state.backends import embedded

from .conftest import REDIS_CONF, Servers, Target, settle
from .servers import standalone

pytestmark = pytest.mark.redis_only


REDIS_CLI = shutil.which("redis-cli")
EXE = str(Path(os.environ.get("VIRTUAL_ENV", ".venv")) / "bin" / "motia-state")


def cli(target: Target, *command: str) -> None:
    """Run a command through the real ``redis-cli``, as an operator would."""
    assert REDIS_CLI is not None, "redis-cli comes with Debian's redis-server package"
    assert target.raw_url is not None
    if target.name == "cluster":  # follow MOVED to the group's master
        host, _, port = target.url[len("redis+cluster://") :].split(",")[0].rpartition(":")
        where = ["-c", "-h", host, "-p", port]
    elif target.raw_url.startswith("unix://"):
        where = ["-s", target.raw_url[len("unix://") :]]
    else:
        where = ["-u", target.raw_url]
    subprocess.run([REDIS_CLI, *where, *command], check=True, capture_output=True, timeout=30)


def externals(watch: Any, until: int, timeout: float = 10.0) -> list[tuple[Any, ...]]:
    """(group, event) of external records in the order they were written, until ``until`` of
    them arrived (or time ran out). On Cluster the gap record is in a stream of its own,
    read in its own turn, so the records are put in id (time) order."""
    found: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(found) < until and time.monotonic() < deadline:
        change = next(watch)
        if change is not None and change.op == "external":
            found.append(change)
    found.sort(key=lambda c: tuple(map(int, c.id.split("-"))))
    return [(change.group, change.event) for change in found]


def test_edits_outside_the_engine_are_recorded_and_engine_writes_are_not(
    state: Any, target: Target
) -> None:
    data = target.layout().data("orders").decode()
    state.set("orders", "keep", 1)
    with state.watch(block=0.2) as watch:
        bridge = state.track()
        try:
            assert set("Khgxe") <= set(bridge.flags)
            # the engine's own writes, of every kind: already in the feed, never twice
            state.set("orders", "o1", {"n": 1})
            state.update("orders", "o1", [{"type": "increment", "path": "n", "by": 1}])
            state.set_many("orders", {"o2": 2, "o3": 3})
            state.delete("orders", "o2")
            state.delete_many("orders", ["o3"])
            with state.transaction() as tx:
                tx.set("orders", "o4", 4)
                tx.delete("orders", "o4")
            state.set("temp", "t", 1, ttl=0.05)
            settle(state, 0.1)
            state.cleanup()
            state.set("scratch", "s", 1)
            state.clear("scratch")
            # somebody else's edits with redis-cli
            cli(target, "HSET", data, "manual", '"by hand"')
            cli(target, "HDEL", data, "manual")
            cli(target, "PEXPIRE", data, "300")
            found = externals(watch, until=5)
        finally:
            bridge.stop()
    assert found == [
        (None, "gap"),  # the bridge started listening: earlier external edits are unknown
        ("orders", "hset"),
        ("orders", "hdel"),
        ("orders", "expire"),
        ("orders", "expired"),  # the server removed the hash: reported, though in no script
    ]


def test_the_bridge_outlives_a_server_restart_and_says_what_it_may_have_missed(
    tmp_path: Path,
) -> None:
    binary = shutil.which("redis-server") or embedded.valkey_binary()
    server = standalone(binary, REDIS_CONF, tmp_path / "one")
    port = server.port
    state = State.from_url(server.url)
    try:
        bridge = state.track()
        with server.client() as r:
            r.hset("motia:state:g", "a", "1")
        server.stop()
        server = standalone(binary, REDIS_CONF, tmp_path / "one", port=port)
        deadline = time.monotonic() + 20
        while not bridge.listening.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert bridge.listening.is_set()
        with server.client() as r:
            r.hset("motia:state:g", "b", "1")
        with state.watch(since="0", block=0.3) as watch:
            found = externals(watch, until=4)
        bridge.stop()
    finally:
        state.close()
        server.stop()
    # the feed itself survived (AOF; a clean shutdown writes it out); the bridge saw nothing
    # while the server was down and says so with a second gap record
    assert found == [(None, "gap"), ("g", "hset"), (None, "gap"), ("g", "hset")]


def test_a_server_that_refuses_config_gets_a_clear_message(tmp_path: Path) -> None:
    binary = shutil.which("redis-server") or embedded.valkey_binary()
    server = standalone(binary, REDIS_CONF, tmp_path / "locked", "--rename-command", "CONFIG", '""')
    try:
        with (
            State.from_url(server.url) as state,
            pytest.raises(Unsupported, match="notify-keyspace-events") as info,
        ):
            state.track()
        assert "Khgxe" in str(info.value)
    finally:
        server.stop()
    # flags set by the operator in the server's configuration are enough
    server = standalone(
        binary,
        REDIS_CONF,
        tmp_path / "configured",
        "--rename-command",
        "CONFIG",
        '""',
        "--notify-keyspace-events",
        "Kghxe",
    )
    try:
        with State.from_url(server.url) as state:
            bridge = state.track()
            assert bridge.listening.is_set()
            bridge.stop()
    finally:
        server.stop()


def test_one_bridge_records_while_another_stands_by_and_takes_over(
    state: Any, target: Target
) -> None:
    data = target.layout().data("g").decode()
    with State.from_url(target.url, **target.options) as own:
        first = Bridge(own._backend, lease_s=1.0).start()
        second = Bridge(own._backend, lease_s=1.0).start()
        try:
            assert first.listening.is_set()
            assert second.standby
            assert not second.listening.is_set()
            with state.watch(since="0", block=0.3) as watch:
                cli(target, "HSET", data, "a", "1")
                assert externals(watch, until=2) == [(None, "gap"), ("g", "hset")]
                first.stop()
                deadline = time.monotonic() + 10
                while not second.listening.is_set() and time.monotonic() < deadline:
                    time.sleep(0.05)
                cli(target, "HSET", data, "b", "1")
                assert externals(watch, until=2) == [(None, "gap"), ("g", "hset")]
        finally:
            first.stop()
            second.stop()


def test_motia_state_track_runs_until_stopped(target: Target) -> None:
    env = {**os.environ, "MOTIA_STATE_URL": target.url}
    prefix = target.options["prefix"]
    proc = subprocess.Popen(
        [EXE, "track", "--prefix", prefix],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()  # the gap record: the bridge listens
        assert "external gap" in first
        cli(target, "HSET", target.layout().data("orders").decode(), "x", "1")
        assert "external hset 'orders'" in proc.stdout.readline()
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "tracking external changes on" in err
    assert "2 external record(s) written" in err


def test_a_wrong_password_fails_at_once_with_a_typed_error(servers: Servers) -> None:
    """Before: track() retried the refused login for 30 s and then returned as if it ran."""
    url, _ = servers.redis()
    wrong = url.replace("redis://", "redis://ghost:not-the-password@")
    with State.from_url(wrong) as state:
        with pytest.raises(PermissionDenied, match="credentials") as refused:
            state.set("g", "k", 1)
        assert "not-the-password" not in str(refused.value)
        with pytest.raises(PermissionDenied, match="credentials"):
            state.track()

    async def main() -> None:
        async with AsyncState.from_url(wrong) as state:
            with pytest.raises(PermissionDenied, match="credentials"):
                await state.set("g", "k", 1)
            with pytest.raises(PermissionDenied, match="credentials"):
                await state.track()

    asyncio.run(main())


def test_an_engine_write_failing_midway_does_not_blind_the_bridge(
    state: Any, target: Target
) -> None:
    """The failed script's marker bracket is closed all the same, so the next edit by someone
    else is recorded (before: every external edit was dropped until the next engine write)."""
    layout = target.layout()
    with target.raw() as r:  # Motia v0 left a string where the engine keeps a group's hash
        r.set(layout.data("legacy"), b'"a v0 string"')
    with state.watch(block=0.2) as watch:
        bridge = state.track()
        try:
            with pytest.raises(StateError, match="WRONGTYPE"):
                state.set("legacy", "k", 1)  # fails inside its script, after its first marker
            data = layout.data("orders").decode()
            cli(target, "HSET", data, "manual", '"by hand"')
            found = externals(watch, until=2)
        finally:
            bridge.stop()
    assert found == [(None, "gap"), ("orders", "hset")]
