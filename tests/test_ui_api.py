"""The inspector's JSON API (`motia-state ui`), through the real command on real servers.

Each backend gets one inspector process for the module (memory and file poll, the Redis
backends stream the change feed); every test works in groups of its own. What the API
promises: paging that returns each item once, compare-and-set writes whose conflict names
the item as it is now, bad input refused with a message and nothing written, the feed live
over Server-Sent Events, and doors closed to other machines, other pages and other names.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from motia_state import State
from motia_state.ui import bind

from .conftest import Servers, _purge
from .ui_server import CLI, WRITE_HEADERS, Inspector, error, events, refused

BACKENDS = ["memory", "file", "embedded", "redis", "cluster"]
LIVE = {"embedded", "redis", "cluster"}


class Backend:
    """A backend, its inspector, and a `State` on the same data for the test's side."""

    def __init__(self, name: str, url: str, prefix: str | None, inspector: Inspector) -> None:
        self.name = name
        self.url = url
        self.prefix = prefix
        self.inspector = inspector

    @property
    def live(self) -> bool:
        return self.name in LIVE

    def state(self, **options: Any) -> State:
        if self.prefix is not None:
            options["prefix"] = self.prefix
        return State.from_url(self.url, record_values=True, **options)

    def cli(self, *args: str) -> str:
        """A `motia-state` command on the same state, in a process of its own."""
        command = [CLI, args[0], "--url", self.url, *args[1:]]
        if self.prefix is not None:
            command[4:4] = ["--prefix", self.prefix]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
        return done.stdout


