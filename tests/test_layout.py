"""The key layout: one slot per group, no collisions, checked against a real cluster node."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from motia_state.backends import embedded
from motia_state.layout import KeyLayout, escape_glob, key_slot, slot_tag

from .conftest import REDIS_CONF
from .servers import free_port, standalone

braces_heavy = st.text(alphabet="{}:*?[]\\ab", min_size=1, max_size=12)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


groups = (st.text(min_size=1, max_size=40) | braces_heavy).filter(_utf8)


@settings(max_examples=500, deadline=None)
@given(groups, st.sampled_from(["motia:state:", "state:", "x", "a#"]))
def test_all_keys_of_a_group_share_its_slot(group: str, prefix: str) -> None:
    layout = KeyLayout(prefix, cluster=True)
    data_slot = key_slot(layout.data(group))
    assert {key_slot(k) for k in layout.group_keys(group)} == {data_slot}
    assert b"}" not in slot_tag(layout.data(group))


@settings(max_examples=500, deadline=None)
@given(groups, groups, st.sampled_from(["motia:state:", "state:", "x"]))
def test_no_two_groups_share_a_key_and_metadata_is_never_a_group(
    a: str, b: str, prefix: str
) -> None:
    layout = KeyLayout(prefix, cluster=True)
    keys_a, keys_b = layout.group_keys(a), layout.group_keys(b)
    for key in keys_a[1:]:
        assert not key.startswith(layout.prefix)  # no legal group's hash can be metadata
    if a != b:
        assert not set(keys_a) & set(keys_b)


def test_known_names() -> None:
    layout = KeyLayout()
    assert layout.data("orders") == b"motia:state:orders"
    assert layout.versions("orders") == b"motia:state#v{motia:state:orders}"
    assert layout.versions("x{y}") == b"motia:state#v{y}motia:state:x{y}"
    assert layout.versions("}y").startswith(b"motia:state#v{")
    assert KeyLayout("state:").data("orders") == b"state:orders"
    assert KeyLayout("a#").meta_root == b"a%"


def test_escape_glob() -> None:
    assert escape_glob(b"a*b?[c]\\") == b"a\\*b\\?\\[c\\]\\\\"


def test_slots_agree_with_a_real_cluster_node(tmp_path: Path) -> None:
    """CLUSTER KEYSLOT on a cluster-enabled valkey-server is the authority on slots."""
    cluster_args = ["--cluster-enabled", "yes", "--cluster-config-file", str(tmp_path / "n.conf")]
    server = standalone(
        embedded.valkey_binary(),
        REDIS_CONF,
        tmp_path,
        "--appendonly",
        "no",
        "--save",
        "",
        *cluster_args,
        port=free_port(cluster=True),
    )
    try:
        layout = KeyLayout(cluster=True)
        names = ["orders", "x{y}", "}y", "{y", "{}x", "a{}b{c}", "}{", "{{}}", "é" * 300]
        names += ["".join(p) for p in itertools.product("{}a", repeat=4)]
        with server.client() as r:
            for group in names:
                slots = {
                    r.execute_command("CLUSTER", "KEYSLOT", k) for k in layout.group_keys(group)
                }
                assert slots == {key_slot(layout.data(group))}, group
    finally:
        server.stop()


@pytest.mark.parametrize("prefix", ["", "a{b", "c}"])
def test_bad_prefixes(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        KeyLayout(prefix)
