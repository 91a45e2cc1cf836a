"""The keyspace bridge: changes made outside the engine become ``external`` feed records.

Somebody runs ``redis-cli HSET motia:state:orders o1 ...``, a hash gets an EXPIRE
by hand, the server evicts a group under memory pressure: none of that passes
through the engine's scripts, so none of it is in the feed. The bridge listens
to Redis keyspace notifications for the data hashes (``__keyspace@<db>__:<prefix>*``)
and appends one ``external`` record per event, naming the group and the Redis
event (a notification never names the hash field, so neither can the record).

Engine writes are never reported twice: every write script publishes ``1`` on
the marker channel before it touches anything and ``0`` when it is done (see
``lua/include/common.lua``). Pub/sub delivers the markers and the keyspace
notifications on the bridge's one connection in execution order, and a script
runs atomically, so every notification between a ``1`` and its ``0`` is the
engine's own, already recorded by the script itself. ``expired`` and ``evicted``
are the server's doing and are always reported.

On start the bridge turns on the notification classes it needs (CONFIG SET
notify-keyspace-events, adding ``Khgxe`` to what is set) and then proves they
arrive with a probe (an HSET and DEL of its own key); where CONFIG is refused,
the probe tells whether the server's own configuration has them, and if not,
the bridge stops with a message saying what to set.

On Redis Cluster notifications stay on the node that emits them, so the bridge runs
one listener per master, each on its own connection with its own notion of "inside a
script" (a node runs one script at a time). The markers are sharded there: a script
may only publish to a channel of its own slot, so there is one marker channel per slot
(``layout.marker_channel(slot)``), SPUBLISHed by the script and SSUBSCRIBEd by the
listener of the slot's master. When the slot map changes (a failover, a reshard) the
bridge listens again on the new masters, with a gap record.

Keyspace notifications are pub/sub: fire and forget. Whatever happens while the
bridge is not subscribed (a restart, a dropped connection, a failover) is lost
to it. The bridge cannot replay it, so it says so: each time it starts
listening, it first appends an ``external`` record with event ``gap`` and no
group, and consumers that care re-read what they depend on. Only one bridge
records at a time (a lease renewed every few seconds); others wait as standbys
and take over, with a ``gap`` record, when the lease lapses.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis
from redis.exceptions import (
    ClusterDownError,
    MovedError,
    RedisClusterException,
    ResponseError,
    TryAgainError,
)

from . import connect, ops
from .backends.base import Backend, Servers, Shard
from .backends.redis import wire
from .errors import BackendUnavailable, Unsupported
from .layout import escape_glob

log = logging.getLogger("motia_state")

LEASE_S = 10.0
RETRY_S = 1.0
# Notification classes the bridge needs: K keyspace channels, h hash commands, g generic
# commands (DEL, EXPIRE, RENAME, ...), x expired, e evicted. 'A' stands for all classes.
NEEDED_FLAGS = "Khgxe"
PROBE_S = 2.0  # how long the bridge waits for its own probe's notifications
ALWAYS_EXTERNAL = frozenset({"expired", "evicted"})


def missing_flags(current: str) -> str:
    """The notification flags ``current`` lacks for the bridge ('' when none)."""
    have = set(current)
    if "A" in have:
        have |= set("g$lshzxetd")
    return "".join(flag for flag in NEEDED_FLAGS if flag not in have)


def enable_notifications(client: redis.Redis) -> tuple[str, str]:
    """Turn on the keyspace notifications the bridge needs, where CONFIG is allowed.

    Returns (flags now set, '') or, when the server refuses CONFIG (managed services,
    ACLs, a renamed command), ('', why): the flags may still be on from the server's
    configuration, which the bridge then checks with a probe before it trusts them.
    """
    try:
        reply: Any = client.config_get("notify-keyspace-events")
        raw = reply.get("notify-keyspace-events", reply.get(b"notify-keyspace-events", b""))
        current: str = raw.decode() if isinstance(raw, bytes) else str(raw)
    except ResponseError as exc:
        return "", f"CONFIG GET refused: {exc}"
    missing = missing_flags(current)
    if not missing:
        return current, ""
    try:
        client.config_set("notify-keyspace-events", current + missing)
    except ResponseError as exc:
        return "", f"CONFIG SET refused: {exc}; the server has {current!r}"
    return current + missing, ""


@dataclass(frozen=True)
class _Server:
    """One server the bridge listens on: a standalone server, or one Redis Cluster master
    with the marker channels of the slots it serves (keyspace notifications stay on the
    node that emits them, so every master needs a listener of its own)."""

    name: str
    client: redis.Redis
    markers: frozenset[bytes]
    sharded: bool  # markers are shard channels (SSUBSCRIBE, one per slot)
    probe: bytes
    owned: bool  # the bridge made the client: it closes it


class _Restart(Exception):
    """The cluster's slots moved: listen again on the new topology (with a gap record)."""


RETRYABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    BackendUnavailable,
    MovedError,
    ClusterDownError,
    TryAgainError,
    RedisClusterException,
    _Restart,
)


class Bridge:
    """Runs the keyspace bridge for one state: `run` in the foreground, `start` in a thread."""

    def __init__(
        self,
        backend: Backend,
        *,
        lease_s: float = LEASE_S,
        on_record: Callable[[str | None, str], None] | None = None,
        owned: bool = False,
    ) -> None:
        self._backend = backend
        self._session = backend.session()  # Unsupported where there is no feed
        if not isinstance(backend, Servers):
            raise Unsupported(f"{backend.describe} names no servers to listen on")
        self._shards = backend.shards
        self._layout = self._session.layout
        self._plan = self._session.plan
        self.describe: str = backend.describe
        self._lease_s = lease_s
        self._token = uuid.uuid4().hex
        self._on_record = on_record
        self._owned = owned  # close the backend when the bridge stops
        self._stopped = threading.Event()
        self._wake = threading.Event()  # a stop or a listener's failure
        self._io = threading.Lock()  # the session is one connection; listeners share it
        self._thread: threading.Thread | None = None
        self.recorded = 0
        self.listening = threading.Event()
        self.standby = False
        self.flags = ""
        self.last_error = ""  # why the last attempt to listen failed (retried)

    @classmethod
    def from_url(
        cls,
        url: str | None = None,
        *,
        on_record: Callable[[str | None, str], None] | None = None,
        **options: Any,
    ) -> Bridge:
        """A bridge with connections of its own (what `AsyncState.track` and the CLI use);
        ``options`` are those of `State.from_url`."""
        backend, _ = connect.open_sync(url, options)
        try:
            return cls(backend, owned=True, on_record=on_record)
        except BaseException:
            backend.close()
            raise

    def _run(self, op: ops.Request[Any]) -> Any:
        with self._io:
            return self._session.run(self._plan.steps(op))

    def _renew(self) -> bool:
        return bool(self._run(ops.Lease(self._token, round(self._lease_s * 1000))))

    def _record(self, group: str | None, event: str) -> None:
        self._run(ops.External(group, event))
        self.recorded += 1
        if self._on_record is not None:
            self._on_record(group, event)

    def run(self) -> None:
        """Record external changes until `stop`; survives restarts, lost connections and,
        on Cluster, failovers and slot moves."""
        while not self._stopped.is_set():
            try:
                if not self._renew():
                    self.standby = True  # another bridge records; take over if it stops
                    self._stopped.wait(self._lease_s / 3)
                    continue
                self.standby = False
                self._listen()
            except _Restart as exc:
                log.warning("keyspace bridge: %s; listening again", exc)
            except RETRYABLE as exc:
                self.last_error = str(exc)
                log.warning("keyspace bridge: %s; reconnecting in %.0f s", exc, RETRY_S)
                self._stopped.wait(RETRY_S)
        self._session.close()
        if self._owned:
            self._backend.close()

    def _servers(self, shards: list[Shard]) -> list[_Server]:
        layout = self._layout
        return [
            _Server(
                shard.name,
                shard.connect(),
                frozenset(
                    {layout.marker_channel()}
                    if shard.slots is None
                    else {layout.marker_channel(slot) for slot in shard.slots}
                ),
                shard.slots is not None,
                layout.probe() if shard.slots is None else layout.probe(shard.slots[0]),
                shard.owned,
            )
            for shard in shards
        ]

    def _listen(self) -> None:
        topology = self._shards()
        servers = self._servers(topology)
        self._wake.clear()
        done = threading.Event()  # ends this round's listeners
        listeners = [_Listener(self, server, done) for server in servers]
        for listener in listeners:
            listener.start()
        try:
            renew_every = self._lease_s / 3
            renewed = time.monotonic()
            while not self._stopped.is_set():
                self._check(listeners)
                if not self.listening.is_set() and all(x.ready.is_set() for x in listeners):
                    self.flags = listeners[0].flags
                    # every server's events from here on reach us: only now declare the gap
                    self._record(None, "gap")
                    self.listening.set()
                    self.last_error = ""
                if time.monotonic() - renewed >= renew_every:  # also while subscribing
                    if not self._renew():
                        log.warning("keyspace bridge: lease lost to another bridge; standing by")
                        return
                    renewed = time.monotonic()
                    if self._layout.cluster and self._shards() != topology:
                        raise _Restart("the cluster's slots moved")
                self._wake.wait(renew_every if self.listening.is_set() else 0.01)
        finally:
            self.listening.clear()
            done.set()
            for listener in listeners:
                listener.join(timeout=10)
            for server in servers:  # the listeners' own clients
                if server.owned:
                    server.client.close()

    @staticmethod
    def _check(listeners: list[_Listener]) -> None:
        for listener in listeners:
            if listener.failure is not None:
                raise listener.failure

    def start(self, timeout: float = 30.0) -> Bridge:
        """Run in a daemon thread; returns once the bridge listens or stands by for another
        one, and raises why it cannot run (notifications refused, ...)."""
        failure: list[BaseException] = []

        def main() -> None:
            try:
                self.run()
            except Exception as exc:  # raised by start() while it waits, else logged
                failure.append(exc)
                log.error("keyspace bridge stopped: %s", exc)

        self._thread = threading.Thread(target=main, name="motia-state-bridge", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not (self.listening.is_set() or self.standby or failure):
            if not self._thread.is_alive() or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        if failure:
            raise failure[0]
        if not (self.listening.is_set() or self.standby):
            self.stop()
            raise BackendUnavailable(
                f"{self.describe}: the keyspace bridge did not start listening within "
                f"{timeout:g} s" + (f" ({self.last_error})" if self.last_error else "")
            )
        return self

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10)


