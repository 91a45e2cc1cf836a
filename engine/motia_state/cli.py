"""The ``motia-state`` command: inspect, change, watch and migrate state from a shell.

Motia's docs debug state with ``redis-cli KEYS`` and ``GET``, which neither reads a
hash layout nor shows versions or TTLs, and blocks a big server. These commands go
through the engine, so they see what a step sees, on every URL scheme.

Every command takes ``--url`` (else the ``--url`` before the command, else
``MOTIA_STATE_URL``, else the config file, else the default backend),
``--prefix``, ``--codec`` and ``--json``. ``motia-state --config PATH`` reads the
``state:`` section of a YAML file (Motia's config.yml) for every command; a ``--url``
replaces its address and a command's options win over its keys. Human output uses Rich
(colours only on a terminal); ``--json`` prints one JSON document, or one JSON object per
line for the commands that stream (``items``, ``watch``; ``items --limit`` prints one page, a
document with the next page's cursor). Exit codes: 0 ok, 1 not found
(or the operation failed), 2 usage or invalid input, 3 version conflict, 4 backend
unavailable, 130 interrupted (``migrate``), 141 stdout closed early (``| head``).
Errors are one line on stderr.

Everything printed is user data that may come from another tool: it is never read as
Rich markup or emoji, and text that is not valid Unicode (a name that is not UTF-8, a
lone surrogate) is escaped, never a crash. ``--json`` output is strict JSON.
"""

from __future__ import annotations

import functools
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from types import FrameType
from typing import Any, NoReturn

import click
import redis
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import config
from . import demo as demo_module
from . import migrate as migration
from . import query as queries
from .bridge import Bridge
from .changes import Change
from .errors import (
    BackendUnavailable,
    EncodeError,
    InvalidInput,
    StateError,
    VersionConflict,
    brief,
)
from .jsontext import Unprintable, dumps, parse_json
from .layout import DEFAULT_PREFIX
from .ops import Item
from .query import Page, Predicate
from .state import State

OK, NOT_FOUND, USAGE, CONFLICT, UNAVAILABLE, INTERRUPTED = 0, 1, 2, 3, 4, 130
PIPE_CLOSED = 128 + signal.SIGPIPE
URL_HELP = (
    "State URL (default: MOTIA_STATE_URL, else the config file, else the embedded server, "
    "else the file)."
)
PREFIX_HELP = f"Key prefix (default: the config file's, else {DEFAULT_PREFIX})."
# A command opens the state for one call or one stream: no background sweeps, no near cache
# (whatever a config file says; `resolved` passes these Nones on).
ONE_SHOT: dict[str, Any] = {"cleanup_interval": None, "cache": None}
# Negative numbers are values (`expire g k -1`, `increment g k -5`), not unknown options.
NUMBERS = {"ignore_unknown_options": True}


def exit_code(exc: StateError) -> int:
    if isinstance(exc, VersionConflict):
        return CONFLICT
    if isinstance(exc, BackendUnavailable):
        return UNAVAILABLE
    if isinstance(exc, (InvalidInput, EncodeError)):
        return USAGE
    return NOT_FOUND


