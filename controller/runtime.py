"""The controller process: one TaskGroup of named long-running tasks.

Start-up drives every relay to its safe state before anything else runs. Shutdown (SIGTERM, Ctrl-C, the
`duration` running out, or any task failing) drives them to their safe states again, from a blocking call on
the GPIO thread so that it still happens when the event loop is already unwinding.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
import sqlite3
import time
from collections.abc import Callable, Coroutine, Hashable, Mapping
from concurrent.futures import BrokenExecutor, Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import structlog

from controller import protocol
from controller.actuators import ActuatorBank
from controller.alarms import AlarmBoard
from controller.clock import Clock, SimClock, StepWatch, clock_is_set, every
from controller.control.inbox import AtnInbox
from controller.control.params import ControlParams
from controller.control.types import Event
from controller.drivers.base import Buses
from controller.energy.book import close_days
from controller.energy.counter import HeatRegister
from controller.energy.derived import DERIVED_POLICIES, Derived, derived_channels
from controller.hardware import GPIO_WORKER, Hardware, build_hardware
from controller.layout.model import Layout
from controller.links.atn import AtnLinkRunner, restore_weather
from controller.links.house_broker import HouseBrokerLink
from controller.links.local import LocalApiServer, next_decision, socket_paths
from controller.links.state import change_signature_of, state_message
from controller.loop import JITTER_SAMPLES, ControlLoop
from controller.notify import Notifier, WatchdogGate
from controller.overrides import OverrideBook, utc
from controller.planner.fitting.accepted import describe
from controller.planner.fitting.keeper import ModelKeeper
from controller.readings import Snapshot
from controller.sampler import Sampler, summarise
from controller.store import Store, StoreError, policies_for
from controller.watch import frame

if TYPE_CHECKING:
    from controller.remote.handler import RemoteOverrides

log = structlog.get_logger("hearth.runtime")
PRUNE_EVERY_S = 3600.0
RECORD_EVERY_S = 1.0


class StoreUnavailableError(Exception):
    """The store could not be opened: the message says where and why."""


class StopRequestedError(Exception):
    """Raised inside the TaskGroup to end every task when a stop is requested."""


@dataclass
class RunOptions:
    state_dir: Path = Path("state")
    report_every_s: float = 10.0
    duration_s: float | None = None
    started_at: float = field(default_factory=time.monotonic)
    watch: TextIO | None = None  # draw a live table here every second
    log_file: str = ""
    # The local API's socket; None: $RUNTIME_DIRECTORY/hearth.sock or the layout's (controller.links.local.socket_paths)
    socket_path: Path | None = None
    # Where the control loop's re-plans and the model's fits run; None: the event loop's default executor (hearth
    # fleet-sim shares one thread between hundreds of sites, so they cannot crowd out the threads aiomqtt connects on)
    planning: Executor | None = None
    # How many ticks' lateness the control loop keeps for the jitter figures (a fleet of hundreds keeps fewer)
    lateness_samples: int = JITTER_SAMPLES


def heat_register(layout: Layout, store: Store) -> HeatRegister | None:
    """The heat meter's register, resumed from the store, when the layout measures heat (else None). Intervals up
    to three sample periods of the slowest heat input count; a longer silence is a gap."""
    energy = layout.control.energy
    if not derived_channels(layout.channels, energy):
        return None
    inputs = (energy.flow, energy.leaving, energy.entering)
    register = HeatRegister(max_gap_s=3 * max(layout.channels[name].sample_period_s for name in inputs))
    register.restore(store)
    return register


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
        self.derived = Derived(layout.control.energy)
        self.sampler = Sampler(self.hardware.channels, self.hardware.workers, clock, derive=self.derived.apply)
        self.stop_requested = asyncio.Event()
        self.inbox = AtnInbox()
        self.notifier = Notifier()
        self.store: Store | None = None
        self.overrides: OverrideBook | None = None
        self.loop: ControlLoop | None = None
        self.link: AtnLinkRunner | None = None
        self.house_link: HouseBrokerLink | None = None
        self.alarms = AlarmBoard()
        self.local_api: LocalApiServer | None = None
        self.model: ModelKeeper | None = None

    def open_store(self) -> Store:
        storage = self.layout.storage
        path = Path(storage.path)
        if not path.is_absolute():
            path = self.options.state_dir / path
        # Exclusive: the controller is the only process that opens its store (others ask it over the local
        # socket), and exclusive locking keeps the WAL index off the SD card (no mmap'd -shm writeback).
        try:
            store = Store.open(
                path,
                retention_days=storage.retention_days,
                max_size_mb=storage.max_size_mb,
                exclusive=True,
                keep_unacknowledged=self.layout.links.atn is not None,
            )
        except (OSError, sqlite3.Error, StoreError) as error:
            raise StoreUnavailableError(
                f"cannot open the store at {path}: {error}; check --state-dir and the storage.path of the layout"
            ) from error
        if store.integrity != "ok":
            log.error("store integrity check failed", path=str(path), result=store.integrity)
        store.quarantine_invalid(self.clock.now())  # a row that no longer validates is never a reason not to start
        kept = len(store.unreleased_overrides())
        log.info("store open", path=str(path), last_seq=store.last_seq(), overrides_restored=kept)
        return store

    async def run(self) -> None:
        """Run until stopped; relays are in their safe states before the first task starts and after the last."""
        self.hardware.open_relays(self.layout, self.buses)
        log.info("relays in safe state", relays={n: r.read() for n, r in self.hardware.relays.items()})
        self.store = self.open_store()
        self.derived.register = heat_register(self.layout, self.store)
        bank = ActuatorBank(self.hardware.relays, self.hardware.workers[GPIO_WORKER])
        self.overrides = OverrideBook(self.store, self.layout, self.clock)
        self.loop = ControlLoop(
            self.layout,
            self.sampler,
            bank,
            self.clock,
            self.inbox,
            self.store,
            overrides=self.overrides,
            planning=self.options.planning,
            lateness_samples=self.options.lateness_samples,
        )
        self.store.add_event(Event(ts=self.clock.now(), kind="start", message="controller started"))
        self.inbox.weather = restore_weather(self.store)
        self.model = ModelKeeper(
            self.layout, self.store, self.clock, on_change=self._use_model, executor=self.options.planning
        )
        self.model.announce()
        self.loop.plan_control = self.model.control
        self.alarms.sink = self.store
        local = self.layout.links.local
        self.local_api = LocalApiServer(
            socket_paths(self.options.socket_path, local, self.options.state_dir),
            layout=self.layout,
            store=self.store,
            clock=self.clock,
            overrides=self.overrides,
            alarms=self.alarms,
            state=self.state_message,
            settle=functools.partial(next_decision, self.loop),
            idle=self.current_alarms,
            technician_group=local.technician_group,
            mode=local.mode,
            refit=self._refit_model,
        )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.sampler.run(), name="sampler")
                group.create_task(self._control(), name="control")
                group.create_task(self._store_writer(), name="store-writer")
                group.create_task(self._clock_watch(), name="clock-watch")
                atn = self.layout.links.atn
                if atn is not None:
                    self.link = AtnLinkRunner(
                        atn,
                        self.layout,
                        self.store,
                        self.inbox,
                        self.clock,
                        self.state_message,
                        self.loop.wake,
                        remote=self._remote_overrides(),
                        signature=self.state_signature,
                    )
                    self.loop.after_tick.append(self.link.state_changed)
                    group.create_task(self.link.run(), name="atn-link")
                house = self.layout.links.home_assistant
                if house is not None:
                    self.house_link = HouseBrokerLink(house, self.layout, self.clock, self.state_message)
                    group.create_task(self.house_link.run(), name="house-broker")
                group.create_task(self.local_api.run(), name="local-api")
                group.create_task(self.model.run(), name="model-fit")
                for name, task in self.extra_tasks.items():
                    group.create_task(task(), name=name)
                group.create_task(self._report(), name="reporter")
                if self.options.watch is not None:
                    group.create_task(self._watch(self.options.watch), name="watch")
                group.create_task(self._wait_for_stop(), name="stopper")
        except* StopRequestedError:
            pass
        finally:
            self.notifier.stopping()
            states = self.hardware.to_safe_state()
            log.info("stopped; relays in safe state", relays=states)
            if self.store is not None:
                self.store.add_event(Event(ts=self.clock.now(), kind="stop", message="controller stopped, relays safe"))
                self.store.close()
            self.hardware.close()
            self.notifier.close()

    def _remote_overrides(self) -> RemoteOverrides | None:
        """Signed technician overrides over MQTT, when the layout turns them on (`links.atn.remote_overrides`)."""
        atn = self.layout.links.atn
        if atn is None or not atn.remote_overrides:
            return None
        # Imported here: `cryptography` costs start-up time that a site without remote overrides need not pay.
        from controller.remote.gate import Gate, trusted_keys
        from controller.remote.handler import RemoteOverrides

        assert self.store is not None and self.overrides is not None and self.loop is not None
        keys = trusted_keys((t.name, t.key) for t in atn.technicians)
        log.info("remote overrides on", technicians=sorted({name for name, _ in keys}), keys=len(keys))
        gate = Gate(self.layout.site.id, keys, self.store)
        settle = functools.partial(next_decision, self.loop)
        return RemoteOverrides(gate, self.overrides, self.clock, settle, self.state_message)

    def state_message(self) -> protocol.State:
        """The whole controller as one protocol State message (MQTT, local socket)."""
        now = self.clock.now()
        overrides = self.overrides.active() if self.overrides else []
        link = self.link.link_state() if self.link else None
        last = self.loop.last if self.loop else None
        actual = self.loop.state.actuators if self.loop else {}
        snapshot = self.sampler.snapshot()
        alarms = self.current_alarms(now, snapshot)
        speed = self.clock.speed if isinstance(self.clock, SimClock) else 1.0
        return state_message(self.layout.site.id, now, snapshot, last, overrides, link, actual, alarms, speed)

    def state_signature(self) -> Hashable:
        """`change_signature(self.state_message())`, without building the message."""
        overrides = self.overrides.active() if self.overrides else []
        last = self.loop.last if self.loop else None
        return change_signature_of(last, overrides, self.loop.state.actuators if self.loop else {})

    def current_alarms(self, now: float | None = None, snapshot: Snapshot | None = None) -> list[protocol.Alarm]:
        """The alarms standing now; the alarm board times channel faults from these calls (at least once a second:
        the state message, or the local API when nobody watches)."""
        now = self.clock.now() if now is None else now
        snapshot = self.sampler.snapshot() if snapshot is None else snapshot
        relay = self.loop.alarm if self.loop else None
        store = self.store.trouble() if self.store else None
        return self.alarms.current(now, snapshot, relay, self.clock.monotonic(), store)

    async def _control(self) -> None:
        """Wait for the first complete snapshot (boot is offline-first: nothing else is awaited), then tick."""
        assert self.loop is not None
        await self._first_snapshot()
        first = await self.loop.tick()
        startup_s = time.monotonic() - self.options.started_at
        log.info("first control decision", startup_s=round(startup_s, 3), summary=first.summary)
        self.notifier.ready(first.summary[:200])
        self.loop.health = WatchdogGate(self.notifier)  # pats only from here on: READY=1 goes first
        await self.loop.run()

    async def _store_writer(self) -> None:
        """Every second (on a fixed grid), queue the readings that pass their deadband; commit them every
        `commit_every_s`; prune hourly. (Events are committed at once by whoever adds them.)"""
        assert self.store is not None
        policies = {**DERIVED_POLICIES, **policies_for(self.layout.channels)}
        commit_every = self.layout.storage.commit_every_s
        last_commit = last_prune = self.clock.monotonic()
        async for _ in every(self.clock, RECORD_EVERY_S):
            snapshot = self.sampler.snapshot()
            if snapshot.readings:
                self.store.record(snapshot, policies)
            now = self.clock.monotonic()
            # A full or failing disk must not end this task (and with it the controller): the store keeps what it
            # could not write in memory, `trouble()` raises the alarm, and the next round tries again.
            if now - last_commit >= commit_every - 1e-6:
                with contextlib.suppress(sqlite3.Error):
                    self.store.flush()
                last_commit = now
            if now - last_prune >= PRUNE_EVERY_S:
                try:
                    # Daily energy totals are closed into the store first: they outlive the readings.
                    close_days(self.store, self.layout, self.clock.now())
                    self.store.prune(self.clock.now())
                except sqlite3.Error as error:
                    log.error("store prune failed", error=str(error))
                last_prune = now

    async def _refit_model(self) -> dict[str, object]:
        """`hearth model fit` against the running controller: the daily fit, now."""
        assert self.model is not None
        try:
            fit = await self.model.refit()
        except (sqlite3.Error, BrokenExecutor) as error:  # a failing store or planning process: the model stays
            return {"fit": None, "in_use": f"the fit failed, the model in force stays: {error}"}
        return {"fit": fit.to_json(), "in_use": describe(self.layout.control.planner, fit)}

    def _use_model(self, control: ControlParams) -> None:
        if self.loop is not None:
            self.loop.plan_control = control

    async def _clock_watch(self) -> None:
        """Record every step of the wall clock as a `clock` event with its size and the readings it dated.

        Nothing protective depends on the wall clock (see `controller.clock`); this is for people and the ATN:
        readings stored before a step were dated by the clock before it, and those stored before the clock was
        ever set (1970) are named by their seqs, so nobody takes them for readings of 1970."""
        assert self.store is not None
        watch = StepWatch()
        wall, mono = self.clock.now(), self.clock.monotonic()
        watch.look(wall, mono)
        unset_from = self.store.last_seq() + 1 if not clock_is_set(wall) else None
        if unset_from is not None:
            self._clock_event(wall, f"wall clock not set ({utc(wall)}): readings are dated by it until it is", {})
        async for _ in every(self.clock, RECORD_EVERY_S):
            wall, mono = self.clock.now(), self.clock.monotonic()
            step = watch.look(wall, mono)
            if step is None:
                continue
            last = self.store.last_seq() + self.store.pending
            data: dict[str, object] = {"step_s": round(step, 3), "before": wall - step, "after": wall, "seq": last}
            message = f"wall clock stepped {step:+.1f} s to {utc(wall)}"
            if unset_from is not None and clock_is_set(wall):
                data["unset_clock_seqs"] = [unset_from, last]
                message += f"; readings seq {unset_from}..{last} were dated before the clock was set"
                unset_from = None
            self._clock_event(wall, message, data)

    def _clock_event(self, wall: float, message: str, data: dict[str, object]) -> None:
        assert self.store is not None
        log.warning("clock", message=message, **data)
        self.store.add_event(Event(ts=wall, kind="clock", message=message, data=data))

    async def _first_snapshot(self) -> None:
        # Every sampled channel by name: derived channels (heat, COP) join the snapshot too, so a count could be
        # reached while a slower bus has not yet delivered its first round.
        while not all(c.name in self.sampler.snapshot().readings for c in self.sampler.channels):
            self.sampler.updated.clear()
            await self.sampler.updated.wait()

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
        await self._first_snapshot()
        startup_s = time.monotonic() - self.options.started_at
        log.info("first readings", startup_s=round(startup_s, 3), readings=summarise(self.sampler.snapshot()))
        while True:
            await asyncio.sleep(self.options.report_every_s)  # presentation pacing, in real time on purpose
            log.info("readings", readings=summarise(self.sampler.snapshot()))

    async def _watch(self, out: TextIO) -> None:
        while True:
            out.write(frame(self.state_message(), self.options.log_file))
            out.flush()
            await asyncio.sleep(1.0)  # presentation pacing, real time on purpose

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._on_signal, signum)

    def _on_signal(self, signum: int) -> None:
        log.info("stop requested", signal=signal.Signals(signum).name)
        self.stop_requested.set()
