"""``motia-state migrate``: from Motia v0's Redis layout and state file, and between backends."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster
from click.testing import CliRunner

from motia_state import State
from motia_state.cli import main

from .conftest import Servers, Target
from .test_cli import EXE


def js(value: Any) -> str:
    """``JSON.stringify``: compact, non-ASCII kept (what Motia v0 stores)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture
def v0(servers: Servers) -> Iterator[tuple[str, str, redis.Redis]]:
    """(url, prefix, client) of a standalone server holding a Motia v0 layout."""
    url, _ = servers.redis()
    prefix = f"v0{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(url)
    # written the way Motia v0's adapter writes: SET (or SETEX with its ttl) of JSON text
    client.set(f"{prefix}orders:o1", js({"total": 12.5, "items": [], "name": "Zoë"}))
    client.set(f"{prefix}orders:o2", js(42))
    client.set(f"{prefix}orders:o3", js(False))
    client.set(f"{prefix}sessions:s1", js({"user": "u1"}), ex=600)  # v0 sends SETEX
    client.set(
        f"{prefix}audit:2024:01", js(["a"])
    )  # group 'audit', key '2024:01'? or 'audit:2024'?
    client.set(f"{prefix}broken:b1", "{not json")
    client.hset(f"{prefix}engine-hash", "k", "1")  # this engine's own hash: not v0 data
    try:
        yield url, prefix, client
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def migrate(*args: str, code: int = 0) -> dict[str, Any]:
    result = CliRunner().invoke(main, ["migrate", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == code, result.output
    if code:
        assert result.stderr.startswith("error: ")
        return {"error": result.stderr}
    return dict(json.loads(result.stdout))


def dest(target: Target) -> list[str]:
    return ["--to", target.url, "--to-prefix", target.options.get("prefix", "motia:state:")]


@pytest.fixture
def into(target: Target) -> Target:
    if target.name == "memory":
        pytest.skip("memory:// lives in one process")
    return target


def test_from_motia_v0_redis(v0: tuple[str, str, redis.Redis], into: Target) -> None:
    url, prefix, _ = v0
    source = ["--from", url, "--layout", "motia-v0", "--from-prefix", prefix]
    dry = migrate(*source, *dest(into), "--dry-run")
    assert dry["dry_run"]
    assert (dry["read"], dry["written"], dry["unchanged"]) == (6, 5, 0)
    assert dry["unreadable"] == 1
    assert dry["examples"]["unreadable"] == ["broken:b1"]
    assert dry["ambiguous"] == 1
    assert dry["examples"]["ambiguous"] == ["audit:2024:01"]
    with State.from_url(into.url, **into.options) as state:
        assert state.list_groups() == []  # a dry run writes nothing

    done = migrate(*source, *dest(into))
    assert (done["read"], done["written"], done["unchanged"], done["groups"]) == (6, 5, 0, 3)
    with State.from_url(into.url, **into.options) as state:
        assert state.items("orders") == {
            "o1": {"total": 12.5, "items": [], "name": "Zoë"},
            "o2": 42,
            "o3": False,
        }
        assert state.get("audit", "2024:01") == ["a"]  # split at the first ':' by default
        session = state.get_item("sessions", "s1")
        assert session is not None
        assert session.value == {"user": "u1"}
        assert session.expires_at is not None
        assert 590 < session.expires_at - time.time() <= 600  # the v0 TTL carried over
        versions = {k: state.get_item("orders", k).version for k in ("o1", "o2", "o3")}  # type: ignore[union-attr]

    again = migrate(*source, *dest(into))  # idempotent: nothing rewritten, versions unchanged
    assert (again["written"], again["unchanged"]) == (0, 5)
    with State.from_url(into.url, **into.options) as state:
        assert {k: state.get_item("orders", k).version for k in versions} == versions  # type: ignore[union-attr]


def test_v0_names_with_colons_follow_the_groups_given(v0: tuple[str, str, redis.Redis]) -> None:
    url, prefix, client = v0
    client.set(f"{prefix}audit:2025:02", js(["b"]))
    to = "memory://"
    listed = migrate(
        "--from", url, "--layout", "motia-v0", "--from-prefix", prefix, "--to", to,
        "--groups", "audit:2024,orders", "--groups", "sessions", "--dry-run",
    )  # fmt: skip
    # audit:2024:01 -> group 'audit:2024'; audit:2025:02 and broken:b1 fit no listed group
    assert listed["written"] == 5
    assert listed["outside"] == 2
    assert sorted(listed["examples"]["outside"]) == ["audit:2025:02", "broken:b1"]
    assert listed["ambiguous"] == 0
    last = migrate(
        "--from", url, "--layout", "motia-v0", "--from-prefix", prefix, "--to", to,
        "--split", "last", "--dry-run",
    )  # fmt: skip
    assert last["ambiguous"] == 2  # still reported: the rule picked one reading


def test_from_a_motia_state_file(tmp_path: Path, into: Target) -> None:
    path = tmp_path / ".motia" / "motia.state.json"
    path.parent.mkdir()
    content = {
        "orders:o1": js({"total": 3}),
        "orders:o2": js("two"),
        "a:b:c": js(None),
        "bad": js(1),
    }
    path.write_text(json.dumps(content, indent=2))  # Motia pretty-prints the file
    source = ["--from", f"file://{path}", "--layout", "motia-v0"]
    report = migrate(*source, *dest(into))
    assert (report["read"], report["written"], report["unreadable"], report["ambiguous"]) == (
        4,
        3,
        1,
        1,
    )
    with State.from_url(into.url, **into.options) as state:
        assert state.items("orders") == {"o1": {"total": 3}, "o2": "two"}
        item = state.get_item("a", "b:c")
        assert item is not None
        assert item.value is None  # a stored null is a value
    assert migrate(*source, *dest(into))["unchanged"] == 3


def test_between_backends(tmp_path: Path, into: Target) -> None:
    source_url = f"file://{tmp_path / 'from.json'}"
    with State.from_url(source_url) as source:
        source.set_many("orders", {f"o{i}": {"n": i, "big": 2**62 + i} for i in range(1200)})
        source.set("sessions", "s", {"x": 1.5}, ttl=300)
        source.set("odd", "{braces}", [1, [2]])
    report = migrate("--from", source_url, *dest(into))
    assert (report["read"], report["written"], report["groups"]) == (1202, 1202, 3)
    with State.from_url(into.url, **into.options) as state:
        assert state.get("orders", "o1199") == {"n": 1199, "big": 2**62 + 1199}
        assert state.get("odd", "{braces}") == [1, [2]]
        left = state.ttl("sessions", "s")
        assert left is not None
        assert 290 < left <= 300
    assert migrate("--from", source_url, *dest(into))["unchanged"] == 1202
    # and back, from any Redis backend into a file
    back = f"file://{tmp_path / 'back.json'}"
    prefix = into.options.get("prefix", "motia:state:")
    assert migrate("--from", into.url, "--from-prefix", prefix, "--to", back)["written"] == 1202


def test_an_interrupted_migration_resumes(
    v0: tuple[str, str, redis.Redis], servers: Servers
) -> None:
    url, prefix, client = v0
    total = 60_000
    with client.pipeline(transaction=False) as pipe:
        for i in range(total):
            pipe.set(f"{prefix}bulk:k{i}", js({"i": i}))
        pipe.execute()
    to_prefix = f"m{uuid.uuid4().hex[:8]}:"
    command = [
        EXE, "migrate", "--from", url, "--layout", "motia-v0", "--from-prefix", prefix,
        "--to", url, "--to-prefix", to_prefix, "--json",
    ]  # fmt: skip
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while client.hlen(f"{to_prefix}bulk") == 0 and time.monotonic() < deadline:
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        if proc.returncode == 0:
            pytest.skip("the migration finished before it could be interrupted")
        assert proc.returncode == 130, err
        first = json.loads(out)
        assert first["interrupted"]
        copied = client.hlen(f"{to_prefix}bulk")
        assert 0 < copied < total
        # the second run writes what is missing and leaves the rest alone
        second = migrate(
            "--from", url, "--layout", "motia-v0", "--from-prefix", prefix,
            "--to", url, "--to-prefix", to_prefix,
        )  # fmt: skip
        assert second["written"] + second["unchanged"] == total + 5
        assert second["unchanged"] >= copied
        with State.from_url(url, prefix=to_prefix) as state:
            assert state.stats(["bulk"])[0][0].items == total
            assert state.get("bulk", f"k{total - 1}") == {"i": total - 1}
    finally:
        for key in client.scan_iter(match=f"{to_prefix}*"):
            client.delete(key)
        for key in client.scan_iter(match=f"{to_prefix[:-1]}#*"):
            client.delete(key)


def test_bad_sources_are_usage_errors(tmp_path: Path) -> None:
    bad = migrate("--from", "ftp://x", "--layout", "motia-v0", "--to", "memory://", code=2)
    assert "Motia v0 source" in bad["error"]
    (tmp_path / "x.json").write_text("[1]")
    bad = migrate("--from", f"file://{tmp_path}/x.json", "--layout", "motia-v0", code=2)
    assert "not a Motia state file" in bad["error"]
    gone = migrate(
        "--from", "redis://:s3cret@127.0.0.1:1", "--layout", "motia-v0", "--to", "memory://", code=4
    )
    assert "cannot read redis://:***@127.0.0.1:1" in gone["error"]
    assert "s3cret" not in gone["error"]
    bad = migrate("--from", "ftp://:s3cret@x", "--layout", "motia-v0", "--to", "memory://", code=2)
    assert "s3cret" not in bad["error"]


def test_from_motia_v0_on_a_cluster(servers: Servers) -> None:
    """Motia v0 on Cluster: its keys spread over every master; SCAN runs on each."""
    url = servers.cluster().url
    host, _, port = url[len("redis+cluster://") :].split(",")[0].rpartition(":")
    client = redis.cluster.RedisCluster(host=host, port=int(port))
    prefix = f"v0{uuid.uuid4().hex[:8]}:"
    try:
        for i in range(300):
            client.set(f"{prefix}g{i % 7}:k{i}", js({"i": i}))
        report = migrate("--from", url, "--layout", "motia-v0", "--from-prefix", prefix,
                         "--to", "memory://")  # fmt: skip
        assert (report["read"], report["written"], report["groups"]) == (300, 300, 7)
    finally:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
        client.close()


def test_items_the_target_cannot_store_are_reported_and_the_dry_run_foresees_them(
    tmp_path: Path,
) -> None:
    """An integer beyond 64 bits in Motia's state file: named, skipped, predicted."""
    path = tmp_path / "motia.state.json"
    content = {
        "orders:o1": js({"total": 3}),
        "orders:big": js({"id": 2**64}),  # Motia (JavaScript) wrote it; the engine cannot
        "orders:o2": js("two"),
        "orders:broken": "{not json",
        "stats:deep": "[" * 200 + "]" * 200,  # JSON, but nested deeper than the engine stores
        "stats:n": js(7),
    }
    path.write_text(json.dumps(content))
    to = f"file://{tmp_path / 'to.json'}"
    source = ["--from", f"file://{path}", "--layout", "motia-v0", "--to", to]
    dry = migrate(*source, "--dry-run")
    done = migrate(*source)
    assert {**dry, "dry_run": False} == done
    assert (done["read"], done["written"], done["unreadable"], done["refused"]) == (6, 3, 1, 2)
    assert sorted(done["examples"]["refused"]) == ["orders:big", "stats:deep"]
    with State.from_url(to) as state:
        assert state.items("orders") == {"o1": {"total": 3}, "o2": "two"}
        assert state.items("stats") == {"n": 7}
    again = migrate(*source)
    assert (again["written"], again["unchanged"], again["refused"]) == (0, 3, 2)
    human = CliRunner().invoke(main, ["migrate", *source], catch_exceptions=False)
    assert "2 items the target cannot store" in human.stdout
    assert "'orders:big'" in human.stdout


def test_unreadable_values_of_an_engine_source_are_reported(servers: Servers) -> None:
    url, _ = servers.redis()
    prefix = f"s{uuid.uuid4().hex[:8]}:"
    client = redis.Redis.from_url(url)
    try:
        with State.from_url(url, prefix=prefix) as state:
            state.set_many("orders", {f"o{i}": i for i in range(10)})
        client.hset(f"{prefix}orders", "foreign", "{not json")  # another tool's write
        client.hset(f"{prefix}gr".encode() + b"\xff", "k", "1")  # a group name not UTF-8
        report = migrate("--from", url, "--from-prefix", prefix, "--to", "memory://")
        assert (report["read"], report["written"], report["unreadable"]) == (12, 10, 2)
        assert report["examples"]["unreadable"] == [
            "gr\udcff (the whole group: 1 item(s))",
            "orders:foreign",
        ]
    finally:
        for key in client.scan_iter(match=f"{prefix[:-1]}[:#]*"):
            client.delete(key)
        client.close()
