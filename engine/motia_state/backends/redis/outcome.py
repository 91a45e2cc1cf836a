"""What a reply or a failure says about a call, and whether it may be sent again.

Pure decisions, no I/O, shared by every seam: which error replies mean the server
refused a call whole (`refused`), what the caller is told (`translate`: a typed
`StateError` without secrets), whether anything of a call may have run once a step
is done (`account`), and how long to wait before sending it again, if at all
(`retry_delay`).
"""

from __future__ import annotations

import time
from typing import Any

import redis
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    ClusterDownError,
    NoPermissionError,
    NoScriptError,
    ReadOnlyError,
    RedisError,
    ResponseError,
    TryAgainError,
)
from redis.sentinel import MasterNotFoundError

from ... import ops
from ...errors import (
    BackendUnavailable,
    InvalidInput,
    OutcomeUnknown,
    PermissionDenied,
    ServerBusy,
    StateError,
)
from ...steps import Batch, Masters
from .plan import RedisPlan


class NotSent(redis.ConnectionError):
    """The connection failed before the command was written: nothing reached the server."""


# Seconds to wait before each new attempt of a call that failed on the connection, while
# nothing of it reached the server or it may be re-sent (`ops.Traits.resend`).
RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0)


# ACL refusals that a script's redis.call reports as a plain ERR, not NOPERM (Redis 7.0, then
# Valkey 8).
_REFUSED = ("can't run this command", "can't publish to the channel", "ACL failure in script")


# Replies that prove the command never ran: the server refused it whole, for a reason that
# passes. redis-py names some by class, but not always: an error reply read in a pipeline,
# or raised inside a script, can come as a plain ResponseError holding the code.
_PASSING = (BusyLoadingError, ClusterDownError, ReadOnlyError, TryAgainError)  # MASTERDOWN too
_PASSING_CODES = tuple(
    f"{code} " for code in ("BUSY", "NOREPLICAS", "LOADING", "READONLY", "MASTERDOWN",
                            "CLUSTERDOWN", "TRYAGAIN")
)  # fmt: skip


def refused(exc: BaseException) -> bool:
    """Whether ``exc`` is a reply refusing a command whole (see `ServerBusy`), or a failure
    to connect because the server refused the handshake so (`NotSent` keeps it as its cause)."""
    if isinstance(exc, NotSent) and exc.__cause__ is not None:
        return refused(exc.__cause__)
    if isinstance(exc, redis.ConnectionError) and isinstance(exc.__context__, ReadOnlyError):
        return True  # redis-py's Sentinel client reports a demoted primary's READONLY so
    return isinstance(exc, _PASSING) or (
        isinstance(exc, ResponseError) and str(exc).startswith(_PASSING_CODES)
    )


def translate(exc: RedisError, describe: str, sent: bool = True) -> StateError:
    cause = exc.__cause__ if isinstance(exc, NotSent) else exc
    if isinstance(cause, MasterNotFoundError):  # its text lists every Sentinel client's repr
        service = str(cause).split(" : ", 1)[0]
        exc = cause = MasterNotFoundError(f"{service}: no Sentinel named in the URL knows it")
    if isinstance(cause, AuthenticationError):  # trying again cannot help
        return PermissionDenied(f"{describe}: the server refused the credentials: {cause}")
    if isinstance(cause, ResponseError) and "DB index is out of range" in str(cause):
        return InvalidInput(f"{describe}: the server has no such database ({cause})")
    if refused(exc):  # after an earlier step ran (sent), retried only if the request may be re-sent
        busy = ServerBusy(f"{describe}: the server refused the call, nothing of it ran: {exc}")
        busy.sent = sent
        return busy
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        error = BackendUnavailable(f"{describe}: {exc}")
        error.sent = sent
        return error
    if isinstance(exc, NoPermissionError) or any(text in str(exc) for text in _REFUSED):
        return PermissionDenied(
            f"{describe}: {exc} (the engine's ACL user needs the commands and key patterns "
            "listed under Guarantees > ACL in the README)"
        )
    return StateError(f"{describe}: server error: {exc}")


def retry_delay(
    op: ops.Request[Any], exc: BackendUnavailable, attempt: int, plan: RedisPlan, started: float
) -> float:
    """How long to wait before sending ``op`` again after ``exc``; raises when it must not be:
    a write that may have reached the server becomes `OutcomeUnknown`. A call the server
    refused whole (`ServerBusy`) is sent again until ``plan.patience`` has passed since
    ``started``, whatever the attempt: a server loading its data takes seconds, not tries."""
    if exc.sent and not ops.traits(op).resend:
        raise OutcomeUnknown(
            f"{exc}; the write was sent but no reply came: it may or may not have been "
            "applied (read the item's version to find out)"
        ) from None
    delay = RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)]
    if isinstance(exc, ServerBusy):
        if time.monotonic() - started + delay > plan.patience:
            raise exc
        return delay
    if attempt >= plan.retries:
        if exc.sent and getattr(op, "idem", None) is not None:
            exc.args = (
                f"{exc}; the write carries an idempotency key, so calling it again with the "
                "same key is safe: it applies at most once",
            )
        raise exc
    return delay


def _step_outcome(call: Any, outcome: Any) -> tuple[bool, RedisError | None]:
    """What a step's outcome (the error it raised, or its reply: a batch's errors come in
    place) says: whether anything of it may have run, and, when nothing did because the
    server refused it whole for a reason that passes, that refusal. NOSCRIPT replies and
    SCRIPT LOAD run nothing; a WAIT that a write's batch ends with is no part of the write."""
    if isinstance(call, tuple) and not isinstance(outcome, RedisError):  # a reply: it ran,
        return call[:2] != ("SCRIPT", "LOAD"), None  # unless it only loaded a script
    if isinstance(call, Masters):
        return False, None
    if isinstance(outcome, NotSent) and not refused(outcome):
        return False, None  # never reached the server
    if isinstance(call, Batch) and isinstance(outcome, list):
        replies = [r for c, r in zip(call.calls, outcome, strict=True) if c[0] != "WAIT"]
    else:
        replies = [outcome]
    if not all(isinstance(r, NoScriptError) or refused(r) for r in replies):
        return True, None
    return False, next((r for r in replies if isinstance(r, RedisError) and refused(r)), None)


def account(call: Any, outcome: Any, sent: bool, describe: str) -> bool:
    """Whether anything of the call may have run once this step is done (``sent``: before
    it). A step refused whole before anything ran raises `ServerBusy`: the call may be sent
    again. A refusal after an earlier step ran proves nothing about that step, so it takes
    the ordinary way."""
    if sent:  # the common case, and the hot path: only a first step can be refused whole
        return True
    ran, refusal = _step_outcome(call, outcome)
    if refusal is not None:
        raise translate(refusal, describe, sent=False) from None
    return ran


# Error replies read in place, so that each call of a pipeline is judged on its own reply
# (redis-py raises LOADING as a connection error, but it is a whole reply like any other).
IN_PLACE = (ResponseError, BusyLoadingError)


def demoted(reply: Any) -> bool:
    """Whether a reply says the server is a replica now (READONLY): its connection is then
    dropped, so that the call's next attempt connects anew, and through Sentinel to the
    promoted primary (redis-py's Sentinel client does so only for replies it parses itself)."""
    return isinstance(reply, ReadOnlyError) or (
        isinstance(reply, ResponseError) and str(reply).startswith("READONLY ")
    )
