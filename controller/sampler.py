"""The sampler: reads every channel at its own period on its bus's thread and keeps one readings snapshot.

One task per bus. Each round hands all the channels that are due to the bus thread in one call, so the
thread hop is paid once per bus per round, not once per channel. A read that fails becomes a `fault` reading
with the reason; a value outside the channel's plausible range is `out_of_range`. Quality changes are logged
once, as is the recovery (a reading turning stale when a snapshot first shows it so); the process never dies of
a sensor.

Staleness is the bus's, not the process's. A reading shows `stale` when its bus has kept it waiting for more
than `STALE_AFTER_PERIODS` sample periods (or as many of the bus's slowest recent rounds, when a round takes
longer than a period): its age, less the time the refresh waited for the event loop rather than for the bus.
That is the time its next round was due but not yet handed to the bus's thread (the sampler's task not woken:
a starved process, a garbage collection, `hearth fleet-sim`'s timer grid), and the time since the thread
finished a round whose result the loop has not yet taken (so a control tick that runs first after a stall does
not take the old readings for dead). A hung device holds its bus's thread, so every second of it counts and
its channels turn stale as promptly as ever; a bus that keeps going as fast as it can never does. A round's
duration is timed on the bus's thread, so the loop's lateness never widens the threshold either.
The loop's own lateness is forgiven for at most `LOOP_LATENESS_FORGIVEN_S`, systemd's watchdog (`WatchdogSec=30`
in systemd/hearth.service): a controller whose control tick stalls for that long is restarted, and without
systemd its readings are then too old to control on, whoever is to blame. (The control loop also keeps each
tick's lateness, `ControlLoop.lateness_s`, for the jitter bench; nothing alarms on it.)

Ages are on the monotonic clock (a reading's `timestamp` is wall time, for storage and display: an NTP step must
neither age every reading at once nor make a hung bus's last value look fresh).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import structlog

from controller.buses.worker import BusWorker
from controller.clock import Clock
from controller.drivers.base import ChannelReader, DeviceMissingError, SensorError
from controller.layout.channel import Channel
from controller.readings import Quality, Reading, Snapshot

STALE_AFTER_PERIODS = 1.75
ROUNDS_REMEMBERED = 16  # a bus's slowest round among its last this many sets how late a reading may be
LOOP_LATENESS_FORGIVEN_S = 30.0  # systemd's WatchdogSec: a process stalled for longer is restarted
JITTER_WINDOW = 8  # samples looked at by the erratic-sensor check
ERRATIC_ON = 3  # reversing jumps within the window that make a sensor erratic
log = structlog.get_logger("hearth.sampler")


@dataclass
class SampledChannel:
    """A channel bound to its bus and to a way of getting its reader (which may open the device)."""

    name: str
    spec: Channel
    unit: str
    bus: str
    make_reader: Callable[[], ChannelReader]
    reader: ChannelReader | None = None
    next_due: float = 0.0
    last: Reading | None = field(default=None)
    last_monotonic: float = 0.0  # when `last` was read, on the monotonic clock
    previous_value: float | None = None
    previous_change: float = 0.0
    reversals: deque[bool] = field(default_factory=lambda: deque(maxlen=JITTER_WINDOW - 1))
    reversal_count: int = 0
    erratic: bool = False
    stale_logged: bool = False  # its last reading was shown stale and that was logged


@dataclass
class Flight:
    """A round handed to a bus's thread, on the monotonic clock."""

    asked: float  # when the sampler handed it to the thread
    answered: float | None = None  # when the thread finished it (set on the thread; the loop takes the result later)


@dataclass
class BusState:
    rounds_s: deque[float] = field(default_factory=lambda: deque(maxlen=ROUNDS_REMEMBERED))  # on the bus's thread
    flight: Flight | None = None


IDLE = BusState()  # a bus that has not been read yet (never changed)


def waited_on_loop(now: float, since: float, asked: float | None, answered: float | None) -> float:
    """How much of the time from `since` (a channel's refresh was due) to `now` was spent waiting for the event
    loop rather than for the bus: all of it when no round is with the bus (`asked` None: the sampler's task was
    not woken yet), else the part before the round was handed to the bus's thread at `asked` and the part since
    the thread finished it at `answered`, if it did. The time the thread is busy is never included."""
    if asked is None:
        return max(0.0, now - since)
    before = max(0.0, min(asked, now) - since)
    after = 0.0 if answered is None else max(0.0, now - max(answered, since))
    return before + after


