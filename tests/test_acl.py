"""ACL matrix: a user missing any one command the write scripts need never half-applies a write.

Redis does not roll back a script that fails midway, so every write script proves its
permissions before its first write (include/common.lua). Here each command the scripts can
call is removed from the README's documented rule in turn, and every write operation is run
as that user on real Redis 7.0 and Valkey 8.1 servers: the call either raises
`PermissionDenied` and leaves the group's keys and the change feed exactly as they were, or
succeeds and leaves exactly what the same call leaves for a user with the whole rule.
"""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis

from motia_state import PermissionDenied, State, StateError
from motia_state.layout import KeyLayout

from .conftest import Servers

ENGINE_RULE = (
    "~motia:state:* ~motia:state#* &motia:state#writes* +@read +@write +@scripting +@pubsub "
    "+@connection +time -@dangerous"
)
# Every command a write script can call (lua/ and lua/include/).
SCRIPT_COMMANDS = [
    "hset",
    "hdel",
    "hget",
    "hmget",
    "hexists",
    "hlen",
    "hvals",
    "exists",
    "unlink",
    "persist",
    "pexpire",
    "xadd",
    "xtrim",
    "zadd",
    "zrem",
    "zscore",
    "zcount",
    "zrangebyscore",
    "sadd",
    "srem",
    "time",
    "publish",
    # a group that expires whole (lua/include/group.lua)
    "get",
    "set",
    "del",
    "pttl",
    "pexpireat",
]
LAYOUT = KeyLayout()


def _ops() -> dict[str, Callable[[State, str], Any]]:
    def transaction(state: State, g: str) -> None:
        with state.transaction() as tx:
            tx.set(g, "new", {"t": 1})
            tx.increment(g, "n", 2)
            tx.delete(g, "k")

    def keyed_transaction(state: State, g: str) -> None:
        with state.transaction(idempotency_key="tx") as tx:
            tx.set(g, "new", {"t": 1})
            tx.delete(g, "k")

    return {
        "set new": lambda s, g: s.set(g, "new", 1),
        "set existing": lambda s, g: s.set(g, "k", {"v": 2}),
        "set with ttl": lambda s, g: s.set(g, "k", 3, ttl=60),
        "set if version": lambda s, g: s.set(g, "k", 4, version=2),
        "set over expired": lambda s, g: s.set(g, "gone", 5),
        "set ttl item": lambda s, g: s.set(g, "t", 6),
        "set_many": lambda s, g: s.set_many(g, {"k": 1, "gone": 2, "x": 3}, ttl=30),
        "set_many without ttl": lambda s, g: s.set_many(g, {"k": 1, "gone": 2, "x": 3}),
        "set_many of new items": lambda s, g: s.set_many(g, {"n1": 1, "n2": 2}),
        "delete": lambda s, g: s.delete(g, "k"),
        "delete ttl item": lambda s, g: s.delete(g, "t"),
        "delete expired": lambda s, g: s.delete(g, "gone"),
        "delete_many": lambda s, g: s.delete_many(g, ["k", "t", "gone"]),
        "increment": lambda s, g: s.increment(g, "n", 5, ttl=10),
        "update": lambda s, g: s.update(g, "k", [{"type": "set", "path": "a", "value": 1}]),
        "transaction": transaction,
        "expire": lambda s, g: s.expire(g, "k", 60),
        "persist": lambda s, g: s.persist(g, "t"),
        "ttl of expired": lambda s, g: s.ttl(g, "gone"),
        "clear": lambda s, g: s.clear(g),
        "set through a ttl view": lambda s, g: s.group(g, ttl=60).set("k", 7),
        "delete through a ttl view": lambda s, g: s.group(g, ttl=60).delete("k"),
        "set_many through a ttl view": lambda s, g: s.group(g, ttl=60).set_many({"k": 1}),
        "expire_group": lambda s, g: s.expire_group(g, 60),
        "persist_group": lambda s, g: s.persist_group(g),
        # with an idempotency key: the receipted scripts (lua/include/receipt.lua)
        "set with a key": lambda s, g: s.set(g, "k", {"v": 9}, idempotency_key="i"),
        "increment with a key": lambda s, g: s.increment(g, "n", 5, idempotency_key="i"),
        "delete with a key": lambda s, g: s.delete(g, "k", idempotency_key="i"),
        "set_many with a key": lambda s, g: s.set_many(g, {"k": 1, "x": 3}, idempotency_key="i"),
        "transaction with a key": keyed_transaction,
        # the outbox: the event's XADD comes with the transaction's writes, or not at all
        "set with an event": lambda s, g: s.set(g, "k", 8, emit=("order.created", {"k": 8})),
        "increment with an event and a key": lambda s, g: s.increment(
            g, "n", 1, emit=("counted", 1), idempotency_key="e"
        ),
    }


# The kinds of group every op runs on: without expiries (the write scripts then check the
# expiry commands only when the write itself gives an expiry: lua/include/ttl.lua), with item
# expiries, and expiring whole (lua/include/group.lua), its deadline ahead or already passed.
GROUPS = ("plain", "expiring", "trace", "trace past its deadline")


def _prepare(admin: redis.Redis, full: State, group: str, kind: str) -> None:
    """k at version 2, t and gone; unless ``plain``, t has a TTL and gone has already expired
    (its deadline in the past); a ``trace`` expires whole in 10 minutes, or should have."""
    expiring = kind != "plain"
    full.set(group, "k", {"v": 0})
    full.set(group, "k", {"v": 1})
    full.set(group, "t", "ttl", ttl=600 if expiring else None)
    full.set(group, "gone", "old", ttl=600 if expiring else None)
    past = int(time.time() * 1000) - 60_000
    if expiring:
        admin.zadd(LAYOUT.expiries(group), {"gone": past})
    if kind.startswith("trace"):
        full.expire_group(group, 600)
    if kind == "trace past its deadline":  # the server has not removed it yet: a script does
        admin.set(LAYOUT.deadline(group), past)
        admin.zadd(LAYOUT.deadlines() or b"", {group: past})


