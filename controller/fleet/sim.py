"""`hearth fleet-sim`: many simulated houses in one process, to exercise a broker (or a cluster) and an ATN at
the size of a real fleet.

Each site is a controller of the simulated layout, minus the process: its own `Controller` (sampler, control
loop with the pure tick and interlocks, store writer, ATN link with its own broker user and password, local API
socket in its own state directory), its own relays on emulated GPIO lines, its own plant, and its own SQLite
store on disk. What is shared is what a process shares: the event loop, the interpreter, the log; with
`--workers K` the sites are shared out over K processes (one per core by default). What is simplified:

- The house (`controller.fleet.house.PlantHouse`): the sampler reads each channel straight from the plant
  instead of through emulated chips, buses and the real drivers (the same physics; see that module for what
  is left out). `hearth run` on the same layout keeps the whole chain.
- The log: one stream for all sites (and their worker processes), warnings and above by default; every line
  of a site carries its `site`.
- Each site's plant is the same physics as `hearth run`'s, started from a different seed, so the houses drift
  apart; the weather preset is the layout's.
- The control loop's systemd watchdog is not patted (there is no systemd per site).

Where plans run: each worker process solves its sites' plans and model fits in one planning process of its own
(`controller.fleet.planning.PlanningProcess`: spawned, niced by 10, one plan at a time). `hearth run` solves in a
thread; here a thread would hold the GIL for up to ~2 s per plan while the worker's one event loop serves
hundreds of sites, every socket call of that loop would wait for it, readings would go stale and houses fall to
SAFE (the 500-site run: ~600 falls a minute during the first plans). A planning process that dies fails the plan
it held (logged), the next tick asks again and a fresh process is started.

Site ids are `<prefix><n>` (`site-001` ...). Passwords are read from `<password dir>/<site>.mqtt-password`,
as `hearth fleet provision --secret-dir` writes them. Site n starts on broker n mod len(brokers), so the
sites spread over the nodes of a cluster.
"""

from __future__ import annotations

import asyncio
import gc
import json
import re
import time
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path

import structlog

from controller.clock import Clock, SystemClock
from controller.fleet.house import PLANT_BUS, InlineWorker, PlantHouse
from controller.hardware import GPIO_WORKER
from controller.layout.load import parse_text
from controller.layout.model import Layout
from controller.runtime import Controller, RunOptions
from controller.sampler import Sampler

log = structlog.get_logger("hearth.fleet")
FREEZE_EVERY_S = 300.0
FREEZE_STARTING_EVERY_S = 5.0
LATENESS_SAMPLES = 100  # per site: a house keeps 10,000 for the jitter bench (~0.3 MB each, 160 MB at 500 sites)


def site_ids(count: int, prefix: str = "site-") -> list[str]:
    width = max(3, len(str(count)))
    return [f"{prefix}{n:0{width}d}" for n in range(1, count + 1)]


def site_layout_text(template: str, site: str, urls: Sequence[str], password_file: Path, index: int) -> str:
    """The template layout as `site`: its id, a seed of its own, and a link to every broker starting at
    broker `index` mod len(urls)."""
    first = index % len(urls)
    order = [*urls[first:], *urls[:first]]
    text, count = re.subn(r'(?m)^id = "[^"]*"', f'id = "{site}"', template, count=1)
    if count != 1:
        raise ValueError("the layout template has no [site] id line")
    text = re.sub(r"(?m)^\[links\.atn\][^\[]*", "", text)  # any link of its own is replaced below
    text = re.sub(r"(?m)^seed = \d+", f"seed = {index + 1}", text)
    return (
        text
        + f"""
[links.atn]
url = {json.dumps(order)}
username = "{site}"
password_file = {json.dumps(str(password_file))}
"""
    )


async def keep_heap_frozen(
    start_spread_s: float, every_s: float = FREEZE_EVERY_S, starting_every_s: float = FREEZE_STARTING_EVERY_S
) -> None:
    """Keep the garbage collector's full collections short by never letting it scan the sites' long-lived objects:
    freeze them (gc.freeze: later collections no longer scan them) every `starting_every_s` while the sites start,
    and every `every_s` after, each time after a collection of the young generations only.

    250 sites in one process hold millions of objects; a full collection over all of them stopped the event
    loop for 0.4-0.8 s at 150 sites and longer at 250, long enough for readings to go stale (the control loop
    went to SAFE) and for MQTT operations to time out. Collecting everything once before the first freeze did the
    same, once: at 500 sites both workers stopped for seconds 5 s after the last start and 373 sites fell to SAFE
    at once (01:16:21). A freeze itself is cheap (it moves lists). What it keeps is what survived the young
    collections: cyclic garbage among the oldest objects is never freed, a little memory against a stalled fleet.
    A process per site, as on a Pi, has a small heap and none of this."""
    started = asyncio.get_running_loop().time()
    while True:
        gc.collect(1)
        gc.freeze()
        starting = asyncio.get_running_loop().time() - started < start_spread_s + 10.0
        await asyncio.sleep(starting_every_s if starting else every_s)


