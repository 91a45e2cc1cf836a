"""``motia-state items GROUP --where ...``: queries from a shell (filters in both forms,
--order-by, --limit pages and their cursors, --count), and the command fed garbage: one line
on stderr, exit code 2, never a traceback, nothing written.

Commands run in process through Click's runner, as in test_cli_commands; one test runs the
installed command.
"""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from motia_state import State, cli
from motia_state.cli import main
from motia_state.query import matches, parse

from .conftest import Target
from .test_cli import EXE

# 40 orders: every third paid, totals 0..390, cities in turn, a note on every seventh; and
# items that are not orders at all (a number, a list, text), which no path reaches.
ORDERS: dict[str, Any] = {
    f"o{i:02d}": {
        "status": "paid" if i % 3 == 0 else "new",
        "total": i * 10,
        "customer": {"city": ("Oslo", "Rome", "Lima", "Kyiv")[i % 4]},
        "note": "fragile box" if i % 7 == 0 else None,
        "code": f"{i:03d}",
        "tags": ["gift"] if i % 5 == 0 else [],
    }
    for i in range(40)
}
OTHERS: dict[str, Any] = {"n": 42, "list": [1, "paid"], "text": "paid"}


def invoke(target: Target | None, *args: str, code: int = 0) -> Result:
    """One command; checks the exit code and, on failure, the one-line error."""
    where: list[str] = []
    if target is not None:
        where = ["--url", target.url]
        if "prefix" in target.options:
            where += ["--prefix", target.options["prefix"]]
    result = CliRunner().invoke(main, [*args, *where], catch_exceptions=False)
    assert result.exit_code == code, (args, result.stdout, result.stderr)
    if code:
        assert result.stderr.startswith("error: "), (args, result.stderr)
        assert result.stderr.count("\n") == 1, (args, result.stderr)
        assert result.stdout == "", (args, result.stdout)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def lines(target: Target, *args: str) -> list[dict[str, Any]]:
    """The JSON lines a streaming --json command printed."""
    return [json.loads(line) for line in invoke(target, *args, "--json").stdout.splitlines()]


def keys_of(target: Target, *args: str) -> list[str]:
    return [row["key"] for row in lines(target, "items", "orders", *args)]


def expected(where: object) -> set[str]:
    node = parse(where)
    return {k for k, v in {**ORDERS, **OTHERS}.items() if matches(node, v)}


@pytest.fixture
def shell(target: Target) -> Target:
    if target.name == "memory":
        pytest.skip("memory:// lives in one process; each command is a new one")
    with State.from_url(target.url, **target.options) as state:
        state.set_many("orders", {**ORDERS, **OTHERS})
        state.set("orders", "o03", ORDERS["o03"], ttl=600)  # one with an expiry
    return target


