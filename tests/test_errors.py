"""Bad input: a clear, typed error, and nothing written anywhere."""

from __future__ import annotations

import asyncio
import math
from typing import Any
from urllib.parse import urlsplit

import pytest

from motia_state import (
    AsyncState,
    BackendUnavailable,
    EncodeError,
    InvalidInput,
    JsonCodec,
    State,
    StateError,
    ValueTooLarge,
)

from .conftest import Servers, Target

BAD_NAMES = [
    ("", "must not be empty"),
    (None, "must be a str"),
    (1, "must be a str"),
    (b"bytes", "must be a str"),
    ("\ud800", "not valid unicode"),
]


def assert_nothing_written(state: Any) -> None:
    assert state.list_groups() == []


@pytest.mark.parametrize(("name", "message"), BAD_NAMES, ids=repr)
def test_bad_group_or_key(state: Any, name: Any, message: str) -> None:
    for call in (
        lambda: state.set(name, "k", 1),
        lambda: state.set("g", name, 1),
        lambda: state.get(name, "k"),
        lambda: state.get_item("g", name),
        lambda: state.delete(name, "k"),
        lambda: state.set_many("g", {"ok": 1, name: 2}),
        lambda: state.get_many("g", ["ok", name]),
        lambda: state.delete_many("g", [name]),
        lambda: state.clear(name),
        lambda: state.items(name),
    ):
        with pytest.raises(InvalidInput, match=message) as info:
            call()
        assert isinstance(info.value, ValueError)
        assert isinstance(info.value, StateError)
    assert_nothing_written(state)


def test_names_over_the_limit(state: Any) -> None:
    with pytest.raises(InvalidInput, match="limit is 1024"):
        state.set("g" * 1025, "k", 1)
    with pytest.raises(InvalidInput, match="limit is 8192"):
        state.set("g", "k" * 8193, 1)
    with pytest.raises(InvalidInput, match="limit is 1024"):
        state.set("é" * 513, "k", 1)  # the limit counts UTF-8 bytes
    many = {f"k{i}": i for i in range(100)}  # batches take a quicker path when all is plain
    for bad in ("k" * 8193, "é" * 4097, "🚀" * 2049):
        with pytest.raises(InvalidInput, match="limit is 8192"):
            state.set_many("g", {**many, bad: 1})
        with pytest.raises(InvalidInput, match="limit is 8192"):
            state.delete_many("g", [*many, bad])
    assert_nothing_written(state)
    state.set_many("g", {**many, "🚀" * 2048: 1})  # 8192 bytes: at the limit, taken
    assert state.get("g", "🚀" * 2048) == 1


def test_keys_argument_must_be_a_list(state: Any) -> None:
    with pytest.raises(InvalidInput, match="not a single string"):
        state.get_many("g", "abc")


@pytest.mark.parametrize(
    "value",
    [{1, 2}, object(), math.nan, math.inf, 2**64, {"nested": [math.nan]}, {1: "x"}, (1, 2)],
    ids=repr,
)
def test_unencodable_values(state: Any, value: Any) -> None:
    state.set("g", "k", "before")
    with pytest.raises(EncodeError) as info:
        state.set("g", "k", value)
    assert isinstance(info.value, TypeError)
    with pytest.raises(EncodeError):
        state.set_many("g", {"a": 1, "b": value})
    assert state.items("g") == {"k": "before"}
    assert state.get_item("g", "k").version == 1


def test_oversized_value(open_state: Any) -> None:
    state = open_state(max_value_bytes=1000)
    state.set("g", "small", "x" * 900)
    with pytest.raises(ValueTooLarge, match="max_value_bytes is 1000"):
        state.set("g", "big", "x" * 1000)
    with pytest.raises(ValueTooLarge):
        state.set_many("g", {"ok": 1, "big": "x" * 5000})
    assert state.keys("g") == ["small"]


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        ({"big": "x" * 2000, "nan": math.nan}, ValueTooLarge),
        ({"nan": math.nan, "big": "x" * 2000}, EncodeError),
        ({"big": "x" * 2000, "\ud800": 1}, ValueTooLarge),
        ({"\ud800": 1, "nan": math.nan}, InvalidInput),
        ({"nan": (1,), "\ud800": 1}, EncodeError),
    ],
    ids=["too large, then NaN", "NaN, then too large", "too large, then a bad key",
         "a bad key, then NaN", "a tuple, then a bad key"],
)  # fmt: skip
def test_a_batch_with_several_faults_names_the_first(
    open_state: Any, faults: dict[str, Any], expected: type[Exception]
) -> None:
    """set_many refuses a batch with the error its first faulty item gets from set, item by
    item, whatever the kind of each fault (the batch checks keys, values and sizes in passes)."""
    state = open_state(max_value_bytes=1000)
    batch = {**{f"k{i}": i for i in range(100)}, **faults}
    with pytest.raises(StateError) as info:
        state.set_many("g", batch)
    assert type(info.value) is expected
    key, value = next(iter(faults.items()))
    with pytest.raises(expected) as alone:
        state.set("g", key, value)
    assert str(info.value) == str(alone.value)
    assert_nothing_written(state)


