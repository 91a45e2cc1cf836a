"""file:// -- Motia's ``.motia/motia.state.json``, read and written safely.

The format stays Motia's: one JSON object ``{"<group>:<key>": "<JSON text>"}``,
pretty-printed, so Motia and this engine can share the file. What changes is how
it is handled:

* an entry name is split at its first ``:``, so keys may contain ``:`` and
  ``g1`` never sees ``g10``'s items. A group with ``:`` is stored with it as
  ``%3A`` (``trace:42`` -> ``trace%3A42:<key>``), and a ``%`` that comes before
  ``25`` or ``3A`` as ``%25``; every other group name is written exactly as
  Motia writes it. An entry whose group part this engine would never write
  (``%25`` before anything but ``25`` or ``3A``) is kept as it is and not read
  as an item, so two entries can never claim the same item;
* versions above 1, expiries (ms since the epoch), each group's version floor and
  the deadlines of groups that expire as a whole (``group_expires``: group -> ms since
  the epoch; see `local.Groups`) are kept in one extra entry,
  ``__motia_state__`` (its name has no ``:``, so Motia never reads it as an
  item); an item without a recorded version has version 1, as on Redis. A damaged
  entry is refused (`DecodeError`), not ignored: guessing would set versions back,
  and compare-and-set callers would then overwrite each other;
* every write holds an exclusive ``flock`` on ``<file>.lock`` while it reads,
  changes and replaces the file (temp file, fsync, rename, fsync of the folder),
  so concurrent writers in any process lose nothing and a crash leaves either
  the old or the new file, never half of one. Reads need no lock: the file is
  only ever replaced whole. Every call reads the file; it is parsed again only
  when its bytes differ from the last parse (file stamps are too coarse to trust).
  A write that changes nothing leaves the file alone (the sweeper calls cleanup
  every second);
* a symlinked state file stays a symlink: the file it points to is locked and
  replaced, as Motia's own writes go through the link;
* the replacement keeps the file's mode and, where the process may, its owner:
  a rename would otherwise widen a 0600 file to the umask's default or hand a
  shared file to whoever wrote last. A new file is created 0600 (less what the
  umask removes): state can hold secrets, and ``chmod`` widens it for good. A
  file the process may not write is refused with `PermissionDenied` rather than
  replaced (the rename needs only the folder's permission), and so is a file
  with no write bit at all, even for root, whom ``os.access`` lets write anything:
  that is how a state file is marked read-only;
* a failure of the file system is a `PermissionDenied` (EACCES, EPERM, EROFS) or
  `BackendUnavailable` naming the file; nothing was written then. Text Motia
  cannot have written (not UTF-8, nested beyond the parser's depth, not a JSON
  object) is a `DecodeError` naming the file, which is left as it is. Lone
  surrogates, which JavaScript strings may hold, are read and written back as
  ``\\udXXXX`` escapes, as Node's ``JSON.stringify`` writes them.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import stat
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from ..capabilities import IN_PROCESS
from ..codecs import Codec, JsonCodec
from ..errors import BackendUnavailable, DecodeError, OutcomeUnknown, PermissionDenied
from ..ops import Request
from . import local

T = TypeVar("T")

META_ENTRY = "__motia_state__"
META_FIELDS = ("versions", "expires", "floors", "floor_expiry", "group_expires")
DEFAULT_PATH = ".motia/motia.state.json"
REFUSED = (errno.EACCES, errno.EPERM, errno.EROFS)


class FileBackend:
    capabilities = IN_PROCESS

    def __init__(
        self, path: str | os.PathLike[str] = DEFAULT_PATH, codec: Codec | None = None
    ) -> None:
        self.path = Path(path)
        self._codec = codec or JsonCodec()
        self.describe = f"file://{self.path}"
        self._mutex = threading.Lock()
        self._raw: bytes | None = None
        self._stat: os.stat_result | None = None  # of the file last read; None: absent
        self._groups = local.Groups()
        self._extra: dict[str, Any] = {}

    def execute(self, op: Request[T]) -> T:
        with self._mutex, _typed_os_errors(self.path):
            if not local.is_write(op):
                self._refresh()
                return local.apply(self._groups, op, self._codec, self.describe)
            target = Path(os.path.realpath(self.path))  # write through a symlink
            with _file_lock(target):
                self._refresh()
                try:
                    result = local.apply(self._groups, op, self._codec, self.describe)
                    self._save(target)
                except BaseException:
                    self._raw = None  # the cached model may be ahead of the file
                    raise
                return result

    def close(self) -> None:
        pass

    def session(self) -> NoReturn:
        raise local.no_feed(self.describe)

    def _refresh(self) -> None:
        try:
            # O_NONBLOCK: a FIFO at the path must not hang every call.
            fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        except FileNotFoundError:
            raw, self._stat = b"", None
        else:
            try:
                self._stat = os.fstat(fd)
                if not stat.S_ISREG(self._stat.st_mode):
                    raise BackendUnavailable(f"{self.path} is not a regular file")
                with open(fd, "rb", closefd=False) as fh:
                    raw = fh.read()
            finally:
                os.close(fd)
        if raw != self._raw:
            self._groups, self._extra = _parse(raw, self.path)
            self._raw = raw

    def _save(self, target: Path) -> None:
        text = _utf8(_render(self._groups, self._extra))
        if text == self._raw:
            return
        old = self._stat
        if old is not None and not (old.st_mode & 0o222 and os.access(target, os.W_OK)):
            mode = stat.S_IMODE(old.st_mode)
            raise PermissionDenied(
                f"{self.path} is read-only here (mode {mode:o}); nothing written"
            )
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with open(fd, "wb") as fh:
                if old is not None:
                    _keep_owner(fd, old)
                    os.fchmod(fd, stat.S_IMODE(old.st_mode))  # after fchown, which clears set-id
                fh.write(text)
                fh.flush()
                os.fsync(fd)
            os.replace(tmp, target)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
        self._raw = text
        try:
            dir_fd = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(dir_fd)
            finally:
                os.close(dir_fd)
        except OSError as exc:
            raise OutcomeUnknown(
                f"{self.path} was replaced, but syncing its folder failed ({exc}): "
                "the write may not survive a crash"
            ) from exc


def _keep_owner(fd: int, old: os.stat_result) -> None:
    """Only root may give a file away; a member of the file's group may still keep the group,
    which is what keeps a file shared by a group (mode 0660) shared after a member writes."""
    with suppress(PermissionError):
        try:
            os.fchown(fd, old.st_uid, old.st_gid)
        except PermissionError:
            os.fchown(fd, -1, old.st_gid)


@contextmanager
def _file_lock(target: Path) -> Iterator[None]:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Read-only is enough for flock: whoever may read the lock file may share the state file.
    fd = os.open(target.with_name(target.name + ".lock"), os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock; a killed process releases it too


@contextmanager
def _typed_os_errors(path: Path) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename not in (None, str(path)) else ""
        kind = PermissionDenied if exc.errno in REFUSED else BackendUnavailable
        raise kind(f"{path}: {exc.strerror or exc}{where}; nothing written") from exc


# Group names in entry names (see the module docstring). The decoding is the inverse of
# the encoding on every name the encoding makes; `_parse` keeps the others as they are.
_ESCAPE = re.compile(r"%(?=25|3A)|:")
_UNESCAPE = re.compile(r"%(25|3A)")


def entry_group(group: str) -> str:
    """The group part of an entry name: Motia's own names unchanged, ``:`` escaped."""
    if ":" not in group and "%" not in group:
        return group
    return _ESCAPE.sub(lambda m: "%3A" if m[0] == ":" else "%25", group)


