"""The inspector's page (`motia-state ui`) in a real browser, over real servers.

Debian's chromium, driven by Playwright, talks to the real `motia-state ui` process on
127.0.0.1; another process writes at the moments that matter (between opening an item and
saving it, while a page is watching), as a second user would. One browser for the module and
one inspector per backend; each test works in groups of its own and leaves its last page in
tests/artifacts/ui/<test>.png. Nothing waits a fixed time: every step waits for what the page
shows, with generous deadlines (two cores, other work running).
"""

from __future__ import annotations

import json
import os
import random
import re
import signal
import urllib.parse
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from motia_state.server import ServerProcess
from motia_state.ui.live import sse

from . import ui_server
from .conftest import NO_PERSISTENCE, REDIS_CONF, TEST_BINARY, Servers, _purge
from .servers import standalone
from .ui_browser_support import (
    Backend,
    chromium,
    css_string,
    keep_screenshot,
    sync_api,
    unique,
)
from .ui_server import Inspector, refused

Page = sync_api.Page
expect = sync_api.expect

WAIT_MS = 20_000  # any single condition; both cores may be busy
expect.set_options(timeout=WAIT_MS)
VIEWPORT = {"width": 1440, "height": 900}
FLASH = re.compile(r"\bflash\b")


# ---- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


class Backends:
    """One inspector per backend for the module, started on first use."""

    def __init__(self, servers: Servers, folder: Path) -> None:
        self.servers = servers
        self.folder = folder
        self.started: dict[str, Backend] = {}

    def __call__(self, name: str) -> Backend:
        if name not in self.started:
            self.started[name] = self._start(name)
        return self.started[name]

    def _start(self, name: str) -> Backend:
        prefix: str | None = f"uib{uuid.uuid4().hex[:8]}:"
        data_url = None
        if name == "memory":
            url, prefix = "memory://", None
        elif name == "file":
            url, prefix = f"file://{self.folder / 'state.json'}", None
        elif name == "embedded":
            socket = self.servers.embedded_socket()
            url, data_url = f"embedded://{self.servers.embedded_dir()}", f"unix://{socket}"
        elif name == "cluster":
            url = self.servers.cluster().url
        else:
            url = self.servers.redis()[0]
        return Backend(name, url, prefix, Inspector(url, prefix=prefix), data_url=data_url)

    def stop(self) -> None:
        for backend in self.started.values():
            backend.inspector.stop()
            if backend.prefix is not None:
                _purge(backend.data_url, backend.prefix)


@pytest.fixture(scope="module")
def backends(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Backends]:
    started = Backends(servers, tmp_path_factory.mktemp("ui-browser"))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture
def redis_backend(backends: Backends) -> Backend:
    return backends("redis")


@pytest.fixture
def fresh_redis(backends: Backends) -> Iterator[Backend]:
    """An inspector of its own on a fresh prefix: only this test's groups, plainly named
    (the README's picture). Ask for it before `page`, so it stops after the screenshot."""
    shared = backends("redis")
    prefix = f"uib{uuid.uuid4().hex[:8]}:"
    with Inspector(shared.url, prefix=prefix) as inspector:
        try:
            yield Backend("redis", shared.url, prefix, inspector)
        finally:
            _purge(shared.url, prefix)


