"""redis+sentinel://: a primary and its replica watched by a real Sentinel, with a failover.

The Sentinel runs from docker/sentinel.conf (a copy, with the monitor line pointed at the
harness's primary); ``SENTINEL FAILOVER`` swaps the roles the way a real outage does,
without waiting out ``down-after-milliseconds``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from motia_state import AsyncState, BackendUnavailable, InvalidInput, OutcomeUnknown, State
from motia_state.cli import main
from motia_state.server import ServerProcess

from .conftest import SENTINEL_CONF, TEST_BINARY
from .servers import sentinel
from .test_bridge import externals

Servers = tuple[ServerProcess, ServerProcess, ServerProcess]


@pytest.fixture
def watched(
    primary_and_replica: tuple[ServerProcess, ServerProcess], tmp_path: Path
) -> Iterator[Servers]:
    primary, replica = primary_and_replica
    watcher = sentinel(TEST_BINARY, SENTINEL_CONF, tmp_path / "sentinel", primary)
    try:
        deadline = time.monotonic() + 20
        with watcher.client() as s:  # until the Sentinel has found the replica
            while not s.execute_command("SENTINEL", "REPLICAS", "motia"):
                assert time.monotonic() < deadline, "the Sentinel did not find the replica"
                time.sleep(0.1)
        yield primary, replica, watcher
    finally:
        watcher.stop()


def _url(watcher: ServerProcess, tail: str = "/motia") -> str:
    return f"redis+sentinel://{watcher.host}:{watcher.port}{tail}"


def _fail_over(watcher: ServerProcess, to: ServerProcess) -> None:
    """SENTINEL FAILOVER, then wait until the Sentinel names ``to`` as the primary and ``to``
    itself says it is one."""
    with watcher.client() as s:
        deadline = time.monotonic() + 30
        while True:
            try:
                s.execute_command("SENTINEL", "FAILOVER", "motia")
                break
            except redis.ResponseError as exc:  # NOGOODSLAVE until it has polled the replica
                if "NOGOODSLAVE" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        while True:
            _, port = s.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "motia")
            with to.client() as c:
                if int(port) == to.port and c.execute_command("ROLE")[0] == b"master":
                    return
            assert time.monotonic() < deadline, "the failover did not complete"
            time.sleep(0.1)


def _has_replica(primary: ServerProcess, timeout: float = 30.0) -> None:
    """Until the old primary, turned replica by the Sentinel, is in sync with ``primary``."""
    deadline = time.monotonic() + timeout
    with primary.client() as c:
        while c.info("replication").get("slave0", {}).get("state") != "online":
            assert time.monotonic() < deadline, "the old primary did not follow the new one"
            time.sleep(0.1)


def _eventually(call: Any, timeout: float = 20.0) -> Any:
    """``call()`` once it stops raising BackendUnavailable (the failover's brief gap)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except BackendUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_the_primary_is_found_and_followed_through_a_failover(watched: Servers) -> None:
    primary, replica, watcher = watched
    with State.from_url(_url(watcher), durability="replicated", replica_timeout=2.0) as state:
        assert state.set("orders", "o1", {"n": 1}) == 1
        assert state.increment("orders", "count") == 1
        with primary.client() as p:  # written to the primary the Sentinel named
            assert p.hget(b"motia:state:orders", b"o1") == b'{"n":1}'
        _fail_over(watcher, to=replica)
        _has_replica(replica)  # else a replicated write raises NotReplicated, as it should
        # the same State, no restart: the next calls reach the promoted replica
        assert _eventually(lambda: state.get("orders", "o1")) == {"n": 1}
        assert _eventually(lambda: state.increment("orders", "count")) == 2
        assert state.set("orders", "o2", 2) == 1
        with replica.client() as r:
            assert r.hget(b"motia:state:orders", b"o2") == b"2"
        assert state.items("orders") == {"o1": {"n": 1}, "count": 2, "o2": 2}


def _named(server: ServerProcess, name: str) -> list[str]:
    """The commands the clients called ``name`` last sent to ``server``."""
    with server.client() as c:
        found = c.execute_command("CLIENT", "LIST").decode().splitlines()
    return [line.split(" cmd=")[1].split(" ")[0] for line in found if f" name={name} " in line]


@pytest.mark.parametrize("api", ["sync", "async"])
def test_reads_follow_the_primary_after_a_failover(watched: Servers, api: str) -> None:
    """A connection the failover closed opens again on the new primary, also when redis-py
    reopens it itself (its health check, a send): left to itself it would go back to the
    address it had, the demoted primary, which answers reads as a replica, behind."""
    primary, replica, watcher = watched
    url = _url(watcher, "/motia?client_name=reader")

    async def read_async() -> Any:
        # replicated: the write is on the replica before it is promoted, or it could be lost
        async with AsyncState.from_url(url, durability="replicated", replica_timeout=5.0) as state:
            await state.set("g", "k", 1)
            _fail_over(watcher, to=replica)
            _has_replica(replica)
            deadline = time.monotonic() + 20
            while True:
                try:
                    value = await state.get("g", "k")
                    return value, _named(primary, "reader"), _named(replica, "reader")
                except BackendUnavailable:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)

    if api == "sync":
        with State.from_url(url, durability="replicated", replica_timeout=5.0) as state:
            state.set("g", "k", 1)
            _fail_over(watcher, to=replica)
            _has_replica(replica)  # the old primary is demoted: Sentinel closed its clients
            value = _eventually(lambda: state.get("g", "k"))
            on_old, on_new = _named(primary, "reader"), _named(replica, "reader")
    else:
        value, on_old, on_new = asyncio.run(read_async())
    assert value == 1
    assert on_old == []  # nothing reads from the demoted primary
    assert "evalsha" in on_new


