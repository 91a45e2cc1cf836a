"""The configuration file: Motia's ``config.yml`` ``state:`` section, read by
`State.from_config`, by `State.from_url()` with no URL, and by the CLI.

Real servers throughout (the session's Redis, its embedded server, an ACL user made on
the Redis for the credentials path); every error path is fired with a password in the
file and checked not to show it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
import redis
from click.testing import CliRunner

from motia_state import AsyncState, State, config, connect
from motia_state.cli import main
from motia_state.errors import InvalidInput, StateError

from .conftest import Servers, _purge
from .test_cli import EXE

MOTIA_EXAMPLE = """\
state:
  adapter: redis
  host: localhost
  port: 6379
  password: optional
  ttl: 3600 # Optional: Time in seconds before state expires
"""
SECRET = "Zq7-s3cr3t-Pa55"
ENV = ("MOTIA_STATE_URL", "MOTIA_STATE_CONFIG")


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the runner's MOTIA_STATE_URL or MOTIA_STATE_CONFIG."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)


def write(folder: Path, text: str, name: str = "config.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def redis_at(servers: Servers) -> tuple[str, int, str]:
    """(host, port, url) of the session's standalone Redis."""
    url, _ = servers.redis()
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port, url


@pytest.fixture
def prefix(redis_at: tuple[str, int, str]) -> Iterator[str]:
    name = f"cfg{uuid.uuid4().hex[:10]}:"
    yield name
    _purge(redis_at[2], name)


def assert_ttl(left: float | None, low: float, high: float) -> None:
    assert left is not None
    assert low < left <= high


def memory_name() -> str:
    return f"cfg-{uuid.uuid4().hex[:10]}"


# -- Motia's example, against a real Redis ----------------------------------------------


def test_motias_example_builds_the_url_and_the_ttl(tmp_path: Path) -> None:
    found = config.load(write(tmp_path, MOTIA_EXAMPLE))
    assert found.url == "redis://:optional@localhost:6379"
    assert found.describe == "redis://:***@localhost:6379"
    assert dict(found.options) == {"ttl": 3600}
    assert "optional" not in repr(found)


def test_motias_example_against_redis(
    tmp_path: Path, redis_at: tuple[str, int, str], prefix: str
) -> None:
    host, port, _ = redis_at
    text = MOTIA_EXAMPLE.replace("localhost", host).replace("6379", str(port))
    text = text.replace("  password: optional\n", "")  # the test server has none
    path = write(tmp_path, text)
    with State.from_config(path, prefix=prefix) as state:
        assert repr(state) == f"State('redis://{host}:{port}')"
        state.set("orders", "o-1", {"total": 3})
        assert state.get("orders", "o-1") == {"total": 3}
        left = state.ttl("orders", "o-1")  # the file's ttl, on a write that named none
        assert_ttl(left, 3500, 3600)


