"""`motia-state ui` attacked as an adversary would: foreign data on a real Redis, hostile
names and values, a change feed with garbage in it, servers killed, stopped and restarted
under it, bodies that never end or never arrive, a thousand open pages, odd requests, the
command line fed garbage, and secrets looked for everywhere.

Every test runs the real command (tests/ui_server.py) on a Redis server of this module's own
on loopback; foreign data is written with redis-py, as another tool would. What the
inspector promises here: an answer (a clear error, or the item shown as a placeholder),
never a 500, a hang or a dead live stream; nothing written that the user did not see.
"""

from __future__ import annotations

import hmac
import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgpack
import pytest
import redis

from motia_state import State
from motia_state.layout import KeyLayout
from motia_state.server import ServerProcess
from motia_state.ui import api, auth

from .conftest import NO_PERSISTENCE, REDIS_CONF, TEST_BINARY
from .servers import free_port, standalone
from .ui_server import CLI, WRITE_HEADERS, Inspector, error, events, refused

WAIT_S = 60.0  # the longest any condition is waited for (both cores may be busy)


def wait(condition: Callable[[], Any], what: str, timeout: float = WAIT_S) -> Any:
    """Polls ``condition`` until it is truthy; fails naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        found = condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Page:
    """A page's live stream, read in a thread: ``events`` as they arrive, (name, data)."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.events: list[tuple[str, Any]] = []
        self.ended = False
        self._client = httpx.Client(
            base_url=base, headers=headers, timeout=httpx.Timeout(30, read=None)
        )
        self._response: httpx.Response | None = None
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        self.wait(lambda name, data: name == "hello", "the stream's hello")

    def _read(self) -> None:
        try:
            with self._client.stream("GET", "/api/live") as response:
                self._response = response
                for event in events(response):
                    self.events.append(event)
        except (httpx.HTTPError, RuntimeError):  # closed under it by close()
            pass
        finally:
            self.ended = True

    def wait(self, match: Callable[[str, Any], bool], what: str) -> tuple[str, Any]:
        def found() -> tuple[str, Any] | None:
            return next(((n, d) for n, d in list(self.events) if match(n, d)), None)

        return wait(found, what)  # type: ignore[no-any-return]

    def changes(self, group: str) -> list[dict[str, Any]]:
        return [d for n, d in list(self.events) if n == "change" and d.get("group") == group]

    def close(self) -> None:
        if self._response is not None:
            self._response.close()
        self._client.close()
        self._thread.join(10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A Redis server of this module's own (foreign data and garbage feeds stay here)."""
    started = standalone(
        TEST_BINARY, REDIS_CONF, tmp_path_factory.mktemp("ui-hostile"), *NO_PERSISTENCE
    )
    yield started
    started.stop()


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Starts Redis servers a test may kill, stop and restart (``extra``: their arguments)."""
    started: list[ServerProcess] = []

    def start(*extra: str) -> ServerProcess:
        workdir = tmp_path / f"redis-{len(started)}"
        started.append(standalone(TEST_BINARY, REDIS_CONF, workdir, *NO_PERSISTENCE, *extra))
        return started[-1]

    yield start
    for one in started:
        if one.proc is not None:
            os.kill(one.proc.pid, signal.SIGCONT)
        one.stop()


class Ui(Inspector):
    """An inspector under a prefix of its own (``prefix``), so its feed is its own too."""

    def __init__(self, url: str, *args: str, **options: Any) -> None:
        self.prefix = f"uih{uuid.uuid4().hex[:8]}:"
        super().__init__(url, prefix=self.prefix, args=args, **options)


@pytest.fixture(scope="module")
def json_ui(server: ServerProcess) -> Iterator[Ui]:
    with Ui(server.url) as running:
        yield running
    assert "Traceback" not in running.logged, running.logged


@pytest.fixture(scope="module")
def msgpack_ui(server: ServerProcess) -> Iterator[Ui]:
    with Ui(server.url, "--codec", "msgpack") as running:
        yield running
    assert "Traceback" not in running.logged, running.logged


def data_key(ui: Ui, group: str | bytes) -> bytes:
    name = group if isinstance(group, bytes) else group.encode()
    return ui.prefix.encode() + name


def raw(server: ServerProcess) -> redis.Redis:
    return redis.Redis.from_url(server.url)


def nested(depth: int) -> bytes:
    return b"[" * depth + b"1" + b"]" * depth


def get_item(ui: Ui, group: str, key: str) -> dict[str, Any]:
    found = ui.client.get("/api/item", params={"group": group, "key": key})
    assert found.status_code == 200, found.text
    item: dict[str, Any] = found.json()
    return item


def every_row(ui: Ui, group: str, **params: Any) -> dict[str, dict[str, Any]]:
    rows: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        query = {"group": group, "limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        page = ui.client.get("/api/items", params=query)
        assert page.status_code == 200, page.text
        rows.update({row["key"]: row for row in page.json()["items"]})
        cursor = page.json()["cursor"]
        if cursor is None:
            return rows


# -- foreign values ---------------------------------------------------------------------


def test_values_no_client_decodes_are_shown_as_placeholders(
    json_ui: Ui, server: ServerProcess
) -> None:
    """Another tool's bytes, text and nesting deeper than any decoder takes: every item is
    listed and opens, read only, with its bytes readable; the group's other items as usual."""
    group = "foreign"
    foreign = {
        b"binary": b"\xff\xfe\x00garbage",
        b"text": b"hello world",
        b"deep": nested(2000),
    }
    with raw(server) as r:
        r.hset(data_key(json_ui, group), mapping=foreign)
    with State.from_url(server.url, prefix=json_ui.prefix) as state:
        state.set(group, "fine", {"n": 1})
        state.set(group, "huge", "x" * (4 << 20))
    rows = every_row(json_ui, group)
    assert set(rows) == {"binary", "text", "deep", "fine", "huge"}
    assert rows["fine"]["preview"] == '{"n": 1}'
    assert len(rows["huge"]["preview"]) == api.PREVIEW + 1
    for key, why in (("binary", "not JSON"), ("text", "not JSON"), ("deep", "too deeply")):
        assert rows[key]["preview"].startswith("(cannot read"), rows[key]
        assert rows[key]["version"] == 1
        item = get_item(json_ui, group, key)
        assert (item["editable"], item["value"], item["version"]) == (False, None, 1), item
        assert why in item["raw"]
    assert "b'\\xff\\xfe\\x00garbage'" in get_item(json_ui, group, "binary")["raw"]
    assert get_item(json_ui, group, "fine")["editable"] is True
    assert len(get_item(json_ui, group, "huge")["value"]) == 4 << 20
    found = json_ui.client.get("/api/items", params={"group": group, "search": "BIN"}).json()
    assert [row["key"] for row in found["items"]] == ["binary"]


def test_msgpack_values_json_cannot_carry_are_read_only(
    msgpack_ui: Ui, server: ServerProcess
) -> None:
    """Bytes, NaN, infinities (the engine writes them), extension types, map keys that are not
    strings, truncated and too deep data (other tools): each opens as a readable text marked
    not editable, never a 500; exact values stay editable."""
    group = "packed"
    packed = {"codec": "msgpack", "record_values": True}
    with State.from_url(server.url, prefix=msgpack_ui.prefix, **packed) as state:
        state.set(group, "bytes", {"b": b"\x00\xff\x01", "n": 1})
        state.set(group, "nan", float("nan"))
        state.set(group, "inf", [float("inf"), float("-inf")])
        state.set(group, "plain", {"a": [1, 2]})
    with raw(server) as r:
        r.hset(
            data_key(msgpack_ui, group),
            mapping={
                b"ext": msgpack.packb(msgpack.ExtType(5, b"xx")),
                b"bytes-key": msgpack.packb({b"\xff": 1}),
                b"int-key": msgpack.packb({1: "a"}),
                b"truncated": b"\x92\x01",
                b"deep": b"\x91" * 3000 + b"\x01",
                b"deepish": b"\x91" * 1000 + b"\x01",
                b"uint64": msgpack.packb(2**64 - 1),
            },
        )
    expected = {
        "bytes": "b'\\x00\\xff\\x01'",
        "nan": "NaN",
        "inf": "Infinity",
        "ext": "ExtType(code=5, data=b'xx')",
        "bytes-key": "b'\\xff'",
        "int-key": "not msgpack",
        "truncated": "not msgpack",
        "deep": "too deeply",
    }
    rows = every_row(msgpack_ui, group)
    assert set(rows) == {*expected, "plain", "deepish", "uint64"}
    for key, text in expected.items():
        item = get_item(msgpack_ui, group, key)
        assert (item["editable"], item["value"]) == (False, None), item
        assert text in item["raw"], (key, item["raw"])
    assert get_item(msgpack_ui, group, "plain")["editable"] is True
    assert get_item(msgpack_ui, group, "uint64")["raw"] == str(2**64 - 1)
    deepish = get_item(msgpack_ui, group, "deepish")  # shown whole or said to nest too deep
    assert deepish["editable"] or "deep" in deepish["raw"]
    history = msgpack_ui.client.get("/api/history", params={"group": group, "key": "bytes"})
    assert history.status_code == 200, history.text
    entry = history.json()["entries"][0]
    assert entry["value"] is None
    assert "b'\\x00\\xff\\x01'" in entry["raw"]


def test_a_save_cannot_replace_a_value_it_did_not_show(
    msgpack_ui: Ui, server: ServerProcess
) -> None:
    """The page shows bytes as text; saving that text back would turn them into a string
    without a word. A save naming the version of such a value is refused and nothing is
    written; operations the engine applies to the stored value itself keep the bytes."""
    group = "guarded"
    with State.from_url(server.url, prefix=msgpack_ui.prefix, codec="msgpack") as state:
        state.set(group, "doc", {"b": b"\x00\xff", "n": 1})
        shown = get_item(msgpack_ui, group, "doc")
        assert shown["raw"] == '{\n  "b": b\'\\x00\\xff\',\n  "n": 1\n}'
        edited = '{"b": "\\u0000\\u00ff", "n": 1}'  # what the text looked like, as JSON
        body = {"group": group, "key": "doc", "raw": edited, "version": shown["version"]}
        refusal = msgpack_ui.write("PUT", "/api/item", body)
        assert "not editable" in error(refusal, 400, "InvalidInput")
        assert state.get(group, "doc") == {"b": b"\x00\xff", "n": 1}
        ops = [{"type": "set", "path": "n", "value": 2}]
        updated = msgpack_ui.write(
            "POST", "/api/update", {"group": group, "key": "doc", "ops": ops}
        )
        assert updated.status_code == 200, updated.text
        assert state.get(group, "doc") == {"b": b"\x00\xff", "n": 2}


def test_a_body_is_read_exactly_as_the_value_text_is(json_ui: Ui, server: ServerProcess) -> None:
    """A key given twice in the request body (which one a proxy checked and which one the
    server takes would differ) or NaN is refused, as in the value's text; nothing written."""
    for text in (
        '{"group": "twice", "key": "k", "raw": "1", "version": null, "group": "other"}',
        '{"group": "twice", "key": "k", "value": {"a": 1, "a": 2}, "version": null}',
        '{"group": "twice", "key": "k", "value": NaN, "version": null}',
        '{"group": "twice", "key": "k", "by": NaN}',
    ):
        path = "/api/increment" if '"by"' in text else "/api/item"
        method = "POST" if '"by"' in text else "PUT"
        answer = json_ui.client.request(method, path, content=text, headers=WRITE_HEADERS)
        message = error(answer, 400, "InvalidInput")
        assert "twice" in message or "NaN" in message, message
    with State.from_url(server.url, prefix=json_ui.prefix) as state:
        assert not {"twice", "other"} & set(state.list_groups())


# -- foreign names --------------------------------------------------------------------------


def test_names_that_are_not_utf8_get_a_clear_answer(json_ui: Ui, server: ServerProcess) -> None:
    """A group or key another tool named with bytes that are not UTF-8 is listed (as the
    engine names it, with surrogate escapes); addressed by those bytes it is refused with a
    message, never taken for another name (U+FFFD) and answered as empty or missing."""
    with raw(server) as r:
        r.hset(data_key(json_ui, b"gr\xff"), b"k", b"1")
        r.hset(data_key(json_ui, "named"), mapping={b"k\xfe": b"2", b"ok": b"3"})
    groups = json_ui.client.get("/api/groups").json()["groups"]
    assert "gr\udcff" in [g["group"] for g in groups]
    items = json_ui.client.get(f"{json_ui.base}/api/items?group=gr%FF")
    assert "not valid unicode" in error(items, 400, "InvalidInput")
    rows = every_row(json_ui, "named")
    assert set(rows) == {"k\udcfe", "ok"}
    assert rows["k\udcfe"]["preview"].startswith("(cannot read")
    item = json_ui.client.get(f"{json_ui.base}/api/item?group=named&key=k%FE")
    assert "not valid unicode" in error(item, 400, "InvalidInput")


HOSTILE = [
    "a/b",
    "a%2Fb",
    "q?x=1&y",
    "h#x",
    " spaced ",
    "ünï😀",
    "\u202ertl\u200f",
    "nul\x00x",
    "ctl\x01\x1b[31m",
    "<script>alert(1)</script>",
    "..",
    "k" * 1000,
]


def keyed(key: str) -> Callable[[str, Any], bool]:
    return lambda name, data: name == "change" and data["key"] == key


def test_hostile_names_go_through_every_route(json_ui: Ui) -> None:
    page = Page(json_ui.base)
    try:
        for name in HOSTILE:
            body = {"group": name, "key": name, "raw": '{"v": 1}', "version": 0}
            assert json_ui.write("PUT", "/api/item", body).status_code == 200, name
            assert get_item(json_ui, name, name)["key"] == name
            rows = json_ui.client.get("/api/items", params={"group": name, "search": name[:3]})
            assert [r["key"] for r in rows.json()["items"]] == [name]
            history = json_ui.client.get("/api/history", params={"group": name, "key": name})
            assert [e["version"] for e in history.json()["entries"]] == [1]
            page.wait(keyed(name), f"the change of {name!r}")
            gone = json_ui.write("DELETE", "/api/item", group=name, key=name, version=1)
            assert gone.json() == {"deleted": True}
        assert json_ui.write("PUT", "/api/item", {**body, "group": "k" * 2000}).status_code == 400
    finally:
        page.close()


# -- the change feed ----------------------------------------------------------------------


def test_garbage_in_the_change_feed_leaves_the_stream_alive(server: ServerProcess) -> None:
    """Records another tool appended to the feed, with fields missing or not numbers and
    values no codec reads: the live stream goes on, and an item's history shows them."""
    with Ui(server.url) as ui:
        stream = KeyLayout(ui.prefix).changes("")
        page = Page(ui.base)
        try:
            with raw(server) as r:
                r.xadd(stream, {"op": "set", "group": "g", "key": "k", "version": "abc"})
                r.xadd(stream, {"op": "set", "group": "g", "key": "k", "prev": "zz"})
                r.xadd(stream, {"op": "set", "group": "g", "key": "k", "value": b"\xff"})
                r.xadd(stream, {"op": "set", "group": "g", "key": "k", "value": "1", "old": "{"})
                r.xadd(stream, {"anything": "else"})
            body = {"group": "g", "key": "k", "raw": '"after"', "version": None}
            assert ui.write("PUT", "/api/item", body).status_code == 200
            page.wait(lambda n, d: n == "change" and d["op"] == "set" and d["version"], "a set")
            assert ui.client.get("/api/info").json()["feed_error"] is None
            history = ui.client.get("/api/history", params={"group": "g", "key": "k"})
            assert history.status_code == 200, history.text
            entries = history.json()["entries"]
            assert len(entries) == 5
            assert entries[0]["value"] == "after"
            assert "cannot read" in entries[2]["raw"]  # the value b"\xff"
            assert "cannot read" in entries[1]["old_raw"]  # the old value "{"
        finally:
            page.close()
        assert "Traceback" not in ui.output()


def test_the_feed_resumes_where_it_was_when_its_connection_dies(server: ServerProcess) -> None:
    """The feed's connection is killed before the page saw any change, and changes are made
    before it reads again: they all arrive, once each, and the page is told both times."""
    with Ui(server.url) as ui:
        page = Page(ui.base)
        try:
            with raw(server) as r:
                for client in r.client_list():
                    if client["cmd"] == "xread":
                        r.client_kill_filter(_id=client["id"])
            with State.from_url(server.url, prefix=ui.prefix) as state:
                for i in range(3):
                    state.set("resumed", f"k{i}", i)
            wait(lambda: len(page.changes("resumed")) >= 3, "the three changes")
            page.wait(lambda n, d: n == "feed" and d["ok"] is False, "the feed failing")
            page.wait(lambda n, d: n == "feed" and d["ok"] is True, "the feed back")
            state_changes = [(c["key"], c["version"]) for c in page.changes("resumed")]
            assert state_changes == [("k0", 1), ("k1", 1), ("k2", 1)]
        finally:
            page.close()


def test_a_killed_and_restarted_server(own_server: Callable[..., ServerProcess]) -> None:
    """The server dies: the API answers 503 with a message, the page is told; it comes back:
    the page is told, and changes made after arrive. A password in the URL and the token
    appear in none of it."""
    secret = "pw-" + uuid.uuid4().hex
    token = "tk-" + uuid.uuid4().hex
    redis_server = own_server(
        "--user", "ui", "on", f">{secret}", "~*", "&*", "+@all"
    )  # on every start
    url = f"redis://ui:{secret}@{redis_server.host}:{redis_server.port}"
    responses: list[httpx.Response] = []
    with Ui(url, token=token) as ui:
        bearer = {"authorization": f"Bearer {token}"}
        page = Page(ui.base, bearer)
        try:
            assert redis_server.proc is not None
            redis_server.proc.kill()
            redis_server.proc.wait()
            down = ui.client.get("/api/groups")
            responses.append(down)
            assert "redis://ui:***@" in error(down, 503, "BackendUnavailable")
            page.wait(lambda n, d: n == "feed" and d["ok"] is False, "the feed failing")
            redis_server.start()
            with State.from_url(url, prefix=ui.prefix) as state:
                state.set("back", "k", 1)
            page.wait(lambda n, d: n == "feed" and d["ok"] is True, "the feed back")
            wait(lambda: page.changes("back"), "the change made after the restart")
            for path in ("/api/info", "/api/groups", "/api/nothing", "/api/item?group=g"):
                responses.append(ui.client.get(path))
            responses.append(httpx.get(f"{ui.base}/api/info", timeout=30))  # no token
            responses.append(ui.write("PUT", "/api/item", {"group": "g", "key": "k", "raw": "{"}))
        finally:
            page.close()
    for response in responses:
        headers = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        assert secret not in response.text + headers
        assert token not in response.text + headers
    assert secret not in ui.printed + ui.logged + json.dumps(page.events)
    assert token not in ui.printed + ui.logged


def test_a_stopped_server_gets_an_answer_in_bounded_time(
    own_server: Callable[..., ServerProcess],
) -> None:
    """SIGSTOP: the server accepts connections and never answers. A call ends as 503 with a
    message within the inspector's bound (the engine alone retries for minutes: some 160 s
    with its default 10 s socket timeout); Ctrl-C then ends the inspector quietly, the call
    still waiting answered."""
    redis_server = own_server()
    assert redis_server.proc is not None
    pid = redis_server.proc.pid
    with Ui(redis_server.url) as ui:
        os.kill(pid, signal.SIGSTOP)
        try:
            stalled = ui.client.get("/api/item", params={"group": "g", "key": "k"}, timeout=90)
            assert "did not answer" in error(stalled, 503, "BackendUnavailable")
        finally:
            os.kill(pid, signal.SIGCONT)
        wait(lambda: ui.client.get("/api/groups").status_code == 200, "the API after SIGCONT")
        os.kill(pid, signal.SIGSTOP)
        try:
            with connect(ui) as waiting:
                waiting.sendall(b"GET /api/groups HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
                assert ui.client.get("/api/info").status_code == 200  # that call is under way
                os.killpg(ui.process.pid, signal.SIGINT)
                assert ui.process.wait(WAIT_S) in (0, 130)
                assert status_of(waiting) == 503
        finally:
            os.kill(pid, signal.SIGCONT)
    assert "Traceback" not in ui.logged, ui.logged


# -- the HTTP layer -----------------------------------------------------------------------


def connect(ui: Ui) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", ui.port), timeout=WAIT_S)
    return sock


def status_of(sock: socket.socket) -> int:
    head = b""
    while b"\r\n" not in head:
        chunk = sock.recv(4096)
        if not chunk:
            raise AssertionError(f"closed without an answer: {head!r}")
        head += chunk
    return int(head.split(b" ", 2)[1])


WRITE_HEAD = (
    b"PUT /api/item HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
    b"X-Motia-State: 1\r\n"
)


def test_a_body_past_the_limit_is_refused_while_it_is_sent(json_ui: Ui) -> None:
    """Chunked, so no Content-Length tells the size: the server stops reading at the limit
    and answers 413, instead of buffering whatever the client sends."""
    with connect(json_ui) as sock:
        sock.sendall(WRITE_HEAD + b"Transfer-Encoding: chunked\r\n\r\n")
        chunk = b"%x\r\n" % (1 << 20) + b" " * (1 << 20) + b"\r\n"
        try:
            for _ in range(api.MAX_BODY // (1 << 20) + 2):
                sock.sendall(chunk)
        except OSError:  # the server answered and closed while we were still sending
            pass
        assert status_of(sock) == 413


def test_a_body_that_stops_arriving_gets_an_answer(json_ui: Ui) -> None:
    with connect(json_ui) as sock:
        sock.sendall(WRITE_HEAD + b"Content-Length: 100\r\n\r\n{")
        assert status_of(sock) == 408


def test_a_content_length_that_lies(json_ui: Ui) -> None:
    with connect(json_ui) as sock:  # more than it said: the rest is not a request
        sock.sendall(WRITE_HEAD + b'Content-Length: 2\r\n\r\n{"group": "g"}')
        assert status_of(sock) == 400
    with connect(json_ui) as sock:  # far more than the limit, said up front
        sock.sendall(WRITE_HEAD + b"Content-Length: 99999999999999\r\n\r\n{")
        assert status_of(sock) == 413


def test_a_thousand_pages_and_one_that_never_reads(json_ui: Ui, server: ServerProcess) -> None:
    """A thousand open pages cost the API and a reading page nothing; a page that reads
    nothing is dropped once it is `QUEUE` changes behind (told to reload), so what the
    server holds for it stays bounded."""
    with State.from_url(server.url, prefix=json_ui.prefix) as state:
        idle = [live_socket(json_ui) for _ in range(1000)]
        try:
            reader = Page(json_ui.base)
            assert json_ui.client.get("/api/info").status_code == 200
            state.set("crowd", "k", 1)
            wait(lambda: reader.changes("crowd"), "a change with a thousand pages open")
            reader.close()
        finally:
            for sock in idle:
                sock.close()
        slow = live_socket(json_ui)
        with slow:
            for i in range(0, 40_000, 1_000):
                state.set_many("flood", {f"k{j}": j for j in range(i, i + 1_000)})
            seen = b""
            while not seen.endswith(b"0\r\n\r\n"):  # the end of its chunked stream
                chunk = slow.recv(1 << 16)
                assert chunk, "closed before the end of the stream"
                seen += chunk
            assert b"event: reload" in seen
            assert seen.count(b"event: change") < 40_000
    assert json_ui.client.get("/api/groups").status_code == 200


def live_socket(ui: Ui) -> socket.socket:
    """A page's stream on a socket that is never read (until the test reads it)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(WAIT_S)
    sock.connect(("127.0.0.1", ui.port))
    sock.sendall(b"GET /api/live HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    return sock


@pytest.mark.parametrize("method", ["OPTIONS", "PATCH", "POST"])
def test_a_method_a_route_does_not_take_is_a_json_error(json_ui: Ui, method: str) -> None:
    answer = json_ui.client.request(method, "/api/item", headers=WRITE_HEADERS, content=b"{}")
    error(answer, 405, "MethodNotAllowed")
    head = json_ui.client.head("/api/info")
    assert (head.status_code, head.content) == (200, b"")


def test_paths_queries_hosts_and_origins(json_ui: Ui) -> None:
    client = json_ui.client
    for path in (
        "/static/..%2f__init__.py",
        "/static/%2e%2e/api.py",
        "/static/..%252fapi.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/....//api.py",
        "/static/%00",
    ):
        answer = client.get(path)
        assert answer.status_code in (400, 404), path
        assert "import" not in answer.text
    for query in ("group=%zz", "%%%&&&==", "group=a&group=b&limit=1&limit=x", "group=a&key"):
        answer = client.get(f"{json_ui.base}/api/item?{query}")
        assert answer.status_code in (400, 404), (query, answer.text)
        assert answer.json()["error"]["message"]
    for host in ("127.0.0.1.evil.example", "evil.example:80", "localhost.evil.example", ""):
        error(client.get("/api/groups", headers={"host": host}), 403, "Forbidden")
    body = {"group": "origins", "key": "k", "raw": "1", "version": None}
    for origin in ("null", f"http://127.0.0.1:{json_ui.port + 1}", "http://evil.example"):
        answer = client.put("/api/item", json=body, headers={**WRITE_HEADERS, "origin": origin})
        error(answer, 403, "Forbidden")
    same = {**WRITE_HEADERS, "origin": f"http://127.0.0.1:{json_ui.port}"}
    assert client.put("/api/item", json=body, headers=same).status_code == 200
    garbage = {"cookie": '=;;"\\\x7f; motia_state_token=x; a="b'}
    assert client.get("/api/info", headers=garbage).status_code == 200  # no token in force


def test_the_token_door(server: ServerProcess) -> None:
    token = "door-" + uuid.uuid4().hex
    with Ui(server.url, token=token) as ui:
        anonymous = httpx.Client(base_url=ui.base, timeout=30)
        with anonymous:
            for cookie in ('=;;"\\\x7f', "motia_state_token=", f"motia_state_token={token}x"):
                error(anonymous.get("/api/info", headers={"cookie": cookie}), 401, "Unauthorized")
            good = {"cookie": f'junk="; motia_state_token={token}'}
            assert anonymous.get("/api/info", headers=good).status_code in (200, 401)
        with connect(ui) as sock:  # httpx would take //evil.example for another host
            sock.sendall(f"GET //evil.example/?token={token} HTTP/1.1\r\n".encode())
            sock.sendall(f"Host: 127.0.0.1:{ui.port}\r\n\r\n".encode())
            head = sock.recv(4096).decode()
        assert head.startswith("HTTP/1.1 303"), head
        location = next(x for x in head.split("\r\n") if x.lower().startswith("location:"))
        assert location.split(":", 1)[1].strip().startswith("/")
        assert not location.split(":", 1)[1].strip().startswith("//"), location


def test_every_token_is_compared_in_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cookie, bearer header and the first visit's query each go through compare_digest."""
    compared: list[bytes] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        compared.append(a)
        return real(a, b)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not authenticated: never reached")

    monkeypatch.setattr(hmac, "compare_digest", spy)
    guard = auth.Guard(app, token="t" * 20)
    headers = {"cookie": "motia_state_token=from-cookie", "authorization": "Bearer from-bearer"}
    scope = {"type": "http", "method": "GET", "query_string": b"token=from-query"}
    assert not guard._authenticated(scope, headers)
    assert sorted(compared) == [b"from-bearer", b"from-cookie", b"from-query"]


# -- the command line ---------------------------------------------------------------------


def test_the_command_fed_garbage(server: ServerProcess) -> None:
    for args, code, said in (
        (("--port", "99999"), 2, "99999"),
        (("--port", "-1"), 2, "-1"),
        (("--host", "not an address"), 4, "cannot listen"),
    ):
        done = refused(server.url, *args)
        assert done.returncode == code, done.stderr
        assert said in done.stderr
        assert "Traceback" not in done.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        command = [CLI, "ui", "--url", server.url, "--port", str(port)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 4
        assert "Address already in use" in done.stderr
        assert "Traceback" not in done.stderr
    secret = "pw-" + uuid.uuid4().hex
    unreachable = refused(f"redis://user:{secret}@127.0.0.1:{free_port()}")
    assert unreachable.returncode == 4
    assert "redis://user:***@" in unreachable.stderr
    assert secret not in unreachable.stdout + unreachable.stderr
    assert "Traceback" not in unreachable.stderr


def test_the_token_from_the_environment(server: ServerProcess) -> None:
    token = "env-" + uuid.uuid4().hex
    env = {"MOTIA_STATE_UI_TOKEN": token}
    with Ui(server.url, env=env) as ui:
        error(httpx.get(f"{ui.base}/api/info", timeout=30), 401, "Unauthorized")
        bearer = {"authorization": f"Bearer {token}"}
        assert httpx.get(f"{ui.base}/api/info", headers=bearer, timeout=30).status_code == 200
    assert token not in ui.printed + ui.logged


def test_ctrl_c_while_a_page_streams_ends_quietly(server: ServerProcess) -> None:
    ui = Ui(server.url)
    page = Page(ui.base)
    try:
        os.killpg(ui.process.pid, signal.SIGINT)
        code = ui.process.wait(WAIT_S)
    finally:
        page.close()
        ui.stop()
    assert code in (0, 130), (code, ui.logged)
    assert "Traceback" not in ui.logged
    assert "Aborted" not in ui.logged