def test_asyncstate_follows_a_failover_too(watched: Servers) -> None:
    _, replica, watcher = watched

    async def scenario() -> None:
        async with AsyncState.from_url(_url(watcher, "/motia/3")) as state:
            assert await state.set("g", "k", 1) == 1
            assert await asyncio.gather(*(state.increment("g", "n") for _ in range(20))) == list(
                range(1, 21)
            )
            await asyncio.to_thread(_fail_over, watcher, replica)
            # Until the Sentinel demotes the old primary, it still takes writes that the
            # promoted replica never sees: the window `durability="replicated"` closes.
            await asyncio.to_thread(_has_replica, replica)
            deadline = time.monotonic() + 20
            while True:
                try:
                    assert await state.increment("g", "n") == 21
                    break
                except BackendUnavailable:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.1)
            assert await state.get("g", "k") == 1

    asyncio.run(scenario())
    with replica.client() as r:  # db 3, as the URL said
        r.select(3)
        assert r.hget(b"motia:state:g", b"n") == b"21"


def test_the_change_feed_and_a_watcher_work_through_sentinel(watched: Servers) -> None:
    _, _, watcher = watched
    with State.from_url(_url(watcher)) as state:
        with state.watch("g", since="0", block=2.0) as watch:
            state.set("g", "a", 1)
            state.delete("g", "a")
            changes = [next(watch), next(watch)]
        assert [(c.op, c.key, c.version) for c in changes] == [("set", "a", 1), ("delete", "a", 2)]


def test_the_bridge_follows_the_primary(watched: Servers) -> None:
    """Sentinel drops the demoted primary's subscribers too: the bridge listens again, on
    the new primary, and says so with a second gap record."""
    primary, replica, watcher = watched
    with State.from_url(_url(watcher)) as state, state.watch(block=0.3) as watch:
        bridge = state.track()
        try:
            with primary.client() as p:
                p.hset(b"motia:state:g", b"by-hand", b"1")
            assert externals(watch, timeout=20, until=2) == [(None, "gap"), ("g", "hset")]
            _fail_over(watcher, to=replica)
            _has_replica(replica)
            assert externals(watch, timeout=20, until=1) == [(None, "gap")]
            with replica.client() as r:
                r.hdel(b"motia:state:g", b"by-hand")
            assert externals(watch, timeout=20, until=1) == [("g", "hdel")]
        finally:
            bridge.stop()