def loop_wait(channel: SampledChannel, flight: Flight | None, now: float) -> float:
    """How much of `channel`'s reading's age is the event loop's lateness (`waited_on_loop` since the channel's
    refresh was due, or since its last refresh if that was later), forgiven up to LOOP_LATENESS_FORGIVEN_S."""
    since = max(channel.next_due, channel.last_monotonic)
    asked, answered = (None, None) if flight is None else (flight.asked, flight.answered)
    return min(waited_on_loop(now, since, asked, answered), LOOP_LATENESS_FORGIVEN_S)


def read_once(channel: SampledChannel) -> tuple[float | None, str]:
    """Read one channel on its bus thread: (value, "") or (None, why not)."""
    try:
        if channel.reader is None:
            channel.reader = channel.make_reader()
        return channel.reader(), ""
    except SensorError as error:
        return None, str(error)
    except DeviceMissingError as error:
        return None, str(error)
    except OSError as error:
        return None, f"bus error: {error.strerror or error} (errno {error.errno})"
    except (ValueError, ArithmeticError) as error:
        return None, f"conversion failed: {error}"


def is_erratic(channel: SampledChannel, value: float) -> bool:
    """Whether the channel jumps back and forth: noise pickup or a loose connection.

    A change counts when it is larger than the channel's `max_jitter` and reverses the direction of the change
    before it. A ramp (a pump starting, water warming fast) and a single step never reverse, so they never
    count; noise reverses about two times in three. Erratic from ERRATIC_ON reversing jumps among the last
    JITTER_WINDOW - 1 changes, and clear again only once none is left: the quality does not flicker.
    """
    limit = channel.spec.max_jitter
    previous, channel.previous_value = channel.previous_value, value
    if limit is None or previous is None:
        return False
    change = value - previous
    reversal = abs(change) > limit and change * channel.previous_change < 0
    channel.previous_change = change if abs(change) > limit else channel.previous_change
    window = channel.reversals
    if len(window) == window.maxlen and window[0]:
        channel.reversal_count -= 1
    window.append(reversal)
    channel.reversal_count += reversal
    if channel.reversal_count >= ERRATIC_ON:
        channel.erratic = True
    elif channel.reversal_count == 0:
        channel.erratic = False
    return channel.erratic


def forget_history(channel: SampledChannel) -> None:
    channel.previous_value = None
    channel.previous_change = 0.0
    channel.reversals.clear()
    channel.reversal_count = 0
    channel.erratic = False


def read_batch(channels: Sequence[SampledChannel]) -> list[tuple[float | None, str]]:
    """Read several channels of one bus, on its thread. Devices not yet open are all opened (armed) before
    any is read, so chips that need a first conversion after arming warm up together."""
    for channel in channels:
        if channel.reader is None:
            with contextlib.suppress(DeviceMissingError, SensorError, OSError, ValueError):
                channel.reader = channel.make_reader()
    return [read_once(channel) for channel in channels]


def judge(channel: SampledChannel, value: float | None, error: str, timestamp: float) -> Reading:
    """Turn a raw read into a Reading with its quality."""
    if value is None:
        forget_history(channel)
        return Reading(channel.name, None, channel.unit, Quality.FAULT, timestamp, error)
    if is_erratic(channel, value):
        detail = (
            f"erratic: jumps of more than {channel.spec.max_jitter:g} {channel.unit} back and forth between "
            f"samples (noise pickup or a loose connection?)"
        )
        return Reading(channel.name, value, channel.unit, Quality.FAULT, timestamp, detail)
    low, high = channel.spec.plausible
    if not low <= value <= high:
        detail = f"{value:.2f} {channel.unit} is outside the plausible range [{low}, {high}]"
        return Reading(channel.name, value, channel.unit, Quality.OUT_OF_RANGE, timestamp, detail)
    return Reading(channel.name, value, channel.unit, Quality.OK, timestamp)


