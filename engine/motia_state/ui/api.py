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
change what it did not show.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from importlib import metadata
from typing import Any, ClassVar

from starlette.requests import Request
from starlette.responses import Response

from ..async_state import AsyncState
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
from ..jsontext import Unprintable, dumps, parse_json
from ..ops import Item
from .live import Hub

PAGE_LIMIT = 500  # items per page, at most
SEARCH_PAGES = 20  # server pages a key search reads per request before answering
PREVIEW = 120  # characters of a row's value preview
EXPIRY_SCAN = 5_000  # items looked at for the expiries-ahead picture
MAX_BODY = 64 * 1024 * 1024  # bytes of a request body
POLL_MS = 2_000
BUCKETS = [(60, "< 1 min"), (300, "1-5 min"), (3_600, "5-60 min"), (86_400, "1-24 h")]


class NotFound(StateError):
    """The item (or the route) is not there."""


class TooLarge(InvalidInput):
    """A request body past `MAX_BODY`."""


STATUS: list[tuple[type[BaseException], int]] = [
    (VersionConflict, 409),
    (NotFound, 404),
    (TooLarge, 413),
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
    exact = [True]

    def inexact(obj: Any) -> Any:  # bytes, sets: shown, but not what JSON would read back
        exact[0] = False
        return obj.decode("utf-8", "replace") if isinstance(obj, bytes) else repr(obj)

    try:
        raw = json.dumps(value, ensure_ascii=False, allow_nan=False, indent=2, default=inexact)
        raw = raw.encode("utf-8", "backslashreplace").decode("utf-8")
    except (ValueError, RecursionError):
        try:
            return Shown(None, dumps(value, strict=False, indent=2), False)
        except Unprintable as exc:
            return Shown(None, f"({exc})", False)
    return Shown(value if exact[0] else None, raw, exact[0])


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
    try:
        preview = dumps(item.value, strict=False)
    except Unprintable as exc:
        preview = f"({exc})"
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


def _text(request: Request, name: str, *, default: str | None = None) -> str:
    value = request.query_params.get(name, default)
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


async def _body(request: Request) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise TooLarge(f"the request body is larger than {MAX_BODY} bytes")
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise TooLarge(f"the request body is larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise InvalidInput("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InvalidInput("the request body must be a JSON object")
    return body


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
        search = request.query_params.get("search", "").casefold()
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
        group = _text(request, "group")
        limit = _int(request.query_params.get("limit"), "limit", 50)
        assert limit is not None
        if not 1 <= limit <= PAGE_LIMIT:
            raise InvalidInput(f"limit must be from 1 to {PAGE_LIMIT}, not {limit}")
        where_text = request.query_params.get("where") or None
        where = None if where_text is None else parse_json("where", where_text)
        order_by = request.query_params.get("order_by") or None
        descending = request.query_params.get("desc", "0") in ("1", "true")
        needle = request.query_params.get("search", "").casefold()
        cursor = request.query_params.get("cursor") or None
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

    async def _current(self, group: str, key: str) -> dict[str, Any] | None:
        item = await self.state.get_item(group, key)
        return None if item is None else item_json(item, time.time())

    async def item(self, request: Request) -> Response:
        group, key = _text(request, "group"), _text(request, "key")
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
        await self.state.set(group, key, value, version=_version(body), ttl=ttl)
        return await self._written(group, key)

    async def delete(self, request: Request) -> Response:
        group, key = _text(request, "group"), _text(request, "key")
        version = _int(request.query_params.get("version"), "version")
        if version is None:
            raise InvalidInput("a delete needs the version it removes (version=N)")
        await self.state.delete(group, key, version=version)
        return json_response({"deleted": True})

    async def history(self, request: Request) -> Response:
        group, key = _text(request, "group"), _text(request, "key")
        limit = _int(request.query_params.get("limit"), "limit", 20)
        assert limit is not None
        if not 1 <= limit <= PAGE_LIMIT:
            raise InvalidInput(f"limit must be from 1 to {PAGE_LIMIT}, not {limit}")
        before = request.query_params.get("before") or None
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
        group = _text(request, "group")
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
