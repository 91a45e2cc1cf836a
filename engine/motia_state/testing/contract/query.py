"""Queries: filtered, sorted and paged reads of a group, the same on every backend (on Redis
evaluated in the server by lua/query.lua, elsewhere by the Python reference)."""

from __future__ import annotations

from typing import Any

import pytest

from motia_state import EncodeError, F, InvalidInput

ORDERS = {
    f"o{i:03}": {
        "status": ("paid", "new", "void")[i % 3],
        "total": i * 10,  # TOTALS
        "customer": {"city": ("Oslo", "Rome")[i % 2], "name": f"c{i}"},
        "tags": ["vip"] if i % 5 == 0 else [],
        "note": None if i % 4 == 0 else f"note {i}",
    }
    for i in range(60)
}

TOTALS = {f"o{i:03}": i * 10 for i in range(60)}


def _keys(page: Any) -> list[str]:
    return [item.key for item in page.items]


def _filled(state: Any) -> None:
    state.set_many("orders", ORDERS)


def _expected(test: Any) -> list[str]:
    return sorted(k for k, v in ORDERS.items() if test(v))


def _all(state: Any, where: Any, limit: int = 7) -> list[str]:
    """Every match, page by page, each once."""
    found: list[str] = []
    cursor = None
    while True:
        page = state.query("orders", where, limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        found += _keys(page)
        if page.cursor is None:
            break
        cursor = page.cursor
    assert len(found) == len(set(found)), found
    return sorted(found)


def test_motia_v0_filters_port_unchanged(state: Any) -> None:
    _filled(state)
    cases: list[tuple[dict[str, Any], Any]] = [
        ({"operation": "eq", "value": "paid"}, lambda v: v["status"] == "paid"),
        ({"operation": "neq", "value": "paid"}, lambda v: v["status"] != "paid"),
        ({"operation": "gt", "value": "new"}, lambda v: v["status"] > "new"),
        ({"operation": "gte", "value": "paid"}, lambda v: v["status"] >= "paid"),
        ({"operation": "lt", "value": "paid"}, lambda v: v["status"] < "paid"),
        ({"operation": "lte", "value": "new"}, lambda v: v["status"] <= "new"),
        ({"operation": "contains", "value": "ai"}, lambda v: "ai" in v["status"]),
        ({"operation": "notContains", "value": "ai"}, lambda v: "ai" not in v["status"]),
        ({"operation": "startsWith", "value": "vo"}, lambda v: v["status"].startswith("vo")),
        ({"operation": "endsWith", "value": "ew"}, lambda v: v["status"].endswith("ew")),
    ]
    for spec, test in cases:
        where = {"valueKey": "status", **spec}
        assert _all(state, where) == _expected(test), spec
        assert state.count("orders", where) == len(_expected(test)), spec
    null = {"valueKey": "note", "operation": "isNull"}
    assert _all(state, null) == _expected(lambda v: v["note"] is None)
    assert _all(state, {**null, "operation": "isNotNull"}) == _expected(lambda v: v["note"])
    both = [  # a v0 list: every filter holds
        {"valueKey": "status", "operation": "eq", "value": "paid"},
        {"valueKey": "total", "operation": "gte", "value": 300},
    ]
    assert _all(state, both) == _expected(lambda v: v["status"] == "paid" and v["total"] >= 300)


def test_the_builder_nested_paths_and_combinators(state: Any) -> None:
    _filled(state)
    rome_paid = (F("customer.city") == "Rome") & (F("status") == "paid")
    assert _all(state, rome_paid) == _expected(
        lambda v: v["customer"]["city"] == "Rome" and v["status"] == "paid"
    )
    either = (F("total") < 50) | (F(["customer", "name"]) == "c59")
    assert _all(state, either) == _expected(
        lambda v: v["total"] < 50 or v["customer"]["name"] == "c59"
    )
    assert _all(state, ~(F("status") == "void")) == _expected(lambda v: v["status"] != "void")
    assert _all(state, F("tags").contains("vip")) == _expected(lambda v: "vip" in v["tags"])
    assert _all(state, F("status").isin(["new", "void"])) == _expected(
        lambda v: v["status"] in ("new", "void")
    )
    assert _all(state, F("customer.zip").exists()) == []
    assert _all(state, F("customer.zip").is_null()) == sorted(ORDERS)
    assert _all(
        state, {"or": [{"not": {"valueKey": "total", "operation": "gt", "value": 10}}]}
    ) == [
        "o000",
        "o001",
    ]


def test_comparisons_are_exact_and_types_never_mix(state: Any) -> None:
    values = {
        "max": 2**63 - 1,
        "min": -(2**63),
        "tiny": 5e-324,
        "sum": 0.1 + 0.2,
        "tenth": 0.3,
        "one": 1,
        "onef": 1.0,
        "true": True,
        "text": "10",
        "none": None,
    }
    state.set_many("n", {k: {"x": v} for k, v in values.items()})

    def keys(where: Any) -> list[str]:
        return sorted(_keys(state.query("n", where, limit=100)))

    big = float(2**63)  # 2**63 - 1 as a double would round up to it
    assert keys((F("x") < big) & (F("x") > big / 2)) == ["max"]  # exact: just below it
    assert keys(F("x") == big) == []
    assert keys(F("x") == 2**63 - 1) == ["max"]
    assert keys(F("x") <= -big) == ["min"]  # -2**63 is -2.0**63 exactly
    assert keys(F("x") == -(2**63)) == ["min"]
    assert keys((F("x") > 0) & (F("x") < 1e-300)) == ["tiny"]
    assert keys(F("x") > 0.3) == ["max", "one", "onef", "sum"]
    assert keys(F("x") == 0.3) == ["tenth"]
    assert keys(F("x") == 1) == ["one", "onef"]  # by value; a boolean is not a number
    assert keys(F("x") == True) == ["true"]  # noqa: E712 (the builder, not a comparison)
    assert keys(F("x") > "1") == ["text"]  # strings compare with strings only
    assert keys(F("x") >= 10) == ["max"]  # "10" is a string: no match, no error
    assert keys(F("x").is_null()) == ["none"]


def test_strings_compare_by_code_point(state: Any) -> None:
    names = ["a", "B", "é", "z", "😀", "\u2028", "ab"]
    state.set_many("s", {f"k{i}": {"name": n} for i, n in enumerate(names)})
    for bound in names:
        got = sorted(item.value["name"] for item in state.query("s", F("name") > bound).items)
        assert got == sorted(n for n in names if n > bound), bound


def test_order_by_gives_the_top_and_pages_through_the_rest(state: Any) -> None:
    _filled(state)
    where = F("status") != "void"
    wanted = sorted(
        (k for k, v in ORDERS.items() if v["status"] != "void"),
        key=lambda k: (-TOTALS[k], k),
    )
    got: list[str] = []
    cursor = None
    while True:
        page = state.query(
            "orders", where, order_by="total", descending=True, limit=9, cursor=cursor
        )
        got += _keys(page)
        if page.cursor is None:
            break
        cursor = page.cursor
    assert got == wanted
    top = state.query("orders", None, order_by="customer.name", limit=3)
    assert [i.value["customer"]["name"] for i in top.items] == ["c0", "c1", "c10"]


def test_every_item_once_through_the_pages(state: Any) -> None:
    state.set_many("big", {f"k{i:04}": {"i": i} for i in range(1200)})
    keys: list[str] = []
    cursor = None
    while True:
        page = state.query("big", F("i") >= 0, limit=250, cursor=cursor)
        keys += _keys(page)
        if page.cursor is None:
            break
        cursor = page.cursor
    # each once, unless the hash was rehashing between two calls (HSCAN's guarantee)
    assert sorted(set(keys)) == [f"k{i:04}" for i in range(1200)]
    assert state.count("big") == 1200
    assert state.count("big", F("i") < 100) == 100


def test_keys_come_in_pages(state: Any) -> None:
    state.set_many("big", {f"k{i:04}": i for i in range(2500)})
    found: list[str] = []
    cursor = None
    while True:
        page = state.list_keys("big", cursor=cursor, count=300)
        found += page.keys
        if page.cursor is None:
            break
        cursor = page.cursor
    # each once, unless the hash was rehashing between two calls (HSCAN's guarantee)
    assert sorted(set(found)) == [f"k{i:04}" for i in range(2500)]
    assert state.group("big").list_keys(count=10_000).keys  # a view too
    with pytest.raises(InvalidInput, match="count"):
        state.list_keys("big", count=0)
    with pytest.raises(InvalidInput, match="cursor"):
        state.list_keys("big", cursor="next")


def test_items_carry_their_version_and_expiry(state: Any) -> None:
    state.set("g", "k", {"a": 1})
    state.set("g", "k", {"a": 2})
    (item,) = state.query("g", F("a") == 2).items
    assert (item.group, item.key, item.value, item.version, item.expires_at) == (
        "g", "k", {"a": 2}, 2, None,
    )  # fmt: skip
    assert state.group("g").count(F("a") == 2) == 1
    assert _keys(state.group("g").query(F("a") == 2)) == ["k"]


@pytest.mark.parametrize(
    "where",
    [
        {"valueKey": "a", "operation": "like", "value": 1},
        {"valueKey": "a", "operation": "eq"},
        {"valueKey": 7, "operation": "eq", "value": 1},
        {"and": "x"},
        {"xor": []},
        {"a": 1, "b": 2},
        "status == paid",
        F("a").startswith(1),  # type: ignore[arg-type]
        F("a").isin(5),  # type: ignore[arg-type]
        {"valueKey": "a.__proto__", "operation": "eq", "value": 1},
        {"valueKey": "a..b", "operation": "eq", "value": 1},
    ],
)
def test_a_bad_where_is_refused_before_anything_is_sent(state: Any, where: Any) -> None:
    with pytest.raises(InvalidInput):
        state.query("g", where)
    with pytest.raises(InvalidInput):
        state.count("g", where)


@pytest.mark.parametrize("operand", [{1, 2}, float("nan"), object()])
def test_an_operand_the_codec_cannot_store_is_refused(state: Any, operand: Any) -> None:
    with pytest.raises(EncodeError):
        state.query("g", F("a") == operand)


@pytest.mark.parametrize(
    ("options", "what"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": True}, "limit"),
        ({"limit": 10_001}, "limit"),
        ({"cursor": "garbage"}, "cursor"),
        ({"cursor": 5}, "cursor"),
        ({"order_by": "", "cursor": None}, "order_by"),
        ({"order_by": "a", "cursor": "1:0"}, "cursor"),
        ({"descending": "yes"}, "descending"),
    ],
)
def test_bad_paging_is_refused(state: Any, options: dict[str, Any], what: str) -> None:
    with pytest.raises(InvalidInput, match=what):
        state.query("g", None, **options)
