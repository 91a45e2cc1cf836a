"""The engine's exceptions.

Every error a caller can act on is a `StateError`, so one ``except`` covers the
engine; the subclasses that describe bad input also derive from the built-in
exception a Python programmer would reach for (`ValueError`, `TypeError`), so
code written against plain dicts keeps working.
"""

from __future__ import annotations

import reprlib
from collections.abc import Sequence

_brief = reprlib.Repr()
_brief.maxlevel, _brief.maxstring, _brief.maxother = 4, 80, 80


def brief(value: object) -> str:
    """``repr(value)`` cut short: a caller's value in a message may be huge or nested past
    the interpreter's recursion limit, and must neither flood the message nor raise."""
    try:
        return _brief.repr(value)
    except Exception:  # an int past the 4300 digits Python prints, a __repr__ that raises
        return f"<{type(value).__name__}>"


class StateError(Exception):
    """Base class of every error raised by motia-state."""

    _args: tuple[object, ...] | None = None

    def __reduce__(self) -> str | tuple[object, ...]:
        # Errors with their own constructor arguments cross process boundaries
        # (multiprocessing, concurrent.futures) only if pickle knows those arguments.
        if self._args is not None:
            return (type(self), self._args)
        return super().__reduce__()


class InvalidInput(StateError, ValueError):
    """A group, key, option or argument breaks a documented rule; nothing was written."""


class ValueTooLarge(InvalidInput):
    """An encoded value is larger than the configured ``max_value_bytes``; nothing was written."""


class EncodeError(StateError, TypeError):
    """The codec cannot represent the value exactly (a set, an object, NaN under JSON, ...)."""


class DecodeError(StateError):
    """A stored value is not valid for the codec (for example text written by hand)."""


class VersionConflict(StateError):
    """A conditional write found another version than the one it expected; nothing changed."""

    def __init__(self, conflicts: Sequence[tuple[str, str, int | None, int]]) -> None:
        self.conflicts = list(conflicts)
        self._args: tuple[object, ...] = (self.conflicts,)
        parts = [
            f"{group!r}/{key!r}: expected version {expected}, found {found}"
            for group, key, expected, found in self.conflicts
        ]
        super().__init__("version conflict: " + "; ".join(parts))

    @property
    def expected(self) -> int | None:
        return self.conflicts[0][2]

    @property
    def actual(self) -> int:
        return self.conflicts[0][3]


class IdempotencyKeyReused(InvalidInput):
    """An ``idempotency_key`` already applied a call that asked something else (another group,
    key, value, op or version); its receipt stands and nothing was written. A key names one
    call: the step's invocation id and the call's position in it, not the step alone."""


class BackendUnavailable(StateError):
    """The backend cannot be reached or started (connection refused, timed out, server did
    not start). ``sent`` is False when nothing of the call reached the server, so nothing of
    it was applied."""

    sent = False


class ServerBusy(BackendUnavailable):
    """The server refused the call whole, for a reason that passes (LOADING: restarting and
    still loading its data; BUSY: running a long script; READONLY or MASTERDOWN: a replica
    during a failover; CLUSTERDOWN while a cluster node rejoins; NOREPLICAS; TRYAGAIN):
    nothing of it ran. The engine waits and sends it again until the call's timeout
    (``socket_timeout``) has passed, then raises this."""


class OutcomeUnknown(BackendUnavailable):
    """A write reached the server but its reply never came back (the connection broke or
    timed out): it may or may not have been applied, whole or not at all (every write is one
    atomic call). The engine never sends it again by itself; read the item, and its version,
    to find out."""

    sent = True


class PermissionDenied(StateError):
    """The server's ACL refuses a command or key the engine needs (NOPERM); nothing was
    written by the refused call."""


class Unsupported(StateError):
    """The chosen backend cannot do what was asked; it says so instead of behaving differently."""


class InvalidUpdate(InvalidInput):
    """An update op is malformed (unknown type, bad path, bad operand); nothing was written."""


class UpdateFailed(StateError):
    """An update op cannot apply to the stored value; none of the ops were applied.

    ``code`` says why (``not_number``, ``not_object``, ``not_array``, ``path_not_object``,
    ``overflow``, ``not_finite``, ``not_decodable``, ``too_large``); ``op_index`` and ``op``
    name the failing op (index -1 and None when the stored value itself is the problem).
    """

    def __init__(self, code: str, op_index: int, op: object, detail: str = "") -> None:
        self._args = (code, op_index, op, detail)
        self.code = code
        self.op_index = op_index
        self.op = op
        where = f"ops[{op_index}] {brief(op)}" if op_index >= 0 else "the stored value"
        super().__init__(f"update failed at {where}: {code}" + (f" ({detail})" if detail else ""))


