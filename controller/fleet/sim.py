"""`hearth fleet-sim`: many simulated houses in one process, to exercise a broker (or a cluster) and an ATN at
the size of a real fleet.

Each site is a whole `hearth run` of the simulated layout, minus the process: its own `Controller` (sampler,
control loop and interlocks, store writer, ATN link with its own broker user and password, local API socket in
its own state directory), its own emulated buses and chips, its own plant, and its own SQLite store on disk.
What is shared is what a process shares: the event loop, the interpreter, the log. What is simplified:

- The log: one stream for all sites, warnings and above by default (a site's lines carry no site id, except the
  link's, which name its broker).
- Each site's plant is the same physics as `hearth run`'s, started from a different seed, so the houses drift
  apart; the weather preset is the layout's.
- The emulated buses answer at once (`[sim] bus_timing = false`): the same drivers, registers and conversions,
  without each transaction's wire time, which with hundreds of sites on two cores would only measure the
  thread scheduler (conversions then "did not finish in time").
- The control loop's systemd watchdog is not patted (there is no systemd per site).

Site ids are `<prefix><n>` (`site-001` ...). Passwords are read from `<password dir>/<site>.mqtt-password`,
as `hearth fleet provision --secret-out` writes them. Site n starts on broker n mod len(brokers), so the
sites spread over the nodes of a cluster.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from controller.layout.load import parse_text
from controller.layout.model import Layout

log = structlog.get_logger("hearth.fleet")


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
    text = re.sub(r"(?m)^bus_timing = .*\n", "", text).replace("[sim]\n", "[sim]\nbus_timing = false\n", 1)
    return (
        text
        + f"""
[links.atn]
url = {json.dumps(order)}
username = "{site}"
password_file = {json.dumps(str(password_file))}
"""
    )


@dataclass
class FleetSite:
    site: str
    layout: Layout
    state_dir: Path


def plan_fleet(
    template_path: Path, count: int, urls: Sequence[str], password_dir: Path, state_dir: Path, prefix: str = "site-"
) -> list[FleetSite]:
    """Every site's layout, validated as `hearth layout check` would; ValueError naming the first problem."""
    template = template_path.read_text()
    sites = []
    for index, site in enumerate(site_ids(count, prefix)):
        secret = password_dir / f"{site}.mqtt-password"
        if not secret.is_file():
            raise ValueError(f"{secret}: no password file for {site} (hearth fleet provision --secret-out writes it)")
        text = site_layout_text(template, site, urls, secret.resolve(), index)
        layout = parse_text(text, f"{template_path} as {site}")
        sites.append(FleetSite(site, layout, state_dir / site))
    return sites


async def run_fleet(sites: Sequence[FleetSite], duration_s: float | None, start_spread_s: float = 10.0) -> None:
    """Run every site until cancelled (or for `duration_s`); starts are spread over `start_spread_s` so the
    fleet does not connect in one burst. A site that crashes is logged and the others go on."""
    from controller.buses.choose import open_buses
    from controller.runtime import Controller, RunOptions

    async def one(index: int, site: FleetSite) -> None:
        await asyncio.sleep(start_spread_s * index / max(1, len(sites)))
        site.state_dir.mkdir(parents=True, exist_ok=True)
        buses, clock = open_buses(site.layout)
        extra = {"plant": buses.run} if hasattr(buses, "run") else {}
        options = RunOptions(
            state_dir=site.state_dir,
            report_every_s=3600.0,
            socket_path=site.state_dir / "hearth.sock",
            started_at=time.monotonic(),
        )
        try:
            await Controller(site.layout, buses, clock, options, extra).run()
        except* Exception as crash:  # one house down is a finding, not the end of the fleet
            for error in crash.exceptions:
                log.error("site crashed", site=site.site, error=f"{type(error).__name__}: {error}")

    tasks = [asyncio.create_task(one(i, s), name=f"fleet:{s.site}") for i, s in enumerate(sites)]
    try:
        if duration_s is None:
            await asyncio.gather(*tasks)
        else:
            await asyncio.wait(tasks, timeout=duration_s)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
