"""The compressor's starts per hour survive a restart (docs/control.md, "After a restart"): a controller that
crashes in a loop cannot start it more often than `max_starts_per_hour`; after a reboot the starts of the last
hour count as having happened at boot (the worst case)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.clock import ManualClock
from controller.control.inbox import AtnInbox
from controller.control.restart import STORE_KEY, SavedStarts, restored_starts
from controller.loop import ControlLoop
from controller.overrides import OverrideBook
from controller.store import Store
from tests.simhelpers import emulated_house, sample_all

HP = "heat-pump"
SAVED = SavedStarts("boot-1", 1000.0, {HP: (-2700.0, 400.0, 600.0, 900.0), "aux-element": ()})


@pytest.mark.parametrize(
    ("boot_id", "now", "expected"),
    [
        ("boot-1", 1200.0, (400.0, 600.0, 900.0)),  # the same boot: as they were, the last hour's
        ("boot-1", 4100.0, (600.0, 900.0)),  # an hour on, the oldest no longer counts
        ("boot-2", 5.0, (5.0, 5.0, 5.0)),  # after a reboot: the last hour's before the save, counted at boot
    ],
)
def test_restored_starts(boot_id: str, now: float, expected: tuple[float, ...]) -> None:
    assert restored_starts(SAVED, boot_id, now)[HP] == expected


def test_nothing_saved_or_unreadable_restores_nothing() -> None:
    assert restored_starts(None, "b", 0.0) == {}
    assert SavedStarts.from_json({"boot_id": "b"}) is None and SavedStarts.from_json("junk") is None
    assert SavedStarts.from_json(SAVED.to_json()) == SAVED


def run_loop(tmp_path: Path, clock: ManualClock, seconds: int) -> tuple[ControlLoop, Store]:
    """A controller on the emulated demo house with a technician forcing the heat pump on, for `seconds`."""
    layout, world, hardware, sampler, store, bank = emulated_house(tmp_path, clock)
    book = OverrideBook(store, layout, clock)
    loop = ControlLoop(layout, sampler, bank, clock, AtnInbox(), store, overrides=book)
    book.set(HP, True, 3600, who="tech", origin="test")

    async def scenario() -> None:
        for _ in range(seconds):
            await sample_all(sampler)
            await loop.tick()
            clock.advance(1)

    try:
        asyncio.run(scenario())
    finally:
        hardware.close()
        world.close()
    return loop, store


def test_a_start_is_kept_and_a_restart_on_the_same_boot_counts_it(tmp_path: Path) -> None:
    clock = ManualClock(boot_id="boot-1")
    loop, store = run_loop(tmp_path, clock, 240)  # past the boot minimum off-time and the pre-run: it starts
    assert loop.state.actuators[HP].on
    saved = SavedStarts.from_json(store.recall(STORE_KEY))
    store.close()
    assert saved is not None and saved.boot_id == "boot-1" and len(saved.starts[HP]) == 1
    with Store.open(tmp_path / "s.sqlite") as store:  # three starts in the last hour already
        store.remember(STORE_KEY, SavedStarts("boot-1", clock.monotonic(), {HP: (10.0, 20.0, 30.0)}).to_json())
    loop, store = run_loop(tmp_path, clock, 300)  # the process restarted; same boot
    store.close()
    assert not loop.state.actuators[HP].on
    hold = loop.last.holds[HP] if loop.last else None
    assert hold is not None and hold.interlock == "max-starts" and hold.until == pytest.approx(10.0 + 3600)


def test_after_a_reboot_the_last_hours_starts_count_from_boot(tmp_path: Path) -> None:
    with Store.open(tmp_path / "s.sqlite") as store:
        store.remember(STORE_KEY, SavedStarts("boot-1", 5000.0, {HP: (4000.0, 4500.0, 4900.0)}).to_json())
    loop, store = run_loop(tmp_path, ManualClock(boot_id="boot-2"), 300)
    store.close()
    assert not loop.state.actuators[HP].on  # held for an hour from boot
    hold = loop.last.holds[HP] if loop.last else None
    assert hold is not None and hold.interlock == "max-starts" and hold.until == pytest.approx(3600.0)
