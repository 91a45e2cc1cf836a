"""Test harness: real servers on free loopback ports, one contract over every backend.

Backends: ``memory``, ``file``, ``embedded`` (the embedded extra's valkey-server
8.1 through ``embedded://``) and ``redis`` (Debian's redis-server 7.0 when on
PATH, else the embedded binary; or the server at MOTIA_STATE_TEST_REDIS_URL).
Every contract test runs through `State` and through `AsyncState`.
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.cluster

from motia_state.backends import embedded
from motia_state.layout import KeyLayout
from motia_state.server import ServerProcess

from .servers import Cluster, cluster, standalone

# The contract suite is a plugin (loaded below, with pytest_plugins) whose exported tests this
# run imports: marked before its first import, its asserts get pytest's explanations.
pytest.register_assert_rewrite("motia_state.testing")

from motia_state import testing  # noqa: E402
from motia_state.testing import Blocking as Blocking  # noqa: E402
from motia_state.testing import Opener as Opener  # noqa: E402
from motia_state.testing import settle as settle  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
REDIS_CONF = ROOT / "docker" / "redis.conf"
NO_PERSISTENCE = ("--appendonly", "no", "--save", "")

CLUSTER_CONF = ROOT / "docker" / "cluster.conf"
SENTINEL_CONF = ROOT / "docker" / "sentinel.conf"
# Debian's redis-server where installed, else the embedded extra's valkey-server.
TEST_BINARY = shutil.which("redis-server") or embedded.valkey_binary()

# The contract suite's fixtures (open_state, state) and its capability skips; `target` below
# overrides the plugin's, so the exported tests run on every backend here.
pytest_plugins = ["motia_state.testing"]

BACKENDS = ["memory", "file", "sqlite", "embedded", "redis", "cluster"]
REDIS_BACKENDS = {"embedded", "redis", "cluster"}


class Servers:
    """The servers of one test session, started on first use."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._redis: tuple[str, str] | None = None
        self._embedded: str | None = None
        self._cluster: Cluster | None = None
        self.started: list[ServerProcess] = []

    def start(self, binary: str, name: str, *extra: str, port: int | None = None) -> ServerProcess:
        workdir = self.workdir / name
        server = standalone(binary, REDIS_CONF, workdir, *NO_PERSISTENCE, *extra, port=port)
        self.started.append(server)
        return server

    def redis(self) -> tuple[str, str]:
        """(url, server name) of the standalone Redis for the ``redis`` backend."""
        if self._redis is None:
            outside = os.environ.get("MOTIA_STATE_TEST_REDIS_URL")
            if outside:
                self._redis = (outside, "outside")
            else:
                server = self.start(TEST_BINARY, "redis")
                self._redis = (server.url, Path(TEST_BINARY).name)
        return self._redis

    def cluster(self) -> Cluster:
        """Three masters on loopback, from docker/cluster.conf, for the ``cluster`` backend."""
        if self._cluster is None:
            self._cluster = cluster(
                TEST_BINARY, CLUSTER_CONF, self.workdir / "cluster", *NO_PERSISTENCE
            )
        return self._cluster

    def embedded_dir(self) -> Path:
        return self.workdir / "embedded"

    def embedded_socket(self) -> str:
        """Holds the embedded server for the whole session, so tests do not restart it."""
        if self._embedded is None:
            self._embedded = embedded.acquire(self.embedded_dir())
        return self._embedded

    def stop(self) -> None:
        if self._embedded is not None:
            embedded.release(self.embedded_dir())
        for server in self.started:
            server.stop()
        if self._cluster is not None:
            self._cluster.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked redis_only run on the Redis backends and are not collected for the others."""
    keep, drop = [], []
    for item in items:
        params = getattr(item, "callspec", None)
        backend = params.params.get("target") if params else None
        redis_only = item.get_closest_marker("redis_only") is not None
        (drop if redis_only and backend not in (None, *REDIS_BACKENDS) else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


LEFTOVER_GRACE_S = 15.0
EXIT_WATCHDOG_S = 120


@pytest.fixture(autouse=True)
def _nothing_left_running() -> Iterator[None]:
    """Fail a test that leaves a child process or a non-daemon thread running.

    Python waits for both when it exits, so one that never ends would hang the whole
    run after its last test has passed, with nothing saying which test left it.
    """
    before = set(threading.enumerate())
    yield
    deadline = time.monotonic() + LEFTOVER_GRACE_S
    while True:
        children = multiprocessing.active_children()
        threads = [
            t for t in threading.enumerate() if t not in before and not t.daemon and t.is_alive()
        ]
        if not (children or threads) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    for child in children:
        child.kill()
        child.join(5)
    assert not children, f"child processes still running after the test: {children}"
    assert not threads, f"non-daemon threads still running after the test: {threads}"


@pytest.hookimpl(wrapper=True)
def pytest_sessionfinish() -> Iterator[None]:
    """Once the summary is out, anything still blocking for minutes prints every thread's
    stack and ends the run (exit status 1) instead of holding CI until its time limit."""
    yield
    faulthandler.dump_traceback_later(EXIT_WATCHDOG_S, exit=True, file=sys.__stderr__)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    s = Servers(tmp_path_factory.mktemp("servers"))
    yield s
    s.stop()


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    primary = standalone(TEST_BINARY, REDIS_CONF, tmp_path / "primary", *NO_PERSISTENCE)
    replica = standalone(
        TEST_BINARY,
        REDIS_CONF,
        tmp_path / "replica",
        *NO_PERSISTENCE,
        "--replicaof",
        "127.0.0.1",
        str(primary.port),
    )
    try:
        deadline = time.monotonic() + 20
        with replica.client() as c:
            while c.info("replication").get("master_link_status") != "up":
                assert time.monotonic() < deadline, "the replica did not sync"
                time.sleep(0.05)
        yield primary, replica
    finally:
        if replica.proc is not None:
            os.kill(replica.proc.pid, signal.SIGCONT)
        replica.stop()
        primary.stop()


def _raw(url: str) -> Any:
    """A plain redis-py client: RedisCluster for a cluster URL."""
    if url.startswith("redis+cluster://"):
        host, _, port = url[len("redis+cluster://") :].split(",")[0].rpartition(":")
        return redis.cluster.RedisCluster(host=host, port=int(port))
    return redis.Redis.from_url(url)


def _purge(url: str, prefix: str) -> None:
    """Remove what a test wrote under its own prefix (polite to an outside server)."""
    layout = KeyLayout(prefix)
    with _raw(url) as r:
        for pattern in (layout.scan_pattern(), layout.meta_root + b"*"):
            keys = list(r.scan_iter(match=pattern, count=1000))
            for key in keys:
                r.unlink(key)


class Target(testing.Target):
    """One backend for one test: its URL and the options that isolate the test."""

    def __init__(self, name: str, url: str, options: dict[str, Any], raw_url: str | None) -> None:
        super().__init__(url, options)
        self.name = name
        self.raw_url = raw_url  # a plain redis-py URL to inspect the server, for Redis backends

    @property
    def is_redis(self) -> bool:
        return self.name in REDIS_BACKENDS

    def raw(self) -> Any:
        assert self.raw_url is not None
        return _raw(self.raw_url)

    def layout(self) -> KeyLayout:
        return KeyLayout(self.options.get("prefix", "motia:state:"), cluster=self.name == "cluster")


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest, servers: Servers, tmp_path: Path) -> Iterator[Target]:
    name = request.param
    prefix = f"t{uuid.uuid4().hex[:10]}:"
    if name == "memory":
        yield Target(name, "memory://", {}, None)
    elif name == "file":
        yield Target(name, f"file://{tmp_path / 'motia.state.json'}", {}, None)
    elif name == "sqlite":  # the built-in adapter: custom adapters' path through the engine
        yield Target(name, f"sqlite://{tmp_path / 'motia.state.db'}", {}, None)
    elif name == "embedded":
        socket = servers.embedded_socket()
        data_dir = servers.embedded_dir()
        yield Target(name, f"embedded://{data_dir}", {"prefix": prefix}, f"unix://{socket}")
        _purge(f"unix://{socket}", prefix)
    elif name == "cluster":
        url = servers.cluster().url
        yield Target(name, url, {"prefix": prefix}, url)
        _purge(url, prefix)
    else:
        url, _ = servers.redis()
        yield Target(name, url, {"prefix": prefix}, url)
        _purge(url, prefix)
