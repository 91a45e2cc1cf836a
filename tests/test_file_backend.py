"""file://: Motia's state file, fixed -- shared format, atomic writes, no lost updates."""

from __future__ import annotations

import json
import multiprocessing
import os
import re
import resource
import shutil
import signal
import stat
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motia_state import DecodeError, State, Undecodable, VersionConflict
from motia_state.backends.file import entry_group, group_of
from motia_state.errors import BackendUnavailable, PermissionDenied

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


def _concurrent_writers(paths: list[str], rounds: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_increment_many, args=(path, w, rounds)) for w, path in enumerate(paths)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0


def test_writers_through_a_symlink_and_its_target_share_one_lock(tmp_path: Path) -> None:
    real = tmp_path / "real" / "s.json"
    real.parent.mkdir()
    link = tmp_path / "link.json"
    link.symlink_to(real)
    _concurrent_writers([str(link), str(real), str(link), str(real)], rounds=15)
    assert link.is_symlink()
    assert sorted(p.name for p in real.parent.iterdir()) == ["s.json", "s.json.lock"]
    with State.from_url(f"file://{link}") as state:
        assert len(state.keys("workers")) == 4 * 15
        assert state.get("totals", "count") == 4 * 15


# -- groups with ':' ---------------------------------------------------------------------


def test_groups_may_hold_colons(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with State.from_url(f"file://{path}") as state:
        state.set("trace:42", "k", 1)
        state.set("trace", "42:k", 2)  # the name a ':'-joining format would confuse with it
        with state.transaction() as tx:
            tx.set("user:7", "name", "x")
            tx.set("a:b", "c:d", 3)
    names = set(json.loads(path.read_text()))
    assert names == {"trace%3A42:k", "trace:42:k", "user%3A7:name", "a%3Ab:c:d"}
    with State.from_url(f"file://{path}") as state:
        assert state.list_groups() == ["a:b", "trace", "trace:42", "user:7"]
        assert state.items("trace:42") == {"k": 1}
        assert state.items("trace") == {"42:k": 2}
        assert state.get("a:b", "c:d") == 3


def test_motia_written_entry_names_stay_byte_identical(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    motia = {**MOTIA_WRITTEN, "50%off:k": '"sale"', "%:k": "1", "ünï 🚀:k": "2", "%25:k": "3"}
    path.write_text(json.dumps(motia, indent=2))
    with State.from_url(f"file://{path}") as state:
        assert state.get("50%off", "k") == "sale"
        assert state.get("%", "k") == 1
        assert state.get("ünï 🚀", "k") == 2
        # '%25' before nothing: not a name this engine writes, so not read as group '%'
        assert "%25" not in state.list_groups()
        state.set("new:group", "k", 4)
    doc = json.loads(path.read_text())
    assert {k: v for k, v in doc.items() if k != "new%3Agroup:k"} == motia


_HOSTILE = st.text(
    st.one_of(
        st.sampled_from([":", "%", "2", "5", "3", "A", "a", " "]),
        st.characters(blacklist_categories=("Cs",)),  # lone surrogates are refused up front
    ),
    min_size=1,
    max_size=12,
)


@given(_HOSTILE)
@settings(max_examples=500)
def test_group_escaping_round_trips(group: str) -> None:
    part = entry_group(group)
    assert ":" not in part
    assert group_of(part) == group
    if ":" not in group and "%" not in group:
        assert part == group


@given(st.text(st.sampled_from("%253Ax"), max_size=12))
@settings(max_examples=500)
def test_no_two_entry_names_claim_one_group(part: str) -> None:
    group = group_of(part)
    assert group is None or entry_group(group) == part


@given(st.lists(_HOSTILE, min_size=1, max_size=6))
@settings(max_examples=40, deadline=None)
def test_hostile_groups_round_trip_through_the_file(groups: list[str]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"file://{Path(folder) / 's.json'}"
        with State.from_url(url) as state, state.transaction() as tx:
            for i, group in enumerate(groups):
                tx.set(group, f"k:{i}", {"group": group})
        with State.from_url(url) as state:
            assert state.list_groups() == sorted(set(groups))
            for i, group in enumerate(groups):
                assert state.get(group, f"k:{i}") == {"group": group}


# -- files another tool wrote ------------------------------------------------------------


@pytest.mark.parametrize(
    "meta",
    [
        "{not json",
        "[1]",
        '{"versions": [1]}',
        '{"versions": {"g:k": "2"}}',
        '{"versions": {"g:k": true}}',
        '{"versions": {"g:k": 0}}',
        '{"expires": {"g:k": 1.5}}',
        '{"something": {}}',
        7,
        {"versions": {}},
    ],
    ids=repr,
)
def test_a_damaged_meta_entry_is_a_clear_error(tmp_path: Path, meta: object) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"g:k": "1", "__motia_state__": meta}))
    before = path.read_bytes()
    with State.from_url(f"file://{path}") as state:
        for call in (lambda: state.get("g", "k"), lambda: state.set("g", "k", 2)):
            with pytest.raises(
                DecodeError, match=f"{re.escape(str(path))}.*'__motia_state__'.*damaged"
            ):
                call()
    assert path.read_bytes() == before


