"""Typed group views: ``state.group(name, model=M)``, whose values are ``M``.

A typed view wraps the untyped view its State gives for the group, so whatever that view
does (a group-wide expiry, say) a typed one does too; it only turns values into plain data
on the way in and validates them into ``M`` on the way out. Both ways go through pydantic's
`TypeAdapter`, so pydantic models, dataclasses and TypedDicts are handled alike. pydantic is
imported when the first typed view is made, not before: ``import motia_state`` works without
it.

Writes. A value must be an ``M``: an instance of a model or dataclass class (a dict is not
one), or a dict of the right field types for a TypedDict (validated strictly: ``"3"`` is not
an int). It is then dumped in pydantic's JSON mode, which makes datetimes, decimals and UUIDs
strings and tuples and sets lists, but keeps ints and floats as they are, so the engine's
codec still refuses what it refuses from anyone (an int past 64 bits, NaN under JSON). That
dump is validated again, as a read will validate it: an instance built with
``model_construct`` or mutated after validation is caught here, named by field path, before
anything is sent.

Updates. The server applies update ops atomically, so a result that does not fit the model
would be written by the time the engine saw it. A typed view never writes one: it reads the
item, applies the ops locally with the reference semantics (`updates.apply`, which the Lua
scripts are tested against), validates the result, and only then sends the same ops
conditioned on the version it read; a lost race reads again (`ATTEMPTS` times at most). The
write is still the server's ``update``/``increment``: the item keeps its expiry, the feed
records an update. It costs a read more than an untyped update.
"""

from __future__ import annotations

import dataclasses
import functools
import types
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Generator,
    Hashable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from typing import TYPE_CHECKING, Any, Generic, TypeVar, cast

from . import query as queries
from . import updates, validate
from .changes import Change
from .core import DEFAULT_SCAN_BATCH
from .errors import (
    InvalidInput,
    ModelDecodeError,
    ModelValidationError,
    Unsupported,
    UpdateFailed,
    VersionConflict,
    brief,
)
from .history import DEFAULT_LIMIT as HISTORY_LIMIT
from .history import History
from .ops import Item, Undecodable
from .query import KeyPage, Page

if TYPE_CHECKING:
    from pydantic import TypeAdapter, ValidationError

    from .async_state import AsyncGroupView
    from .barrier import BarrierState
    from .state import GroupView
    from .subscriptions import AsyncSubscription, Subscription
    from .watch import AsyncWatch, Watch

M = TypeVar("M")
INSTALL = "pip install 'motia-state[typed]'"
ATTEMPTS = 100  # reads and conditional writes a typed update tries before its VersionConflict
# What a typed update's own check refuses before anything is sent; and the version no item has,
# at which a keyed retry asks its receipt alone (the receipt ignores version=; without one the
# write is refused, writing nothing).
REFUSED_BY_CHECK = (ModelValidationError, VersionConflict, UpdateFailed)
NO_VERSION = validate.MAX_VERSION
PROBLEMS_KEPT = 20  # of pydantic's errors, kept in an exception's ``problems``
SEGMENT_CHARS = 64  # a field path segment may be a key of stored data: cut long ones
MESSAGE_CHARS = 120  # pydantic's messages, cut (a few quote a piece of the input)


class TypedItem(Item, Generic[M]):
    """`Item` of a typed view: ``value`` is the model."""

    __slots__ = ()
    value: M


class TypedChange(Change, Generic[M]):
    """`Change` of a typed view's watch: with values, ``value`` and ``old_value`` are the model
    (None where the record has none). It is a `Change`: ``ack`` and ``motia_event`` take it."""

    __slots__ = ()
    value: M | None
    old_value: M | None


def _pydantic() -> tuple[Any, Any]:
    try:
        import pydantic
        import pydantic_core
    except ImportError as exc:
        raise Unsupported(f"typed group views (model=...) need pydantic: {INSTALL}") from exc
    return pydantic, pydantic_core


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _path(loc: Sequence[int | str]) -> str:
    return ".".join(_cut(str(segment), SEGMENT_CHARS) for segment in loc)


