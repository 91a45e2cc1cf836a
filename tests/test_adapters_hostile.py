"""Custom adapters written carelessly, and sqlite:// under hostile conditions: what the engine
must still promise (typed errors, no secret in a message, no hang, a write whole or absent,
an unknown outcome called unknown) whatever the adapter does wrong.

The adapters here are the example package's (memo://) with one method broken each, as a
careless author would break it.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest

import motia_state_memo as memo
from motia_state import (
    AsyncState,
    BackendUnavailable,
    OutcomeUnknown,
    State,
    StateError,
    VersionConflict,
    register_adapter,
    unregister_adapter,
)
from motia_state.backends import sqlite


@pytest.fixture
def scheme() -> Iterator[Any]:
    """Registers ``hostile://`` to open the adapter a test makes."""

    def use(make: Any) -> str:
        register_adapter("hostile", lambda url: make(url), replace=True)
        return "hostile://"

    yield use
    unregister_adapter("hostile")


# -- atomic() blocks written wrong ------------------------------------------------------


class Swallowing(memo.MemoAdapter):
    """A transaction block that rolls back on error and forgets to raise again: the commonest
    mistake in a hand-written context manager."""

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self.store.lock:
            try:  # noqa: SIM105 (the careless author's own rollback)
                yield
            except Exception:
                pass


class AsyncSwallowing(memo.AsyncMemoAdapter):
    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        with self._sync.store.lock:
            try:  # noqa: SIM105 (the careless author's own rollback)
                yield
            except Exception:
                pass


def test_an_atomic_block_that_swallows_errors_cannot_hide_a_conflict(scheme: Any) -> None:
    with State.from_url(scheme(lambda url: Swallowing(memo.Store()))) as state:
        state.set("g", "k", 1)
        with pytest.raises(VersionConflict):
            state.set("g", "k", 2, version=5)
        with pytest.raises(StateError):
            state.update("g", "k", [{"type": "increment", "path": "a", "by": 1}])
        assert state.get_item("g", "k").version == 1


def test_an_async_atomic_block_that_swallows_errors_cannot_hide_a_conflict(
    scheme: Any,
) -> None:
    url = scheme(lambda url: AsyncSwallowing(memo.Store()))

    async def main() -> None:
        async with AsyncState.from_url(url) as state:
            await state.set("g", "k", 1)
            with pytest.raises(VersionConflict):
                await state.set("g", "k", 2, version=5)
            assert (await state.get_item("g", "k")).version == 1

    asyncio.run(main())


class CommitLost(memo.MemoAdapter):
    """A store whose commit applies and then reports a failure (a connection lost while the
    server committed): whether the write applied cannot be known."""

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self.store.lock:
            yield
        raise ConnectionError("connection reset during COMMIT")


class AsyncCommitLost(memo.AsyncMemoAdapter):
    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        with self._sync.store.lock:
            yield
        raise ConnectionError("connection reset during COMMIT")


def test_a_commit_that_fails_after_the_block_ran_is_an_unknown_outcome(scheme: Any) -> None:
    store = memo.Store()
    with State.from_url(scheme(lambda url: CommitLost(store))) as state:
        with pytest.raises(OutcomeUnknown, match="COMMIT"):
            state.set("g", "k", 1)
        with pytest.raises(OutcomeUnknown):
            state.increment("g", "n")
    assert set(store.groups["g"]) == {"k", "n"}  # it did apply: not "nothing was sent"


def test_an_async_commit_that_fails_after_the_block_ran_is_an_unknown_outcome(
    scheme: Any,
) -> None:
    url = scheme(lambda url: AsyncCommitLost(memo.Store()))

    async def main() -> None:
        async with AsyncState.from_url(url) as state:
            with pytest.raises(OutcomeUnknown, match="COMMIT"):
                await state.set("g", "k", 1)

    asyncio.run(main())


# -- an async adapter under the synchronous State (OnLoop) ----------------------------------


