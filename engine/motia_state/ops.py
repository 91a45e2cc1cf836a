"""Backend-neutral requests: what the facade asks every backend to do, declared once.

`State` and `AsyncState` validate and encode the caller's arguments into one of
these records and hand it to a backend's ``execute``; each backend (Redis,
memory, file) decides how to carry it out. Values travel encoded, so every
backend stores exactly the bytes the codec produced and the facades own all
encoding and decoding. The type parameter is what ``execute`` returns.

Each request class is declared with `declare`, which records its `Traits` in
`REGISTRY`: whether it writes, whether it may be sent again after a lost reply,
the Lua script it runs, whether a transaction may hold it, whether it needs the
change feed. Every backend decision that depends on the kind of request reads
these traits (WAIT under replicated durability, file:// taking its lock, retries),
and every backend registers one handler per request with `Handlers`, so a request
declared here and forgotten in a backend fails `Handlers.check` (and the suite),
not a user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from .errors import Unsupported

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)


class Request(Generic[T]):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Idem:
    """A write's idempotency key as the backends need it (see `motia_state.idempotency`):
    ``key`` the caller's, ``fingerprint`` what the call asked (16 bytes), so that the key
    reused with other arguments is refused, ``ttl_ms`` how long its receipt is kept."""

    key: str
    fingerprint: bytes
    ttl_ms: int


@dataclass(frozen=True, slots=True)
class Traits:
    """What a kind of request is, as every backend needs to know it.

    ``writes``: changes state (file:// takes its lock; Redis confirms it with WAIT under
    ``durability="replicated"``). ``resend``: may be sent again after a lost reply: it
    changes nothing, or nothing more the second time (an ack, a sweep of expired items);
    any other request is never re-sent once it may have reached the server. ``script``:
    the Lua script (``lua/<script>.lua``) that carries it out on Redis. ``conditional``:
    its own condition can refuse it (``version=``, an update op that cannot apply), and
    that refusal, which wrote nothing, is the answer rather than a replication check.
    ``in_transaction``: a `Transaction` may hold it. ``feed``: it needs the change feed,
    which only Redis keeps.
    """

    writes: bool
    resend: bool
    script: str | None = None
    conditional: bool = False
    in_transaction: bool = False
    feed: bool = False


REGISTRY: dict[type[Request[Any]], Traits] = {}


def declare(
    *,
    writes: bool,
    resend: bool | None = None,
    script: str | None = None,
    conditional: bool = False,
    in_transaction: bool = False,
    feed: bool = False,
) -> Callable[[C], C]:
    """Register a request class with its traits; reads may be re-sent unless told otherwise."""
    traits = Traits(
        writes, not writes if resend is None else resend, script, conditional, in_transaction, feed
    )

    def register(cls: C) -> C:
        REGISTRY[cls] = traits
        return cls

    return register


_RESENT: dict[type[Request[Any]], Traits] = {}


def traits(request: Request[Any]) -> Traits:
    """The request's traits; a write that carries an idempotency key may be re-sent after a
    lost reply (its receipt makes the second application return the first's result)."""
    declared = REGISTRY[type(request)]
    if declared.resend or getattr(request, "idem", None) is None:
        return declared
    resent = _RESENT.get(type(request))
    if resent is None:
        resent = _RESENT[type(request)] = replace(declared, resend=True)
    return resent


class Handlers(Generic[F]):
    """One backend's handler per request kind, registered with ``@handlers.on(Kind)``.

    ``needed``: which declared requests need a handler here. ``default``: derives a handler
    for a declared request that has none of its own (the Redis plan's calling convention),
    or returns None.
    """

    def __init__(
        self,
        backend: str,
        needed: Callable[[Traits], bool] = lambda traits: True,
        default: Callable[[type[Request[Any]]], F | None] | None = None,
    ) -> None:
        self.backend = backend
        self.needed = needed
        self.default = default
        self.table: dict[type[Request[Any]], F] = {}

    def on(self, kind: type[Request[Any]]) -> Callable[[F], F]:
        def register(handler: F) -> F:
            if kind in self.table:
                raise TypeError(f"{self.backend}: a second handler for {kind.__name__}")
            self.table[kind] = handler
            return handler

        return register

    def derived(self, kind: type[Request[Any]]) -> F:
        """The handler ``default`` derives for ``kind`` (remembered), else `Unsupported`."""
        handler = self.default(kind) if self.default is not None else None
        if handler is None:
            raise Unsupported(f"{self.backend} has no handler for {kind.__name__}")
        self.table[kind] = handler
        return handler

    def missing(self) -> list[str]:
        """Declared requests this backend has no handler for (see the registry test)."""
        return sorted(
            kind.__name__
            for kind, traits in REGISTRY.items()
            if self.needed(traits)
            and kind not in self.table
            and (self.default is None or self.default(kind) is None)
        )


@dataclass(frozen=True, slots=True)
class RawItem:
    data: bytes
    version: int
    expires_at: float | None = None  # seconds since the epoch
    # Milliseconds the item had left when read, by the server's clock (Redis only): what the
    # near cache times its copy by, so that no two clocks are compared.
    ms_left: int | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Undecodable:
    """What a delete returns for the value it removed when that value cannot be decoded (text
    another tool wrote, say): the delete went through, so raising would report a write that
    happened as failed, and a transaction retried on that error would apply twice. ``raw`` is
    the stored bytes, ``reason`` why they do not decode."""

    raw: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class Item:
    """One stored item with its metadata. A stored ``None`` is an item whose value is None."""

    group: str
    key: str
    value: Any
    version: int
    expires_at: float | None = None


@declare(writes=False, script="get")
@dataclass(frozen=True, slots=True)
class Get(Request[bytes | None]):
    group: str
    key: str


@declare(writes=False, script="get_item")
@dataclass(frozen=True, slots=True)
class GetItem(Request[RawItem | None]):
    group: str
    key: str


@declare(writes=False)
@dataclass(frozen=True, slots=True)
class GetMany(Request[list[bytes | None]]):
    group: str
    keys: tuple[str, ...]


@declare(writes=False)
@dataclass(frozen=True, slots=True)
class GetAll(Request[dict[str, bytes]]):
    group: str


@declare(writes=False)
@dataclass(frozen=True, slots=True)
class Values(Request[list[bytes]]):
    """The values of a group's live items without their keys: get_group, whose reply is then
    half the size (keys are read only to name an item whose value does not decode)."""

    group: str


@declare(writes=False)
@dataclass(frozen=True, slots=True)
class Keys(Request[list[str]]):
    group: str


@declare(writes=False)
@dataclass(frozen=True, slots=True)
class ScanPage(Request[tuple[int, list[tuple[str, bytes]]]]):
    """One page of a group; cursor 0 starts, a returned cursor of 0 means done."""

    group: str
    cursor: int
    count: int


@dataclass(frozen=True, slots=True)
class QueryMatch:
    """An item a query page matched, as stored: its encoded value, version and expiry (ms)."""

    key: str
    data: bytes
    version: int
    expires_at: int | None


@dataclass(frozen=True, slots=True)
class QueryReply:
    """One server call of a query: where the next call starts (``cursor``, '0': the group is
    done), where its last page started and how many of ``matches`` came from that page (a
    resume in the middle of it), and the matches (items mode) or their number (count)."""

    cursor: str
    page_cursor: str
    page_matches: int
    matches: list[QueryMatch]
    count: int


@declare(writes=False, script="query")
@dataclass(frozen=True, slots=True)
class QueryPage(Request[QueryReply]):
    """Pages of a group's items from ``cursor`` on (``returned``: the first page's matches
    already returned, as `query.digest`s of their keys), filtered by a predicate
    (motia_state.query), until ``wanted`` matches or ``budget`` items examined. ``tokens``:
    the predicate as lua/query.lua takes it;
    ``reference``: the same tree, operands decoded, for a backend that evaluates it itself."""

    group: str
    cursor: str
    returned: str
    page_count: int
    budget: int
    wanted: int
    mode: str  # "items" or "count"
    tokens: tuple[bytes, ...]
    reference: Any = field(default=None, compare=False)


@declare(writes=True, script="set", conditional=True, in_transaction=True)
@dataclass(frozen=True, slots=True)
class Set(Request[int]):
    group: str
    key: str
    data: bytes
    version: int | None
    expire: str = ""  # the expiry instruction: "" clears, "<ms>" sets (see lua/include/ttl.lua)
    group_ttl: int | None = None  # ms: slides the group's deadline (lua/include/group.lua)
    idem: Idem | None = None  # an idempotency key (motia_state.idempotency)


@declare(writes=True, script="set_many")
@dataclass(frozen=True, slots=True)
class SetMany(Request[int]):
    group: str
    items: tuple[tuple[str, bytes], ...]
    expire: str = ""
    group_ttl: int | None = None  # ms: slides the group's deadline (lua/include/group.lua)
    idem: Idem | None = None  # an idempotency key (motia_state.idempotency)


@declare(writes=True, script="delete", conditional=True, in_transaction=True)
@dataclass(frozen=True, slots=True)
class Delete(Request[bytes | None]):
    group: str
    key: str
    version: int | None
    group_ttl: int | None = None  # ms: slides the group's deadline (lua/include/group.lua)
    idem: Idem | None = None  # an idempotency key (motia_state.idempotency)


@declare(writes=True, script="delete_many")
@dataclass(frozen=True, slots=True)
class DeleteMany(Request[int]):
    group: str
    keys: tuple[str, ...]
    group_ttl: int | None = None  # ms: slides the group's deadline (lua/include/group.lua)
    idem: Idem | None = None  # an idempotency key (motia_state.idempotency)


@declare(writes=True, script="clear")
@dataclass(frozen=True, slots=True)
class Clear(Request[int]):
    group: str


@declare(writes=False)
@dataclass(frozen=True, slots=True)
class ListGroups(Request[list[str]]):
    pass


@dataclass(frozen=True, slots=True)
class GroupStats:
    """What a group holds: ``items``; ``with_ttl``, items given a TTL (expired ones not yet
    swept included); ``bytes``, what its keys take in Redis (MEMORY USAGE, sampled for big
    hashes; None off Redis); ``changes``, its change-stream entries (None where the stream is
    shared by every group: see `Stats.changes`)."""

    group: str
    items: int
    with_ttl: int
    bytes: int | None
    changes: int | None


@declare(writes=False)
@dataclass(frozen=True, slots=True)
class Stats(Request[tuple[list[GroupStats], int | None]]):
    """Per-group stats, and the length of the shared change stream (standalone Redis; None
    on Cluster, where each group's count is in its row, and off Redis, where there is none)."""

    groups: tuple[str, ...]


@declare(writes=True, script="update", conditional=True, in_transaction=True)
@dataclass(frozen=True, slots=True)
class Update(Request[tuple[int, bytes]]):
    """Apply update steps to one item; returns (new version, new encoded value).

    ``encoded`` holds each step's operand and path segments as the State's codec encoded them
    (the operand checked against the size limit when the call was made), for a backend that
    sends them on; a backend that applies the steps itself does so in the State's codec.
    """

    group: str
    key: str
    steps: tuple[Any, ...]  # updates.Step
    encoded: tuple[tuple[bytes, tuple[bytes, ...]], ...]  # per step: (operand, path segments)
    start: bytes  # what a missing item starts as, encoded: {} (update) or 0 (increment)
    name: str  # the change record's op: "update" or "increment"
    version: int | None
    max_bytes: int
    expire: str = "keep"  # "keep", "keep:<ms>" (a default TTL for a new item) or "<ms>"
    group_ttl: int | None = None  # ms: slides the group's deadline (lua/include/group.lua)
    idem: Idem | None = None  # an idempotency key (motia_state.idempotency)


@declare(writes=True, in_transaction=True, feed=True)
@dataclass(frozen=True, slots=True)
class Emit(Request[str]):
    """An event for the change feed (the outbox: ``tx.emit``, ``emit=``), appended in the
    same atomic call as the transaction that holds it, so it is recorded exactly when that
    transaction's state changes are. ``data`` is encoded by the State's codec. Returns the
    event's id (its feed entry's). See `motia_state.changes` for the record."""

    group: str
    topic: str
    data: bytes


@declare(writes=True, script="transaction", conditional=True)
@dataclass(frozen=True, slots=True)
class Transaction(Request[list[Any]]):
    """Set, Delete and Update ops across keys and groups, applied in order, all or nothing;
    and Emit ops, whose events are recorded only if the rest applies.

    Returns each op's own raw result. Every failed version condition is reported
    together in one `VersionConflict`.
    """

    ops: tuple[Set | Delete | Update | Emit, ...]
    max_bytes: int
    idem: Idem | None = None  # an idempotency key (motia_state.idempotency)


@declare(writes=False, script="expiry")
@dataclass(frozen=True, slots=True)
class Ttl(Request[float | None]):
    """Seconds until the item expires; None when it has no expiry or does not exist."""

    group: str
    key: str


@declare(writes=True, script="expiry")
@dataclass(frozen=True, slots=True)
class SetExpiry(Request[bool]):
    """Give an existing item a TTL of ``ms`` (True if it exists), or remove it when None
    (True if it had one)."""

    group: str
    key: str
    ms: int | None
    group_ttl: int | None = None  # ms: slides the group's deadline (lua/include/group.lua)
    idem: Idem | None = None  # an idempotency key (motia_state.idempotency)


@declare(writes=False)
@dataclass(frozen=True, slots=True)
class GroupTtl(Request[float | None]):
    """Seconds until the group expires as a whole; None when it has no such expiry or does
    not exist (the data hash's PTTL: what ``redis-cli TTL`` shows)."""

    group: str


@declare(writes=True, script="group_expiry")
@dataclass(frozen=True, slots=True)
class SetGroupExpiry(Request[bool]):
    """Give an existing group one expiry as a whole in ``ms`` (True if it exists), or remove
    it when None (True if it had one). See lua/include/group.lua."""

    group: str
    ms: int | None


@declare(writes=True, resend=True, script="cleanup")
@dataclass(frozen=True, slots=True)
class Cleanup(Request[int]):
    """Remove every expired item now; returns how many. Also records the expiry of every
    group whose deadline has passed (its items, which the server removed itself at the
    deadline, are not counted)."""


@declare(writes=True, resend=True, feed=True)
@dataclass(frozen=True, slots=True)
class Ack(Request[int]):
    """Acknowledge changes read through a consumer group (`Change` records)."""

    changes: tuple[Any, ...]


@declare(writes=True, script="external", feed=True)
@dataclass(frozen=True, slots=True)
class External(Request[None]):
    """Record a change made outside the engine (the keyspace bridge): a Redis event on a group.

    ``group`` None records a gap: a time when the bridge may have missed events.
    """

    group: str | None
    event: str


@declare(writes=True, script="lease", feed=True)
@dataclass(frozen=True, slots=True)
class Lease(Request[bool]):
    """Take or renew the keyspace bridge's lease for ``ms``; False while another holds it."""

    token: str
    ms: int