def _problems(errors: Sequence[Any], skip: int = 0) -> tuple[list[tuple[str, str]], int]:
    """pydantic's errors as (field path, what is wrong): locations and error types, without
    the input; ``skip`` leading location segments (a batch's index)."""
    problems = [
        (_path(e["loc"][skip:]), f"{_cut(e['msg'], MESSAGE_CHARS)} [{e['type']}]")
        for e in errors[:PROBLEMS_KEPT]
    ]
    return problems, len(errors)


def _details(exc: ValidationError) -> list[Any]:
    return list(exc.errors(include_url=False, include_context=False, include_input=False))


def _first_failing(exc: ValidationError) -> tuple[int, tuple[list[tuple[str, str]], int]]:
    """A batch's error: the index of its first faulty item, and that item's problems."""
    errors = _details(exc)
    index = min(int(e["loc"][0]) for e in errors)
    return index, _problems([e for e in errors if e["loc"][0] == index], skip=1)


def _where(group: str, key: object) -> str:
    return f"{brief(group)}/{brief(key)}"


class Model(Generic[M]):
    """One model's adapters and checks, without I/O: what the sync and async views share."""

    def __init__(self, model: type[M]) -> None:
        if not isinstance(model, type):
            raise InvalidInput(
                f"model must be a class (a pydantic model, a dataclass or a TypedDict), "
                f"not {brief(model)}"
            )
        pydantic, pydantic_core = _pydantic()
        self.type = model
        self.name = _cut(model.__qualname__, SEGMENT_CHARS)
        try:
            self.one: TypeAdapter[M] = pydantic.TypeAdapter(model)
            self.many: TypeAdapter[list[M]] = pydantic.TypeAdapter(types.GenericAlias(list, model))
        except (pydantic.PydanticUserError, pydantic.PydanticUndefinedAnnotation) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise InvalidInput(f"model {self.name}: pydantic cannot use it: {first}") from None
        # A dict validates into a model class even strictly: those take instances only.
        self.instances = issubclass(model, pydantic.BaseModel) or dataclasses.is_dataclass(model)
        self._invalid: type[ValidationError] = pydantic.ValidationError
        self._unserializable: type[Exception] = pydantic_core.PydanticSerializationError

    def __repr__(self) -> str:
        return self.name

    # -- in ------------------------------------------------------------------------

    def dump(self, group: str, key: str, value: object) -> Any:
        """``value`` as plain data for the codec once it is a valid ``M``."""
        if self.instances and not isinstance(value, self.type):
            what = f"expected an instance of {self.name}, not {type(value).__name__}"
            raise ModelValidationError(_where(group, key), self.name, [("", what)])
        one = self.one
        try:
            checked = one.validate_python(value, strict=True)
            data = one.dump_python(checked, mode="json", warnings=False)
            # What a read will validate: catches instances that skipped validation.
            return one.dump_python(one.validate_python(data), mode="json", warnings=False)
        except self._invalid as exc:
            raise ModelValidationError(
                _where(group, key), self.name, *_problems(_details(exc))
            ) from None
        except (self._unserializable, UnicodeError) as exc:  # bytes that are not UTF-8
            what = f"cannot be serialized: {_cut(str(exc), MESSAGE_CHARS)}"
            raise ModelValidationError(_where(group, key), self.name, [("", what)]) from None

    def dump_all(self, group: str, mapping: object) -> dict[str, Any]:
        """`dump` of each item of ``set_many``'s mapping; the first faulty item raises (a bad
        key included, as the untyped ``set_many`` would name it)."""
        if not isinstance(mapping, Mapping):
            raise InvalidInput(
                f"set_many takes a mapping of key -> value, not {type(mapping).__name__}"
            )
        return {validate.key(key): self.dump(group, key, value) for key, value in mapping.items()}

    def check_result(self, group: str, key: str, result: Any) -> None:
        """Refuse an update whose result a read would not take as an ``M``."""
        try:
            self.one.validate_python(result)
        except self._invalid as exc:
            where = f"{_where(group, key)} after the update"
            raise ModelValidationError(where, self.name, *_problems(_details(exc))) from None

    # -- out -----------------------------------------------------------------------

    def load(self, group: str, key: str, raw: Any, what: str = "stored value") -> M:
        try:
            return self.one.validate_python(raw)
        except self._invalid as exc:
            problems = _problems(_details(exc))
            raise ModelDecodeError(group, key, self.name, *problems, what=what) from None

    def load_values(self, raws: list[Any]) -> list[M] | None:
        """Every value of a group, or None when one does not fit (the caller reads the
        items with their keys, to name it: `load_items`)."""
        try:
            return self.many.validate_python(raws)
        except self._invalid:
            return None

    def load_items(self, group: str, raw: Mapping[str, Any]) -> dict[str, M]:
        keys = list(raw)
        try:
            values = self.many.validate_python(list(raw.values()))
        except self._invalid as exc:
            index, problems = _first_failing(exc)
            raise ModelDecodeError(group, keys[index], self.name, *problems) from None
        return dict(zip(keys, values, strict=True))

    def load_some(self, group: str, keys: Sequence[str], raws: Sequence[Any]) -> list[M | None]:
        """``get_many``'s values: None stays None (absent)."""
        present = [i for i, raw in enumerate(raws) if raw is not None]
        try:
            values = self.many.validate_python([raws[i] for i in present])
        except self._invalid as exc:
            index, problems = _first_failing(exc)
            raise ModelDecodeError(group, keys[present[index]], self.name, *problems) from None
        out: list[M | None] = [None] * len(raws)
        for i, value in zip(present, values, strict=True):
            out[i] = value
        return out

    def item(self, item: Item | None) -> TypedItem[M] | None:
        return None if item is None else self.typed(item)

    def typed(self, item: Item) -> TypedItem[M]:
        value = self.load(item.group, item.key, item.value)
        return TypedItem(item.group, item.key, value, item.version, item.expires_at)

    def removed(self, group: str, key: str, removed: Any, codec: Any) -> M | Undecodable | None:
        """A delete's value. One that does not fit the model comes back as `Undecodable`
        (``raw``: the value encoded again by the State's codec; ``reason``: why it does not
        fit), not as an error: the delete went through (see `Undecodable`)."""
        if removed is None or isinstance(removed, Undecodable):
            return removed
        try:
            return self.load(group, key, removed)
        except ModelDecodeError as exc:
            try:
                raw = codec.encode(removed)
            except Exception:  # an int past 64 bits written by another tool, say
                raw = b""
            return Undecodable(raw, str(exc))

    def change(self, change: Change) -> TypedChange[M]:
        value, old = change.value, change.old_value
        if change.has_values:
            group, key = change.group or "", change.key or ""
            if value is not None:
                value = self.load(group, key, value, f"the value of change {change.id}")
            if old is not None:
                old = self.load(group, key, old, f"the old value of change {change.id}")
        fields = {f.name: getattr(change, f.name) for f in dataclasses.fields(change)}
        return TypedChange(**(fields | {"value": value, "old_value": old}))

    def history(self, history: History) -> History:
        return History([self.change(change) for change in history.changes], history.cursor)


