"""Bad input: a clear, typed error, and nothing written anywhere. Here: URLs, options and
errors themselves; bad input to a State's calls is exported with the contract suite
(motia_state/testing/contract/inputs.py)."""

from __future__ import annotations

import asyncio
import math
from typing import Any
from urllib.parse import urlsplit

import pytest

from motia_state import (
    AsyncState,
    BackendUnavailable,
    InvalidInput,
    JsonCodec,
    State,
)
from motia_state.testing.contract.inputs import nested

from .conftest import Servers


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