class _Cli(click.Group):
    """Turns the engine's errors into one line on stderr and a meaningful exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StateError as exc:
            fail(str(exc), exit_code(exc))
        except (redis.ConnectionError, redis.TimeoutError) as exc:  # a source read directly
            fail(f"{type(exc).__name__}: {exc}", UNAVAILABLE)
        except BrokenPipeError:  # the reader left (`| head`): stop quietly, as cat does
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(PIPE_CLOSED)
        except (redis.RedisError, OSError) as exc:
            fail(f"{type(exc).__name__}: {exc}", NOT_FOUND)
        except (click.ClickException, click.exceptions.Abort, click.exceptions.Exit):
            raise
        except Exception as exc:  # a defect: still one line, never a traceback
            fail(f"unexpected {type(exc).__name__}: {exc}", NOT_FOUND)


def fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@click.group(cls=_Cli)
@click.version_option(package_name="motia-state")
@click.option("--url", default=None, help=f"{URL_HELP} For every command; a command's own wins.")
@click.option(
    "--config",
    "config_path",
    default=None,
    metavar="PATH",
    help="A YAML file whose state: section says where the state lives and how (Motia's "
    "config.yml; default: MOTIA_STATE_CONFIG, else ./config.yml when it has one, used when "
    "no URL is given). A --url replaces its address.",
)
def main(url: str | None, config_path: str | None) -> None:
    """Inspect, change, watch and migrate motia-state."""


def _inherit_url(ctx: click.Context, _: click.Parameter, value: str | None) -> str | None:
    """A command's --url, else the one given before the command (``motia-state --url U get``),
    else None: `State.from_url` then reads MOTIA_STATE_URL or picks the default backend."""
    root = ctx.find_root()
    return value or (root.params.get("url") if root is not ctx else None)


def url_option(help: str = URL_HELP) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--url", default=None, callback=_inherit_url, help=help)


def resolved(url: str | None, **options: Any) -> tuple[str | None, dict[str, Any]]:
    """The URL and options a command opens: with ``--config``, the file's (a URL given
    replaces its address, the command's options win over its keys); options left unset
    (None) are not passed, so the file's or the default apply. Without ``--config``, a
    None URL leaves the choice to `State.from_url` (MOTIA_STATE_URL, the config file it
    finds, the default backend)."""
    options = {k: v for k, v in options.items() if v is not None or k in ONE_SHOT}
    path = click.get_current_context().find_root().params.get("config_path")
    if path is None:
        return url, options
    found = config.load(path, {**({"url": url} if url else {}), **options})
    return found.url, dict(found.options)


class Out:
    """Human output through Rich, or JSON."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        # emoji=False: ':smile:' in a group name is text; markup in user data is escaped
        self.console = Console(highlight=False, soft_wrap=True, emoji=False)

    def json(self, data: Any) -> None:
        click.echo(dumps(data))

    def print(self, *parts: Any, **options: Any) -> None:
        self.console.print(*parts, **options)


def shown(value: Any) -> str:
    """A value for human eyes; one that cannot be read or printed says why, so that the
    rest of the output still comes."""
    if isinstance(value, StateError):
        return f"(cannot read: {value})"
    try:
        return dumps(value, strict=False)
    except Unprintable as exc:
        return f"({exc})"


def json_line(record: dict[str, Any]) -> str:
    """One record of a stream (items, watch): a value that cannot be read or carried as
    JSON is named in ``error`` instead of ending the stream."""
    bad = next((v for v in record.values() if isinstance(v, StateError)), None)
    if bad is None:
        try:
            return dumps(record)
        except Unprintable as exc:
            bad = exc
    kept = {k: v for k, v in record.items() if k not in ("value", "old_value")}
    return dumps({**kept, "error": str(bad)})


def name(text: str) -> str:
    """A group or key name for a terminal: control characters (a hostile name could clear
    the screen) as ``\\xNN``, and bytes that are not UTF-8 (which the backend hands over
    as surrogate escapes) as ``\\xNN`` too, marked."""
    marker = ""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        try:
            raw = text.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError:
            raw = text.encode("utf-8", errors="backslashreplace")
        text, marker = raw.decode("utf-8", errors="backslashreplace"), " (not UTF-8)"
    return _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", text) + marker


def with_state(command: Callable[..., Any]) -> Callable[..., Any]:
    """Adds --url/--prefix/--codec/--json and hands the command an open `State` and `Out`."""

    @url_option()
    @click.option(
        "--prefix", default=None, help=f"{PREFIX_HELP} 'state:' shares Motia v1's hashes."
    )
    @click.option(
        "--codec",
        type=click.Choice(["json", "msgpack"]),
        default=None,
        help="Value codec (default: the config file's, else json).",
    )
    @click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts.")
    @functools.wraps(command)
    def wrapper(
        url: str | None, prefix: str | None, codec: str | None, as_json: bool, **kwargs: Any
    ) -> Any:
        out = Out(as_json)
        url, options = resolved(url, prefix=prefix, codec=codec, **ONE_SHOT)
        with State.from_url(url, **options) as state:
            return command(state, out, **kwargs)

    return wrapper


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def not_found(group: str, key: str) -> NoReturn:
    fail(f"not found: {group!r} / {key!r}", NOT_FOUND)


def _when(expires_at: float | None) -> str:
    if expires_at is None:
        return "no TTL"
    return f"expires in {max(0.0, expires_at - time.time()):.1f} s"


# -- reading --------------------------------------------------------------------------