@functools.lru_cache(maxsize=256)
def _cached(model: Any) -> Model[Any]:
    return Model(model)


def model_of(model: type[M]) -> Model[M]:
    """The adapters of ``model``, built once per class (building one costs a millisecond or
    more, and ``group(name, model=M)`` may run per request)."""
    try:
        hash(model)
    except TypeError:
        return Model(model)
    cached: Model[M] = _cached(cast("Hashable", model))
    return cached


class Update:
    """One typed ``update`` or ``increment``: the ops, checked, and what to do with a read item
    (the local result to validate, and the version to condition the write on)."""

    def __init__(
        self,
        model: Model[Any],
        group: str,
        key: str,
        steps: Sequence[Any],
        start: Callable[[], Any],
    ) -> None:
        self.model = model
        self.group = group
        self.key = validate.key(key)
        self.steps = steps
        self.start = start

    def check(self, item: Item | None, version: int | None) -> int:
        """Validate the result the ops would give ``item``; the version to write at."""
        found = 0 if item is None else item.version
        if version is not None and found != version:
            raise VersionConflict([(self.group, self.key, version, found)])
        current = self.start() if item is None else item.value
        self.model.check_result(self.group, self.key, updates.apply(current, self.steps))
        return found


def _update(
    model: Model[Any], group: str, key: str, ops: Iterable[Any]
) -> tuple[Update, list[Any]]:
    steps = updates.parse(ops)
    return Update(model, group, key, steps, dict), [step.source for step in steps]


