"""Starting, probing and stopping one local redis-server or valkey-server process.

The ``embedded://`` backend runs its private server through `ServerProcess`, so this is
part of the runtime and holds only what the runtime needs. The test and benchmark
harness (free ports, standalone servers, Sentinels, Clusters) lives in ``tests/servers.py``
instead, out of the installed package; it builds on `ServerProcess` so that every server
this project starts is started, probed and stopped one way.
"""

from __future__ import annotations

import contextlib
import functools
import shutil
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


@functools.cache
def _setpriv() -> str | None:
    """util-linux's ``setpriv``, if it can set a parent-death signal (2.33 and later)."""
    path = shutil.which("setpriv")
    if sys.platform != "linux" or path is None:
        return None
    try:
        usage = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return path if "--pdeathsig" in usage.stdout else None


def _tied_to_this_thread(argv: list[str]) -> list[str]:
    """``argv`` run so that the kernel SIGTERMs the server if this process dies (a killed
    test run or step leaves no orphan), where ``setpriv`` can arrange it.

    Not done with ``preexec_fn``: Python code between fork and exec runs after the other
    threads' states were dropped in the child, and a lock one of them held (a connection
    pool's, say) then deadlocks the child before it ever execs, and ``Popen`` with it.
    Linux sends the signal when the creating *thread* exits, so only the main thread ties.
    """
    setpriv = _setpriv()
    if setpriv is None or threading.current_thread() is not threading.main_thread():
        return argv
    return [setpriv, "--pdeathsig", "TERM", "--", *argv]


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
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                _tied_to_this_thread([self.binary, *self.args]),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
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
