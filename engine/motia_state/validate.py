"""Input rules shared by every backend, checked before anything is sent or written."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from .errors import InvalidInput, brief

MAX_GROUP_BYTES = 1024
MAX_KEY_BYTES = 8192
MAX_VERSION = 2**53  # versions are Lua numbers (doubles) on the server
DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024
MAX_TTL_S = 100 * 365 * 24 * 3600
MAX_INT = 2**63 - 1  # what the server takes as a count
# Group names that begin so are the engine's own (off Redis, the idempotency receipts).
RESERVED_GROUP_PREFIX = "\x00motia-state:"


def _name(kind: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{kind} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidInput(f"{kind} must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"{kind} {brief(value)} is not valid unicode (lone surrogate)") from None
    if size > limit:
        raise InvalidInput(f"{kind} is {size} bytes in UTF-8; the limit is {limit}")
    return value


def group(value: object) -> str:
    name = _name("group", value, MAX_GROUP_BYTES)
    if name.startswith(RESERVED_GROUP_PREFIX):
        raise InvalidInput(
            f"group {brief(name)} is reserved: names starting with NUL "
            "'motia-state:' are the engine's own"
        )
    return name


def key(value: object) -> str:
    return _name("key", value, MAX_KEY_BYTES)


def idempotency_key(value: object) -> str:
    return _name("idempotency_key", value, MAX_KEY_BYTES)


def name(kind: str, value: object) -> str:
    """Another name the server keeps (a consumer group, a consumer): a group name's rules."""
    return _name(kind, value, MAX_GROUP_BYTES)


def _names(kind: str, values: object, one: Callable[[object], str]) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)):
        raise InvalidInput(f"{kind} must be a list of str, not a single string")
    if not isinstance(values, Iterable):
        raise InvalidInput(f"{kind} must be a list of str, not {type(values).__name__}")
    return tuple(one(v) for v in values)


def prefix(value: object) -> str:
    return _name("prefix", value, MAX_GROUP_BYTES)


def keys(values: object) -> tuple[str, ...]:
    if isinstance(values, (list, tuple, dict)) and values:
        # A batch of plain keys passes in a few C loops instead of a call per key: str
        # only, none empty, none long enough that its UTF-8 could pass the limit, and all
        # encodable (one join). Anything else: key by key, which names the culprit.
        ks = tuple(values)
        if (
            set(map(type, ks)) == {str}
            and min(map(len, ks))
            and max(map(len, ks)) <= MAX_KEY_BYTES // 4
        ):
            try:
                "".join(ks).encode()
            except UnicodeEncodeError:
                pass
            else:
                return ks
    return _names("keys", values, key)


def groups(values: object) -> tuple[str, ...]:
    return _names("groups", values, group)


def version(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"version must be an int or None, not {type(value).__name__}")
    if not 0 <= value <= MAX_VERSION:
        raise InvalidInput(f"version must be between 0 and 2**53, got {brief(value)}")
    return value


def positive_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= MAX_INT:
        raise InvalidInput(f"{name} must be an int from {minimum} to 2**63-1, got {brief(value)}")
    return value


def seconds(name: str, value: object) -> float | None:
    """A duration: a positive, finite number of seconds up to 100 years; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"{name} must be a number of seconds, not {type(value).__name__}")
    if not 0 < value <= MAX_TTL_S:  # NaN fails the comparison too
        raise InvalidInput(
            f"{name} must be a positive, finite number of seconds, got {brief(value)}"
        )
    return value


def ttl(value: object, name: str = "ttl") -> int | None:
    """A TTL in seconds (int or float) as whole milliseconds, at least 1; None stays None."""
    if value is None:  # every write without a TTL: no call
        return None
    s = seconds(name, value)
    assert s is not None
    return max(1, round(s * 1000))
