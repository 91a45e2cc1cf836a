"""The outbox on the servers that keep the feed: the event record as the stream holds it, the
Cluster's slot rule, ACL refusals, retention, trace scopes, and the backends without a feed.

The behaviour every feed-keeping backend owes (atomicity, emit=, idempotency keys, consumer
groups, topics, order) is in the exported contract suite (motia_state/testing/contract/feed.py),
which tests/test_contract.py runs on every backend, sync and async.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

import msgpack
import pytest
import redis

from motia_state import (
    BackendUnavailable,
    InvalidInput,
    ModelValidationError,
    Op,
    PermissionDenied,
    Record,
    State,
    StateAdapter,
    Unsupported,
    VersionConflict,
    register_adapter,
    unregister_adapter,
)
from motia_state.layout import KeyLayout, key_slot
from motia_state.ops import Emit

from .conftest import Opener, Servers, Target

REDIS = pytest.mark.parametrize("target", ["embedded", "redis", "cluster"], indirect=True)
ELSEWHERE = pytest.mark.parametrize("target", ["memory", "file", "sqlite"], indirect=True)


def _records(target: Target, group: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    """Every entry of the stream ``group`` records to that names ``group``."""
    with target.raw() as r:
        entries = r.xrange(target.layout().changes(group))
    return [(i, f) for i, f in entries if f[b"group"] == group.encode()]


@REDIS
@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_the_event_record_on_the_stream(open_state: Opener, target: Target, codec: str) -> None:
    state = open_state(codec=codec)  # record_values off: the event's data is stored all the same
    data = {"id": "o-1", "lines": [1, 2.5, None]}
    with state.transaction() as tx:
        tx.set("orders", "o-1", {"total": 3})
        tx.emit("order.created", data)
    (_, change), (entry_id, event) = _records(target, "orders")
    assert change[b"op"] == b"set"
    assert b"value" not in change
    assert tx.results is not None
    assert entry_id.decode() == tx.results[1]
    encoded = msgpack.packb(data) if codec == "msgpack" else b'{"id":"o-1","lines":[1,2.5,null]}'
    assert event == {
        b"op": b"emit",
        b"group": b"orders",
        b"key": b"order.created",
        b"version": b"0",
        b"prev": b"0",
        b"data": encoded,
    }


@REDIS
def test_an_emit_after_a_refused_op_leaves_the_stream_as_it_was(
    open_state: Opener, target: Target
) -> None:
    state = open_state()
    state.set("orders", "o-1", 1)
    before = _records(target, "orders")
    with pytest.raises(VersionConflict), state.transaction() as tx:  # noqa: PT012
        tx.emit("order.paid", 1)
        tx.set("orders", "o-1", 2, version=5)
        tx.emit("order.paid", 2)
    assert _records(target, "orders") == before


@pytest.mark.parametrize("target", ["cluster"], indirect=True)
def test_on_cluster_an_event_shares_the_slot_of_its_transaction(
    open_state: Opener, target: Target
) -> None:
    state = open_state()
    layout = target.layout()
    assert key_slot(layout.data("orders")) != key_slot(layout.data("mail"))
    with pytest.raises(InvalidInput, match="hash slots"), state.transaction() as tx:  # noqa: PT012
        tx.set("orders", "o-1", 1)
        tx.emit("order.created", 1, group="mail")
    with pytest.raises(InvalidInput, match="hash slots"), state.transaction() as tx:  # noqa: PT012
        tx.emit("a", 1, group="orders")
        tx.emit("b", 1, group="mail")
    assert state.get("orders", "o-1") is None
    with target.raw() as r:
        assert r.exists(layout.changes("orders"), layout.changes("mail")) == 0
    # one slot ({o} tags both groups): the event lives in its group's own stream
    with state.transaction() as tx:
        tx.set("{o}orders", "o-1", 1)
        tx.emit("order.created", 1, group="{o}mail")
    assert [f[b"op"] for _, f in _records(target, "{o}orders")] == [b"set"]
    assert [f[b"key"] for _, f in _records(target, "{o}mail")] == [b"order.created"]


@dataclass
class Order:
    id: str
    total: int


@REDIS
def test_a_typed_view_emits_as_the_untyped_one(open_state: Opener) -> None:
    orders = open_state().group("orders", model=Order)
    with orders.watch(block=0.3, events=True) as watch:
        assert orders.set("o-1", Order("o-1", 3), emit=("order.created", {"id": "o-1"})) == 1
        assert orders.update("o-1", [Op.increment("total", 2)], emit=("paid", 5)) == Order("o-1", 5)
        assert orders.delete("o-1", emit=("order.deleted", None)) == Order("o-1", 5)
        with pytest.raises(ModelValidationError):  # refused before it is sent: no event
            orders.set("o-2", {"id": "o-2"}, emit=("order.created", {"id": "o-2"}))
        found = [(c.op, c.key or c.topic) for c in _drain(watch)]
    assert found == [
        ("set", "o-1"),
        ("emit", "order.created"),
        ("update", "o-1"),
        ("emit", "paid"),
        ("delete", "o-1"),
        ("emit", "order.deleted"),
    ]


@REDIS
def test_an_emit_slides_no_deadline_and_follows_a_recorded_expiry(
    open_state: Opener, target: Target
) -> None:
    state = open_state(cleanup_interval=None)
    layout = target.layout()
    state.set("trace", "k", 1)
    assert state.expire_group("trace", 600)
    with target.raw() as r:
        deadline = r.pexpiretime(layout.data("trace"))
        with state.transaction() as tx:
            tx.emit("step.done", 1, group="trace")
        assert r.pexpiretime(layout.data("trace")) == deadline  # an event is no write
        # the deadline passes before the server removed the group: the next call that touches
        # the group records its expiry, and an event it emits comes after that record
        past = int(time.time() * 1000) - 60_000
        r.set(layout.deadline("trace"), past)
        if layout.deadlines() is not None:
            r.zadd(layout.deadlines() or b"", {"trace": past})
    with state.transaction() as tx:
        tx.emit("step.after", 2, group="trace")
    ops = [(f[b"op"], f[b"key"]) for _, f in _records(target, "trace")]
    assert ops[-2:] == [(b"expire_group", b""), (b"emit", b"step.after")]
    assert state.get("trace", "k") is None


@REDIS
def test_an_event_trimmed_before_it_was_read_is_lost(open_state: Opener) -> None:
    """Events obey the feed's retention: what a consumer has not read when the stream is
    trimmed past it is gone (size changes_maxlen for the longest a consumer may lag)."""
    state = open_state(changes_maxlen=10)
    # (groups named: on Cluster the consumer group is made on its stream from here on)
    mailer = {"groups": "orders", "consumer": ("mailer", "m1"), "block": 0.2}
    with state.events("order.created", **mailer):
        pass  # the consumer group exists from here on
    state.set("orders", "o-1", 1, emit=("order.created", {"id": 1}))
    state.set_many("orders", {f"k{i}": i for i in range(1000)})  # trimmed to about 10
    state.set("orders", "o-2", 2, emit=("order.created", {"id": 2}))
    with state.events("order.created", **mailer) as events:
        got = [event.data for event in _drain(events)]
    assert got == [{"id": 2}]


def _drain(watch: Any) -> Iterator[Any]:
    for found in watch:
        if found is None:
            return
        yield found


def _url_for(url: str, name: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    return f"{scheme}://{name}:{password}@{rest}"


@pytest.fixture
def limited(servers: Servers) -> Iterator[tuple[State, redis.Redis, KeyLayout]]:
    """A State as a user who may run everything the engine needs but XADD, and an admin."""
    url = servers.redis()[0]
    admin = redis.Redis.from_url(url)
    name, root = f"outbox-{uuid.uuid4().hex[:8]}", f"t{uuid.uuid4().hex[:8]}"
    prefix = f"{root}:"
    layout = KeyLayout(prefix)
    rule = (  # the README's rule for the engine's user, less XADD
        f"~{root}:* ~{root}#* &{root}#writes* +@read +@write +@scripting +@pubsub "
        "+@connection +time -@dangerous -xadd"
    )
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw-o", *rule.split())
    try:
        with State.from_url(_url_for(url, name, "pw-o"), prefix=prefix) as state:
            yield state, admin, layout
    finally:
        admin.acl_deluser(name)
        for key in [*admin.scan_iter(match=f"{root}:*"), *admin.scan_iter(match=f"{root}#*")]:
            admin.delete(key)
        admin.close()


def test_a_user_who_may_not_append_to_the_feed_writes_nothing(
    limited: tuple[State, redis.Redis, KeyLayout],
) -> None:
    state, admin, layout = limited
    calls = [
        lambda: state.set("orders", "o-1", 1, emit=("order.created", 1)),
        lambda: state.delete("orders", "o-1", emit=("order.deleted", 1)),
    ]
    for call in calls:
        with pytest.raises(PermissionDenied, match="xadd") as refused:
            call()
        assert "pw-o" not in str(refused.value)
    with pytest.raises(PermissionDenied, match="xadd"), state.transaction() as tx:
        tx.emit("alone", 1, group="orders")
    assert admin.exists(layout.data("orders"), layout.versions("orders")) == 0
    assert admin.exists(layout.changes("")) == 0


@ELSEWHERE
def test_without_the_feed_an_emit_is_refused_before_anything_is_written(
    open_state: Opener,
) -> None:
    state = open_state()
    state.set("orders", "kept", 1)
    calls = [
        lambda: state.set("orders", "o-1", 1, emit=("order.created", 1)),
        lambda: state.increment("orders", "n", emit=("counted", 1)),
        lambda: state.update("orders", "u", [Op.set("a", 1)], emit=("updated", 1)),
        lambda: state.delete("orders", "kept", emit=("order.deleted", 1)),
    ]
    for call in calls:
        with pytest.raises(Unsupported, match="'feed'"):
            call()
    with pytest.raises(Unsupported, match=r"tx\.emit"), state.transaction() as tx:  # noqa: PT012
        tx.set("orders", "o-2", 2)
        tx.delete("orders", "kept")
        tx.emit("order.created", 2)
    assert state.items("orders") == {"kept": 1}
    assert state.get_item("orders", "kept").version == 1


class Outboxed(StateAdapter):
    """A store that keeps its own feed: its `atomic` block is all or nothing (a snapshot put
    back on failure) and covers the events `feed` records, as the outbox needs."""

    capabilities: ClassVar[frozenset[str]] = frozenset({"versions", "transactions", "feed"})

    def __init__(self) -> None:
        self.groups: dict[str, dict[str, Record]] = {}
        self.events: list[tuple[str, str, bytes]] = []
        self.answer: Any = None  # what feed() returns instead of the event's id, if set

    def get(self, group: str, key: str) -> Record | None:
        return self.groups.get(group, {}).get(key)

    def set(self, group: str, key: str, record: Record) -> None:
        self.groups.setdefault(group, {})[key] = record

    def delete(self, group: str, key: str) -> None:
        self.groups.get(group, {}).pop(key, None)

    def clear(self, group: str) -> None:
        self.groups.pop(group, None)

    def cleanup(self, now_ms: int) -> int:
        return 0

    def items(self, group: str) -> list[tuple[str, Record]]:
        return list(self.groups.get(group, {}).items())

    def list_groups(self) -> list[str]:
        return [g for g, items in self.groups.items() if items]

    def meta(self, group: str) -> Any:
        from motia_state.adapters import GroupMeta

        return GroupMeta()

    def set_meta(self, group: str, meta: Any) -> None:
        pass

    @contextmanager
    def atomic(self) -> Iterator[None]:
        groups = {g: dict(items) for g, items in self.groups.items()}
        events = list(self.events)
        try:
            yield
        except BaseException:
            self.groups, self.events = groups, events
            raise

    def session(self) -> Any:
        raise Unsupported("no watch in this test")

    def feed(self, request: Any) -> Any:
        assert isinstance(request, Emit)
        self.events.append((request.group, request.topic, request.data))
        return self.answer if self.answer is not None else f"{len(self.events)}-0"


@pytest.fixture
def outboxed() -> Iterator[Outboxed]:
    adapter = Outboxed()
    register_adapter("outbox-test", lambda url: adapter)
    yield adapter
    unregister_adapter("outbox-test")


def test_an_adapter_with_a_feed_records_the_event_in_the_atomic_block(outboxed: Outboxed) -> None:
    with State.from_url("outbox-test://") as state:
        assert state.set("orders", "o-1", {"total": 3}, emit=("order.created", {"id": 1})) == 1
        assert outboxed.events == [("orders", "order.created", b'{"id":1}')]
        with pytest.raises(VersionConflict):
            state.set("orders", "o-1", 2, version=7, emit=("order.paid", 1))
        outboxed.answer = ""  # a feed that records nothing it can name: refused, rolled back
        with pytest.raises(BackendUnavailable, match="not an event id"):
            state.set("orders", "o-2", 2, emit=("order.created", {"id": 2}))
        assert state.items("orders") == {"o-1": {"total": 3}}
        assert outboxed.events == [("orders", "order.created", b'{"id":1}')]