def test_async_from_config_against_redis(
    tmp_path: Path, redis_at: tuple[str, int, str], prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    host, port, _ = redis_at
    monkeypatch.setenv("CFG_PORT", str(port))
    path = write(tmp_path, f"state:\n  host: {host}\n  port: ${{CFG_PORT}}\n  ttl: 60\n")

    async def run() -> float | None:
        async with AsyncState.from_config(path, prefix=prefix) as state:
            await state.set("g", "k", [1, 2])
            assert await state.get("g", "k") == [1, 2]
            return await state.ttl("g", "k")

    left = asyncio.run(run())
    assert_ttl(left, 50, 60)


def test_a_cluster_from_config(
    tmp_path: Path, servers: Servers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session's 3-master Cluster named node by node, as an environment variable gives
    them (one text, comma-separated), with a group TTL: a trace scope on Cluster from the file."""
    url = servers.cluster().url
    nodes = url.split("://", 1)[1]
    prefix = f"cfg{uuid.uuid4().hex[:10]}:"
    path = write(
        tmp_path,
        f"state:\n  adapter: cluster\n  nodes: ${{CFG_NODES}}\n  prefix: '{prefix}'\n"
        "  group_ttl: 60\n",
    )
    monkeypatch.setenv("CFG_NODES", nodes)
    try:
        with State.from_config(path) as state:
            assert repr(state) == f"State('redis+cluster://{nodes}')"
            for n in range(12):  # groups on every master
                state.set(f"trace-{n}", "k", n)
            assert [state.get(f"trace-{n}", "k") for n in range(12)] == list(range(12))
            assert_ttl(state.group_ttl("trace-0"), 50, 60)
    finally:
        _purge(url, prefix)


@pytest.fixture
def acl_user(redis_at: tuple[str, int, str]) -> Iterator[tuple[str, str]]:
    """A user on the test Redis with a password holding every character a URL or the
    interpolation treats specially; removed after."""
    user = f"cfg-{uuid.uuid4().hex[:8]}"
    password = "p@ss:w/o%rd#?&=${x}" + SECRET
    with redis.Redis.from_url(redis_at[2]) as raw:
        raw.execute_command("ACL", "SETUSER", user, "on", f">{password}", "~*", "&*", "+@all")
        try:
            yield user, password
        finally:
            raw.execute_command("ACL", "DELUSER", user)


def _connections_of(url: str, user: str) -> int:
    with redis.Redis.from_url(url) as raw:
        return sum(1 for c in raw.client_list() if c.get("user") == user)


@pytest.mark.parametrize("form", ["in the file", "from the environment"])
def test_username_and_password_reach_redis(
    tmp_path: Path,
    redis_at: tuple[str, int, str],
    prefix: str,
    acl_user: tuple[str, str],
    monkeypatch: pytest.MonkeyPatch,
    form: str,
) -> None:
    host, port, url = redis_at
    user, password = acl_user
    if form == "in the file":  # YAML single quotes; $${ is a literal ${
        secret = "'" + password.replace("${", "$${") + "'"
    else:
        monkeypatch.setenv("CFG_PASSWORD", password)
        secret = "${CFG_PASSWORD}"
    path = write(
        tmp_path,
        f"state:\n  host: {host}\n  port: {port}\n  username: {user}\n  password: {secret}\n",
    )
    assert config.load(path).url == (f"redis://{user}:{quote(password, safe='')}@{host}:{port}")
    with State.from_config(path, prefix=prefix) as state:
        state.set("g", "k", "v")
        assert state.get("g", "k") == "v"
        assert _connections_of(url, user) >= 1  # signed in as the user, not as default
        assert SECRET not in repr(state)
    wrong = State.from_config(path, prefix=prefix, password="wrong" + SECRET)
    with wrong, pytest.raises(StateError) as refused:  # the server refuses a wrong password
        wrong.get("g", "k")
    assert SECRET not in str(refused.value)


# -- the other adapters --------------------------------------------------------------------


def test_memory_adapter(tmp_path: Path) -> None:
    name = memory_name()
    path = write(tmp_path, f"state:\n  adapter: memory\n  name: {name}\n")
    with State.from_config(path) as one, State.from_config(path) as two:
        assert repr(one) == f"State('memory://{name}')"
        one.set("g", "k", 1)
        assert two.get("g", "k") == 1  # the same named store


def test_file_adapter_path_is_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    path = write(project, "state:\n  adapter: file\n  path: data/motia.state.json\n")
    monkeypatch.chdir(write(tmp_path / "elsewhere", "").parent)
    with State.from_config(path) as state:
        state.set("g", "k", {"a": 1})
    assert (project / "data" / "motia.state.json").is_file()
    assert not (tmp_path / "elsewhere" / "data").exists()
    with State.from_url(f"file://{project / 'data' / 'motia.state.json'}") as state:
        assert state.get("g", "k") == {"a": 1}


def test_file_adapter_path_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFG_DATA", str(tmp_path / "from env"))
    path = write(tmp_path, "state:\n  adapter: file\n  path: ${CFG_DATA}/s%1.json\n")
    with State.from_config(path) as state:
        state.set("g", "k", 2)
    assert (tmp_path / "from env" / "s%1.json").is_file()


def test_embedded_adapter_joins_the_sessions_server(tmp_path: Path, servers: Servers) -> None:
    socket = servers.embedded_socket()
    name = f"cfg{uuid.uuid4().hex[:10]}:"
    path = write(
        tmp_path, f"state:\n  adapter: embedded\n  path: {servers.embedded_dir()}\n  ttl: 100\n"
    )
    try:
        with State.from_config(path, prefix=name) as state:
            state.set("g", "k", "v")
            left = state.ttl("g", "k")
            assert_ttl(left, 90, 100)
        with redis.Redis.from_url(f"unix://{socket}") as raw:
            assert list(raw.scan_iter(match=f"{name}*"))  # written on the session's server
    finally:
        _purge(f"unix://{socket}", name)


def test_sqlite_adapter_passes_through(tmp_path: Path) -> None:
    path = write(tmp_path, "state:\n  adapter: sqlite\n  path: 'state %1.db'\n")
    assert config.load(path).url == f"sqlite://{quote(str(tmp_path / 'state %1.db'))}"
    with State.from_config(path) as state:
        state.set("g", "k", 1)
        assert state.get("g", "k") == 1
    assert (tmp_path / "state %1.db").is_file()


@pytest.mark.parametrize(
    ("text", "url"),
    [
        ("adapter: redis", "redis://localhost:6379"),
        ("host: '::1'", "redis://[::1]:6379"),
        ("host: '[::1]'\n  port: 7000\n  db: 3", "redis://[::1]:7000/3"),
        ("host: h\n  tls: true\n  username: u", "rediss://u@h:6379"),
        ("host: h\n  password: 'a@b:c/d%e f'", "redis://:a%40b%3Ac%2Fd%25e%20f@h:6379"),
        ("host: h\n  username: 'u:x@y'\n  password: p", "redis://u%3Ax%40y:p@h:6379"),
        (
            "adapter: cluster\n  nodes: [a:7000, '[::1]:7001', c]",
            "redis+cluster://a:7000,[::1]:7001,c:6379",
        ),
        ("adapter: CLUSTER\n  tls: true\n  nodes: 'a:1, b:2'", "rediss+cluster://a:1,b:2"),
        ("adapter: cluster\n  host: h\n  port: 7000\n  password: p", "redis+cluster://:p@h:7000"),
        (
            "adapter: sentinel\n  nodes: [s1, 's2:26380']\n  service: my primary\n  db: 2",
            "redis+sentinel://s1:26379,s2:26380/my%20primary/2",
        ),
        (
            "adapter: unix\n  path: /run/r.sock\n  db: 1\n  password: 'a&b'",
            "unix:///run/r.sock?db=1&password=a%26b",
        ),
        ("adapter: embedded\n  path: /data/e", "embedded:///data/e"),
        ("adapter: file\n  path: /data/s.json", "file:///data/s.json"),
        ("adapter: memory", "memory://"),
        ("adapter: rediss\n  host: h\n  port: 1", "rediss://h:1"),
        ("url: 'redis://:p@h:1/2'", "redis://:p@h:1/2"),
    ],
)
def test_keys_map_to_urls(tmp_path: Path, text: str, url: str) -> None:
    assert config.load(write(tmp_path, f"state:\n  {text}\n")).url == url


def test_anchors_and_merge_keys(tmp_path: Path) -> None:
    """A key the section sets wins over one merged from an anchor (YAML's rule), and is not
    taken for a key given twice."""
    text = "base: &base\n  host: h\n  port: 7000\nstate:\n  <<: *base\n  port: 7001\n"
    assert config.load(write(tmp_path, text)).url == "redis://h:7001"


def test_a_registered_adapter_gets_its_scheme(tmp_path: Path) -> None:
    from motia_state import adapters

    made: list[str] = []

    def factory(url: str) -> Any:
        made.append(url)
        raise RuntimeError("not a real store")

    adapters.register_adapter("cfgtest", factory)
    try:
        path = write(tmp_path, "state:\n  adapter: cfgtest\n  host: h\n  port: 9\n  db: 1\n")
        assert config.load(path).url == "cfgtest://h:9/1"
        with pytest.raises(StateError, match="failed to open"):
            State.from_config(path)
        assert made == ["cfgtest://h:9/1"]
    finally:
        adapters.unregister_adapter("cfgtest")
    with pytest.raises(InvalidInput, match=r"state\.adapter: no adapter is registered"):
        config.load(path)


# -- ${VAR} interpolation ------------------------------------------------------------------


def test_interpolation_types_and_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (
        "state:\n  host: ${CFG_HOST:-redis.internal}\n  port: ${CFG_PORT:-6379}\n"
        "  password: ${CFG_PW}\n  tls: ${CFG_TLS:-false}\n  ttl: ${CFG_TTL:-}\n"
        "  prefix: 'app:${CFG_ENV:-dev}:'\n"
    )
    path = write(tmp_path, text)
    monkeypatch.setenv("CFG_PW", "123456")  # stays text: a password is never a number
    found = config.load(path)
    assert found.url == "redis://:123456@redis.internal:6379"
    assert dict(found.options) == {"ttl": None, "prefix": "app:dev:"}
    monkeypatch.setenv("CFG_PW", "no")  # not YAML's false
    monkeypatch.setenv("CFG_PORT", "7000")
    monkeypatch.setenv("CFG_TLS", "true")
    monkeypatch.setenv("CFG_TTL", "1.5")
    monkeypatch.setenv("CFG_ENV", "prod")
    monkeypatch.setenv("CFG_HOST", "")  # empty: the default, as in the shell's :-
    found = config.load(path)
    assert found.url == "rediss://:no@redis.internal:7000"
    assert dict(found.options) == {"ttl": 1.5, "prefix": "app:prod:"}


def test_interpolation_escape_and_literal_dollars(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFG_X", "x")
    path = write(tmp_path, "state:\n  host: h\n  password: 'a$$b$${CFG_X}$c${CFG_X}$$${CFG_X}'\n")
    assert (
        config.load(path).url
        == "redis://:" + quote("a$$b${CFG_X}$cx$${CFG_X}", safe="") + "@h:6379"
    )


def test_interpolated_value_is_not_interpolated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFG_A", "${CFG_B}")
    monkeypatch.setenv("CFG_B", "nope")
    path = write(tmp_path, "state:\n  adapter: memory\n  name: ${CFG_A}\n")
    assert config.load(path).url == "memory://${CFG_B}"


def test_interpolation_only_in_the_state_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rest of the file is Motia's: its own tags and ${...} are none of the engine's
    business."""
    name = memory_name()
    text = "modules: !include mods.yml\nother: ${CFG_UNSET}\n"
    text += f"state:\n  adapter: memory\n  name: {name}\n"
    assert config.load(write(tmp_path, text)).url == f"memory://{name}"


def test_missing_variable_names_file_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, f"state:\n  host: h\n  password: {SECRET}\n  port: ${{CFG_NOPE}}\n")
    with pytest.raises(InvalidInput) as info:
        State.from_config(path)
    message = str(info.value)
    assert f"{path}, line 4: state.port:" in message
    assert "CFG_NOPE is not set" in message
    assert SECRET not in message


def test_secret_from_the_environment_is_never_shown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CFG_PW", SECRET)
    path = write(tmp_path, "state:\n  host: h\n  password: ${CFG_PW}\n  port: 0\n")
    with pytest.raises(InvalidInput) as info:
        config.load(path)
    assert "state.port" in str(info.value)
    assert SECRET not in str(info.value)


# -- errors: typed, named, and never showing the password ----------------------------------

BAD = [
    # (the state section, or a whole file when it starts with '!'; what the message says)
    ("host: h\n  password: {s}\n  port: [", "not valid YAML at line 5"),
    (
        "host: 'h\n  password: {s}\n",
        "line 5, column 1: found unexpected end of stream "
        "(while scanning a quoted scalar from line 3)",
    ),
    ("password: *{s}\n", "line 3, column 13: found undefined alias '(not shown)'"),
    ("password: !{s} x\n", "line 3, column 13: could not determine a constructor for the tag"),
    ("password: '{s}'\n  password: other\n", "state.password is given twice"),
    ("!other:\n  password: {s}\n", "no 'state:' section"),
    ("!state:\n  password: {s}\nstate:\n  host: h\n", "'state:' is given twice"),
    ("!state:\n  - password: {s}\n", "expected a mapping"),
    ("!state: {s}\n", "expected a mapping"),
    ("adapter: 'red is'\n  password: {s}\n", "state.adapter: expected one of"),
    ("adapter: [redis]\n  password: {s}\n", "state.adapter: expected one of"),
    ("adapter: nosuch\n  password: {s}\n", "state.adapter: no adapter is registered"),
    ("password: {s}\n  port: 70000\n", "state.port: expected a port, an int from 1 to 65535"),
    ("password: {s}\n  port: '6379'\n", "state.port: expected a port"),
    ("password: {s}\n  port: true\n", "state.port: expected a port"),
    ("password: {s}\n  port: ${{CFG_P:-0}}\n", "state.port: expected a port"),
    ("password: {s}\n  ttl: soon\n", "state.ttl: ttl must be a number of seconds"),
    ("password: {s}\n  ttl: -1\n", "state.ttl: ttl must be a positive"),
    ("password: {s}\n  hots: h\n", "unknown key(s) ['hots']; the keys are"),
    ("password: {s}\n  db: -1\n", "state.db: expected a database number"),
    ("password: {s}\n  tls: 'yes'\n", "state.tls: expected true or false"),
    ("password: {s}\n  host: 'h:6379'\n", "state.host: expected a host name"),
    ("password: {s}\n  host: 'a/b'\n", "state.host: expected a host name"),
    ("password: {s}\n  host: [a]\n", "state.host: expected a host name"),
    ("password: {s}\n  username: 42\n", "state.username: expected text, got int"),
    ("password: {s}\n  host: ${{bad-name}}\n", "state.host: a '${{' that is not"),
    ("password: {s}\n  host: ${{CFG_H\n", "state.host: a '${{' that is not"),
    ("url: 'redis://:{s}@h:1/0'\n  host: h\n", "state.url: give the address as url"),
    ("url: 'redis://:{s}@h:1/0?foo=1'\n", "the engine does not take the query option"),
    ("url: '{s}@h'\n", "not a state URL"),
    ("url: 42\n", "state.url: expected text"),
    ("adapter: cluster\n  password: {s}\n  nodes: {{a: 1}}\n", "state.nodes: expected a list"),
    ("adapter: cluster\n  password: {s}\n  nodes: [a:99999]\n", "item 0: expected host:port"),
    ("adapter: cluster\n  password: {s}\n  nodes: ['::1:7000']\n", "IPv6 node in brackets"),
    ("adapter: cluster\n  password: {s}\n  nodes: [a:1]\n  host: b\n", "not both"),
    ("adapter: cluster\n  password: {s}\n  db: 1\n", "cluster adapter does not take db"),
    ("password: {s}\n  nodes: [a:1]\n", "name the adapter (cluster, sentinel)"),
    ("adapter: sentinel\n  password: {s}\n", "state.service: the sentinel adapter needs"),
    ("adapter: file\n  password: {s}\n", "file adapter does not take password"),
    ("adapter: file\n  path: 'a?b'\n  ttl: '{s}'\n", "state.path: a path here may not hold"),
    ("adapter: unix\n  password: {s}\n", "state.path: the unix adapter needs path"),
    ("password: {s}\n  prefix: ''\n", "state.prefix:"),
    ("password: {s}\n  prefix: 'a{{b}}'\n", "prefix must not contain"),
    ("password: {s}\n  durability: always\n", "state.durability: durability must be"),
    ("password: {s}\n  codec: yaml\n", "state.codec:"),
    ("password: {s}\n  7: x\n", "keys are text"),
]


@pytest.mark.parametrize(("section", "expected"), BAD)
def test_bad_config_is_named_and_hides_the_password(
    tmp_path: Path, section: str, expected: str
) -> None:
    text = section.format(s=SECRET)
    text = text[1:] if text.startswith("!") else "state:\n  " + text
    path = write(tmp_path, "# the project's config\n" + text)
    with pytest.raises(InvalidInput) as info:
        State.from_config(path)
    message = str(info.value)
    assert expected.format() in message
    assert message.startswith(str(path))
    for shown in (SECRET, quote(SECRET, safe="")):
        assert shown not in message
        assert shown not in repr(info.value)


def test_password_of_the_wrong_type_is_not_shown(tmp_path: Path) -> None:
    path = write(tmp_path, "state:\n  host: h\n  password: 97531864\n")
    with pytest.raises(InvalidInput, match="quote it") as info:
        config.load(path)
    assert "97531864" not in str(info.value)


def test_keyword_overrides_are_named_as_such(tmp_path: Path) -> None:
    path = write(tmp_path, f"state:\n  host: h\n  password: {SECRET}\n")
    with pytest.raises(InvalidInput) as info:
        State.from_config(path, port="6379")
    assert str(info.value).startswith(f"the keyword argument port= (over {path}): ")
    assert SECRET not in str(info.value)
    with pytest.raises(InvalidInput, match=r"unknown key\(s\) \['colour'\]"):
        State.from_config(path, colour="red")


def test_file_errors(tmp_path: Path) -> None:
    cases: dict[str, Path] = {
        "no such config file": tmp_path / "missing.yml",
        "not a regular file": tmp_path,
        "cannot be read": write(tmp_path, "x", "plain") / "config.yml",  # under a file
    }
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)  # a read would wait for a writer forever
    cases["not a regular file "] = fifo
    loop = tmp_path / "loop.yml"
    loop.symlink_to(loop)
    cases["cannot be read "] = loop
    big = write(tmp_path, "state:\n  ttl: 1\n" + "#" * (1 << 20), "big.yml")
    cases["larger than"] = big
    binary = tmp_path / "binary.yml"
    binary.write_bytes(b"state:\n  password: " + SECRET.encode() + b"\xff\n")
    cases["not UTF-8"] = binary
    for expected, path in cases.items():
        with pytest.raises(InvalidInput) as info:
            State.from_config(path)
        assert expected.strip() in str(info.value), path
        assert str(info.value).startswith(str(path))
        assert SECRET not in str(info.value)
    with pytest.raises(InvalidInput, match="a config path is a str or a path, not int"):
        config.load(3)  # type: ignore[arg-type]


def test_nothing_is_written_when_the_config_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "state:\n  adapter: file\n  path: s.json\n  ttl: soon\n")
    with pytest.raises(InvalidInput):
        State.from_config(path)
    assert not (tmp_path / "s.json").exists()


