"""file:// -- Motia's ``.motia/motia.state.json``, read and written safely.

The format stays Motia's: one JSON object ``{"<group>:<key>": "<JSON text>"}``,
pretty-printed, so Motia and this engine can share the file. What changes is how
it is handled:

* an entry name is split at its first ``:``, so keys may contain ``:`` and
  ``g1`` never sees ``g10``'s items; a group name with ``:`` would be ambiguous
  and is refused;
* versions above 1, expiries (ms since the epoch) and each group's version floor
  (see `local.Groups`) are kept in one extra entry,
  ``__motia_state__`` (its name has no ``:``, so Motia never reads it as an
  item); an item without a recorded version has version 1, as on Redis;
* every write holds an exclusive ``flock`` on ``<file>.lock`` while it reads,
  changes and replaces the file (temp file, fsync, rename, fsync of the folder),
  so concurrent writers in any process lose nothing and a crash leaves either
  the old or the new file, never half of one. Reads need no lock: the file is
  only ever replaced whole. Every call reads the file; it is parsed again only
  when its bytes differ from the last parse (file stamps are too coarse to trust).
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from .. import ops
from ..errors import DecodeError, InvalidInput
from ..ops import Op
from . import local

T = TypeVar("T")

META_ENTRY = "__motia_state__"
DEFAULT_PATH = ".motia/motia.state.json"


class FileBackend:
    def __init__(self, path: str | os.PathLike[str] = DEFAULT_PATH) -> None:
        self.path = Path(path)
        self.describe = f"file://{self.path}"
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._mutex = threading.Lock()
        self._raw: bytes | None = None
        self._groups = local.Groups()
        self._extra: dict[str, Any] = {}

    def execute(self, op: Op[T]) -> T:
        subs = op.ops if isinstance(op, ops.Transaction) else (op,)
        for group in (getattr(sub, "group", "") for sub in subs):
            if ":" in group:
                raise InvalidInput(
                    f"group {group!r} contains ':', which the file backend cannot store: Motia's "
                    "file format joins group and key with ':' (keys may hold ':', groups may not)"
                )
        with self._mutex:
            if not local.is_write(op):
                self._refresh()
                return local.apply(self._groups, op)
            with self._file_lock():
                self._refresh()
                try:
                    result = local.apply(self._groups, op)
                    self._save()
                except BaseException:
                    self._raw = None  # the cached model may be ahead of the file
                    raise
                return result

    def close(self) -> None:
        pass

    def session(self) -> NoReturn:
        raise local.no_feed(self.describe)

    @contextmanager
    def _file_lock(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock; a killed process releases it too

    def _refresh(self) -> None:
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            raw = b""
        if raw != self._raw:
            self._groups, self._extra = _parse(raw, self.path)
            self._raw = raw

    def _save(self) -> None:
        text = _render(self._groups, self._extra).encode("utf-8")
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self._raw = text


def _parse(raw: bytes, path: Path) -> tuple[local.Groups, dict[str, Any]]:
    if not raw.strip():
        return local.Groups(), {}
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise DecodeError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise DecodeError(f"{path} must hold a JSON object of 'group:key' entries")
    meta: dict[str, Any] = {}
    if isinstance(doc.get(META_ENTRY), str):
        meta = json.loads(doc[META_ENTRY])
    versions: dict[str, int] = meta.get("versions", {})
    expires: dict[str, int] = meta.get("expires", {})
    groups = local.Groups()
    groups.floors.update(meta.get("floors", {}))
    groups.floor_expiry.update(meta.get("floor_expiry", {}))
    extra: dict[str, Any] = {}
    for name, value in doc.items():
        if name == META_ENTRY:
            continue
        group, sep, key = name.partition(":")
        if not sep or not group or not key:
            extra[name] = value  # not an item; kept as it was
            continue
        # Motia stores JSON text; a hand-written plain JSON value is read as that value.
        text = (
            value
            if isinstance(value, str)
            else json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        )
        entry = local.Entry(text.encode("utf-8"), versions.get(name, 1), expires.get(name))
        groups.setdefault(group, {})[key] = entry
    return groups, extra


def _render(groups: local.Groups, extra: dict[str, Any]) -> str:
    doc: dict[str, Any] = {}
    versions: dict[str, int] = {}
    expires: dict[str, int] = {}
    for group, items in groups.items():
        for key, entry in items.items():
            name = f"{group}:{key}"
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
    )
    meta = {k: v for k, v in parts if v}
    if meta:
        doc[META_ENTRY] = json.dumps(meta, ensure_ascii=False)
    return json.dumps(doc, ensure_ascii=False, indent=2)
