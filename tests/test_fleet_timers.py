"""The fleet's event loop rounds timers up to its grid: never early, at most one step late, short ones untouched."""

from __future__ import annotations

import asyncio
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.fleet.timers import ORDER_SCALE, GridEventLoop


@settings(max_examples=200, deadline=None)
@given(delay=st.floats(0.0, 3600.0), grid=st.sampled_from([0.05, 0.1, 0.25, 1.0]))
def test_a_timer_is_never_early_and_at_most_one_step_late(delay: float, grid: float) -> None:
    loop = GridEventLoop(grid)
    try:
        asked = loop.time() + delay
        handle = loop.call_at(asked, lambda: None)
        assert asked <= handle.when() <= asked + grid * (1 + ORDER_SCALE)
        if delay >= grid * 1.001:  # on the grid: the sites' timers of one step share a pass of the loop
            assert handle.when() / grid == pytest.approx(round(handle.when() / grid), abs=2 * ORDER_SCALE)
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


def test_timers_of_one_grid_point_run_in_the_order_they_asked_for() -> None:
    """A sampler and a store writer due in the same pass: the one that asked for the earlier time runs first,
    every time (the heap alone would order them arbitrarily)."""
    loop = GridEventLoop(0.25)
    ran: list[int] = []
    try:
        base = math.ceil(loop.time() / 0.25) * 0.25 + 1.0  # a grid point a second ahead
        asked = [base + 0.01 + i * 0.02 for i in (3, 0, 7, 1, 5, 2, 6, 4)]  # all within one step
        for i, when in zip((3, 0, 7, 1, 5, 2, 6, 4), asked, strict=True):
            loop.call_at(when, ran.append, i)
        loop.call_at(base + 0.5, loop.stop)
        loop.run_forever()
    finally:
        loop.close()
    assert ran == list(range(8))


def test_a_grid_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timer grid must be positive"):
        GridEventLoop(0.0)
