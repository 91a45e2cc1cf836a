"""Custom state adapters: the public API for storing state anywhere.

An adapter stores *records* (an item's encoded value with its version and expiry) in groups,
and nothing else: the engine keeps every rule. Names are checked, values encoded exactly and
size-limited, versions counted, expiries and compare-and-set decided, all before and around
the adapter's calls, exactly as for the built-in backends. So an adapter is a handful of
small storage methods, and a new storage system gets the engine's whole contract (see
``motia_state.testing``, which proves it).

What an adapter can promise beyond storage, it declares in ``capabilities``; an operation
needing one it lacks raises `Unsupported` naming it, never a quieter variant:

* ``"versions"``: `atomic` isolates its block from every other writer (another thread or
  process included) and `meta`/`set_meta` keep each group's version floor. Then versions are
  exact, and ``version=`` conditions, ``increment`` and ``update`` work.
* ``"transactions"``: `atomic`'s block is also all or nothing, a failure midway included (a
  database transaction). Then ``state.transaction()``, ``set_many`` and ``delete_many`` work.
* ``"ttl"``: records keep ``expires_at``, `cleanup` removes expired ones and `meta`/`set_meta`
  keep a group's own expiry. Then ``ttl=``, ``expire``, ``persist`` and group TTLs work.
* ``"feed"``: the adapter keeps a change feed the engine's watch protocol reads (`session`
  and `feed`): advanced, see `StateAdapter.session`.

Register a factory for a URL scheme with `register_adapter`, or from a package's metadata
in the entry-point group ``motia_state.adapters`` (name: the scheme; value: the factory),
so that installing the package makes ``scheme://`` work in `State.from_url`.
"""

from __future__ import annotations

import re
import threading
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ClassVar, TypeAlias

from .errors import InvalidInput, StateError, Unsupported, brief

ENTRY_POINT_GROUP = "motia_state.adapters"
BUILT_IN_SCHEMES = frozenset(
    {"redis", "rediss", "unix", "redis+cluster", "rediss+cluster", "redis+sentinel",
     "rediss+sentinel", "embedded", "file", "memory"}
)  # fmt: skip
_SCHEME = re.compile(r"[a-z][a-z0-9+.-]{0,63}")


@dataclass(frozen=True, slots=True)
class Record:
    """One stored item. ``data``: the value as the State's codec encoded it (store these bytes
    exactly). ``version``: the engine's count of the item's writes. ``expires_at``: ms since
    the epoch, or None; an adapter without the ``ttl`` capability is only ever given None."""

    data: bytes
    version: int
    expires_at: int | None = None


@dataclass(frozen=True, slots=True)
class GroupMeta:
    """What the engine keeps about a group beyond its records. ``floor``: the highest version
    the group's removed items reached, their removal counted as a write (``versions``: a new
    item starts above it, so a version is never repeated and a stale compare-and-set can never
    succeed). ``expires_at``: when the
    whole group expires, ms since the epoch (``ttl``: trace scopes). The default, GroupMeta(),
    is what a group without metadata has; storing it may remove the group's row."""

    floor: int = 0
    expires_at: int | None = None


def _unsupported(adapter: object, what: str) -> Unsupported:
    return Unsupported(f"{type(adapter).__name__} does not implement {what}")


class StateAdapter(ABC):
    """A synchronous adapter. The engine may call it from several threads at once: guard
    what needs guarding (`atomic` blocks of other threads must wait, as other processes do).

    The required methods are Motia's (get, set, delete, clear, cleanup) plus the two listings
    the engine's group reads need. Messages and reprs name the store by its URL, redacted."""

    capabilities: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def get(self, group: str, key: str) -> Record | None:
        """The record, expired or not (the engine decides), or None."""

    @abstractmethod
    def set(self, group: str, key: str, record: Record) -> None:
        """Store the record, replacing any."""

    @abstractmethod
    def delete(self, group: str, key: str) -> None:
        """Remove the record if there is one."""

    @abstractmethod
    def clear(self, group: str) -> None:
        """Remove every record of the group (not its `meta`)."""

    @abstractmethod
    def cleanup(self, now_ms: int) -> int:
        """Remove the records that expired at or before ``now_ms``; return how many. With
        ``versions``, raise each group's floor to at least each removed record's version + 1
        (the removal is its last write).
        Without ``ttl`` there are none: return 0."""

    @abstractmethod
    def items(self, group: str) -> Iterable[tuple[str, Record]]:
        """Every record of the group, expired or not."""

    @abstractmethod
    def list_groups(self) -> Iterable[str]:
        """The groups holding at least one record."""

    def expired_groups(self, now_ms: int) -> Iterable[str]:
        """``ttl``: the groups whose own expiry (`meta`) passed at ``now_ms``, for the sweep.
        This default reads every group's metadata; a store that can ask directly should."""
        return [
            group
            for group in self.list_groups()
            if (at := self.meta(group).expires_at) is not None and at <= now_ms
        ]

    def meta(self, group: str) -> GroupMeta:
        """The group's metadata (``versions``, ``ttl``); GroupMeta() when none was stored."""
        raise _unsupported(self, "meta (needed by 'versions' and 'ttl')")

    def set_meta(self, group: str, meta: GroupMeta) -> None:
        raise _unsupported(self, "set_meta (needed by 'versions' and 'ttl')")

    @contextmanager
    def atomic(self) -> Iterator[None]:
        """A block no other writer interleaves with (``versions``), applied all or nothing
        (``transactions``). The engine runs each write inside one and never nests them."""
        raise _unsupported(self, "atomic (needed by 'versions' and 'transactions')")
        yield  # pragma: no cover

    def session(self) -> Any:
        """``feed``: a connection of its own running the engine's watch plans (the `Session`
        protocol of ``motia_state.backends.base``). Only for adapters built on a server that
        speaks the Redis stream commands."""
        raise _unsupported(self, "session (needed by 'feed')")

    def feed(self, request: Any) -> Any:
        """``feed``: carry out a feed request (an acknowledgement, a bridge record)."""
        raise _unsupported(self, "feed (needed by 'feed')")

    def close(self) -> None:
        """Release connections and files; the engine calls it once, from `State.close`."""
        return None


