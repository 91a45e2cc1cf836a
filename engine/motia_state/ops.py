"""Backend-neutral operations: what the facade asks every backend to do.

`State` and `AsyncState` validate and encode the caller's arguments into one of
these records and hand it to a backend's ``execute``; each backend (Redis,
memory, file) decides how to carry it out. Values travel encoded, so every
backend stores exactly the bytes the codec produced and the facades own all
encoding and decoding. The type parameter is what ``execute`` returns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .codecs import Codec

T = TypeVar("T")


class Op(Generic[T]):
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class RawItem:
    data: bytes
    version: int
    expires_at: float | None = None  # seconds since the epoch


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


@dataclass(frozen=True, slots=True)
class Get(Op[bytes | None]):
    group: str
    key: str


@dataclass(frozen=True, slots=True)
class GetItem(Op[RawItem | None]):
    group: str
    key: str


@dataclass(frozen=True, slots=True)
class GetMany(Op[list[bytes | None]]):
    group: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class GetAll(Op[dict[str, bytes]]):
    group: str


@dataclass(frozen=True, slots=True)
class Keys(Op[list[str]]):
    group: str


@dataclass(frozen=True, slots=True)
class ScanPage(Op[tuple[int, list[tuple[str, bytes]]]]):
    """One page of a group; cursor 0 starts, a returned cursor of 0 means done."""

    group: str
    cursor: int
    count: int


@dataclass(frozen=True, slots=True)
class Set(Op[int]):
    group: str
    key: str
    data: bytes
    version: int | None
    expire: str = ""  # the expiry instruction: "" clears, "<ms>" sets (see lua/include/ttl.lua)


@dataclass(frozen=True, slots=True)
class SetMany(Op[int]):
    group: str
    items: tuple[tuple[str, bytes], ...]
    expire: str = ""


@dataclass(frozen=True, slots=True)
class Delete(Op[bytes | None]):
    group: str
    key: str
    version: int | None


@dataclass(frozen=True, slots=True)
class DeleteMany(Op[int]):
    group: str
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Clear(Op[int]):
    group: str


@dataclass(frozen=True, slots=True)
class ListGroups(Op[list[str]]):
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


@dataclass(frozen=True, slots=True)
class Stats(Op[tuple[list[GroupStats], int | None]]):
    """Per-group stats, and the length of the shared change stream (standalone Redis; None
    on Cluster, where each group's count is in its row, and off Redis, where there is none)."""

    groups: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Update(Op[tuple[int, bytes]]):
    """Apply update steps to one item; returns (new version, new encoded value).

    ``argv`` is the ops already encoded for the server script (see lua/update.lua);
    the in-process backends apply ``steps`` with ``codec`` instead.
    """

    group: str
    key: str
    steps: tuple[Any, ...]  # updates.Step
    argv: tuple[bytes, ...]
    start: bytes  # what a missing item starts as, encoded: {} (update) or 0 (increment)
    name: str  # the change record's op: "update" or "increment"
    version: int | None
    max_bytes: int
    codec: Codec
    expire: str = "keep"  # "keep", "keep:<ms>" (a default TTL for a new item) or "<ms>"


@dataclass(frozen=True, slots=True)
class Transaction(Op[list[Any]]):
    """Set, Delete and Update ops across keys and groups, applied in order, all or nothing.

    Returns each op's own raw result. Every failed version condition is reported
    together in one `VersionConflict`.
    """

    ops: tuple[Set | Delete | Update, ...]
    max_bytes: int


@dataclass(frozen=True, slots=True)
class Ttl(Op[float | None]):
    """Seconds until the item expires; None when it has no expiry or does not exist."""

    group: str
    key: str


@dataclass(frozen=True, slots=True)
class SetExpiry(Op[bool]):
    """Give an existing item a TTL of ``ms`` (True if it exists), or remove it when None
    (True if it had one)."""

    group: str
    key: str
    ms: int | None


@dataclass(frozen=True, slots=True)
class Cleanup(Op[int]):
    """Remove every expired item now; returns how many."""


@dataclass(frozen=True, slots=True)
class Ack(Op[int]):
    """Acknowledge changes read through a consumer group (`Change` records)."""

    changes: tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class External(Op[None]):
    """Record a change made outside the engine (the keyspace bridge): a Redis event on a group.

    ``group`` None records a gap: a time when the bridge may have missed events.
    """

    group: str | None
    event: str


@dataclass(frozen=True, slots=True)
class Lease(Op[bool]):
    """Take or renew the keyspace bridge's lease for ``ms``; False while another holds it."""

    token: str
    ms: int


# Ops that can be sent again after a lost reply: they change nothing, or nothing more the
# second time (an ack, a sweep of expired items). Everything else is a write, never re-sent
# once it may have reached the server.
IDEMPOTENT: frozenset[type[Op[Any]]] = frozenset(
    {Get, GetItem, GetMany, GetAll, Keys, ScanPage, ListGroups, Stats, Ttl, Ack, Cleanup}
)