# -- precedence --------------------------------------------------------------------------


def test_keyword_arguments_win_over_the_file(tmp_path: Path) -> None:
    name = memory_name()
    path = write(tmp_path, f"state:\n  adapter: memory\n  name: {name}\n  ttl: 3600\n")
    with State.from_config(path, ttl=5) as state:
        state.set("g", "k", 1)
        left = state.ttl("g", "k")
        assert_ttl(left, 0, 5)
    other = memory_name()
    assert config.load(path, {"name": other}).url == f"memory://{other}"
    assert config.load(path, {"ttl": None}).options == {"ttl": None}
    found = config.load(path, {"url": "redis://h:1"})  # a URL replaces the file's address
    assert (found.url, dict(found.options)) == ("redis://h:1", {"ttl": 3600})
    with_url = write(tmp_path, "state:\n  url: 'redis://h:1'\n", "url.yml")
    with pytest.raises(InvalidInput, match=r"state\.url: the file gives a url"):
        config.load(with_url, {"port": 2})


def test_a_file_without_an_address_means_the_default_backend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, "state:\n  ttl: 7\n")
    found = config.load(path)
    assert (found.url, dict(found.options)) == (connect.builtin_url()[0], {"ttl": 7})
    name = memory_name()
    monkeypatch.setenv("MOTIA_STATE_URL", f"memory://{name}")
    with State.from_config(path) as state:
        assert repr(state) == f"State('memory://{name}')"
        state.set("g", "k", 1)
        left = state.ttl("g", "k")
        assert_ttl(left, 0, 7)


