"""motia-state: Motia's state API (groups of keyed items) natively on Redis.

Every write is one atomic server-side Lua call that also bumps the item's
version and appends a change record. Start with `State.from_url` or
`AsyncState.from_url`.
"""

from .async_state import AsyncGroupView, AsyncState
from .bridge import Bridge
from .cache import CacheStats, NearCache
from .changes import Change
from .codecs import JsonCodec, MsgpackCodec
from .errors import (
    BackendUnavailable,
    DecodeError,
    EncodeError,
    IntegerOverflow,
    InvalidInput,
    InvalidUpdate,
    NotANumber,
    NotReplicated,
    OutcomeUnknown,
    PermissionDenied,
    ServerBusy,
    StateError,
    Unsupported,
    UpdateFailed,
    ValueTooLarge,
    VersionConflict,
)
from .facade import Transaction
from .layout import KeyLayout
from .ops import GroupStats, Item, Undecodable
from .state import GroupView, State
from .updates import Op

__all__ = [
    "AsyncGroupView",
    "AsyncState",
    "BackendUnavailable",
    "Bridge",
    "CacheStats",
    "Change",
    "DecodeError",
    "EncodeError",
    "GroupStats",
    "GroupView",
    "IntegerOverflow",
    "InvalidInput",
    "InvalidUpdate",
    "Item",
    "JsonCodec",
    "KeyLayout",
    "MsgpackCodec",
    "NearCache",
    "NotANumber",
    "NotReplicated",
    "Op",
    "OutcomeUnknown",
    "PermissionDenied",
    "ServerBusy",
    "State",
    "StateError",
    "Transaction",
    "Undecodable",
    "Unsupported",
    "UpdateFailed",
    "ValueTooLarge",
    "VersionConflict",
]