class Watched:
    """A page and what went wrong in it: script errors, CSP refusals, alert() calls."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        self.dialogs: list[str] = []
        self.requests: list[tuple[str, str]] = []
        page.on("pageerror", lambda exc: self.errors.append(f"script error: {exc}"))
        page.on("console", self._console)
        page.on("dialog", self._dialog)
        page.on("request", lambda r: self.requests.append((r.method, r.url)))

    def _console(self, message: Any) -> None:
        # A 4xx the page asked for and handled (a 409, a 404) is logged by chromium too.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(f"console: {message.text}")

    def _dialog(self, dialog: Any) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def watched(browser: Any, request: pytest.FixtureRequest) -> Iterator[Watched]:
    context = browser.new_context(viewport=VIEWPORT, color_scheme="light")
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    w = Watched(page)
    try:
        yield w
    finally:
        try:
            keep_screenshot(page, request.node.name)
        finally:
            context.close()
    assert not w.errors, w.errors
    assert not w.dialogs, f"the page raised browser dialogs: {w.dialogs}"


@pytest.fixture
def page(watched: Watched) -> Any:
    return watched.page


# ---- helpers --------------------------------------------------------------------------------


def segment(name: str) -> str:
    """A route segment as the page writes it (encodeURIComponent)."""
    return urllib.parse.quote(name, safe="-_.!~*'()")


def route(group: str, key: str | None = None) -> str:
    path = f"/groups/{segment(group)}"
    return path if key is None else f"{path}/items/{segment(key)}"


def visit(page: Any, backend: Backend, path: str = "/") -> None:
    page.goto(backend.base + path)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def row(page: Any, key: str) -> Any:
    return page.locator(f'[data-testid="item-row"][data-key={css_string(key)}]')


def group_row(page: Any, group: str) -> Any:
    return page.locator(f'[data-testid="group-row"][data-group={css_string(group)}]')


def open_item(page: Any, backend: Backend, group: str, key: str) -> None:
    visit(page, backend, route(group, key))
    expect(page.get_by_test_id("item-key")).to_be_visible()
    expect(page.get_by_test_id("item-version")).to_be_visible()


def until(page: Any, condition: Any, what: str) -> None:
    """Waits for a condition of this process's (what a route handler saw), letting
    Playwright deliver its events meanwhile."""
    for _ in range(WAIT_MS // 50):
        if condition():
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"timed out waiting for {what}")


def path_of(page: Any) -> str:
    return str(urllib.parse.urlsplit(page.url).path)


# ---- browsing -------------------------------------------------------------------------------


def test_browse_a_group_and_open_an_item(fresh_redis: Backend, page: Any) -> None:
    """The rich view the README shows: groups with counts, a paged list, an item's tree,
    raw text and history with a diff, and the three pictures fed by real writes."""
    b = fresh_redis
    orders, sessions, carts = "orders", "sessions", "carts"
    b.elsewhere(
        """
        s.set(orders, "o-1001", {"status": "new", "total": 12.5, "customer": {"name": "Ada",
              "city": "Oslo"}, "lines": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}]})
        s.update(orders, "o-1001", [{"type": "set", "path": "status", "value": "paid"}])
        s.update(orders, "o-1001", [{"type": "increment", "path": "total", "by": 4}])
        for i in range(2, 28):
            s.set(orders, f"o-{1000 + i}", {"status": "new", "total": i * 3.5},
                  ttl=None if i % 3 else 40 * i)
        for i in range(9):
            s.set(sessions, f"sess-{i:02d}", {"user": f"u{i}"}, ttl=90 + 700 * i)
        for i in range(4):
            s.set(carts, f"c-{i}", {"lines": i})
        """,
        orders=orders,
        sessions=sessions,
        carts=carts,
    )
    visit(page, b)
    expect(group_row(page, orders).get_by_test_id("group-count")).to_have_text("27")
    expect(group_row(page, sessions).get_by_test_id("group-count")).to_have_text("9")
    expect(page.get_by_test_id("chart-groups").locator("svg")).to_be_visible()

    group_row(page, orders).click()
    assert path_of(page) == route(orders)
    expect(page.get_by_test_id("item-row")).to_have_count(27)
    expect(page.get_by_test_id("items-summary")).to_have_text("27 items · 9 with TTL")
    expect(page.get_by_test_id("chart-expiries").locator("svg")).to_be_visible()

    row(page, "o-1001").click()
    assert path_of(page) == route(orders, "o-1001")
    expect(page.get_by_test_id("item-key")).to_have_text("o-1001")
    expect(page.get_by_test_id("item-version")).to_have_text("3")
    tree = page.get_by_test_id("item-tree")
    expect(tree).to_contain_text('"paid"')
    expect(tree).to_contain_text("16.5")
    expect(row(page, "o-1001")).to_have_attribute("aria-selected", "true")

    page.get_by_test_id("tab-raw").click()
    raw = page.get_by_test_id("item-raw")
    expect(raw).to_contain_text('"status": "paid"')
    page.get_by_test_id("tab-tree").click()

    entries = page.get_by_test_id("history-entry")
    expect(entries).to_have_count(3)
    expect(entries.nth(0)).to_contain_text("update")
    expect(entries.nth(2)).to_contain_text("set")
    entries.nth(0).locator("button").click()
    diff = page.get_by_test_id("history-diff")
    expect(diff.get_by_test_id("diff-a")).to_contain_text('"total": 12.5')
    expect(diff.get_by_test_id("diff-b")).to_contain_text('"total": 16.5')
    expect(page.get_by_test_id("chart-rate").locator("svg")).to_be_visible()


# ---- edits ----------------------------------------------------------------------------------


def test_edit_and_save(page: Any, watched: Any, redis_backend: Backend) -> None:
    b = redis_backend
    group = unique("edit")
    b.elsewhere('s.set(group, "doc", {"n": 1, "note": "first"})', group=group)
    open_item(page, b, group, "doc")
    expect(page.get_by_test_id("item-version")).to_have_text("1")

    page.get_by_test_id("edit-button").click()
    editor = page.get_by_test_id("editor")
    expect(editor).to_be_focused()
    # an integer past 2**53 must arrive digit for digit
    editor.fill('{"n": 2, "note": "second", "big": 9007199254740993}')
    page.get_by_test_id("save-button").click()

    expect(page.get_by_test_id("editor")).to_have_count(0)
    expect(page.get_by_test_id("item-version")).to_have_text("2")
    expect(page.get_by_test_id("item-tree")).to_contain_text("second")
    expect(row(page, "doc").get_by_test_id("row-version")).to_have_text("v2")
    expect(page.get_by_test_id("history-entry")).to_have_count(2)
    puts = [url for method, url in watched.requests if method == "PUT"]
    assert len(puts) == 1
    assert b.stored(group, "doc") == ({"n": 2, "note": "second", "big": 9007199254740993}, 2)


@pytest.mark.parametrize("choice", ["reload", "overwrite"])
def test_a_concurrent_edit_shows_the_conflict(
    page: Any, redis_backend: Backend, choice: str
) -> None:
    """Another process saves between open and save: nothing is written, both texts are shown
    side by side, and each way out does what it says."""
    b = redis_backend
    group = unique("conflict")
    b.elsewhere('s.set(group, "doc", {"owner": "nobody", "n": 1})', group=group)
    open_item(page, b, group, "doc")
    page.get_by_test_id("edit-button").click()
    mine = '{"owner": "me", "n": 10}'
    page.get_by_test_id("editor").fill(mine)

    b.elsewhere('s.set(group, "doc", {"owner": "them", "n": 2}, version=1)', group=group)
    page.keyboard.press("Control+s")

    conflict = page.get_by_test_id("conflict")
    expect(conflict).to_be_visible()
    expect(conflict).to_contain_text("version 2")
    expect(conflict.get_by_test_id("diff-a")).to_contain_text('"owner": "me"')
    expect(conflict.get_by_test_id("diff-b")).to_contain_text('"owner": "them"')
    assert b.stored(group, "doc") == ({"owner": "them", "n": 2}, 2)  # the save wrote nothing

    if choice == "reload":
        conflict.get_by_test_id("conflict-reload").click()
        expect(page.get_by_test_id("conflict")).to_have_count(0)
        expect(page.get_by_test_id("editor")).to_have_count(0)
        expect(page.get_by_test_id("item-version")).to_have_text("2")
        expect(page.get_by_test_id("item-tree")).to_contain_text('"them"')
        expected, version = {"owner": "them", "n": 2}, 2
    else:
        conflict.get_by_test_id("conflict-overwrite").click()
        expect(page.get_by_test_id("conflict")).to_have_count(0)
        expect(page.get_by_test_id("item-version")).to_have_text("3")
        expect(page.get_by_test_id("item-tree")).to_contain_text('"me"')
        expected, version = {"owner": "me", "n": 10}, 3
    assert b.stored(group, "doc") == (expected, version)


def test_bad_json_is_shown_and_nothing_is_written(
    page: Any, watched: Any, redis_backend: Backend
) -> None:
    b = redis_backend
    group = unique("badjson")
    b.elsewhere('s.set(group, "doc", {"ok": True})', group=group)
    open_item(page, b, group, "doc")
    page.get_by_test_id("edit-button").click()
    broken = '{"ok": true,\n  "missing": }'
    page.get_by_test_id("editor").fill(broken)
    page.get_by_test_id("save-button").click()

    error = page.get_by_test_id("edit-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("line 2")
    expect(page.get_by_test_id("editor")).to_have_value(broken)
    expect(page.get_by_test_id("editor")).to_have_attribute("aria-invalid", "true")
    assert not [u for m, u in watched.requests if m == "PUT"]  # nothing was sent
    # A text the browser parses but the engine refuses (a key twice) is the server's 400.
    page.get_by_test_id("editor").fill('{"a": 1, "a": 2}')
    expect(error).to_be_hidden()  # typing clears the old message
    page.get_by_test_id("save-button").click()
    expect(error).to_be_visible()
    expect(error).to_contain_text("twice")
    assert len([u for m, u in watched.requests if m == "PUT"]) == 1
    assert b.stored(group, "doc") == ({"ok": True}, 1)


def test_delete_asks_then_deletes(page: Any, redis_backend: Backend) -> None:
    b = redis_backend
    group = unique("delete")
    b.elsewhere('s.set(group, "doomed", {"x": 1}); s.set(group, "stays", 1)', group=group)
    open_item(page, b, group, "doomed")
    page.get_by_test_id("delete-button").click()
    dialog = page.get_by_test_id("delete-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("doomed")
    dialog.get_by_test_id("dialog-cancel").click()
    expect(dialog).to_have_count(0)
    assert b.stored(group, "doomed") == ({"x": 1}, 1)  # cancelled: still there

    # Changed by another process while the question is asked: refused, and it says so.
    page.get_by_test_id("delete-button").click()
    b.elsewhere('s.set(group, "doomed", {"x": 2}, version=1)', group=group)
    page.get_by_test_id("delete-dialog").get_by_test_id("confirm-ok").click()
    conflict = page.get_by_test_id("conflict")
    expect(conflict).to_contain_text("version 2")
    expect(conflict.get_by_test_id("diff-b")).to_contain_text('"x": 2')
    assert b.stored(group, "doomed") == ({"x": 2}, 2)
    conflict.get_by_test_id("conflict-delete").click()  # delete anyway: version 2 now
    expect(row(page, "doomed")).to_have_count(0)
    expect(row(page, "stays")).to_have_count(1)
    expect(page).to_have_url(re.compile(re.escape(route(group)) + "$"))
    assert b.stored(group, "doomed") is None


def test_forms_show_the_servers_errors_in_place(page: Any, redis_backend: Backend) -> None:
    """Increment, update ops, expiry and clear: each writes, and each refusal is shown in its
    dialog with the server's message."""
    b = redis_backend
    group = unique("forms")
    b.elsewhere('s.set(group, "n", 5); s.set(group, "doc", {"a": 1})', group=group)
    open_item(page, b, group, "n")
    page.get_by_test_id("increment-button").click()
    page.get_by_test_id("increment-by").fill("3")
    page.get_by_test_id("increment-submit").click()
    expect(page.get_by_test_id("increment-dialog")).to_have_count(0)
    expect(page.get_by_test_id("item-tree")).to_contain_text("8")

    row(page, "doc").click()
    expect(page.get_by_test_id("item-key")).to_have_text("doc")
    page.get_by_test_id("update-button").click()
    ops = page.get_by_test_id("update-ops")
    ops.fill('[{"type": "increment", "path": "a.b.c", "by": 1}, {"type": "frobnicate"}]')
    page.get_by_test_id("update-submit").click()
    dialog_error = page.get_by_test_id("update-dialog").get_by_test_id("dialog-error")
    expect(dialog_error).to_be_visible()
    expect(dialog_error).not_to_be_empty()
    ops.fill('[{"type": "set", "path": "b", "value": [1, 2]}]')
    page.get_by_test_id("update-submit").click()
    expect(page.get_by_test_id("update-dialog")).to_have_count(0)
    expect(page.get_by_test_id("item-version")).to_have_text("2")

    page.get_by_test_id("ttl-button").click()
    page.get_by_test_id("ttl-seconds").fill("3600")
    page.get_by_test_id("ttl-submit").click()
    expect(page.get_by_test_id("item-ttl")).to_have_text(re.compile(r"^(59 min|1 h 00 min)"))

    page.get_by_test_id("clear-group").click()
    confirm = page.get_by_test_id("clear-confirm")
    expect(confirm).to_be_disabled()
    page.get_by_test_id("clear-input").fill(group + "x")
    expect(confirm).to_be_disabled()
    page.get_by_test_id("clear-input").fill(group)
    expect(confirm).to_be_enabled()
    confirm.click()
    expect(page.get_by_test_id("items-empty")).to_be_visible()
    with b.state() as s:
        assert not s.get_group(group)


