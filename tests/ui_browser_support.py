"""What the browser tests share: Debian's chromium through Playwright, a backend with its
running inspector, writes made by another process, and a page per test whose last state is
kept as a screenshot (tests/artifacts/ui/<test>.png).

Never a downloaded browser: /usr/bin/chromium or nothing, and Playwright or nothing (the
module importing this one is skipped, unless CI says MOTIA_STATE_BROWSER_TESTS=required, then
failed). Every address the browser is given is the inspector's on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from motia_state import State

from .ui_server import Inspector

REQUIRED = os.environ.get("MOTIA_STATE_BROWSER_TESTS") == "required"

try:
    from playwright import sync_api
except ImportError:  # the test extra; where CI requires the browser tests, an error
    if REQUIRED:
        raise
    pytest.skip("playwright is not installed (pip install -e '.[test]')", allow_module_level=True)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "tests" / "artifacts" / "ui"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PYTHON = sys.executable
LIVE = {"embedded", "redis", "cluster"}


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Debian's chromium, headless, through Playwright; without it the test is skipped (or
    failed, where CI requires the browser tests)."""
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is absent (apt-get install chromium): the browser tests need it"
        if REQUIRED:
            pytest.fail(f"MOTIA_STATE_BROWSER_TESTS=required but {message}", pytrace=False)
        pytest.skip(message)
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def keep_screenshot(page: Any, name: str, *, full_page: bool = False) -> bytes:
    """The page as it ended, kept as tests/artifacts/ui/<name>.png (no stale one left if the
    shot fails). The bytes are written here: Playwright's own path= writes through a thread
    pool of its event loop whose threads outlive the test (and conftest counts them)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    target = ARTIFACTS / f"{name}.png"
    target.unlink(missing_ok=True)
    image: bytes = page.screenshot(full_page=full_page)
    target.write_bytes(image)
    return image


def unique(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:8]}"


class Backend:
    """A backend, the inspector serving it, and ways to reach the same data from outside."""

    def __init__(
        self,
        name: str,
        url: str,
        prefix: str | None,
        inspector: Inspector,
        *,
        data_url: str | None = None,
    ) -> None:
        self.name = name
        self.url = url  # what the inspector was given
        self.data_url = data_url or url  # the same data for this process and the writers
        self.prefix = prefix
        self.inspector = inspector

    @property
    def live(self) -> bool:
        return self.name in LIVE

    @property
    def base(self) -> str:
        return self.inspector.base

    def state(self) -> State:
        """A State in this process on the inspector's data (to check what the page wrote)."""
        options: dict[str, Any] = {"record_values": True}
        if self.prefix is not None:
            options["prefix"] = self.prefix
        return State.from_url(self.data_url, **options)

    def stored(self, group: str, key: str) -> tuple[Any, int] | None:
        """What the data holds for `key` now, read by this process: (value, version), or
        None when it is absent."""
        with self.state() as s:
            item = s.get_item(group, key)
        return None if item is None else (item.value, item.version)

    def elsewhere(self, code: str, **values: Any) -> None:
        """Runs `code` in another Python process, with `s` a State on the same data and each
        of `values` a variable (passed as JSON, so any text arrives intact)."""
        options: dict[str, Any] = {"record_values": True}
        if self.prefix is not None:
            options["prefix"] = self.prefix
        script = (
            "import json, sys\n"
            "from motia_state import State\n"
            "globals().update(json.loads(sys.argv[1]))\n"
            f"with State.from_url({self.data_url!r}, **{options!r}) as s:\n"
            + textwrap.indent(textwrap.dedent(code).strip(), "    ")
            + "\n"
        )
        done = subprocess.run(
            [PYTHON, "-c", script, json.dumps(values)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, f"the writer failed: {done.stderr}"


def css_string(text: str) -> str:
    """`text` as a CSS string literal, for attribute selectors on hostile names."""
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\{ord(ch):x} ")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
