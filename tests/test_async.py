"""AsyncState under real concurrency: many tasks on one client, nothing lost."""

from __future__ import annotations

import asyncio

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
