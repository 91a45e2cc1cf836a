"""Idempotency keys: a write applied once however often a retried step sends it.

A step runs at least once, so a write it makes may come twice: the retry of a step that
crashed after the write, or the engine's own re-send after a lost reply. A write carrying an
``idempotency_key`` leaves a *receipt* in the same atomic call that applies it: the call's
fingerprint and its raw result. A later call with the key finds the receipt and returns that
result, applying nothing and recording no change; the key reused with other arguments is
refused (`IdempotencyKeyReused`), since returning the first result would answer a question
that was not asked. Only a call that applied leaves a receipt: one its own condition refused
(a version conflict, an update op that cannot apply) wrote nothing, so the retry, perhaps
with a fresh version read, is a first attempt.

On Redis the receipt is a string key in the group's hash slot (`KeyLayout.receipt`), written
by the script that applies the write (`scripts.load(..., receipted=True)` wraps it with
lua/include/receipt.lua) and expiring on its own after the retention time. Off Redis it is a
`Record` in the reserved group `RECEIPTS`, written in the adapter's atomic block.

This module owns what both need: the fingerprint, the receipt's name and its encoding.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import fields, is_dataclass, replace
from typing import Any, TypeVar

import msgpack
import orjson

from . import ops, validate

R = TypeVar("R", bound=ops.Request[Any])

DEFAULT_TTL_S = 24 * 3600
FINGERPRINT_BYTES = 16
# Off Redis the receipts live in a group of the adapter's own store whose name no caller can
# use (validate.group refuses the reserved prefix).
RECEIPTS = validate.RESERVED_GROUP_PREFIX + "receipts"
# Fields that say how, not what: the State's size limit; an update's parsed steps (their
# kinds, paths and encoded operands go in instead); and a ``version=`` condition, which a
# retried step reads anew (and finds moved on by the first application): the receipt
# answers it all the same, as it answers the first call's question.
_NOT_ASKED = frozenset({"idem", "max_bytes", "steps", "version"})


def _canonical(value: Any) -> Any:
    if isinstance(value, ops.Request):
        return _asked(value)
    if isinstance(value, tuple):
        return [_canonical(v) for v in value]
    return value


_ASKING: dict[type, tuple[str, ...]] = {}


def _asking(kind: type) -> tuple[str, ...]:
    """The fields of a kind of request that say what it asks, in declaration order."""
    names = _ASKING.get(kind)
    if names is None:
        assert is_dataclass(kind)
        names = _ASKING[kind] = tuple(f.name for f in fields(kind) if f.name not in _NOT_ASKED)
    return names


def _asked(op: ops.Request[Any]) -> list[Any]:
    """What a request asks, as plain data: its kind and its fields in declaration order."""
    asked: list[Any] = [type(op).__name__]
    asked += [_canonical(getattr(op, name)) for name in _asking(type(op))]
    if isinstance(op, ops.Update):
        asked.append([step.kind for step in op.steps])
    return asked


def fingerprint(op: ops.Request[Any]) -> bytes:
    """16 bytes that differ, but for a 2**-64 chance, between requests that ask differently."""
    packed = msgpack.packb(_asked(op), use_bin_type=True)
    return hashlib.blake2b(packed, digest_size=FINGERPRINT_BYTES).digest()


def receipt_group(op: ops.Request[Any]) -> str:
    """The group whose slot holds ``op``'s receipt: its own, or for a transaction the least
    of its groups (on Cluster they share one slot). Not the first op's: a retry that lists
    its ops in another order must find the receipt, and be refused for asking otherwise."""
    group = getattr(op, "group", None)
    if isinstance(group, str):
        return group
    assert isinstance(op, ops.Transaction)
    return min(sub.group for sub in op.ops)


def canonical(op: R) -> R:
    """``op`` with the parts whose order means nothing in a fixed order: a batch's items and
    keys by key (a retried step may build them from a set, which iterates in another order
    in another process). A batch writes distinct keys, so the order changes nothing else."""
    if isinstance(op, ops.SetMany):
        return replace(op, items=tuple(sorted(op.items)))
    if isinstance(op, ops.DeleteMany):
        return replace(op, keys=tuple(sorted(op.keys)))
    return op


def part(idem: ops.Idem, index: int) -> bytes:
    """The fingerprint of one server call of a request sent in several (set_many's chunks):
    each call leaves its own receipt, and a reuse with other arguments is refused at the first."""
    if index == 0:
        return idem.fingerprint
    raw = idem.fingerprint + b"%d" % index
    return hashlib.blake2b(raw, digest_size=FINGERPRINT_BYTES).digest()


def attach(op: R, key: str, ttl_ms: int) -> R:
    """``op`` carrying the idempotency key ``key`` (checked: a str of 1 to 8192 bytes), in
    its `canonical` order."""
    validate.idempotency_key(key)  # an item key's rules
    op = canonical(op)
    return replace(op, idem=ops.Idem(key, fingerprint(op), ttl_ms))  # type: ignore[type-var]


def receipt_key(group: str, idem: ops.Idem, index: int = 0) -> str:
    """The receipt's key in `RECEIPTS` (off Redis): one per group, key and call."""
    named = msgpack.packb([group, idem.key, index], use_bin_type=True)
    return hashlib.blake2b(named, digest_size=20).hexdigest()


def pack(fingerprint_: bytes, result: Any) -> bytes:
    """A receipt off Redis, as JSON text (a store may hold only text, or only JSON: file://
    keeps Motia's JSON file): the fingerprint in hex, and the handler's raw result, which may
    hold bytes, in msgpack and base64."""
    packed = base64.b64encode(msgpack.packb(result, use_bin_type=True)).decode("ascii")
    return orjson.dumps({"fingerprint": fingerprint_.hex(), "result": packed})


def unpack(blob: bytes) -> tuple[bytes, Any] | None:
    """The fingerprint and result of a receipt `pack` made; None for one it did not make
    (damaged, or written by someone else)."""
    try:
        doc = orjson.loads(blob)
        return bytes.fromhex(doc["fingerprint"]), msgpack.unpackb(
            base64.b64decode(doc["result"], validate=True), raw=False
        )
    except (ValueError, TypeError, KeyError, msgpack.UnpackException):
        return None


def _int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def fits(op: ops.Request[Any], result: Any) -> bool:
    """Whether a receipt's result has the shape ``op``'s handler returns (off Redis): one
    that does not was not written by this engine, and is not handed to the caller."""
    if isinstance(op, ops.Set | ops.SetMany | ops.DeleteMany):
        return _int(result)
    if isinstance(op, ops.Delete):
        return result is None or isinstance(result, bytes)
    if isinstance(op, ops.Update):
        return (
            isinstance(result, list | tuple)
            and len(result) == 2
            and _int(result[0])
            and isinstance(result[1], bytes)
        )
    if isinstance(op, ops.SetExpiry):
        return isinstance(result, bool)
    if isinstance(op, ops.Emit):
        return isinstance(result, str)
    if isinstance(op, ops.Transaction):
        return (
            isinstance(result, list)
            and len(result) == len(op.ops)
            and all(fits(sub, r) for sub, r in zip(op.ops, result, strict=True))
        )
    return False
