"""Custom adapters: registration, declared capabilities, the engine's rules in front of an
adapter, failures inside one, and sqlite:// (the built-in adapter) under real faults.

The contract itself (every operation's behaviour) runs on sqlite://, memo:// and amemo:// (the
example package) through the exported suite: tests/test_contract.py and test_testing_plugin.py.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from motia_state import (
    AsyncState,
    AsyncStateAdapter,
    BackendUnavailable,
    EncodeError,
    InvalidInput,
    OutcomeUnknown,
    PermissionDenied,
    Record,
    ServerBusy,
    State,
    StateAdapter,
    StateError,
    Unsupported,
    ValueTooLarge,
    connect,
    register_adapter,
    unregister_adapter,
)
from motia_state.backends import sqlite


class Plain(StateAdapter):
    """Motia's minimal adapter: storage and nothing more (no capability). Records every
    call, so a test can tell that a refused request never reached it."""

    capabilities: ClassVar[frozenset[str]] = frozenset()

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Record]] = {}
        self.calls: list[str] = []
        self.fail_on: str | None = None  # a key whose set raises, as a broken store would

    def get(self, group: str, key: str) -> Record | None:
        self.calls.append("get")
        return self.groups.get(group, {}).get(key)

    def set(self, group: str, key: str, record: Record) -> None:
        self.calls.append("set")
        if key == self.fail_on:
            raise OSError("disk on fire")
        self.groups.setdefault(group, {})[key] = record

    def delete(self, group: str, key: str) -> None:
        self.calls.append("delete")
        self.groups.get(group, {}).pop(key, None)

    def clear(self, group: str) -> None:
        self.calls.append("clear")
        self.groups.pop(group, None)

    def cleanup(self, now_ms: int) -> int:
        return 0

    def items(self, group: str) -> list[tuple[str, Record]]:
        self.calls.append("items")
        return list(self.groups.get(group, {}).items())

    def list_groups(self) -> list[str]:
        return [g for g, items in self.groups.items() if items]


@pytest.fixture
def plain() -> Iterator[Plain]:
    adapter = Plain()
    register_adapter("plain-test", lambda url: adapter)
    yield adapter
    unregister_adapter("plain-test")


def test_a_minimal_adapter_serves_the_plain_api(plain: Plain) -> None:
    with State.from_url("plain-test://") as state:
        assert state.capabilities == frozenset()
        assert state.set("orders", "o1", {"total": 3}) == 1
        assert state.set("orders", "o1", {"total": 4}) == 2
        assert state.get("orders", "o1") == {"total": 4}
        assert state.get_item("orders", "o1").version == 2
        assert plain.groups["orders"]["o1"].data == b'{"total":4}'  # the codec's bytes, exactly
        assert state.get_many("orders", ["o1", "nope"]) == [{"total": 4}, None]
        assert state.get_group("orders") == [{"total": 4}]
        assert state.list_groups() == ["orders"]
        assert state.delete("orders", "o1") == {"total": 4}
        assert state.clear("orders") == 0
        assert state.cleanup() == 0


@pytest.mark.parametrize(
    ("call", "capability"),
    [
        (lambda s: s.set("g", "k", 1, version=0), "versions"),
        (lambda s: s.delete("g", "k", version=1), "versions"),
        (lambda s: s.increment("g", "n"), "versions"),
        (lambda s: s.update("g", "k", [{"type": "set", "path": "a", "value": 1}]), "versions"),
        (lambda s: s.set("g", "k", 1, ttl=5), "ttl"),
        (lambda s: s.expire("g", "k", 5), "ttl"),
        (lambda s: s.set_many("g", {"a": 1, "b": 2}), "transactions"),
        (lambda s: s.delete_many("g", ["a"]), "transactions"),
        (lambda s: s.watch("g", block=0), "feed"),
    ],
)
def test_a_missing_capability_is_refused_by_name_and_writes_nothing(
    plain: Plain, call: Any, capability: str
) -> None:
    with State.from_url("plain-test://") as state:
        state.set("g", "k", "before")
        writes = plain.calls.count("set") + plain.calls.count("delete")
        with pytest.raises(Unsupported, match=f"capability '{capability}'"):
            call(state)
        assert plain.calls.count("set") + plain.calls.count("delete") == writes
        assert state.get("g", "k") == "before"


def test_a_transaction_needs_the_transactions_capability(plain: Plain) -> None:
    with State.from_url("plain-test://") as state:
        with pytest.raises(Unsupported, match="'transactions'"), state.transaction() as tx:
            tx.set("g", "a", 1)
        assert state.get("g", "a") is None


def test_the_engine_checks_input_before_the_adapter_sees_it(plain: Plain) -> None:
    with State.from_url("plain-test://", max_value_bytes=64) as state:
        before = list(plain.calls)
        with pytest.raises(InvalidInput):
            state.set("", "k", 1)
        with pytest.raises(InvalidInput):
            state.set("g", 7, 1)  # type: ignore[arg-type]
        with pytest.raises(ValueTooLarge):
            state.set("g", "k", "x" * 100)
        with pytest.raises(EncodeError):
            state.set("g", "k", math.nan)
        with pytest.raises(EncodeError):
            state.set("g", "k", 2**64)  # past what JSON carries exactly
        assert plain.calls == before


def test_an_adapter_failure_midway_is_an_unknown_outcome_without_transactions(
    plain: Plain,
) -> None:
    with State.from_url("plain-test://") as state:
        plain.fail_on = "k"
        with pytest.raises(OutcomeUnknown, match="OSError: 'disk on fire'") as info:
            state.set("g", "k", 1)
        assert isinstance(info.value.__cause__, OSError)
        plain.fail_on = None
        plain.items = None  # type: ignore[assignment,method-assign]
        with pytest.raises(BackendUnavailable) as read:
            state.get_group("g")
        assert not isinstance(read.value, OutcomeUnknown)  # a read changes nothing


def test_a_declaration_the_adapter_cannot_keep_is_refused_when_opened() -> None:
    class Claims(Plain):
        capabilities = frozenset({"versions"})  # but no atomic(), meta() or set_meta()

    class Typo(Plain):
        capabilities = frozenset({"version"})

    class NotASet(Plain):
        capabilities = "ttl"  # type: ignore[assignment]

    for kind, message in [
        (Claims, "declares 'versions' but does not implement atomic"),
        (Typo, "unknown capability 'version'"),
        (NotASet, "capabilities must be a collection"),
    ]:
        register_adapter("claims", lambda url, kind=kind: kind(), replace=True)
        try:
            with pytest.raises(InvalidInput, match=message):
                State.from_url("claims://")
        finally:
            unregister_adapter("claims")


def test_registration_is_checked() -> None:
    # every scheme connect opens itself, so that its list and the registry's cannot drift
    for scheme in (*connect.ANY_REDIS_SCHEME, "embedded", "file", "memory"):
        with pytest.raises(InvalidInput, match="is built in"):
            register_adapter(scheme, lambda url: Plain())
    for bad in ["", "1abc", "UPPER", "a b", "a/b", 7]:
        with pytest.raises(InvalidInput, match="scheme"):
            register_adapter(bad, lambda url: Plain())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="callable"):
        register_adapter("ok", "not callable")  # type: ignore[arg-type]
    register_adapter("twice", Plain)
    try:
        with pytest.raises(InvalidInput, match="already has an adapter"):
            register_adapter("twice", lambda url: Plain())
        register_adapter("twice", lambda url: Plain(), replace=True)
    finally:
        unregister_adapter("twice")
    with pytest.raises(InvalidInput, match="sqlite") as info:
        State.from_url("nosuch://x")
    assert "unknown URL scheme 'nosuch'" in str(info.value)


def test_a_factory_that_fails_or_returns_something_else_is_reported_without_secrets() -> None:
    def failing(url: str) -> StateAdapter:
        raise ConnectionError(f"cannot reach {url.split('@')[-1]}")

    register_adapter("failing", failing)
    register_adapter("other", lambda url: object())  # type: ignore[arg-type,return-value]
    try:
        with pytest.raises(BackendUnavailable, match="failed to open: ConnectionError") as info:
            State.from_url("failing://user:hunter2@db.example/x")
        assert "hunter2" not in str(info.value)
        with pytest.raises(InvalidInput, match="returned object, not a motia_state"):
            State.from_url("other://")
    finally:
        unregister_adapter("failing")
        unregister_adapter("other")


def test_options_that_only_redis_has_are_refused(plain: Plain) -> None:
    for options, error in [
        ({"prefix": "x:"}, InvalidInput),
        ({"durability": "replicated"}, Unsupported),
        ({"cache": True}, Unsupported),
    ]:
        with pytest.raises(error):
            State.from_url("plain-test://", **options)


def test_the_example_package_registers_through_its_entry_points() -> None:
    """examples/adapter is installed by make; its schemes come from its metadata alone."""
    with State.from_url("memo://entry") as state, State.from_url("amemo://entry") as other:
        assert state.capabilities == frozenset({"versions", "transactions", "ttl"})
        state.set("g", "k", 1)
        assert other.get("g", "k") == 1  # one named store, a sync and an async adapter
        assert other.increment("g", "k", 2) == 3


def test_a_sync_adapter_under_async_state_and_the_reverse() -> None:
    async def main() -> None:
        async with (
            AsyncState.from_url("memo://cross") as a,
            AsyncState.from_url("amemo://cross") as b,
        ):
            await a.set("g", "k", {"n": 1})
            assert await b.update("g", "k", [{"type": "increment", "path": "n", "by": 1}]) == {
                "n": 2
            }
            assert (await a.get_item("g", "k")).version == 2

    asyncio.run(main())


# -- sqlite:// ---------------------------------------------------------------------------


def _url(path: Path, query: str = "") -> str:
    return f"sqlite://{path}{query}"


def test_sqlite_keeps_state_across_reopening_and_creates_its_file_private(
    tmp_path: Path,
) -> None:
    path = tmp_path / "deep" / "er" / "s.db"
    with State.from_url(_url(path)) as state:
        state.set("g", "k", {"big": 2**63 - 1, "f": 0.1})
        state.set("g", "k", "v2")
        state.delete("g", "k")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with State.from_url(_url(path)) as state:
        assert state.set("g", "k", 1) == 4  # the floor survived: no version repeats


@pytest.mark.parametrize(
    "name", ["nul\x00inside", "ünï©ødé ✓ 🚀", "'; DROP TABLE items; --", "%", "_", "g" * 1023]
)
def test_sqlite_takes_hostile_names(tmp_path: Path, name: str) -> None:
    with State.from_url(_url(tmp_path / "s.db")) as state:
        state.set(name, name, {"v": name})
        state.set(name + "x", "k", 1)
        assert state.get(name, name) == {"v": name}
        assert state.keys(name) == [name]
        assert name in state.list_groups()
        assert state.clear(name) == 1
        assert state.get(name + "x", "k") == 1


def _increment_many(url: str, times: int) -> None:
    with State.from_url(url) as state:
        for _ in range(times):
            state.increment("counters", "n")


def test_sqlite_is_exact_across_processes(tmp_path: Path) -> None:
    url = _url(tmp_path / "s.db")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_increment_many, args=(url, 150)) for _ in range(3)]
    for worker in workers:
        worker.start()
    _increment_many(url, 150)
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    with State.from_url(url) as state:
        assert state.get("counters", "n") == 600
        assert state.get_item("counters", "n").version == 600


def test_a_sqlite_write_waiting_past_its_timeout_is_busy_and_writes_nothing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "s.db"
    with State.from_url(_url(path, "?timeout=0.2")) as state:
        state.set("g", "k", 1)
        holder = sqlite3.connect(path, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")  # another process's write, never finishing
        try:
            with pytest.raises(ServerBusy, match="locked"):
                state.set("g", "k", 2)
            assert state.get("g", "k") == 1  # readers go on meanwhile (WAL)
        finally:
            holder.execute("ROLLBACK")
            holder.close()
        assert state.set("g", "k", 3) == 2


class Faulty(sqlite.SqliteAdapter):
    """sqlite:// whose store fails on one key, midway through a call."""

    def set(self, group: str, key: str, record: Record) -> None:
        if key == "bad":
            raise OSError("I/O error")
        super().set(group, key, record)


