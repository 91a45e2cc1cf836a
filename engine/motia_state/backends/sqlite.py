"""sqlite://[path] -- state in one SQLite file, built only on the public adapter API.

A durable embedded store for where the embedded Valkey is not installed: ``sqlite://``
alone is ``.motia/motia.state.db``; ``sqlite:///abs/path.db`` and ``sqlite://rel/path.db``
name another file, ``sqlite://:memory:`` a private store in this process. Query options:
``timeout`` (seconds a write waits for another process's, default 10), ``synchronous``
(``full``, the default: a write is on disk when it returns; ``normal``: WAL's faster mode,
where a power cut may lose the last writes but never corrupts the file) and ``mode``
(``rw``, the default, creates the file; ``ro`` opens an existing one read-only: to
inspect a live store without any chance of writing to it).

It is an ordinary `StateAdapter` (the engine keeps every rule; see ``adapters``) with every
capability but the feed: each write of the engine is one ``BEGIN IMMEDIATE`` transaction,
so writers in other threads and processes wait for it (busy timeout) and a failure midway
leaves nothing behind; WAL lets readers go on meanwhile. Items are rows of ``items`` (the
value's bytes exactly as encoded), each group's version floor and own expiry a row of
``groups``. The file is created 0600: state can hold secrets.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

from ..adapters import GroupMeta, Record, StateAdapter
from ..errors import BackendUnavailable, InvalidInput, PermissionDenied, ServerBusy, brief

DEFAULT_PATH = ".motia/motia.state.db"
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS items (
    grp TEXT NOT NULL, key TEXT NOT NULL, data BLOB NOT NULL,
    version INTEGER NOT NULL, expires_at INTEGER,
    PRIMARY KEY (grp, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS items_expiring ON items (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS groups (
    grp TEXT PRIMARY KEY, floor INTEGER NOT NULL, expires_at INTEGER
) WITHOUT ROWID;
"""
OPTIONS = frozenset({"timeout", "synchronous", "mode"})


@dataclass(frozen=True)
class Settings:
    path: str
    timeout: float = 10.0  # seconds a write waits for another's lock
    synchronous: str = "full"
    read_only: bool = False


def parse(url: str) -> Settings:
    """The settings a sqlite:// URL names."""
    rest = url.split("://", 1)[1]
    path, _, query = rest.partition("?")
    options = parse_qs(query, keep_blank_values=True, strict_parsing=False)
    unknown = sorted(set(options) - OPTIONS)
    if unknown or any(len(v) > 1 for v in options.values()):
        raise InvalidInput(
            f"sqlite:// takes the query options {sorted(OPTIONS)}, each once; not {unknown}"
        )
    timeout_text = options.get("timeout", ["10"])[0]
    try:
        timeout = float(timeout_text)
    except ValueError:
        timeout = -1.0
    if not 0 <= timeout <= 3600:
        raise InvalidInput(f"sqlite:// timeout is seconds in 0..3600, not {brief(timeout_text)}")
    synchronous = options.get("synchronous", ["full"])[0].lower()
    if synchronous not in ("full", "normal"):
        raise InvalidInput(f"sqlite:// synchronous is full or normal, not {brief(synchronous)}")
    mode = options.get("mode", ["rw"])[0].lower()
    if mode not in ("rw", "ro"):
        raise InvalidInput(f"sqlite:// mode is rw or ro, not {brief(mode)}")
    path = unquote(path)
    if "\x00" in path:
        raise InvalidInput("a sqlite:// path cannot hold a NUL character")
    return Settings(path or DEFAULT_PATH, timeout, synchronous, mode == "ro")


