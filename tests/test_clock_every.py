"""`controller.clock.every`: a period on a fixed grid, so a round's own work does not stretch the period (a
fleet's event loop rounds timers up to its grid: a relative `sleep(1)` after a few ms of work would become 1.25 s)."""

from __future__ import annotations

import asyncio

import pytest

from controller.clock import ManualClock, every

# the work each round takes (s) -> the monotonic times of the rounds
CASES = [
    ("no work", [0.0] * 4, [1.0, 2.0, 3.0, 4.0]),
    ("work does not shift the grid", [0.3, 0.01, 0.6, 0.0], [1.0, 2.0, 3.0, 4.0]),
    ("a round longer than the period: the next at once", [0.0, 1.5, 0.0, 0.0], [1.0, 2.0, 3.5, 4.0]),
    ("a long stall: one round at once, then a fresh grid", [0.0, 3.2, 0.0, 0.0], [1.0, 2.0, 5.2, 6.2]),
]


@pytest.mark.parametrize(("why", "work", "rounds"), CASES, ids=[c[0] for c in CASES])
def test_every_keeps_a_fixed_grid(why: str, work: list[float], rounds: list[float]) -> None:
    clock = ManualClock()
    seen: list[float] = []

    async def run() -> None:
        async for _ in every(clock, 1.0):
            seen.append(round(clock.monotonic(), 6))
            if len(seen) == len(work):
                return
            clock.advance(work[len(seen) - 1])

    asyncio.run(run())
    assert seen == rounds
