"""Staleness: a reading is stale when its *bus* has kept it waiting, not when the process was late to ask.

A process that is merely late (a starved event loop, a garbage collection, `hearth fleet-sim`'s timer grid)
must not make its sensors look dead: in the 500-site fleet, houses fell to SAFE ~600 times a minute with "no
house or water temperature is readable" while every read succeeded. A hung or slow bus must still show, as
promptly as before (tests/test_sampler_faults.py has the hung bus on real time)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from controller.buses.worker import BusWorker
from controller.clock import ManualClock
from controller.fleet.house import InlineWorker
from controller.layout.channel import Channel
from controller.readings import Quality
from controller.sampler import LOOP_LATENESS_FORGIVEN_S, STALE_AFTER_PERIODS, SampledChannel, Sampler, waited_on_loop

BUS = "i2c-1"
PERIOD = 1.0


# (case, now, waiting since, handed to the bus at, bus finished at, waited on the loop)
WAITS = [
    ("idle, not yet due", 10.0, 10.5, None, None, 0.0),
    ("idle, due 0.8 s ago: the sampler was not woken", 10.0, 9.2, None, None, 0.8),
    ("in flight, asked on time, bus still busy", 10.0, 9.0, 9.0, None, 0.0),
    ("in flight, asked 0.5 s late, bus still busy", 10.0, 9.0, 9.5, None, 0.5),
    ("bus done 1 s ago, the loop has not taken the result", 10.0, 9.0, 9.0, 9.0, 1.0),
    ("asked 0.5 s late, bus took 0.2 s, result waiting 0.3 s", 10.0, 9.0, 9.5, 9.7, 0.8),
    ("due while the bus was busy with others", 10.0, 9.6, 9.5, None, 0.0),
    ("due while busy; bus done, result waiting 0.1 s", 10.0, 9.6, 9.5, 9.9, 0.1),
    ("due after the bus finished; result still waiting", 10.0, 9.95, 9.5, 9.7, 0.05),
]


@pytest.mark.parametrize(("case", "now", "since", "asked", "answered", "waited"), WAITS, ids=[w[0] for w in WAITS])
def test_waited_on_loop(
    case: str, now: float, since: float, asked: float | None, answered: float | None, waited: float
) -> None:
    assert waited_on_loop(now, since, asked, answered) == pytest.approx(waited)


times = st.floats(0.0, 1e4, allow_nan=False)


@given(now=times, since=times, asked=times, bus_s=st.none() | times)
def test_waited_on_loop_is_never_more_than_the_wait_and_never_the_bus_time(
    now: float, since: float, asked: float, bus_s: float | None
) -> None:
    """The time forgiven is at most the time since the channel was due, and never includes time the bus's thread
    was busy: a hung bus (asked, not answered) owes every second since it was asked."""
    answered = None if bus_s is None or asked + bus_s > now else asked + bus_s
    asked = min(asked, now)
    waited = waited_on_loop(now, since, asked, answered)
    assert 0.0 <= waited <= max(0.0, now - since) + 1e-9
    busy = (answered if answered is not None else now) - max(asked, since)
    assert waited <= max(0.0, now - since) - max(0.0, busy) + 1e-9


def channel(name: str = "tank-top", period: float = PERIOD, read: Callable[[], float] = lambda: 45.0) -> SampledChannel:
    spec = Channel(device="ads-tank", input="A0", plausible=(0.0, 95.0), sample_period_s=period, max_jitter=None)
    return SampledChannel(name=name, spec=spec, unit="degC", bus=BUS, make_reader=lambda: read)


class LateLoop(ManualClock):
    """A loop that wakes every sleeper late by the next of `lateness` (s), and runs the control tick's snapshot
    first after each wake-up: the worst order, the tick before the sampler's round."""

    def __init__(self, lateness: Iterator[float], tick: Callable[[], None]) -> None:
        super().__init__()
        self.lateness, self.tick = lateness, tick

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds) + next(self.lateness, 0.0))
        self.tick()
        await asyncio.sleep(0)


