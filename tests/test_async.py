"""AsyncState under real concurrency: many tasks on one client, nothing lost."""

from __future__ import annotations

import asyncio

import pytest

from motia_state import AsyncState, VersionConflict

from .conftest import Target


def test_concurrent_tasks_lose_no_update(target: Target) -> None:
    async def main() -> None:
        async with AsyncState.from_url(target.url, **target.options) as state:

            async def bump(worker: int) -> int:
                conflicts = 0
                await state.set("workers", f"w{worker}", worker)
                for _ in range(3):
                    while True:
                        item = await state.get_item("totals", "count")
                        try:
                            if item is None:
                                await state.set("totals", "count", 1, version=0)
                            else:
                                await state.set(
                                    "totals", "count", item.value + 1, version=item.version
                                )
                            break
                        except VersionConflict:
                            conflicts += 1
                return conflicts

            await asyncio.gather(*(bump(w) for w in range(64)))
            assert await state.get("totals", "count") == 64 * 3
            assert (await state.get_item("totals", "count")).version == 64 * 3
            assert len(await state.keys("workers")) == 64
            seen = [key async for key, _ in state.group("workers").iter_items(batch=10)]
            assert sorted(seen) == sorted(f"w{w}" for w in range(64))

    asyncio.run(main())


@pytest.mark.redis_only
def test_concurrent_commands_share_round_trips_safely(target: Target) -> None:
    """Auto-pipelined commands: errors stay per task, NOSCRIPT recovers, cancelling is safe."""

    async def main() -> None:
        async with AsyncState.from_url(target.url, **target.options) as state:
            await state.set("g", "taken", 1)
            with target.raw() as r:
                r.script_flush()  # every script call of the next batch answers NOSCRIPT
            results = await asyncio.gather(
                *(state.set("g", f"k{i}", i) for i in range(50)),
                state.set("g", "taken", 2, version=0),  # fails alone
                return_exceptions=True,
            )
            assert results[:50] == [1] * 50
            assert isinstance(results[50], VersionConflict)
            got = await asyncio.gather(*(state.get("g", f"k{i}") for i in range(50)))
            assert got == [*range(50)]

            slow = [asyncio.ensure_future(state.set("g", f"c{i}", i)) for i in range(20)]
            slow[5].cancel()
            done = await asyncio.gather(*slow, return_exceptions=True)
            assert isinstance(done[5], asyncio.CancelledError)
            assert await state.get("g", "c19") == 19

    asyncio.run(main())
