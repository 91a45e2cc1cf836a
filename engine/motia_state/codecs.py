"""Value codecs: how a Python value becomes the bytes stored in a hash field.

A value is checked before it is encoded, so that a write either stores exactly
what the caller will read back or raises `EncodeError` and stores nothing.
The checks are the union of what would otherwise be lost silently: ``json``
turns tuples into lists and int dict keys into strings, writes NaN, and accepts
integers no other Motia runtime can read; msgpack cannot hold ints past 64 bits.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from functools import partial
from itertools import chain, compress
from operator import is_
from typing import Any, Protocol

import msgpack
import orjson

from .errors import DecodeError, EncodeError, InvalidInput, brief

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DEPTH = 128  # below orjson's own limit, so the check, not the encoder, explains a refusal
TOO_DEEP = "stored value nests too deeply to decode"
# What JSON text may nest to when read: orjson's own limit, so that the stdlib parser, which
# reads what orjson does not (huge ints, NaN, lone surrogates), takes no deeper text than
# orjson would, whatever the interpreter's recursion limit (which an application, or mypy,
# may have raised far past it).
MAX_READ_DEPTH = 1024
_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_NESTING = bytes.maketrans(b"[{]}", b"\x02\x02\x00\x00")
_NOT_NESTING = bytes(b for b in range(256) if b not in b"[{]}")


class Codec(Protocol):
    name: str

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


_PLAIN = frozenset({str, bool, type(None), int, float, dict, list})
_PLAIN_OR_BYTES = _PLAIN | {bytes}
_STR = frozenset({str})
_is_dict, _is_list = partial(is_, dict), partial(is_, list)
_is_int, _is_float = partial(is_, int), partial(is_, float)
_view: Callable[[bytes], memoryview[int]] = memoryview  # bytes(view) copies; bytes(b) would not


def _surely_exact(
    values: Sequence[Any], *, allow_bytes: bool, allow_nan: bool, str_keys: bool
) -> bool:
    """True when every value is made only of plain JSON types within `_check`'s limits, so
    `_check` would pass them all; False when unsure (then `_check` decides, value by value).

    `_check` walks every value in Python, a call per node: twenty times the cost of the
    encoding. This census asks the same questions a nesting level at a time over all the
    values at once, with C loops only (`map`, `set`, `compress`, `min`/`max`), so a batch
    pays a few passes over its nodes and a lone value a dozen C calls. Exact types only:
    subclasses, tuples, NaN, out-of-range integers and the like make it unsure. The keys
    are left to the encoder where it refuses what `_check` refuses (orjson: non-str keys,
    str subclasses included): ``str_keys`` checks them here for the others. A lone value is
    quicker walked than censused (each C call costs what a few Python steps do): `encode`
    keeps the walk.
    """
    allowed = _PLAIN_OR_BYTES if allow_bytes else _PLAIN
    level: Sequence[Any] = values
    depth = 0
    while level:
        kinds = set(map(type, level))
        if not kinds <= allowed:
            return False
        if int in kinds:
            ints = (
                list(compress(level, map(_is_int, map(type, level)))) if len(kinds) > 1 else level
            )
            if min(ints) < INT64_MIN or max(ints) > INT64_MAX:
                return False
        if float in kinds and not allow_nan:
            floats = compress(level, map(_is_float, map(type, level))) if len(kinds) > 1 else level
            if not all(map(math.isfinite, floats)):
                return False
        has_dict, has_list = dict in kinds, list in kinds
        if not (has_dict or has_list):
            return True
        if depth >= MAX_DEPTH:
            return False
        dicts = (
            (level if len(kinds) == 1 else list(compress(level, map(_is_dict, map(type, level)))))
            if has_dict
            else ()
        )
        if str_keys and dicts and not set(map(type, chain.from_iterable(dicts))) <= _STR:
            return False
        lists = (
            (level if len(kinds) == 1 else compress(level, map(_is_list, map(type, level))))
            if has_list
            else ()
        )
        level = [*chain.from_iterable(map(dict.values, dicts)), *chain.from_iterable(lists)]
        depth += 1
    return True


def _check(value: Any, *, allow_bytes: bool, allow_nan: bool, depth: int = 0) -> None:
    """Refuse anything the codec would not give back unchanged, with a message naming it.

    The reference rule, and the slow path: `_surely_exact` answers first for values made
    of plain types only, and this walk runs only where it is unsure."""
    kind = type(value)  # exact types first: this runs on every write
    if kind is str or kind is bool or value is None:
        return
    if kind is dict or (kind is not list and isinstance(value, dict)):
        if depth >= MAX_DEPTH:
            raise EncodeError(f"value nests deeper than {MAX_DEPTH} levels")
        for k, item in value.items():
            if type(k) is not str:
                raise EncodeError(
                    f"dict key {brief(k)} is not a str; it would not come back as it went in"
                )
            _check(item, allow_bytes=allow_bytes, allow_nan=allow_nan, depth=depth + 1)
        return
    if isinstance(value, list):
        if depth >= MAX_DEPTH:
            raise EncodeError(f"value nests deeper than {MAX_DEPTH} levels")
        for item in value:
            _check(item, allow_bytes=allow_bytes, allow_nan=allow_nan, depth=depth + 1)
        return
    if isinstance(value, (bool, str)):
        return
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise EncodeError(f"integer {brief(value)} is outside the signed 64-bit range")
        return
    if isinstance(value, float):
        if not allow_nan and not math.isfinite(value):
            raise EncodeError(f"{brief(value)} cannot be stored as JSON (use codec='msgpack')")
        return
    if allow_bytes and isinstance(value, bytes):
        return
    raise EncodeError(f"cannot store a value of type {type(value).__name__}")


# orjson reads integers outside int64/uint64 as floats: above 2**64-1 (20 digits or more) and
# below -2**63 (a minus and 19 digits or more). This engine never writes one, but a value
# written by another tool may hold one: such text goes to the exact stdlib parser. Counting
# digits (C speed) first keeps the regex (slow on long text) off most values.
_LONG_DIGITS = re.compile(rb"-[0-9]{19}|[0-9]{20}")
_DIGITS = b"0123456789"


def _nests_deeper(data: bytes, limit: int) -> bool:
    """Whether JSON text nests deeper than ``limit``: counted in C first (a text with no more
    brackets than that cannot), else level by level outside its strings."""
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    text = _STRINGS.sub(b"", data)
    steps = text.translate(_NESTING, _NOT_NESTING)
    depth = 0
    for step in steps:  # 2: opens, 0: closes
        depth += step - 1
        if depth > limit:
            return True
    return False


def _may_hold_huge_int(data: bytes) -> bool:
    return len(data) - len(data.translate(None, _DIGITS)) >= 19 and bool(_LONG_DIGITS.search(data))


# For a batch: every digit and minus sign becomes 'd' (the rest '.'), so one substring search
# over a slice of values joined by '.' finds, in any of them, a run of 20 digits or a minus and
# 19 digits (and, rarely, other runs of 20 such bytes inside a string: then value by value).
_SIGNED = _DIGITS + b"-"
_DIGIT_RUNS = bytes.maketrans(_SIGNED + bytes(b for b in range(256) if b not in _SIGNED),
                              b"d" * 11 + b"." * 245)  # fmt: skip
_TWENTY = b"d" * 20
# Slices of this many values: their join stays well below malloc's mmap threshold (128 KiB
# for values of a few hundred bytes), so its memory is reused, not faulted in afresh per call.
_SLICE = 128


def _loads_all(datas: Sequence[bytes]) -> list[Any] | None:
    """orjson over every value, or None when any might hold a huge int or does not parse
    (then `decode`, value by value, decides)."""
    out: list[Any] = []
    loads = orjson.loads
    try:
        for i in range(0, len(datas), _SLICE):
            part = datas[i : i + _SLICE]
            if _TWENTY in b".".join(part).translate(_DIGIT_RUNS):
                return None
            out += map(loads, part)
    except orjson.JSONDecodeError:
        return None
    return out


class JsonCodec:
    """Compact UTF-8 JSON, readable in redis-cli and shared with Motia.

    orjson does the work (ten times the stdlib's speed, which is what decides
    get_group on large groups). Its text is compact, UTF-8, and writes every float
    as the shortest digits that read back as the same double (``0.1`` stays
    ``0.1``; ``1e-05`` is spelled ``0.00001``). The stdlib parser takes over for
    the rare stored text orjson would not read exactly.
    """

    name = "json"

    def encode(self, value: Any) -> bytes:
        _check(value, allow_bytes=False, allow_nan=False)
        try:
            return orjson.dumps(value)
        except orjson.JSONEncodeError as exc:
            raise EncodeError(f"cannot encode value as JSON: {exc}") from None

    def encode_many(self, values: Sequence[Any]) -> list[bytes]:
        """`encode` for each value, the census done once over all of them (set_many)."""
        if _surely_exact(values, allow_bytes=False, allow_nan=False, str_keys=False):
            try:
                # Each text copied out at once: orjson's bytes keep the 1 KiB+ buffer it wrote
                # into, so thousands alive together grow the heap by a page per four values,
                # handed back to the system when freed and faulted in afresh next time (6x
                # slower for 20k values here); the copy fits pymalloc, and orjson reuses its
                # buffer's memory for the next value.
                return list(map(bytes, map(_view, map(orjson.dumps, values))))
            except orjson.JSONEncodeError:
                pass  # a non-str key, a lone surrogate: `encode` names it
        return [self.encode(value) for value in values]

    def decode_many(self, datas: Sequence[bytes]) -> list[Any]:
        """`decode` for each value, in C loops when none needs a second look (get_group)."""
        out = _loads_all(datas)
        return [self.decode(data) for data in datas] if out is None else out

    def decode(self, data: bytes) -> Any:
        if not _may_hold_huge_int(data):
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass  # the stdlib reads a little more (NaN, lone surrogates); let it decide
        if _nests_deeper(data, MAX_READ_DEPTH):
            raise DecodeError(TOO_DEEP)
        try:  # strict UTF-8: json.loads would take UTF-16 and encoded lone surrogates
            return json.loads(data.decode())
        except ValueError as exc:
            raise DecodeError(f"stored value is not JSON: {exc}") from None
        except RecursionError:  # foreign text nested past what the stdlib parser can follow
            raise DecodeError(TOO_DEEP) from None

    def decoder(self, data: bytes) -> Callable[[bytes], Any]:
        """What `decode` would do with ``data``, chosen once for text decoded again and again
        (near-cache hits): orjson itself, without the checks, when it reads the text."""
        if not _may_hold_huge_int(data):
            try:
                orjson.loads(data)
                return orjson.loads
            except orjson.JSONDecodeError:
                pass
        return self.decode


_unpack = partial(msgpack.unpackb, raw=False)


class MsgpackCodec:
    """Binary msgpack: smaller, faster, holds bytes and non-finite floats exactly."""

    name = "msgpack"

    def encode(self, value: Any) -> bytes:
        _check(value, allow_bytes=True, allow_nan=True)
        try:
            return msgpack.packb(value, use_bin_type=True)
        except UnicodeEncodeError as exc:
            raise EncodeError(
                f"value holds a string that is not valid unicode: {exc.reason}"
            ) from None

    def encode_many(self, values: Sequence[Any]) -> list[bytes]:
        if _surely_exact(values, allow_bytes=True, allow_nan=True, str_keys=True):
            packer = msgpack.Packer(use_bin_type=True)
            try:
                return [packer.pack(value) for value in values]
            except UnicodeEncodeError:
                pass
        return [self.encode(value) for value in values]

    def decode_many(self, datas: Sequence[bytes]) -> list[Any]:
        try:
            return list(map(_unpack, datas))
        except (ValueError, msgpack.UnpackException):  # `decode` names it, value by value
            return [self.decode(data) for data in datas]

    def decode(self, data: bytes) -> Any:
        try:
            return msgpack.unpackb(data, raw=False)
        except msgpack.StackError:
            raise DecodeError(TOO_DEEP) from None
        except (ValueError, msgpack.UnpackException) as exc:
            raise DecodeError(f"stored value is not msgpack: {exc}") from None


CODECS: dict[str, type[JsonCodec] | type[MsgpackCodec]] = {
    "json": JsonCodec,
    "msgpack": MsgpackCodec,
}


def encode_all(codec: Codec, values: Sequence[Any]) -> list[bytes]:
    """Each value encoded: in one pass where the codec can (``encode_many``), else one by one
    (a user's codec needs only ``encode``)."""
    many = getattr(codec, "encode_many", None)
    if many is not None:
        encoded: list[bytes] = many(values)
        return encoded
    return [codec.encode(value) for value in values]


def decoder(codec: Codec, data: bytes) -> Callable[[bytes], Any]:
    """The codec's decoder chosen for ``data`` (``decoder``) where it has one, else ``decode``
    (a user's codec needs only that)."""
    choose = getattr(codec, "decoder", None)
    if choose is not None:
        chosen: Callable[[bytes], Any] = choose(data)
        return chosen
    return codec.decode


def decode_all(codec: Codec, datas: Sequence[bytes]) -> list[Any]:
    """Each value decoded: in one pass where the codec can (``decode_many``), else one by one."""
    many = getattr(codec, "decode_many", None)
    if many is not None:
        decoded: list[Any] = many(datas)
        return decoded
    return [codec.decode(data) for data in datas]


def get_codec(codec: str | Codec) -> Codec:
    if isinstance(codec, str):
        try:
            return CODECS[codec]()
        except KeyError:
            pass
    elif (
        not isinstance(codec, type)  # the class, not an instance
        and isinstance(getattr(codec, "name", None), str)
        and all(callable(getattr(codec, method, None)) for method in ("encode", "decode"))
    ):
        return codec
    raise InvalidInput(
        f"unknown codec {brief(codec)}; use one of {sorted(CODECS)} or an object with a name, "
        "encode and decode"
    )