def run_bus_loop(sampler: Sampler, clock: ManualClock, channels: list[SampledChannel], until_s: float) -> None:
    async def scenario() -> None:
        task = asyncio.create_task(sampler._bus_loop(BUS, channels))
        while clock.monotonic() < until_s:
            await asyncio.sleep(0)
        task.cancel()

    asyncio.run(scenario())


@settings(max_examples=60, deadline=None)
@given(
    lateness=st.lists(st.floats(0.0, LOOP_LATENESS_FORGIVEN_S - 1.0), min_size=1, max_size=30),
    bus_s=st.floats(0.0, 0.5 * PERIOD),
)
def test_a_late_process_never_makes_a_working_bus_stale(lateness: list[float], bus_s: float) -> None:
    """Whatever the loop's lateness (up to LOOP_LATENESS_FORGIVEN_S) and with the tick always before the round,
    a bus that answers within half a period never shows stale. Before: stale from ~0.75 s of lateness."""
    seen: list[Quality] = []
    clock = LateLoop(iter(lateness), lambda: seen.extend(r.quality for r in sampler.snapshot().readings.values()))

    def read() -> float:
        clock.advance(bus_s)
        return 45.0

    channels = [channel("tank-top", read=read), channel("outdoor", period=5.0)]
    sampler = Sampler(channels, {BUS: InlineWorker(BUS)}, clock)
    run_bus_loop(sampler, clock, channels, until_s=sum(lateness) + 10 * PERIOD)
    assert seen and set(seen) == {Quality.OK}


def test_a_process_stalled_longer_than_the_watchdog_allows_shows_its_readings_stale() -> None:
    """The forgiveness has a limit: after LOOP_LATENESS_FORGIVEN_S (systemd's WatchdogSec) the readings are too
    old to control on, whoever is to blame."""
    seen: list[Quality] = []
    clock = LateLoop(iter([0.0, 0.0, LOOP_LATENESS_FORGIVEN_S + 2 * PERIOD]), lambda: seen.append(quality()))
    channels = [channel()]
    sampler = Sampler(channels, {BUS: InlineWorker(BUS)}, clock)

    def quality() -> Quality | None:
        reading = sampler.snapshot().readings.get("tank-top")
        return None if reading is None else reading.quality

    run_bus_loop(sampler, clock, channels, until_s=LOOP_LATENESS_FORGIVEN_S + 10 * PERIOD)
    assert seen[:3] == [Quality.OK, Quality.OK, Quality.STALE]
    assert set(seen[3:]) == {Quality.OK}  # the next round refreshed it


class HeldBus:
    """A real bus thread on a ManualClock the test moves: the first `free` reads answer at once (each taking
    `bus_s` of the manual clock), later ones wait until the test releases them."""

    def __init__(self, clock: ManualClock, free: int = 0, bus_s: float = 0.0) -> None:
        self.clock, self.free, self.bus_s = clock, free, bus_s
        self.worker = BusWorker(BUS)
        self.release = threading.Event()
        self.reading = threading.Event()

    def read(self) -> float:
        if self.free > 0:
            self.free -= 1
        else:
            self.reading.set()
            if not self.release.wait(5.0):
                raise TimeoutError("the test never released the read")
        self.clock.advance(self.bus_s)
        return 45.0


async def until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 5.0
    while not condition():
        assert time.monotonic() < deadline
        await asyncio.sleep(0.001)