def test_pages_search_and_sort(page: Any, redis_backend: Backend) -> None:
    """A group larger than a page: 50 rows, then the cursor's next pages (the button, then
    scrolling); the key search is the server's; column sorts order the rows loaded."""
    b = redis_backend
    group = unique("paged")
    b.elsewhere(
        """
        s.set_many(group, {f"key-{i:03d}": {"i": i} for i in range(130)})
        for i in range(5):
            s.set(group, f"key-{i:03d}", {"i": i, "again": True}, ttl=3600 + 600 * i)
        """,
        group=group,
    )
    visit(page, b, route(group))
    rows = page.get_by_test_id("item-row")
    expect(rows).to_have_count(50)
    more = page.get_by_test_id("items-more")
    more.click()
    expect(rows).to_have_count(100)
    more.scroll_into_view_if_needed()  # the infinite scroll loads the rest
    expect(rows).to_have_count(130)
    expect(more).to_be_hidden()
    keys = page.evaluate(
        "[...document.querySelectorAll('[data-testid=item-row]')].map(r => r.dataset.key)"
    )
    assert sorted(keys) == [f"key-{i:03d}" for i in range(130)]  # each once

    page.get_by_test_id("sort-key").click()
    expect(rows.nth(0)).to_have_attribute("data-key", "key-000")
    page.get_by_test_id("sort-key").click()
    expect(rows.nth(0)).to_have_attribute("data-key", "key-129")
    expect(page.get_by_test_id("sort-key")).to_have_attribute("aria-sort", "descending")
    page.get_by_test_id("sort-version").click()
    page.get_by_test_id("sort-version").click()
    expect(rows.nth(0).get_by_test_id("row-version")).to_have_text("v2")
    page.get_by_test_id("sort-ttl").click()  # soonest first, then the rows without
    expect(rows.nth(0)).to_have_attribute("data-key", "key-000")
    expect(rows.nth(4)).to_have_attribute("data-key", "key-004")
    expect(rows.nth(5).get_by_test_id("row-ttl")).to_have_text("—")

    page.get_by_test_id("items-search").fill("KEY-12")
    expect(rows).to_have_count(10)
    expect(page.get_by_test_id("items-status")).to_contain_text("10 loaded")
    page.get_by_test_id("items-search").fill("no such key")
    expect(page.get_by_test_id("items-empty")).to_contain_text("No key matches")
    page.get_by_test_id("items-search").fill("")
    expect(rows).to_have_count(50)

    # The query filter: the CLI's short form, judged by the server, ordered by a value path.
    page.get_by_test_id("filter-toggle").click()
    page.get_by_test_id("filter-where").fill("i frob 1")
    page.get_by_test_id("filter-apply").click()
    expect(page.get_by_test_id("filter-error")).to_contain_text("not an operation")
    page.get_by_test_id("filter-where").fill("i startsWith 12")  # a number: the engine refuses
    page.get_by_test_id("filter-apply").click()
    expect(page.get_by_test_id("items-error")).to_contain_text("startsWith")
    page.get_by_test_id("filter-where").fill("i gte 125; again isNull")
    page.get_by_test_id("filter-order").fill("i")
    page.get_by_test_id("filter-desc").check()
    page.get_by_test_id("filter-apply").click()
    expect(rows).to_have_count(5)
    expect(page.get_by_test_id("items-error")).to_be_hidden()
    page.get_by_test_id("sort-key").click()  # back to the server's order: the filter's
    page.get_by_test_id("sort-key").click()
    page.get_by_test_id("sort-key").click()
    expect(rows.nth(0)).to_have_attribute("data-key", "key-129")
    expect(rows.nth(4)).to_have_attribute("data-key", "key-125")
    page.get_by_test_id("filter-clear").click()
    expect(rows).to_have_count(50)


