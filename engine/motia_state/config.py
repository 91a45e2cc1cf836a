"""The configuration file: the ``state:`` section of Motia's ``config.yml``, as the URL and
options `State.from_url` takes.

Motia configures state in YAML (``adapter: redis``, ``host``, ``port``, ``password``,
``ttl``). This module reads that section, fills in ``${VAR}`` references from the
environment so that no secret has to be in the file, checks every key, and builds the URL
with each part quoted. `connect` asks it for the default backend when no URL is given
(`discover`); `State.from_config` and the CLI's ``--config`` name a file (`load`).

Every error is an `InvalidInput` that names the file, the line and the key. A password
never appears in one: the URL is shown only through `connect.redact`, password values are
described by their type, and a YAML syntax error is rebuilt from its parts, because
PyYAML's own message quotes the offending line of the file.

Typing of ``${...}``: what comes from the environment is text. For a key that takes text
(``password``, ``host``, ``prefix``, ...) it stays text, so a password ``123456`` or
``no`` is never turned into a number or a flag. For a key that takes anything else
(``port``, ``db``, ``tls``, ``ttl``, ``retries``, ...), a value holding a ``${...}`` is
read after interpolation as YAML reads a plain scalar: ``port: ${REDIS_PORT:-6379}`` is
the int 6379, ``tls: ${TLS:-false}`` a bool, and an empty ``ttl: ${TTL:-}`` is null.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import re
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn
from urllib.parse import quote, urlencode

import yaml

from . import adapters, connect
from .errors import InvalidInput, brief

CONFIG_ENV = "MOTIA_STATE_CONFIG"
DEFAULT_FILE = "config.yml"
SECTION = "state"
MAX_FILE_BYTES = 1 << 20  # a project's config; a path to /dev/zero must not read forever

REDIS_PORT, SENTINEL_PORT = 6379, 26379
NETWORK = frozenset({"host", "port", "username", "password", "tls"})
# What each adapter takes; any other scheme is passed through with CUSTOM's keys.
ADAPTERS: dict[str, frozenset[str]] = {
    "redis": NETWORK | {"db"},
    "cluster": NETWORK | {"nodes"},
    "sentinel": NETWORK | {"nodes", "service", "db"},
    "unix": frozenset({"path", "username", "password", "db"}),
    "embedded": frozenset({"path"}),
    "file": frozenset({"path"}),
    "memory": frozenset({"name"}),
    "sqlite": frozenset({"path"}),
}
CUSTOM = frozenset({"host", "port", "username", "password", "db", "path"})
ADDRESS_KEYS = frozenset({"adapter"}).union(CUSTOM, *ADAPTERS.values())
# A relative path in the file is relative to the file's folder, as in docker compose.
FILE_PATHS = frozenset({"unix", "embedded", "file", "sqlite"})
TEXT_KEYS = frozenset(
    {"url", "adapter", "host", "username", "password", "service", "path", "name", "nodes"}
)

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
_HOST = re.compile(r"[\w.-]+")
# $${ is a literal ${; ${NAME} and ${NAME:-default}; any other ${ is refused.
_REFERENCE = re.compile(
    r"\$\$\{|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}|\$\{"
)
_QUOTED = re.compile(r"""(['"])(.*?)\1""")


@dataclass(frozen=True)
class Config:
    """Where the state lives and the options of `State.from_url`, read from a file."""

    url: str = field(repr=False)  # may hold a password: `describe` is the form to show
    options: Mapping[str, Any]
    source: str  # where it came from, for the log line

    @property
    def describe(self) -> str:
        return connect.redact(self.url)

    def __repr__(self) -> str:
        return f"Config({self.describe!r}, options={dict(self.options)!r}, source={self.source!r})"


def option_names() -> frozenset[str]:
    """The options `State.from_url` takes, each of which is a key of ``state:`` too."""
    return frozenset(f.name for f in dataclasses.fields(connect.Options))


def _takes_text(key: str) -> bool:
    if key in TEXT_KEYS:
        return True
    types = {f.name: str(f.type) for f in dataclasses.fields(connect.Options)}
    return types.get(key, "").startswith("str")  # port, db, tls: not text


@dataclass
class _Section:
    """The ``state:`` mapping with where each key came from, for messages."""

    values: dict[str, Any]
    file: str  # the path as given
    lines: dict[str, int] = field(default_factory=dict)  # each key's line in the file
    given: frozenset[str] = frozenset()  # keys given as keyword arguments
    base: str = ""  # the file's folder

    def where(self, key: str) -> str:
        if key in self.given:
            return f"the keyword argument {key}= (over {self.file})"
        line = self.lines.get(key)
        return f"{self.file}{f', line {line}' if line else ''}: {SECTION}.{key}"

    def fail(self, key: str, problem: str) -> NoReturn:
        raise InvalidInput(f"{self.where(key)}: {problem}")

    def get(self, key: str) -> Any:
        return self.values.get(key)

    def text(self, key: str) -> str | None:
        """A text value; None and '' are absent. A number or a flag is refused rather than
        turned into text: YAML reads ``password: 0123`` as 83."""
        value = self.values.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            hint = "; quote it in the file" if isinstance(value, (int, float)) else ""
            self.fail(key, f"expected text, got {type(value).__name__}{hint}")
        return value

    def integer(self, key: str, low: int, high: int, what: str) -> int | None:
        value = self.values.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            self.fail(key, f"expected {what}, an int from {low} to {high}, got {brief(value)}")
        return value

    def path(self, key: str, adapter: str) -> str | None:
        path = self.text(key)
        if path is None:
            return None
        if "?" in path or "\x00" in path:
            self.fail(key, "a path here may not hold '?' or NUL")
        if adapter in FILE_PATHS:
            path = os.path.expanduser(path)
            if key not in self.given and not os.path.isabs(path):
                path = os.path.join(self.base, path)
        return path


def load(
    path: str | os.PathLike[str] | None = None, overrides: Mapping[str, Any] | None = None
) -> Config:
    """The ``state:`` section of ``path`` (else of the file named by MOTIA_STATE_CONFIG,
    else of ./config.yml), with ``overrides`` winning over the file's keys."""
    if path is None:
        path = os.environ.get(CONFIG_ENV) or None
        if path is None and not os.path.exists(DEFAULT_FILE):
            raise InvalidInput(
                f"no config file: {CONFIG_ENV} is not set and there is no ./{DEFAULT_FILE}"
            )
        label = f"{path} (from {CONFIG_ENV})" if path else f"./{DEFAULT_FILE}"
        path = path or DEFAULT_FILE
    elif isinstance(path, (str, os.PathLike)):
        path = os.fspath(path)
        label = path
    else:
        raise InvalidInput(f"a config path is a str or a path, not {type(path).__name__}")
    section = _read(str(path), label, required=True)
    assert section is not None
    return _build(section, overrides or {})


def discover() -> Config | None:
    """The config file for the default backend, if there is one: the file MOTIA_STATE_CONFIG
    names (which must exist), else ./config.yml when it has a ``state:`` section (Motia's
    project config may hold other things only)."""
    path = os.environ.get(CONFIG_ENV)
    if path:
        section = _read(path, f"{path} (from {CONFIG_ENV})", required=True)
    else:
        try:
            if not stat.S_ISREG(os.stat(DEFAULT_FILE).st_mode):
                return None
        except OSError:
            return None
        section = _read(DEFAULT_FILE, f"./{DEFAULT_FILE}", required=False)
    return None if section is None else _build(section, {})


def _read(path: str, label: str, *, required: bool) -> _Section | None:
    """The file's ``state:`` section, interpolated; None when the file has none and it is
    not ``required``."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise InvalidInput(f"{label}: not a regular file")
        with open(path, "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise InvalidInput(f"{label}: no such config file") from None
    except OSError as exc:
        raise InvalidInput(f"{label}: cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_FILE_BYTES:
        raise InvalidInput(f"{label}: larger than {MAX_FILE_BYTES} bytes; not a config file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{label}: not UTF-8 text (byte {exc.start})") from None
    found = _parse(text, label, required=required)
    if found is None:
        return None
    values, lines = found
    base = os.path.dirname(os.path.abspath(path))
    section = _Section({}, label, lines, base=base)
    section.values = {key: _interpolate(section, key, value) for key, value in values.items()}
    return section


def _parse(
    text: str, label: str, *, required: bool
) -> tuple[dict[str, Any], dict[str, int]] | None:
    """The ``state:`` mapping and the line of each of its keys. Only that section is
    built: the rest of the file is Motia's and may use tags of its own."""
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        states = [
            (key, value)
            for key, value in (root.value if isinstance(root, yaml.MappingNode) else [])
            if isinstance(key, yaml.ScalarNode)
            and key.tag.endswith(":str")
            and key.value == SECTION
        ]
        if not states:
            if required:
                kind = "a mapping" if isinstance(root, yaml.MappingNode) else "no mapping"
                raise InvalidInput(f"{label}: no '{SECTION}:' section ({kind} at the top)")
            return None
        if len(states) > 1:
            twice = [k.start_mark.line + 1 for k, _ in states]
            raise InvalidInput(
                f"{label}: '{SECTION}:' is given twice (lines {twice[0]}, {twice[1]})"
            )
        key, node = states[0]
        line = key.start_mark.line + 1
        lines: dict[str, int] = {}
        if isinstance(node, yaml.MappingNode):
            for item, _ in node.value:
                if isinstance(item, yaml.ScalarNode) and not item.tag.endswith(":merge"):
                    at = item.start_mark.line + 1
                    if item.value in lines:
                        raise InvalidInput(
                            f"{label}, line {at}: {SECTION}.{item.value} is given twice "
                            f"(lines {lines[item.value]} and {at})"
                        )
                    lines[item.value] = at
        value = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise _yaml_error(label, exc) from None
    finally:
        loader.dispose()
    if value is None:  # `state:` and nothing under it: the defaults
        value = {}
    if not isinstance(value, dict):
        raise InvalidInput(
            f"{label}, line {line}: {SECTION}: expected a mapping of keys (adapter, host, "
            f"port, ...), got {type(value).__name__}"
        )
    for name in value:
        if not isinstance(name, str):
            raise InvalidInput(
                f"{label}: {SECTION}: keys are text, got the {type(name).__name__} {brief(name)}"
            )
    return value, lines


def _yaml_error(label: str, exc: yaml.YAMLError) -> InvalidInput:
    """PyYAML's message without the file's text: its own quotes the line (a password's
    line too) and names aliases and tags, which may be pieces of a value
    (``password: *x1`` is an alias)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = _QUOTED.sub(_token, exc.problem or "invalid")
        context = ""
        if exc.context:  # "while scanning a quoted scalar", and where that began
            began = exc.context_mark
            line = f" from line {began.line + 1}" if began and began is not mark else ""
            context = f" ({_QUOTED.sub(_token, exc.context)}{line})"
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        return InvalidInput(f"{label}: not valid YAML{at}: {problem}{context}")
    if isinstance(exc, yaml.reader.ReaderError):
        return InvalidInput(
            f"{label}: not valid YAML: {exc.reason} (character #x{exc.character:04x} at "
            f"position {exc.position})"
        )
    return InvalidInput(f"{label}: not valid YAML ({type(exc).__name__})")


def _token(match: re.Match[str]) -> str:
    """A quoted piece of a YAML message: one character and token names stay, as in
    ``found character '\\t'`` or ``found '<block end>'``; longer text is the file's."""
    text = match[2]
    shown = len(text) <= 1 or re.fullmatch(r"<[a-z ]+>|\\.", text)
    return match[0] if shown else f"{match[1]}(not shown){match[1]}"


def _interpolate(section: _Section, key: str, value: Any) -> Any:
    """``${VAR}`` and ``${VAR:-default}`` in a text value (and in a list's text items)."""
    if isinstance(value, list):
        return [
            _interpolate(section, key, item) if isinstance(item, str) else item for item in value
        ]
    if not isinstance(value, str) or "${" not in value:
        return value
    referenced = False

    def substitute(match: re.Match[str]) -> str:
        nonlocal referenced
        if match[0] == "$${":
            return "${"
        name = match["name"]
        if name is None:
            section.fail(key, "a '${' that is not ${NAME} or ${NAME:-default} (write $${ for '${')")
        referenced = True
        found = os.environ.get(name)
        if match["default"] is not None and not found:
            return str(match["default"])
        if found is None:
            section.fail(
                key,
                f"the environment variable {name} is not set (give a default: ${{{name}:-...}})",
            )
        return found

    text = _REFERENCE.sub(substitute, value)
    if not referenced or _takes_text(key):
        return text
    return _scalar(text)


def _scalar(text: str) -> Any:
    """Text from the environment read as YAML reads a plain scalar (6379 an int, true a
    bool, empty or null None); anything else stays text."""
    if text.strip() == "":
        return None
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, (int, float, bool, str)) or value is None else text


def _build(section: _Section, overrides: Mapping[str, Any]) -> Config:
    values = dict(section.values)
    address = {k for k in overrides if k in ADDRESS_KEYS}
    if "url" in overrides:  # a URL given over the file replaces the file's whole address
        values = {k: v for k, v in values.items() if k not in ADDRESS_KEYS}
    elif address and values.get("url") not in (None, ""):
        section.fail(
            "url",
            f"the file gives a url, which {sorted(address)} cannot change: give url= instead",
        )
    values.update(overrides)
    section.values = values
    section.given = frozenset(overrides)
    options = option_names()
    unknown = sorted(set(values) - ADDRESS_KEYS - options - {"url"})
    if unknown:
        section.fail(
            unknown[0],
            f"unknown key(s) {unknown}; the keys are the address's "
            f"{sorted(ADDRESS_KEYS | {'url'})} and the options {sorted(options)}",
        )
    url = _url(section)
    source = section.file
    if url is None:
        url = os.environ.get("MOTIA_STATE_URL") or ""
        fallback = "MOTIA_STATE_URL" if url else ""
        if not url:
            url, fallback = connect.builtin_url()
        source = f"{section.file} (no address in {SECTION}:, so {fallback})"
    chosen = {k: v for k, v in values.items() if k in options}
    for key, value in chosen.items():  # one at a time, so that the message names its key
        try:
            connect.Options.parse({key: value})
        except InvalidInput as exc:
            section.fail(key, str(exc))
    try:
        connect.check(url, chosen)
    except InvalidInput as exc:
        raise InvalidInput(f"{section.file}: {SECTION}: {exc}") from None
    return Config(url, chosen, source)


def _url(section: _Section) -> str | None:
    """The URL the section's address keys name, or None when it names none (the default
    backend)."""
    given = {k for k in ADDRESS_KEYS if section.get(k) not in (None, "")}  # '': unset
    url = section.text("url")  # '' too: never the empty URL, which is the default's
    if url is not None:
        if given:
            section.fail("url", f"give the address as url or as {sorted(given)}, not both")
        try:
            connect.check(url, {})
        except InvalidInput as exc:
            section.fail("url", str(exc))
        return url
    if not given:
        return None
    adapter = section.get("adapter") or "redis"
    if not isinstance(adapter, str) or not _SCHEME.fullmatch(adapter.lower()):
        section.fail(
            "adapter",
            f"expected one of {sorted(ADAPTERS)} or the scheme of a registered adapter "
            f"(letters, digits, '+', '.', '-'), got {brief(adapter)}",
        )
    adapter = adapter.lower()
    takes = ADAPTERS.get(adapter, CUSTOM)
    for key in sorted(given - takes - {"adapter"}):
        hint = "; name the adapter (cluster, sentinel)" if section.get("adapter") is None else ""
        section.fail(
            key, f"the {adapter} adapter does not take {key}; it takes {sorted(takes)}{hint}"
        )
    if adapter in ("redis", "cluster", "sentinel"):
        return _network(section, adapter)
    if adapter == "unix":
        return _unix(section)
    if adapter == "memory":
        return f"memory://{section.path('name', adapter) or ''}"
    if adapter in ("embedded", "file"):  # the engine's own: the rest of the URL is the path
        return f"{adapter}://{section.path('path', adapter) or ''}"
    known = adapter in ADAPTERS or adapter in connect.ANY_REDIS_SCHEME
    if not known and adapters.factory_for(adapter) is None:
        section.fail(
            "adapter",
            f"no adapter is registered for {adapter}://; the adapters are "
            f"{sorted(ADAPTERS)} and the registered {adapters.known_schemes()}",
        )
    return _custom(section, adapter)


def _credentials(section: _Section) -> str:
    """``user:password@`` quoted (an '@', ':' or '/' in either would end it early), or ''."""
    user, password = section.text("username"), section.text("password")
    if user is None and password is None:
        return ""
    secret = "" if password is None else ":" + quote(password, safe="")
    return f"{quote(user or '', safe='')}{secret}@"


def _host(section: _Section, key: str, value: object) -> str:
    """A host as a URL writes it: an IPv6 address in brackets."""
    if not isinstance(value, str) or not value:
        section.fail(key, f"expected a host name or an IP address, got {brief(value)}")
    bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
    if ":" in bare:
        try:
            ipaddress.IPv6Address(bare)
        except ValueError:
            section.fail(
                key,
                f"expected a host name or an IP address, got {brief(value)} "
                "(the port goes in port:)",
            )
        return f"[{quote(bare, safe=':')}]"
    if bare != value or not _HOST.fullmatch(value):
        section.fail(key, f"expected a host name or an IP address, got {brief(value)}")
    return value


def _port(section: _Section, default: int) -> int:
    port = section.integer("port", 1, 65535, "a port")
    return default if port is None else port


def _network(section: _Section, adapter: str) -> str:
    tls = section.get("tls")
    if tls is not None and not isinstance(tls, bool):
        section.fail("tls", f"expected true or false, got {brief(tls)}")
    scheme = {"redis": "redis", "cluster": "redis+cluster", "sentinel": "redis+sentinel"}
    url = scheme[adapter].replace("redis", "rediss", 1) if tls else scheme[adapter]
    db = section.integer("db", 0, connect.MAX_DB, "a database number")
    default_port = SENTINEL_PORT if adapter == "sentinel" else REDIS_PORT
    if section.get("nodes") is not None:
        if section.get("host") is not None or section.get("port") is not None:
            section.fail("nodes", "give nodes, or host and port, not both")
        hosts = ",".join(_nodes(section, default_port))
    else:
        host = _host(section, "host", section.get("host") or "localhost")
        hosts = f"{host}:{_port(section, default_port)}"
    url = f"{url}://{_credentials(section)}{hosts}"
    if adapter == "sentinel":
        service = section.text("service")
        if service is None:
            section.fail("service", "the sentinel adapter needs service: the primary's name")
        url += "/" + quote(service, safe="")
    if db is not None:
        url += f"/{db}"
    return url


def _nodes(section: _Section, default_port: int) -> list[str]:
    """``nodes:`` as host:port texts: a list, or one text of comma-separated nodes (as an
    environment variable gives them)."""
    nodes = section.get("nodes")
    if isinstance(nodes, str):
        nodes = [n.strip() for n in nodes.split(",") if n.strip()]
    if not isinstance(nodes, list) or not nodes:
        section.fail("nodes", f"expected a list of host:port, got {brief(nodes)}")
    shown = []
    for i, node in enumerate(nodes):
        if not isinstance(node, str):
            section.fail("nodes", f"item {i}: expected host:port text, got {brief(node)}")
        bracketed = re.fullmatch(r"(\[[^\]]*\])(?::(.*))?", node)
        if bracketed:
            host, port = bracketed[1], bracketed[2]
        elif node.count(":") > 1:
            section.fail("nodes", f"item {i}: write an IPv6 node in brackets, as [::1]:7000")
        else:
            host, _, port = node.partition(":") if ":" in node else (node, "", None)
        if port is not None and (
            not re.fullmatch(r"[0-9]{1,5}", port) or not 0 < int(port) < 65536
        ):
            section.fail(
                "nodes", f"item {i}: expected host:port with a port 1..65535, got {brief(node)}"
            )
        shown.append(f"{_host(section, 'nodes', host)}:{port or default_port}")
    return shown


def _unix(section: _Section) -> str:
    path = section.path("path", "unix")
    if path is None:
        section.fail("path", "the unix adapter needs path: the server's socket")
    query = {}
    db = section.integer("db", 0, connect.MAX_DB, "a database number")
    if db is not None:
        query["db"] = str(db)
    for key in ("username", "password"):
        value = section.text(key)
        if value is not None:
            query[key] = value
    return f"unix://{quote(path)}" + (f"?{urlencode(query, quote_via=quote)}" if query else "")


def _custom(section: _Section, adapter: str) -> str:
    """A registered adapter's scheme (sqlite's too): ``<adapter>://<path>`` (quoted, as a
    URL's path is), or ``<adapter>://[user:password@]host[:port][/db]``."""
    path = section.path("path", adapter)
    network = [
        k for k in ("host", "port", "username", "password", "db") if section.get(k) is not None
    ]
    if path is not None and network:
        section.fail("path", f"give path, or host and port, not both (also given: {network})")
    if path is not None:
        return f"{adapter}://{quote(path)}"
    if not network:
        return f"{adapter}://"
    if section.get("host") is None:
        section.fail(network[0], "needs host: as well")
    host = _host(section, "host", section.get("host"))
    port = section.integer("port", 1, 65535, "a port")
    db = section.integer("db", 0, connect.MAX_DB, "a database number")
    url = f"{adapter}://{_credentials(section)}{host}"
    return url + (f":{port}" if port else "") + (f"/{db}" if db is not None else "")