def test_lone_surrogates_as_node_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    # JSON.stringify escapes a lone surrogate; Python reads it back as a lone surrogate.
    node = '{\n  "g:\\ud800": "1",\n  "g:ok": "2",\n  "g:v": "\\"\\udfff\\"",\n  "x\\ud800": 1\n}'
    path.write_text(node)
    with State.from_url(f"file://{path}") as state:
        assert state.items("g") == {"\ud800": 1, "ok": 2, "v": "\udfff"}
        state.set("g", "new", 3)
        state.set("g", "ok", 4)  # a version above 1: the meta entry is written too
        assert state.items("g") == {"\ud800": 1, "ok": 4, "v": "\udfff"} | {"new": 3}
    text = path.read_bytes().decode("utf-8")  # strict: no surrogate reached the file
    assert '"g:\\ud800": "1"' in text
    assert '"x\\ud800": 1' in text
    with State.from_url(f"file://{path}") as state:
        assert state.items("g") == {"\ud800": 1, "ok": 4, "v": "\udfff", "new": 3}


def test_a_value_nested_too_deep_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text('{"g:ok": "1", "g:k": ' + "[" * 3000 + "]" * 3000 + "}")
    before = path.read_bytes()
    with State.from_url(f"file://{path}") as state:
        for call in (lambda: state.get("g", "ok"), lambda: state.set("g", "k", 2)):
            with pytest.raises(DecodeError, match=f"{re.escape(str(path))} nests deeper"):
                call()
    assert path.read_bytes() == before


def test_bytes_that_are_not_utf8_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(b'{"g:k": "\xff"}')
    with State.from_url(f"file://{path}") as state:
        for call in (lambda: state.get("g", "k"), lambda: state.set("g", "k", 2)):
            with pytest.raises(
                DecodeError, match=f"{re.escape(str(path))} is not valid JSON.*utf-8"
            ):
                call()
    assert path.read_bytes() == b'{"g:k": "\xff"}'