@main.command()
@with_state
def groups(state: State, out: Out) -> None:
    """List the groups that hold items."""
    names = state.list_groups()
    if out.as_json:
        out.json(names)
    elif not names:
        click.echo("no group holds items", err=True)
    else:
        for group in names:
            click.echo(name(group))


@main.command()
@click.argument("group")
@click.argument("key")
@with_state
def get(state: State, out: Out, group: str, key: str) -> None:
    """Print one item: its value, version and TTL."""
    item = state.get_item(group, key)
    if item is None:
        not_found(group, key)
    if out.as_json:
        out.json(asdict(item))
    else:
        click.echo(dumps(item.value, strict=False, indent=2))
        out.print(f"[dim]version {item.version}, {_when(item.expires_at)}[/dim]")


# -- queries: items --where ------------------------------------------------------------

#: The short form's symbols, beside the operation names: ``total > 100``.
SYMBOLS = {"==": "eq", "!=": "neq", ">": "gt", ">=": "gte", "<": "lt", "<=": "lte"}
_SHORT = re.compile(r"\s*(\S+)\s+(\S+)(?:\s+(.*?))?\s*", re.DOTALL)
#: Items per query call when every match is printed: pages stream as they come. An ordered
#: query reads the whole group for each page, so it takes the largest page there is.
STREAM_PAGE = 1000
ORDERED_PAGE = queries.MAX_LIMIT
WHERE_HELP = (
    "PATH OP [VALUE] (e.g. 'status eq paid', 'total gt 100', 'note isNull'; VALUE is JSON "
    "when it parses as JSON, else text), or JSON: a Motia v0 filter dict or list, "
    '{"and"|"or": [...]}, {"not": ...}. Repeat: all must hold.'
)


def where_option(ctx: click.Context, _: click.Parameter, texts: tuple[str, ...]) -> Any:
    """The ``--where`` options as one checked predicate (None: none given), refused while
    the command line is read, before the state is opened."""
    if not texts:
        return None
    nodes = [where_of(text) for text in texts]
    if len(nodes) == 1:
        return nodes[0]
    try:  # each was checked alone; together they may be past the size limit
        return queries.parse(queries.All(tuple(nodes)))
    except InvalidInput as exc:
        raise InvalidInput(f"--where (all {len(nodes)} together): {exc}") from None


def where_of(text: str) -> Predicate:
    """One ``--where``: JSON when it starts as a JSON object or list does, else the short
    form ``PATH OP [VALUE]``; every refusal names the option and what was given."""
    stripped = text.strip()
    try:
        raw = parse_json("FILTER", stripped) if stripped[:1] in ("{", "[") else short_form(text)
        node = queries.parse(raw)
    except (InvalidInput, EncodeError) as exc:
        raise InvalidInput(f"--where {brief(text)}: {exc}") from None
    assert node is not None
    return node


def short_form(text: str) -> dict[str, Any]:
    """``PATH OP [VALUE]`` as the Motia v0 filter dict it stands for. A path with spaces,
    or the whole value (an empty path), needs the JSON form."""
    found = _SHORT.fullmatch(text)
    if found is None:
        raise InvalidInput(
            "give PATH OP [VALUE] (as in 'status eq paid', 'total gt 100', 'note isNull') or JSON"
        )
    path, op, value = found.groups()
    op = SYMBOLS.get(op, op)
    if op in queries.CHECKS:
        if value is not None:
            raise InvalidInput(f"{op} takes no VALUE")
        return {"valueKey": path, "operation": op}
    if op not in queries.OPERAND_OPS:
        known = ", ".join([*queries.OPERAND_OPS, *queries.CHECKS, *SYMBOLS])
        raise InvalidInput(f"unknown operation {brief(op)} (one of {known})")
    if value is None:
        raise InvalidInput(f"{op} needs a VALUE")
    return {"valueKey": path, "operation": op, "value": operand(value)}


def operand(text: str) -> Any:
    """VALUE as JSON when its syntax is JSON's (``100``, ``true``, ``["Oslo","Rome"]``,
    ``"42"``), else the text itself (``paid``, ``007``). JSON that the engine would refuse
    (an integer past 64 bits, a number past a double, NaN, a key twice) is refused, not
    taken as text: it was meant as a value."""
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return text
    except (ValueError, RecursionError):  # digits past Python's limit, nesting: read below
        pass
    return parse_json("VALUE", text)