class SqliteAdapter(StateAdapter):
    capabilities = frozenset({"versions", "transactions", "ttl"})

    def __init__(self, settings: Settings) -> None:
        self.path = settings.path
        self._lock = threading.RLock()  # one connection, shared by the State's threads
        self._connection = self._open(settings)

    def _open(self, settings: Settings) -> sqlite3.Connection:
        with self._errors("open"):
            if settings.read_only:  # a URI, so that SQLite itself refuses every write
                target, uri = f"file:{quote(self.path)}?mode=ro", True
                if os.path.exists(self.path):
                    self._regular(os.stat(self.path))
            else:
                target, uri = self.path, False
                if self.path != ":memory:":
                    Path(self.path).parent.mkdir(parents=True, exist_ok=True)
                    # created 0600 before SQLite opens it, whatever the umask allows
                    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK  # a FIFO must not hang it
                    fd = os.open(self.path, flags, 0o600)
                    try:
                        self._regular(os.fstat(fd))
                    finally:
                        os.close(fd)
            connection = sqlite3.connect(
                target,
                timeout=settings.timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=uri,
            )
            try:
                if not settings.read_only:
                    connection.execute("PRAGMA journal_mode=WAL")
                connection.execute(f"PRAGMA synchronous={settings.synchronous.upper()}")
                (found,) = connection.execute("PRAGMA user_version").fetchone()
                if found > SCHEMA_VERSION:
                    raise BackendUnavailable(
                        f"{self.path}: written by a newer motia-state (schema {found}; "
                        f"this one reads {SCHEMA_VERSION})"
                    )
                if found < SCHEMA_VERSION and settings.read_only:
                    raise BackendUnavailable(f"{self.path}: not a motia-state database")
                if found < SCHEMA_VERSION:
                    connection.execute("BEGIN IMMEDIATE")
                    connection.executescript(SCHEMA)  # commits
                    connection.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            except BaseException:
                connection.close()
                raise
            return connection

    def _regular(self, found: os.stat_result) -> None:
        """A device or a FIFO at the path is refused before SQLite opens it: it would fail
        with a vague I/O error after creating its journal beside it (/dev/null-journal)."""
        if not stat.S_ISREG(found.st_mode):
            raise BackendUnavailable(f"sqlite://{self.path}: not a regular file")

    @contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """SQLite's errors as the engine's, naming the file (never a value)."""
        try:
            yield
        except sqlite3.OperationalError as exc:
            text = str(exc)
            if "locked" in text or "busy" in text:
                raise ServerBusy(f"sqlite://{self.path}: {doing}: {text}") from None
            if "readonly" in text or "read-only" in text:
                raise PermissionDenied(f"sqlite://{self.path}: {doing}: {text}") from None
            raise BackendUnavailable(f"sqlite://{self.path}: {doing}: {text}") from None
        except sqlite3.DatabaseError as exc:
            raise BackendUnavailable(f"sqlite://{self.path}: {doing}: {exc}") from None
        except PermissionError as exc:
            raise PermissionDenied(f"sqlite://{self.path}: {doing}: {exc.strerror}") from None
        except OSError as exc:
            raise BackendUnavailable(
                f"sqlite://{self.path}: {doing}: {exc.strerror or exc}"
            ) from None

    def _run(self, sql: str, *args: Any) -> list[Any]:
        with self._lock, self._errors("query"):
            return self._connection.execute(sql, args).fetchall()

    @contextmanager
    def atomic(self) -> Iterator[None]:
        with self._lock:
            with self._errors("begin"):
                self._connection.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                # SQLite may have rolled back already (SQLITE_FULL, SQLITE_IOERR): the error
                # to report is the one that stopped the block, not the ROLLBACK's.
                if self._connection.in_transaction:
                    with suppress(sqlite3.Error):
                        self._connection.execute("ROLLBACK")
                raise
            try:
                with self._errors("commit"):
                    self._connection.execute("COMMIT")
            except BaseException:
                if self._connection.in_transaction:
                    with suppress(sqlite3.Error):
                        self._connection.execute("ROLLBACK")
                raise

    def get(self, group: str, key: str) -> Record | None:
        rows = self._run(
            "SELECT data, version, expires_at FROM items WHERE grp = ? AND key = ?", group, key
        )
        return Record(*rows[0]) if rows else None

    def set(self, group: str, key: str, record: Record) -> None:
        self._run(
            "INSERT OR REPLACE INTO items VALUES (?, ?, ?, ?, ?)",
            group, key, record.data, record.version, record.expires_at,
        )  # fmt: skip

    def delete(self, group: str, key: str) -> None:
        self._run("DELETE FROM items WHERE grp = ? AND key = ?", group, key)

    def clear(self, group: str) -> None:
        self._run("DELETE FROM items WHERE grp = ?", group)

    def cleanup(self, now_ms: int) -> int:
        self._run(
            "INSERT INTO groups (grp, floor, expires_at) SELECT grp, MAX(version) + 1, NULL "
            "FROM items WHERE expires_at <= ? GROUP BY grp "
            "ON CONFLICT (grp) DO UPDATE SET floor = MAX(floor, excluded.floor)",
            now_ms,
        )
        with self._lock, self._errors("cleanup"):
            return self._connection.execute(
                "DELETE FROM items WHERE expires_at <= ?", (now_ms,)
            ).rowcount

    def items(self, group: str) -> list[tuple[str, Record]]:
        rows = self._run("SELECT key, data, version, expires_at FROM items WHERE grp = ?", group)
        return [(key, Record(data, version, at)) for key, data, version, at in rows]

    def list_groups(self) -> list[str]:
        return [name for (name,) in self._run("SELECT DISTINCT grp FROM items")]

    def expired_groups(self, now_ms: int) -> list[str]:
        rows = self._run("SELECT grp FROM groups WHERE expires_at <= ?", now_ms)
        return [name for (name,) in rows]

    def meta(self, group: str) -> GroupMeta:
        rows = self._run("SELECT floor, expires_at FROM groups WHERE grp = ?", group)
        return GroupMeta(*rows[0]) if rows else GroupMeta()

    def set_meta(self, group: str, meta: GroupMeta) -> None:
        if meta == GroupMeta():
            self._run("DELETE FROM groups WHERE grp = ?", group)
        else:
            self._run(
                "INSERT OR REPLACE INTO groups VALUES (?, ?, ?)",
                group, meta.floor, meta.expires_at,
            )  # fmt: skip

    def close(self) -> None:
        with self._lock:
            self._connection.close()


def open_sqlite(url: str) -> SqliteAdapter:
    return SqliteAdapter(parse(url))
