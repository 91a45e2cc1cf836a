"""Input rules shared by every backend, checked before anything is sent or written."""

from __future__ import annotations

from collections.abc import Iterable

from .errors import InvalidInput

MAX_GROUP_BYTES = 1024
MAX_KEY_BYTES = 8192
MAX_VERSION = 2**53  # versions are Lua numbers (doubles) on the server
DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024
MAX_TTL_S = 100 * 365 * 24 * 3600


def _name(kind: str, value: object, limit: int) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{kind} must be a str, not {type(value).__name__}")
    if not value:
        raise InvalidInput(f"{kind} must not be empty")
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidInput(f"{kind} {value!r} is not valid unicode (lone surrogate)") from None
    if size > limit:
        raise InvalidInput(f"{kind} is {size} bytes in UTF-8; the limit is {limit}")
    return value


def group(value: object) -> str:
    return _name("group", value, MAX_GROUP_BYTES)


def key(value: object) -> str:
    return _name("key", value, MAX_KEY_BYTES)


def keys(values: Iterable[object]) -> tuple[str, ...]:
    if isinstance(values, (str, bytes)):
        raise InvalidInput("keys must be a list of str, not a single string")
    return tuple(key(k) for k in values)


def version(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"version must be an int or None, not {type(value).__name__}")
    if not 0 <= value <= MAX_VERSION:
        raise InvalidInput(f"version must be between 0 and 2**53, got {value}")
    return value


def positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"{name} must be a positive int, got {value!r}")
    return value


def ttl(value: object) -> int | None:
    """A TTL in seconds (int or float) as whole milliseconds, at least 1; None stays None."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"ttl must be a number of seconds, not {type(value).__name__}")
    if not value > 0 or value != value or value > MAX_TTL_S:
        raise InvalidInput(f"ttl must be a positive, finite number of seconds, got {value!r}")
    return max(1, round(value * 1000))