def test_an_async_adapter_closed_refuses_calls_with_a_typed_error() -> None:
    state = State.from_url("amemo://")
    state.set("g", "k", 1)
    state.close()
    with pytest.raises(BackendUnavailable, match="closed"):
        state.get("g", "k")
    with pytest.raises(BackendUnavailable, match="closed"):
        state.set("g", "k", 2)
    state.close()  # twice is fine


class Slow(memo.AsyncMemoAdapter):
    """A read that waits on a network round trip the test decides the end of."""

    entered = threading.Event()
    release: threading.Event | None = None  # armed once set

    async def get(self, group: str, key: str) -> memo.Record | None:
        if self.release is not None:
            self.entered.set()
            while not self.release.is_set():
                await asyncio.sleep(0.01)
        return await super().get(group, key)


def test_closing_an_async_adapter_under_a_call_in_flight_does_not_hang_the_caller(
    scheme: Any,
) -> None:
    adapter = Slow(memo.Store())
    state = State.from_url(scheme(lambda url: adapter))
    state.set("g", "slow", 1)
    adapter.entered, adapter.release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def read() -> None:
        try:
            outcome.append(state.get("g", "slow"))
        except StateError as exc:
            outcome.append(exc)

    reader = threading.Thread(target=read)
    reader.start()
    assert adapter.entered.wait(10)
    closer = threading.Thread(target=state.close)
    closer.start()
    while True:  # until the close has begun: new calls are refused, the read still waits
        try:
            state.list_groups()
        except BackendUnavailable:
            break
    adapter.release.set()
    closer.join(10)
    reader.join(10)
    assert not closer.is_alive()
    assert not reader.is_alive()
    assert outcome == [1]  # the call in flight finished before the adapter closed


# -- secrets in an adapter's own messages ------------------------------------------------------


def test_a_password_in_an_adapters_error_is_never_repeated(scheme: Any) -> None:
    class Leaky(memo.MemoAdapter):
        url = ""

        def get(self, group: str, key: str) -> memo.Record | None:
            raise ConnectionError(f"lost the connection to {self.url}")

    def make(url: str) -> Leaky:
        adapter = Leaky(memo.Store())
        adapter.url = url
        return adapter

    scheme(make)
    url = "hostile://admin:hunter2@db.example:5432/x?token=s3cr3t"
    with State.from_url(url) as state, pytest.raises(BackendUnavailable) as info:
        state.get("g", "k")
    for shown in (str(info.value), repr(info.value)):
        assert "hunter2" not in shown
        assert "s3cr3t" not in shown
        assert "ConnectionError" in shown
        assert "db.example" in shown

    def refuse(url: str) -> memo.MemoAdapter:
        raise ValueError(f"bad DSN {url}")

    scheme(refuse)
    with pytest.raises(BackendUnavailable, match="bad DSN") as opened:
        State.from_url(url)
    assert "hunter2" not in str(opened.value)
    assert "s3cr3t" not in str(opened.value)
    assert opened.value.__cause__ is None  # the original, password and all, is not chained


def test_a_password_in_an_engine_error_an_adapter_raises_is_never_repeated(scheme: Any) -> None:
    """An adapter may raise the engine's own errors (sqlite:// does): still no secret, sync,
    async or from the factory, and the error keeps the type the adapter chose."""
    url = "hostile://admin:hunter2@db.example:5432/x?token=s3cr3t"

    def lost(url: str) -> BackendUnavailable:
        try:
            raise ConnectionError(f"reset by {url}")
        except ConnectionError as exc:  # chained, as an adapter's error usually is
            try:
                raise BackendUnavailable(f"lost {url}") from exc
            except BackendUnavailable as error:
                return error

    class Leaky(memo.MemoAdapter):
        def get(self, group: str, key: str) -> memo.Record | None:
            raise lost(url)

    class AsyncLeaky(memo.AsyncMemoAdapter):
        async def get(self, group: str, key: str) -> memo.Record | None:
            raise lost(url)

    def refuse(url: str) -> memo.MemoAdapter:
        raise lost(url)

    for make in (lambda url: Leaky(memo.Store()), lambda url: AsyncLeaky(memo.Store())):
        scheme(make)
        with State.from_url(url) as state, pytest.raises(BackendUnavailable) as info:
            state.get("g", "k")
        assert "db.example" in str(info.value)
        for shown in (str(info.value), repr(info.value)):
            assert "hunter2" not in shown
            assert "s3cr3t" not in shown
        assert info.value.__cause__ is None
    scheme(refuse)
    with pytest.raises(BackendUnavailable, match="lost") as opened:
        State.from_url(url)
    assert "hunter2" not in str(opened.value)
    assert "s3cr3t" not in str(opened.value)
    assert opened.value.__cause__ is None


