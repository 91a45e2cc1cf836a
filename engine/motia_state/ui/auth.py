"""Who may talk to the inspector, checked before any route runs (a pure ASGI middleware, so
the live stream is not buffered).

The inspector can change and delete state, so three doors are closed:

* **Other machines.** It listens on loopback unless told otherwise; on any other address a
  token is required (`cli.ui` makes one when none is given). The token arrives once in the
  URL printed at start (``/?token=...``): the answer sets an HttpOnly, SameSite=Strict cookie
  and redirects to the same page without it, so it does not stay in the address bar or the
  history. API clients send ``Authorization: Bearer <token>``. Compared in constant time;
  never logged (uvicorn's access log is off).
* **Web pages on this machine** (the browser's other tabs). A page elsewhere can make the
  browser send a request here; every write must carry ``X-Motia-State: 1`` and a JSON
  body, which a cross-site form cannot send and a cross-site ``fetch`` cannot without a
  preflight this server never approves, and an ``Origin`` other than this server's is
  refused.
* **DNS rebinding** (a hostile name resolving to 127.0.0.1). On loopback without a token,
  only loopback names are accepted in ``Host``.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl, urlencode

from ..jsontext import dumps

COOKIE = "motia_state_token"
HEADER = "x-motia-state"
MIN_TOKEN = 16  # characters: a shorter token is refused at start
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the inspector to this machine."""
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    return secrets.token_urlsafe(24)


def check_token(token: str) -> str:
    """A token given on the command line, refused when it guards nothing."""
    if len(token) < MIN_TOKEN or token != token.strip():
        raise ValueError(
            f"the token must be at least {MIN_TOKEN} characters, without surrounding spaces"
        )
    return token


class Guard:
    """The middleware: ``token`` None means loopback without a token."""

    def __init__(self, app: ASGIApp, *, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        refusal = self._refusal(scope, headers, host)
        if refusal is not None:
            status, kind, message = refusal
            await _error(scope, send, status, kind, message)
            return
        if self.token is not None and scope["method"] == "GET":
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
            if any(name == "token" for name, _ in query):
                await _enter(scope, send, self.token, query)
                return
        await self.app(scope, receive, send)

    def _refusal(
        self, scope: Scope, headers: dict[str, str], host: str
    ) -> tuple[int, str, str] | None:
        if self.token is None and _host_name(host) not in LOOPBACK_NAMES:
            return 403, "Forbidden", "this inspector answers to loopback names only"
        if self.token is not None and not self._authenticated(scope, headers):
            return (
                401,
                "Unauthorized",
                "this inspector needs its token: open the URL it printed at start",
            )
        if scope["method"] not in SAFE_METHODS:
            if headers.get(HEADER) != "1" or not headers.get("content-type", "").startswith(
                "application/json"
            ):
                return 403, "Forbidden", "a write needs X-Motia-State: 1 and a JSON body"
            origin = headers.get("origin")
            if origin is not None and origin.split("://", 1)[-1] != host:
                return 403, "Forbidden", "a write from another origin is refused"
        return None

    def _authenticated(self, scope: Scope, headers: dict[str, str]) -> bool:
        assert self.token is not None
        given = [v for k, v in _cookies(headers.get("cookie", "")) if k == COOKIE]
        bearer = headers.get("authorization", "")
        if bearer[:7].lower() == "bearer ":
            given.append(bearer[7:].strip())
        if scope["method"] == "GET":  # the first visit: /?token=... (checked, then a cookie)
            query = parse_qsl(scope.get("query_string", b"").decode("latin-1"))
            given += [v for k, v in query if k == "token"]
        expected = self.token.encode()
        return any(hmac.compare_digest(v.encode(), expected) for v in given)


def _host_name(host: str) -> str:
    """``Host`` without its port (``[::1]:7777`` -> ``[::1]``)."""
    if host.startswith("["):
        return host[: host.find("]") + 1]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def _cookies(header: str) -> list[tuple[str, str]]:
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header)
    except Exception:  # a malformed cookie header authenticates nothing
        return []
    return [(name, morsel.value) for name, morsel in jar.items()]


async def _enter(scope: Scope, send: Send, token: str, query: list[tuple[str, str]]) -> None:
    """The first visit: the token becomes a cookie, and the page reloads without it."""
    rest = urlencode([(k, v) for k, v in query if k != "token"])
    location = scope.get("raw_path", scope["path"].encode()).decode("latin-1")
    # a path on this server: "//host/" would send the browser to another one
    location = "/" + location.split("?", 1)[0].lstrip("/") + (f"?{rest}" if rest else "")
    cookie = f"{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
    await send(
        {
            "type": "http.response.start",
            "status": 303,
            "headers": [
                (b"location", location.encode("latin-1")),
                (b"set-cookie", cookie.encode("latin-1")),
                (b"cache-control", b"no-store"),
                (b"referrer-policy", b"no-referrer"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})


async def _error(scope: Scope, send: Send, status: int, kind: str, message: str) -> None:
    if scope["path"].startswith("/api/"):
        body = dumps({"error": {"type": kind, "message": message}}).encode()
        media = b"application/json"
    else:
        body = (
            f"<!doctype html><meta charset=utf-8><title>motia-state ui</title><p>{message}.</p>"
        ).encode()
        media = b"text/html; charset=utf-8"
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", media), (b"cache-control", b"no-store")],
        }
    )
    await send({"type": "http.response.body", "body": body})
