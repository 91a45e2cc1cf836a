"""file://: Motia's state file, fixed -- shared format, atomic writes, no lost updates."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from motia_state import DecodeError, State, VersionConflict

MOTIA_WRITTEN = {
    "g1:k1": json.dumps({"a": 1, "nested": {"b": [1, 2]}}),
    "g1:k3": "42",
    "g10:k1": "false",
    "a:b:c": '"key with colons"',
}


def test_reads_the_file_motia_writes(tmp_path: Path) -> None:
    path = tmp_path / "motia.state.json"
    path.write_text(json.dumps(MOTIA_WRITTEN, indent=2))
    with State.from_url(f"file://{path}") as state:
        assert state.items("g1") == {"k1": {"a": 1, "nested": {"b": [1, 2]}}, "k3": 42}
        assert state.items("g10") == {"k1": False}  # Motia's startsWith would mix g1 and g10
        assert state.get("a", "b:c") == "key with colons"
        assert state.get_item("g1", "k3").version == 1
        assert state.list_groups() == ["a", "g1", "g10"]


def test_writes_the_file_motia_reads(tmp_path: Path) -> None:
    path = tmp_path / "motia.state.json"
    with State.from_url(f"file://{path}") as state:
        state.set("orders", "o1", {"total": 1.5, "tags": []})
        state.set("orders", "o:2", "x")
    doc = json.loads(path.read_text())
    assert doc == {"orders:o1": '{"total":1.5,"tags":[]}', "orders:o:2": '"x"'}
    assert path.read_text().startswith('{\n  "orders:o1"')  # pretty, like Motia's


def test_versions_live_in_an_entry_motia_ignores(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with State.from_url(f"file://{path}") as state:
        state.set("g", "k", 1)
        state.set("g", "k", 2)
    doc = json.loads(path.read_text())
    assert ":" not in "__motia_state__"
    assert json.loads(doc["__motia_state__"]) == {"versions": {"g:k": 2}}
    with State.from_url(f"file://{path}") as state:
        assert state.get_item("g", "k").version == 2


def test_foreign_entries_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"no-colon": "kept", "g:hand": {"written": "by hand"}}))
    with State.from_url(f"file://{path}") as state:
        assert state.get("g", "hand") == {"written": "by hand"}
        state.set("g", "k", 1)
    doc = json.loads(path.read_text())
    assert doc["no-colon"] == "kept"
    assert doc["g:hand"] == '{"written":"by hand"}'


def test_a_corrupt_file_is_a_clear_error_and_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{not json")
    with State.from_url(f"file://{path}") as state:
        with pytest.raises(DecodeError, match="not valid JSON"):
            state.get("g", "k")
        with pytest.raises(DecodeError):
            state.set("g", "k", 1)
    assert path.read_text() == "{not json"


def test_creates_missing_folders_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "deep" / ".motia" / "motia.state.json"
    with State.from_url(f"file://{path}") as state:
        state.set("g", "k", 1)
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "motia.state.json",
        "motia.state.json.lock",
    ]


def _increment_many(path: str, worker: int, rounds: int) -> None:
    with State.from_url(f"file://{path}") as state:
        for i in range(rounds):
            state.set("workers", f"w{worker}-{i}", i)
            while True:  # a counter by compare-and-set: no update may be lost
                item = state.get_item("totals", "count")
                try:
                    if item is None:
                        state.set("totals", "count", 1, version=0)
                    else:
                        state.set("totals", "count", item.value + 1, version=item.version)
                    break
                except VersionConflict:  # another process won: read again
                    continue


def test_concurrent_processes_lose_nothing(tmp_path: Path) -> None:
    path = str(tmp_path / "s.json")
    workers, rounds = 4, 25
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_increment_many, args=(path, w, rounds)) for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    with State.from_url(f"file://{path}") as state:
        assert len(state.keys("workers")) == workers * rounds
        assert state.get("totals", "count") == workers * rounds


def test_colon_groups_are_refused_inside_transactions_too(tmp_path: Path) -> None:
    from motia_state import InvalidInput

    with State.from_url(f"file://{tmp_path / 's.json'}") as state:
        with pytest.raises(InvalidInput, match="contains ':'"), state.transaction() as tx:  # noqa: PT012
            tx.set("ok", "k", 1)
            tx.set("a:b", "k", 1)
        assert state.list_groups() == []