class _Listener(threading.Thread):
    """Listens on one server: its markers, its keyspace notifications, its probe."""

    def __init__(self, bridge: Bridge, server: _Server, done: threading.Event) -> None:
        super().__init__(name=f"motia-state-bridge {server.name}", daemon=True)
        self._bridge = bridge
        self._server = server
        self._done = done
        self.ready = threading.Event()  # subscribed, and the probe's notifications arrived
        self.failure: BaseException | None = None
        self.flags = ""

    def run(self) -> None:
        try:
            self._listen()
        except BaseException as exc:  # the bridge's thread raises it
            self.failure = exc
            self._bridge._wake.set()

    def _listen(self) -> None:
        server, layout = self._server, self._bridge._layout
        client = server.client
        self.flags, refused = enable_notifications(client)
        db = client.connection_pool.connection_kwargs.get("db", 0)
        head = f"__keyspace@{db}__:".encode()
        pubsub = wire.pubsub(client)
        try:
            subscribe = pubsub.ssubscribe if server.sharded else pubsub.subscribe
            for channel in server.markers:  # one per command: shard channels of one slot each
                subscribe(channel)
            pubsub.subscribe(head + server.probe)
            pubsub.psubscribe(head + escape_glob(layout.prefix) + b"*")
            expected = len(server.markers) + 2
            while expected:
                message = pubsub.get_message(timeout=self._bridge._lease_s)
                if message is None:
                    raise redis.TimeoutError("no subscription confirmation from the server")
                expected -= message["type"] in ("subscribe", "ssubscribe", "psubscribe")
            # A probe proves notifications arrive (hash and generic classes) before the
            # bridge claims to track anything.
            client.hset(server.probe, "token", self._bridge._token)
            client.delete(server.probe)
            self._pump(pubsub, len(head), refused, wire.subscribed_on(pubsub))
        finally:
            pubsub.close()

    def _pump(self, pubsub: Any, head: int, refused: str, connection: object) -> None:
        inside = False  # between an engine script's markers (a server runs one at a time)
        probe_deadline = time.monotonic() + PROBE_S
        probe_events: set[bytes] = set()
        markers = self._server.markers
        while not self._done.is_set():
            if not self.ready.is_set():
                if probe_events >= {b"hset", b"del"}:
                    self.ready.set()
                elif time.monotonic() > probe_deadline:
                    raise Unsupported(
                        "keyspace notifications do not arrive"
                        + (f" and the bridge cannot turn them on ({refused})" if refused else "")
                        + f": set notify-keyspace-events to include '{NEEDED_FLAGS}' in the "
                        "server's configuration (for managed services, in their parameter "
                        "settings) and run the bridge again"
                    )
            message = pubsub.get_message(timeout=0.5)
            if wire.subscribed_on(pubsub) is not connection:
                # redis-py reconnected and subscribed again by itself (a failover, a killed
                # client): what happened meanwhile is lost, so listen again, with a gap
                raise _Restart("the subscription's connection was dropped")
            if message is None:
                continue
            kind = message["type"]
            if kind in ("message", "smessage") and message["channel"] in markers:
                inside = message["data"] == b"1"
            elif kind == "message":  # the probe's keyspace channel
                probe_events.add(message["data"])
            elif kind == "pmessage":
                event = message["data"].decode()
                if inside and event not in ALWAYS_EXTERNAL:
                    continue
                group = self._bridge._layout.group_of(message["channel"][head:])
                self._bridge._record(group, event)
            elif kind == "sunsubscribe":  # the server gave the slot away
                raise _Restart("a slot moved to another node")