# -- the default path: from_url() with no URL, MOTIA_STATE_CONFIG, ./config.yml ------------


@pytest.fixture
def fresh_log(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connect, "_logged_default", False)


def test_from_url_reads_dot_config_yml(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fresh_log: None,
) -> None:
    name = memory_name()
    write(tmp_path, f"project: x\nstate:\n  adapter: memory\n  name: {name}\n  ttl: 3600\n")
    monkeypatch.chdir(tmp_path)
    with caplog.at_level(logging.INFO, logger="motia_state"):
        with State.from_url() as state:
            assert repr(state) == f"State('memory://{name}')"
            state.set("g", "k", 1)
            left = state.ttl("g", "k")
            assert_ttl(left, 3500, 3600)  # the file's options apply
        with State.from_url(ttl=5) as state:  # the caller's options win
            state.set("g", "k2", 1)
            left = state.ttl("g", "k2")
            assert_ttl(left, 0, 5)
    logged = [r.getMessage() for r in caplog.records if "motia-state backend" in r.getMessage()]
    assert logged == [f"motia-state backend: memory://{name} from ./config.yml with ttl"]


def test_default_log_line_is_redacted(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    fresh_log: None,
) -> None:
    path = write(tmp_path, f"state:\n  host: h\n  port: 1\n  password: '{SECRET}@x'\n")
    monkeypatch.setenv("MOTIA_STATE_CONFIG", str(path))
    with caplog.at_level(logging.INFO, logger="motia_state"):
        url, options = connect.default_target()
    assert url == f"redis://:{quote(SECRET + '@x', safe='')}@h:1"
    assert options == {}
    assert caplog.messages == [
        f"motia-state backend: redis://:***@h:1 from {path} (from MOTIA_STATE_CONFIG)"
    ]


