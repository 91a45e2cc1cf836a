"""``motia-state`` against hostile input and foreign data: every failure is one line on
stderr with the README's exit code, never a traceback; nothing it prints is reinterpreted.

Foreign data is written with redis-py straight into the hashes, as another tool would.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from motia_state import State
from motia_state.changes import Change
from motia_state.cli import Out, _print_change, main

from .conftest import Servers, _purge
from .test_cli import EXE


class Server:
    """The session's Redis under a prefix of this test's own."""

    def __init__(self, url: str, prefix: str) -> None:
        self.url = url
        self.prefix = prefix
        self.raw = redis.Redis.from_url(url)

    def data(self, group: bytes | str) -> bytes:
        return self.prefix.encode() + (group if isinstance(group, bytes) else group.encode())

    def state(self) -> State:
        return State.from_url(self.url, prefix=self.prefix)


@pytest.fixture
def server(servers: Servers) -> Iterator[Server]:
    url, _ = servers.redis()
    s = Server(url, f"h{uuid.uuid4().hex[:10]}:")
    yield s
    _purge(url, s.prefix)
    s.raw.close()


def cli(server: Server | None, *args: str, code: int = 0) -> Result:
    """One command, in process; checks the exit code and, on failure, the one-line error."""
    where = ["--url", server.url, "--prefix", server.prefix] if server else []
    result = CliRunner().invoke(main, [*args, *where], catch_exceptions=False)
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    if code:
        assert result.stderr.startswith("error: "), result.stderr
        assert result.stderr.count("\n") == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return result


def nested(depth: int, inner: str = "1") -> str:
    return "[" * depth + inner + "]" * depth


def test_integers_beyond_64_bits_are_refused_not_rounded(server: Server) -> None:
    """The API's rule: an integer outside the signed 64-bit range is an EncodeError (exit 2),
    not a float standing in for it."""
    big = str(2**64)
    for args in (
        ("set", "g", "k", big),
        ("set", "g", "k", f'{{"a": {{"b": [{big}]}}}}'),
        ("set", "g", "k", str(-(2**63) - 1)),
        ("increment", "g", "n", big),
    ):
        assert "64-bit" in cli(server, *args, code=2).stderr
    assert "64-bit" in cli(server, "set", "g", "k", "9" * 5000, code=2).stderr
    assert "range of a double" in cli(server, "set", "g", "k", "1e400", code=2).stderr
    assert "appears twice" in cli(server, "set", "g", "k", '{"a": 1, "a": 2}', code=2).stderr
    with server.state() as state:
        assert state.list_groups() == []
    # the edges of the range are values like any other, kept to the last digit
    cli(server, "set", "g", "k", f'{{"max": {2**63 - 1}, "min": {-(2**63)}}}')
    got = json.loads(cli(server, "get", "g", "k", "--json").stdout)
    assert got["value"] == {"max": 2**63 - 1, "min": -(2**63)}


def test_malformed_urls_are_usage_errors_without_the_password() -> None:
    for url in ("redis://:s3cret@127.0.0.1:abc/0", "redis://:s3cret@[::1:7601/0"):
        for args in (("get", "g", "k", "--url", url), ("--url", url, "groups")):
            err = cli(None, *args, code=2).stderr
            assert "s3cret" not in err
            assert "***" in err


def test_input_nested_too_deep_is_refused(server: Server) -> None:
    deep = nested(1000)
    ops = f'[{{"type": "set", "path": "x", "value": {deep}}}]'
    assert "nests deeper" in cli(server, "update", "g", "k", ops, code=2).stderr
    assert "nests deeper" in cli(server, "set", "g", "k", nested(100_000), code=2).stderr
    # past the engine's own limit (128) but within what the command line reads: the codec's
    # EncodeError, which is invalid input (exit 2) like every other refusal of a value
    assert "deeper than 128" in cli(server, "set", "g", "k", nested(129), code=2).stderr
    cli(server, "set", "g", "k", nested(127))


def test_oversized_input_is_refused(server: Server) -> None:
    huge = json.dumps("x" * (17 * 1024 * 1024))
    assert "max_value_bytes" in cli(server, "set", "g", "k", huge, code=2).stderr


def test_foreign_values_are_shown_or_refused_in_one_line(server: Server) -> None:
    r = server.raw
    r.hset(
        server.data("odd"), mapping={"surrogate": '"\\ud800"', "deep": nested(1500), "nan": "NaN"}
    )
    # a lone surrogate, as the JSON escape another tool wrote
    human = cli(server, "get", "odd", "surrogate").stdout
    assert human.startswith('"\\ud800"\n')
    as_json = json.loads(cli(server, "get", "odd", "surrogate", "--json").stdout)
    assert as_json["value"] == "\ud800"
    assert "nests too deeply" in cli(server, "get", "odd", "deep", code=1).stderr
    # NaN: shown to a person, refused in JSON (which has no NaN)
    assert cli(server, "get", "odd", "nan").stdout.startswith("NaN\n")
    assert "NaN" in cli(server, "get", "odd", "nan", "--json", code=1).stderr


def test_one_unreadable_value_does_not_hide_its_group(server: Server) -> None:
    r = server.raw
    r.hset(server.data("mixed"), mapping={"bad": "{oops", "nan": "NaN", "deep": nested(1500)})
    with server.state() as state:
        state.set_many("mixed", {f"k{i}": i for i in range(50)})
    lines = [json.loads(x) for x in cli(server, "items", "mixed", "--json").stdout.splitlines()]
    assert len(lines) == 53
    good = {x["key"]: x["value"] for x in lines if "value" in x}
    assert good == {f"k{i}": i for i in range(50)}
    errors = {x["key"]: x["error"] for x in lines if "error" in x}
    assert set(errors) == {"bad", "nan", "deep"}
    assert "not JSON" in errors["bad"]
    human = cli(server, "items", "mixed")
    assert "k49\t49\n" in human.stdout
    assert "bad\t(cannot read: " in human.stdout
    assert "53 item(s)" in human.stderr


def test_names_that_are_not_utf8_are_shown_escaped(server: Server) -> None:
    r = server.raw
    r.hset(server.data(b"gr\xff"), b"k", b"1")
    r.hset(server.data("keys"), mapping={b"k\xfe": b"2", b"ok": b"3"})
    assert cli(server, "groups").stdout == "gr\\xff (not UTF-8)\nkeys\n"
    assert cli(server, "groups", "--json").stdout == '["gr\\udcff", "keys"]\n'
    assert "gr\\xff (not UTF-8)" in cli(server, "stats").stdout
    rows = json.loads(cli(server, "stats", "--json").stdout)["groups"]
    assert [(row["group"], row["items"]) for row in rows] == [("gr\udcff", 1), ("keys", 2)]
    with server.state() as state:  # the API too: names as the server holds them
        assert [(row.group, row.items) for row in state.stats()[0]] == [
            ("gr\udcff", 1),
            ("keys", 2),
        ]
    assert cli(server, "items", "keys").stdout == "k\\xfe (not UTF-8)\t2\nok\t3\n"
    lines = cli(server, "items", "keys", "--json").stdout.splitlines()
    assert [json.loads(x)["key"] for x in lines] == ["k\udcfe", "ok"]


def test_user_text_is_never_markup_emoji_or_control(
    server: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    names = ["x:smile:y", "[bold]x[/bold]", "orders:o2:extra", "esc\x1b[2Jape"]
    with server.state() as state:
        for n in names:
            state.set(n, n, 1)
    table = cli(server, "stats").stdout
    for n in names[:3]:
        assert n in table
    assert "esc\\x1b[2Jape" in table
    assert "\x1b" not in table
    assert cli(server, "items", "esc\x1b[2Jape").stdout.startswith("esc\\x1b[2Jape\t1")
    capsys.readouterr()
    _print_change(Out(False), Change("1-0", "set", "x:smile:y", "[bold]k[/bold]", 3, 0.0))
    assert "'x:smile:y' '[bold]k[/bold]' v3" in capsys.readouterr().out


def test_watch_prints_clear_and_gap_records_readably(capsys: pytest.CaptureFixture[str]) -> None:
    _print_change(Out(False), Change("1-0", "clear", "orders", None, None, 0.0))
    _print_change(Out(False), Change("2-0", "external", None, None, None, 0.0, event="gap"))
    _print_change(Out(False), Change("3-0", "expire_group", "trace-1", None, None, 0.0))
    clear, gap, expired = capsys.readouterr().out.splitlines()
    assert clear.endswith(" 1-0 clear 'orders' (every item)")
    assert gap.endswith(" 2-0 external gap")
    assert expired.endswith(" 3-0 expire_group 'trace-1' (every item)")
    assert "None" not in clear + gap + expired


def test_negative_numbers_are_values(server: Server) -> None:
    cli(server, "set", "g", "k", "-1")
    assert cli(server, "increment", "g", "k", "-5", "--json").stdout == '{"value": -6}\n'
    assert "ttl must be a positive" in cli(server, "expire", "g", "k", "-1", code=2).stderr
    assert "version must be" in cli(server, "set", "g", "k", "1", "--version", "-1", code=2).stderr


def test_groups_says_when_there_are_none(server: Server) -> None:
    result = cli(server, "groups")
    assert result.stdout == ""
    assert "no group" in result.stderr
    assert cli(server, "groups", "--json").stdout == "[]\n"


def test_migrate_takes_url_after_the_command(tmp_path: Path) -> None:
    source, target = (f"file://{tmp_path / n}.json" for n in ("from", "to"))
    with State.from_url(source) as state:
        state.set("g", "k", "v")
    report = cli(None, "migrate", "--from", source, "--url", target, "--json").stdout
    assert json.loads(report)["written"] == 1
    with State.from_url(target) as state:
        assert state.get("g", "k") == "v"


def test_a_closed_stdout_ends_quietly(server: Server) -> None:
    with server.state() as state:
        state.set_many("big", {f"key-{i:06d}": "x" * 20 for i in range(20_000)})
    command = [EXE, "items", "big", "--url", server.url, "--prefix", server.prefix]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert proc.stdout.readline().startswith(b"key-")
        proc.stdout.close()  # as `| head -1` does
        err = proc.stderr.read().decode()
        assert proc.wait(timeout=60) == 141, err
    assert err == ""


def _snapshot(client: redis.Redis, pattern: str) -> dict[bytes, Any]:
    return {key: client.dump(key) for key in client.scan_iter(match=pattern, count=1000)}


def test_demo_leaves_existing_data_alone(server: Server, tmp_path: Path) -> None:
    """Pointed at a real server's default prefix, where orders, payments and stats hold data."""
    with State.from_url(server.url) as state:  # the default prefix, as a user's app has it
        existing = {"orders": {"o1": {"mine": True}}, "payments": {"p1": 5}, "stats": {"n": 7}}
        for group, items in existing.items():
            state.set_many(group, items)
    before = _snapshot(server.raw, "motia:state*")
    try:
        env = {**os.environ, "MOTIA_STATE_URL": server.url}
        result = subprocess.run(
            [EXE, "demo"], env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert "the demo writes only under the prefix 'motia:demo:" in result.stdout
        assert "removed everything the demo wrote" in result.stdout
        assert _snapshot(server.raw, "motia:state*") == before  # byte for byte
        assert _snapshot(server.raw, "motia:demo*") == {}
    finally:
        _purge(server.url, "motia:state:")


def test_demo_on_a_state_file_keeps_to_its_own_groups(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'motia.state.json'}"
    with State.from_url(url) as state:
        state.set("orders", "o1", {"mine": True})
        state.set("stats", "n", 7)
    before = json.loads((tmp_path / "motia.state.json").read_text())
    result = cli(None, "demo", "--url", url)
    assert "in the groups demo-" in result.stdout
    after = json.loads((tmp_path / "motia.state.json").read_text())
    assert {name: after.get(name) for name in before} == before
    assert not [name for name in after if name.startswith("demo-")]


@pytest.mark.parametrize("consumer", ["a\udcff:b", "a:b\udcff"])
def test_a_consumer_name_that_is_not_unicode_is_invalid_input(
    server: Server, consumer: str
) -> None:
    result = cli(server, "watch", "--consumer", consumer, code=2)
    assert "not valid unicode" in result.stderr