def _last_record(admin: redis.Redis) -> str:
    """Where the shared stream ends now: records of groups made later come after it."""
    last = admin.xrevrange(LAYOUT.changes(""), count=1)
    return f"({last[0][0].decode()}" if last else "-"


def _snapshot(admin: redis.Redis, group: str, since: str) -> tuple[Any, ...]:
    """Everything of a group, with the group's name and deadlines left out (which of its keys
    expire is kept), and its records (read from ``since`` on: the stream every group shares
    grows through the matrix)."""
    records = [
        (f[b"op"], f[b"key"], f[b"version"], f[b"prev"], f.get(b"value"), f.get(b"old"))
        for _, f in admin.xrange(LAYOUT.changes(group), min=since)
        if f[b"group"] == group.encode()
    ]
    keys = (LAYOUT.data(group), LAYOUT.versions(group), LAYOUT.expiries(group))
    return (
        admin.hgetall(LAYOUT.data(group)),
        admin.hgetall(LAYOUT.versions(group)),
        sorted(admin.zrange(LAYOUT.expiries(group), 0, -1)),
        group.encode() in admin.smembers(LAYOUT.registry() or b""),
        records,
        [int(admin.pttl(key)) > 0 for key in keys],
        admin.exists(LAYOUT.deadline(group)),
        admin.zscore(LAYOUT.deadlines() or b"", group) is not None,
    )


def _run(op: Callable[[State, str], Any], state: State, group: str) -> Any:
    try:
        return ("ok", op(state, group))
    except PermissionDenied as exc:
        return ("denied", str(exc))
    except StateError as exc:  # its own answer (a version condition on a group that expired)
        return ("raised", type(exc).__name__)


def _url_for(url: str, name: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    if scheme == "unix":
        return f"unix://{name}:{password}@{rest}"
    return f"{scheme}://{name}:{password}@{rest}"


@pytest.fixture(params=["redis", "embedded"])
def server(request: pytest.FixtureRequest, servers: Servers) -> Iterator[str]:
    if request.param == "redis":
        yield servers.redis()[0]
    else:
        yield f"unix://{servers.embedded_socket()}?db=0"


# Feed settings change what a write reaches: recorded values are read before the write (HGET,
# HMGET on the data hash), a max age trims by MINID at the end of every write (TIME, XTRIM).
FEEDS = {
    "default feed": {},
    "values and max age": {"record_values": True, "changes_max_age": 3600},
}


@pytest.mark.parametrize(
    ("server", "feed"),
    [("redis", "default feed"), ("embedded", "default feed"), ("redis", "values and max age")],
    indirect=["server"],
)
def test_no_write_is_half_applied_when_one_command_is_refused(server: str, feed: str) -> None:
    admin = redis.Redis.from_url(server)
    name = f"acl-{uuid.uuid4().hex[:8]}"
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw-m", *ENGINE_RULE.split())
    failures: list[str] = []
    denied = 0
    try:
        with (
            State.from_url(server, cleanup_interval=None, **FEEDS[feed]) as full,
            State.from_url(
                _url_for(server, name, "pw-m"), cleanup_interval=None, **FEEDS[feed]
            ) as limited,
        ):
            for command in SCRIPT_COMMANDS:
                rule = f"{ENGINE_RULE} -{command}"
                admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw-m",
                                      *rule.split())  # fmt: skip
                for (label, op), kind in itertools.product(_ops().items(), GROUPS):
                    label += f" ({kind} group)"
                    mine, twin = (f"acl-{uuid.uuid4().hex[:8]}" for _ in range(2))
                    since = _last_record(admin)
                    _prepare(admin, full, mine, kind)
                    _prepare(admin, full, twin, kind)
                    before = _snapshot(admin, mine, since)
                    outcome = _run(op, limited, mine)
                    after = _snapshot(admin, mine, since)
                    if outcome[0] == "denied":
                        denied += 1
                        if after != before:
                            failures.append(f"-{command} {label}: denied but changed {after}")
                        continue
                    expected = _run(op, full, twin)
                    if outcome[1] != expected[1] or after != _snapshot(admin, twin, since):
                        failures.append(f"-{command} {label}: {outcome} != {expected}")
    finally:
        admin.acl_deluser(name)
        for pattern in ("motia:state:acl-*", "motia:state#?{motia:state:acl-*"):
            for key in admin.scan_iter(match=pattern):
                admin.delete(key)
        registry = LAYOUT.deadlines() or b""
        admin.zrem(registry, *[g for g in admin.zrange(registry, 0, -1) if g.startswith(b"acl-")])
        admin.close()
    assert not failures, "\n".join(failures)
    assert denied > len(SCRIPT_COMMANDS)  # the matrix did refuse calls


def test_a_refused_marker_channel_is_permission_denied(server: str) -> None:
    admin = redis.Redis.from_url(server)
    name = f"acl-{uuid.uuid4().hex[:8]}"
    rule = ENGINE_RULE.replace("&motia:state#writes*", "")
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw-c", *rule.split())
    group = f"acl-{uuid.uuid4().hex[:8]}"
    try:
        with State.from_url(_url_for(server, name, "pw-c")) as state:
            with pytest.raises(PermissionDenied, match="channel") as refused:
                state.set(group, "k", 1)
            assert "pw-c" not in str(refused.value)
        assert admin.exists(LAYOUT.data(group)) == 0
    finally:
        admin.acl_deluser(name)
        admin.close()
