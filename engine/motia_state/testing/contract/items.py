"""Items: set, get, delete, batches, groups, views; the versions they carry; two States and
many threads on one store."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from motia_state import Item, State, VersionConflict
from motia_state.testing import Target, requires

GROUP_NAMES = [
    "orders",
    "g*",
    "g?",
    "g[1]",
    "x{y}",
    "}y",
    "{y",
    "{}x",
    "ünï©ødé ✓ 🚀",
    "spaces and\ttabs",
    "n" * 900,
]


@requires("versions")
def test_set_then_get(state: Any) -> None:
    assert state.get("orders", "o1") is None
    assert state.set("orders", "o1", {"total": 10}) == 1
    assert state.get("orders", "o1") == {"total": 10}


@requires("versions")
def test_versions_count_changes(state: Any) -> None:
    assert [state.set("g", "k", n) for n in range(3)] == [1, 2, 3]
    item = state.get_item("g", "k")
    assert item == Item("g", "k", 2, 3, None)


@requires("versions")
def test_version_zero_creates_only(state: Any) -> None:
    assert state.set("g", "k", "first", version=0) == 1
    with pytest.raises(VersionConflict) as info:
        state.set("g", "k", "second", version=0)
    assert (info.value.expected, info.value.actual) == (0, 1)
    assert state.get("g", "k") == "first"


@requires("versions")
def test_version_must_match(state: Any) -> None:
    state.set("g", "k", "a")
    state.set("g", "k", "b")
    with pytest.raises(VersionConflict, match="expected version 1, found 2"):
        state.set("g", "k", "stale", version=1)
    assert state.get_item("g", "k").value == "b"
    assert state.set("g", "k", "c", version=2) == 3
    with pytest.raises(VersionConflict):
        state.set("g", "absent", "x", version=1)
    assert state.get("g", "absent") is None


@requires("versions")
def test_stored_none_is_an_item(state: Any) -> None:
    state.set("g", "nothing", None)
    assert state.get("g", "nothing") is None
    assert state.get_item("g", "nothing") == Item("g", "nothing", None, 1)
    assert state.get_item("g", "missing") is None
    assert state.keys("g") == ["nothing"]


@requires("versions")
def test_delete_returns_old_value(state: Any) -> None:
    state.set("g", "k", {"a": [1, 2]})
    assert state.delete("g", "k") == {"a": [1, 2]}
    assert state.get_item("g", "k") is None
    assert state.delete("g", "k") is None
    # the delete was version 2; a re-created item continues above it, never repeating one
    assert state.set("g", "k", 1) == 3


@requires("versions")
def test_set_many_creates_items_above_the_group_floor(state: Any) -> None:
    """set_many reads the group's floor once per server call: every item it creates, in each
    of its calls, still continues above the versions removed items reached."""
    state.set("g", "a", 1)
    state.set("g", "a", 2)
    state.delete("g", "a")  # reached version 3
    batch = {"a": 0, **{f"k{i}": i for i in range(1200)}}  # two server calls on Redis
    last = 3
    for _ in range(3):
        assert state.set_many("g", batch) == len(batch)
        versions = {state.get_item("g", k).version for k in ("a", "k0", "k1199")}
        assert len(versions) == 1
        assert versions.pop() > last
        last = state.get_item("g", "a").version
        state.delete_many("g", list(batch))
    state.set_many("g", batch)
    state.clear("g")
    state.set_many("g", {"a": 1, "k1199": 1})
    assert state.get_item("g", "a").version > last
    assert state.get_item("g", "k1199").version > last


@requires("versions")
def test_delete_with_version(state: Any) -> None:
    state.set("g", "k", "v1")
    state.set("g", "k", "v2")
    with pytest.raises(VersionConflict):
        state.delete("g", "k", version=1)
    assert state.get("g", "k") == "v2"
    assert state.delete("g", "k", version=2) == "v2"
    assert state.delete("g", "k", version=0) is None


def test_get_group_items_keys(state: Any) -> None:
    state.set("g", "a", 1)
    state.set("g", "b", [2])
    state.set("other", "c", 3)
    assert sorted(state.get_group("g"), key=str) == [1, [2]]
    assert state.items("g") == {"a": 1, "b": [2]}
    assert sorted(state.keys("g")) == ["a", "b"]
    assert state.get_group("empty") == []
    assert state.items("empty") == {}
    assert state.keys("empty") == []


def test_groups_never_leak(state: Any) -> None:
    state.set("g1", "k", "from g1")
    state.set("g10", "k", "from g10")
    state.set("g*", "k", "from g*")
    state.set("g?", "k", "from g?")
    assert state.get_group("g1") == ["from g1"]
    assert state.get_group("g*") == ["from g*"]
    assert state.get_group("g?") == ["from g?"]
    assert state.items("g[1]") == {}


def test_keys_may_hold_colons(state: Any) -> None:
    state.set("a", "b:c", 1)
    state.set("a", "b", 2)
    assert state.items("a") == {"b:c": 1, "b": 2}
    assert state.get("a", "b:c") == 1


def test_colon_groups_do_not_collide_with_colon_keys(state: Any) -> None:
    state.set("a", "b:c", 1)
    state.set("a:b", "c", 2)
    assert state.items("a") == {"b:c": 1}
    assert state.items("a:b") == {"c": 2}


@requires("versions")
@pytest.mark.parametrize("group", GROUP_NAMES, ids=lambda g: repr(g[:12]))
def test_any_group_name_works(state: Any, group: str) -> None:
    state.set(group, "k", {"group": group})
    state.set(group, "k2", 2)
    assert state.get(group, "k") == {"group": group}
    assert state.get_item(group, "k").version == 1
    assert state.items(group) == {"k": {"group": group}, "k2": 2}
    assert group in state.list_groups()
    assert state.delete(group, "k2") == 2
    assert state.clear(group) == 1
    assert group not in state.list_groups()


def test_get_many(state: Any) -> None:
    state.set_many("g", {"a": 1, "b": None, "c": "x"})
    assert state.get_many("g", ["a", "missing", "b", "c"]) == [1, None, None, "x"]
    assert state.get_many("g", []) == []


@requires("versions")
def test_set_many(state: Any) -> None:
    assert state.set_many("g", {"a": 1, "b": 2}) == 2
    assert state.set_many("g", {"b": 3, "c": 4}) == 2
    assert state.items("g") == {"a": 1, "b": 3, "c": 4}
    assert state.get_item("g", "b").version == 2
    assert state.set_many("g", {}) == 0


class _SortedDict(dict[str, Any]):
    """A dict that iterates its keys sorted, but whose values() (dict's) stay in insertion
    order: only items() pairs each key with its value."""

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(super().__iter__()))


def test_set_many_pairs_each_key_with_its_value(state: Any) -> None:
    assert state.set_many("g", _SortedDict(b=2, a=1, c=3)) == 3
    assert state.items("g") == {"a": 1, "b": 2, "c": 3}


@requires("versions")
def test_set_many_larger_than_one_server_call(state: Any) -> None:
    mapping = {f"k{i}": {"i": i} for i in range(2500)}
    assert state.set_many("big", mapping) == 2500
    assert state.items("big") == mapping
    assert state.get_item("big", "k2499") == Item("big", "k2499", {"i": 2499}, 1)


def test_delete_many(state: Any) -> None:
    state.set_many("g", {"a": 1, "b": 2, "c": 3})
    assert state.delete_many("g", ["a", "a", "missing", "c"]) == 2
    assert state.items("g") == {"b": 2}
    assert state.delete_many("g", []) == 0


def test_clear_and_list_groups(state: Any) -> None:
    assert state.list_groups() == []
    state.set("b", "k", 1)
    state.set_many("a", {"x": 1, "y": 2})
    assert state.list_groups() == ["a", "b"]
    assert state.clear("a") == 2
    assert state.clear("a") == 0
    assert state.list_groups() == ["b"]
    state.delete("b", "k")
    assert state.list_groups() == []


def test_iter_items_streams_every_item_once(state: Any) -> None:
    mapping = {f"k{i}": i for i in range(2500)}
    state.set_many("big", mapping)
    seen = list(state.iter_items("big", batch=100))
    assert len(seen) == 2500
    assert dict(seen) == mapping
    assert list(state.iter_items("empty")) == []


@requires("versions")
def test_group_view(state: Any) -> None:
    orders = state.group("orders")
    assert orders.set("o1", {"n": 1}) == 1
    assert orders.set("o1", {"n": 2}, version=1) == 2
    assert orders.get("o1") == {"n": 2}
    assert orders.get_item("o1").version == 2
    assert orders.set_many({"o2": 2, "o3": 3}) == 2
    assert orders.get_many(["o2", "o9"]) == [2, None]
    assert sorted(orders.keys()) == ["o1", "o2", "o3"]
    assert len(orders.get_group()) == 3
    assert dict(orders.iter_items()) == orders.items()
    assert orders.delete("o2") == 2
    assert orders.delete_many(["o3"]) == 1
    assert orders.clear() == 1
    assert state.list_groups() == []


@requires("versions")
def test_two_states_share_one_store(open_state: Any, target: Target) -> None:
    if target.private:
        pytest.skip("memory:// without a name is private to one State by design")
    first, second = open_state(), open_state()
    first.set("g", "k", 1)
    assert second.get("g", "k") == 1
    second.set("g", "k", 2, version=1)
    assert first.get_item("g", "k").version == 2


def test_threads_share_one_state(target: Target) -> None:
    """A State is safe to share between threads (on Redis each thread gets its own connection)."""
    errors: list[BaseException] = []
    with State.from_url(target.url, **target.options) as state:

        def worker(n: int) -> None:
            try:
                for i in range(50):
                    state.set("threads", f"t{n}-{i}", i)
                    assert state.get("threads", f"t{n}-{i}") == i
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert len(state.keys("threads")) == 400


@requires("versions")
def test_update_never_changes_the_callers_ops(state: Any) -> None:
    """The in-process backends apply ops to Python objects: the caller's operands must come
    out as they went in (a set of {} then an increment inside it once changed the {})."""
    ops = [
        {"type": "set", "path": "", "value": {"n": {}}},
        {"type": "increment", "path": "n.c", "by": 1},
        {"type": "append", "path": "l", "value": {"x": []}},
        {"type": "merge", "path": "", "value": {"m": {"k": 1}}},
        {"type": "increment", "path": "m.k", "by": 1},
    ]
    before = copy.deepcopy(ops)
    first = state.update("g", "a", ops)
    assert ops == before
    assert first == {"n": {"c": 1}, "l": [{"x": []}], "m": {"k": 2}}
    assert state.update("g", "b", ops) == first
