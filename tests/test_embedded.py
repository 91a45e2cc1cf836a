"""embedded://: a private valkey-server, started lazily, shared, persistent, stopped on exit."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import redis
import redis.backoff
import redis.retry

from motia_state import AsyncState, BackendUnavailable, State, connect
from motia_state.backends import embedded


def _answers(socket: str) -> bool:
    try:
        no_retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
        with redis.Redis(unix_socket_path=socket, socket_timeout=1, retry=no_retry) as r:
            return bool(r.ping())
    except (redis.RedisError, OSError):
        return False


def _python(code: str, cwd: Path, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_started_lazily_shared_and_stopped_on_close(tmp_path: Path) -> None:
    socket = str(tmp_path / "valkey.sock")
    first = State.from_url(f"embedded://{tmp_path}")
    assert not _answers(socket)  # nothing started until the first call
    first.set("g", "k", 1)
    assert _answers(socket)
    second = State.from_url(f"embedded://{tmp_path}")
    assert second.get("g", "k") == 1
    assert len(embedded._servers) >= 1
    first.close()
    assert _answers(socket)  # still used by `second`
    second.close()
    assert not _answers(socket)


def test_data_persists_across_restarts(tmp_path: Path) -> None:
    with State.from_url(f"embedded://{tmp_path}") as state:
        state.set("orders", "o1", {"n": 1})
        state.set("orders", "o1", {"n": 2})
    with State.from_url(f"embedded://{tmp_path}") as state:
        assert state.get_item("orders", "o1").value == {"n": 2}
        assert state.get_item("orders", "o1").version == 2


def test_async_state_uses_the_same_server(tmp_path: Path) -> None:
    async def main() -> None:
        async with AsyncState.from_url(f"embedded://{tmp_path}") as state:
            await state.set("g", "k", "async")
            with State.from_url(f"embedded://{tmp_path}") as sync_state:
                assert sync_state.get("g", "k") == "async"

    asyncio.run(main())
    assert not _answers(str(tmp_path / "valkey.sock"))


def test_stopped_when_the_process_exits_without_close(tmp_path: Path) -> None:
    _python(
        f"""
        from motia_state import State
        s = State.from_url("embedded://{tmp_path}")
        s.set("g", "k", "left open")
        """,
        cwd=tmp_path,
    )
    assert not _answers(str(tmp_path / "valkey.sock"))
    with State.from_url(f"embedded://{tmp_path}") as state:
        assert state.get("g", "k") == "left open"


def test_a_second_process_attaches_to_the_owners_server(tmp_path: Path) -> None:
    with State.from_url(f"embedded://{tmp_path}") as state:
        state.set("g", "k", "from the owner")
        out = _python(
            f"""
            from motia_state import State
            with State.from_url("embedded://{tmp_path}") as s:
                print(s.get("g", "k"))
                s.set("g", "k2", "from the guest")
            """,
            cwd=tmp_path,
        )
        assert out.strip() == "from the owner"
        assert state.get("g", "k2") == "from the guest"
        assert _answers(str(tmp_path / "valkey.sock"))  # the guest did not stop it


def test_default_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MOTIA_STATE_URL", raising=False)
    assert connect.default_url() == "embedded://.motia"
    monkeypatch.setenv("MOTIA_STATE_URL", "memory://x")
    assert connect.default_url() == "memory://x"


def test_default_backend_runs_in_dot_motia(tmp_path: Path) -> None:
    env = {"MOTIA_STATE_URL": ""}
    out = _python(
        """
        import logging
        logging.basicConfig(level=logging.INFO, format="%(message)s")
        from motia_state import State
        with State.from_url() as s:
            s.set("g", "k", 1)
            print(repr(s))
        """,
        cwd=tmp_path,
        env=env,
    )
    assert out.strip() == "State('embedded://.motia')"
    assert (tmp_path / ".motia" / "appendonlydir").is_dir()


def test_missing_extra_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackendUnavailable, match=r"motia-state\[embedded\]"):
        embedded.valkey_binary()
