"""The state inspector: ``motia-state ui``, a web page over any backend (extra ``ui``).

`auth` decides who may talk to it, `api` is the JSON API under ``/api/`` (the page's and a
script's), `live` streams the change feed to open pages, `app` puts them together with the
page in ``static/``. `serve` runs it with uvicorn on a socket bound before the address is
printed, so the URL shown is one that already answers.
"""

from __future__ import annotations

import contextlib
import socket
import webbrowser
from collections.abc import Callable
from typing import Any

from .auth import check_token, is_loopback, new_token


class Refused(ValueError):
    """The inspector will not start so (a non-loopback address without a usable token)."""


def plan_token(host: str, token: str | None) -> tuple[str | None, bool]:
    """The token in force and whether it was made here (to print it): loopback needs none,
    any other address one of at least 16 characters, made when not given."""
    if token is not None:
        try:
            return check_token(token), False
        except ValueError as exc:
            raise Refused(str(exc)) from None
    if is_loopback(host):
        return None, False
    return new_token(), True


def bind(host: str, port: int) -> socket.socket:
    """A listening socket (before uvicorn starts, so the printed URL already answers)."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # uvicorn sets no TCP_NODELAY on a socket it is handed; accepted connections inherit it
    # from here, or a response written in two parts waits 40 ms for a delayed ACK
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((address, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def page_url(sock: socket.socket, token: str | None, made: bool) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    query = f"?token={token}" if token is not None and made else ""
    return f"http://{shown}:{port}/{query}"


def serve(
    url: str | None,
    options: dict[str, Any],
    *,
    host: str,
    port: int,
    token: str | None,
    open_browser: bool,
    announce: Callable[[str], None],
) -> None:
    """Run the inspector until interrupted (the caller checked the arguments with
    `plan_token` first and hands over the token in force)."""
    import uvicorn

    from .app import build

    in_force, made = plan_token(host, token)
    sock = bind(host, port)
    address = page_url(sock, in_force, made)
    announce(address)
    if open_browser:
        webbrowser.open(address)
    app = build(url, options, token=in_force)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            app.end_streams()  # else open pages hold the shutdown until its timeout
            await super().shutdown(sockets)

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,  # URLs may carry the token on a first visit
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    # Ctrl-C: uvicorn shuts down, then raises it again; the shutdown was the answer
    with contextlib.suppress(KeyboardInterrupt):
        Server(config).run(sockets=[sock])
