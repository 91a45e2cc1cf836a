"""The inspector's JSON API under ``/api/``: what the page uses, and what a script may use.

Every handler is a thin translation of one engine call: the engine checks every argument
and refuses bad input with a typed error before anything is written, and `error_response`
turns that type into an HTTP status and a message the page shows as it is. Writes are never
blind from the page: it sends the version it opened (compare-and-set), and a conflict
answers 409 with the item as it is now, for the side-by-side view.

Values travel as JSON. The editor's text is parsed here, exactly (`jsontext.parse_json`:
integers past 2**53 keep their digits, a key given twice is refused), not by the browser.
A value JSON cannot show exactly (NaN, bytes from the msgpack codec, nesting past what JSON
parsers take) is shown as text and marked not editable, so that an edit cannot silently
change what it did not show (a save naming its version is refused here too); bytes no codec
reads (another tool's) are listed and shown the same way, with why, never an error that
would hide the rest of the group.

Nothing waits without bound: a request body is read as it arrives, within `MAX_BODY` and
`BODY_IDLE_S`/`BODY_TOTAL_S`, and a call the state does not answer within
`CALL_TIMEOUT_S` is a 503 (`app`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
import uuid
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response

from .. import query as queries
from ..async_state import AsyncState
from ..core import Plan
from ..errors import (
    BackendUnavailable,
    DecodeError,
    EncodeError,
    InvalidInput,
    PermissionDenied,
    StateError,
    Unsupported,
    UpdateFailed,
    VersionConflict,
    brief,
)
from ..jsontext import dumps, no_constant, once, parse_json
from ..ops import Item, RawItem, Undecodable
from .live import Hub

PAGE_LIMIT = 500  # items per page, at most
SEARCH_PAGES = 20  # server pages a key search reads per request before answering
PREVIEW = 120  # characters of a row's value preview
EXPIRY_SCAN = 5_000  # items looked at for the expiries-ahead picture
MAX_BODY = 64 * 1024 * 1024  # bytes of a request body
BODY_IDLE_S = 10.0  # a request body that pauses longer is answered 408
BODY_TOTAL_S = 60.0  # and one that takes longer in all
# A call's bound: the engine retries a server that accepts connections and never answers
# (SIGSTOP, a hung host) for minutes (~160 s with its 10 s socket timeout); the page
# must hear something before its user gives up.
CALL_TIMEOUT_S = 20.0
SHOWN_BYTES = 1 << 20  # of a value no codec reads, the bytes shown
POLL_MS = 2_000
BUCKETS = [(60, "< 1 min"), (300, "1-5 min"), (3_600, "5-60 min"), (86_400, "1-24 h")]


class NotFound(StateError):
    """The item (or the route) is not there."""


class TooLarge(InvalidInput):
    """A request body past `MAX_BODY`."""


class TooSlow(InvalidInput):
    """A request body that stopped arriving (`BODY_IDLE_S`, `BODY_TOTAL_S`)."""


class MethodNotAllowed(StateError):
    """A route asked with a method it does not take."""


STATUS: list[tuple[type[BaseException], int]] = [
    (VersionConflict, 409),
    (NotFound, 404),
    (TooLarge, 413),
    (TooSlow, 408),
    (MethodNotAllowed, 405),
    (InvalidInput, 400),
    (EncodeError, 400),
    (UpdateFailed, 400),
    (DecodeError, 422),
    (PermissionDenied, 403),
    (Unsupported, 501),
    (BackendUnavailable, 503),
]


def json_response(data: Any, status: int = 200) -> Response:
    """JSON that always encodes: a lone surrogate (a name that is not UTF-8) as its escape."""
    return Response(
        dumps(data),
        status_code=status,
        media_type="application/json",
        headers={"cache-control": "no-store"},
    )


def error_response(exc: BaseException, **extra: Any) -> Response:
    status = next((code for kind, code in STATUS if isinstance(exc, kind)), 500)
    message = str(exc) if isinstance(exc, StateError) else "internal error (see the log)"
    body = {"error": {"type": type(exc).__name__, "message": message}, **extra}
    return json_response(body, status)


@dataclass(frozen=True)
class Shown:
    """A value as the page shows it: ``value`` for the tree (None when not exact), ``raw``,
    its pretty text, and whether editing that text can round-trip it."""

    value: Any
    raw: str
    editable: bool


def shown(value: Any) -> Shown:
    """JSON text for any value a codec gives back. What JSON has no form for (bytes, NaN,
    an extension type, a map key that is not a string) is written as Python writes it
    (``b'\\x00'``, ``NaN``) and the value marked not editable; bytes no codec reads say why,
    then show the bytes."""
    if isinstance(value, Undecodable):
        data = value.raw[:SHOWN_BYTES]
        more = f" ... ({len(value.raw)} bytes)" if len(value.raw) > SHOWN_BYTES else ""
        return Shown(None, f"(cannot read: {value.reason})\n{data!r}{more}", False)
    try:
        raw, exact = _text(value, indent=2)
    except RecursionError:
        return Shown(None, "(the value nests too deeply to show)", False)
    return Shown(value if exact else None, raw, exact)


def _text(value: Any, indent: int | None) -> tuple[str, bool]:
    """``value`` as JSON text, and whether that text reads back as ``value``."""
    mark = f"\x00{uuid.uuid4().hex}:"  # stands for an inexact leaf until the text is made
    inexact: list[str] = []

    def leaf(text: str) -> str:
        inexact.append(text)
        return f"{mark}{len(inexact) - 1}\x00"

    def plain(node: Any) -> Any:
        if node is None or isinstance(node, (bool, int, str)):
            return node
        if isinstance(node, float):
            return node if math.isfinite(node) else leaf(json.dumps(node))
        if isinstance(node, list):
            return [plain(item) for item in node]
        if isinstance(node, dict):
            return {k if isinstance(k, str) else leaf(repr(k)): plain(v) for k, v in node.items()}
        return leaf(repr(node))  # bytes, an extension type, a timestamp

    text = json.dumps(plain(value), ensure_ascii=False, indent=indent)
    if inexact:
        quoted = re.escape(json.dumps(mark)[:-1]) + r"(\d+)\\u0000\""
        text = re.sub(quoted, lambda m: inexact[int(m[1])], text)
    # a lone surrogate (foreign text) as its escape, which reads back as the same string
    return text.encode("utf-8", "backslashreplace").decode("utf-8"), not inexact


def item_json(item: Item, now: float) -> dict[str, Any]:
    view = shown(item.value)
    return {
        "group": item.group,
        "key": item.key,
        "value": view.value,
        "raw": view.raw,
        "editable": view.editable,
        "version": item.version,
        "expires_at": item.expires_at,
        "ttl_ms": _ttl_ms(item.expires_at, now),
        "bytes": len(view.raw.encode("utf-8", "surrogatepass")),
    }


def row_json(item: Item, now: float) -> dict[str, Any]:
    if isinstance(item.value, Undecodable):
        preview = f"(cannot read: {item.value.reason})"
    else:
        try:
            preview = _text(item.value, indent=None)[0]
        except RecursionError:
            preview = "(the value nests too deeply to show)"
    if len(preview) > PREVIEW:
        preview = preview[:PREVIEW] + "…"
    return {
        "key": item.key,
        "preview": preview,
        "version": item.version,
        "expires_at": item.expires_at,
        "ttl_ms": _ttl_ms(item.expires_at, now),
    }


def _ttl_ms(expires_at: float | None, now: float) -> int | None:
    return None if expires_at is None else max(0, round((expires_at - now) * 1000))


def _params(request: Request) -> dict[str, str]:
    """The query string, decoded as the engine names things: bytes that are not UTF-8 as
    surrogate escapes (a name another tool wrote), never as U+FFFD, which would name
    another group or key; a parameter given twice, the last."""
    query = request.scope.get("query_string", b"").decode("utf-8", "surrogateescape")
    pairs = parse_qsl(query, keep_blank_values=True, errors="surrogateescape")
    return dict(pairs)


def _param(request: Request, name: str, default: str = "") -> str:
    return _params(request).get(name, default)


def _required(request: Request, name: str) -> str:
    value = _params(request).get(name)
    if value is None:
        raise InvalidInput(f"{name} is required")
    return value


def _int(text: str | None, name: str, default: int | None = None) -> int | None:
    if text is None or text == "":
        return default
    try:
        return int(text)
    except ValueError:
        raise InvalidInput(f"{name} must be an integer, not {brief(text)}") from None


def _version(body: dict[str, Any]) -> int | None:
    version = body.get("version")
    if version is not None and (isinstance(version, bool) or not isinstance(version, int)):
        raise InvalidInput(f"version must be an integer or null, not {brief(version)}")
    return version


async def read_body(request: Request) -> bytes:
    """The body, read as it arrives: refused once past `MAX_BODY` (however it is framed:
    chunks say no size up front) and when it stops arriving, rather than held for ever."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge(f"the request body is larger than {MAX_BODY} bytes")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + BODY_TOTAL_S
    chunks: list[bytes] = []
    size = 0
    stream = request.stream().__aiter__()
    while True:
        wait = min(BODY_IDLE_S, deadline - loop.time())
        try:
            chunk = await asyncio.wait_for(stream.__anext__(), max(wait, 0.0))
        except StopAsyncIteration:
            return b"".join(chunks)
        except asyncio.TimeoutError:
            raise TooSlow(
                f"the request body stopped arriving (at most {BODY_IDLE_S:g} s between "
                f"parts, {BODY_TOTAL_S:g} s in all)"
            ) from None
        size += len(chunk)
        if size > MAX_BODY:
            raise TooLarge(f"the request body is larger than {MAX_BODY} bytes")
        chunks.append(chunk)


