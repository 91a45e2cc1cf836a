"""TLS with client certificates, ACL users limited to the engine's keys, secrets kept out of
messages. Certificates are made for each run with ``openssl``; servers are real."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from motia_state import AsyncState, BackendUnavailable, PermissionDenied, State, StateError
from motia_state.server import ServerProcess

from .conftest import CLUSTER_CONF, NO_PERSISTENCE, REDIS_CONF, Servers
from .servers import cluster, free_port

OPENSSL = shutil.which("openssl")
REDIS_SERVER = shutil.which("redis-server")  # Debian's is built with TLS

# The ACL rule the README documents for the engine (prefix motia:state:).
ENGINE_RULE = (
    "~motia:state:* ~motia:state#* &motia:state#writes* "
    "+@read +@write +@scripting +@pubsub +@connection +time -@dangerous"
)


def _openssl(*args: str, cwd: Path) -> None:
    assert OPENSSL is not None
    subprocess.run([OPENSSL, *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_certificates(where: Path) -> Path:
    """A throwaway CA, a server certificate for 127.0.0.1 and a client certificate."""
    where.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out",
             "ca.crt", "-days", "1", "-subj", "/CN=motia-state test CA", cwd=where)  # fmt: skip
    (where / "ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost")
    for name, extra in (("server", ["-extfile", "ext"]), ("client", [])):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key",
                 "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=where)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "1", *extra,
                 cwd=where)  # fmt: skip
    return where


class TlsServer(ServerProcess):
    """redis-server from docker/redis.conf listening on TLS only; probed over TLS."""

    def __init__(self, certs: Path, workdir: Path) -> None:
        self.certs = certs
        self.tls_port = free_port()
        assert REDIS_SERVER is not None
        args = [str(REDIS_CONF), "--port", "0", "--tls-port", str(self.tls_port),
                "--tls-cert-file", str(certs / "server.crt"),
                "--tls-key-file", str(certs / "server.key"),
                "--tls-ca-cert-file", str(certs / "ca.crt"), "--tls-auth-clients", "yes",
                "--dir", str(workdir), "--daemonize", "no", *NO_PERSISTENCE]  # fmt: skip
        super().__init__(REDIS_SERVER, args, log_path=workdir / "server.log", port=self.tls_port)

    def url_with(self, ca: str = "ca.crt", client: bool = True) -> str:
        query = f"ssl_ca_certs={self.certs / ca}"
        if client:
            query += f"&ssl_certfile={self.certs / 'client.crt'}"
            query += f"&ssl_keyfile={self.certs / 'client.key'}"
        return f"rediss://127.0.0.1:{self.tls_port}/0?{query}"

    def client(self, timeout: float = 2.0) -> redis.Redis:
        return redis.Redis.from_url(self.url_with(), socket_timeout=timeout)


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    if OPENSSL is None or REDIS_SERVER is None:
        pytest.skip("needs openssl and Debian's redis-server (built with TLS)")
    root = tmp_path_factory.mktemp("tls")
    server = TlsServer(make_certificates(root / "certs"), root)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_tls_with_client_certificates(tls: TlsServer) -> None:
    with State.from_url(tls.url_with()) as state:
        assert state.set("g", "k", {"secret": True}) == 1
        with state.transaction() as tx:
            tx.increment("g", "n", 2)
        assert state.items("g") == {"k": {"secret": True}, "n": 2}
        with state.watch("g", since="0", block=0.2) as watch:
            assert [c.key for c in iter(lambda: next(watch), None)] == ["k", "n"]
        state.clear("g")
    with tls.client() as raw:  # the server really speaks TLS only
        assert raw.connection_pool.connection_class.__name__ == "SSLConnection"


@pytest.mark.parametrize(
    "url_of",
    [
        lambda t: t.url_with(client=False),  # the server demands a client certificate
        lambda t: t.url_with(ca="server.crt"),  # the server's certificate is not trusted
        lambda t: f"redis://127.0.0.1:{t.tls_port}/0",  # plain text on a TLS port
    ],
    ids=["no-client-certificate", "untrusted-server", "plain-text"],
)
def test_tls_refusals_are_backend_unavailable(tls: TlsServer, url_of: Any) -> None:
    with (
        State.from_url(url_of(tls), socket_timeout=2, retries=0) as state,
        pytest.raises(BackendUnavailable),
    ):
        state.set("g", "k", 1)
    with State.from_url(tls.url_with()) as state:
        assert state.get("g", "k") is None  # nothing was written


def test_tls_on_a_cluster_sync_and_async(tmp_path: Path) -> None:
    """rediss+cluster:// with the certificate options in the query: every node speaks TLS to
    clients and over the cluster bus; the slot map hands out TLS ports, and both seams (the
    sync one, AsyncState's auto-pipelines) reach every master through them."""
    if OPENSSL is None or REDIS_SERVER is None:
        pytest.skip("needs openssl and Debian's redis-server (built with TLS)")
    certs = make_certificates(tmp_path / "certs")
    tls_ports: dict[int, int] = {}

    def tls_args(port: int) -> list[str]:
        tls_ports[port] = free_port()
        # the bus would move to the TLS port + 10000: keep it where the harness checked
        return ["--cluster-port", str(port + 10000),
                "--tls-port", str(tls_ports[port]), "--tls-cluster", "yes",
                "--tls-cert-file", str(certs / "server.crt"),
                "--tls-key-file", str(certs / "server.key"),
                "--tls-ca-cert-file", str(certs / "ca.crt"),
                "--tls-auth-clients", "yes"]  # fmt: skip

    nodes = cluster(REDIS_SERVER, CLUSTER_CONF, tmp_path / "cluster", *NO_PERSISTENCE,
                    per_node=tls_args)  # fmt: skip
    try:
        first = tls_ports[nodes.nodes[0].port or 0]
        query = f"ssl_ca_certs={certs / 'ca.crt'}&ssl_certfile={certs / 'client.crt'}"
        url = f"rediss+cluster://127.0.0.1:{first}?{query}&ssl_keyfile={certs / 'client.key'}"
        groups = [f"g{n}" for n in range(12)]  # spread over the three masters
        with State.from_url(url) as state:
            for n, group in enumerate(groups):
                assert state.set(group, "k", n) == 1
            assert sorted(state.list_groups()) == sorted(groups)

        async def from_asyncstate() -> list[Any]:
            async with AsyncState.from_url(url) as state:
                await asyncio.gather(*(state.increment(group, "n") for group in groups))
                return [await state.items(group) for group in groups]

        assert asyncio.run(from_asyncstate()) == [{"k": n, "n": 1} for n in range(12)]
        with State.from_url(url) as state:
            for group in groups:
                state.clear(group)
    finally:
        nodes.stop()


@pytest.fixture
def acl_user(servers: Servers) -> Iterator[tuple[str, Any]]:
    """A fresh ACL user on the shared server; yields (name, raw admin client)."""
    url, _ = servers.redis()
    admin = redis.Redis.from_url(url)
    name = f"engine-{uuid.uuid4().hex[:8]}"
    try:
        yield name, admin
    finally:
        admin.acl_deluser(name)
        for key in admin.scan_iter(match="motia:state:acl-*"):
            admin.delete(key)
        admin.close()


def _user_url(admin: Any, name: str, password: str) -> str:
    kwargs = admin.connection_pool.connection_kwargs
    return f"redis://{name}:{password}@{kwargs['host']}:{kwargs['port']}/0"


def test_an_acl_user_with_the_documented_rule_can_do_everything(
    acl_user: tuple[str, Any],
) -> None:
    name, admin = acl_user
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw-1", *ENGINE_RULE.split())
    group = f"acl-{uuid.uuid4().hex[:6]}"
    with State.from_url(_user_url(admin, name, "pw-1"), cleanup_interval=None) as state:
        state.set(group, "k", {"a": 1}, ttl=60)
        state.update(group, "k", [{"type": "increment", "path": "a", "by": 1}])
        state.set_many(group, {"x": 1, "y": 2})
        with state.transaction() as tx:
            tx.increment(group, "n", 5)
            tx.delete(group, "x")
        assert state.items(group) == {"k": {"a": 2}, "y": 2, "n": 5}
        assert state.ttl(group, "k") is not None
        assert group in state.list_groups()
        assert state.stats([group])[0][0].items == 3
        state.cleanup()
        with state.watch(group, since="0", consumer=("audit", "one"), block=0.2) as watch:
            changes = list(iter(lambda: next(watch), None))
        assert state.ack(*changes) == len(changes) > 0
        assert state.clear(group) == 3


def test_a_missing_permission_is_a_clear_error_and_writes_nothing(
    acl_user: tuple[str, Any],
) -> None:
    name, admin = acl_user
    # keys of another prefix only: the engine's keys are out of reach
    admin.execute_command(
        "ACL", "SETUSER", name, "reset", "on", ">pw-2", "~other:*", "&*", "+@all", "-@dangerous"
    )
    url = _user_url(admin, name, "pw-2")
    with State.from_url(url) as state:
        with pytest.raises(PermissionDenied, match="Guarantees") as denied:
            state.set("acl-x", "k", 1)
        assert "pw-2" not in str(denied.value)
        assert "pw-2" not in repr(state)
    # a command inside the scripts is refused (TIME, for expiry): the script stops there
    admin.execute_command("ACL", "SETUSER", name, "reset", "on", ">pw-2",
                          *ENGINE_RULE.replace("+time", "-time").split())  # fmt: skip
    with State.from_url(url) as state, pytest.raises(PermissionDenied):
        state.set("acl-x", "k", 1)
    assert admin.exists("motia:state:acl-x") == 0


def test_passwords_stay_out_of_messages_and_reprs(servers: Servers) -> None:
    with State.from_url("redis://user:hunter2@127.0.0.1:1/0", retries=0) as state:
        assert "hunter2" not in repr(state)
        with pytest.raises(BackendUnavailable) as refused:
            state.get("g", "k")
        assert "hunter2" not in str(refused.value)
        assert "***" in str(refused.value)


SECRET = "hunter2-Zq9"
SECRET_URLS = [
    f"redis://user:{SECRET}@127.0.0.1:1/0",
    f"redis://:{SECRET}@[::1]:1/0",
    f"REDIS://user:{SECRET}@127.0.0.1:1/0",
    f"redis://user%3A{SECRET}@127.0.0.1:1/0",  # a colon percent-encoded
    f"redis://user:pa?{SECRET}@127.0.0.1:1/0",  # a '?' in the password, unencoded
    f"redis:/:{SECRET}@127.0.0.1:1/0",  # malformed: one slash
    f"redis://user:{SECRET}@127.0.0.1:notaport/0",
    f"redis://:{SECRET}@[::1:7601/0",  # broken IPv6 address
    f"redis://user:{SECRET}@127.0.0.1:1/abc",
    f"redis://127.0.0.1:1/0?password={SECRET}",
    f"redis://127.0.0.1:1/0?ssl_password={SECRET}",  # a TLS option without TLS
    f"rediss://127.0.0.1:1/0?ssl_password={SECRET}&ssl_keyfile=/nonexistent",
    f"rediss://127.0.0.1:1/0?ssl_keyfile_password={SECRET}",
    f"redis://127.0.0.1:1/0?token={SECRET}",
    f"redis://127.0.0.1:1/0?passwrd={SECRET}",  # misspelt
    f"redis://127.0.0.1:1/0?db=0;password={SECRET}",  # smuggled into an allowed option's value
    f"redis://127.0.0.1:1/0?p%61ssword={SECRET}",
    f"redis://127.0.0.1:1/0?socket_timeout=abc&password={SECRET}",
    f"unix://user:{SECRET}@/nonexistent.sock",
    f"unix:///nonexistent.sock?password={SECRET}",
    f"redis+cluster://user:{SECRET}@127.0.0.1:1",
    f"redis+cluster://user:{SECRET}@127.0.0.1:x",
    f"rediss+cluster://127.0.0.1:1?ssl_password={SECRET}",
    f"rediss+cluster://user:{SECRET}@[::1:1",
    f"redis+sentinel://user:{SECRET}@127.0.0.1:1/service",
    f"redis+sentinel://user:{SECRET}@127.0.0.1:1/",
    f"rediss+sentinel://127.0.0.1:1/service?ssl_password={SECRET}",
    f"redis+sentinel://127.0.0.1:1/service?sentinel_password={SECRET}",
    f"embedded:///proc/nope?password={SECRET}",
    f"embedded:///proc/user:{SECRET}@nope",
    f"memory://x?password={SECRET}",
]


@pytest.mark.parametrize("api", ["sync", "async"])
@pytest.mark.parametrize("url", SECRET_URLS)
def test_no_credential_in_any_message_or_repr(url: str, api: str) -> None:
    """Valid or not, whatever the scheme and wherever the credential sits: a URL is only ever
    shown redacted, in the State's repr and in every error, typed (a `StateError`)."""
    options = {"retries": 0, "socket_timeout": 2, "socket_connect_timeout": 2}
    shown: list[str] = []
    state: Any = None
    try:
        try:
            state = (State if api == "sync" else AsyncState).from_url(url, **options)
            shown.append(repr(state))
            if api == "sync":
                state.get("g", "k")
            else:
                asyncio.run(state.get("g", "k"))
        except StateError as exc:
            shown += [str(exc), repr(exc)]
        else:
            pytest.fail("a call on a closed port, a bad URL or a missing folder succeeded")
    finally:
        if state is not None:
            state.close() if api == "sync" else asyncio.run(state.aclose())
    for text in shown:
        assert SECRET not in text
        assert "***" in text