def limit_option(ctx: click.Context, _: click.Parameter, text: str | None) -> int | None:
    """``--limit`` read here, not by click's INT, so that a bad one is one line."""
    if text is None:
        return None
    if not re.fullmatch(r"\s*\+?\d{1,9}\s*", text):
        raise InvalidInput(
            f"--limit must be an int from 1 to {queries.MAX_LIMIT}, got {brief(text)}"
        )
    try:
        return queries.limit_of(int(text))
    except InvalidInput as exc:
        raise InvalidInput(f"--{exc}") from None


def order_option(ctx: click.Context, _: click.Parameter, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return queries.order_path(text)
    except InvalidInput as exc:
        raise InvalidInput(f"--order-by {brief(text)}: {exc}") from None


def record(item: Item) -> dict[str, Any]:
    """A query's item as --json prints it: a value that JSON cannot carry is named in
    ``error`` instead (as `json_line` does for a stream)."""
    found = {
        "key": item.key,
        "value": item.value,
        "version": item.version,
        "expires_at": item.expires_at,
    }
    try:
        dumps(found)
    except Unprintable as exc:
        return {**{k: v for k, v in found.items() if k != "value"}, "error": str(exc)}
    return found


def show_item(key: str, value: Any) -> None:
    click.echo(click.style(name(key), fg="cyan", bold=True) + "\t" + shown(value))


@main.command()
@click.argument("group")
@click.option(
    "--where", "where", multiple=True, metavar="FILTER", callback=where_option, help=WHERE_HELP
)
@click.option(
    "--order-by",
    "order_by",
    default=None,
    metavar="PATH",
    callback=order_option,
    help="Sort by the value at PATH (numbers, then strings, then the rest; ties by key). "
    "Reads the whole group per page.",
)
@click.option("--desc", is_flag=True, help="With --order-by: largest first.")
@click.option(
    "--limit",
    default=None,
    metavar="N",
    callback=limit_option,
    help=f"Print one page of at most N items (1 to {queries.MAX_LIMIT}) and the cursor of "
    "the next (default: every match).",
)
@click.option("--cursor", default=None, help="Resume where the page that printed it ended.")
@click.option("--count", "count_only", is_flag=True, help="Print only how many items match.")
@with_state
def items(
    state: State,
    out: Out,
    group: str,
    where: Predicate | None,
    order_by: tuple[str, ...] | None,
    desc: bool,
    limit: int | None,
    cursor: str | None,
    count_only: bool,
) -> None:
    """Print the items of a group, one per line: every item as the group is read (HSCAN
    pages), or with --where, --order-by, --limit or --cursor the items a query returns
    (evaluated in the server on Redis; with --json each line carries version and
    expires_at, and --limit prints one JSON document: {"items": [...], "cursor": ...}).

    \b
    Examples:
      motia-state items orders --where 'status eq paid' --where 'total gt 100'
      motia-state items orders --where 'customer.city in ["Oslo","Rome"]' --count
      motia-state items orders --order-by total --desc --limit 10
      motia-state items orders --where '{"not": {"valueKey": "note", "operation": "isNull"}}'

    An item whose value cannot be read is shown as such (``error`` with --json).
    """
    if count_only:
        if order_by is not None or desc or limit is not None or cursor is not None:
            fail("--count takes only --where (not --order-by, --desc, --limit, --cursor)", USAGE)
        matched = state.count(group, where)
        if out.as_json:
            out.json({"count": matched})
        else:
            click.echo(str(matched))
        return
    if desc and order_by is None:
        fail("--desc needs --order-by", USAGE)
    if where is None and order_by is None and limit is None and cursor is None:
        every_item(state, out, group)
    elif limit is not None:
        page = state.query(
            group, where, order_by=order_by, descending=desc, limit=limit, cursor=cursor
        )
        print_page(out, page)
    else:
        size = ORDERED_PAGE if order_by is not None else STREAM_PAGE
        printed = 0
        while True:
            page = state.query(
                group, where, order_by=order_by, descending=desc, limit=size, cursor=cursor
            )
            for item in page.items:
                if out.as_json:
                    click.echo(dumps(record(item)))
                else:
                    show_item(item.key, item.value)
            printed += len(page.items)
            if page.cursor is None:
                break
            cursor = page.cursor
        if not out.as_json:
            click.echo(f"{printed} item(s)", err=True)


def every_item(state: State, out: Out, group: str) -> None:
    """Every item, streamed; a value that cannot be read is shown as such."""
    count = 0
    for key, value in migration.lenient_items(state, group):
        count += 1
        if out.as_json:
            click.echo(json_line({"key": key, "value": value}))
        else:
            show_item(key, value)
    if not out.as_json:
        click.echo(f"{count} item(s)", err=True)


def print_page(out: Out, page: Page) -> None:
    if out.as_json:
        out.json({"items": [record(item) for item in page.items], "cursor": page.cursor})
        return
    for item in page.items:
        show_item(item.key, item.value)
    more = "" if page.cursor is None else f"; next page: --cursor {page.cursor}"
    click.echo(f"{len(page.items)} item(s){more}", err=True)


@main.command()
@click.argument("group")
@click.argument("key")
@with_state
def ttl(state: State, out: Out, group: str, key: str) -> None:
    """Print the seconds until an item expires (or that it has no TTL)."""
    if state.get_item(group, key) is None:
        not_found(group, key)
    seconds = state.ttl(group, key)
    if out.as_json:
        out.json({"ttl": seconds})
    else:
        click.echo("no TTL" if seconds is None else f"{seconds:.3f}")


@main.command()
@with_state
def stats(state: State, out: Out) -> None:
    """Per group: items, items with a TTL, bytes in Redis, change records."""
    rows, stream = state.stats()
    if out.as_json:
        out.json({"groups": [asdict(row) for row in rows], "changes": stream})
        return
    table = Table("group", "items", "with TTL", "bytes", "changes")
    for row in rows:
        table.add_row(
            escape(name(row.group)),
            f"{row.items:,}",
            f"{row.with_ttl:,}",
            "-" if row.bytes is None else f"{row.bytes:,}",
            "-" if row.changes is None else f"{row.changes:,}",
        )
    out.print(table)
    if stream is not None:
        out.print(f"change stream: {stream:,} record(s), shared by every group")


# -- writing --------------------------------------------------------------------------


@main.command(name="set", context_settings=NUMBERS)
@click.argument("group")
@click.argument("key")
@click.argument("value")
@click.option("--ttl", "ttl_s", type=float, default=None, help="Expire after this many seconds.")
@click.option("--version", type=int, default=None, help="Write only at this version (0: new).")
@with_state
def set_(
    state: State,
    out: Out,
    group: str,
    key: str,
    value: str,
    ttl_s: float | None,
    version: int | None,
) -> None:
    """Store VALUE (JSON text) at GROUP / KEY."""
    new = state.set(group, key, parse_json("VALUE", value), version=version, ttl=ttl_s)
    if out.as_json:
        out.json({"version": new})
    else:
        click.echo(f"stored {group!r} / {key!r}: version {new}")


@main.command()
@click.argument("group")
@click.argument("key")
@click.option("--version", type=int, default=None, help="Delete only at this version.")
@with_state
def delete(state: State, out: Out, group: str, key: str, version: int | None) -> None:
    """Remove one item; prints the value it had."""
    if state.get_item(group, key) is None:
        not_found(group, key)
    old = state.delete(group, key, version=version)
    if out.as_json:
        out.json({"deleted": True, "value": old})
    else:
        click.echo(f"deleted {group!r} / {key!r} (was {shown(old)})")


@main.command()
@click.argument("group")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_state
def clear(state: State, out: Out, group: str, yes: bool) -> None:
    """Remove every item of a group."""
    if not yes:
        if not sys.stdin.isatty():
            fail(f"clear removes every item of {group!r}: pass --yes to confirm", USAGE)
        click.confirm(f"Remove every item of {group!r}?", abort=True)
    removed = state.clear(group)
    if out.as_json:
        out.json({"removed": removed})
    else:
        click.echo(f"removed {removed} item(s) from {group!r}")


@main.command(context_settings=NUMBERS)
@click.argument("group")
@click.argument("key")
@click.argument("seconds", type=float, required=False)
@click.option("--persist", is_flag=True, help="Remove the TTL instead.")
@with_state
def expire(
    state: State, out: Out, group: str, key: str, seconds: float | None, persist: bool
) -> None:
    """Give an item a TTL of SECONDS, or remove its TTL with --persist."""
    if (seconds is None) == (not persist):
        fail("give SECONDS or --persist (one of them)", USAGE)
    done = state.persist(group, key) if persist else state.expire(group, key, seconds or 0)
    if not done:
        not_found(group, key)
    if out.as_json:
        out.json({"ttl": None if persist else seconds})
    else:
        click.echo(f"{group!r} / {key!r}: " + ("no TTL" if persist else f"expires in {seconds} s"))


@main.command(context_settings=NUMBERS)
@click.argument("group")
@click.argument("key")
@click.argument("by", default="1")
@click.option("--ttl", "ttl_s", type=float, default=None, help="TTL in seconds.")
@click.option("--version", type=int, default=None, help="Only at this version.")
@with_state
def increment(
    state: State,
    out: Out,
    group: str,
    key: str,
    by: str,
    ttl_s: float | None,
    version: int | None,
) -> None:
    """Add BY (default 1; an integer or a float) to a number, atomically."""
    amount = parse_json("BY", by)
    number = state.increment(group, key, amount, version=version, ttl=ttl_s)
    if out.as_json:
        out.json({"value": number})
    else:
        click.echo(dumps(number, strict=False))


@main.command()
@click.argument("group")
@click.argument("key")
@click.argument("ops")
@click.option("--ttl", "ttl_s", type=float, default=None, help="TTL in seconds.")
@click.option("--version", type=int, default=None, help="Only at this version.")
@with_state
def update(
    state: State,
    out: Out,
    group: str,
    key: str,
    ops: str,
    ttl_s: float | None,
    version: int | None,
) -> None:
    """Apply Motia v1 update ops (a JSON list) atomically; prints the new value.

    Example: '[{"type": "increment", "path": "count", "by": 1}]'
    """
    steps = parse_json("OPS", ops)
    if isinstance(steps, dict):
        steps = [steps]
    if not isinstance(steps, list):
        raise InvalidInput("OPS must be a JSON list of update ops")
    value = state.update(group, key, steps, version=version, ttl=ttl_s)
    if out.as_json:
        out.json({"value": value})
    else:
        click.echo(dumps(value, strict=False, indent=2))


@main.command()
@with_state
def cleanup(state: State, out: Out) -> None:
    """Remove expired items now (they are already invisible to reads)."""
    removed = state.cleanup()
    if out.as_json:
        out.json({"removed": removed})
    else:
        click.echo(f"removed {removed} expired item(s)")


# -- following changes ----------------------------------------------------------------


class _Signalled:
    interrupted = False


@contextmanager
def _until_signalled() -> Iterator[_Signalled]:
    """SIGTERM ends the block like Ctrl-C does: quietly; ``.interrupted`` says whether."""
    state = _Signalled()

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield state
    except KeyboardInterrupt:
        state.interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous)