# -- what an adapter returns -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "returned", "message"),
    [
        ("get", lambda self, g, k: memo.Record("text", 1), "Record.data is str"),
        ("get", lambda self, g, k: memo.Record(b"1", "1"), "Record.version is '1'"),
        ("get", lambda self, g, k: memo.Record(b"1", 1, 1.5), "Record.expires_at is 1.5"),
        ("get", lambda self, g, k: {"data": b"1", "version": 1}, "get returned dict"),
        ("items", lambda self, g: [("k", b"1")], "items returned bytes, not a Record"),
        ("items", lambda self, g: {"k": memo.Record(b"1", 1)}, "items returned dict"),
        ("meta", lambda self, g: None, "meta returned None"),
        ("list_groups", lambda self: "g", "list_groups returned str"),
    ],
)
def test_an_adapter_returning_the_wrong_type_is_a_typed_error_naming_it(
    scheme: Any, method: str, returned: Any, message: str
) -> None:
    broken = type("Broken", (memo.MemoAdapter,), {method: returned})
    read = {
        "get": lambda state: state.get_item("g", "k"),
        "items": lambda state: state.items("g"),
        "meta": lambda state: state.get_group("g"),
        "list_groups": lambda state: state.list_groups(),
    }[method]
    store = memo.Store()
    memo.MemoAdapter(store).set("g", "k", memo.Record(b"1", 1))
    state = State.from_url(scheme(lambda url: broken(store)))
    with state, pytest.raises(BackendUnavailable, match=re.escape(message)):
        read(state)


# -- sqlite:// -----------------------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "?mode=ro"])
def test_sqlite_on_a_path_that_is_not_a_regular_file_is_refused_and_creates_nothing(
    tmp_path: Path, query: str
) -> None:
    fifo = tmp_path / "s.db"
    os.mkfifo(fifo)
    with pytest.raises(BackendUnavailable, match="not a regular file"):
        State.from_url(f"sqlite://{fifo}{query}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.db"]


class Small(sqlite.SqliteAdapter):
    """sqlite:// on a disk that fills up: SQLITE_FULL midway through a write."""

    def __init__(self, settings: sqlite.Settings) -> None:
        super().__init__(settings)
        self._connection.execute("PRAGMA max_page_count=12")


def test_sqlite_full_midway_rolls_the_write_back_whole_and_says_so(
    scheme: Any, tmp_path: Path
) -> None:
    with State.from_url(
        scheme(lambda url: Small(sqlite.Settings(str(tmp_path / "s.db"))))
    ) as state:
        state.set("g", "a", 1)
        with pytest.raises(BackendUnavailable, match="disk is full") as info:
            state.set_many("g", {f"k{i}": "x" * 3000 for i in range(30)})
        assert not isinstance(info.value, OutcomeUnknown)

        def transaction() -> None:
            with state.transaction() as tx:
                tx.set("g", "a", 2)
                for i in range(30):
                    tx.set("g", f"t{i}", "y" * 3000)

        with pytest.raises(BackendUnavailable, match="disk is full"):
            transaction()
        assert state.items("g") == {"a": 1}
        assert state.get_item("g", "a").version == 1
        assert state.set("g", "b", 2) == 1  # and the store goes on