class Sampler:
    """Samples channels grouped by bus; `snapshot()` is the one view everyone else reads."""

    def __init__(
        self,
        channels: Sequence[SampledChannel],
        workers: dict[str, BusWorker],
        clock: Clock,
        derive: Callable[[Snapshot], Snapshot] | None = None,
    ) -> None:
        """`derive` adds derived channels (heat, COP: `controller.energy.derived`) to every snapshot."""
        self._derive = derive
        self._channels = list(channels)
        self._workers = workers
        self._clock = clock
        self.updated = asyncio.Event()
        self.rounds = 0
        # Each bus's round in flight and how long its recent rounds took on its thread. Under `--speed` (or on a
        # slow bus) a round can take longer than a sample period; a reading is only stale when its bus has held
        # it for several periods *and* several of its slowest recent rounds (see the module's docstring).
        self._buses: dict[str, BusState] = {}

    @property
    def channels(self) -> list[SampledChannel]:
        return self._channels

    async def run(self) -> None:
        """Sample forever: one task per bus."""
        by_bus: dict[str, list[SampledChannel]] = {}
        for channel in self._channels:
            by_bus.setdefault(channel.bus, []).append(channel)
        async with asyncio.TaskGroup() as group:
            for bus, channels in by_bus.items():
                group.create_task(self._bus_loop(bus, channels), name=f"sampler:{bus}")

    def in_flight(self, bus: str) -> Flight | None:
        """The round `bus`'s thread has (or has finished, with the result not yet taken), if any."""
        state = self._buses.get(bus)
        return None if state is None else state.flight

    async def sample_round(self, bus: str, due: Sequence[SampledChannel]) -> None:
        """Read `due` (channels of one bus) once, on that bus's thread, and record the results."""
        state = self._buses.setdefault(bus, BusState())
        flight = state.flight = Flight(self._clock.monotonic())

        def on_thread() -> list[tuple[float | None, str]]:
            results = read_batch(due)
            flight.answered = self._clock.monotonic()
            return results

        try:
            results = await self._workers[bus].run(on_thread)
        finally:
            state.flight = None
        timestamp, monotonic = self._clock.now(), self._clock.monotonic()
        answered = monotonic if flight.answered is None else flight.answered
        state.rounds_s.append(answered - flight.asked)
        for channel, (value, error) in zip(due, results, strict=True):
            if channel.stale_logged:
                channel.stale_logged = False
                log.info(
                    "channel fresh again", channel=channel.name, after_s=round(monotonic - channel.last_monotonic, 1)
                )
            channel.last_monotonic = monotonic
            self._record(channel, judge(channel, value, error, timestamp))
        self.rounds += 1
        self.updated.set()

    async def _bus_loop(self, bus: str, channels: list[SampledChannel]) -> None:
        while True:
            now = self._clock.monotonic()
            due = [c for c in channels if c.next_due <= now]
            if due:
                await self.sample_round(bus, due)
                for channel in due:
                    # Keep the cadence, but never queue up a backlog after a slow round.
                    channel.next_due = max(channel.next_due + channel.spec.sample_period_s, now)
            wait = min(c.next_due for c in channels) - self._clock.monotonic()
            await self._clock.sleep(max(wait, 0.0))

    def _record(self, channel: SampledChannel, reading: Reading) -> None:
        previous = channel.last
        channel.last = reading
        if previous is not None and previous.quality is reading.quality:
            if reading.quality is not Quality.OK and reading.detail != previous.detail:
                log.warning(
                    "channel still bad", channel=channel.name, quality=reading.quality.value, detail=reading.detail
                )
            return
        if reading.quality is Quality.OK:
            if previous is not None:
                log.info("channel recovered", channel=channel.name, value=round(reading.value or 0.0, 3))
        else:
            log.warning("channel bad", channel=channel.name, quality=reading.quality.value, detail=reading.detail)

    def snapshot(self) -> Snapshot:
        """A frozen view of every channel, with staleness applied as of now."""
        now, monotonic = self._clock.now(), self._clock.monotonic()
        readings: dict[str, Reading] = {}
        for channel in self._channels:
            reading = channel.last
            if reading is None:
                continue
            if reading.quality is Quality.OK:
                bus = self._buses.get(channel.bus, IDLE)
                age = monotonic - channel.last_monotonic
                limit = STALE_AFTER_PERIODS * max(channel.spec.sample_period_s, *bus.rounds_s)
                if age > limit and age - loop_wait(channel, bus.flight, monotonic) > limit:
                    reading = reading.with_quality(Quality.STALE, f"not refreshed for {age:.1f} s")
                    if not channel.stale_logged:
                        channel.stale_logged = True
                        log.warning("channel stale", channel=channel.name, bus=channel.bus, detail=reading.detail)
            readings[channel.name] = reading
        snapshot = Snapshot(taken_at=now, readings=MappingProxyType(readings))
        return self._derive(snapshot) if self._derive is not None else snapshot


def summarise(snapshot: Snapshot) -> dict[str, Any]:
    """A compact {channel: value or quality} mapping for logs."""
    return {
        name: round(r.value, 2) if r.quality is Quality.OK and r.value is not None else r.quality.value
        for name, r in snapshot.readings.items()
    }
