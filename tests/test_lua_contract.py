"""The Lua calling convention, checked where it is written down: every write script takes the
same ARGV head (feed settings, group, item key) and its group's KEYS in one order, built by one
helper in the Redis plan; reply statuses are named once in Lua and once in Python; the rule
"load -> next version -> commit" lives in one include; every script's header states its contract.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from motia_state import ops, scripts
from motia_state.backends.redis.plan import RedisPlan, Status
from motia_state.layout import KeyLayout
from motia_state.steps import At, Batch, Masters

from .conftest import Target

LUA = scripts.lua_dir()
SCRIPTS = sorted(p.stem for p in LUA.glob("*.lua"))
INCLUDES = sorted(p.stem for p in (LUA / "include").glob("*.lua"))
# The scripts that refuse themselves with a status (include/status.lua) rather than a count.
WITH_STATUS = {"set", "delete", "update", "transaction"}
HEAD = re.compile(
    r"^-- ARGV\[1\] feed settings, ARGV\[2\] (group name|''), ARGV\[3\] (item key|'') "
    r"\(the head: include/common\.lua",
    re.MULTILINE,
)


def _source(name: str) -> str:
    return (LUA / f"{name}.lua").read_text()


def _uses(name: str) -> list[str]:
    found = re.search(r"^-- uses: (.+)$", _source(name), re.MULTILINE)
    return found.group(1).split() if found else []


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_states_its_contract_at_the_top(name: str) -> None:
    head = _source(name).split("\n\n")[0]
    lines = [line for line in head.splitlines() if line.startswith("-- ")]
    text = "\n".join(lines)
    assert lines[0].startswith(f"-- {name}: "), name
    for part in ("KEYS", "ARGV", "Returns", "Keys touched"):
        assert re.search(rf"^-- {part}\b", text, re.MULTILINE), f"{name}: no {part} line"
    for include in _uses(name):
        assert include == "$codec" or include in INCLUDES, f"{name}: unknown include {include}"


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_feed_script_takes_the_head(name: str) -> None:
    """A script that uses common.lua (every write script but lease.lua) opens its feed from
    ARGV[1] and documents ARGV[1..3] as the head."""
    source = _source(name)
    if "common" not in _uses(name):  # only a script that writes no state may do without
        state_writes = {t.script for t in ops.REGISTRY.values() if t.writes and not t.feed}
        assert name not in state_writes, name
        return
    assert HEAD.search(source), f"{name}: ARGV does not start with the head"
    feeds = re.findall(r"feed_(?:open|parse)\(([^)]*)\)", source)
    assert feeds == ["ARGV[1]"], name
    group_keys = "KEYS[1] data hash, KEYS[2] versions hash, KEYS[3] change stream, KEYS[4] "
    if "ttl" in _uses(name) and name != "transaction":  # in layout.group_keys order
        assert group_keys in source, name


@pytest.mark.parametrize("name", SCRIPTS)
def test_reply_statuses_are_named(name: str) -> None:
    source = _source(name)
    assert not re.search(r"feed_close\(feed, \{\s*[0-9]", source), f"{name}: a bare status"
    assert ("status" in _uses(name)) == (name in WITH_STATUS), name
    if name in WITH_STATUS:
        assert "{STATUS_OK" in source
        assert "{STATUS_CONFLICT" in source


def test_the_statuses_are_the_same_in_lua_and_python() -> None:
    text = (LUA / "include" / "status.lua").read_text()
    found = re.search(r"^local ((?:STATUS_\w+, )*STATUS_\w+) = ([\d, ]+)$", text, re.MULTILINE)
    assert found is not None
    names = [n.removeprefix("STATUS_") for n in found.group(1).split(", ")]
    values = [int(v) for v in found.group(2).split(", ")]
    assert dict(zip(names, values, strict=True)) == {s.name: s.value for s in Status}


def test_the_item_rules_are_written_once() -> None:
    """Versions, floors and expiry instructions are decided in include/item.lua and
    include/ttl.lua only; the scripts call them."""
    texts = {
        path.relative_to(LUA).as_posix(): path.read_text()
        for path in [*LUA.glob("*.lua"), *(LUA / "include").glob("*.lua")]
    }

    def where(pattern: str) -> set[str]:
        return {name for name, text in texts.items() if re.search(pattern, text)}

    assert where(r"local function next_version\b|math\.max\(floor, ") == {"include/item.lua"}
    assert where(r"FLOOR_TTL_MS") == {"include/item.lua"}
    assert where(r"'keep:'") == {"include/ttl.lua"}
    assert where(r"local function (item_load|item_write|item_remove|purge_expired)\b") == {
        "include/item.lua"
    }
    for name in ("set", "set_many", "update", "delete", "delete_many", "transaction"):
        assert "item" in _uses(name), name
        assert re.search(r"\bitem_(load|load_many)\(", texts[f"{name}.lua"]), name


# -- the plan builds that head in one place ------------------------------------------------


def _first_script_call(plan: RedisPlan, op: ops.Request[Any]) -> tuple[list[bytes], list[Any]]:
    """KEYS and ARGV of the first EVALSHA ``op`` sends (sans I/O: replies are made up)."""
    steps = plan.steps(op)
    step: Any = next(steps)
    while not (isinstance(step, tuple) and step[0] == "EVALSHA"):
        if isinstance(step, Batch):
            step = step.calls[0]
        elif isinstance(step, Masters):  # cleanup on Cluster: one master, one expiry set
            step = steps.send([None])
        elif isinstance(step, At):
            step = steps.send([0, [plan.layout.expiries("g")]])
        else:
            step = steps.send([b"g"])  # cleanup: SMEMBERS of the expiry registry
    count = int(step[2])
    return list(step[3 : 3 + count]), list(step[3 + count :])


@pytest.mark.parametrize("cluster", [False, True])
def test_every_group_scoped_request_sends_the_head(cluster: bool) -> None:
    layout = KeyLayout(cluster=cluster)
    plan = RedisPlan(layout)
    keyed: list[ops.Request[Any]] = [
        ops.Set("g", "k", b"1", None, "5000"),
        ops.Delete("g", "k", 3),
        ops.Update("g", "k", (), (), b"{}", "update", None, 1000, "keep:5000"),
        ops.Ttl("g", "k"),
        ops.SetExpiry("g", "k", 100, 60_000),
    ]
    whole: list[ops.Request[Any]] = [
        ops.SetMany("g", (("a", b"1"), ("b", b"2")), "keep"),
        ops.DeleteMany("g", ("a", "b")),
        ops.Clear("g"),
        ops.Cleanup(),
        ops.SetGroupExpiry("g", 5000),
        ops.SetGroupExpiry("g", None),
    ]
    for op, key in [*((op, "k") for op in keyed), *((op, "") for op in whole)]:
        keys, argv = _first_script_call(plan, op)
        assert keys == layout.group_keys("g"), op
        assert argv[:3] == [plan._head("g", key)[0], "g", key], op
    tx = ops.Transaction(
        (ops.Set("{t}a", "k", b"1", None), ops.Delete("{t}b", "k", None, 7000)), 100
    )
    keys, argv = _first_script_call(plan, tx)
    assert keys[:5] == layout.group_keys("{t}a")[:5]
    assert keys[5:10] == layout.group_keys("{t}b")[:5]
    assert keys[10:] == layout.group_keys("{t}a")[5:]  # the registries, off Cluster
    assert argv[:3] == [plan._head("{t}a")[0], "", ""]
    assert argv[5:7] == ["", 7000]  # each group's TTL (include/group.lua)
    assert argv[7:13] == ["set", 1, "{t}a", "k", "", ""]


@pytest.mark.redis_only
def test_every_script_loads_on_the_server(target: Target) -> None:
    """Each script's text, with its includes, compiles on real Redis and Valkey, in both codecs
    (a syntax error, or more than Lua's 200 locals in one function, fails here)."""
    with target.raw() as r:
        for name in SCRIPTS:
            for codec in ("json", "msgpack"):
                script = scripts.load(name, codec)
                assert r.script_load(script.text) == script.sha
