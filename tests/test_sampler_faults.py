"""Fault injection through the emulators: every fault gives the right quality, a log line, and recovery; the
sampler keeps going. The real drivers read the emulated chips throughout."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from structlog.testing import capture_logs

from controller.buses.worker import BusWorker
from controller.clock import ManualClock, SystemClock
from controller.drivers.base import ChannelReader
from controller.hardware import Hardware, build_hardware
from controller.readings import Quality
from controller.sampler import SampledChannel, Sampler
from controller.sim.world import SimBuses
from tests.simhelpers import demo_layout, sampled_world


@pytest.fixture
def world() -> Iterator[tuple[SimBuses, Sampler, Hardware]]:
    with sampled_world(demo_layout()) as world:
        yield world


async def rounds(sampler: Sampler, count: int = 1) -> None:
    """Sample every channel `count` times, bus by bus, as the sampler's loops do."""
    by_bus: dict[str, list] = {}
    for channel in sampler.channels:
        by_bus.setdefault(channel.bus, []).append(channel)
    for _ in range(count):
        for bus, channels in by_bus.items():
            await sampler.sample_round(bus, channels)


# (target, injected fault, channel to watch, expected quality, words the reading's detail must contain)
FAULTS = [
    ("tank-top", "open", "tank-top", Quality.FAULT, "thermistor open"),
    ("tank-top", "short", "tank-top", Quality.FAULT, "thermistor shorted"),
    ("outdoor", "open", "outdoor", Quality.FAULT, "thermistor open"),  # wired to the supply side: reads 0 V
    ("outdoor", "short", "outdoor", Quality.FAULT, "thermistor shorted"),
    ("dist-supply", "open", "dist-supply", Quality.FAULT, "RTD open"),
    ("dist-supply", "short", "dist-supply", Quality.FAULT, "RTD shorted"),
    ("house-air", "noise", "house-air", Quality.FAULT, "erratic"),
    ("dist-return", "noise", "dist-return", Quality.FAULT, "erratic"),
    ("ads-house", "bus-error", "house-air", Quality.FAULT, "I2C error"),
    ("ads-house", "absent", "house-air", Quality.FAULT, "errno 121"),  # unplugged after it was opened
    ("ads-tank", "stuck", "tank-top", Quality.FAULT, "did not finish in time"),
    ("rtd-return", "bus-error", "dist-return", Quality.FAULT, "reads 0xFF"),
    ("rtd-return", "stuck", "dist-return", Quality.FAULT, "stopped converting"),
]


@pytest.mark.parametrize(("target", "fault", "channel", "quality", "detail"), FAULTS, ids=lambda v: str(v))
def test_fault_gives_quality_log_and_recovery(
    world: tuple[SimBuses, Sampler, Hardware], target: str, fault: str, channel: str, quality: Quality, detail: str
) -> None:
    buses, sampler, hardware = world

    async def scenario() -> None:
        await rounds(sampler, 2)
        assert sampler.snapshot().quality(channel) is Quality.OK
        buses.inject(target, fault)
        with capture_logs() as logs:
            await rounds(sampler, 10)  # the erratic check needs a window of samples
        reading = sampler.snapshot().readings[channel]
        assert reading.quality is quality
        assert detail in reading.detail
        assert sampler.snapshot().value(channel) is None  # a bad value is never handed out as usable
        bad = [e for e in logs if e["event"] == "channel bad" and e["channel"] == channel]
        assert len(bad) == 1, logs  # logged once, not once per sample
        # Every other channel is unaffected unless it shares the failed device. (The meters on serial ports run
        # on real time and have their own fault tests: tests/test_meter_faults.py.)
        device = buses.layout.channels[channel].device
        for name, other in sampler.snapshot().readings.items():
            if buses.layout.channels[name].device not in (device, target, *buses.meters, *buses.p1_emitters):
                assert other.quality is Quality.OK, (name, other)
        buses.inject(target, None)
        for slot in hardware.slots.values():
            slot.retry_now()
        with capture_logs() as logs:
            await rounds(sampler, 10)
        assert sampler.snapshot().quality(channel) is Quality.OK
        assert any(e["event"] == "channel recovered" and e["channel"] == channel for e in logs)

    asyncio.run(scenario())