# ---- live -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["redis", "cluster", "embedded"])
def test_live_updates_never_overwrite_an_edit(page: Any, backends: Backends, name: str) -> None:
    """Another process writes while the page watches: the row flashes with the new version,
    the open item follows, a new key appears; during an edit a notice appears instead and
    the text typed stays exactly as typed."""
    b = backends(name)
    group = unique("live")
    b.elsewhere('s.set(group, "watched", {"rev": 1}); s.set(group, "other", 0)', group=group)
    open_item(page, b, group, "watched")
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")

    b.elsewhere('s.set(group, "watched", {"rev": 2})', group=group)
    watched_row = row(page, "watched")
    expect(watched_row.get_by_test_id("row-version")).to_have_text("v2")
    expect(watched_row).to_have_class(FLASH)
    expect(page.get_by_test_id("item-version")).to_have_text("2")
    expect(page.get_by_test_id("item-tree")).to_contain_text("2")

    b.elsewhere('s.set(group, "newcomer", "hello")', group=group)
    expect(row(page, "newcomer")).to_have_count(1)
    expect(group_row(page, group).get_by_test_id("group-count")).to_have_text("3")
    b.elsewhere('s.delete(group, "other")', group=group)
    expect(row(page, "other")).to_have_count(0)
    expect(group_row(page, group).get_by_test_id("group-count")).to_have_text("2")
    expect(row(page, "newcomer").get_by_test_id("row-preview")).to_have_text('"hello"')

    page.get_by_test_id("edit-button").click()
    mine = '{"rev": "mine, not saved"}'
    page.get_by_test_id("editor").fill(mine)
    b.elsewhere('s.set(group, "watched", {"rev": 3})', group=group)
    notice = page.get_by_test_id("changed-notice")
    expect(notice).to_be_visible()
    expect(notice).to_contain_text("version 3")
    expect(page.get_by_test_id("editor")).to_have_value(mine)
    expect(watched_row.get_by_test_id("row-version")).to_have_text("v3")
    page.get_by_test_id("notice-keep").click()
    expect(notice).to_have_count(0)
    expect(page.get_by_test_id("editor")).to_have_value(mine)
    expect(page.get_by_test_id("editor")).to_be_focused()


@pytest.mark.parametrize("name", ["file", "memory"])
def test_backends_without_a_feed_are_polled(page: Any, backends: Backends, name: str) -> None:
    b = backends(name)
    visit(page, b)
    status = page.get_by_test_id("live-status")
    expect(status).to_have_attribute("data-state", "poll")
    expect(status).to_contain_text("polling every 2 s: this backend has no change feed")
    expect(page.get_by_test_id("chart-rate")).to_contain_text("needs a change feed")
    group = unique("polled")
    if name == "memory":
        # memory:// is this inspector's own: empty, and what the page itself writes.
        expect(page.get_by_test_id("groups-empty")).to_be_visible()
        page.get_by_test_id("groups-empty-new").click()
        page.get_by_test_id("new-group").fill(group)
        page.get_by_test_id("new-key").fill("made-here")
        page.get_by_test_id("new-value").fill('{"by": "the page"}')
        page.get_by_test_id("new-create").click()
        expect(page).to_have_url(re.compile(re.escape(route(group, "made-here")) + "$"))
        expect(page.get_by_test_id("item-tree")).to_contain_text("the page")
        expect(group_row(page, group).get_by_test_id("group-count")).to_have_text("1")
        expect(page.get_by_test_id("history-error")).to_contain_text("needs a change feed")
        return
    b.elsewhere('s.set(group, "first", 1)', group=group)
    expect(group_row(page, group)).to_have_count(1)  # a poll found the new group
    group_row(page, group).click()
    row(page, "first").click()
    expect(page.get_by_test_id("item-version")).to_have_text("1")
    b.elsewhere('s.set(group, "first", 2); s.set(group, "second", 1)', group=group)
    expect(row(page, "second")).to_have_count(1)
    expect(row(page, "first").get_by_test_id("row-version")).to_have_text("v2")
    expect(page.get_by_test_id("item-version")).to_have_text("2")


