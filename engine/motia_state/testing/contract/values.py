"""Values come back exactly as they went in, under both codecs, through every read path."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from motia_state import InvalidInput

EXACT: dict[str, Any] = {
    "int64 max": 2**63 - 1,
    "int64 min": -(2**63),
    "pi": 3.141592653589793,
    "0.1+0.2": 0.1 + 0.2,
    "1e308": 1e308,
    "5e-324": 5e-324,
    "-0.0": -0.0,
    "empty string": "",
    "unicode": "ünï©ødé ✓ 🚀 \U0010ffff",
    "escapes": 'quote " backslash \\ slash / newline \n tab \t nul \x00 \x1f',
    "nested": {"a": {"b": [1, {"c": [None, True, False]}], "d": {}}, "e": []},
    "empty list": [],
    "empty dict": {},
    "key order": {"z": 1, "a": 2, "m": 3},
    "none": None,
    "false": False,
    "zero": 0,
    "one megabyte": "x" * (1024 * 1024),
}


def with_codec(open_state: Any, codec: str) -> Any:
    """A state storing values with ``codec``; the test is skipped where the backend refuses
    any codec but JSON (file:// stores Motia's JSON file format), as it must at once."""
    try:
        return open_state(codec=codec)
    except InvalidInput as exc:
        if codec == "json":
            raise
        pytest.skip(f"the backend refuses codec={codec!r}: {exc}")


@pytest.fixture(params=["json", "msgpack"])
def codec_state(request: pytest.FixtureRequest, open_state: Any) -> Any:
    return with_codec(open_state, request.param)


@pytest.mark.parametrize("name", list(EXACT))
def test_round_trip_exact(codec_state: Any, name: str) -> None:
    value = EXACT[name]
    codec_state.set("values", name, value)
    got = codec_state.get("values", name)
    assert got == value
    assert type(got) is type(value)
    assert json.dumps(got) == json.dumps(value)  # key order, -0.0 and float digits too
    if isinstance(value, float):
        assert math.copysign(1, got) == math.copysign(1, value)


def test_round_trip_through_every_read_path(codec_state: Any) -> None:
    codec_state.set_many("values", EXACT)
    assert codec_state.items("values") == EXACT
    assert codec_state.get_many("values", list(EXACT)) == list(EXACT.values())
    assert dict(codec_state.iter_items("values", batch=5)) == EXACT
    assert codec_state.delete("values", "nested") == EXACT["nested"]


def test_msgpack_holds_bytes_and_non_finite_floats(open_state: Any) -> None:
    state = with_codec(open_state, "msgpack")
    state.set("g", "k", {"raw": b"\x00\xff", "inf": math.inf})
    assert state.get("g", "k") == {"raw": b"\x00\xff", "inf": math.inf}
    state.set("g", "nan", math.nan)
    assert math.isnan(state.get("g", "nan"))