def test_motia_state_config_wins_over_dot_config_yml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    here, there = memory_name(), memory_name()
    write(tmp_path, f"state:\n  adapter: memory\n  name: {here}\n")
    other = write(tmp_path / "conf", f"state:\n  adapter: memory\n  name: {there}\n", "s.yml")
    monkeypatch.chdir(tmp_path)
    assert connect.default_url() == f"memory://{here}"
    monkeypatch.setenv("MOTIA_STATE_CONFIG", str(other))
    assert connect.default_url() == f"memory://{there}"
    with State.from_config() as state:  # no path: the same lookup
        assert repr(state) == f"State('memory://{there}')"
    monkeypatch.setenv("MOTIA_STATE_URL", "memory://from-env")  # the URL wins over both
    assert connect.default_target() == ("memory://from-env", {})


def test_motia_state_config_naming_a_missing_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, f"state:\n  adapter: memory\n  name: {memory_name()}\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOTIA_STATE_CONFIG", str(tmp_path / "typo.yml"))
    with pytest.raises(InvalidInput, match=r"typo\.yml \(from MOTIA_STATE_CONFIG\): no such"):
        State.from_url()
    with pytest.raises(InvalidInput, match="no such config file"):
        State.from_config()


@pytest.mark.parametrize(
    "text",
    [
        "name: my-app\nmodules: !include mods.yml\n",  # Motia's project config, no state:
        "",
        "just text\n",
        "- a list\n",
    ],
)
def test_dot_config_yml_without_state_is_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    write(tmp_path, text)
    monkeypatch.chdir(tmp_path)
    assert config.discover() is None
    assert connect.default_target() == (connect.builtin_url()[0], {})
    with pytest.raises(InvalidInput, match=r"\./config\.yml: no 'state:' section"):
        State.from_config()


