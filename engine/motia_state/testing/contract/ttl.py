"""TTL: per-item and default expiry, invisible the moment it passes, cleaned up on demand.

Real clocks and short TTLs: an item given 0.3 s is checked before and after.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from motia_state import InvalidInput, Op, VersionConflict
from motia_state.testing import requires

TTL = 0.3


def wait_out(ttl: float = TTL) -> None:
    time.sleep(ttl + 0.15)


@pytest.fixture
def quiet(open_state: Any) -> Any:
    """A state whose background cleanup never runs: reads alone must hide expired items."""
    return open_state(cleanup_interval=None)


@requires("ttl")
def test_an_expired_item_is_invisible_on_every_read_path(quiet: Any) -> None:
    quiet.set("g", "short", "soon gone", ttl=TTL)
    quiet.set("g", "long", "stays")
    quiet.set("only-short", "k", 1, ttl=TTL)
    assert quiet.get("g", "short") == "soon gone"
    assert quiet.list_groups() == ["g", "only-short"]
    wait_out()
    assert quiet.get("g", "short") is None
    assert quiet.get_item("g", "short") is None
    assert quiet.get_many("g", ["short", "long"]) == [None, "stays"]
    assert quiet.get_group("g") == ["stays"]
    assert quiet.items("g") == {"long": "stays"}
    assert quiet.keys("g") == ["long"]
    assert list(quiet.iter_items("g", batch=1)) == [("long", "stays")]
    assert quiet.list_groups() == ["g"]  # a group whose items all expired is not listed
    assert quiet.ttl("g", "short") is None


@requires("ttl")
def test_ttl_and_expires_at(quiet: Any) -> None:
    before = time.time()
    quiet.set("g", "k", 1, ttl=10)
    remaining = quiet.ttl("g", "k")
    assert 9 < remaining <= 10
    expires_at = quiet.get_item("g", "k").expires_at
    assert before + 9.5 < expires_at < time.time() + 10.5
    quiet.set("g", "forever", 1)
    assert quiet.ttl("g", "forever") is None
    assert quiet.get_item("g", "forever").expires_at is None
    assert quiet.ttl("g", "missing") is None


@requires("ttl", "versions")
def test_a_write_to_an_expired_item_treats_it_as_absent(quiet: Any) -> None:
    quiet.set("g", "k", "a", ttl=TTL)
    quiet.set("g", "k", "b", ttl=TTL)
    assert quiet.get_item("g", "k").version == 2
    wait_out()
    # absent to writes (version=0 works), and the new item starts above the expired one's
    # versions (2, then 3 for its expiry)
    assert quiet.set("g", "k", "new", version=0) == 4
    assert quiet.get("g", "k") == "new"
    quiet.set("g", "d", 1, ttl=TTL)
    wait_out()
    assert quiet.delete("g", "d") is None
    with pytest.raises(VersionConflict):
        quiet.delete("g", "d", version=1)


@requires("ttl", "versions")
def test_overwrites_clear_or_keep_the_expiry(quiet: Any) -> None:
    quiet.set("g", "k", 1, ttl=TTL)
    quiet.set("g", "k", 2)  # a plain write clears it
    assert quiet.ttl("g", "k") is None
    quiet.set("g", "c", 1, ttl=TTL)
    quiet.increment("g", "c")  # increment and update keep it
    quiet.update("g", "doc", [Op.set("a", 1)], ttl=TTL)
    quiet.update("g", "doc", [Op.set("b", 2)])
    assert quiet.ttl("g", "c") is not None
    assert quiet.ttl("g", "doc") is not None
    quiet.increment("g", "c", ttl=60)  # unless given one
    assert quiet.ttl("g", "c") > 50
    wait_out()
    assert quiet.get("g", "doc") is None
    assert quiet.get("g", "c") == 3
    assert quiet.get("g", "k") == 2


@requires("ttl")
def test_expire_and_persist(quiet: Any) -> None:
    assert quiet.expire("g", "missing", 10) is False
    quiet.set("g", "k", 1)
    assert quiet.persist("g", "k") is False  # had none
    assert quiet.expire("g", "k", TTL) is True
    assert quiet.persist("g", "k") is True
    assert quiet.ttl("g", "k") is None
    assert quiet.expire("g", "k", TTL) is True
    wait_out()
    assert quiet.get("g", "k") is None
    assert quiet.expire("g", "k", 10) is False
    assert quiet.persist("g", "k") is False
    group = quiet.group("v")
    group.set("x", 1, ttl=60)
    assert group.ttl("x") > 50
    assert group.persist("x") is True
    assert group.expire("x", 5) is True


@requires("ttl", "versions", "transactions")
def test_default_ttl(open_state: Any) -> None:
    state = open_state(ttl=TTL, cleanup_interval=None)
    state.set("g", "a", 1)
    state.set_many("g", {"b": 2, "c": 3})
    state.increment("g", "n")
    state.set("g", "long", 1, ttl=60)
    with state.transaction() as tx:
        tx.set("g", "t", 1)
    assert state.ttl("g", "a") is not None
    wait_out()
    assert state.items("g") == {"long": 1}


@requires("ttl", "versions", "transactions")
def test_ttl_on_batches_and_transactions(quiet: Any) -> None:
    quiet.set_many("g", {"a": 1, "b": 2}, ttl=TTL)
    with quiet.transaction() as tx:
        tx.set("g", "t1", 1, ttl=TTL)
        tx.increment("g", "t2", ttl=TTL)
        tx.update("g", "t3", [Op.set("x", 1)], ttl=TTL)
        tx.set("g", "keep", 1)
    assert sorted(quiet.keys("g")) == ["a", "b", "keep", "t1", "t2", "t3"]
    wait_out()
    assert quiet.keys("g") == ["keep"]


@requires("ttl")
def test_cleanup_removes_expired_items(quiet: Any) -> None:
    quiet.set_many("g", {f"k{i}": i for i in range(1200)}, ttl=TTL)
    quiet.set("g", "stays", 1)
    quiet.set("g", "later", 1, ttl=600)  # not expired: cleanup leaves it (a loaded machine
    quiet.set("gone", "k", 1, ttl=TTL)  # may take longer than TTL to write the 1200)
    wait_out()
    assert quiet.cleanup() == 1201
    assert quiet.cleanup() == 0
    assert quiet.items("g") == {"stays": 1, "later": 1}
    assert quiet.delete("g", "later") == 1  # and with it, its expiry's bookkeeping
    assert quiet.items("g") == {"stays": 1}


@requires("ttl")
@pytest.mark.parametrize("ttl", [0, -1, float("nan"), float("inf"), "10", True])
def test_bad_ttls(state: Any, ttl: Any) -> None:
    with pytest.raises(InvalidInput, match="ttl"):
        state.set("g", "k", 1, ttl=ttl)
    with pytest.raises(InvalidInput, match="ttl"):
        state.expire("g", "k", ttl)
    assert state.list_groups() == []
