"""Where each contract test's store lives: the URL under test, made private to one test.

A test must not see what another left behind: versions continue above a group's floor after a
clear, and a change feed keeps its history, so a test that counts either needs a store of its
own. Four ways, in order of preference:

* ``{tmp}`` in the URL (or an option's value) becomes a fresh temporary folder per test,
  ``{id}`` a fresh token: ``sqlite://{tmp}/s.db``, ``memory://{id}``, ``file://{tmp}/s.json``;
* a Redis URL gets a fresh key ``prefix`` per test, its keys removed after it;
* ``memory://`` without a name is private to each State already;
* anything else is one shared store, every group of which is cleared before each test.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from ..connect import ANY_REDIS_SCHEME, redact
from ..errors import InvalidInput
from ..layout import KeyLayout

REDIS = (*ANY_REDIS_SCHEME, "embedded")
PLACEHOLDERS = ("{tmp}", "{id}")
# The key prefix each test's own is made from, when the options name none.
BASE_PREFIX = "motia:contract:"


class Target:
    """The store one test runs on: a URL and the options that keep the test to itself.

    Any State opened on them sees the same items as the test's ``state``, except on a store
    `private` to one State (``memory://`` without a name)."""

    def __init__(self, url: str, options: dict[str, Any]) -> None:
        self.url = url
        self.options = options

    def __repr__(self) -> str:
        return f"{type(self).__name__}({redact(self.url)!r})"

    @property
    def scheme(self) -> str:
        return self.url.split("://", 1)[0].lower()

    @property
    def private(self) -> bool:
        """Whether each State opened here has a store of its own (two never share items)."""
        return self.scheme == "memory" and self.url.split("://", 1)[1] in ("", "/")


def fresh_token() -> str:
    return uuid.uuid4().hex[:12]


def placed(value: Any, tmp: Path, token: str) -> Any:
    """``value`` with ``{tmp}`` and ``{id}`` filled in, if it is a string."""
    if not isinstance(value, str):
        return value
    return value.replace("{tmp}", str(tmp)).replace("{id}", token)


def has_placeholder(url: str, options: dict[str, Any]) -> bool:
    texts = [url, *(v for v in options.values() if isinstance(v, str))]
    return any(p in text for p in PLACEHOLDERS for text in texts)


def isolation(url: str, options: dict[str, Any]) -> str:
    """How tests on ``url`` are kept apart, in words (the report header says it)."""
    if has_placeholder(url, options):
        return "a fresh store per test ({tmp} / {id} filled in)"
    target = Target(url, options)
    if target.scheme in REDIS:
        return "a fresh key prefix per test, its keys removed after it"
    if target.private:
        return "a private store per State (tests of two States sharing a store skip)"
    return (
        "one shared store: every group is cleared before each test (point it at a scratch "
        "store; versions and the change feed carry over between tests, so prefer {tmp} or {id})"
    )


def for_test(url: str, options: dict[str, Any], tmp: Path) -> tuple[Target, str | None, bool]:
    """The test's `Target`, the Redis key prefix made for it (None off Redis) and whether
    its groups must be cleared first (a shared store)."""
    token = fresh_token()
    target = Target(placed(url, tmp, token), {k: placed(v, tmp, token) for k, v in options.items()})
    if target.scheme not in REDIS:
        return target, None, not (has_placeholder(url, options) or target.private)
    base = target.options.get("prefix", BASE_PREFIX)
    if not isinstance(base, str):
        raise InvalidInput(f"prefix must be a str, not {type(base).__name__}")
    prefix = target.options["prefix"] = f"{base}{token}:"
    return target, prefix, False


def purge(backend: Any, prefix: str) -> None:
    """Remove every key under ``prefix`` from the servers ``backend`` reaches (each Cluster
    master), so a test run leaves a shared server as it found it."""
    layout = KeyLayout(prefix)
    for shard in backend.shards():
        client = shard.connect()
        try:
            for pattern in (layout.scan_pattern(), layout.meta_root + b"*"):
                for key in list(client.scan_iter(match=pattern, count=1000)):
                    client.unlink(key)
        finally:
            if shard.owned:
                client.close()
