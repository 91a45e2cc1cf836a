"""Starting and stopping a local redis-server or valkey-server process.

Used by the ``embedded://`` backend and by the test and benchmark harnesses, so
that every server this project starts is started, probed and stopped one way.
"""

from __future__ import annotations

import contextlib
import ctypes
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import redis
import redis.backoff
import redis.retry

from .errors import BackendUnavailable


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG: no orphaned server if we are killed


class ServerProcess:
    """One server process in the foreground of this process, reached over TCP or a unix socket."""

    def __init__(
        self,
        binary: str,
        args: Sequence[str],
        *,
        log_path: Path,
        port: int | None = None,
        unix_socket: str | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        self.binary = binary
        self.args = list(args)
        self.log_path = log_path
        self.port = port
        self.unix_socket = unix_socket
        self.host = host
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        if self.unix_socket:
            return f"unix://{self.unix_socket}"
        return f"redis://{self.host}:{self.port}"

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A plain client for probes and admin commands: no retries, so a probe fails fast."""
        no_retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
        if self.unix_socket:
            return redis.Redis(
                unix_socket_path=self.unix_socket, socket_timeout=timeout, retry=no_retry
            )
        return redis.Redis(
            host=self.host, port=self.port or 6379, socket_timeout=timeout, retry=no_retry
        )

    def start(self, timeout: float = 15.0) -> None:
        # Tie the server's life to ours, but only from the main thread: Linux sends the
        # signal when the creating *thread* exits, which for a worker thread is far too early.
        tie = sys.platform == "linux" and threading.current_thread() is threading.main_thread()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [self.binary, *self.args],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent if tie else None,
            )
        self.wait_ready(timeout)

    def wait_ready(self, timeout: float) -> None:
        """Readiness probe: PING until PONG (a server still loading its data answers LOADING)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                break
            try:
                with self.client(timeout=1.0) as probe:
                    if probe.ping():
                        return
            except redis.RedisError as exc:
                last = exc
            time.sleep(0.02)
        tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
        self.stop()
        raise BackendUnavailable(f"{self.binary} did not become ready ({last}); log tail:\n{tail}")

    def stop(self, timeout: float = 10.0) -> None:
        """SHUTDOWN (persisting as configured), then wait; kill if it will not go."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        with contextlib.suppress(redis.RedisError), self.client(timeout=timeout) as c:
            c.shutdown()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def free_port(host: str = "127.0.0.1", *, cluster: bool = False) -> int:
    """A free loopback port; ``cluster=True`` also needs port + 10000 free (the cluster bus)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port: int = s.getsockname()[1]
        if not cluster:
            return port
        if port + 10000 <= 65535:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                try:
                    s.bind((host, port + 10000))
                except OSError:
                    continue
            return port


def standalone(
    binary: str, config: Path, workdir: Path, *extra: str, port: int | None = None
) -> ServerProcess:
    """A server on a free loopback port from ``config`` (a file under ``docker/``), started."""
    port = port or free_port()
    workdir.mkdir(parents=True, exist_ok=True)
    args = [str(config), "--port", str(port), "--dir", str(workdir), "--daemonize", "no", *extra]
    server = ServerProcess(binary, args, log_path=workdir / "server.log", port=port)
    server.start()
    return server