@pytest.mark.parametrize(
    "raw",
    [
        '{"g:k": "1"}'.encode("utf-16"),  # json.loads would guess UTF-16 from bytes
        b'{"g:k": "\xed\xa0\x80"}',  # a lone surrogate encoded (CESU-8), not UTF-8
    ],
)
def test_text_in_another_encoding_is_refused_not_rewritten(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "s.json"
    path.write_bytes(raw)
    with State.from_url(f"file://{path}") as state, pytest.raises(DecodeError, match="utf-8"):
        state.set("g", "k", 2)
    assert path.read_bytes() == raw


# -- the file system refusing ------------------------------------------------------------


def test_a_folder_or_a_fifo_at_the_path_is_a_clear_error(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    for path in (tmp_path, fifo):  # a FIFO with no writer would block every read
        _reads_and_writes_raise(
            path, BackendUnavailable, f"{re.escape(str(path))} is not a regular file"
        )


def _reads_and_writes_raise(path: Path, error: type[Exception], match: str) -> None:
    """A read and a write of the state file at ``path`` each raise ``error``."""
    with State.from_url(f"file://{path}") as state:
        for call in (lambda: state.get("g", "k"), lambda: state.set("g", "k", 2)):
            with pytest.raises(error, match=match):
                call()


def test_a_file_as_parent_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    path = tmp_path / "afile" / "s.json"
    with State.from_url(f"file://{path}") as state:
        for call in (lambda: state.get("g", "k"), lambda: state.set("g", "k", 2)):
            with pytest.raises(BackendUnavailable, match=f"^{re.escape(str(path))}: "):
                call()
    assert (tmp_path / "afile").read_text() == "x"


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o664])
def test_a_write_keeps_the_file_mode(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "s.json"
    path.write_text("{}")
    path.chmod(mode)
    with State.from_url(f"file://{path}") as state:
        state.set("g", "k", 1)
        state.set("g", "k", 2)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert json.loads(path.read_text())["g:k"] == "2"


def test_a_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with State.from_url(f"file://{path}") as state:
        state.set("g", "k", 1)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 & ~umask


@pytest.mark.skipif(os.geteuid() != 0, reason="only root may give a file to another user")
def test_a_write_by_root_keeps_the_owner(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{}")
    os.chown(path, NOBODY, NOBODY)
    path.chmod(0o600)
    with State.from_url(f"file://{path}") as state:
        state.set("g", "k", 1)
    st_ = path.stat()
    assert (st_.st_uid, st_.st_gid, stat.S_IMODE(st_.st_mode)) == (NOBODY, NOBODY, 0o600)


def test_a_file_without_write_bits_is_refused_even_for_root(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"g:k": "1"}))
    path.chmod(0o444)
    with State.from_url(f"file://{path}") as state:
        assert state.get("g", "k") == 1
        with pytest.raises(PermissionDenied, match=f"{re.escape(str(path))} is read-only here"):
            state.set("g", "k", 2)
        assert state.get("g", "k") == 1
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert json.loads(path.read_text()) == {"g:k": "1"}


def test_a_write_that_changes_nothing_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    with State.from_url(f"file://{path}") as state:
        state.set("g", "k", 1)
        inode = path.stat().st_ino
        assert state.delete("g", "missing") is None
        assert path.stat().st_ino == inode  # a rewrite would hold a new inode while this one lives
        assert state.cleanup() == 0
        assert path.stat().st_ino == inode


def test_a_symlinked_file_stays_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real" / "s.json"
    real.parent.mkdir()
    real.write_text(json.dumps({"g:old": "1"}))
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to(Path("real") / "s.json")  # relative, as a user would make it
    with State.from_url(f"file://{link}") as state:
        state.set("g", "k", 2)
    assert link.is_symlink()
    assert json.loads(real.read_text()) == {"g:old": "1", "g:k": "2"}
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "real"]