def test_a_hung_bus_goes_stale_as_promptly_after_a_long_stall_of_the_process() -> None:
    """A read that never returns still turns stale at STALE_AFTER_PERIODS periods of age, even right after the
    process was stalled for 5 s. (Counting a round from when it was due would have put the stall in the bus's
    recent rounds and made a hung bus wait 1.75 x 5 s.)"""
    seen: list[tuple[float, Quality]] = []
    stall: list[Quality] = []
    clock = LateLoop(iter([0.0, 5.0]), lambda: stall.append(sampler.snapshot().quality("tank-top")))
    bus = HeldBus(clock, free=4)  # rounds at 0 and 1, the late one at 7 and one at once after it; then it hangs
    channels = [channel(read=bus.read)]
    sampler = Sampler(channels, {BUS: bus.worker}, clock)

    async def scenario() -> None:
        task = asyncio.create_task(sampler._bus_loop(BUS, channels))
        await until(bus.reading.is_set)
        assert sampler.rounds == 4
        refreshed = channels[0].last_monotonic
        while clock.monotonic() - refreshed < 2.5 * PERIOD:
            clock.advance(0.05 * PERIOD)
            seen.append((clock.monotonic() - refreshed, sampler.snapshot().quality("tank-top")))
        bus.release.set()
        await until(lambda: sampler.rounds >= 5)
        task.cancel()

    try:
        with capture_logs() as logs:
            asyncio.run(scenario())
    finally:
        bus.release.set()
        bus.worker.close()
    assert set(stall) == {Quality.OK}  # the tick, first after the 5 s stall too
    limit = STALE_AFTER_PERIODS * PERIOD
    assert all(q is Quality.OK for age, q in seen if age <= limit - 1e-9), seen
    assert all(q is Quality.STALE for age, q in seen if age > limit + 1e-9), seen
    said = [(e["event"], e["channel"]) for e in logs if e["event"].startswith("channel")]
    assert said == [("channel stale", "tank-top"), ("channel fresh again", "tank-top")]  # once each


def test_a_result_the_bus_delivered_but_the_loop_has_not_taken_is_not_stale() -> None:
    """On a Pi the round runs on the bus thread: after a stall the tick may run before the sampler takes the
    round's result. The bus was done; the wait since is the process's, not the sensor's."""
    clock = ManualClock()
    bus = HeldBus(clock, free=1)
    channels = [channel(read=bus.read)]
    sampler = Sampler(channels, {BUS: bus.worker}, clock)

    async def scenario() -> Quality:
        await sampler.sample_round(BUS, channels)
        clock.advance(PERIOD)
        bus.release.set()
        pending = asyncio.create_task(sampler.sample_round(BUS, channels))
        await asyncio.sleep(0)  # the round is handed to the bus thread; from here the loop is held up (late)
        deadline = time.monotonic() + 5.0
        while (flight := sampler.in_flight(BUS)) is not None and flight.answered is None:
            assert time.monotonic() < deadline
            time.sleep(0.001)
        assert flight is not None  # the thread finished the round; the sampler has not run since
        clock.advance(5.0)
        quality = sampler.snapshot().quality("tank-top")  # the tick runs first
        await pending
        return quality

    try:
        quality = asyncio.run(scenario())
    finally:
        bus.release.set()
        bus.worker.close()
    assert quality is Quality.OK


def test_a_bus_slower_than_its_sample_period_is_not_stale_while_it_keeps_going() -> None:
    """A bus whose round takes longer than a sample period (a Modbus meter at 2400 baud; any bus under
    `--speed`, where rounds take real bus time and periods are simulated) delivers readings as fresh as it can:
    they stay `ok`. Only a reading the bus has held for longer than STALE_AFTER_PERIODS of its slowest recent
    rounds is stale. Before, the demo at `--speed 60` flapped into SAFE ("no tank temperature") several times
    a minute."""
    clock = ManualClock()
    bus = HeldBus(clock, free=3, bus_s=2.5 * PERIOD)  # each read takes two and a half sample periods of bus time
    channels = [channel(read=bus.read)]
    sampler = Sampler(channels, {BUS: bus.worker}, clock)
    seen: list[Quality] = []

    async def scenario() -> None:
        for _ in range(3):
            await sampler.sample_round(BUS, channels)
        refreshed = clock.monotonic()
        bus.bus_s = 0.0
        held = asyncio.create_task(sampler.sample_round(BUS, channels))  # the next round, at once: it is overdue
        await until(bus.reading.is_set)
        for age in (2.0, 3.0, 4.0, 4.5):  # x PERIOD; the limit is 1.75 x 2.5 = 4.375 periods
            clock.advance(refreshed + age * PERIOD - clock.monotonic())
            seen.append(sampler.snapshot().quality("tank-top"))
        bus.release.set()
        await held

    try:
        asyncio.run(scenario())
    finally:
        bus.release.set()
        bus.worker.close()
    assert seen == [Quality.OK, Quality.OK, Quality.OK, Quality.STALE]
