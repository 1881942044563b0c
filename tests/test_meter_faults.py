"""Meter faults through the whole chain on the demo house: emulator -> pty -> pymodbus / dsmr-parser -> sampler.
Each fault shows in the channel's quality within two sample rounds, is logged once, and clears by itself."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from structlog.testing import capture_logs

from controller.hardware import Hardware
from controller.readings import Quality
from controller.sampler import Sampler
from controller.sim.world import SimBuses
from tests.simhelpers import demo_layout, sampled_world

P1_INTERVAL_S = 1.0


@pytest.fixture
def world() -> Iterator[tuple[SimBuses, Sampler, Hardware]]:
    with sampled_world(demo_layout()) as world:
        yield world


async def bus_round(sampler: Sampler, bus: str, pause_s: float) -> None:
    """Wait one sample period (`pause_s`), then sample every channel of `bus` once, as the sampler does."""
    await asyncio.sleep(pause_s)
    await sampler.sample_round(bus, [c for c in sampler.channels if c.bus == bus])


async def wait_ok(sampler: Sampler, bus: str, channel: str, pause_s: float, rounds: int = 8) -> None:
    for _ in range(rounds):
        await bus_round(sampler, bus, pause_s)
        if sampler.snapshot().quality(channel) is Quality.OK:
            return
    raise AssertionError(f"{channel} never became ok: {sampler.snapshot().readings.get(channel)}")


# (device or channel, fault, its bus, channel to watch, words of the detail, seconds between rounds)
FAULTS = [
    ("hp-meter", "timeout", "rs485", "hp-power", "no answer from meter id 1", 0.0),
    ("hp-meter", "crc", "rs485", "hp-power", "failed its CRC check", 0.0),
    ("hp-meter", "wrong-id", "rs485", "hp-energy", "came from device id 2", 0.0),
    ("hp-meter", "exception", "rs485", "hp-power", "exception 4 (server device failure)", 0.0),
    ("hp-meter", "unplugged", "rs485", "hp-power", "is gone (USB adapter unplugged?)", 0.2),
    ("smart-meter", "crc", "p1", "grid-power", "fail their CRC check", P1_INTERVAL_S),
    ("smart-meter", "cable", "p1", "grid-import-t1", "no valid P1 telegram", P1_INTERVAL_S),
    ("smart-meter", "unplugged", "p1", "grid-power", "is gone (USB adapter unplugged?)", P1_INTERVAL_S),
    ("hp-flow", "open", "i2c-1", "hp-flow", "no signal: below the sensor's live zero", 0.0),
    ("hp-flow", "short", "i2c-1", "hp-flow", "above the sensor's 3.5 V full scale", 0.0),
]


@pytest.mark.parametrize(
    ("target", "fault", "bus", "channel", "words", "pause_s"), FAULTS, ids=[f"{f[0]}-{f[1]}" for f in FAULTS]
)
def test_meter_fault_shows_within_two_rounds_logs_once_and_recovers(
    world: tuple[SimBuses, Sampler, Hardware],
    target: str,
    fault: str,
    bus: str,
    channel: str,
    words: str,
    pause_s: float,
) -> None:
    buses, sampler, _ = world

    async def scenario() -> None:
        await wait_ok(sampler, bus, channel, max(pause_s, 0.2))
        buses.inject(target, fault)
        with capture_logs() as logs:
            for _ in range(2):
                await bus_round(sampler, bus, pause_s)
            reading = sampler.snapshot().readings[channel]
            assert reading.quality is Quality.FAULT, reading
            assert words in reading.detail
            for _ in range(3):  # the fault lasts: still logged only once
                await bus_round(sampler, bus, pause_s)
            buses.inject(target, None)
            await wait_ok(sampler, bus, channel, max(pause_s, 0.2))
        bad = [e for e in logs if e["event"] == "channel bad" and e["channel"] == channel]
        still = [e for e in logs if e["event"] == "channel still bad" and e["channel"] == channel]
        recovered = [e for e in logs if e["event"] == "channel recovered" and e["channel"] == channel]
        assert len(bad) == 1 and not still, logs
        assert len(recovered) == 1

    asyncio.run(scenario())


def test_meters_read_the_plant(world: tuple[SimBuses, Sampler, Hardware]) -> None:
    """With the compressor running, the heat pump's meter and the flow sensor see it; the smart meter too."""
    buses, sampler, _ = world
    plant = buses.plant

    async def scenario() -> None:
        await wait_ok(sampler, "p1", "grid-power", P1_INTERVAL_S)
        idle_grid = sampler.snapshot().value("grid-power")
        assert idle_grid is not None
        for name in ("heat-pump", "store-pump"):
            buses.gpio.line(buses.layout.actuators[name].pin).switch_to_output(value=True)
        for _ in range(90):
            buses.plant.step(1.0, buses.plant_inputs())
        buses._publish_probes(1.0)
        assert plant.heat_pump_electric_w > 500
        await asyncio.sleep(2 * P1_INTERVAL_S)  # a telegram with the compressor's power in it
        for bus in ("p1", "rs485", "i2c-1"):
            await bus_round(sampler, bus, 0.0)
        snapshot = sampler.snapshot()
        assert snapshot.value("hp-power") == pytest.approx(plant.heat_pump_electric_w, rel=1e-6)
        assert snapshot.value("hp-flow") == pytest.approx(plant.flows()["hp-flow"], abs=0.05)
        grid = snapshot.value("grid-power")
        assert grid is not None and grid - idle_grid == pytest.approx(plant.heat_pump_electric_w, abs=60)

    asyncio.run(scenario())