@main.command()
@click.argument("group_names", metavar="[GROUP]...", nargs=-1)
@click.option("--since", default="$", show_default=True, help="'$' new, '0' all kept, or an id.")
@click.option("--consumer", default=None, help="GROUP:NAME: read as a consumer group member.")
@click.option("--values", "with_values", is_flag=True, help="Show recorded values.")
@click.option("--events", is_flag=True, help="Show the events transactions emitted too.")
@with_state
def watch(
    state: State,
    out: Out,
    group_names: tuple[str, ...],
    since: str,
    consumer: str | None,
    with_values: bool,
    events: bool,
) -> None:
    """Print changes (and with --events the outbox's events) as they happen, one per line,
    until interrupted."""
    member: tuple[str, str] | None = None
    if consumer is not None:
        name, sep, who = consumer.partition(":")
        if not sep or not name or not who:
            fail("--consumer takes GROUP:NAME", USAGE)
        member = (name, who)
    with _until_signalled():
        changes = state.watch(
            list(group_names) or None,
            since=since,
            consumer=member,
            with_values=with_values,
            events=events,
        )
        with changes:
            for change in changes:
                if change is None:
                    continue
                _print_change(out, change)
                sys.stdout.flush()
                if member is not None:
                    state.ack(change)


def _print_change(out: Out, change: Change) -> None:
    if out.as_json:
        click.echo(json_line(asdict(change)))
        return
    stamp = (
        time.strftime("%H:%M:%S", time.localtime(change.ts))
        + f".{int(change.ts * 1000) % 1000:03d}"
    )
    parts = [stamp, change.id, change.op]
    if change.is_event:  # the outbox: its group, topic and data
        parts += [repr(change.group), repr(change.topic), shown(change.data)]
        out.print(escape(" ".join(parts)))
        return
    parts += [repr(n) for n in (change.group, change.key) if n is not None]
    if change.op == "external":
        parts.append(change.event or "")
    elif change.op in ("clear", "expire_group"):  # the whole group: cleared, or expired whole
        parts.append("(every item)")
    elif change.version is not None:
        parts.append(f"v{change.version}")
    if change.has_values and change.op not in ("delete", "clear", "expire_group"):
        parts.append(shown(change.value))
    out.print(escape(" ".join(parts)))


