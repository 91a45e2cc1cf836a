"""The inspector's Starlette application: the API's routes, the live stream, the page.

The page is one HTML file and its static modules (``static/``, shipped in the wheel); every
page route (``/``, ``/groups/<g>``, ``/groups/<g>/items/<k>``) serves the same file and the
page routes itself, so a bookmark opens where it was. A strict Content-Security-Policy lets
the page load nothing but its own files and talk to nothing but this server: a value that
looks like markup can do nothing even if a bug ever put it into the DOM as such.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..async_state import AsyncState
from ..errors import BackendUnavailable, StateError, VersionConflict
from .api import CALL_TIMEOUT_S, Api, MethodNotAllowed, error_response, json_response, read_body
from .auth import Guard
from .live import Hub, polled

log = logging.getLogger("motia_state")

STATIC = Path(__file__).with_name("static")
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}


def _route(holder: dict[str, Any], method: str, path: str, name: str) -> Route:
    """One API route: the handler of the server's `Api`, its errors as JSON."""

    async def handle(request: Request) -> Response:
        api: Api = holder["api"]
        writes = request.method in WRITES
        try:
            if writes:  # read first: its own bounds, apart from the state's answer
                request.state.body = await read_body(request)
            try:
                response: Response = await asyncio.wait_for(
                    getattr(api, name)(request), CALL_TIMEOUT_S
                )
            except asyncio.TimeoutError:
                raise BackendUnavailable(
                    f"{api.shown_url} did not answer within {CALL_TIMEOUT_S:g} s (stopped, "
                    "or overloaded)"
                    + ("; the change may or may not have been made: reload" if writes else "")
                ) from None
            return response
        except asyncio.CancelledError:
            if not holder["closing"].is_set():
                raise
            # Ctrl-C with a call still waiting on the state (a stopped server): uvicorn
            # cancels it once its graceful timeout passes; the page is answered, no stack
            return error_response(BackendUnavailable("the inspector is shutting down"))
        except VersionConflict as exc:
            return await api.conflict(exc)
        except StateError as exc:
            return error_response(exc)
        except Exception as exc:  # a bug: logged with its stack, the page gets a message
            log.exception("motia-state ui: %s %s failed", request.method, request.url.path)
            return error_response(exc)

    return Route(path, handle, methods=[method], name=name)


async def _page(request: Request) -> Response:
    return FileResponse(STATIC / "index.html", headers={"cache-control": "no-store"})


WRITES = frozenset({"PUT", "POST", "DELETE", "PATCH"})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (a method a route does not take): JSON under /api/."""
    assert isinstance(exc, HTTPException)
    if not request.url.path.startswith("/api/"):
        return PlainTextResponse(exc.detail, exc.status_code, headers=exc.headers)
    if exc.status_code == 405:
        refusal: StateError = MethodNotAllowed(f"{request.url.path} does not take {request.method}")
        return error_response(refusal)
    body = {"error": {"type": "HTTPError", "message": str(exc.detail)}}
    return json_response(body, exc.status_code)


async def _not_found(request: Request) -> Response:
    return json_response(
        {"error": {"type": "NotFound", "message": f"no API route {request.url.path}"}}, 404
    )


class Headers:
    """Adds `SECURITY_HEADERS` to every response (a pure ASGI wrapper: streams untouched).
    ``end_streams`` ends every page's live stream (the server is shutting down: the streams
    would otherwise hold it until uvicorn's graceful timeout cancels them)."""

    def __init__(self, app: Any, end_streams: Callable[[], None] = lambda: None) -> None:
        self.app = app
        self.end_streams = end_streams
        self.extra = [(k.encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *self.extra]
            await send(message)

        await self.app(scope, receive, sending)


def build(url: str | None, options: dict[str, Any], *, token: str | None) -> Any:
    """The ASGI application; the state is opened when the server starts (its event loop)."""
    holder: dict[str, Any] = {}

    async def live(request: Request) -> Response:
        hub: Hub | None = holder["hub"]
        stream = polled(holder["closing"]) if hub is None else hub.stream()
        return StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        state = AsyncState.from_url(url, **options)
        hub = Hub(state) if "feed" in state.capabilities else None
        holder["hub"] = hub
        holder["closing"] = asyncio.Event()
        holder["api"] = Api(state, hub, state._backend.describe, bool(options.get("record_values")))
        if hub is not None:
            hub.start()
        try:
            yield
        finally:
            if hub is not None:
                await hub.stop()
            await state.aclose()

    routes: list[BaseRoute] = [
        *(_route(holder, *route) for route in Api.ROUTES),
        Route("/api/live", live, methods=["GET"]),
        Route("/api/{rest:path}", _not_found),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
        Route("/", _page, methods=["GET"]),
        Route("/groups/{rest:path}", _page, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes, lifespan=lifespan, exception_handlers={HTTPException: _http_error}
    )

    def end_streams() -> None:
        if "closing" in holder:
            holder["closing"].set()
        if holder.get("hub") is not None:
            holder["hub"].end()

    return Headers(Guard(app, token=token), end_streams)
