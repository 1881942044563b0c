"""Injected time: two clocks, each for its job.

Nothing in control, policy, interlocks or the plant simulator reads the wall clock directly: it is handed a
`Clock`. `SystemClock` is real time; `SimClock` runs simulated time faster than real time for demos;
`ManualClock` only moves when a test advances it, so a simulated week runs in seconds.

A Pi has no real-time clock: it boots with fake-hwclock's last saved time (or 1970) and NTP steps the wall clock
seconds later, forwards or back, by any amount. So every duration that protects equipment or decides authority
(minimum on/off, starts per hour, pre-/post-run, sensor age, ATN silence, lease and override life) is measured on
`monotonic()`, which never steps; `now()` (wall time) is for display, storage and the protocol only. A
monotonic reading means something only within one `boot_id` (Linux's CLOCK_MONOTONIC restarts at every boot).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Protocol

BOOT_ID_PATH = Path("/proc/sys/kernel/random/boot_id")


def system_boot_id() -> str:
    """The kernel's id of this boot: monotonic times from the same boot compare, others do not."""
    try:
        return BOOT_ID_PATH.read_text().strip()
    except OSError:  # not Linux: no way to tell boots apart, so every process is a boot of its own
        return f"process-{uuid.uuid4()}"


class Clock(Protocol):
    """A source of time. `now()` is UTC seconds since the epoch (simulated where the clock simulates)."""

    def now(self) -> float: ...

    def monotonic(self) -> float:
        """Seconds on a clock that never steps; only differences within one `boot_id` mean anything."""
        ...

    @property
    def boot_id(self) -> str:
        """Which run of `monotonic()` this is: it restarts (at 0 or anywhere) when the boot id changes."""
        ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Real time: the wall clock (`time.time`, stepped by NTP) and CLOCK_MONOTONIC (`time.monotonic`)."""

    def __init__(self) -> None:
        self._boot_id = system_boot_id()

    @property
    def boot_id(self) -> str:
        return self._boot_id

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class SimClock:
    """Simulated time that runs `speed` times faster than real time from `start` (UTC epoch seconds)."""

    def __init__(self, start: float | None = None, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.speed = speed
        self._start = time.time() if start is None else start
        self._real0 = time.monotonic()
        self._boot_id = f"sim-{uuid.uuid4()}"  # its monotonic time starts at 0 with each SimClock

    @property
    def boot_id(self) -> str:
        return self._boot_id

    def now(self) -> float:
        return self._start + (time.monotonic() - self._real0) * self.speed

    def monotonic(self) -> float:
        return (time.monotonic() - self._real0) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


class ManualClock:
    """A clock that moves only when told to. `sleep` advances it at once, so loops run as fast as they can.

    `advance` moves both clocks; `step_wall` moves the wall clock alone, forwards or back, as NTP does.
    """

    def __init__(self, start: float = 1_767_225_600.0, boot_id: str | None = None) -> None:  # 2026-01-01T00:00Z
        self._now = start
        self._mono = 0.0
        self._boot_id = boot_id or f"manual-{uuid.uuid4()}"

    @property
    def boot_id(self) -> str:
        return self._boot_id

    def now(self) -> float:
        return self._now

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds
        self._mono += seconds

    def step_wall(self, seconds: float) -> None:
        """Step the wall clock by `seconds` (either sign) while monotonic time stands still: an NTP step."""
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))
        await asyncio.sleep(0)


async def every(clock: Clock, period_s: float) -> AsyncIterator[None]:
    """Go on every `period_s` of `clock` on a fixed grid from the first call: a round's own work does not stretch
    the period (a relative sleep does, and more so where the event loop rounds timers up, as `hearth fleet-sim`'s
    does). A round that overran the period is followed at once; after a stall of more than a period, a fresh
    grid starts from its end rather than rushing through the rounds missed."""
    next_at = clock.monotonic() + period_s
    while True:
        await clock.sleep(next_at - clock.monotonic())
        yield
        next_at += period_s
        if clock.monotonic() - next_at > period_s:
            next_at = clock.monotonic()


async def sleep_or_wake(clock: Clock, seconds: float, wake: asyncio.Event) -> None:
    """Sleep `seconds` on `clock`, or less if `wake` is set meanwhile."""
    sleeper = asyncio.ensure_future(clock.sleep(max(0.0, seconds)))
    waker = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        waker.cancel()


STEP_BOUND_S = 1.0  # NTP slews at most 0.5 ms a second: a wall clock moving a second against the monotonic one stepped
CLOCK_SET_AFTER = 1_767_225_600.0  # 2026-01-01T00:00Z: a wall clock before this was never set (1970, no RTC)


def clock_is_set(wall: float) -> bool:
    """Whether the wall clock can be right at all: a Pi with no RTC and no NTP yet reads 1970 (or a saved time)."""
    return wall >= CLOCK_SET_AFTER


class StepWatch:
    """Notices the wall clock stepping against the monotonic one (NTP setting the clock after boot, a person
    running `date -s`): `look` returns the size of a step since the last look, or None."""

    def __init__(self, bound_s: float = STEP_BOUND_S) -> None:
        self.bound_s = bound_s
        self._offset: float | None = None

    def look(self, wall: float, monotonic: float) -> float | None:
        offset = wall - monotonic
        previous, self._offset = self._offset, offset
        if previous is None:
            return None
        step = offset - previous
        return step if abs(step) > self.bound_s else None