@main.command()
@url_option()
@click.option("--prefix", default=None, help=PREFIX_HELP)
@click.option("--quiet", is_flag=True, help="Do not print each external change.")
def track(url: str | None, prefix: str | None, quiet: bool) -> None:
    """Record changes made outside the engine (redis-cli, EXPIRE, eviction) in the change feed.

    Runs the keyspace bridge until interrupted (Ctrl-C or SIGTERM). Turns on the
    keyspace notifications it needs where the server allows it.
    """

    def echo(group: str | None, event: str) -> None:
        if not quiet:
            stamp = time.strftime("%H:%M:%S")
            click.echo(f"{stamp} external {event} " + (repr(group) if group else "(gap)"))

    url, options = resolved(url, prefix=prefix, cache=None)
    bridge = Bridge.from_url(url, on_record=echo, **options)

    def stop(signum: int, frame: FrameType | None) -> None:
        bridge.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    click.echo(f"tracking external changes on {bridge.describe} (Ctrl-C stops)", err=True)
    bridge.run()
    click.echo(f"stopped; {bridge.recorded} external record(s) written", err=True)


@main.command()
@url_option()
@click.option("--prefix", default=None, help=PREFIX_HELP)
@click.option("--codec", type=click.Choice(["json", "msgpack"]), default=None, help="Value codec.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=7777, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--token",
    envvar="MOTIA_STATE_UI_TOKEN",
    default=None,
    help="Required of every visitor (16+ characters; default: none on loopback, a new one "
    "printed at start on any other address). Also MOTIA_STATE_UI_TOKEN.",
)
@click.option("--open", "open_browser", is_flag=True, help="Open the page in a browser.")
def ui(
    url: str | None,
    prefix: str | None,
    codec: str | None,
    host: str,
    port: int,
    token: str | None,
    open_browser: bool,
) -> None:
    """Inspect and edit the state in a browser: groups, items, history, live changes.

    Listens on loopback unless --host says otherwise; on any other address every visitor
    needs the token (the printed URL carries it once). Needs the ui extra:
    pip install 'motia-state[ui]'.
    """
    try:
        from . import ui as inspector
        from .ui.app import build  # noqa: F401  (the extra's imports, checked now)
    except ImportError as exc:
        fail(f"motia-state ui needs the ui extra ({exc.name} is missing): "
             "pip install 'motia-state[ui]'", USAGE)  # fmt: skip
    url, options = resolved(url, prefix=prefix, codec=codec, **ONE_SHOT)
    options.setdefault("record_values", True)  # the page's history shows what its edits did
    try:
        inspector.plan_token(host, token)
        with State.from_url(url, **options) as state:  # the address checked before listening
            state.list_groups()
            where = state._backend.describe
    except inspector.Refused as exc:
        fail(f"motia-state ui: {exc}", USAGE)

    def announce(address: str) -> None:
        click.echo(f"motia-state ui: {address}")
        click.echo(f"  state: {where} (Ctrl-C stops)", err=True)

    try:
        inspector.serve(
            url,
            options,
            host=host,
            port=port,
            token=token,
            open_browser=open_browser,
            announce=announce,
        )
    except OSError as exc:
        fail(f"motia-state ui: cannot listen on {host}:{port}: {exc.strerror}", UNAVAILABLE)


