"""Building blocks for tests that run the real drivers on the emulated hardware of a layout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

from controller.actuators import ActuatorBank
from controller.clock import ManualClock, SystemClock
from controller.hardware import GPIO_WORKER, Hardware, build_hardware
from controller.layout.load import load_layout, parse_text
from controller.layout.model import Layout
from controller.sampler import SampledChannel, Sampler, read_once
from controller.sim.world import SimBuses
from controller.store import Store

ROOT = Path(__file__).resolve().parent.parent


def demo_layout(**sim_overrides: object) -> Layout:
    """layouts/demo.toml with bus timing off (tests need no wire time) and any other [sim] changes."""
    layout = load_layout(ROOT / "layouts/demo.toml")
    assert layout.sim is not None
    sim = layout.sim.model_copy(update={"bus_timing": False, **sim_overrides})
    return layout.model_copy(update={"sim": sim})


class EmulatedHouse(NamedTuple):
    """The demo layout on emulated hardware, its relays open, a sampler and a store on disk: what a test of a
    real `ControlLoop` builds on."""

    layout: Layout
    world: SimBuses
    hardware: Hardware
    sampler: Sampler
    store: Store
    bank: ActuatorBank


def emulated_house(tmp_path: Path, clock: ManualClock) -> EmulatedHouse:
    layout = demo_layout()
    world = SimBuses(layout, clock)
    hardware = build_hardware(layout, world, clock)
    hardware.open_relays(layout, world)
    sampler = Sampler(hardware.channels, hardware.workers, clock)
    store = Store.open(tmp_path / "s.sqlite")
    return EmulatedHouse(
        layout, world, hardware, sampler, store, ActuatorBank(hardware.relays, hardware.workers[GPIO_WORKER])
    )


def layout_from(text: str) -> Layout:
    return parse_text(text, "test.toml")


class Rig:
    """A layout on emulated hardware, with the channels bound and readable from the test's own thread."""

    def __init__(self, layout: Layout, clock: ManualClock | None = None) -> None:
        self.clock = clock or ManualClock()
        self.layout = layout
        self.world = SimBuses(layout, self.clock)
        self.hardware: Hardware = build_hardware(layout, self.world, self.clock)
        self.channels = {c.name: c for c in self.hardware.channels}

    def read(self, channel: str) -> tuple[float | None, str]:
        return read_once(self.channels[channel])

    def channel(self, name: str) -> SampledChannel:
        return self.channels[name]

    def close(self) -> None:
        self.hardware.close()


@contextmanager
def sampled_world(layout: Layout) -> Iterator[tuple[SimBuses, Sampler, Hardware]]:
    """`layout` on emulated hardware in real time, with a sampler over it; everything closed afterwards (the
    meters' emulators hold ptys and threads)."""
    clock = SystemClock()
    buses = SimBuses(layout, clock)
    hardware = build_hardware(layout, buses, clock)
    try:
        yield buses, Sampler(hardware.channels, hardware.workers, clock), hardware
    finally:
        hardware.close()
        buses.close()


async def sample_all(sampler: Sampler) -> None:
    """One round of every channel, bus by bus, as the sampler's loops would do it."""
    by_bus: dict[str, list[SampledChannel]] = {}
    for channel in sampler.channels:
        by_bus.setdefault(channel.bus, []).append(channel)
    for bus, channels in by_bus.items():
        await sampler.sample_round(bus, channels)