def test_short_and_json_filters_select_what_the_query_rules_say(shell: Target) -> None:
    t = shell
    v0 = {"valueKey": "status", "operation": "eq", "value": "paid"}
    cases: list[tuple[tuple[str, ...], object]] = [
        (("status eq paid",), v0),
        (("status == paid",), v0),
        (('status eq "paid"',), v0),  # the JSON string: the same
        (("total gt 300",), {"valueKey": "total", "operation": "gt", "value": 300}),
        (("total <= 30",), {"valueKey": "total", "operation": "lte", "value": 30}),
        (
            ("total gt 300", "status eq paid"),
            [v0, {"valueKey": "total", "operation": "gt", "value": 300}],
        ),
        (
            ('customer.city in ["Oslo","Rome"]',),
            {"valueKey": "customer.city", "operation": "in", "value": ["Oslo", "Rome"]},
        ),
        (("note isNull",), {"valueKey": "note", "operation": "isNull"}),
        (("note isNotNull",), {"valueKey": "note", "operation": "isNotNull"}),
        (("note exists",), {"valueKey": "note", "operation": "exists"}),
        (("code eq 007",), {"valueKey": "code", "operation": "eq", "value": "007"}),  # not JSON
        (("code eq 7",), {"valueKey": "code", "operation": "eq", "value": 7}),  # JSON: none
        (("tags contains gift",), {"valueKey": "tags", "operation": "contains", "value": "gift"}),
        (("note startsWith fra",), {"valueKey": "note", "operation": "startsWith", "value": "fra"}),
        (
            ("note eq fragile box ",),
            {"valueKey": "note", "operation": "eq", "value": "fragile box"},
        ),
        ((json.dumps(v0),), v0),
        ((json.dumps([v0, {"valueKey": "total", "operation": "lt", "value": 100}]),), None),
        (
            (
                json.dumps(
                    {"or": [v0, {"not": {"valueKey": "total", "operation": "lt", "value": 350}}]}
                ),
            ),
            None,
        ),
        ((json.dumps([]),), []),  # Motia v0's empty filter: every item
    ]
    for wheres, reference in cases:
        args = [a for w in wheres for a in ("--where", w)]
        want = expected(reference if reference is not None else json.loads(wheres[0]))
        assert set(keys_of(t, *args)) == want, wheres
        assert sorted(keys_of(t, *args)) == sorted(want), wheres  # each once
        assert invoke(t, "items", "orders", *args, "--count").stdout == f"{len(want)}\n"
    assert expected(v0) == {k for k in ORDERS if int(k[1:]) % 3 == 0}  # the set is not empty
    assert expected({"valueKey": "code", "operation": "eq", "value": 7}) == set()
    assert expected({"valueKey": "note", "operation": "eq", "value": "fragile box"})
    # human output: key, tab, value; the count on stderr
    human = invoke(t, "items", "orders", "--where", "total eq 120")
    key, value = human.stdout.rstrip("\n").split("\t")
    assert (key, json.loads(value)) == ("o12", ORDERS["o12"])
    assert human.stdout.count("\n") == 1
    assert human.stderr == "1 item(s)\n"
    assert json.loads(invoke(t, "items", "orders", "--count", "--json").stdout) == {"count": 43}
    # a query line carries version and expiry; the plain listing is as it was
    (row,) = lines(t, "items", "orders", "--where", "total eq 30")
    assert row["key"] == "o03"
    assert row["value"] == ORDERS["o03"]
    assert row["version"] == 2
    assert row["expires_at"] is not None
    plain = {r["key"]: r for r in lines(t, "items", "orders")}
    assert plain["o03"] == {"key": "o03", "value": ORDERS["o03"]}
    assert len(plain) == 43


def test_pages_follow_their_cursors_to_every_match_once(shell: Target) -> None:
    t = shell
    want = expected({"valueKey": "status", "operation": "eq", "value": "new"})
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        args = ["--where", "status eq new", "--limit", "4"] + (
            ["--cursor", cursor] if cursor else []
        )
        page = json.loads(invoke(t, "items", "orders", *args, "--json").stdout)
        assert set(page) == {"items", "cursor"}
        assert len(page["items"]) <= 4
        seen += [item["key"] for item in page["items"]]
        pages += 1
        cursor = page["cursor"]
        if cursor is None:
            break
        assert pages < 50
    assert sorted(seen) == sorted(want)
    assert pages >= len(want) // 4
    # the human page names the next cursor on stderr, to paste back
    first = invoke(t, "items", "orders", "--where", "status eq new", "--limit", "2")
    assert len(first.stdout.splitlines()) == 2
    note = first.stderr.strip()
    assert note.startswith("2 item(s); next page: --cursor ")
    nxt = invoke(
        t,
        "items",
        "orders",
        "--where",
        "status eq new",
        "--limit",
        "2",
        "--cursor",
        note.rsplit(" ", 1)[1],
    )
    assert not set(nxt.stdout.splitlines()) & set(first.stdout.splitlines())


def test_order_by_sorts_pages_and_desc_reverses(shell: Target) -> None:
    t = shell
    by_total = sorted(ORDERS, key=lambda k: (ORDERS[k]["total"], k))
    top = json.loads(
        invoke(
            t, "items", "orders", "--order-by", "total", "--desc", "--limit", "3", "--json"
        ).stdout
    )
    assert [i["key"] for i in top["items"]] == by_total[::-1][:3]
    assert top["cursor"] is not None
    rest = json.loads(
        invoke(
            t,
            "items",
            "orders",
            "--order-by",
            "total",
            "--desc",
            "--limit",
            "3",
            "--cursor",
            top["cursor"],
            "--json",
        ).stdout
    )
    assert [i["key"] for i in rest["items"]] == by_total[::-1][3:6]
    # every item, sorted: numbers first (the orders' totals), then the items without one
    paid = [k for k in by_total if ORDERS[k]["status"] == "paid"]
    assert keys_of(t, "--where", "status eq paid", "--order-by", "total") == paid
    assert keys_of(t, "--where", "status eq paid", "--order-by", "customer.city") == sorted(
        paid, key=lambda k: (ORDERS[k]["customer"]["city"], k)
    )