async def _body(request: Request) -> dict[str, Any]:
    raw = getattr(request.state, "body", None)
    if raw is None:
        raw = await read_body(request)
    try:  # exactly, as the value's text: a key given twice or NaN is refused, not guessed
        body = json.loads(raw, object_pairs_hook=once, parse_constant=no_constant)
    except RecursionError:
        raise InvalidInput("the request body is not JSON (it nests too deeply)") from None
    except ValueError as exc:
        raise InvalidInput(f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


_LIST_CURSOR = re.compile(r"(0|[1-9][0-9]{0,19}):((?:[0-9a-f]{16}){0,100000})")


def _list_cursor(cursor: str | None) -> tuple[str, str]:
    """A listing's cursor (see `Api._listing`): the server page, the keys of it returned."""
    if cursor is None:
        return "0", ""
    found = _LIST_CURSOR.fullmatch(cursor)
    if found is None or int(found[1]) >= 2**64:
        raise InvalidInput(f"cursor {brief(cursor)} is not one a page of items gave")
    return found[1], found[2]


def _same(raw: Any) -> Any:
    return raw


def _name(body: dict[str, Any], field: str) -> str:
    value = body.get(field)
    if not isinstance(value, str):
        raise InvalidInput(f"{field} must be a string, not {brief(value)}")
    return value


class Api:
    """The handlers, over one `AsyncState` (and its feed `Hub`, None on poll backends)."""

    ROUTES: ClassVar[list[tuple[str, str, str]]] = [  # (method, path, handler's name)
        ("GET", "/api/info", "info"),
        ("GET", "/api/groups", "groups"),
        ("GET", "/api/items", "items"),
        ("GET", "/api/item", "item"),
        ("PUT", "/api/item", "put"),
        ("DELETE", "/api/item", "delete"),
        ("GET", "/api/history", "history"),
        ("POST", "/api/increment", "increment"),
        ("POST", "/api/update", "update"),
        ("POST", "/api/ttl", "ttl"),
        ("POST", "/api/clear", "clear"),
        ("GET", "/api/metrics", "metrics"),
        ("GET", "/api/expiries", "expiries"),
    ]

    def __init__(
        self, state: AsyncState, hub: Hub | None, shown_url: str, record_values: bool
    ) -> None:
        self.state = state
        self.hub = hub
        self.shown_url = shown_url
        self.record_values = record_values  # this server's own writes record their values

    async def info(self, request: Request) -> Response:
        scheme = self.shown_url.split("://", 1)[0] if "://" in self.shown_url else "?"
        backend = {"redis+cluster": "cluster", "redis+sentinel": "sentinel"}.get(scheme, scheme)
        return json_response(
            {
                "backend": backend,
                "url": self.shown_url,
                "live": "poll" if self.hub is None else "feed",
                "poll_ms": POLL_MS if self.hub is None else None,
                "feed_error": None if self.hub is None else self.hub.failing,
                "record_values": self.record_values,
                "capabilities": sorted(self.state.capabilities),
                "version": metadata.version("motia-state"),
                "now": time.time(),
            }
        )

    async def groups(self, request: Request) -> Response:
        search = _param(request, "search", "").casefold()
        found, _ = await self.state.stats()
        rows = [
            {
                "group": g.group,
                "items": g.items,
                "with_ttl": g.with_ttl,
                "bytes": g.bytes,
                "changes": g.changes,
            }
            for g in found
            if search in g.group.casefold()
        ]
        return json_response({"groups": rows, "now": time.time()})

    async def items(self, request: Request) -> Response:
        group = _required(request, "group")
        limit = _int(_param(request, "limit"), "limit", 50)
        assert limit is not None
        if not 1 <= limit <= PAGE_LIMIT:
            raise InvalidInput(f"limit must be from 1 to {PAGE_LIMIT}, not {limit}")
        where_text = _param(request, "where") or None
        where = None if where_text is None else parse_json("where", where_text)
        order_by = _param(request, "order_by") or None
        descending = _param(request, "desc", "0") in ("1", "true")
        needle = _param(request, "search", "").casefold()
        cursor = _param(request, "cursor") or None
        if where is None and order_by is None:
            return await self._listing(group, limit, cursor, needle)
        rows: list[Item] = []
        scanned = 0
        for _ in range(SEARCH_PAGES if needle else 1):
            page = await self.state.query(
                group,
                where,
                order_by=order_by,
                descending=descending,
                limit=limit,
                cursor=cursor,
            )
            scanned += len(page.items)
            rows += [i for i in page.items if needle in i.key.casefold()]
            cursor = page.cursor
            if cursor is None or len(rows) >= limit:
                break
        now = time.time()
        return json_response(
            {
                "items": [row_json(i, now) for i in rows],
                "cursor": cursor,
                "scanned": scanned,
                "now": now,
            }
        )

    async def _listing(self, group: str, limit: int, cursor: str | None, needle: str) -> Response:
        """The group as it is, page by page, values undecoded until shown: a value no codec
        reads (which a query leaves out) is listed too, as a placeholder. A page that ends
        inside a server page names in its cursor the keys of that page it returned (as
        `State.query` does), so the next leaves out exactly those."""
        scan, returned = _list_cursor(cursor)
        keys: list[str] = []
        scanned = 0
        following: str | None = f"{scan}:{returned}"
        for _ in range(SEARCH_PAGES):
            page = await self.state.list_keys(
                group, cursor=None if scan == "0" else scan, count=limit
            )
            skip = set(queries.digests(returned))
            fresh = [k for k in page.keys if queries.digest(k) not in skip]
            scanned += len(fresh)
            wanted = [k for k in fresh if needle in k.casefold()]
            room = limit - len(keys)
            if len(wanted) > room:
                taken = wanted[:room]
                keys += taken
                following = f"{scan}:{returned}" + "".join(queries.digest(k) for k in taken)
                break
            keys += wanted
            if page.cursor is None:
                following = None
                break
            scan, returned = page.cursor, ""
            following = f"{scan}:"
            if len(keys) == limit:
                break
        now = time.time()
        found = await asyncio.gather(*(self._row(group, key, now) for key in keys))
        return json_response(
            {
                "items": [row for row in found if row is not None],
                "cursor": following,
                "scanned": scanned,
                "now": now,
            }
        )

    async def _row(self, group: str, key: str, now: float) -> dict[str, Any] | None:
        try:
            item = await self._stored(group, key)
        except InvalidInput as exc:  # a key the engine cannot name (not UTF-8)
            unnamed = {"preview": f"(cannot read: {exc})", "version": None}
            return {"key": key, **unnamed, "expires_at": None, "ttl_ms": None}
        return None if item is None else row_json(item, now)

    async def _stored(self, group: str, key: str) -> Item | None:
        """`get_item`, except that a value no codec reads (another tool's bytes) comes as
        `Undecodable`, to be shown, rather than as an error."""
        core = self.state._core
        plan = core.get_item(group, key)  # the names checked
        raw: RawItem | None = await self.state._run(Plan(plan.op, _same))
        if raw is None:
            return None
        try:
            value = core.codec.decode(raw.data)
        except DecodeError as exc:
            value = Undecodable(raw.data, str(exc))
        return Item(group, key, value, raw.version, raw.expires_at)

    async def _current(self, group: str, key: str) -> dict[str, Any] | None:
        item = await self._stored(group, key)
        return None if item is None else item_json(item, time.time())

    async def item(self, request: Request) -> Response:
        group, key = _required(request, "group"), _required(request, "key")
        found = await self._current(group, key)
        if found is None:
            raise NotFound(f"no item {key!r} in group {group!r}")
        return json_response(found)

    async def _written(self, group: str, key: str) -> Response:
        return json_response({"item": await self._current(group, key)})

    async def put(self, request: Request) -> Response:
        body = await _body(request)
        group, key = _name(body, "group"), _name(body, "key")
        if "raw" in body:
            value = parse_json("the value", _name(body, "raw"))
        elif "value" in body:
            value = body["value"]
        else:
            raise InvalidInput("give the value as raw (JSON text) or value")
        ttl = body.get("ttl")
        version = _version(body)
        if version:  # the page saves what it opened: only what it could show exactly
            opened = await self._stored(group, key)
            if opened is not None and opened.version == version:
                view = shown(opened.value)
                if not view.editable:
                    raise InvalidInput(
                        f"{group!r}/{key!r} version {version} is not editable as JSON (it "
                        "holds what JSON cannot show exactly: bytes, NaN, data no codec "
                        "reads); saving text over it would change it unseen. Delete it and "
                        "create it anew, or send version null to replace it regardless"
                    )
        await self.state.set(group, key, value, version=version, ttl=ttl)
        return await self._written(group, key)

    async def delete(self, request: Request) -> Response:
        group, key = _required(request, "group"), _required(request, "key")
        version = _int(_param(request, "version"), "version")
        if version is None:
            raise InvalidInput("a delete needs the version it removes (version=N)")
        await self.state.delete(group, key, version=version)
        return json_response({"deleted": True})

    async def history(self, request: Request) -> Response:
        group, key = _required(request, "group"), _required(request, "key")
        limit = _int(_param(request, "limit"), "limit", 20)
        assert limit is not None
        if not 1 <= limit <= PAGE_LIMIT:
            raise InvalidInput(f"limit must be from 1 to {PAGE_LIMIT}, not {limit}")
        before = _param(request, "before") or None
        found = await self.state.history(group, key, limit=limit, before=before)
        entries = []
        for change in found.changes:
            value, old = shown(change.value), shown(change.old_value)
            entries.append(
                {
                    "id": change.id,
                    "op": (change.event or change.op) if change.op == "external" else change.op,
                    "version": change.version,
                    "prev_version": change.prev_version,
                    "ts": change.ts,
                    "value": value.value,
                    "raw": value.raw if change.has_values else None,
                    "old_value": old.value,
                    "old_raw": old.raw if change.has_values else None,
                    "has_values": change.has_values,
                }
            )
        return json_response(
            {
                "entries": entries,
                "cursor": found.cursor,
                "record_values": self.record_values,
            }
        )

    async def increment(self, request: Request) -> Response:
        body = await _body(request)
        group, key = _name(body, "group"), _name(body, "key")
        by = body.get("by", 1)
        await self.state.increment(group, key, by, version=_version(body))
        return await self._written(group, key)

    async def update(self, request: Request) -> Response:
        body = await _body(request)
        group, key = _name(body, "group"), _name(body, "key")
        operations = body.get("ops")
        if isinstance(operations, str):  # the form's text, parsed exactly
            operations = parse_json("the ops", operations)
        if not isinstance(operations, list):
            raise InvalidInput(f"ops must be a list of update ops, not {brief(operations)}")
        await self.state.update(group, key, operations, version=_version(body))
        return await self._written(group, key)

    async def ttl(self, request: Request) -> Response:
        body = await _body(request)
        group, key = _name(body, "group"), _name(body, "key")
        seconds = body.get("ttl")
        if seconds is None:
            changed = await self.state.persist(group, key)
        else:
            changed = await self.state.expire(group, key, seconds)
        current = await self._current(group, key)
        if current is None:
            raise NotFound(f"no item {key!r} in group {group!r}")
        return json_response({"changed": changed, "item": current})

    async def clear(self, request: Request) -> Response:
        body = await _body(request)
        group = _name(body, "group")
        if body.get("confirm") != group:
            raise InvalidInput("to clear a group, type its name exactly as confirmation")
        return json_response({"removed": await self.state.clear(group)})

    async def metrics(self, request: Request) -> Response:
        found, _ = await self.state.stats()
        return json_response(
            {
                "groups": [
                    {"group": g.group, "items": g.items, "with_ttl": g.with_ttl} for g in found
                ],
                "rate": {
                    "live": self.hub is not None,
                    "seconds": [] if self.hub is None else self.hub.rate(),
                },
                "now": time.time(),
            }
        )

    async def expiries(self, request: Request) -> Response:
        group = _required(request, "group")
        counts = [0] * (len(BUCKETS) + 1)
        without, scanned, cursor = 0, 0, None
        now = time.time()
        while scanned < EXPIRY_SCAN:
            page = await self.state.query(
                group, None, limit=min(500, EXPIRY_SCAN - scanned), cursor=cursor
            )
            for item in page.items:
                if item.expires_at is None:
                    without += 1
                    continue
                left = item.expires_at - now
                counts[next((i for i, (s, _) in enumerate(BUCKETS) if left < s), len(BUCKETS))] += 1
            scanned += len(page.items)
            cursor = page.cursor
            if cursor is None:
                break
        labels = [label for _, label in BUCKETS] + ["> 24 h"]
        return json_response(
            {
                "buckets": [
                    {"label": lb, "count": n} for lb, n in zip(labels, counts, strict=True)
                ],
                "without_ttl": without,
                "scanned": scanned,
                "complete": cursor is None,
            }
        )

    async def conflict(self, exc: VersionConflict) -> Response:
        """409, with the item as it is now (None: gone) for the side-by-side view."""
        group, key = exc.conflicts[0][0], exc.conflicts[0][1]
        try:
            current = await self._current(group, key)
        except StateError:
            current = None
        return error_response(exc, current=current)