@main.command()
@url_option()
@click.option("--keep", is_flag=True, help="Leave the demo's data in place to look at.")
def demo(url: str | None, keep: bool) -> None:
    """Run the order workflow from Motia's docs and print what it did.

    It writes only where nothing else lives (a prefix of its own on a Redis server,
    groups named for the run elsewhere) and removes what it wrote unless --keep.
    """
    demo_module.in_own_namespace(resolved(url)[0], click.echo, keep=keep)


# -- migration --------------------------------------------------------------------------


@main.command()
@click.option("--from", "source_url", required=True, help="Where the state is now.")
@click.option(
    "--to",
    "target_url",
    default=None,
    help="Where it goes (default: --url, else MOTIA_STATE_URL, else the config file, else the "
    "default backend).",
)
@url_option("Same as --to.")
@click.option(
    "--layout",
    type=click.Choice(["engine", "motia-v0"]),
    default="engine",
    show_default=True,
    help="The source's layout: this engine's, or Motia v0's (Redis strings "
    "<prefix><group>:<key>, or file://.motia/motia.state.json).",
)
@click.option("--from-prefix", default=DEFAULT_PREFIX, show_default=True)
@click.option("--to-prefix", default=None, help=PREFIX_HELP)
@click.option("--from-codec", type=click.Choice(["json", "msgpack"]), default="json")
@click.option(
    "--to-codec",
    type=click.Choice(["json", "msgpack"]),
    default=None,
    help="(default: the config file's, else json)",
)
@click.option(
    "--groups",
    "group_list",
    multiple=True,
    help="motia-v0: the group names (comma-separated or repeated); a joined name goes to the "
    "longest that fits, names under none are reported and not copied.",
)
@click.option(
    "--split",
    type=click.Choice(["first", "last"]),
    default="first",
    show_default=True,
    help="motia-v0 without --groups: split group and key at the first or last ':'.",
)
@click.option("--dry-run", is_flag=True, help="Read and compare; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def migrate(
    source_url: str,
    target_url: str | None,
    url: str | None,
    layout: str,
    from_prefix: str,
    to_prefix: str | None,
    from_codec: str,
    to_codec: str | None,
    group_list: tuple[str, ...],
    split: str,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Copy state from Motia's layouts or another backend; safe to run again.

    Only items missing or different at the target are written, so a second run, or a
    run after an interruption, finishes the job and rewrites nothing. The source is
    only read.
    """
    out = Out(as_json)
    names = [g for part in group_list for g in part.split(",") if g]
    splitter = migration.Splitter(names or None, split)
    report = migration.Report(dry_run=dry_run)
    pages, source = migration.open_source(
        source_url,
        layout,
        prefix=from_prefix,
        codec=from_codec,
        splitter=splitter,
        report=report,
    )
    try:
        url, options = resolved(target_url or url, prefix=to_prefix, codec=to_codec, **ONE_SHOT)
        with State.from_url(url, **options) as target:
            show = not as_json and sys.stderr.isatty()
            with Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                disable=not show,
                transient=True,
            ) as bar:
                task = bar.add_task("reading", total=None)

                def progress(now: migration.Report) -> None:
                    bar.update(
                        task,
                        description=f"{now.read:,} read, {now.written:,} "
                        f"{'to write' if dry_run else 'written'}, {now.unchanged:,} unchanged",
                    )

                with _until_signalled() as run:
                    migration.copy(pages, target, report, progress)
                interrupted = run.interrupted
    finally:
        if source is not None:
            source.close()
    _print_report(out, report, interrupted)
    if interrupted:
        sys.exit(INTERRUPTED)


def _print_report(out: Out, report: migration.Report, interrupted: bool) -> None:
    if out.as_json:
        out.json({**report.as_dict(), "interrupted": interrupted})
        return
    verb = "would write" if report.dry_run else "written"
    out.print(
        f"{report.read:,} read, {report.written:,} {verb}, {report.unchanged:,} unchanged, "
        f"{len(report.groups):,} group(s)"
    )
    notes = {
        "ambiguous": "names with more than one group/key reading (copied by the rule; "
        "give --groups to decide)",
        "outside": "names under none of --groups (not copied)",
        "unreadable": "values that are not JSON, or names without a group or key (not copied)",
        "refused": "items the target cannot store, such as an integer beyond 64 bits or a "
        "group name it cannot hold (not copied)",
    }
    for kind, what in notes.items():
        count = getattr(report, kind)
        if count:
            examples = ", ".join(repr(n) for n in report.examples.get(kind, []))
            out.print(escape(f"{count:,} {what}: {examples}"))
    if interrupted:
        out.print("interrupted: run the same command again to finish")
