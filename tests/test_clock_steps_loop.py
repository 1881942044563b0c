"""NTP steps through the real control loop, sampler and relays on the emulated hardware: the compressor keeps the
minimum off-time counted from boot (finding 1), readings keep their freshness (finding 2), and a technician's
override keeps its length (finding 4), whichever way the wall clock steps."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.clock import ManualClock
from controller.control.inbox import AtnInbox
from controller.control.types import Mode
from controller.loop import ControlLoop
from controller.overrides import OverrideBook
from controller.readings import Quality
from tests.simhelpers import emulated_house, sample_all

HP = "heat-pump"


@pytest.mark.parametrize("step_s", [3 * 3600.0, 365 * 86400.0, -3600.0])
def test_a_wall_clock_step_after_boot_changes_nothing_the_equipment_sees(tmp_path: Path, step_s: float) -> None:
    clock = ManualClock(start=1_767_225_600.0 - 2 * 3600)  # booted two hours behind, as fake-hwclock may
    layout, world, hardware, sampler, store, bank = emulated_house(tmp_path, clock)
    book = OverrideBook(store, layout, clock)
    loop = ControlLoop(layout, sampler, bank, clock, AtnInbox(), store, overrides=book)
    hp = layout.actuators[HP]
    started_at: float | None = None

    async def scenario() -> None:
        nonlocal started_at
        await sample_all(sampler)
        await loop.tick()
        # A technician forces the heat pump on for 10 minutes, 5 s after boot; NTP steps the clock at 30 s.
        clock.advance(5)
        override = book.set(HP, True, 600, who="tech", origin="test", reason="commissioning")
        for second in range(6, 615):
            clock.advance(1)
            if second == 30:
                clock.step_wall(step_s)
            await sample_all(sampler)
            result = await loop.tick()
            assert result.state.authority.mode is not Mode.SAFE, result.state.authority.reason
            assert all(r.quality is not Quality.STALE for r in sampler.snapshot().readings.values())
            on = loop.state.actuators[HP].on
            if on and started_at is None:
                started_at = clock.monotonic()
            active = [o.id for o in book.active()]
            assert (override.id in active) == (second < 605), f"override at {second} s: {active}"

    try:
        asyncio.run(scenario())
    finally:
        store.close()
        hardware.close()
        world.close()
    assert started_at is not None and started_at >= hp.min_off_s  # the minimum off-time counts from boot