@pytest.fixture(scope="module", params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, servers: Servers, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    name = request.param
    prefix: str | None = f"ui{uuid.uuid4().hex[:8]}:"
    if name == "memory":
        url, prefix = "memory://", None
    elif name == "file":
        url, prefix = f"file://{tmp_path_factory.mktemp('ui') / 'state.json'}", None
    elif name == "embedded":
        servers.embedded_socket()
        url = f"embedded://{servers.embedded_dir()}"
    elif name == "cluster":
        url = servers.cluster().url
    else:
        url = servers.redis()[0]
    with Inspector(url, prefix=prefix) as inspector:
        yield Backend(name, url, prefix, inspector)
    assert "Traceback" not in inspector.logged, inspector.logged
    if prefix is not None:
        _purge(f"unix://{servers.embedded_socket()}" if name == "embedded" else url, prefix)


@pytest.fixture
def group() -> str:
    return f"g-{uuid.uuid4().hex[:8]}"


def put(backend: Backend, group: str, key: str, raw: str, version: int | None) -> httpx.Response:
    body = {"group": group, "key": key, "raw": raw, "version": version}
    return backend.inspector.write("PUT", "/api/item", body)


def item(backend: Backend, group: str, key: str) -> httpx.Response:
    return backend.inspector.client.get("/api/item", params={"group": group, "key": key})


# -- reading -------------------------------------------------------------------------------


def test_info_says_how_the_page_stays_live(backend: Backend) -> None:
    info = backend.inspector.client.get("/api/info").json()
    assert info["live"] == ("feed" if backend.live else "poll")
    assert info["poll_ms"] == (None if backend.live else 2000)
    assert info["record_values"] is True
    assert "versions" in info["capabilities"]
    assert info["backend"] == {"embedded": "embedded", "cluster": "cluster"}.get(
        backend.name, backend.url.split("://")[0]
    )


def test_groups_items_and_an_item(backend: Backend, group: str) -> None:
    if backend.name == "memory":  # the inspector's own memory: its writes are the data
        for key in ("a", "b"):
            assert put(backend, group, key, '{"n": 1}', 0).status_code == 200
        timed = {"group": group, "key": "b", "ttl": 600}
        assert backend.inspector.write("POST", "/api/ttl", timed).status_code == 200
    else:
        with backend.state() as state:
            state.set(group, "a", {"n": 1})
            state.set(group, "b", {"n": 1}, ttl=600)
    client = backend.inspector.client
    groups = client.get("/api/groups", params={"search": group.upper()}).json()["groups"]
    assert [g["group"] for g in groups] == [group]
    assert (groups[0]["items"], groups[0]["with_ttl"]) == (2, 1)
    assert (groups[0]["bytes"] is not None) == backend.live
    rows = {r["key"]: r for r in client.get("/api/items", params={"group": group}).json()["items"]}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["preview"] == '{"n": 1}'
    assert rows["a"]["ttl_ms"] is None
    assert 590_000 < rows["b"]["ttl_ms"] <= 600_000
    found = item(backend, group, "a").json()
    assert (found["value"], found["version"], found["editable"]) == ({"n": 1}, 1, True)
    assert json.loads(found["raw"]) == {"n": 1}
    error(item(backend, group, "nope"), 404, "NotFound")


def test_items_page_through_every_item_once(backend: Backend, group: str) -> None:
    keys = {f"k{i:03}" for i in range(23)}
    if backend.name == "memory":
        for key in keys:
            put(backend, group, key, '{"i": 1}', 0)
    else:
        with backend.state() as state:
            state.set_many(group, {key: {"i": int(key[1:])} for key in keys})
    seen: list[str] = []
    cursor = None
    while True:
        params = {"group": group, "limit": 5, **({"cursor": cursor} if cursor else {})}
        page = backend.inspector.client.get("/api/items", params=params).json()
        assert len(page["items"]) <= 5 + 250  # a page, never everything at once
        seen += [row["key"] for row in page["items"]]
        cursor = page["cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(keys)
    found = backend.inspector.client.get(
        "/api/items", params={"group": group, "search": "K01", "limit": 50}
    ).json()
    assert sorted(r["key"] for r in found["items"]) == [f"k01{i}" for i in range(10)]


def test_items_filter_and_order_on_the_server(backend: Backend, group: str) -> None:
    if backend.name == "memory":
        pytest.skip("the inspector's own memory holds only what it wrote")
    with backend.state() as state:
        state.set_many(group, {f"o{i}": {"total": i, "paid": i % 2 == 0} for i in range(10)})
    page = backend.inspector.client.get(
        "/api/items",
        params={
            "group": group,
            "where": json.dumps({"valueKey": "paid", "operation": "eq", "value": True}),
            "order_by": "total",
            "desc": "1",
        },
    ).json()
    assert [r["key"] for r in page["items"]] == ["o8", "o6", "o4", "o2", "o0"]
    bad = backend.inspector.client.get("/api/items", params={"group": group, "where": "{nope"})
    assert "where is not JSON" in error(bad, 400, "InvalidInput")
    bad = backend.inspector.client.get("/api/items", params={"group": group, "limit": "0"})
    error(bad, 400, "InvalidInput")


# -- writing -------------------------------------------------------------------------------


def test_a_save_is_compare_and_set_and_a_conflict_shows_the_item_now(
    backend: Backend, group: str
) -> None:
    created = put(backend, group, "o-1", '{"total": 1}', 0)
    assert created.status_code == 200, created.text
    assert created.json()["item"]["version"] == 1
    saved = put(backend, group, "o-1", '{"total": 2}', 1).json()["item"]
    assert (saved["value"], saved["version"]) == ({"total": 2}, 2)
    stale = put(backend, group, "o-1", '{"total": 99}', 1)
    assert "expected version 1, found 2" in error(stale, 409, "VersionConflict")
    assert stale.json()["current"]["value"] == {"total": 2}
    assert stale.json()["current"]["version"] == 2
    assert item(backend, group, "o-1").json()["value"] == {"total": 2}
    again = put(backend, group, "o-1", '{"total": 3}', 0)  # "only if absent"
    assert again.json()["current"]["version"] == 2
    error(again, 409, "VersionConflict")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("{nope", "not JSON"),
        ('{"a": 1, "a": 2}', "appears twice"),
        ("NaN", "not a JSON number"),
        ("1e999", "beyond the range"),
        ("123456789012345678901234567890", "outside the signed 64-bit range"),
        ("[" * 200 + "]" * 200, "nests deeper"),
    ],
)
def test_bad_json_is_refused_with_a_message_and_nothing_written(
    backend: Backend, group: str, raw: str, message: str
) -> None:
    put(backend, group, "k", '"before"', 0)
    refusal = put(backend, group, "k", raw, 1)
    assert refusal.status_code in (400, 413), refusal.text
    assert message in refusal.json()["error"]["message"]
    found = item(backend, group, "k").json()
    assert (found["value"], found["version"]) == ("before", 1)