def test_ttl_counts_down_then_the_item_goes(page: Any, redis_backend: Backend) -> None:
    b = redis_backend
    group = unique("ttl")
    b.elsewhere('s.set(group, "brief", {"x": 1}, ttl=6); s.set(group, "stays", 1)', group=group)
    open_item(page, b, group, "brief")
    cell = row(page, "brief").get_by_test_id("row-ttl")
    expect(cell).to_have_text(re.compile(r"^[1-6] s$"))
    expect(page.get_by_test_id("item-ttl")).to_have_text(re.compile(r"^[1-6] s$"))
    first = cell.inner_text()
    expect(cell).not_to_have_text(first)  # it counts down, a second at a time
    # at zero: "expired", then the page looks again and the item is gone from both panes
    expect(row(page, "brief")).to_have_count(0)
    expect(page.get_by_test_id("item-gone")).to_be_visible()
    expect(row(page, "stays")).to_have_count(1)
    assert b.stored(group, "brief") is None


# ---- access ---------------------------------------------------------------------------------


def test_a_token_protects_the_page(browser: Any, redis_backend: Backend) -> None:
    b = redis_backend
    token = "tok-" + uuid.uuid4().hex
    group = unique("token")
    b.elsewhere('s.set(group, "k", "v")', group=group)
    context = browser.new_context(viewport=VIEWPORT)
    try:
        with Inspector(b.url, prefix=b.prefix, token=token) as inspector:
            page = context.new_page()
            w_errors: list[str] = []
            page.on("pageerror", lambda exc: w_errors.append(str(exc)))
            refused_page = page.goto(inspector.base + "/")
            assert refused_page is not None
            assert refused_page.status == 401
            assert token not in page.content()
            api = page.request.get(inspector.base + "/api/info")
            assert api.status == 401
            assert api.json()["error"]["type"] == "Unauthorized"

            page.goto(inspector.base + "/?token=" + token)
            expect(page.locator("body")).to_have_attribute("data-ready", "true")
            assert "token" not in page.url  # the address bar no longer shows it
            group_row(page, group).click()
            row(page, "k").click()
            expect(page.get_by_test_id("item-tree")).to_contain_text('"v"')
            expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
            assert page.request.get(inspector.base + "/api/info").status == 200
            keep_screenshot(page, "test_a_token_protects_the_page")
            assert not w_errors
    finally:
        context.close()
    # Refused before it binds or connects: a non-loopback address with a token too short.
    done = refused(b.url, "--host", "0.0.0.0", "--token", "short")
    assert done.returncode == 2
    assert "16" in done.stderr


# ---- navigation -----------------------------------------------------------------------------


def test_keyboard_alone(page: Any, redis_backend: Backend) -> None:
    b = redis_backend
    group = unique("kbd")
    b.elsewhere(
        "for k in ['k-a', 'k-b', 'k-c']: s.set(group, k, {'k': k})",
        group=group,
    )
    visit(page, b)
    page.keyboard.press("/")
    expect(page.get_by_test_id("groups-search")).to_be_focused()
    page.keyboard.type(group)
    expect(page.get_by_test_id("group-row")).to_have_count(1)
    page.keyboard.press("Tab")
    expect(group_row(page, group)).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "the focused row shows no focus ring"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(route(group)) + "$"))
    expect(page.get_by_test_id("item-row")).to_have_count(3)

    page.get_by_test_id("sort-key").click()  # a known order: k-a, k-b, k-c
    page.keyboard.press("l")
    expect(page.get_by_test_id("item-row").nth(0)).to_be_focused()
    page.keyboard.press("j")
    page.keyboard.press("ArrowDown")
    expect(row(page, "k-c")).to_be_focused()
    page.keyboard.press("k")
    expect(row(page, "k-b")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(re.escape(route(group, "k-b")) + "$"))
    expect(page.get_by_test_id("item-key")).to_have_text("k-b")

    page.keyboard.press("e")
    editor = page.get_by_test_id("editor")
    expect(editor).to_be_focused()
    page.keyboard.press("Control+a")
    page.keyboard.type('{"k": "typed"}')
    page.keyboard.press("Control+s")
    expect(editor).to_have_count(0)
    expect(page.get_by_test_id("item-version")).to_have_text("2")

    page.keyboard.press("e")
    expect(editor).to_be_focused()
    page.keyboard.press("Escape")  # nothing changed: leaves at once
    expect(editor).to_have_count(0)

    page.keyboard.press("?")
    expect(page.get_by_test_id("help-dialog")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("help-dialog")).to_have_count(0)

    page.keyboard.press("h")
    expect(group_row(page, group)).to_be_focused()
    assert b.stored(group, "k-b") == ({"k": "typed"}, 2)


def test_a_bookmarked_route_opens_directly(page: Any, redis_backend: Backend) -> None:
    """A key with `/`, `%`, spaces and non-Latin letters, in a group named likewise: the
    address opens it, and back/forward walk the items opened since."""
    b = redis_backend
    group = unique("route/ä %")
    key = "a/b c%2F?#ключ"
    b.elsewhere('s.set(group, key, {"found": True}); s.set(group, "next", 2)', group=group, key=key)
    visit(page, b, route(group, key))
    expect(page.get_by_test_id("item-key")).to_have_text(key)
    expect(page.get_by_test_id("item-tree")).to_contain_text("true")
    expect(group_row(page, group)).to_have_attribute("aria-selected", "true")
    expect(row(page, key)).to_have_attribute("aria-selected", "true")

    row(page, "next").click()
    expect(page.get_by_test_id("item-key")).to_have_text("next")
    page.go_back()
    expect(page.get_by_test_id("item-key")).to_have_text(key)
    assert path_of(page) == route(group, key)
    page.go_forward()
    expect(page.get_by_test_id("item-key")).to_have_text("next")
    page.reload()
    expect(page.get_by_test_id("item-key")).to_have_text("next")

    # An address that names nothing (a broken escape) says so and lands on the start page.
    visit(page, b, "/groups/%E0%A4%A")
    expect(page.get_by_test_id("toast")).to_contain_text("not a page of the inspector")
    assert path_of(page) == "/"


