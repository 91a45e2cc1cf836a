"""Fan-in barriers: "when all N parallel steps have arrived, exactly one starts the join".

Workflow steps run at least once (a crashed step is retried under the same invocation id), so
an arrival must count once however often it is retried, and exactly one arrival ever is told
it completed the barrier. A barrier is an ordinary item of its group, stored with the State's
codec in the layout below, and every arrival is a compare-and-set loop over the engine's
one-call operations: read the item (`get_item`), decide, write it back conditionally on the
version read (`set(..., version=...)`, 0 when absent), and on `VersionConflict` read again.
So it works on every backend with the ``versions`` capability, with no script of its own,
and a write can only land on the exact barrier its decision was made from: two arrivals can
never both complete it.

The layout (public: any language may read and write it):

    {"barrier": 1, "parties": 3,
     "arrivals": [["check-credit", <data>], ["check-fraud", <data>]],
     "released_by": null}

``barrier`` is the layout's version (this engine reads 1 only); ``arrivals`` lists each
arrival's name and data in the order they were recorded, names unique, at most ``parties``
of them; ``released_by`` is null until the barrier is complete, then the name of the arrival
that completed it (always the last one listed). An item that is anything else is not a
barrier (`NotABarrier`), so a barrier call never overwrites a stranger's value.

The logic is written once, without I/O: each operation here is a generator yielding the
`core.Plan` s it wants run and sent their results (an error raised by one is thrown into it,
so the loop decides what a conflict means). `State` drives it with `drive`, `AsyncState` with
`drive_async`; nothing else differs.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from . import validate
from .changes import Change
from .core import Core, Plan, drive, drive_async
from .errors import (
    Contention,
    DecodeError,
    InvalidInput,
    NotABarrier,
    OutcomeUnknown,
    PartiesMismatch,
    Unsupported,
    VersionConflict,
    brief,
)
from .ops import Item

R = TypeVar("R")
Steps = Generator[Plan[Any], Any, R]
__all__ = ["BarrierState", "arrive", "completed_by", "drive", "drive_async", "read", "reset"]

LAYOUT = 1
FIELDS = frozenset({"barrier", "parties", "arrivals", "released_by"})
# How many times in a row an arrival may lose the race before it gives up (`Contention`). Each
# lost race is another writer's write landing; arrivals write only while the barrier is
# incomplete, so among arrivals alone one loses at most parties - 1 races: the allowance is
# that plus a margin for resets and foreign writers, with a cap so that a writer rewriting
# the item for ever cannot hold a caller for ever either.
MARGIN = 256
MAX_ATTEMPTS = 4096 + MARGIN


def attempts_for(parties: int) -> int:
    return min(parties + MARGIN, MAX_ATTEMPTS)


@dataclass(frozen=True, slots=True)
class BarrierState:
    """A barrier as one call left it (or found it: `State.barrier_state`).

    ``arrived``: distinct arrivals recorded, at most ``parties``; ``complete``: all arrived.
    ``released``: this call's arrival is the one that completed the barrier: true for exactly
    one arrival ever (and for every retry of it), false from `State.barrier_state`, which
    arrives as no one. ``released_by``: the name of that arrival, None until complete.
    ``data``: each arrival's data by name, in arrival order. ``version``: the barrier item's
    version after the call (what `State.reset_barrier` returns: the version it removed).
    """

    arrived: int
    parties: int
    complete: bool
    released: bool
    data: dict[str, Any] = field(hash=False)
    version: int
    released_by: str | None = None


@dataclass(frozen=True, slots=True)
class _Barrier:
    """The stored barrier, checked."""

    parties: int
    arrivals: tuple[tuple[str, Any], ...]

    @property
    def complete(self) -> bool:
        return len(self.arrivals) >= self.parties

    @property
    def released_by(self) -> str | None:
        return self.arrivals[self.parties - 1][0] if self.complete else None

    def has(self, name: str) -> bool:
        return any(arrived == name for arrived, _ in self.arrivals)

    def value(self) -> dict[str, Any]:
        return {
            "barrier": LAYOUT,
            "parties": self.parties,
            "arrivals": [[name, data] for name, data in self.arrivals],
            "released_by": self.released_by,
        }

    def state(self, version: int, arrival: str | None) -> BarrierState:
        released_by = self.released_by
        return BarrierState(
            arrived=len(self.arrivals),
            parties=self.parties,
            complete=self.complete,
            released=arrival is not None and released_by == arrival,
            data=dict(self.arrivals),
            version=version,
            released_by=released_by,
        )


def parse(group: str, key: str, value: Any) -> _Barrier:
    """The barrier stored as ``value``; `NotABarrier` saying why when it is not one."""

    def refuse(why: str) -> NotABarrier:
        return NotABarrier(f"{brief(group)}/{brief(key)} is not a barrier: {why}")

    if not isinstance(value, dict):
        raise refuse(f"it holds {type(value).__name__}, not a barrier's mapping")
    if set(value) != FIELDS:
        found = ", ".join(sorted(map(brief, value)))
        raise refuse(f"a barrier's fields are {', '.join(sorted(FIELDS))}; it has {found}")
    layout, parties, arrivals = value["barrier"], value["parties"], value["arrivals"]
    if type(layout) is not int or layout != LAYOUT:
        raise refuse(f"layout {brief(layout)}; this engine reads layout {LAYOUT}")
    if type(parties) is not int or not 1 <= parties <= validate.MAX_INT:
        raise refuse(f"parties is {brief(parties)}")
    if not isinstance(arrivals, list) or len(arrivals) > parties:
        raise refuse(f"arrivals must be a list of at most {parties} [name, data] pairs")
    seen: set[str] = set()
    pairs = []
    for pair in arrivals:
        if not isinstance(pair, list) or len(pair) != 2 or type(pair[0]) is not str:
            raise refuse(f"an arrival is {brief(pair)}, not a [name, data] pair")
        if not pair[0] or pair[0] in seen:
            raise refuse(f"the arrival name {brief(pair[0])} is empty or repeated")
        seen.add(pair[0])
        pairs.append((pair[0], pair[1]))
    barrier = _Barrier(parties, tuple(pairs))
    if value["released_by"] != barrier.released_by:
        raise refuse(
            f"released_by is {brief(value['released_by'])} with {len(pairs)} of {parties} "
            "arrived (null until complete, then the last arrival's name)"
        )
    return barrier


def _load(core: Core, group: str, key: str) -> Steps[Item | None]:
    """The item at the barrier's key; one whose value does not decode is not a barrier."""
    try:
        item: Item | None = yield core.get_item(group, key)
    except DecodeError as exc:
        raise NotABarrier(f"{brief(group)}/{brief(key)} is not a barrier: {exc}") from None
    return item