def test_a_probe_stuck_off_its_pipe_is_not_detectable_alone(world: tuple[SimBuses, Sampler, Hardware]) -> None:
    """Documented limit (docs/layout.md): a probe whose temperature freezes keeps reading `ok`, at the frozen
    temperature, while the water it should measure moves on."""
    buses, sampler, _ = world
    probe = buses.thermistors["tank-top"]
    probe.temperature_c = 45.0
    buses.inject("tank-top", "stuck")
    probe.temperature_c = 60.0  # the water warms; the probe no longer follows it
    asyncio.run(rounds(sampler, 3))
    reading = sampler.snapshot().readings["tank-top"]
    assert reading.quality is Quality.OK
    assert reading.value == pytest.approx(45.0, abs=0.1)


def test_out_of_range_value_is_flagged(world: tuple[SimBuses, Sampler, Hardware]) -> None:
    buses, sampler, _ = world
    buses.thermistors["house-air"].temperature_c = 45.0  # plausible range is 0..40 °C
    asyncio.run(rounds(sampler))
    reading = sampler.snapshot().readings["house-air"]
    assert reading.quality is Quality.OUT_OF_RANGE
    assert reading.value == pytest.approx(45.0, abs=0.1)
    assert "outside the plausible range" in reading.detail


def test_a_hung_bus_goes_stale_and_delays_only_its_own_bus() -> None:
    """A device that never answers holds its bus thread; its channels turn stale within two periods while the
    other bus keeps sampling on time."""
    layout = demo_layout()
    channels = {name: channel.model_copy(update={"sample_period_s": 0.1}) for name, channel in layout.channels.items()}
    layout = layout.model_copy(update={"channels": channels})
    clock = SystemClock()
    buses = SimBuses(layout, clock)
    hardware = build_hardware(layout, buses, clock)
    sampler = Sampler(hardware.channels, hardware.workers, clock)
    release = threading.Event()
    probe = buses.thermistors["tank-top"]
    healthy = probe.volts

    def hang() -> float:
        release.wait(5.0)
        return healthy()

    async def scenario() -> None:
        task = asyncio.create_task(sampler.run())
        await asyncio.sleep(0.5)
        assert sampler.snapshot().quality("tank-top") is Quality.OK
        buses.chips["ads-tank"].set_input(0, hang)  # type: ignore[union-attr]
        hung_at = time.monotonic()
        while sampler.snapshot().quality("tank-top") is not Quality.STALE and time.monotonic() - hung_at < 4.0:
            await asyncio.sleep(0.01)
        snapshot = sampler.snapshot()
        assert snapshot.quality("tank-top") is Quality.STALE  # within two periods, or two of the bus's rounds
        assert snapshot.quality("house-air") is Quality.STALE  # same bus, behind the hung read
        assert snapshot.quality("dist-supply") is Quality.OK  # the SPI bus is not held up
        assert time.time() - snapshot.readings["dist-supply"].timestamp < 0.25
        release.set()
        buses.chips["ads-tank"].set_input(0, healthy)  # type: ignore[union-attr]
        await asyncio.sleep(0.5)
        assert sampler.snapshot().quality("tank-top") is Quality.OK
        task.cancel()

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        hardware.close()


def test_bus_worker_runs_calls_on_its_own_thread() -> None:
    worker = BusWorker("i2c-9")

    async def scenario() -> tuple[str, str]:
        return threading.current_thread().name, await worker.run(lambda: threading.current_thread().name)

    try:
        loop_thread, bus_thread = asyncio.run(scenario())
    finally:
        worker.close()
    assert bus_thread.startswith("bus-i2c-9") and bus_thread != loop_thread


def test_each_channel_is_read_at_its_own_period() -> None:
    """On one bus, over a simulated minute: 1 s channels are read ~60 times, the 5 s outdoor channel ~12."""
    clock = ManualClock()
    layout = demo_layout()
    buses = SimBuses(layout, clock)
    hardware = build_hardware(layout, buses, clock)
    sampler = Sampler(hardware.channels, hardware.workers, clock)
    counts: dict[str, int] = {}
    i2c = [c for c in hardware.channels if c.bus == "i2c-1"]
    for channel in i2c:
        make = channel.make_reader

        def counting(channel: SampledChannel = channel, make: Callable[[], ChannelReader] = make) -> ChannelReader:
            reader = make()

            def read() -> float:
                counts[channel.name] = counts.get(channel.name, 0) + 1
                return reader()

            return read

        channel.make_reader = counting

    async def scenario() -> None:
        task = asyncio.create_task(sampler._bus_loop("i2c-1", i2c))
        while clock.monotonic() < 60.0:
            await asyncio.sleep(0)
        task.cancel()

    try:
        asyncio.run(scenario())
    finally:
        hardware.close()
    assert 59 <= counts["tank-top"] <= 62
    assert 59 <= counts["house-air"] <= 62
    assert 11 <= counts["outdoor"] <= 13
