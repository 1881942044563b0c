"""The controller process: one TaskGroup of named long-running tasks.

Start-up drives every relay to its safe state before anything else runs. Shutdown (SIGTERM, Ctrl-C, the
`duration` running out, or any task failing) drives them to their safe states again, from a blocking call on
the GPIO thread so that it still happens when the event loop is already unwinding.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

import structlog

from controller.clock import Clock
from controller.drivers.base import Buses
from controller.hardware import Hardware, build_hardware
from controller.layout.model import Layout
from controller.sampler import Sampler, summarise
from controller.watch import frame

log = structlog.get_logger("hearth.runtime")


class StopRequestedError(Exception):
    """Raised inside the TaskGroup to end every task when a stop is requested."""


@dataclass
class RunOptions:
    report_every_s: float = 10.0
    duration_s: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    watch: TextIO | None = None  # draw a live table here every second
    log_file: str = ""


class Controller:
    """Owns the hardware, the sampler and the task group for one layout."""

    def __init__(
        self,
        layout: Layout,
        buses: Buses,
        clock: Clock,
        options: RunOptions | None = None,
        extra_tasks: Mapping[str, Callable[[], Coroutine[Any, Any, None]]] | None = None,
    ) -> None:
        self.layout = layout
        self.extra_tasks = dict(extra_tasks or {})
        self.buses = buses
        self.clock = clock
        self.options = options or RunOptions()
        self.hardware: Hardware = build_hardware(layout, buses, clock)
        self.sampler = Sampler(self.hardware.channels, self.hardware.workers, clock)
        self.stop_requested = asyncio.Event()

    async def run(self) -> None:
        """Run until stopped; relays are in their safe states before the first task starts and after the last."""
        self.hardware.open_relays(self.layout, self.buses)
        log.info("relays in safe state", relays={n: r.read() for n, r in self.hardware.relays.items()})
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.sampler.run(), name="sampler")
                for name, task in self.extra_tasks.items():
                    group.create_task(task(), name=name)
                group.create_task(self._report(), name="reporter")
                if self.options.watch is not None:
                    group.create_task(self._watch(self.options.watch), name="watch")
                group.create_task(self._wait_for_stop(), name="stopper")
        except* StopRequestedError:
            pass
        finally:
            states = self.hardware.to_safe_state()
            log.info("stopped; relays in safe state", relays=states)
            self.hardware.close()

    async def _wait_for_stop(self) -> None:
        duration = self.options.duration_s
        if duration is None:
            await self.stop_requested.wait()
        else:
            try:
                await asyncio.wait_for(self.stop_requested.wait(), timeout=duration)
            except TimeoutError:
                log.info("run duration reached", duration_s=duration)
        raise StopRequestedError

    async def _report(self) -> None:
        """Log the first snapshot (with the start-up time) and then a summary every `report_every_s`."""
        while not self.sampler.channels or len(self.sampler.snapshot().readings) < len(self.sampler.channels):
            self.sampler.updated.clear()
            await self.sampler.updated.wait()
        startup_s = time.monotonic() - self.options.started_at
        log.info("first readings", startup_s=round(startup_s, 3), readings=summarise(self.sampler.snapshot()))
        while True:
            await asyncio.sleep(self.options.report_every_s)  # presentation pacing, in real time on purpose
            log.info("readings", readings=summarise(self.sampler.snapshot()))

    async def _watch(self, out: TextIO) -> None:
        while True:
            relays = {name: relay.read() for name, relay in self.hardware.relays.items()}
            out.write(
                frame(
                    self.layout.site.name or self.layout.site.id, self.sampler.snapshot(), relays, self.options.log_file
                )
            )
            out.flush()
            await asyncio.sleep(1.0)  # presentation pacing, real time on purpose

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        log.info("stop requested", signal=signal.Signals(signum).name)
        self.stop_requested.set()