def test_big_integers_keep_their_digits(backend: Backend, group: str) -> None:
    assert put(backend, group, "k", '{"id": 9007199254740993}', 0).status_code == 200
    found = item(backend, group, "k").json()
    assert '"id": 9007199254740993' in found["raw"]


def test_malformed_requests_are_refused(backend: Backend, group: str) -> None:
    inspector = backend.inspector
    for body in ([1], "text", {"group": 5, "key": "k", "raw": "1"}, {"group": group, "key": "k"}):
        error(inspector.write("PUT", "/api/item", body), 400, "InvalidInput")
    refusal = inspector.client.put("/api/item", content=b"{not json", headers=WRITE_HEADERS)
    error(refusal, 400, "InvalidInput")
    body = {"group": group, "key": "k", "raw": "1", "version": "1"}
    error(inspector.write("PUT", "/api/item", body), 400, "InvalidInput")
    body = {"group": "", "key": "k", "raw": "1", "version": 0}
    error(inspector.write("PUT", "/api/item", body), 400, "InvalidInput")
    error(inspector.client.get("/api/item", params={"group": group}), 400, "InvalidInput")
    error(inspector.client.get("/api/nothing"), 404, "NotFound")
    assert inspector.client.get("/api/groups", params={"search": group}).json()["groups"] == []


def test_delete_needs_the_version_and_checks_it(backend: Backend, group: str) -> None:
    put(backend, group, "k", "1", 0)
    inspector = backend.inspector
    error(inspector.write("DELETE", "/api/item", group=group, key="k"), 400, "InvalidInput")
    stale = inspector.write("DELETE", "/api/item", group=group, key="k", version=7)
    error(stale, 409, "VersionConflict")
    assert stale.json()["current"]["version"] == 1
    done = inspector.write("DELETE", "/api/item", group=group, key="k", version=1)
    assert done.json() == {"deleted": True}
    error(item(backend, group, "k"), 404, "NotFound")


def test_increment_update_ttl_and_clear(backend: Backend, group: str) -> None:
    inspector = backend.inspector

    def post(path: str, **body: Any) -> httpx.Response:
        return inspector.write("POST", path, {"group": group, **body})

    assert post("/api/increment", key="n", by=5).json()["item"]["value"] == 5
    error(post("/api/increment", key="n", by="x"), 400, "InvalidUpdate")
    put(backend, group, "doc", '{"a": 1}', 0)
    ops = [{"type": "set", "path": "b.c", "value": 2}, {"type": "increment", "path": "a", "by": 1}]
    updated = post("/api/update", key="doc", ops=ops)
    assert updated.json()["item"]["value"] == {"a": 2, "b": {"c": 2}}
    typed = post("/api/update", key="doc", ops=json.dumps(ops[1:]))  # the form's text
    assert typed.json()["item"]["value"]["a"] == 3
    error(post("/api/update", key="doc", ops=[{"type": "explode"}]), 400, "InvalidUpdate")
    assert item(backend, group, "doc").json()["version"] == 3
    timed = post("/api/ttl", key="doc", ttl=120).json()
    assert timed["changed"] is True
    assert 110_000 < timed["item"]["ttl_ms"] <= 120_000
    assert post("/api/ttl", key="doc", ttl=None).json()["item"]["ttl_ms"] is None
    error(post("/api/ttl", key="doc", ttl=-1), 400, "InvalidInput")
    error(post("/api/ttl", key="gone", ttl=5), 404, "NotFound")
    error(post("/api/clear", confirm=group.upper()), 400, "InvalidInput")
    assert item(backend, group, "doc").status_code == 200
    removed = post("/api/clear", confirm=group)
    assert removed.json() == {"removed": 2}
    error(item(backend, group, "doc"), 404, "NotFound")


# -- history and the live feed ------------------------------------------------------------


def test_history_shows_what_each_write_did(backend: Backend, group: str) -> None:
    put(backend, group, "k", '{"v": 1}', 0)
    put(backend, group, "k", '{"v": 2}', 1)
    response = backend.inspector.client.get("/api/history", params={"group": group, "key": "k"})
    if not backend.live:
        error(response, 501, "Unsupported")
        return
    entries = response.json()["entries"]
    assert [(e["op"], e["version"]) for e in entries] == [("set", 2), ("set", 1)]
    assert (entries[0]["value"], entries[0]["old_value"]) == ({"v": 2}, {"v": 1})
    assert entries[0]["has_values"] is True
    older = backend.inspector.client.get(
        "/api/history", params={"group": group, "key": "k", "limit": 1}
    ).json()
    assert older["cursor"] is not None
    rest = backend.inspector.client.get(
        "/api/history", params={"group": group, "key": "k", "before": older["cursor"]}
    ).json()
    assert [e["version"] for e in rest["entries"]] == [1]