def test_the_theme_toggle_is_remembered(page: Any, redis_backend: Backend) -> None:
    visit(page, redis_backend)
    root = page.locator("html")
    toggle = page.get_by_test_id("theme-toggle")
    expect(toggle).to_have_attribute("aria-label", "Switch to the dark theme")
    toggle.click()
    expect(root).to_have_attribute("data-theme", "dark")
    page.reload()
    expect(root).to_have_attribute("data-theme", "dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(14, 17, 21)"
    toggle.click()  # back to what the system asks for: the override is forgotten
    expect(root).to_have_attribute("data-theme", "light")
    assert page.evaluate("localStorage.getItem('motia-state.theme')") is None
    expect(toggle).to_have_attribute("aria-label", "Switch to the dark theme")

    # With nothing remembered the page follows the system as it changes ...
    page.emulate_media(color_scheme="dark")
    expect(root).to_have_attribute("data-theme", "dark")
    expect(toggle).to_have_attribute("aria-label", "Switch to the light theme")
    toggle.click()  # ... until a choice is made: that one stays
    expect(root).to_have_attribute("data-theme", "light")
    assert page.evaluate("localStorage.getItem('motia-state.theme')") == "light"
    page.emulate_media(color_scheme="light")
    page.emulate_media(color_scheme="dark")
    expect(root).to_have_attribute("data-theme", "light")


def test_the_theme_is_set_before_the_page_script(page: Any, redis_backend: Backend) -> None:
    """No flash of the wrong theme: the blocking theme.js alone paints a dark system's page
    dark, before (here: without) the module that builds the page."""
    page.emulate_media(color_scheme="dark")
    page.route(re.compile(r"/static/app\.js$"), lambda r: r.abort())
    page.goto(redis_backend.base + "/")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(14, 17, 21)"


# ---- hostile data ---------------------------------------------------------------------------

HOSTILE_KEYS = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 2">',
    "\u202eevil\u200b",
    "a/b%2F c",
    "..",
    "   ",
    "k" * 7_000 + "<b>end</b>",
]


def test_hostile_names_and_values_are_only_text(
    page: Any, watched: Any, redis_backend: Backend
) -> None:
    b = redis_backend
    group = "<svg onload=window.__pwned=5>" + unique("")
    value = {
        "<script>": "</textarea><img src=x onerror=window.__pwned=3>",
        "html": "<b>bold</b>",
        "rtl\u202e": "\u0000\u001b[31m",
    }
    b.elsewhere(
        "for k in keys: s.set(group, k, value)\ns.set(group, keys[0], value)",
        group=group,
        keys=HOSTILE_KEYS,
        value=value,
    )
    visit(page, b, route(group))
    expect(page.get_by_test_id("item-row")).to_have_count(len(HOSTILE_KEYS))
    title = page.get_by_test_id("items-title")
    expect(title).to_contain_text("<svg onload=window.__pwned=5>")
    for key in ("<script>window.__pwned = 1</script>", '<img src=x onerror="window.__pwned = 2">'):
        expect(row(page, key).get_by_test_id("row-key")).to_have_text(key)
    # invisible characters and edge spaces are shown, not swallowed
    expect(row(page, "\u202eevil\u200b").get_by_test_id("row-key")).to_have_text(
        "\\u202eevil\\u200b"
    )
    expect(row(page, "   ").get_by_test_id("row-key")).to_have_text("␣␣␣")

    for key in HOSTILE_KEYS:
        row(page, key).click()
        expect(page.get_by_test_id("item-key")).to_be_visible()
        expect(page.get_by_test_id("item-tree")).to_contain_text("</textarea>")
        assert path_of(page) == route(group, key).replace("/items/..", "/items/~..")
    # the last opened: its history diff, its raw text, its editor
    row(page, HOSTILE_KEYS[0]).click()
    expect(page.get_by_test_id("item-version")).to_have_text("2")
    page.get_by_test_id("history-entry").nth(0).locator("button").click()
    expect(page.get_by_test_id("history-diff")).to_contain_text("<b>bold</b>")
    page.get_by_test_id("tab-raw").click()
    expect(page.get_by_test_id("item-raw")).to_contain_text("</textarea><img src=x")
    page.get_by_test_id("edit-button").click()
    expect(page.get_by_test_id("editor")).to_have_value(re.compile("</textarea><img src=x"))
    page.get_by_test_id("cancel-edit").click()

    # the ".." key: its own spelling in the address, and a reload lands on it
    row(page, "..").click()
    assert path_of(page).endswith("/items/~..")
    page.reload()
    expect(page.get_by_test_id("item-key")).to_have_text("..")

    assert page.evaluate("window.__pwned") is None
    assert page.locator('img[src="x"], svg[onload], [onerror]').count() == 0
    scripts = page.evaluate("[...document.scripts].map((s) => s.getAttribute('src'))")
    assert scripts == ["/static/theme.js", "/static/app.js"]


# ---- when things fail -----------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[ServerProcess]:
    """A Redis server of the test's own on loopback, which it may lock out or stop."""
    server = standalone(TEST_BINARY, REDIS_CONF, tmp_path / "redis", *NO_PERSISTENCE)
    try:
        yield server
    finally:
        if server.proc is not None and server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()


def own_backend(server: ServerProcess, **options: Any) -> Backend:
    prefix = f"uib{uuid.uuid4().hex[:8]}:"
    return Backend("redis", server.url, prefix, Inspector(server.url, prefix=prefix, **options))


