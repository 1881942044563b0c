"""A relay that does not follow its command raises an alarm and forces SAFE; it is never assumed to have switched.
Real pieces throughout: emulated GPIO line, relay driver, store on disk, control loop."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from controller.clock import ManualClock
from controller.control.inbox import AtnInbox
from controller.control.types import Mode, Source
from controller.loop import ControlLoop
from controller.overrides import OverrideBook
from controller.store import Store
from tests.simhelpers import emulated_house, sample_all


def test_stuck_relay_raises_an_alarm_and_forces_safe(tmp_path: Path) -> None:
    clock = ManualClock(start=time.time())
    layout, world, hardware, sampler, store, bank = emulated_house(tmp_path, clock)
    book = OverrideBook(store, layout, clock)
    book.set("aux-element", True, 3600, who="bob", origin="test")
    loop = ControlLoop(layout, sampler, bank, clock, AtnInbox(), store, overrides=book)

    async def scenario() -> None:
        await sample_all(sampler)
        clock.advance(61)  # past the element's minimum off-time, counted from boot
        await sample_all(sampler)
        world.gpio.line(23).stuck_at = False  # the relay driver's output is stuck low
        result = await loop.tick()
        assert result.commands["aux-element"].on is True
        assert result.commands["aux-element"].source is Source.OVERRIDE
        assert loop.alarm is not None and "relay aux-element on GPIO23 did not switch on" in loop.alarm
        assert loop.state.actuators["aux-element"].on is False  # read back, not assumed
        clock.advance(1)
        await sample_all(sampler)
        result = await loop.tick()
        assert result.state.authority.mode is Mode.SAFE
        assert "did not switch on" in result.state.authority.reason
        # SAFE asks every actuator for its safe state; the interlocks may still hold one (a pump that stopped a
        # second ago keeps its minimum off-time, the store pump post-runs in case the heat pump ran before boot).
        assert {name: c.source for name, c in result.requests.items()} == dict.fromkeys(layout.actuators, Source.SAFE)
        assert result.commands["heat-pump"].on is False and result.commands["aux-element"].on is False
        world.gpio.line(23).stuck_at = None  # repaired
        clock.advance(1)
        await sample_all(sampler)
        await loop.tick()  # SAFE asks the element off, which the repaired relay does: the alarm clears
        clock.advance(1)
        await sample_all(sampler)
        result = await loop.tick()
        assert loop.alarm is None and result.state.authority.mode is Mode.OVERRIDE

    try:
        asyncio.run(scenario())
    finally:
        store.close()
        hardware.close()
    kinds = [event.kind for _, event in Store.open(tmp_path / "s.sqlite").events_after(0)]
    assert kinds.count("mode") >= 3  # boot, -> SAFE, -> OVERRIDE