def _arrival(arrival: object) -> str:
    name = validate.name("arrival", arrival)
    return str.__str__(name)  # a str subclass's __eq__ and __hash__ decide nothing here


def arrive(
    core: Core,
    group: str,
    key: str,
    *,
    parties: int,
    arrival: str,
    data: Any = None,
    ttl: float | None = None,
) -> Steps[BarrierState]:
    """`State.barrier`'s steps; every argument is checked now, before any step is run, so
    bad input writes nothing."""
    g, k = validate.group(group), validate.key(key)
    n, name = validate.positive_int("parties", parties), _arrival(arrival)
    validate.ttl(ttl)
    # Encoded alone first: a value the codec refuses, or one too large whatever else the
    # barrier holds, is refused before the barrier is read. The decoded copy is the data as
    # any later read returns it (a tuple read back as a list, say).
    own = core.codec.decode(core.encode(g, k, data))
    return _arrive(core, g, k, n, name, own, ttl)


def _arrive(
    core: Core, group: str, key: str, parties: int, name: str, data: Any, ttl: float | None
) -> Steps[BarrierState]:
    for _ in range(attempts_for(parties)):
        item = yield from _load(core, group, key)
        if item is None:
            barrier, read = _Barrier(parties, ()), 0
        else:
            barrier, read = parse(group, key, item.value), item.version
            if barrier.parties != parties:
                raise PartiesMismatch(group, key, barrier.parties, parties)
            if barrier.has(name) or barrier.complete:
                # A retry gets the first application's answer (its data stays); an arrival
                # past completion is recorded nowhere and released never.
                return barrier.state(read, name)
        after = _Barrier(parties, (*barrier.arrivals, (name, data)))
        try:
            version = yield core.set(group, key, after.value(), version=read, ttl=ttl)
        except VersionConflict:
            continue  # another write landed since the read: decide again on what it left
        except OutcomeUnknown:
            # The write may have landed. Arriving is idempotent and the write was conditional
            # on the version read, so reading again says which: this arrival listed, or not.
            continue
        return after.state(version, name)
    raise Contention(group, key, attempts_for(parties))