def test_a_sqlite_failure_midway_rolls_the_whole_call_back(tmp_path: Path) -> None:
    register_adapter("faulty", lambda url: Faulty(sqlite.Settings(str(tmp_path / "s.db"))))
    try:
        with State.from_url("faulty://") as state:
            state.set("g", "a", 1)
            with pytest.raises(BackendUnavailable) as info:
                state.set_many("g", {"a": 2, "b": 2, "bad": 2})
            assert not isinstance(info.value, OutcomeUnknown)  # rolled back: nothing applied

            def transaction() -> None:
                with state.transaction() as tx:
                    tx.set("g", "a", 3)
                    tx.increment("g", "n")
                    tx.set("g", "bad", 3)

            with pytest.raises(BackendUnavailable):
                transaction()
            assert state.items("g") == {"a": 1}
            assert state.get_item("g", "a").version == 1
    finally:
        unregister_adapter("faulty")


def test_sqlite_file_faults_are_typed_and_name_the_file(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(BackendUnavailable, match=r"garbage\.db.*not a database"):
        State.from_url(_url(garbage))
    assert garbage.read_bytes().startswith(b"this is not")  # left as it was
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(BackendUnavailable, match=r"file/s\.db"):
        State.from_url(_url(blocker / "s.db"))  # its folder is a file
    newer = tmp_path / "newer.db"
    with sqlite3.connect(newer) as connection:
        connection.execute("PRAGMA user_version=99")
    with pytest.raises(BackendUnavailable, match="newer motia-state"):
        State.from_url(_url(newer))


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes anything")
def test_a_read_only_sqlite_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with State.from_url(_url(path)) as state:
        state.set("g", "k", 1)
    path.chmod(0o400)
    with pytest.raises((PermissionDenied, BackendUnavailable)):
        State.from_url(_url(path)).set("g", "k", 2)


def test_a_sqlite_file_made_read_only_refuses_writes_and_keeps_reads(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    with State.from_url(_url(path)) as state:
        state.set("g", "k", 1)
    with State.from_url(_url(path, "?mode=ro")) as state:
        assert state.get("g", "k") == 1
        with pytest.raises(PermissionDenied, match="readonly"):
            state.set("g", "k", 2)
        assert state.get_item("g", "k").version == 1
    with pytest.raises(BackendUnavailable, match="unable to open"):
        State.from_url(_url(tmp_path / "absent.db", "?mode=ro"))
    assert not (tmp_path / "absent.db").exists()


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?timeout=soon", "timeout"),
        ("?timeout=-1", "timeout"),
        ("?synchronous=off", "synchronous"),
        ("?journal=delete", "query options"),
        ("?timeout=1&timeout=2", "each once"),
        ("?mode=rwc", "mode"),
    ],
)
def test_sqlite_query_options_are_checked(tmp_path: Path, query: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        State.from_url(_url(tmp_path / "s.db", query))
    assert not (tmp_path / "s.db").exists()


def test_sqlite_in_memory_and_after_close(tmp_path: Path) -> None:
    state = State.from_url("sqlite://:memory:")
    state.set("g", "k", 1)
    assert State.from_url("sqlite://:memory:").get("g", "k") is None  # a store of its own
    state.close()
    with pytest.raises(StateError):
        state.get("g", "k")


def test_async_adapters_are_awaited_not_run_in_threads() -> None:
    seen: list[bool] = []

    class Probe(AsyncStateAdapter):
        async def get(self, group: str, key: str) -> Record | None:
            seen.append(asyncio.get_running_loop() is loop)
            return None

        async def set(self, group: str, key: str, record: Record) -> None: ...
        async def delete(self, group: str, key: str) -> None: ...
        async def clear(self, group: str) -> None: ...
        async def cleanup(self, now_ms: int) -> int:
            return 0

        async def items(self, group: str) -> list[tuple[str, Record]]:
            return []

        async def list_groups(self) -> list[str]:
            return []

    register_adapter("probe", lambda url: Probe())
    loop = asyncio.new_event_loop()
    try:

        async def main() -> None:
            async with AsyncState.from_url("probe://") as state:
                assert await state.get("g", "k") is None

        loop.run_until_complete(main())
        assert seen == [True]
    finally:
        loop.close()
        unregister_adapter("probe")
