"""What a backend can do beyond plain items, by name.

Plain items (get, set, delete, batches, groups, listing) are what every backend serves. The
rest is optional: a backend declares the capabilities it has, `State.capabilities` reports
them, an operation that needs a missing one raises `Unsupported` naming it, and the contract
suite (`motia_state.testing.requires`) skips what a backend does not claim. One set of names
for all of them, so a declaration, a refusal and a skip can never disagree on spelling.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from .errors import InvalidInput, brief

Capability = Literal["versions", "ttl", "transactions", "feed"]

CAPABILITIES: frozenset[str] = frozenset(get_args(Capability))

# What each one covers, as a skip reason or an error message says it.
COVERS: dict[str, str] = {
    "versions": "exact versions, version= compare-and-set, increment and update",
    "ttl": "item TTLs: ttl=, expire, persist, the ttl option, group TTLs",
    "transactions": "transaction(), all-or-nothing set_many and delete_many",
    "feed": "watch, on_change, ack, the keyspace bridge",
}

# Redis (standalone, embedded, Sentinel, Cluster) has every one; memory:// and file:// keep
# no change feed.
EVERY: frozenset[str] = CAPABILITIES
IN_PROCESS: frozenset[str] = frozenset({"versions", "ttl", "transactions"})


def check(names: object) -> frozenset[str]:
    """``names`` as a frozenset of capabilities, refused as `InvalidInput` unless it is an
    iterable of known names: a typo in a declaration would otherwise pass for a backend that
    lacks the capability, and its tests would be skipped instead of failing."""
    if isinstance(names, (str, bytes)) or not isinstance(names, Iterable):
        raise InvalidInput(
            f"capabilities must be a collection of names, not {type(names).__name__}"
        )
    found = list(names)
    for name in found:
        if type(name) is not str or name not in CAPABILITIES:  # a str subclass may lie in ==
            known = ", ".join(sorted(CAPABILITIES))
            raise InvalidInput(f"unknown capability {brief(name)}; the names are {known}")
    return frozenset(found)
