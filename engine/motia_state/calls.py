"""`Call`: how one operation is declared for the facades (see `facade`).

Kept apart from `facade` so that `core` can list its operations (`core.GroupOperations`)
right beside the methods that plan them: adding an operation touches `core` once.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, Self, TypeVar, overload

if TYPE_CHECKING:
    from .core import Core, Plan
    from .facade import Async, AsyncView, Collects, Sync, SyncView

P = ParamSpec("P")
Q = ParamSpec("Q")
R = TypeVar("R")


class Call(Generic[P, R]):
    """One operation of the facades, declared by the `Core` method that plans it."""

    def __init__(self, plan: Callable[Concatenate[Core, P], Plan[R]]) -> None:
        self.plan = plan

    @overload
    def __get__(self, obj: None, owner: type[Any]) -> Self: ...
    @overload
    def __get__(self, obj: Sync, owner: type[Any]) -> Callable[P, R]: ...
    @overload
    def __get__(self, obj: Async, owner: type[Any]) -> Callable[P, Coroutine[Any, Any, R]]: ...
    @overload
    def __get__(self, obj: Collects, owner: type[Any]) -> Callable[P, None]: ...
    @overload
    def __get__(
        self: Call[Concatenate[str, Q], R], obj: SyncView[Any], owner: type[Any]
    ) -> Callable[Q, R]: ...
    @overload
    def __get__(
        self: Call[Concatenate[str, Q], R], obj: AsyncView[Any], owner: type[Any]
    ) -> Callable[Q, Coroutine[Any, Any, R]]: ...
    def __get__(self, obj: object, owner: type[Any]) -> Any:
        # Only a class that declares operations without running them gets here.
        if obj is None:
            return self
        raise TypeError(f"{type(obj).__name__} does not run operations")