def group_of(part: str) -> str | None:
    """The group an entry name's group part stands for; None if this engine never writes it."""
    if "%" not in part:
        return part
    group = _UNESCAPE.sub(lambda m: ":" if m[1] == "3A" else "%", part)
    return group if entry_group(group) == part else None


_SURROGATE = re.compile("[\ud800-\udfff]")


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate can only sit inside a JSON string, where its escape means the same.
        return _SURROGATE.sub(lambda m: f"\\u{ord(m[0]):04x}", text).encode("utf-8")


def _parse(raw: bytes, path: Path) -> tuple[local.Groups, dict[str, Any]]:
    if not raw.strip():
        return local.Groups(), {}
    try:
        doc = json.loads(raw.decode("utf-8"))  # bytes would let json guess UTF-16 or pass
    except ValueError as exc:  # lone surrogates encoded (CESU): the file must be UTF-8
        raise DecodeError(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise DecodeError(f"{path} nests deeper than this engine can read") from None
    if not isinstance(doc, dict):
        raise DecodeError(f"{path} must hold a JSON object of 'group:key' entries")
    meta = _meta(doc.pop(META_ENTRY, None), path)
    versions, expires = meta.get("versions", {}), meta.get("expires", {})
    groups = local.Groups()
    groups.floors.update(meta.get("floors", {}))
    groups.floor_expiry.update(meta.get("floor_expiry", {}))
    groups.deadlines.update(meta.get("group_expires", {}))
    extra: dict[str, Any] = {}
    for name, value in doc.items():
        part, sep, key = name.partition(":")
        group = group_of(part)
        if not sep or not group or not key:
            extra[name] = value  # not an item; kept as it was
            continue
        try:
            # Motia stores JSON text; a hand-written plain JSON value is read as that value.
            text = (
                value
                if isinstance(value, str)
                else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
            )
        except RecursionError:
            raise DecodeError(f"{path}: entry {name!r} nests too deep to read") from None
        entry = local.Entry(_utf8(text), versions.get(name, 1), expires.get(name))
        groups.setdefault(group, {})[key] = entry
    return groups, extra


def _meta(text: object, path: Path) -> dict[str, dict[str, int]]:
    if text is None:
        return {}
    try:
        meta = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        meta = None
    if isinstance(meta, dict) and all(
        field in META_FIELDS
        and isinstance(table, dict)
        and all(type(n) is int and n > 0 for n in table.values())
        for field, table in meta.items()
    ):
        return meta
    raise DecodeError(
        f"{path}: entry {META_ENTRY!r} (this engine's versions and expiries) is damaged; "
        "repair it, or delete it to restart every item at version 1 with no expiry"
    )


def _render(groups: local.Groups, extra: dict[str, Any]) -> str:
    doc: dict[str, Any] = {}
    versions: dict[str, int] = {}
    expires: dict[str, int] = {}
    for group, items in groups.items():
        head = entry_group(group)
        for key, entry in items.items():
            name = f"{head}:{key}"
            doc[name] = entry.data.decode("utf-8")
            if entry.version != 1:
                versions[name] = entry.version
            if entry.expires_at is not None:
                expires[name] = entry.expires_at
    doc.update(extra)
    parts = (
        ("versions", versions),
        ("expires", expires),
        ("floors", groups.floors),
        ("floor_expiry", groups.floor_expiry),
        ("group_expires", groups.deadlines),
    )
    meta = {k: v for k, v in parts if v}
    if meta:
        doc[META_ENTRY] = json.dumps(meta, ensure_ascii=False)
    return json.dumps(doc, ensure_ascii=False, indent=2)