def test_dot_config_yml_folder_is_ignored_but_broken_yaml_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config.yml").mkdir()
    monkeypatch.chdir(tmp_path)
    assert config.discover() is None
    (tmp_path / "config.yml").rmdir()
    write(tmp_path, "state:\n  host: [\n")
    with pytest.raises(InvalidInput, match=r"\./config\.yml: not valid YAML at line 3"):
        State.from_url()


@pytest.mark.parametrize("url", ["''", "${CFG_UNSET_URL:-}"])
def test_an_empty_url_is_no_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """Empty is unset, as for every key: the default backend with the file's options (and
    not the empty URL, which would look for the config file again, and again)."""
    write(tmp_path, f"state:\n  url: {url}\n  adapter: ''\n  ttl: 5\n")
    monkeypatch.chdir(tmp_path)
    assert connect.default_target() == (connect.builtin_url()[0], {"ttl": 5})


def test_no_config_file_at_all(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InvalidInput, match="no config file: MOTIA_STATE_CONFIG is not set"):
        State.from_config()


# -- the CLI -------------------------------------------------------------------------------


def test_cli_config_option(tmp_path: Path, redis_at: tuple[str, int, str], prefix: str) -> None:
    host, port, _ = redis_at
    path = write(
        tmp_path, f"state:\n  host: {host}\n  port: {port}\n  prefix: '{prefix}'\n  ttl: 60\n"
    )
    runner = CliRunner()
    result = runner.invoke(main, ["--config", str(path), "set", "g", "k", '{"a": 1}', "--json"])
    assert result.exit_code == 0, result.output
    with State.from_config(path) as state:  # the file's prefix and ttl were used
        assert state.get("g", "k") == {"a": 1}
        left = state.ttl("g", "k")
        assert_ttl(left, 50, 60)
    result = runner.invoke(main, ["--config", str(path), "get", "g", "k", "--json"])
    assert result.exit_code == 0, result.output
    assert '"value": {"a": 1}' in result.stdout
    # a --url replaces the file's address; the file's options still apply
    result = runner.invoke(
        main, ["--config", str(path), "--url", f"redis://{host}:{port}", "get", "g", "k"]
    )
    assert result.exit_code == 0, result.output
    # a command's --prefix wins over the file's
    result = runner.invoke(main, ["--config", str(path), "get", "g", "k", "--prefix", "none:"])
    assert result.exit_code == 1, result.output


