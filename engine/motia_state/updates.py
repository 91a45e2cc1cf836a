"""Update ops: Motia v1's UpdateOp shape, checked once, applied exactly.

An op is a dict ``{"type": ..., "path": ..., "value"/"by": ...}`` as Motia v1
writes it; `Op` builds the same dicts with names and types. `parse` checks a
list of ops before anything is sent. `apply` is the reference semantics in
Python: the in-process backends use it, and the Redis scripts in ``lua/`` (which
apply the same ops server-side on a lossless tree) are tested against it.

Semantics: an empty path is the whole value; missing intermediate objects are
created; a missing item starts as ``{}`` (``increment`` on a missing item starts
at 0); ``increment``/``decrement`` of a missing field sets it to the amount;
``merge`` is a shallow merge of an object; ``append`` adds to a list (a missing
field becomes a one-item list); ``remove`` of a missing field does nothing.
Integers stay integers within the signed 64-bit range; any float makes a float.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .codecs import INT64_MAX, INT64_MIN
from .errors import IntegerOverflow, InvalidUpdate, NotANumber, UpdateFailed, brief

MAX_PATH_DEPTH = 32
MAX_SEGMENT_BYTES = 256
FORBIDDEN_SEGMENTS = frozenset({"__proto__", "constructor", "prototype"})
TYPES = ("set", "increment", "decrement", "remove", "merge", "append")

Path = str | Sequence[str]


class Op:
    """Typed helpers for update ops; each returns the plain dict Motia v1 uses."""

    @staticmethod
    def set(path: Path, value: Any) -> dict[str, Any]:
        return {"type": "set", "path": path, "value": value}

    @staticmethod
    def increment(path: Path, by: int | float = 1) -> dict[str, Any]:
        return {"type": "increment", "path": path, "by": by}

    @staticmethod
    def decrement(path: Path, by: int | float = 1) -> dict[str, Any]:
        return {"type": "decrement", "path": path, "by": by}

    @staticmethod
    def remove(path: Path) -> dict[str, Any]:
        return {"type": "remove", "path": path}

    @staticmethod
    def merge(path: Path, value: Mapping[str, Any]) -> dict[str, Any]:
        return {"type": "merge", "path": path, "value": value}

    @staticmethod
    def append(path: Path, value: Any) -> dict[str, Any]:
        return {"type": "append", "path": path, "value": value}


@dataclass(frozen=True, slots=True)
class Step:
    """A checked op. A decrement is an increment by the negated amount."""

    kind: str  # set, increment, remove, merge, append
    path: tuple[str, ...]
    operand: Any  # the value, the amount, or None for remove
    index: int  # where the op stood in the caller's list
    source: Any  # the op as the caller gave it, for error messages


def _path(raw: Any, index: int, op: Any) -> tuple[str, ...]:
    if isinstance(raw, str):
        segments: tuple[Any, ...] = tuple(raw.split(".")) if raw else ()
    elif isinstance(raw, (list, tuple)):
        segments = tuple(raw)
    else:
        raise InvalidUpdate(f"ops[{index}] {brief(op)}: path must be a str or a list of str")
    if len(segments) > MAX_PATH_DEPTH:
        raise InvalidUpdate(f"ops[{index}] {brief(op)}: path is deeper than {MAX_PATH_DEPTH}")
    for seg in segments:
        if not isinstance(seg, str) or not seg:
            raise InvalidUpdate(f"ops[{index}] {brief(op)}: path segments must be non-empty str")
        try:
            size = len(seg.encode("utf-8"))
        except UnicodeEncodeError:
            raise InvalidUpdate(
                f"ops[{index}] {brief(op)}: path segment is not valid unicode"
            ) from None
        if size > MAX_SEGMENT_BYTES:
            raise InvalidUpdate(
                f"ops[{index}] {brief(op)}: path segment over {MAX_SEGMENT_BYTES} bytes"
            )
        if seg in FORBIDDEN_SEGMENTS:
            raise InvalidUpdate(f"ops[{index}] {brief(op)}: path segment {seg!r} is not allowed")
    return segments


def amount(by: Any, where: str) -> int | float:
    """An increment amount: an int within 64 bits or a finite float (bool is not a number)."""
    if isinstance(by, bool) or not isinstance(by, (int, float)):
        raise InvalidUpdate(f"{where}: the amount must be an int or a float, not {brief(by)}")
    if isinstance(by, float) and not math.isfinite(by):
        raise InvalidUpdate(f"{where}: the amount must be finite")
    if isinstance(by, int) and not INT64_MIN <= by <= INT64_MAX:
        raise InvalidUpdate(f"{where}: the amount is outside the signed 64-bit range")
    return by


def parse(ops: Iterable[Any]) -> tuple[Step, ...]:
    if isinstance(ops, (Mapping, str, bytes)):
        raise InvalidUpdate("ops must be a list of op dicts, not a single op")
    if not isinstance(ops, Iterable):
        raise InvalidUpdate(f"ops must be a list of op dicts, not {brief(ops)}")
    steps = []
    for index, op in enumerate(ops):
        if not isinstance(op, Mapping):
            raise InvalidUpdate(f"ops[{index}] {brief(op)}: an op is a dict with a 'type'")
        kind = op.get("type")
        if kind not in TYPES:
            raise InvalidUpdate(
                f"ops[{index}] {brief(op)}: unknown type {brief(kind)}; use one of {TYPES}"
            )
        path = _path(op.get("path", ""), index, op)
        where = f"ops[{index}]"
        if kind in ("increment", "decrement"):
            by = amount(op.get("by", 1), where)
            steps.append(Step("increment", path, -by if kind == "decrement" else by, index, op))
        elif kind == "remove":
            if not path:
                raise InvalidUpdate(
                    f"{where} {brief(op)}: remove needs a path (the whole value cannot go)"
                )
            steps.append(Step("remove", path, None, index, op))
        else:
            if "value" not in op:
                raise InvalidUpdate(f"{where} {brief(op)}: {kind} needs a 'value'")
            if kind == "merge" and not isinstance(op["value"], Mapping):
                raise InvalidUpdate(f"{where} {brief(op)}: merge takes an object value")
            steps.append(Step(kind, path, op["value"], index, op))
    if not steps:
        raise InvalidUpdate("ops must hold at least one op")
    return tuple(steps)


def fail(code: str, step: Step | None) -> UpdateFailed:
    """The error for ``code`` at ``step`` (None: the stored value itself)."""
    index, source = (step.index, step.source) if step else (-1, None)
    kind = {"not_number": NotANumber, "overflow": IntegerOverflow}.get(code, UpdateFailed)
    return kind(code, index, source)


def add(current: Any, by: int | float, step: Step) -> int | float:
    if isinstance(current, bool) or not isinstance(current, (int, float)):
        raise fail("not_number", step)
    total = current + by
    if isinstance(total, int):
        if not INT64_MIN <= total <= INT64_MAX:
            raise fail("overflow", step)
    elif not math.isfinite(total):
        raise fail("not_finite", step)
    return total


def _target(step: Step, current: Any, absent: bool) -> Any:
    kind, operand = step.kind, step.operand
    if isinstance(operand, (dict, list)):  # later ops change the value in place: never the
        operand = copy.deepcopy(operand)  # caller's own object (nor another backend's)
    if kind == "set":
        return operand
    if kind == "increment":
        return operand if absent else add(current, operand, step)
    if kind == "merge":
        if absent:
            return dict(operand)
        if not isinstance(current, dict):
            raise fail("not_object", step)
        current.update(operand)
        return current
    # append
    if absent:
        return [operand]
    if not isinstance(current, list):
        raise fail("not_array", step)
    current.append(operand)
    return current


def apply(value: Any, steps: Sequence[Step]) -> Any:
    """The ops applied to ``value`` (which is changed in place: pass a copy)."""
    for step in steps:
        if not step.path:
            value = _target(step, value, absent=False)
            continue
        if not isinstance(value, dict):
            raise fail("path_not_object", step)
        parent = value
        for seg in step.path[:-1]:
            child = parent.setdefault(seg, {})
            if not isinstance(child, dict):
                raise fail("path_not_object", step)
            parent = child
        last = step.path[-1]
        if step.kind == "remove":
            parent.pop(last, None)
        else:
            parent[last] = _target(step, parent.get(last), absent=last not in parent)
    return value
