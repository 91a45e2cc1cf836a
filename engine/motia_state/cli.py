"""The ``motia-state`` command."""

from __future__ import annotations

import signal
import sys
import time
from types import FrameType
from typing import NoReturn

import click

from . import demo as demo_module
from .bridge import Bridge
from .errors import BackendUnavailable, StateError
from .layout import DEFAULT_PREFIX
from .state import State

URL_HELP = "State URL (default: MOTIA_STATE_URL, else the embedded server, else the file)."


@click.group()
def main() -> None:
    """Inspect and exercise motia-state."""


@main.command()
@click.option(
    "--url",
    envvar="MOTIA_STATE_URL",
    default=None,
    help=URL_HELP,
)
def demo(url: str | None) -> None:
    """Run the order workflow from Motia's docs and print what it did."""
    try:
        with State.from_url(url) as state:
            demo_module.run(state, click.echo)
    except StateError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(4)


@main.command()
@click.option("--url", envvar="MOTIA_STATE_URL", default=None, help=URL_HELP)
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True, help="Key prefix.")
@click.option("--quiet", is_flag=True, help="Do not print each external change.")
def track(url: str | None, prefix: str, quiet: bool) -> None:
    """Record changes made outside the engine (redis-cli, EXPIRE, eviction) in the change feed.

    Runs the keyspace bridge until interrupted (Ctrl-C or SIGTERM). Turns on the
    keyspace notifications it needs where the server allows it.
    """

    def echo(group: str | None, event: str) -> None:
        if not quiet:
            stamp = time.strftime("%H:%M:%S")
            click.echo(f"{stamp} external {event} " + (repr(group) if group else "(gap)"))

    try:
        bridge = Bridge.from_url(url, prefix=prefix, on_record=echo)
    except StateError as exc:
        _fail(exc)

    def stop(signum: int, frame: FrameType | None) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"tracking external changes on {bridge.describe} (Ctrl-C stops)", err=True)
    try:
        bridge.run()
    except StateError as exc:
        _fail(exc)
    click.echo(f"stopped; {bridge.recorded} external record(s) written", err=True)


def _fail(exc: StateError) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(4 if isinstance(exc, BackendUnavailable) else 2)