def _increment(model: Model[Any], group: str, key: str, by: object) -> tuple[Update, int | float]:
    amount = updates.amount(by, "increment")
    op = {"type": "increment", "path": "", "by": amount}
    steps = (updates.Step("increment", (), amount, 0, op),)
    return Update(model, group, key, steps, int), amount


# -- sync ------------------------------------------------------------------------------


class TypedWatch(Generic[M]):
    """`Watch` whose changes carry values of the model (`TypedChange`). A change whose value
    does not fit raises `ModelDecodeError` from ``next``; the watch has moved past it, so
    iterating again goes on with the next one."""

    def __init__(self, watch: Watch, model: Model[M]) -> None:
        self.untyped = watch
        self._model = model

    def __iter__(self) -> TypedWatch[M]:
        return self

    def __next__(self) -> TypedChange[M] | None:
        change = next(self.untyped)
        return None if change is None else self._model.change(change)

    def close(self) -> None:
        self.untyped.close()

    def __enter__(self) -> TypedWatch[M]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class TypedGroupView(Generic[M]):
    """`GroupView` whose values are ``M`` (``state.group(name, model=M)``): reads validate
    into ``M`` (`ModelDecodeError` when a stored value does not fit), writes take ``M`` and
    check it first (`ModelValidationError`, nothing written). ``untyped`` is the view it
    wraps; the methods that carry no value are that view's."""

    def __init__(self, view: GroupView, model: type[M]) -> None:
        self._model = model_of(model)
        self.untyped = view
        self.model = model
        self.name = view.name
        self.state = view.state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.untyped!r}, {self._model.name})"

    def get(self, key: str) -> M | None:
        """The value, or None when absent."""
        raw = self.untyped.get(key)
        return None if raw is None else self._model.load(self.name, key, raw)

    def get_item(self, key: str) -> TypedItem[M] | None:
        return self._model.item(self.untyped.get_item(key))

    def get_many(self, keys: Iterable[str]) -> list[M | None]:
        ks = validate.keys(keys)
        return self._model.load_some(self.name, ks, self.untyped.get_many(ks))

    def get_group(self) -> list[M]:
        """Every value (Motia's getGroup); one that does not fit names its key."""
        values = self._model.load_values(self.untyped.get_group())
        if values is None:
            values = list(self._model.load_items(self.name, self.untyped.items()).values())
        return values

    def items(self) -> dict[str, M]:
        return self._model.load_items(self.name, self.untyped.items())

    def iter_items(self, batch: int = DEFAULT_SCAN_BATCH) -> Iterator[tuple[str, M]]:
        for key, raw in self.untyped.iter_items(batch):
            yield key, self._model.load(self.name, key, raw)

    def query(
        self,
        where: object = None,
        *,
        order_by: str | Sequence[str] | None = None,
        descending: bool = False,
        limit: int = queries.DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """`State.query` of this group; each item's ``value`` is the model (one that does not
        fit raises `ModelDecodeError`, naming its key)."""
        page = self.untyped.query(
            where, order_by=order_by, descending=descending, limit=limit, cursor=cursor
        )
        return Page([self._model.typed(item) for item in page.items], page.cursor)

    def list_keys(self, *, cursor: str | None = None, count: int = 1000) -> KeyPage:
        return self.untyped.list_keys(cursor=cursor, count=count)

    def count(self, where: object = None) -> int:
        return self.untyped.count(where)

    def keys(self) -> list[str]:
        return self.untyped.keys()

    def barrier(
        self,
        key: str,
        *,
        parties: int,
        arrival: str,
        data: Any = None,
        ttl: float | None = None,
    ) -> BarrierState:
        """`GroupView.barrier`: a barrier's data is its arrivals', not ``M``, so untyped."""
        return self.untyped.barrier(key, parties=parties, arrival=arrival, data=data, ttl=ttl)

    def barrier_state(self, key: str) -> BarrierState | None:
        return self.untyped.barrier_state(key)

    def history(
        self, key: str, *, limit: int = HISTORY_LIMIT, before: str | None = None
    ) -> History:
        """`GroupView.history`, its changes' values validated into ``M`` (`TypedChange`; one
        that does not fit raises `ModelDecodeError`: ask ``untyped`` for the raw records)."""
        return self._model.history(self.untyped.history(key, limit=limit, before=before))

    def reset_barrier(self, key: str) -> BarrierState | None:
        return self.untyped.reset_barrier(key)

    def set(
        self,
        key: str,
        value: M,
        *,
        version: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> int:
        """Store ``value`` once it is a valid ``M``; returns the item's new version."""
        data = self._model.dump(self.name, validate.key(key), value)
        return self.untyped.set(
            key, data, version=version, ttl=ttl, idempotency_key=idempotency_key, emit=emit
        )

    def set_many(
        self,
        mapping: Mapping[str, M],
        *,
        ttl: float | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        """Store many items once every value is a valid ``M`` (the first that is not raises,
        and nothing is written)."""
        return self.untyped.set_many(
            self._model.dump_all(self.name, mapping), ttl=ttl, idempotency_key=idempotency_key
        )

    def delete(
        self,
        key: str,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> M | Undecodable | None:
        """Remove an item and return its value (None when absent); a value that does not fit
        the model comes back as `Undecodable`, since the delete went through."""
        removed = self.untyped.delete(
            key, version=version, idempotency_key=idempotency_key, emit=emit
        )
        return self._model.removed(self.name, key, removed, self.state._core.codec)

    def delete_many(self, keys: Iterable[str], *, idempotency_key: str | None = None) -> int:
        return self.untyped.delete_many(keys, idempotency_key=idempotency_key)

    def clear(self) -> int:
        return self.untyped.clear()

    def update(
        self,
        key: str,
        ops: Iterable[Mapping[str, Any]],
        *,
        version: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> M:
        """Apply Motia v1 UpdateOps; returns the new value. A result that would not be a valid
        ``M`` raises `ModelValidationError` and nothing is written (see the module)."""
        update, sources = _update(self._model, self.name, key, ops)
        return self._modify(
            update,
            version,
            lambda at: self.untyped.update(
                key, sources, version=at, ttl=ttl, idempotency_key=idempotency_key, emit=emit
            ),
            idempotency_key is not None,
        )

    def increment(
        self,
        key: str,
        by: int | float = 1,
        *,
        version: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> M:
        """Add ``by`` (a model of a number: ``model=int``); returns the new value, checked as
        `update` checks its result."""
        update, amount = _increment(self._model, self.name, key, by)
        return self._modify(
            update,
            version,
            lambda at: self.untyped.increment(
                key, amount, version=at, ttl=ttl, idempotency_key=idempotency_key, emit=emit
            ),
            idempotency_key is not None,
        )

    def _modify(
        self, update: Update, version: int | None, send: Callable[[int], Any], keyed: bool
    ) -> M:
        version = validate.version(version)
        conflict: VersionConflict | None = None
        for _ in range(ATTEMPTS):
            try:
                at = update.check(self.untyped.get_item(update.key), version)
            except REFUSED_BY_CHECK as refused:
                if not keyed:
                    raise
                try:  # a keyed retry whose first run applied: only its receipt can answer
                    raw = send(NO_VERSION)
                except VersionConflict:
                    raise refused from None
                return self._model.load(self.name, update.key, raw)
            try:
                raw = send(at)
            except VersionConflict as exc:
                if version is not None:
                    raise
                conflict = exc
                continue
            return self._model.load(self.name, update.key, raw)
        assert conflict is not None
        raise conflict

    def ttl(self, key: str) -> float | None:
        return self.untyped.ttl(key)

    def expire(self, key: str, ttl: float, *, idempotency_key: str | None = None) -> bool:
        return self.untyped.expire(key, ttl, idempotency_key=idempotency_key)

    def persist(self, key: str, *, idempotency_key: str | None = None) -> bool:
        return self.untyped.persist(key, idempotency_key=idempotency_key)

    def expire_group(self, ttl: float) -> bool:
        return self.untyped.expire_group(ttl)

    def group_ttl(self) -> float | None:
        return self.untyped.group_ttl()

    def persist_group(self) -> bool:
        return self.untyped.persist_group()

    def watch(self, **options: Any) -> TypedWatch[M]:
        """`GroupView.watch`, its changes' values validated into ``M`` (with
        ``with_values=True``; see `TypedWatch`)."""
        return TypedWatch(self.untyped.watch(**options), self._model)

    def on_change(self, handler: Callable[[TypedChange[M]], Any], **options: Any) -> Subscription:
        """`GroupView.on_change` with `TypedChange`s. A change whose value does not fit is
        a handler failure: logged, and left unacknowledged under ``consumer``."""
        model = self._model
        return self.untyped.on_change(lambda change: handler(model.change(change)), **options)


# -- async -----------------------------------------------------------------------------


class AsyncTypedWatch(Generic[M]):
    """`AsyncWatch` whose changes carry values of the model (see `TypedWatch`)."""

    def __init__(self, watch: AsyncWatch, model: Model[M]) -> None:
        self.untyped = watch
        self._model = model

    def __await__(self) -> Generator[Any, None, AsyncTypedWatch[M]]:
        return self._start().__await__()

    async def _start(self) -> AsyncTypedWatch[M]:
        await self.untyped
        return self

    def __aiter__(self) -> AsyncTypedWatch[M]:
        return self

    async def __anext__(self) -> TypedChange[M] | None:
        change = await self.untyped.__anext__()
        return None if change is None else self._model.change(change)

    async def aclose(self) -> None:
        await self.untyped.aclose()

    async def __aenter__(self) -> AsyncTypedWatch[M]:
        return await self._start()

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncTypedGroupView(Generic[M]):
    """`AsyncGroupView` whose values are ``M``: `TypedGroupView` with coroutines."""

    def __init__(self, view: AsyncGroupView, model: type[M]) -> None:
        self._model = model_of(model)
        self.untyped = view
        self.model = model
        self.name = view.name
        self.state = view.state

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.untyped!r}, {self._model.name})"

    async def get(self, key: str) -> M | None:
        raw = await self.untyped.get(key)
        return None if raw is None else self._model.load(self.name, key, raw)

    async def get_item(self, key: str) -> TypedItem[M] | None:
        return self._model.item(await self.untyped.get_item(key))

    async def get_many(self, keys: Iterable[str]) -> list[M | None]:
        ks = validate.keys(keys)
        return self._model.load_some(self.name, ks, await self.untyped.get_many(ks))

    async def get_group(self) -> list[M]:
        values = self._model.load_values(await self.untyped.get_group())
        if values is None:
            values = list(self._model.load_items(self.name, await self.untyped.items()).values())
        return values

    async def items(self) -> dict[str, M]:
        return self._model.load_items(self.name, await self.untyped.items())

    async def iter_items(self, batch: int = DEFAULT_SCAN_BATCH) -> AsyncIterator[tuple[str, M]]:
        async for key, raw in self.untyped.iter_items(batch):
            yield key, self._model.load(self.name, key, raw)

    async def query(
        self,
        where: object = None,
        *,
        order_by: str | Sequence[str] | None = None,
        descending: bool = False,
        limit: int = queries.DEFAULT_LIMIT,
        cursor: str | None = None,
    ) -> Page:
        """`State.query` of this group; each item's ``value`` is the model (one that does not
        fit raises `ModelDecodeError`, naming its key)."""
        page = await self.untyped.query(
            where, order_by=order_by, descending=descending, limit=limit, cursor=cursor
        )
        return Page([self._model.typed(item) for item in page.items], page.cursor)

    async def list_keys(self, *, cursor: str | None = None, count: int = 1000) -> KeyPage:
        return await self.untyped.list_keys(cursor=cursor, count=count)

    async def count(self, where: object = None) -> int:
        return await self.untyped.count(where)

    async def keys(self) -> list[str]:
        return await self.untyped.keys()

    async def barrier(
        self,
        key: str,
        *,
        parties: int,
        arrival: str,
        data: Any = None,
        ttl: float | None = None,
    ) -> BarrierState:
        """`TypedGroupView.barrier`."""
        return await self.untyped.barrier(key, parties=parties, arrival=arrival, data=data, ttl=ttl)

    async def barrier_state(self, key: str) -> BarrierState | None:
        return await self.untyped.barrier_state(key)

    async def history(
        self, key: str, *, limit: int = HISTORY_LIMIT, before: str | None = None
    ) -> History:
        """`TypedGroupView.history`."""
        return self._model.history(await self.untyped.history(key, limit=limit, before=before))

    async def reset_barrier(self, key: str) -> BarrierState | None:
        return await self.untyped.reset_barrier(key)

    async def set(
        self,
        key: str,
        value: M,
        *,
        version: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> int:
        data = self._model.dump(self.name, validate.key(key), value)
        return await self.untyped.set(
            key, data, version=version, ttl=ttl, idempotency_key=idempotency_key, emit=emit
        )

    async def set_many(
        self,
        mapping: Mapping[str, M],
        *,
        ttl: float | None = None,
        idempotency_key: str | None = None,
    ) -> int:
        return await self.untyped.set_many(
            self._model.dump_all(self.name, mapping), ttl=ttl, idempotency_key=idempotency_key
        )

    async def delete(
        self,
        key: str,
        *,
        version: int | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> M | Undecodable | None:
        removed = await self.untyped.delete(
            key, version=version, idempotency_key=idempotency_key, emit=emit
        )
        return self._model.removed(self.name, key, removed, self.state._core.codec)

    async def delete_many(self, keys: Iterable[str], *, idempotency_key: str | None = None) -> int:
        return await self.untyped.delete_many(keys, idempotency_key=idempotency_key)

    async def clear(self) -> int:
        return await self.untyped.clear()

    async def update(
        self,
        key: str,
        ops: Iterable[Mapping[str, Any]],
        *,
        version: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> M:
        update, sources = _update(self._model, self.name, key, ops)
        return await self._modify(
            update,
            version,
            lambda at: self.untyped.update(
                key, sources, version=at, ttl=ttl, idempotency_key=idempotency_key, emit=emit
            ),
            idempotency_key is not None,
        )

    async def increment(
        self,
        key: str,
        by: int | float = 1,
        *,
        version: int | None = None,
        ttl: float | None = None,
        idempotency_key: str | None = None,
        emit: tuple[str, Any] | None = None,
    ) -> M:
        update, amount = _increment(self._model, self.name, key, by)
        return await self._modify(
            update,
            version,
            lambda at: self.untyped.increment(
                key, amount, version=at, ttl=ttl, idempotency_key=idempotency_key, emit=emit
            ),
            idempotency_key is not None,
        )

    async def _modify(
        self,
        update: Update,
        version: int | None,
        send: Callable[[int], Awaitable[Any]],
        keyed: bool,
    ) -> M:
        version = validate.version(version)
        conflict: VersionConflict | None = None
        for _ in range(ATTEMPTS):
            try:
                at = update.check(await self.untyped.get_item(update.key), version)
            except REFUSED_BY_CHECK as refused:
                if not keyed:
                    raise
                try:  # a keyed retry whose first run applied: only its receipt can answer
                    raw = await send(NO_VERSION)
                except VersionConflict:
                    raise refused from None
                return self._model.load(self.name, update.key, raw)
            try:
                raw = await send(at)
            except VersionConflict as exc:
                if version is not None:
                    raise
                conflict = exc
                continue
            return self._model.load(self.name, update.key, raw)
        assert conflict is not None
        raise conflict

    async def ttl(self, key: str) -> float | None:
        return await self.untyped.ttl(key)

    async def expire(self, key: str, ttl: float, *, idempotency_key: str | None = None) -> bool:
        return await self.untyped.expire(key, ttl, idempotency_key=idempotency_key)

    async def persist(self, key: str, *, idempotency_key: str | None = None) -> bool:
        return await self.untyped.persist(key, idempotency_key=idempotency_key)

    async def expire_group(self, ttl: float) -> bool:
        return await self.untyped.expire_group(ttl)

    async def group_ttl(self) -> float | None:
        return await self.untyped.group_ttl()

    async def persist_group(self) -> bool:
        return await self.untyped.persist_group()

    def watch(self, **options: Any) -> AsyncTypedWatch[M]:
        return AsyncTypedWatch(self.untyped.watch(**options), self._model)

    async def on_change(
        self, handler: Callable[[TypedChange[M]], Awaitable[Any] | Any], **options: Any
    ) -> AsyncSubscription:
        model = self._model
        return await self.untyped.on_change(lambda change: handler(model.change(change)), **options)