class NotANumber(UpdateFailed):
    """An increment or decrement met a value that is not a number; nothing changed."""


class IntegerOverflow(UpdateFailed):
    """An integer increment would leave the signed 64-bit range; nothing changed."""


class NotReplicated(StateError):
    """With ``durability="replicated"``: the write was applied on the master, but fewer
    replicas than required confirmed it in time. It stands on the master and will most
    likely reach the replicas; if the master fails before they have it, it can be lost."""

    def __init__(self, acknowledged: int, needed: int, timeout: float) -> None:
        self._args = (acknowledged, needed, timeout)
        self.acknowledged = acknowledged
        self.needed = needed
        super().__init__(
            f"written on the master, but only {acknowledged} of {needed} replica(s) confirmed "
            f"it within {timeout:g} s; it may be lost if the master fails now"
        )


MODEL_PROBLEMS_SHOWN = 3


def _model_problems(problems: Sequence[tuple[str, str]], count: int) -> str:
    shown = "; ".join(
        f"{path or '(the value itself)'}: {what}" for path, what in problems[:MODEL_PROBLEMS_SHOWN]
    )
    more = count - min(len(problems), MODEL_PROBLEMS_SHOWN)
    return shown + (f" (and {more} more)" if more > 0 else "")


class ModelValidationError(InvalidInput):
    """A value given to a typed group view (``state.group(name, model=M)``) is not a valid
    ``M``, or an update would leave one that is not; nothing was written.

    ``problems``: (field path, what is wrong) pairs, the path dotted from the top of the value
    (``items.0.qty``; '' for the value itself); ``count``: how many pydantic found (the list
    keeps the first few). The message names paths and error types, never the value, which may
    be huge or private.
    """

    def __init__(
        self,
        where: str,
        model: str,
        problems: Sequence[tuple[str, str]],
        count: int | None = None,
    ) -> None:
        self.model = model
        self.problems = list(problems)
        self.count = len(self.problems) if count is None else count
        self._args = (where, model, self.problems, self.count)
        super().__init__(
            f"{where}: not a valid {model}: {_model_problems(self.problems, self.count)}"
        )

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.problems]


class ModelDecodeError(DecodeError):
    """A value read through a typed group view does not fit its model: written through the
    untyped API, by another tool, or under an older model. ``group`` and ``key`` name the item,
    ``problems``, ``count`` and ``paths`` are `ModelValidationError`'s; ``what`` says which
    value (the stored one, or a change record's)."""

    def __init__(
        self,
        group: str,
        key: str,
        model: str,
        problems: Sequence[tuple[str, str]],
        count: int | None = None,
        what: str = "stored value",
    ) -> None:
        self.group = group
        self.key = key
        self.model = model
        self.problems = list(problems)
        self.count = len(self.problems) if count is None else count
        self._args = (group, key, model, self.problems, self.count, what)
        super().__init__(
            f"{brief(group)}/{brief(key)}: {what} does not fit {model}: "
            f"{_model_problems(self.problems, self.count)}"
        )

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.problems]


class NotABarrier(InvalidInput):
    """A barrier call (`State.barrier`, ``barrier_state``, ``reset_barrier``) named an item
    that holds something else than a barrier, or one in a layout this engine does not read;
    nothing was written, and the item stays as it was."""


class PartiesMismatch(InvalidInput):
    """An arrival gave another ``parties`` than the barrier recorded when it was made: the
    steps disagree on how many must arrive. Nothing was written; ``recorded`` and ``given``
    say both."""

    def __init__(self, group: str, key: str, recorded: int, given: int) -> None:
        self._args = (group, key, recorded, given)
        self.recorded = recorded
        self.given = given
        super().__init__(
            f"{brief(group)}/{brief(key)}: the barrier was made for {recorded} parties; "
            f"this arrival says {given}"
        )


class Contention(StateError):
    """A compare-and-set loop (a barrier's arrival or reset) lost the race to other writers
    ``attempts`` times in a row and gave up: this call's arrival is not recorded (or the
    barrier not reset), and calling again is safe. Arrivals alone never cause it (each loses
    at most once per other party); a writer rewriting the item without pause does."""

    def __init__(self, group: str, key: str, attempts: int) -> None:
        self._args = (group, key, attempts)
        self.attempts = attempts
        super().__init__(
            f"{brief(group)}/{brief(key)}: the item changed under {attempts} compare-and-set "
            "attempts in a row; nothing of this call was written"
        )
