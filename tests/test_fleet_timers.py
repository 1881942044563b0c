"""The fleet's event loop rounds timers up to its grid: never early, at most one step late, short ones untouched."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.fleet.timers import GridEventLoop


@settings(max_examples=200, deadline=None)
@given(delay=st.floats(0.0, 3600.0), grid=st.sampled_from([0.05, 0.1, 0.25, 1.0]))
def test_a_timer_is_never_early_and_at_most_one_step_late(delay: float, grid: float) -> None:
    loop = GridEventLoop(grid)
    try:
        asked = loop.time() + delay
        handle = loop.call_at(asked, lambda: None)
        assert asked <= handle.when() <= asked + grid
        if delay >= grid * 1.001:  # on the grid: the sites' timers of one step share a pass of the loop
            assert handle.when() / grid == pytest.approx(round(handle.when() / grid), abs=1e-6)
        elif delay < grid * 0.999:
            assert handle.when() == asked
        handle.cancel()
    finally:
        loop.close()


def test_sleepers_of_one_grid_step_wake_together_and_not_before_their_time() -> None:
    loop = GridEventLoop(0.1)
    woke: list[tuple[float, float]] = []

    async def sleeper(delay: float) -> None:
        asked = loop.time() + delay
        await asyncio.sleep(delay)
        woke.append((asked, loop.time()))

    async def main() -> None:
        await asyncio.gather(*(sleeper(0.2 + i * 0.013) for i in range(6)))

    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert all(at >= asked for asked, at in woke)
    assert len({round(at, 1) for _, at in woke}) <= 2  # six phases in 0.07 s: one or two grid steps


def test_a_grid_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timer grid must be positive"):
        GridEventLoop(0.0)
