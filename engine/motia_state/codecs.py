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
from typing import Any, Protocol

import msgpack
import orjson

from .errors import DecodeError, EncodeError, InvalidInput, brief

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DEPTH = 128  # below orjson's own limit, so the check, not the encoder, explains a refusal
TOO_DEEP = "stored value nests too deeply to decode"


class Codec(Protocol):
    name: str

    def encode(self, value: Any) -> bytes: ...

    def decode(self, data: bytes) -> Any: ...


def _check(value: Any, *, allow_bytes: bool, allow_nan: bool, depth: int = 0) -> None:
    """Refuse anything the codec would not give back unchanged."""
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


# orjson reads integers beyond 64 bits as floats. This engine never writes one, but a
# value written by another tool may hold one: such text goes to the exact stdlib parser.
# Counting digits (C speed) first keeps the regex (slow on long text) off most values.
_LONG_DIGITS = re.compile(rb"[0-9]{20}")
_DIGITS = b"0123456789"


def _may_hold_huge_int(data: bytes) -> bool:
    return len(data) - len(data.translate(None, _DIGITS)) >= 20 and bool(_LONG_DIGITS.search(data))


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

    def decode(self, data: bytes) -> Any:
        if not _may_hold_huge_int(data):
            try:
                return orjson.loads(data)
            except orjson.JSONDecodeError:
                pass  # the stdlib reads a little more (NaN, lone surrogates); let it decide
        try:  # strict UTF-8: json.loads would take UTF-16 and encoded lone surrogates
            return json.loads(data.decode())
        except ValueError as exc:
            raise DecodeError(f"stored value is not JSON: {exc}") from None
        except RecursionError:  # foreign text nested past what the stdlib parser can follow
            raise DecodeError(TOO_DEEP) from None


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