def test_migrate_reads_motia_v0_through_sentinel(watched: Servers) -> None:
    primary, _, watcher = watched
    with primary.client() as p:
        for i in range(30):
            p.set(f"motia:state:g{i % 3}:k{i}", json.dumps({"i": i}))
    result = CliRunner().invoke(
        main,
        ["migrate", "--from", _url(watcher), "--layout", "motia-v0", "--to", "memory://", "--json"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["read"], report["written"], report["groups"]) == (30, 30, 3)


@pytest.mark.parametrize(
    "tail",
    ["", "/", "/motia/x"],
    ids=["no service", "empty service", "bad db"],
)
def test_a_sentinel_url_names_its_service(tail: str) -> None:
    with pytest.raises(InvalidInput, match="service name"):
        State.from_url(f"redis+sentinel://127.0.0.1:26379{tail}")


def test_no_sentinel_answering_is_backend_unavailable() -> None:
    with (
        State.from_url("redis+sentinel://127.0.0.1:1/motia", socket_connect_timeout=1) as state,
        pytest.raises(BackendUnavailable, match="no Sentinel named in the URL knows it"),
    ):
        state.get("g", "k")
    with (  # nothing was sent: a write too fails plainly, never as OutcomeUnknown
        State.from_url("redis+sentinel://u:s3cret@127.0.0.1:1,127.0.0.1:2/motia") as state,
        pytest.raises(BackendUnavailable) as raised,
    ):
        state.set("g", "k", 1)
    assert not isinstance(raised.value, OutcomeUnknown)
    assert "s3cret" not in str(raised.value) + repr(state)
    assert "u:***@127.0.0.1:1,127.0.0.1:2/motia" in str(raised.value)


def test_a_primary_restarted_between_two_calls_gets_the_next_write(watched: Servers) -> None:
    """Through Sentinel too, the connection the restart closed is found before the write leaves:
    the write is applied once (on the restarted primary, or on the replica if the Sentinel
    promoted it meanwhile), never OutcomeUnknown; State and AsyncState."""
    primary, _, watcher = watched

    def restart() -> None:
        primary.stop()
        primary.start()

    with State.from_url(_url(watcher, "/motia/6")) as state:
        state.set("g", "k", 1)
        restart()
        state.set("g", "k", 2)
        assert _eventually(lambda: state.get("g", "k")) == 2

    async def main() -> None:
        async with AsyncState.from_url(_url(watcher, "/motia/6")) as state:
            await state.set("g", "a", 1)
            restart()  # blocks the event loop, as a busy loop would
            await state.set("g", "a", 2)
            assert await state.get("g", "a") == 2

    asyncio.run(main())


def test_the_inspector_on_a_sentinel_follows_a_failover(watched: Servers) -> None:
    """`motia-state ui` on redis+sentinel://: the feed live, and writes that reach the new
    primary once the Sentinel names it."""
    from .ui_server import Inspector, events

    _, replica, watcher = watched
    with Inspector(_url(watcher), prefix="uisentinel:") as inspector:
        info = inspector.client.get("/api/info").json()
        assert (info["backend"], info["live"]) == ("sentinel", "feed")
        body = {"group": "g", "key": "k", "raw": '{"n": 1}', "version": 0}
        with inspector.client.stream("GET", "/api/live", timeout=60) as response:
            stream = events(response)
            assert next(stream)[0] == "hello"
            assert inspector.write("PUT", "/api/item", body).status_code == 200
            change = next(data for name, data in stream if name == "change")
            assert (change["group"], change["key"], change["version"]) == ("g", "k", 1)
        _fail_over(watcher, replica)
        deadline = time.monotonic() + 30
        while True:  # the first calls after the failover may find the old primary gone
            reply = inspector.write("PUT", "/api/item", {**body, "version": 1})
            if reply.status_code == 200:
                break
            assert reply.status_code == 503, reply.text
            assert time.monotonic() < deadline, reply.text
            time.sleep(0.1)
        assert reply.json()["item"]["version"] == 2
    with replica.client() as new_primary:
        assert new_primary.hget("uisentinel:g", "k") is not None
