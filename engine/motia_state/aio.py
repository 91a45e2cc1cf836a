"""What the engine's background tasks share about asyncio itself."""

from __future__ import annotations

import asyncio


def raise_if_cancelled() -> None:
    """Raise `CancelledError` in a task that was asked to stop, even if the request was lost.

    On Python 3.11 an await inside redis-py (its read timeout, ``wait_for``) can swallow
    the `CancelledError` meant for the task when it lands as a timeout fires. A background
    loop that carried on regardless would keep ``asyncio.run`` from ever returning: it
    waits for every task it cancels. ``Task.cancelling()`` (3.11+) still counts the request.
    """
    task = asyncio.current_task()
    cancelling = getattr(task, "cancelling", None)
    if cancelling is not None and cancelling():
        raise asyncio.CancelledError