@pytest.mark.parametrize("version", [-1, 2**53 + 1, "1", 1.0, True], ids=repr)
def test_bad_versions(state: Any, version: Any) -> None:
    with pytest.raises(InvalidInput, match="version"):
        state.set("g", "k", 1, version=version)
    with pytest.raises(InvalidInput, match="version"):
        state.delete("g", "k", version=version)
    assert_nothing_written(state)


def test_bad_batch(state: Any) -> None:
    with pytest.raises(InvalidInput, match="batch"):
        list(state.iter_items("g", batch=0))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"codec": "yaml"}, "unknown codec"),
        ({"colour": "blue"}, "unknown option"),
        ({"changes_maxlen": 0}, "changes_maxlen"),
        ({"max_value_bytes": -5}, "max_value_bytes"),
    ],
)
def test_bad_options(target: Target, options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        State.from_url(target.url, **{**target.options, **options})


def test_bad_urls() -> None:
    with pytest.raises(InvalidInput, match="unknown URL scheme"):
        State.from_url("mysql://localhost")
    with pytest.raises(InvalidInput, match="expected scheme"):
        State.from_url("localhost:6379")
    with pytest.raises(InvalidInput, match="host:port"):
        State.from_url("redis+cluster://127.0.0.1")
    with pytest.raises(InvalidInput, match="prefix"):
        State.from_url("memory://", prefix="x:")
    with pytest.raises(InvalidInput, match="prefix"):
        State.from_url("redis://127.0.0.1:1", prefix="a{b}:")
    with pytest.raises(InvalidInput, match="prefix"):
        State.from_url("redis://127.0.0.1:1", prefix="")


def test_errors_survive_pickling() -> None:
    """They cross process boundaries (multiprocessing pools, concurrent.futures)."""
    import pickle

    from motia_state import NotReplicated, UpdateFailed, VersionConflict

    for error in (
        VersionConflict([("g", "k", 1, 2)]),
        UpdateFailed("not_number", 0, {"type": "increment"}, "detail"),
        NotReplicated(0, 1, 0.5),
        InvalidInput("bad"),
    ):
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is type(error)
        assert str(again) == str(error)


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"socket_timeout": "10"}, "socket_timeout"),
        ({"socket_timeout": -1}, "socket_timeout"),
        ({"socket_timeout": math.nan}, "socket_timeout"),
        ({"socket_connect_timeout": math.inf}, "socket_connect_timeout"),
        ({"codec": 123}, "codec"),
        ({"codec": None}, "codec"),
        ({"codec": JsonCodec}, "codec"),  # the class, not an instance
        ({"prefix": "a\ud800:"}, "prefix"),
        ({"prefix": "p" * 2000 + ":"}, "prefix"),
        ({"prefix": nested(2000)}, "prefix"),
        ({"min_replicas": "x"}, "min_replicas"),
        ({"replica_timeout": -1}, "replica_timeout"),
        ({"cleanup_interval": "1"}, "cleanup_interval"),
        ({"changes_max_age": 0}, "changes_max_age"),
        ({"retries": -1}, "retries"),
        ({"retries": 1.0}, "retries"),
        ({"ttl": 10**5000}, "ttl"),  # past the digits Python prints
        ({"durability": nested(2000)}, "durability"),  # past the recursion limit, in a repr
        ({"record_values": nested(2000)}, "record_values"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
@pytest.mark.parametrize("url", ["memory://", "redis://127.0.0.1:1/0"])
@pytest.mark.parametrize("api", [State, AsyncState])
def test_every_option_is_checked_up_front(
    api: Any, url: str, options: dict[str, Any], named: str
) -> None:
    with pytest.raises(InvalidInput, match=named):
        api.from_url(url, **options)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("redis://127.0.0.1:notaport/0", "Port"),
        ("redis://127.0.0.1:99999/0", "Port"),
        ("redis://[::1:7601/0", "IPv6"),
        ("redis://127.0.0.1:1/abc", "database number"),
        ("redis://127.0.0.1:1/1/2", "database number"),
        ("redis://127.0.0.1:1/-1", "database"),
        ("redis://127.0.0.1:1/0?db=-1", "no database -1"),
        ("redis://127.0.0.1:1/0?foo=bar", "'foo'"),
        ("redis://127.0.0.1:1/0?decode_responses=yes", "decode_responses"),  # breaks replies
        ("redis://127.0.0.1:1/0?protocol=4", "protocol"),
        ("redis://127.0.0.1:1/0?ssl_certfile=c.crt", "ssl_certfile"),  # TLS option, no TLS
        ("redis://127.0.0.1:1/0?socket_timeout=abc", "socket_timeout"),
        ("redis://127.0.0.1:1/0?socket_timeout=-1", "socket_timeout"),
        ("rediss://127.0.0.1:1/0?ssl_cert_reqs=bogus", "Certificate Requirements"),
        ("unix:///tmp/x.sock?bar=1", "'bar'"),
        ("redis+cluster://127.0.0.1:99999", "host:port"),
        ("redis+cluster://127.0.0.1:1/3", "database 0 only"),
        ("redis+cluster://127.0.0.1:1?db=3", "'db'"),
        ("redis+cluster://127.0.0.1:1?foo=bar", "'foo'"),
        ("rediss+cluster://[::1:1", "IPv6"),
        ("redis+sentinel://127.0.0.1:1/service?foo=bar", "'foo'"),
        ("redis+sentinel://127.0.0.1:1/service/x", "service name"),
        ("memory://x?y=1", "no query options"),
        ("file://state.json?y=1", "no query options"),
        ("embedded://.motia?y=1", "no query options"),
        (b"redis://127.0.0.1:1/0", "str, not bytes"),
    ],
    ids=repr,
)
@pytest.mark.parametrize("api", [State, AsyncState])
def test_every_url_is_checked_up_front(api: Any, url: Any, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        api.from_url(url)


def first_call(api: str, url: str, **options: Any) -> None:
    """A write through a fresh State or AsyncState of ``url``, closed after."""
    if api == "sync":
        with State.from_url(url, **options) as state:
            state.set("g", "k", 1)
        return

    async def write() -> None:
        async with AsyncState.from_url(url, **options) as state:
            await state.set("g", "k", 1)

    asyncio.run(write())


@pytest.mark.parametrize("api", ["sync", "async"])
def test_an_embedded_folder_that_cannot_be_made_is_backend_unavailable(api: str) -> None:
    with pytest.raises(BackendUnavailable, match="/proc/nope"):
        first_call(api, "embedded:///proc/nope")


@pytest.mark.parametrize("api", ["sync", "async"])
def test_a_database_out_of_range_says_so(servers: Servers, api: str) -> None:
    """Sync and async alike: invalid input, at once (the async seam used to retry it)."""
    url = f"redis://{urlsplit(servers.redis()[0]).netloc}/99"
    with pytest.raises(InvalidInput, match=r"no such database .*DB index is out of range"):
        first_call(api, url)


def test_lists_of_names_must_be_lists(state: Any) -> None:
    for call in (
        lambda: state.get_many("g", None),
        lambda: state.get_many("g", 5),
        lambda: state.delete_many("g", 5),
        lambda: state.delete_many("g", b"k"),
        lambda: state.stats(5),
        lambda: state.stats("g"),  # one name, not a list of one-letter groups
    ):
        with pytest.raises(InvalidInput):
            call()
    assert_nothing_written(state)


def test_update_of_a_value_too_deep_is_an_encode_error(state: Any) -> None:
    deep = nested(1000)
    for ops in (
        [{"type": "set", "path": "a", "value": deep}],
        [{"type": "merge", "path": "a", "value": {"x": deep}}],
        [{"type": "append", "path": "a", "value": deep}],
    ):
        with pytest.raises(EncodeError, match="deeper"):
            state.update("g", "k", ops)
        with pytest.raises(EncodeError, match="deeper"), state.transaction() as tx:
            tx.update("g", "k", ops)
        with pytest.raises(EncodeError, match="deeper"):
            state.group("g").update("k", ops)
    assert_nothing_written(state)


def test_hostile_arguments_are_typed_errors_with_short_messages(state: Any) -> None:
    deep, huge = nested(2000), 10**5000
    for call in (
        lambda: state.update("g", "k", [{"type": deep, "path": "a"}]),
        lambda: state.update("g", "k", [{"type": "set", "path": deep, "value": 1}]),
        lambda: state.update("g", "k", [{"type": "increment", "path": "a", "by": deep}]),
        lambda: state.update("g", "k", [{"type": "set", "path": ["a"] * 10_000, "value": 1}]),
        lambda: state.update("g", "k", deep),
        lambda: state.increment("g", "k", deep),
        lambda: state.increment("g", "k", huge),
        lambda: state.set("g", "k", 1, version=huge),
        lambda: state.set("g", "k", huge),
        lambda: state.set("g", "k", {"a": deep}),
        lambda: state.set("g", "k", 1, ttl=huge),
        lambda: state.set("g", "\ud800" * 100_000, 1),
        lambda: list(state.iter_items("g", batch=deep)),
        lambda: list(state.iter_items("g", batch=2**64)),
    ):
        with pytest.raises(StateError) as info:
            call()
        assert len(str(info.value)) < 1000
    assert_nothing_written(state)


def test_a_group_view_checks_its_name_at_once(state: Any) -> None:
    for name in (None, "", nested(2000), "g" * 1025):
        with pytest.raises(InvalidInput):
            state.group(name)
