"""The step watch: a wall clock moving against the monotonic one by more than a second is a step, with its size;
NTP's slewing (at most 0.5 ms a second) and the simulated clocks never are."""

from __future__ import annotations

import pytest

from controller.clock import CLOCK_SET_AFTER, ManualClock, SimClock, StepWatch, clock_is_set


@pytest.mark.parametrize("step_s", [3.0, 3 * 3600.0, 365 * 86400.0, -3600.0, -1.5])
def test_a_step_is_seen_once_with_its_size(step_s: float) -> None:
    clock, watch = ManualClock(), StepWatch()
    assert watch.look(clock.now(), clock.monotonic()) is None
    clock.advance(1)
    assert watch.look(clock.now(), clock.monotonic()) is None
    clock.step_wall(step_s)
    clock.advance(1)
    assert watch.look(clock.now(), clock.monotonic()) == pytest.approx(step_s)
    clock.advance(1)
    assert watch.look(clock.now(), clock.monotonic()) is None


def test_slewing_and_simulated_time_are_not_steps() -> None:
    watch = StepWatch()
    wall, mono = 1_767_225_600.0, 0.0
    for _ in range(3600):  # an hour of NTP slewing at its fastest, looked at every second
        wall, mono = wall + 1.0005, mono + 1.0
        assert watch.look(wall, mono) is None
    sim, fast = SimClock(speed=60), StepWatch()
    assert fast.look(sim.now(), sim.monotonic()) is None
    assert fast.look(sim.now(), sim.monotonic()) is None


def test_a_clock_before_2026_was_never_set() -> None:
    assert not clock_is_set(86_400.0) and not clock_is_set(CLOCK_SET_AFTER - 1) and clock_is_set(CLOCK_SET_AFTER)
