"""The engine's contract suite, as a pytest plugin: prove a backend the way the built-in ones
are proven.

    pytest -p motia_state.testing --motia-state-url 'sqlite://{tmp}/s.db'

runs every test of ``motia_state/testing/contract/`` on the store at that URL, through
`State` and through `AsyncState`; a test needing a capability the backend does not declare
(`motia_state.capabilities`) is skipped, saying which. ``{tmp}`` and ``{id}`` in the URL make a
store per test (see `stores`). The engine's own test run loads this plugin too and runs the
same tests on memory, file, embedded, Redis and Cluster by overriding the ``target`` fixture.

Only this package imports pytest: ``import motia_state`` does not.
"""

from __future__ import annotations

import asyncio
import fnmatch
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .. import AsyncState, State
from ..capabilities import COVERS, Capability, check
from ..connect import redact
from .blocking import Blocking, BlockingSubscription, BlockingWatch, settle
from .stores import Target, for_test, isolation, purge

__all__ = [
    "CONTRACT",
    "Blocking",
    "BlockingSubscription",
    "BlockingWatch",
    "Opener",
    "Target",
    "contract_modules",
    "requires",
    "settle",
]

CONTRACT = Path(__file__).with_name("contract")
MARKER = "motia_state_requires"

Opener = Callable[..., Any]


def contract_modules() -> list[Path]:
    """The exported test modules, in the order they run."""
    return sorted(p for p in CONTRACT.glob("*.py") if p.name != "__init__.py")


def requires(*capabilities: Capability) -> pytest.MarkDecorator:
    """Mark a contract test as needing these capabilities: on a state that lacks one it is
    skipped, and the skip names what is missing. The names are checked here, at import, so a
    misspelt one fails loudly instead of skipping forever."""
    names = check(capabilities)
    if not names:
        raise TypeError("requires() needs at least one capability")
    return pytest.mark.motia_state_requires(*sorted(names))


# -- the plugin ------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("motia-state", "motia-state contract suite")
    group.addoption(
        "--motia-state-url",
        dest="motia_state_url",
        metavar="URL",
        default=None,
        help="run the contract suite on the store at URL ({tmp}: a fresh folder per test, "
        "{id}: a fresh token per test)",
    )
    group.addoption(
        "--motia-state-option",
        dest="motia_state_options",
        metavar="NAME=VALUE",
        action="append",
        default=[],
        help="an option for State.from_url (repeatable); VALUE is read as JSON if it parses, "
        "else taken as text",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(*capabilities): skip unless the state has these capabilities "
        "(motia_state.testing.requires)",
    )
    if config.getoption("motia_state_url", None) is None:
        return
    options(config)  # a malformed --motia-state-option fails now, not in every test
    # The folder, not its files: a test's id is then named from it (items.py::test_get), where
    # a file of its own outside the rootdir would be named "" (::test_get).
    if config.args_source == pytest.Config.ArgsSource.ARGS:  # the caller's paths, and ours
        if str(CONTRACT) not in config.args:
            config.args.append(str(CONTRACT))
    else:  # not testpaths, nor everything under the current directory
        config.args[:] = [str(CONTRACT)]


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    """The contract's modules are collected whatever ``python_files`` says (their names are
    what they cover, not test_*), once: not where ``python_files`` takes them anyway."""
    if file_path.parent != CONTRACT or file_path not in contract_modules():
        return None
    if parent.config.getoption("motia_state_url", None) is None:
        return None
    patterns = parent.config.getini("python_files")
    if any(fnmatch.fnmatch(file_path.name, pattern) for pattern in patterns):
        return None
    return pytest.Module.from_parent(parent, path=file_path)


def pytest_report_header(config: pytest.Config) -> list[str] | None:
    url = config.getoption("motia_state_url", None)
    if url is None:
        return None
    return [f"motia-state contract suite on {redact(url)}: {isolation(url, options(config))}"]


def options(config: pytest.Config) -> dict[str, Any]:
    """The ``--motia-state-option`` values, by name."""
    found: dict[str, Any] = {}
    for text in config.getoption("motia_state_options", None) or []:
        name, sep, value = text.partition("=")
        if not sep or not name.isidentifier():
            # the text is not echoed: a VALUE may be a password
            raise pytest.UsageError("--motia-state-option takes NAME=VALUE, NAME an identifier")
        try:
            found[name] = json.loads(value)
        except ValueError:
            found[name] = value
    return found


# -- fixtures --------------------------------------------------------------------------


@pytest.fixture
def target(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Target]:
    """The store of ``--motia-state-url``, kept to this test (`stores`). A State held open
    for the test keeps an embedded server up and removes the test's keys after it."""
    url = request.config.getoption("motia_state_url", None)
    if url is None:
        pytest.fail("the contract suite needs --motia-state-url URL", pytrace=False)
    made, prefix, shared = for_test(url, options(request.config), tmp_path)
    keeper = State.from_url(made.url, **{k: v for k, v in made.options.items() if k != "cache"})
    try:
        groups = keeper.list_groups()
        if shared:
            for group in groups:
                keeper.clear(group)
        yield made
        if prefix is not None:
            purge(keeper._backend, prefix)
    finally:
        keeper.close()


@pytest.fixture(params=["sync", "async"])
def open_state(request: pytest.FixtureRequest, target: Target) -> Iterator[Opener]:
    """``open_state(**options)``: a State, or an AsyncState behind `Blocking`, on ``target``;
    every one closed after the test."""
    opened: list[Any] = []
    loop = asyncio.new_event_loop() if request.param == "async" else None

    def opener(**more: Any) -> Any:
        merged = {**target.options, **more}
        state: Any
        if loop is None:
            state = State.from_url(target.url, **merged)
        else:
            state = Blocking(AsyncState.from_url(target.url, **merged), loop)
        opened.append(state)
        return state

    try:
        yield opener
    finally:
        for state in opened:
            state.close()
        if loop is not None:
            loop.close()


@pytest.fixture
def state(open_state: Opener) -> Any:
    return open_state()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> None:
    """Skips a test marked with `requires` where the state lacks a capability it names. Asked
    once the test's fixtures are up (its own ``state`` answers), not by a fixture of its own,
    which would set the state up before the run's other autouse fixtures and tear it down after
    them."""
    needed = {name for mark in item.iter_markers(MARKER) for name in mark.args}
    if not needed or not isinstance(item, pytest.Function):
        return
    fixtures: dict[str, Any] = item.funcargs
    if "target" not in fixtures:
        pytest.fail("a test marked with requires() takes state, open_state or target")
    where: Target = fixtures["target"]
    have: frozenset[str]
    if "state" in fixtures:
        have = fixtures["state"].capabilities
    elif "open_state" in fixtures:
        have = fixtures["open_state"]().capabilities
    else:
        with State.from_url(where.url, **where.options) as probe:
            have = probe.capabilities
    missing = sorted(needed - have)
    if missing:
        lacks = "; ".join(f"{name!r} ({COVERS.get(name, '?')})" for name in missing)
        pytest.skip(f"{where.scheme}:// lacks {lacks}")