def test_live_changes_arrive_from_another_process(backend: Backend, group: str) -> None:
    with backend.inspector.client.stream("GET", "/api/live", timeout=60) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = events(response)
        assert next(stream) == ("hello", {"live": "feed" if backend.live else "poll"})
        if not backend.live:
            return
        backend.cli("set", group, "k", '{"from": "elsewhere"}')
        for name, data in stream:  # rate events come once a second in between
            if name == "change" and data["group"] == group:
                break
        assert (data["op"], data["key"], data["version"]) == ("set", "k", 1)
        changed_at = int(data["ts"])  # the server's clock: this machine's
        for name, data in stream:  # the second of the change, counted once it is over
            if name == "rate" and data["t"] >= changed_at and data["count"] >= 1:
                break
    metrics = backend.inspector.client.get("/api/metrics").json()
    assert metrics["rate"]["live"] is True
    assert len(metrics["rate"]["seconds"]) == 300
    assert sum(n for _, n in metrics["rate"]["seconds"]) >= 1


def test_expiries_ahead(backend: Backend, group: str) -> None:
    inspector = backend.inspector
    for key, ttl in (("soon", 30), ("later", 600), ("never", None)):
        put(backend, group, key, "1", 0)
        if ttl is not None:
            inspector.write("POST", "/api/ttl", {"group": group, "key": key, "ttl": ttl})
    found = inspector.client.get("/api/expiries", params={"group": group}).json()
    counts = {b["label"]: b["count"] for b in found["buckets"]}
    assert counts == {"< 1 min": 1, "1-5 min": 0, "5-60 min": 1, "1-24 h": 0, "> 24 h": 0}
    assert (found["without_ttl"], found["scanned"], found["complete"]) == (1, 3, True)


# -- the doors -------------------------------------------------------------------------------


def test_writes_need_the_header_a_json_body_and_the_same_origin(
    backend: Backend, group: str
) -> None:
    inspector = backend.inspector
    body = {"group": group, "key": "k", "raw": "1", "version": 0}
    plain = inspector.client.put("/api/item", json=body)  # no X-Motia-State
    error(plain, 403, "Forbidden")
    text = {"content-type": "text/plain", "x-motia-state": "1"}
    form = inspector.client.put("/api/item", content=json.dumps(body), headers=text)
    error(form, 403, "Forbidden")
    elsewhere = inspector.client.put(
        "/api/item", json=body, headers={"x-motia-state": "1", "origin": "http://evil.example"}
    )
    error(elsewhere, 403, "Forbidden")
    rebound = inspector.client.get("/api/groups", headers={"host": "evil.example"})
    error(rebound, 403, "Forbidden")
    error(item(backend, group, "k"), 404, "NotFound")  # nothing was written


def test_the_page_and_its_files_with_strict_headers(backend: Backend) -> None:
    client = backend.inspector.client
    for path in ("/", "/groups/orders", "/groups/a%2Fb/items/x%20y"):
        page = client.get(path)
        assert page.status_code == 200, path
        assert "text/html" in page.headers["content-type"]
        assert "/static/app.js" in page.text
        policy = page.headers["content-security-policy"]
        assert "default-src 'self'" in policy
        assert "frame-ancestors 'none'" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/../api.py").status_code == 404


def test_a_token_guards_every_door(servers: Servers) -> None:
    token = "t0ken-" + uuid.uuid4().hex
    url = servers.redis()[0]
    with Inspector(url, prefix="uitoken:", token=token) as inspector:
        anonymous = httpx.Client(base_url=inspector.base, timeout=30)
        with anonymous:
            error(anonymous.get("/api/info"), 401, "Unauthorized")
            assert anonymous.get("/").status_code == 401
            wrong = {"authorization": "Bearer wrong"}
            error(anonymous.get("/api/info", headers=wrong), 401, "Unauthorized")
            error(anonymous.get("/api/info", params={"token": token[:-1]}), 401, "Unauthorized")
            entry = anonymous.get("/groups/orders", params={"token": token, "x": "1"})
            assert entry.status_code == 303
            assert entry.headers["location"] == "/groups/orders?x=1"
            cookie = entry.headers["set-cookie"]
            assert "HttpOnly" in cookie
            assert "SameSite=Strict" in cookie
            assert anonymous.get("/api/info").status_code == 200  # the cookie it set
        assert inspector.client.get("/api/info").status_code == 200  # the bearer header
    assert token not in inspector.printed  # a token given is not printed back
    assert token not in inspector.logged