def test_cli_opens_the_files_options_without_a_cache_or_sweeper(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A command is one call: the file's near cache and background sweeps are not started
    for it (the real `from_url` still runs; it is only watched)."""
    name = memory_name()
    write(tmp_path, f"state:\n  adapter: memory\n  name: {name}\n  ttl: 9\n  cache: 100\n")
    opened: list[tuple[str | None, dict[str, Any]]] = []
    real = State.from_url.__func__  # type: ignore[attr-defined]

    def watched(cls: type[State], url: str | None = None, **options: Any) -> State:
        opened.append((url, options))
        return real(cls, url, **options)  # type: ignore[no-any-return]

    monkeypatch.setattr(State, "from_url", classmethod(watched))
    path = str(tmp_path / "config.yml")
    result = CliRunner().invoke(main, ["--config", path, "set", "g", "k", "1"])
    assert result.exit_code == 0, result.output
    assert opened == [(f"memory://{name}", {"ttl": 9, "cache": None, "cleanup_interval": None})]
    monkeypatch.chdir(tmp_path)  # found as ./config.yml: the file's options come from there
    result = CliRunner().invoke(main, ["ttl", "g", "k", "--codec", "json"])
    assert result.exit_code == 0, result.output
    assert opened[1] == (None, {"codec": "json", "cache": None, "cleanup_interval": None})


def test_cli_config_errors_are_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, f"state:\n  host: h\n  password: {SECRET}\n  port: nope\n")
    result = CliRunner().invoke(main, ["--config", str(path), "groups"])
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {path}, line 4: state.port: expected a port")
    assert SECRET not in result.output
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "none.yml"), "groups"])
    assert result.exit_code == 2
    assert "no such config file" in result.stderr


def test_installed_cli_finds_dot_config_yml(
    tmp_path: Path, redis_at: tuple[str, int, str], prefix: str
) -> None:
    host, port, _ = redis_at
    write(tmp_path, f"state:\n  host: {host}\n  port: {port}\n  prefix: '{prefix}'\n")
    env = {k: v for k, v in os.environ.items() if k not in ENV}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [EXE, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
        )

    assert cli("set", "g", "k", "7").returncode == 0
    got = cli("get", "g", "k", "--json")
    assert got.returncode == 0, got.stderr
    assert '"value": 7' in got.stdout
    with State.from_url(f"redis://{host}:{port}", prefix=prefix) as state:
        assert state.get("g", "k") == 7
    help_text = cli("--help")
    assert help_text.returncode == 0
    assert "--config PATH" in help_text.stdout
    assert shutil.which(EXE) or Path(EXE).is_file()
