"""`motia-state ui` as the tests run it: the real command in a process of its own, on a free
loopback port, ready once ``GET /api/info`` answers (never a fixed sleep), stopped after.

Shared by the API tests (tests/test_ui_api.py) and the browser tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from .servers import free_port

CLI = str(Path(sys.executable).with_name("motia-state"))
READY_S = 60.0  # generous: both cores may be busy
WRITE_HEADERS = {"content-type": "application/json", "x-motia-state": "1"}


class Inspector:
    """One running inspector: ``base`` is its address; ``client`` an httpx client on it."""

    def __init__(
        self,
        url: str,
        *,
        prefix: str | None = None,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
        host: str = "127.0.0.1",
        token: str | None = None,
    ) -> None:
        self.port = free_port()
        command = [CLI, "ui", "--url", url, "--port", str(self.port), "--host", host, *args]
        if prefix is not None:
            command += ["--prefix", prefix]
        if token is not None:
            command += ["--token", token]
        self.base = f"http://127.0.0.1:{self.port}"
        self.token = token
        # files, not pipes: a server that logs much must never block on a full pipe
        self._out = tempfile.TemporaryFile("w+")  # noqa: SIM115  (closed in stop)
        self._err = tempfile.TemporaryFile("w+")  # noqa: SIM115
        self.process = subprocess.Popen(
            command,
            stdout=self._out,
            stderr=self._err,
            text=True,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
        headers = {} if token is None else {"authorization": f"Bearer {token}"}
        self.client = httpx.Client(base_url=self.base, headers=headers, timeout=30)
        self.printed = ""  # what it printed on stdout, once stopped
        self.logged = ""  # what it wrote on stderr, once stopped
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_S
        while True:
            if self.process.poll() is not None:
                self.stop()
                raise AssertionError(f"the inspector exited: {self.printed}{self.logged}")
            try:
                if self.client.get("/api/info").status_code in (200, 401):
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise AssertionError(f"the inspector never answered: {self.logged}")
            time.sleep(0.05)

    def write(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return self.client.request(
            method, path, json=body, params=params or None, headers=WRITE_HEADERS
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(15)
        for file, name in ((self._out, "printed"), (self._err, "logged")):
            if not file.closed:
                file.seek(0)
                setattr(self, name, file.read())
                file.close()
        self.client.close()

    def output(self) -> str:
        """What it printed so far (stdout), while it runs."""
        return os.pread(self._out.fileno(), 1 << 20, 0).decode()

    def __enter__(self) -> Inspector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def error(response: httpx.Response, status: int, kind: str) -> str:
    """The API's error answer: its status, its type; returns its message (never empty)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"]["type"] == kind, body
    message: str = body["error"]["message"]
    assert message
    return message


def events(response: httpx.Response) -> Iterator[tuple[str, Any]]:
    """(event, data) of a Server-Sent Events stream, as they arrive."""
    name, data = "message", ""
    for line in response.iter_lines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            data += line[6:]
        elif line == "" and data:
            yield name, json.loads(data)
            name, data = "message", ""


def refused(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``motia-state ui`` that is expected not to start: its exit and output."""
    command = [CLI, "ui", "--url", url, "--port", str(free_port()), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