def test_another_address_needs_a_token_and_one_is_made(servers: Servers) -> None:
    url = servers.redis()[0]
    short = refused(url, "--host", "0.0.0.0", "--token", "short")
    assert short.returncode == 2
    assert "at least 16 characters" in short.stderr
    # Listening on every address, reached on loopback only: the made token is printed once.
    with Inspector(url, prefix="uiany:", host="0.0.0.0") as inspector:
        printed = inspector.output()
        assert "?token=" in printed
        token = printed.split("?token=", 1)[1].split()[0]
        assert len(token) >= 16
        error(httpx.get(f"{inspector.base}/api/info", timeout=30), 401, "Unauthorized")
        bearer = {"authorization": f"Bearer {token}"}
        reply = httpx.get(f"{inspector.base}/api/info", headers=bearer, timeout=30)
        assert reply.status_code == 200
    assert token not in inspector.logged


def test_a_password_in_the_url_shows_nowhere(servers: Servers) -> None:
    secret = "s3cret-" + uuid.uuid4().hex
    url = servers.redis()[0]
    user = f"ui-{uuid.uuid4().hex[:6]}"
    admin = redis.Redis.from_url(url)
    admin.execute_command("ACL", "SETUSER", user, "on", f">{secret}", "~*", "&*", "+@all")
    try:
        host, port = url.split("://", 1)[1].split("/")[0].rsplit(":", 1)
        prefix = f"uipw{uuid.uuid4().hex[:6]}:"
        with Inspector(f"redis://{user}:{secret}@{host}:{port}", prefix=prefix) as inspector:
            info = inspector.client.get("/api/info").json()
            assert secret not in json.dumps(info)
            assert "***" in info["url"]
            body = {"group": "g", "key": "k", "raw": "1", "version": None}
            assert inspector.write("PUT", "/api/item", body).status_code == 200
            refusal = inspector.write("PUT", "/api/item", {**body, "version": 9})
            assert secret not in refusal.text
        assert secret not in inspector.printed + inspector.logged
    finally:
        admin.execute_command("ACL", "DELUSER", user)
        admin.close()
        _purge(url, prefix)


def test_it_refuses_what_it_cannot_serve(tmp_path: Path) -> None:
    taken = refused("memory://", "--token", " padded-token-of-16 ")
    assert taken.returncode == 2
    assert "surrounding spaces" in taken.stderr
    bad = refused("nonsense://x")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr


def test_the_demo_points_to_an_inspector_that_shows_its_state(tmp_path: Path) -> None:
    """`make demo`'s state (the default embedded server, kept), seen through the command the
    demo prints at its end."""
    env = {**os.environ, "MOTIA_STATE_URL": ""}
    demo = subprocess.run(
        [CLI, "demo", "--keep"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert demo.returncode == 0, demo.stderr
    found = re.search(r"^or in a browser: motia-state ui --prefix (\S+)$", demo.stdout, re.M)
    assert found is not None, demo.stdout
    with Inspector(f"embedded://{tmp_path}/.motia", prefix=found[1]) as inspector:
        groups = {
            g["group"]: g["items"] for g in inspector.client.get("/api/groups").json()["groups"]
        }
        assert groups["orders"] == 4
        rows = inspector.client.get("/api/items", params={"group": "orders"}).json()["items"]
        assert len(rows) == 4


def test_responses_are_not_held_for_a_delayed_ack() -> None:
    """uvicorn sets no TCP_NODELAY on a socket it is handed: without it on the listening
    socket (which accepted connections inherit), a response written in two parts waited
    40 ms for the client's delayed ACK (found by the benchmark: 23 requests/s)."""
    sock = bind("127.0.0.1", 0)
    try:
        client = socket.create_connection(sock.getsockname()[:2], timeout=10)
        accepted, _ = sock.accept()
        with client, accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    finally:
        sock.close()
