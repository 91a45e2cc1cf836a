"""The inspector's Starlette application: the API's routes, the live stream, the page.

The page is one HTML file and its static modules (``static/``, shipped in the wheel); every
page route (``/``, ``/groups/<g>``, ``/groups/<g>/items/<k>``) serves the same file and the
page routes itself, so a bookmark opens where it was. A strict Content-Security-Policy lets
the page load nothing but its own files and talk to nothing but this server: a value that
looks like markup can do nothing even if a bug ever put it into the DOM as such.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from ..async_state import AsyncState
from ..errors import StateError, VersionConflict
from .api import Api, error_response, json_response
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
        try:
            response: Response = await getattr(api, name)(request)
            return response
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


async def _not_found(request: Request) -> Response:
    return json_response(
        {"error": {"type": "NotFound", "message": f"no API route {request.url.path}"}}, 404
    )


class Headers:
    """Adds `SECURITY_HEADERS` to every response (a pure ASGI wrapper: streams untouched)."""

    def __init__(self, app: Any) -> None:
        self.app = app
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
        stream = polled() if hub is None else hub.stream()
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
    app = Starlette(routes=routes, lifespan=lifespan)
    return Headers(Guard(app, token=token))
