"""memory:// -- state in this process, for tests and throwaway runs.

``memory://`` gives each `State` its own empty store; ``memory://NAME`` shares
one store among every `State` of the process that names it.
"""

from __future__ import annotations

import threading
from typing import NoReturn, TypeVar

from ..capabilities import IN_PROCESS
from ..codecs import Codec
from ..ops import Request
from . import local

T = TypeVar("T")

_named: dict[str, tuple[threading.Lock, local.Groups]] = {}
_named_lock = threading.Lock()


class MemoryBackend:
    capabilities = IN_PROCESS

    def __init__(self, name: str, codec: Codec) -> None:
        self.describe = f"memory://{name}"
        self._codec = codec
        self._lock: threading.Lock
        self._groups: local.Groups
        if not name:
            self._lock, self._groups = threading.Lock(), local.Groups()
            return
        with _named_lock:
            self._lock, self._groups = _named.setdefault(name, (threading.Lock(), local.Groups()))

    def execute(self, op: Request[T]) -> T:
        with self._lock:
            return local.apply(self._groups, op, self._codec, self.describe)

    def close(self) -> None:
        pass

    def session(self) -> NoReturn:
        raise local.no_feed(self.describe)
