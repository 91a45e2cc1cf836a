"""The vocabulary of the sans-I/O plans (`RedisPlan`, the change-feed `Reader`).

A plan is a generator that yields what it wants sent and receives the reply; the
I/O seams (standalone sync and async, Cluster) decide how. Kept apart so plans and
seams import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")

Call = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Batch:
    """Commands sent in one pipeline (not MULTI); the reply holds errors in place of results."""

    calls: tuple[Call, ...]


@dataclass(frozen=True, slots=True)
class Masters:
    """Asks the seam for its master servers (opaque handles; one None on a standalone server)."""


@dataclass(frozen=True, slots=True)
class At:
    """A keyless command (SCAN) for one master named by a `Masters` handle."""

    node: Any
    call: Call


Steps = Generator[Call | Batch | Masters | At, Any, T]