def test_the_feed_failing_shows_in_the_header_and_the_page_rereads_when_it_is_back(
    page: Any, own_redis: ServerProcess
) -> None:
    """The inspector's change-feed reader is refused (its user loses XREAD): the header says
    so with the server's reason, on this page and on one opened meanwhile; what another tool
    wrote without a feed record meanwhile shows once the feed is back (the page read again)."""
    b = own_backend(own_redis)
    with b.inspector, redis.Redis.from_url(own_redis.url) as r:
        group = unique("feed")
        b.elsewhere('s.set(group, "kept", 1); s.set(group, "doomed", 2)', group=group)
        visit(page, b, route(group, "doomed"))
        expect(page.get_by_test_id("item-version")).to_have_text("1")
        status = page.get_by_test_id("live-status")
        expect(status).to_have_attribute("data-state", "live")

        r.execute_command("ACL", "SETUSER", "default", "-xread")
        expect(status).to_have_attribute("data-state", "feed-failed")
        reason = b.inspector.client.get("/api/info").json()["feed_error"]
        assert reason
        expect(status).to_contain_text(reason)
        page.reload()  # a page opened while the feed fails says so too (from /api/info)
        expect(page.locator("body")).to_have_attribute("data-ready", "true")
        expect(status).to_have_attribute("data-state", "feed-failed")
        expect(status).to_contain_text(reason)
        expect(row(page, "doomed")).to_have_count(1)

        data = f"{b.prefix}{group}".encode()
        r.hset(data, "quiet", b'"written by another tool"')  # no feed record: no change event
        r.hdel(data, "doomed")
        r.execute_command("ACL", "SETUSER", "default", "+xread")
        expect(status).to_have_attribute("data-state", "live")
        expect(row(page, "quiet").get_by_test_id("row-preview")).to_have_text(
            '"written by another tool"'
        )
        expect(row(page, "doomed")).to_have_count(0)
        expect(page.get_by_test_id("item-gone")).to_be_visible()
        expect(row(page, "kept")).to_have_count(1)


def test_a_page_that_fell_behind_reads_again(page: Any, redis_backend: Backend) -> None:
    """The server's ``reload`` (a page too far behind the feed; the server drops its stream):
    the page reads what it shows again, in place, and says so. Making a browser's stream fall
    2,000 changes behind takes a reader that stops reading (test_ui_hostile does that), so the
    first stream here is the server's own framing of that moment (hello, reload, end); the
    page's next one is the real server's."""
    b = redis_backend
    group = unique("behind")
    b.elsewhere('s.set(group, "seen", 1)', group=group)
    held: list[Any] = []  # the page's first stream, answered when the test says
    streams: list[str] = []

    def live(route_: Any) -> None:
        streams.append(route_.request.url)
        if held:
            route_.continue_()
        else:
            held.append(route_)

    page.route(re.compile(r"/api/live$"), live)
    visit(page, b, route(group))
    expect(row(page, "seen")).to_have_count(1)
    page.evaluate("window.__sameDocument = true")
    # the change the page missed: written while its stream fell behind, announced never
    with redis.Redis.from_url(b.url) as r:
        r.hset(f"{b.prefix}{group}".encode(), "missed", b"2")
    until(page, lambda: held, "the page's stream")
    body = sse("hello", {"live": "feed"}) + sse("reload", {"reason": "fell behind"})
    held[0].fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body)
    expect(page.get_by_test_id("toast")).to_contain_text("fell behind")
    expect(row(page, "missed")).to_have_count(1)
    expect(row(page, "seen")).to_have_count(1)
    expect(page.get_by_test_id("live-status")).to_have_attribute("data-state", "live")
    assert page.evaluate("window.__sameDocument") is True
    assert len(streams) >= 2