def test_a_leftover_where_a_temp_file_would_go_does_not_block_writes(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    (tmp_path / f".s.json.{os.getpid()}.tmp").mkdir()  # the name the pid alone would pick
    with State.from_url(f"file://{path}") as state:
        state.set("g", "k", 1)
        assert state.get("g", "k") == 1


# Refusals root would override run in a child process as 'nobody' (when the tests run as
# root): it reaches only a folder of its own, made outside root's private tmp_path.

NOBODY = 65534


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0:
        yield tmp_path
        return
    made = Path(tempfile.mkdtemp(prefix="motia-file-test-"))
    try:
        os.chown(made, NOBODY, NOBODY)
        yield made
    finally:
        shutil.rmtree(made)


def _give(*paths: Path) -> None:
    for path in paths:
        if os.geteuid() == 0:
            os.chown(path, NOBODY, NOBODY)


def _unprivileged(check: Callable[[Path], None], folder: Path, groups: list[int]) -> None:
    if os.geteuid() == 0:
        os.setgroups(groups)
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    check(folder)


def _in_child(check: Callable[[Path], None], folder: Path, groups: list[int] | None = None) -> None:
    proc = multiprocessing.get_context("spawn").Process(
        target=_unprivileged, args=(check, folder, groups or [])
    )
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0  # the child's assertion error is on stderr


def _check_unreadable(folder: Path) -> None:
    path = folder / "s.json"
    _reads_and_writes_raise(path, PermissionDenied, f"^{re.escape(str(path))}: Permission denied")


def test_an_unreadable_file_is_a_clear_error(folder: Path) -> None:
    path = folder / "s.json"
    path.write_text(json.dumps({"g:k": "1"}))
    _give(path)
    path.chmod(0)
    _in_child(_check_unreadable, folder)
    path.chmod(0o600)
    assert json.loads(path.read_text()) == {"g:k": "1"}


def _check_read_only_folder(folder: Path) -> None:
    path = folder / "ro" / "s.json"
    with State.from_url(f"file://{path}") as state:
        assert state.get("g", "k") == 1  # reading needs no lock file
        with pytest.raises(PermissionDenied, match=f"^{re.escape(str(path))}: Permission denied"):
            state.set("g", "k", 2)
        assert state.get("g", "k") == 1


def test_a_read_only_folder_is_a_clear_error(folder: Path) -> None:
    ro = folder / "ro"
    ro.mkdir()
    path = ro / "s.json"
    path.write_text(json.dumps({"g:k": "1"}))
    (ro / "s.json.lock").touch()  # so that the temp file is what fails
    _give(ro, path, ro / "s.json.lock")
    ro.chmod(0o555)
    _in_child(_check_read_only_folder, folder)
    assert sorted(p.name for p in ro.iterdir()) == ["s.json", "s.json.lock"]
    assert json.loads(path.read_text()) == {"g:k": "1"}


def _check_not_writable(folder: Path) -> None:
    path = folder / "s.json"
    with State.from_url(f"file://{path}") as state:
        assert state.get("g", "k") == 1
        with pytest.raises(PermissionDenied, match=f"^{re.escape(str(path))} is read-only here"):
            state.set("g", "k", 2)


def test_a_file_the_process_may_not_write_is_refused_not_replaced(folder: Path) -> None:
    path = folder / "s.json"
    path.write_text(json.dumps({"g:k": "1"}))
    if os.geteuid() != 0:
        path.chmod(0o444)  # as root it stays root's 0644: nobody may not write it
    _in_child(_check_not_writable, folder)
    assert json.loads(path.read_text()) == {"g:k": "1"}
    assert path.stat().st_uid == os.geteuid()


def _check_temp_file_write_error(folder: Path) -> None:
    # A file size limit makes writing the temp file fail part way, as a full disk would.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
    path = folder / "s.json"
    with State.from_url(f"file://{path}") as state:
        with pytest.raises(BackendUnavailable, match=f"^{re.escape(str(path))}: File too large"):
            state.set("g", "big", "x" * 10_000)
        assert state.get("g", "big") is None
        state.set("g", "small", 2)  # what fits is still written
    assert sorted(p.name for p in folder.iterdir()) == ["s.json", "s.json.lock"]


def test_a_failed_temp_file_write_leaves_the_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"g:k": "1"}))
    proc = multiprocessing.get_context("spawn").Process(
        target=_check_temp_file_write_error, args=(tmp_path,)
    )
    proc.start()
    proc.join(120)
    assert proc.exitcode == 0
    assert json.loads(path.read_text()) == {"g:k": "1", "g:small": "2"}


SHARED_GROUP = 100


def _check_shared(folder: Path) -> None:
    with State.from_url(f"file://{folder / 's.json'}") as state:
        state.set("g", "k", 2)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs a second user")
def test_a_file_shared_by_a_group_stays_shared_after_a_member_writes(folder: Path) -> None:
    path = folder / "s.json"
    path.write_text(json.dumps({"g:k": "1"}))
    os.chown(path, 0, SHARED_GROUP)
    path.chmod(0o660)
    (folder / "s.json.lock").touch(0o644)  # root's, as the first writer leaves it
    _in_child(_check_shared, folder, groups=[SHARED_GROUP])
    st_ = path.stat()
    assert (st_.st_uid, st_.st_gid, stat.S_IMODE(st_.st_mode)) == (NOBODY, SHARED_GROUP, 0o660)
    assert json.loads(path.read_text())["g:k"] == "2"


def test_a_delete_of_an_undecodable_value_goes_through_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps({"g:bad": "legacy:not-json", "g:ok": "1"}))
    with State.from_url(f"file://{path}") as state:
        removed = state.delete("g", "bad")
        assert isinstance(removed, Undecodable)
        assert removed.raw == b"legacy:not-json"
        assert state.items("g") == {"ok": 1}
    assert "g:bad" not in json.loads(path.read_text())
