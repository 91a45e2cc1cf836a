"""JSON as people type and read it: what the CLI and the inspector (`ui`) take and show.

Input is read exactly: an integer keeps every digit, so the engine refuses one past 64 bits
as it would from the API, instead of a float standing in for it. Output always reaches its
reader: a lone surrogate (foreign text, a name that is not UTF-8) becomes its escape, and a
value JSON cannot carry says why (`Unprintable`).
"""

from __future__ import annotations

import json
import math
from typing import Any

from .codecs import INT64_MIN, MAX_DEPTH
from .errors import EncodeError, InvalidInput, StateError


class Unprintable(StateError):
    """A value the requested output cannot carry (NaN in JSON, nesting too deep to print)."""


def dumps(data: Any, *, strict: bool = True, indent: int | None = None) -> str:
    """JSON text that stdout can always take. ``strict`` (--json): standard JSON only, so
    NaN is refused, not printed. A lone surrogate (foreign text, a name that is not UTF-8)
    becomes its ``\\uXXXX`` escape, which reads back as the same string."""
    try:
        text = json.dumps(
            data, ensure_ascii=False, allow_nan=not strict, default=_plain, indent=indent
        )
    except ValueError:
        raise Unprintable("the value holds NaN or Infinity, which JSON cannot carry") from None
    except RecursionError:
        raise Unprintable("the value nests too deeply to print") from None
    return text.encode("utf-8", errors="backslashreplace").decode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


INPUT_DEPTH = MAX_DEPTH + 2  # an update op's value sits two levels inside OPS


def parse_json(what: str, text: str) -> Any:
    """JSON from the command line, read exactly: an integer keeps every digit, so the
    engine refuses one past 64 bits as it would from the API, instead of a float standing
    in for it. NaN, numbers past a double's range and a key given twice in one object
    (which would silently drop a value) are refused."""
    try:
        value = json.loads(
            text,
            parse_constant=no_constant,
            parse_float=_finite,
            parse_int=_integer,
            object_pairs_hook=once,
        )
    except RecursionError:
        raise InvalidInput(f"{what} nests deeper than {INPUT_DEPTH} levels") from None
    except ValueError as exc:
        raise InvalidInput(f"{what} is not JSON: {exc} (quote strings: '\"text\"')") from None
    if _depth(value) > INPUT_DEPTH:
        raise InvalidInput(f"{what} nests deeper than {INPUT_DEPTH} levels")
    return value


def no_constant(text: str) -> Any:
    """``parse_constant`` for `json.loads`: NaN and Infinity are not JSON numbers."""
    raise ValueError(f"{text} is not a JSON number")


def once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` for `json.loads`: a key given twice is refused, not resolved
    to its last value."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise ValueError(f"key {key!r} appears twice in one object")
        found[key] = value
    return found


def _integer(text: str) -> int:
    if len(text) > len(str(INT64_MIN)):  # spares int() a text of thousands of digits
        raise EncodeError(
            f"integer {text[:20]}... ({len(text)} characters) is outside the signed 64-bit range"
        )
    return int(text)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text} is beyond the range of a double")
    return number


def _depth(value: Any) -> int:
    """How deep containers nest (without recursion: the input may nest deep)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        node, level = todo.pop()
        if isinstance(node, dict):
            node = list(node.values())
        if isinstance(node, list):
            deepest = max(deepest, level)
            todo += [(child, level + 1) for child in node]
    return deepest
