"""motia-state: Motia's state API (groups of keyed items) natively on Redis.

Every write is one atomic server-side Lua call that also bumps the item's
version and appends a change record. Start with `State.from_url` or
`AsyncState.from_url`.
"""

from .adapters import (
    AsyncStateAdapter,
    GroupMeta,
    Record,
    StateAdapter,
    register_adapter,
    unregister_adapter,
)
from .async_state import AsyncGroupView, AsyncState
from .barrier import BarrierState, completed_by
from .bridge import Bridge
from .cache import CacheStats, NearCache
from .changes import Change
from .codecs import JsonCodec, MsgpackCodec
from .errors import (
    BackendUnavailable,
    Contention,
    DecodeError,
    EncodeError,
    IdempotencyKeyReused,
    IntegerOverflow,
    InvalidInput,
    InvalidUpdate,
    ModelDecodeError,
    ModelValidationError,
    NotABarrier,
    NotANumber,
    NotReplicated,
    OutcomeUnknown,
    PartiesMismatch,
    PermissionDenied,
    ServerBusy,
    StateError,
    Unsupported,
    UpdateFailed,
    ValueTooLarge,
    VersionConflict,
)
from .facade import Transaction
from .history import History
from .layout import KeyLayout
from .ops import GroupStats, Item, Undecodable
from .query import F, Page
from .state import GroupView, State
from .typed import (
    AsyncTypedGroupView,
    AsyncTypedWatch,
    TypedChange,
    TypedGroupView,
    TypedItem,
    TypedWatch,
)
from .updates import Op

__all__ = [
    "AsyncGroupView",
    "AsyncState",
    "AsyncStateAdapter",
    "AsyncTypedGroupView",
    "AsyncTypedWatch",
    "BackendUnavailable",
    "BarrierState",
    "Bridge",
    "CacheStats",
    "Change",
    "Contention",
    "DecodeError",
    "EncodeError",
    "F",
    "GroupMeta",
    "GroupStats",
    "GroupView",
    "History",
    "IdempotencyKeyReused",
    "IntegerOverflow",
    "InvalidInput",
    "InvalidUpdate",
    "Item",
    "JsonCodec",
    "KeyLayout",
    "ModelDecodeError",
    "ModelValidationError",
    "MsgpackCodec",
    "NearCache",
    "NotABarrier",
    "NotANumber",
    "NotReplicated",
    "Op",
    "OutcomeUnknown",
    "Page",
    "PartiesMismatch",
    "PermissionDenied",
    "Record",
    "ServerBusy",
    "State",
    "StateAdapter",
    "StateError",
    "Transaction",
    "TypedChange",
    "TypedGroupView",
    "TypedItem",
    "TypedWatch",
    "Undecodable",
    "Unsupported",
    "UpdateFailed",
    "ValueTooLarge",
    "VersionConflict",
    "completed_by",
    "register_adapter",
    "unregister_adapter",
]