def read(core: Core, group: str, key: str) -> Steps[BarrierState | None]:
    """`State.barrier_state`'s one step: the barrier as stored, arriving as no one."""
    g, k = validate.group(group), validate.key(key)
    return _read(core, g, k)


def _read(core: Core, group: str, key: str) -> Steps[BarrierState | None]:
    item = yield from _load(core, group, key)
    if item is None:
        return None
    return parse(group, key, item.value).state(item.version, None)


def reset(core: Core, group: str, key: str) -> Steps[BarrierState | None]:
    """`State.reset_barrier`'s steps."""
    g, k = validate.group(group), validate.key(key)
    return _reset(core, g, k)


def _reset(core: Core, group: str, key: str) -> Steps[BarrierState | None]:
    lost = 0
    while True:
        item = yield from _load(core, group, key)
        if item is None:
            return None
        barrier = parse(group, key, item.value)  # a stranger's item is never deleted
        try:
            yield core.delete(group, key, version=item.version)
        except VersionConflict:  # an arrival landed meanwhile: it goes with the rest
            lost += 1
            if lost >= attempts_for(barrier.parties):
                raise Contention(group, key, lost) from None
            continue
        # Not OutcomeUnknown: had the delete landed, an arrival of the next use may have
        # made the barrier anew since, and deleting again would lose it.
        return barrier.state(item.version, None)


def completed_by(change: Change) -> str | None:
    """The arrival whose arrival completed the barrier, when ``change`` is that write's
    record, else None: a barrier item's record whose value has ``released_by`` set and whose
    old value had not (exactly one record per use of a barrier). Needs the values: a writer
    opened with ``record_values=True``, a watch with ``with_values=True``."""
    if not isinstance(change, Change):
        raise InvalidInput(f"completed_by takes a Change, not {type(change).__name__}")
    if not change.has_values:
        raise InvalidInput(
            "completed_by needs a change with its values: record_values=True on the writers "
            "and with_values=True on the watch"
        )
    if change.op != "set" or change.group is None or change.key is None:
        return None
    try:
        now = parse(change.group, change.key, change.value)
    except NotABarrier:
        return None
    if now.released_by is None:
        return None
    if change.old_value is not None:  # None: the write made the barrier (parties=1)
        try:
            before = parse(change.group, change.key, change.old_value)
        except NotABarrier:
            return None  # a stranger's value overwritten: no arrival does that
        if before.released_by is not None:
            return None
    return now.released_by


def need_versions(capabilities: frozenset[str], describe: str, what: str) -> None:
    """`Unsupported` before anything is sent where compare-and-set is missing."""
    if "versions" not in capabilities:
        raise Unsupported(
            f"{describe}: {what} needs the capability 'versions' (a compare-and-set loop over "
            f"version=), which it does not declare (it declares {sorted(capabilities) or 'none'})"
        )
