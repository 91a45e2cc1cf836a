"""The ``motia-state`` command."""

from __future__ import annotations

import sys

import click

from . import demo as demo_module
from .errors import StateError
from .state import State


@click.group()
def main() -> None:
    """Inspect and exercise motia-state."""


@main.command()
@click.option(
    "--url",
    envvar="MOTIA_STATE_URL",
    default=None,
    help="State URL (default: MOTIA_STATE_URL, else the embedded server, else the file).",
)
def demo(url: str | None) -> None:
    """Run the order workflow from Motia's docs and print what it did."""
    try:
        with State.from_url(url) as state:
            demo_module.run(state, click.echo)
    except StateError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(4)
