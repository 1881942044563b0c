"""The model the live controller plans with: the stored fit at start-up, then a new fit every day.

The store is read on the event loop (the store's connection belongs to it; a day of thinned rows reads in
milliseconds), the fit itself (a few hundred thousand grid points of numpy, ~1 s on a Pi) runs in a worker
thread. Each outcome is an event (`model`) and a log line saying which parts are fitted and which come from
the layout, and why.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from collections.abc import Callable
from concurrent.futures import BrokenExecutor, Executor

import structlog

from controller.clock import Clock
from controller.control.params import ControlParams
from controller.control.types import Event
from controller.layout.model import Layout
from controller.planner.fitting.accepted import ModelFit, describe, effective
from controller.planner.fitting.history import series_from_store
from controller.planner.fitting.run import fit_series, load, save, window
from controller.store.database import Store

log = structlog.get_logger("hearth.model")

FIRST_FIT_AFTER_S = 600.0  # let start-up settle first
REFIT_EVERY_S = 86_400.0


class ModelKeeper:
    def __init__(
        self,
        layout: Layout,
        store: Store,
        clock: Clock,
        on_change: Callable[[ControlParams], None] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.layout = layout
        self.executor = executor  # where the fit runs; None: a thread of the event loop's default executor
        self.on_change = on_change
        self.store = store
        self.clock = clock
        self.fit: ModelFit | None = load(store)
        self.control: ControlParams = self._control()

    def _control(self) -> ControlParams:
        control = self.layout.control
        planner = effective(control.planner, self.fit)
        return control if planner is control.planner else control.model_copy(update={"planner": planner})

    def announce(self) -> str:
        message = describe(self.layout.control.planner, self.fit)
        log.info("model", message=message)
        self.store.add_event(Event(ts=self.clock.now(), kind="model", message=message))
        return message

    async def refit(self) -> ModelFit:
        since, until = window(self.layout, self.clock.now())
        series = series_from_store(self.store, self.layout, since, until)
        solve = functools.partial(fit_series, series, self.layout, self.fit, since, until)
        fit = await asyncio.get_running_loop().run_in_executor(self.executor, solve)
        save(self.store, fit)
        self.fit = fit
        self.control = self._control()
        if self.on_change is not None:
            self.on_change(self.control)
        self.announce()
        return fit

    async def run(self) -> None:
        if not self.layout.control.planner.fit_model:
            return
        await self.clock.sleep(FIRST_FIT_AFTER_S)
        while True:
            try:
                await self.refit()
            # a failing store, or a planning process that died: the model in force stays, the next day tries again
            except (sqlite3.Error, BrokenExecutor) as error:
                log.error("model fit failed", error=str(error))
            await self.clock.sleep(REFIT_EVERY_S)