class FleetController(Controller):
    """A whole controller on a `PlantHouse`: the sampler reads the plant, the relays' calls run inline."""

    def __init__(self, layout: Layout, clock: Clock, options: RunOptions) -> None:
        house = PlantHouse(layout, clock)
        super().__init__(layout, house, clock, options, {"plant": house.run})
        for worker in self.hardware.workers.values():
            worker.close()  # no thread was started: nothing was submitted yet
        self.hardware.workers = {GPIO_WORKER: InlineWorker(GPIO_WORKER), PLANT_BUS: InlineWorker(PLANT_BUS)}
        self.hardware.channels = house.channels()
        self.sampler = Sampler(self.hardware.channels, self.hardware.workers, clock)
        self.house = house


@dataclass
class FleetSite:
    site: str
    layout: Layout
    state_dir: Path


def plan_fleet(
    template_path: Path,
    count: int,
    urls: Sequence[str],
    password_dir: Path,
    state_dir: Path,
    prefix: str = "site-",
    share: tuple[int, int] = (0, 1),
    commit_every_s: float | None = None,
) -> list[FleetSite]:
    """Every site's layout, validated as `hearth layout check` would; ValueError naming the first problem.

    `share` (i, k): only the sites whose index is i mod k, the share of worker i of k. `commit_every_s`: the
    sites' `storage.commit_every_s` instead of the template's (it also paces their telemetry)."""
    template = template_path.read_text()
    sites = []
    worker, workers = share
    for index, site in enumerate(site_ids(count, prefix)):
        if index % workers != worker:
            continue
        secret = password_dir / f"{site}.mqtt-password"
        if not secret.is_file():
            raise ValueError(f"{secret}: no password file for {site} (hearth fleet provision --secret-dir writes it)")
        text = site_layout_text(template, site, urls, secret.resolve(), index)
        layout = parse_text(text, f"{template_path} as {site}")
        if commit_every_s is not None:
            storage = layout.storage.model_copy(update={"commit_every_s": commit_every_s})
            layout = layout.model_copy(update={"storage": storage})
        if layout.backend != "sim" or (layout.sim is not None and (layout.sim.speed != 1.0 or layout.sim.start)):
            raise ValueError(f'{template_path}: a fleet runs simulated houses in real time (backend = "sim", speed 1)')
        PlantHouse(layout, SystemClock())  # every channel can be read from the plant (UnmodelledChannelError)
        sites.append(FleetSite(site, layout, state_dir / site))
    return sites


async def run_fleet(
    sites: Sequence[FleetSite], duration_s: float | None, start_spread_s: float = 10.0, planning: Executor | None = None
) -> None:
    """Run every site until cancelled (or for `duration_s`); starts are spread over `start_spread_s` so the
    fleet does not connect in one burst, and the sites' re-plans run on `planning` (default: the loop's default
    executor). A site that crashes is logged and the others go on."""

    async def one(index: int, site: FleetSite) -> None:
        structlog.contextvars.bind_contextvars(site=site.site)  # this task's context: its lines and its tasks'
        await asyncio.sleep(start_spread_s * index / max(1, len(sites)))
        site.state_dir.mkdir(parents=True, exist_ok=True)
        options = RunOptions(
            state_dir=site.state_dir,
            report_every_s=3600.0,
            socket_path=site.state_dir / "hearth.sock",
            started_at=time.monotonic(),
            planning=planning,
            lateness_samples=LATENESS_SAMPLES,
        )
        try:
            await FleetController(site.layout, SystemClock(), options).run()
        except* Exception as crash:  # one house down is a finding, not the end of the fleet
            for error in crash.exceptions:
                log.error("site crashed", site=site.site, error=f"{type(error).__name__}: {error}")

    tasks = [asyncio.create_task(one(i, s), name=f"fleet:{s.site}") for i, s in enumerate(sites)]
    tasks.append(asyncio.create_task(keep_heap_frozen(start_spread_s), name="fleet:gc"))
    try:
        if duration_s is None:
            await asyncio.gather(*tasks)
        else:
            await asyncio.wait(tasks, timeout=duration_s)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