class AsyncStateAdapter(ABC):
    """`StateAdapter` for asyncio: the same methods as coroutines (`atomic` an async context
    manager). `AsyncState` awaits it directly; `State` runs it on an event loop of its own."""

    capabilities: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    async def get(self, group: str, key: str) -> Record | None: ...

    @abstractmethod
    async def set(self, group: str, key: str, record: Record) -> None: ...

    @abstractmethod
    async def delete(self, group: str, key: str) -> None: ...

    @abstractmethod
    async def clear(self, group: str) -> None: ...

    @abstractmethod
    async def cleanup(self, now_ms: int) -> int: ...

    @abstractmethod
    async def items(self, group: str) -> Iterable[tuple[str, Record]]: ...

    @abstractmethod
    async def list_groups(self) -> Iterable[str]: ...

    async def expired_groups(self, now_ms: int) -> Iterable[str]:
        return [
            group
            for group in await self.list_groups()
            if (at := (await self.meta(group)).expires_at) is not None and at <= now_ms
        ]

    async def meta(self, group: str) -> GroupMeta:
        raise _unsupported(self, "meta (needed by 'versions' and 'ttl')")

    async def set_meta(self, group: str, meta: GroupMeta) -> None:
        raise _unsupported(self, "set_meta (needed by 'versions' and 'ttl')")

    @asynccontextmanager
    async def atomic(self) -> AsyncIterator[None]:
        raise _unsupported(self, "atomic (needed by 'versions' and 'transactions')")
        yield  # pragma: no cover

    def session(self) -> Any:
        raise _unsupported(self, "session (needed by 'feed')")

    async def feed(self, request: Any) -> Any:
        raise _unsupported(self, "feed (needed by 'feed')")

    async def close(self) -> None:
        """Release connections and files; called once, from `AsyncState.aclose`."""
        return None


Adapter: TypeAlias = StateAdapter | AsyncStateAdapter
Factory: TypeAlias = Callable[[str], Adapter]
"""Makes an adapter from the whole URL (its query included: the factory parses it)."""

_registry: dict[str, Factory] = {}
_registry_lock = threading.Lock()


def _valid_scheme(scheme: object) -> str:
    if not isinstance(scheme, str) or not _SCHEME.fullmatch(scheme):
        raise InvalidInput(
            f"an adapter scheme is lower-case letters, digits, '+', '-' or '.', starting with "
            f"a letter (as in 'myscheme'), not {brief(scheme)}"
        )
    if scheme in BUILT_IN_SCHEMES:
        raise InvalidInput(f"{scheme}:// is built in; register the adapter under another scheme")
    return scheme


def register_adapter(scheme: str, factory: Factory, *, replace: bool = False) -> None:
    """Make ``scheme://...`` URLs open ``factory(url)``. A second registration of one scheme
    is refused unless ``replace``: two packages claiming a scheme is a mistake to hear about."""
    scheme = _valid_scheme(scheme)
    if not callable(factory):
        raise InvalidInput(f"the factory for {scheme}:// must be callable, not {brief(factory)}")
    with _registry_lock:
        if scheme in _registry and not replace and _registry[scheme] is not factory:
            raise InvalidInput(f"{scheme}:// already has an adapter; pass replace=True")
        _registry[scheme] = factory


def unregister_adapter(scheme: str) -> None:
    with _registry_lock:
        _registry.pop(scheme, None)


def factory_for(scheme: str) -> Factory | None:
    """The factory registered for ``scheme``, else the one an installed package names in the
    entry-point group (loaded on first use), else None."""
    with _registry_lock:
        found = _registry.get(scheme)
    if found is not None:
        return found
    named = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == scheme]
    if not named:
        return None
    if len({ep.value for ep in named}) > 1:
        raise InvalidInput(
            f"several installed packages register {scheme}:// ({sorted(ep.value for ep in named)})"
        )
    try:
        loaded = named[0].load()
    except Exception as exc:
        raise StateError(
            f"the adapter for {scheme}:// ({named[0].value}) failed to load: "
            f"{type(exc).__name__}: {brief(str(exc))}"
        ) from exc
    register_adapter(scheme, loaded, replace=True)
    return loaded  # type: ignore[no-any-return]


def known_schemes() -> list[str]:
    """Schemes with an adapter: registered, or named by an installed package."""
    with _registry_lock:
        names = set(_registry)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)
