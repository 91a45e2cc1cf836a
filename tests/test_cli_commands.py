"""Every ``motia-state`` command on every backend a shell can reach: output, --json, exit codes.

Commands run in process through Click's runner (the same ``main`` the installed
entry point calls) for speed; `tests/test_cli.py` and the watch/migration tests run
the installed command itself.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from motia_state import State
from motia_state.cli import main

from .conftest import Target
from .test_cli import EXE


def run(target: Target, *args: str, code: int = 0, stdin: str | None = None) -> Any:
    """Run one command on ``target``; returns the parsed --json output (or the text)."""
    options = ["--url", target.url]
    if "prefix" in target.options:
        options += ["--prefix", target.options["prefix"]]
    result = CliRunner().invoke(main, [*args, *options], input=stdin, catch_exceptions=False)
    assert result.exit_code == code, (args, result.output)
    if code:
        assert result.stderr.startswith("error: ") or result.stderr.startswith("Aborted")
        assert "Traceback" not in result.output
        return result.stderr
    if "--json" in args:
        lines = result.stdout.splitlines()
        return json.loads(lines[0]) if len(lines) == 1 else [json.loads(x) for x in lines]
    return result.stdout


@pytest.fixture
def shell(target: Target) -> Target:
    if target.name == "memory":
        pytest.skip("memory:// lives in one process; each command is a new one")
    return target


def test_items_are_written_read_and_removed(shell: Target) -> None:
    t = shell
    assert run(t, "set", "orders", "o1", '{"total": 12.5, "tags": []}', "--json") == {"version": 1}
    assert "version 2" in run(t, "set", "orders", "o1", '{"total": 13, "tags": []}')
    got = run(t, "get", "orders", "o1", "--json")
    assert got["value"] == {"total": 13, "tags": []}
    assert got["version"] == 2
    assert got["expires_at"] is None
    human = run(t, "get", "orders", "o1")
    assert '"total": 13' in human
    assert "version 2, no TTL" in human
    # conditional writes: a stale version is a conflict (3); version 0 means "only if new"
    assert "expected version 1" in run(t, "set", "orders", "o1", "1", "--version", "1", code=3)
    assert run(t, "set", "orders", "o2", '"new"', "--version", "0", "--json") == {"version": 1}
    run(t, "set", "orders", "o2", '"again"', "--version", "0", code=3)
    # bad input: usage (2), nothing written
    assert "not JSON" in run(t, "set", "orders", "o3", "not json", code=2)
    assert "not JSON" in run(t, "set", "orders", "o3", "NaN", code=2)
    run(t, "set", "orders", "o3", "1", "--ttl", "-1", code=2)
    run(t, "get", "orders", "o3", code=1)
    run(t, "set", "orders*", "o3", "1", "--json")  # glob characters are just characters
    assert sorted(run(t, "groups", "--json")) == ["orders", "orders*"]
    assert run(t, "groups") == "orders\norders*\n"
    # items streams the group, one object per line
    rows = run(t, "items", "orders", "--json")
    assert {r["key"]: r["value"] for r in rows} == {
        "o1": {"total": 13, "tags": []},
        "o2": "new",
    }
    assert 'o2\t"new"' in run(t, "items", "orders")
    # delete returns the old value; a missing item is exit 1
    assert run(t, "delete", "orders", "o2", "--json") == {"deleted": True, "value": "new"}
    assert "not found" in run(t, "delete", "orders", "o2", code=1)
    assert run(t, "delete", "orders", "o1", "--version", "1", code=3)
    # clear asks first; without a terminal it needs --yes
    assert "--yes" in run(t, "clear", "orders", code=2)
    assert run(t, "get", "orders", "o1", "--json")["version"] == 2
    assert run(t, "clear", "orders", "--yes", "--json") == {"removed": 1}
    assert run(t, "clear", "orders*", "--yes", "--json") == {"removed": 1}
    assert run(t, "groups", "--json") == []


def test_numbers_updates_and_ttls(shell: Target) -> None:
    t = shell
    assert run(t, "increment", "stats", "visits", "--json") == {"value": 1}
    assert run(t, "increment", "stats", "visits", "41", "--json") == {"value": 42}
    assert run(t, "increment", "stats", "big", str(2**63 - 1), "--json") == {"value": 2**63 - 1}
    assert "overflow" in run(t, "increment", "stats", "big", code=1)
    assert run(t, "increment", "stats", "ratio", "0.5", "--json") == {"value": 0.5}
    run(t, "increment", "stats", "visits", "one", code=2)
    ops = '[{"type": "increment", "path": "n", "by": 2}, {"type": "set", "path": "l", "value": []}]'
    assert run(t, "update", "stats", "doc", ops, "--json") == {"value": {"n": 2, "l": []}}
    assert run(t, "update", "stats", "doc", '{"type": "remove", "path": "n"}', "--json") == {
        "value": {"l": []}
    }
    run(t, "update", "stats", "doc", '[{"type": "explode"}]', code=2)
    assert "not_number" in run(
        t, "update", "stats", "doc", '[{"type": "increment", "path": "l", "by": 1}]', code=1
    )
    # TTLs
    assert run(t, "ttl", "stats", "visits", "--json") == {"ttl": None}
    assert run(t, "ttl", "stats", "visits") == "no TTL\n"
    assert run(t, "expire", "stats", "visits", "100", "--json") == {"ttl": 100.0}
    assert 90 < run(t, "ttl", "stats", "visits", "--json")["ttl"] <= 100
    assert "expires in" in run(t, "get", "stats", "visits")
    assert run(t, "expire", "stats", "visits", "--persist", "--json") == {"ttl": None}
    assert run(t, "ttl", "stats", "visits", "--json") == {"ttl": None}
    run(t, "expire", "stats", "missing", "10", code=1)
    run(t, "ttl", "stats", "missing", code=1)
    run(t, "expire", "stats", "visits", code=2)  # neither SECONDS nor --persist
    run(t, "set", "stats", "brief", "1", "--ttl", "0.05")
    time.sleep(0.1)
    assert run(t, "cleanup", "--json")["removed"] in (0, 1)  # the backend may have swept it
    run(t, "get", "stats", "brief", code=1)
    # stats: items, TTLs, bytes in Redis, change records
    run(t, "set", "stats", "timed", "1", "--ttl", "600")
    report = run(t, "stats", "--json")
    (row,) = report["groups"]
    assert row["group"] == "stats"
    assert row["items"] == 5
    assert row["with_ttl"] == 1
    if t.is_redis:
        assert row["bytes"] > 0
        changes = row["changes"] if t.name == "cluster" else report["changes"]
        assert changes >= 9  # one record per write that changed something
    else:
        assert row["bytes"] is None
        assert report["changes"] is None
    human = run(t, "stats")
    assert "with TTL" in human
    assert "stats" in human


def test_the_installed_command_exit_codes(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'state.json'}"

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "MOTIA_STATE_URL": url}
        return subprocess.run(
            [EXE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
        )

    assert cli("set", "g", "k", "1").returncode == 0
    assert cli("get", "g", "k", "--json").stdout.strip().startswith('{"group": "g"')
    for args, code in [
        (("get", "g", "missing"), 1),
        (("set", "g", "k", "2", "--version", "9"), 3),
        (("set", "g", "k", "{"), 2),
        (("set", "", "k", "1"), 2),  # a group name must not be empty
        (("expire", "g", "k", "-1"), 2),  # a negative number is a value, and a bad TTL
        (("frobnicate",), 2),
    ]:
        result = cli(*args)
        assert result.returncode == code, (args, result.stderr)
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) <= 4  # click usage adds usage lines
    result = cli("set", "g", "k", "1", "--url", "redis://127.0.0.1:1/0")
    assert result.returncode == 4
    assert result.stderr.count("\n") == 1


def _line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any] | None:
    assert proc.stdout is not None
    if select.select([proc.stdout], [], [], timeout)[0]:
        return dict(json.loads(proc.stdout.readline()))
    return None


def test_watch_with_events_prints_the_outbox_beside_the_changes(shell: Target) -> None:
    if not shell.is_redis:
        pytest.skip(f"{shell.name}:// has no change feed")
    t = shell
    with State.from_url(t.url, **t.options) as state:
        state.set("orders", "o1", {"n": 1}, emit=("order.created", {"id": "o1"}))
    command = [EXE, "watch", "orders", "--events", "--since", "0", "--url", t.url]
    command += ["--prefix", t.options["prefix"]]
    for form in ([], ["--json"]):
        proc = subprocess.Popen(
            command + form, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            lines = _lines(proc, 2, 30)
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        if form:
            change, event = (json.loads(line) for line in lines)
            assert (change["op"], change["key"]) == ("set", "o1")
            assert (event["op"], event["topic"], event["data"]) == (
                "emit", "order.created", {"id": "o1"},
            )  # fmt: skip
        else:
            assert " set 'orders' 'o1' v1" in lines[0], lines
            assert """ emit 'orders' 'order.created' {"id": "o1"}""" in lines[1], lines


def _lines(proc: subprocess.Popen[str], n: int, timeout: float) -> list[str]:
    """The first ``n`` lines ``proc`` prints, read from its pipe as they come (a buffered
    readline could take both at once and leave select nothing to see)."""
    assert proc.stdout is not None
    fd, text, deadline = proc.stdout.fileno(), b"", time.monotonic() + timeout
    while text.count(b"\n") < n:
        left = deadline - time.monotonic()
        assert left > 0, f"printed only {text!r}"
        assert select.select([fd], [], [], left)[0], f"printed only {text!r}"
        chunk = os.read(fd, 65536)
        assert chunk, f"ended after {text!r}"
        text += chunk
    return text.decode().splitlines()[:n]


def test_watch_prints_each_change_until_stopped(shell: Target) -> None:
    if not shell.is_redis:
        pytest.skip(f"{shell.name}:// has no change feed")
    t = shell
    command = [EXE, "watch", "orders", "--json", "--url", t.url, "--prefix", t.options["prefix"]]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        with State.from_url(t.url, **t.options) as state:
            first = None
            deadline = time.monotonic() + 30
            n = 0
            while first is None and proc.poll() is None and time.monotonic() < deadline:
                n += 1  # writes before the watcher started are not its business: write again
                state.set("other", "x", n)  # not watched
                state.set("orders", f"o{n}", {"n": n})
                first = _line(proc, 0.5)
            assert first is not None, proc.stderr.read() if proc.stderr else ""
            assert (first["op"], first["group"]) == ("set", "orders")
            assert first["version"] == 1
            state.delete("orders", first["key"])
            change = first
            while change is not None and change["op"] != "delete":
                change = _line(proc, 10)
            assert change is not None
            assert change["key"] == first["key"]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "Traceback" not in err


def test_prefix_state_shares_motia_v1_hashes(target: Target) -> None:
    """Motia v1 keeps a scope in the hash ``state:<scope>`` (field = key, JSON text)."""
    if target.name not in ("redis", "cluster"):
        pytest.skip("about a shared Redis server")
    with target.raw() as r:
        r.delete("state:orders")
        r.hset("state:orders", "o1", '{"status":"new","items":[]}')  # as Motia v1 writes it
        try:
            t = Target(target.name, target.url, {"prefix": "state:"}, target.raw_url)
            assert run(t, "get", "orders", "o1", "--json")["value"] == {
                "status": "new",
                "items": [],
            }
            run(t, "update", "orders", "o1", '{"type": "set", "path": "status", "value": "paid"}')
            # what Motia v1 reads back: the same field, plain JSON text, [] kept as []
            assert json.loads(r.hget("state:orders", "o1")) == {"status": "paid", "items": []}
            assert "orders" in run(t, "groups", "--json")
        finally:
            r.delete("state:orders")
            for key in r.scan_iter(match="state#*"):
                r.delete(key)


def test_the_url_can_come_before_the_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--url`` after the command wins, then before it, then MOTIA_STATE_URL."""
    before, after, env = (f"file://{tmp_path / name}.json" for name in ("before", "after", "env"))
    monkeypatch.setenv("MOTIA_STATE_URL", env)
    runner = CliRunner()
    for args in (
        ["--url", before, "set", "g", "k", '"before"'],
        ["--url", before, "set", "g", "k", '"after"', "--url", after],
        ["set", "g", "k", '"env"'],
    ):
        assert runner.invoke(main, args, catch_exceptions=False).exit_code == 0
    for url, value in ((before, "before"), (after, "after"), (env, "env")):
        with State.from_url(url) as state:
            assert state.get("g", "k") == value
    report = runner.invoke(
        main, ["--url", after, "migrate", "--from", before, "--json"], catch_exceptions=False
    )
    assert json.loads(report.stdout)["written"] == 1  # --to defaults to the --url before it
    with State.from_url(after) as state:
        assert state.get("g", "k") == "before"
