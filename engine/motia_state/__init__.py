"""motia-state: Motia's state API (groups of keyed items) natively on Redis.

Every write is one atomic server-side Lua call that also bumps the item's
version and appends a change record. Start with `State.from_url` or
`AsyncState.from_url`.
"""

from .async_state import AsyncGroupView, AsyncState
from .codecs import JsonCodec, MsgpackCodec
from .errors import (
    BackendUnavailable,
    DecodeError,
    EncodeError,
    InvalidInput,
    StateError,
    Unsupported,
    ValueTooLarge,
    VersionConflict,
)
from .layout import KeyLayout
from .ops import Item
from .state import GroupView, State

__all__ = [
    "AsyncGroupView",
    "AsyncState",
    "BackendUnavailable",
    "DecodeError",
    "EncodeError",
    "GroupView",
    "InvalidInput",
    "Item",
    "JsonCodec",
    "KeyLayout",
    "MsgpackCodec",
    "State",
    "StateError",
    "Unsupported",
    "ValueTooLarge",
    "VersionConflict",
]