def test_every_match_streams_page_after_page(
    shell: Target, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --limit the command pages until the query is done (pages made small here)."""
    t = shell
    monkeypatch.setattr(cli, "STREAM_PAGE", 3)
    monkeypatch.setattr(cli, "ORDERED_PAGE", 4)
    want = expected({"valueKey": "status", "operation": "eq", "value": "new"})
    got = invoke(t, "items", "orders", "--where", "status eq new")
    assert sorted(line.split("\t")[0] for line in got.stdout.splitlines()) == sorted(want)
    assert got.stderr == f"{len(want)} item(s)\n"
    ordered = keys_of(t, "--where", "status eq new", "--order-by", "total", "--desc")
    assert ordered == sorted(want, key=lambda k: (-ORDERS[k]["total"], k))
    # from a cursor on: the rest
    page = json.loads(
        invoke(t, "items", "orders", "--where", "status eq new", "--limit", "5", "--json").stdout
    )
    rest = keys_of(t, "--where", "status eq new", "--cursor", page["cursor"])
    assert sorted([i["key"] for i in page["items"]] + rest) == sorted(want)


def test_a_value_json_cannot_carry_is_named_not_fatal(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'state.db'}"
    with State.from_url(url, codec="msgpack") as state:
        state.set("g", "bad", {"s": "a", "x": float("nan")})
        state.set("g", "good", {"s": "a", "x": 1})
    args = ["items", "g", "--where", "s eq a", "--url", url, "--codec", "msgpack", "--json"]
    page = json.loads(invoke(None, *args, "--limit", "5").stdout)
    by_key = {i["key"]: i for i in page["items"]}
    assert by_key["good"]["value"] == {"s": "a", "x": 1}
    assert "value" not in by_key["bad"]
    assert "NaN" in by_key["bad"]["error"]
    streamed = [json.loads(x) for x in invoke(None, *args).stdout.splitlines()]
    assert sorted(streamed, key=lambda r: r["key"]) == sorted(page["items"], key=lambda r: r["key"])


# -- garbage ---------------------------------------------------------------------------------

GARBAGE: list[tuple[list[str], str]] = [
    (["--where", "status eqq paid"], "unknown operation 'eqq'"),
    (["--where", "status"], "give PATH OP [VALUE]"),
    (["--where", ""], "give PATH OP [VALUE]"),
    (["--where", "   "], "give PATH OP [VALUE]"),
    (["--where", '{"valueKey": "status",'], "FILTER is not JSON"),
    (["--where", "[1, 2"], "FILTER is not JSON"),
    (
        ["--where", '{"valueKey": "a", "operation": "eq", "value": 1, "a": 1, "a": 2}'],
        "appears twice",
    ),
    (["--where", '{"valueKey": "a", "operation": "frob", "value": 1}'], "operation must be one of"),
    (["--where", '{"valueKey": "a", "operation": "eq"}'], "needs a value"),
    (["--where", '{"and": 3}'], "and takes a list"),
    (["--where", '{"xor": []}'], "unknown key 'xor'"),
    (["--where", "[1]"], "must be a predicate"),
    (["--where", "a..b eq 1"], "segments must be non-empty"),
    (["--where", ". eq 1"], "segments must be non-empty"),
    (["--where", "a.__proto__ eq 1"], "'__proto__' is not allowed"),
    (["--where", "constructor eq 1"], "is not allowed"),
    (["--where", ".".join(["a"] * 200) + " eq 1"], "deeper than"),
    (["--where", "note isNull 1"], "isNull takes no VALUE"),
    (["--where", "total gt"], "gt needs a VALUE"),
    (["--where", "total gt 1e999"], "range of a double"),
    (["--where", "total gt NaN"], "NaN"),
    (["--where", f"total gt {2**64}"], "64-bit"),
    (["--where", "total gt " + "9" * 10_000], "64-bit"),
    (["--where", "total in " + "[" * 5000 + "]" * 5000], "nests deeper"),
    (["--where", "city in Oslo"], "in takes a list"),
    (["--where", "city startsWith 1"], "startsWith takes a str"),
    (["--where", json.dumps({"not": {"not": {"not": {}}}})], "where"),
    (
        ["--where", json.dumps([{"valueKey": "a", "operation": "eq", "value": 1}] * 1001)],
        "1000 nodes",
    ),
    (["--where", "a eq 1"] * 1001, "1000 nodes"),
    (["--where", "\x1b[2Jstatus eqq 1"], "\\x1b[2J"),
    (["--where", "stat\udcffus eq 1"], "not valid unicode"),
    (["--limit", "0"], "--limit must be an int from 1 to 10000"),
    (["--limit", "10001"], "--limit must be an int from 1 to 10000"),
    (["--limit", "-3"], "--limit must be an int"),
    (["--limit", "ten"], "--limit must be an int"),
    (["--limit", "1" * 5000], "--limit must be an int"),
    (["--limit", "5", "--cursor", "zzz"], "cursor 'zzz' is not one a query page gave"),
    (["--limit", "5", "--cursor", "1:2:3"], "is not one a query page gave"),
    (["--order-by", "total", "--cursor", "0:0"], "is not one an ordered query page gave"),
    (["--order-by", "total", "--cursor", "o:!!!"], "is not one an ordered query page gave"),
    (["--order-by", "a..b"], "--order-by 'a..b'"),
    (["--order-by", ""], "order_by needs a path"),
    (["--desc"], "--desc needs --order-by"),
    (["--count", "--limit", "3"], "--count takes only --where"),
    (["--count", "--order-by", "total"], "--count takes only --where"),
    (["--count", "--cursor", "0:0"], "--count takes only --where"),
]


@pytest.mark.parametrize("target", ["memory", "redis"], indirect=True)
def test_garbage_is_one_line_exit_2_and_writes_nothing(target: Target) -> None:
    for args, message in GARBAGE:
        err = invoke(target, "items", "orders", *args, code=2).stderr
        assert message in err, (args, err)
        assert len(err) < 2000, (args, err)  # a huge input is cut short in the message
    # a bad group name too, and an operand past the value size limit
    invoke(target, "items", "", "--where", "a eq 1", code=2)
    big = json.dumps("x" * (17 * 1024 * 1024))
    assert (
        "over the limit"
        in invoke(target, "items", "orders", "--where", f"a eq {big}", code=2).stderr
    )
    if target.is_redis:
        with target.raw() as r:
            assert not list(r.scan_iter(match=target.options["prefix"] + "*"))


@pytest.mark.parametrize("target", ["memory", "redis"], indirect=True)
def test_random_garbage_never_gets_past_exit_2(target: Target) -> None:
    """Random filters built from the short form's pieces and junk: each one either runs
    (exit 0) or is one line and exit 2."""
    pieces = [
        "status", "a.b", "..", "__proto__", "eq", "in", "isNull", ">=", "contains", "frob",
        "1", "-0", "1e5", "true", "null", '"x"', "[1,", "[]", "{}", '{"a":1}', "[[[", "\x00",
        "\udcff", "é", "\u2028", "💥", "\t", "  ", "NaN", "9" * 30, "{", "}", '"', "\\",
    ]  # fmt: skip
    rng = random.Random(19)
    codes = {0: 0, 2: 0}
    for _ in range(150):
        text = " ".join(rng.choice(pieces) for _ in range(rng.randint(0, 5)))
        if rng.random() < 0.2:
            text = rng.choice(["{", "["]) + text
        result = CliRunner().invoke(
            main, ["items", "orders", "--where", text, "--url", target.url, *_prefix(target)]
        )
        assert result.exit_code in (0, 2), (text, result.stderr, result.exception)
        assert "Traceback" not in result.stdout + result.stderr
        if result.exit_code == 2:
            assert result.stderr.startswith("error: ")
            assert result.stderr.count("\n") == 1
        codes[result.exit_code] += 1
    assert codes[0] > 0  # both kinds were reached
    assert codes[2] > 0


def _prefix(target: Target) -> list[str]:
    return ["--prefix", target.options["prefix"]] if "prefix" in target.options else []


def test_the_installed_command_refuses_garbage_in_one_line(tmp_path: Path) -> None:
    url = f"file://{tmp_path / 'state.json'}"
    for args in (
        ["--where", "status eqq paid"],
        ["--where", "{"],
        ["--limit", "x"],
        ["--desc"],
    ):
        done = subprocess.run(
            [EXE, "items", "orders", *args, "--url", url],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, (args, done.stderr)
        assert done.stderr.startswith("error: "), done.stderr
        assert done.stderr.count("\n") == 1, done.stderr
        assert done.stdout == ""
    assert not (tmp_path / "state.json").exists()