def test_the_inspector_stopping_and_coming_back(
    page: Any, redis_backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inspector stops under an open page: the header says disconnected; it starts again
    on the same address: the browser's own retry reconnects, and what changed meanwhile (no
    change event can tell: the new server's feed starts from now) shows, read again."""
    shared = redis_backend
    b = Backend("redis", shared.url, shared.prefix, Inspector(shared.url, prefix=shared.prefix))
    group = unique("restart")
    b.elsewhere('s.set(group, "before", 1)', group=group)
    with b.inspector:
        visit(page, b, route(group, "before"))
        status = page.get_by_test_id("live-status")
        expect(status).to_have_attribute("data-state", "live")
    expect(status).to_have_attribute("data-state", "down")
    expect(status).to_contain_text("Disconnected")
    b.elsewhere('s.set(group, "meanwhile", 2); s.set(group, "before", 3)', group=group)
    monkeypatch.setattr(ui_server, "free_port", lambda: b.inspector.port)
    with Inspector(shared.url, prefix=shared.prefix) as again:
        assert again.base == b.base
        expect(status).to_have_attribute("data-state", "live")
        expect(row(page, "meanwhile")).to_have_count(1)
        expect(page.get_by_test_id("item-version")).to_have_text("2")
        expect(row(page, "before").get_by_test_id("row-version")).to_have_text("v2")


def test_names_that_are_not_utf8_reach_the_server_as_their_bytes(
    fresh_redis: Backend, page: Any
) -> None:
    """Another tool named a key and a group with bytes that are not UTF-8 (the API gives them
    as lone surrogates, \\udc80-\\udcff): shown with the byte escaped, and sent back as that
    byte (%FF), in the address and in every request, so the server answers about that very
    name (not U+FFFD, which would name another): the engine's own refusal, in place."""
    b = fresh_redis  # its groups alone: the foreign one is among the bars
    group = unique("bytes")
    prefix = (b.prefix or "").encode()
    with redis.Redis.from_url(b.url) as r:
        r.hset(prefix + group.encode(), mapping={b"k\xff": b"1", b"fine": b"2"})
        r.hset(prefix + b"gr\xff-" + group.encode(), b"k", b"3")
    visit(page, b, route(group))
    rows = page.get_by_test_id("item-row")
    expect(rows).to_have_count(2)
    odd = rows.filter(has_text="k\\xff")
    expect(odd.get_by_test_id("row-key")).to_have_text("k\\xff")
    expect(odd.get_by_test_id("row-version")).to_have_text("—")
    expect(odd.get_by_test_id("row-preview")).to_contain_text("(cannot read")
    expect(page.get_by_test_id("items-list")).not_to_contain_text("vnull")

    odd.click()
    assert path_of(page) == route(group) + "/items/k%FF"
    expect(page.get_by_test_id("item-key")).to_have_text("k\\xff")
    error = page.get_by_test_id("item-error")
    expect(error).to_contain_text("not valid unicode")  # k\udcff itself, refused
    expect(page.get_by_test_id("history-error")).to_contain_text("not valid unicode")
    page.reload()  # the address names the same bytes
    expect(error).to_contain_text("not valid unicode")
    expect(page.get_by_test_id("item-key")).to_have_text("k\\xff")

    foreign = page.get_by_test_id("group-row").filter(has_text=f"gr\\xff-{group}")
    foreign.click()
    assert path_of(page) == f"/groups/gr%FF-{segment(group)}"
    expect(page.get_by_test_id("items-error")).to_contain_text("not valid unicode")
    expect(page.get_by_test_id("items-title")).to_have_text(f"gr\\xff-{group}")
    expect(page.get_by_test_id("chart-groups")).to_contain_text("gr\\xff-bytes")


def test_names_decode_as_python_decodes_their_bytes(page: Any, redis_backend: Backend) -> None:
    """names.js against Python: bytes percent-encoded decode to what
    ``bytes.decode("utf-8", "surrogateescape")`` gives (the server's reading), and encode back
    to those bytes; the edges of UTF-8 (overlongs, surrogates, past U+10FFFF, cut sequences)
    weighted in. A stray % and a surrogate that stands for no byte are refused."""
    visit(page, redis_backend)
    rng = random.Random(20)
    edges = [0x00, 0x25, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2]
    edges += [0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF]
    samples = [
        bytes(
            rng.choice(edges) if rng.random() < 0.7 else rng.randrange(256)
            for _ in range(rng.randrange(1, 9))
        )
        for _ in range(3000)
    ]
    samples += [text.encode() for text in ("ключ", "😀x", "a/b %2F?#", "\u2028", "~.")]
    found = page.evaluate(
        """async (hexes) => {
            const names = await import("/static/names.js");
            return hexes.map((hex) => {
                const name = names.decodeName(hex.replace(/../g, "%$&"));
                const units = Array.from({ length: name.length }, (_, i) => name.charCodeAt(i));
                return [units, names.encodeName(name)];
            });
        }""",
        [data.hex() for data in samples],
    )
    for data, (units, encoded) in zip(samples, found, strict=True):
        name = data.decode("utf-8", "surrogateescape")
        utf16 = name.encode("utf-16-le", "surrogatepass")
        expected = [int.from_bytes(utf16[i : i + 2], "little") for i in range(0, len(utf16), 2)]
        assert units == expected, data
        assert urllib.parse.unquote_to_bytes(encoded) == data, (data, encoded)
    refused = page.evaluate(
        """async () => {
            const names = await import("/static/names.js");
            const refuses = (f) => { try { f(); return false; } catch (e) { return true; } };
            return [
                refuses(() => names.decodeName("%A")),
                refuses(() => names.decodeName("100%")),
                refuses(() => names.encodeName("k\\ud800")),
                refuses(() => names.encodeName("k\\udc7f")),
            ];
        }"""
    )
    assert refused == [True, True, True, True]


def test_an_item_without_a_version_is_read_only(page: Any, redis_backend: Backend) -> None:
    """An item the server gives as a placeholder with version null (the contract allows it
    for data the engine cannot name): read only, its text shown, expiry allowed, no delete by
    version (it has none) and no "null" where the version goes. No server path gives such an
    item yet, so the item's answer is the contract's shape, the rest the real server's."""
    b = redis_backend
    group = unique("noversion")
    b.elsewhere('s.set(group, "ghost", 1)', group=group)
    placeholder = {
        "group": group,
        "key": "ghost",
        "value": None,
        "raw": "(cannot read: written by another tool)\nb'\\xff'",
        "editable": False,
        "version": None,
        "expires_at": None,
        "ttl_ms": None,
        "bytes": 44,
    }
    page.route(
        re.compile(r"/api/item\?"),
        lambda route_: route_.fulfill(
            status=200, content_type="application/json", body=json.dumps(placeholder)
        ),
    )
    visit(page, b, route(group, "ghost"))
    expect(page.get_by_test_id("item-raw")).to_contain_text("(cannot read: written by another")
    expect(page.get_by_test_id("item-version")).to_have_text("—")
    expect(page.get_by_test_id("item-pane")).not_to_contain_text("null")
    for name in ("edit-button", "increment-button", "update-button"):
        expect(page.get_by_test_id(name)).to_have_count(0)
    expect(page.get_by_test_id("ttl-button")).to_be_enabled()
    expect(page.get_by_test_id("delete-button")).to_have_count(0)
    expect(page.get_by_test_id("read-only-note")).to_contain_text("cannot be deleted")
    page.keyboard.press("e")
    expect(page.get_by_test_id("editor")).to_have_count(0)


def test_a_stopped_redis_is_a_message_in_place_then_a_retry(
    page: Any, own_redis: ServerProcess
) -> None:
    """The Redis server stops answering (SIGSTOP): opening an item waits the inspector's bound
    (20 s) and shows its 503 message in place, not a spinner for ever; once the server runs
    again, "Try again" reads the item."""
    b = own_backend(own_redis)
    with b.inspector:
        group = unique("stopped")
        b.elsewhere('s.set(group, "a", {"n": 1})', group=group)
        visit(page, b, route(group))
        expect(row(page, "a")).to_have_count(1)
        assert own_redis.proc is not None
        os.kill(own_redis.proc.pid, signal.SIGSTOP)
        try:
            row(page, "a").click()
            expect(page.get_by_test_id("item-error")).to_contain_text(
                "did not answer within 20 s", timeout=60_000
            )
        finally:
            os.kill(own_redis.proc.pid, signal.SIGCONT)
        page.get_by_test_id("item-retry").click()
        expect(page.get_by_test_id("item-version")).to_have_text("1")
        expect(page.get_by_test_id("item-tree")).to_contain_text("1")
