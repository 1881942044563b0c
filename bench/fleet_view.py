"""The fleet view at fleet size: first paint and CPU with N sites (default 500) whose states arrive at the
rate a fleet publishes them (every site every 30 s, plus changes: --rate states/s in all).

The states are fed into the view's own callbacks by a transport that makes them up (the MQTT side is the
broker's and bench/fleet.py's business); the app, the model and the table are the real ones, in a headless
Textual session of 160x50. With --live the view connects, as the monitor user, to sites that really run (e.g.
`scripts/fleet-demo --no-tui`, which prints the URLs and writes the monitor's password file): first paint is
then from the start to every live site's row, through a state request and the broker.

    .venv/bin/python bench/fleet_view.py --sites 500 --seconds 30
    .venv/bin/python bench/fleet_view.py --sites 40 --live URL... \
        --password-file state/fleet/passwords/monitor.mqtt-password
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from controller.protocol import ActuatorStateMsg, LinkState, ReadingState, State  # noqa: E402
from tui.fleet.app import FleetApp  # noqa: E402
from tui.fleet.transport import FleetTransport  # noqa: E402
from tui.transport import ConnectionStatus  # noqa: E402


def made_up(site: str, rng: random.Random) -> State:
    now = time.time()
    return State(
        site=site,
        ts=now,
        mode=rng.choice(["ATN", "ATN", "ATN", "LOCAL"]),
        reason="lease",
        readings={
            "house-air": ReadingState(value=rng.uniform(18, 22), unit="°C", quality="ok", ts=now),
            "tank-top": ReadingState(value=rng.uniform(40, 60), unit="°C", quality="ok", ts=now),
        },
        actuators={"heat-pump": ActuatorStateMsg(on=rng.random() < 0.5, source="atn", reason="")},
        link=LinkState(connected=True, last_heartbeat=now - rng.uniform(0, 10), backlog=rng.choice([0, 0, 0, 40])),
        every_s=30.0,
    )


class MadeUpFleet(FleetTransport):
    def __init__(self, sites: int, rate: float) -> None:
        super().__init__(["mqtt://127.0.0.1:1883"])
        self.sites = [f"site-{n:03d}" for n in range(1, sites + 1)]
        self.rate = rate
        self.first_all: float | None = None

    async def run(
        self,
        on_state: Callable[[State], None],
        on_online: Callable[[str, bool], None],
        on_status: Callable[[ConnectionStatus], None],
    ) -> None:
        rng = random.Random(1)
        on_status(ConnectionStatus("connected", role="monitor"))
        for site in self.sites:  # the answers to the state request, spread over 2 s
            on_state(made_up(site, rng))
            await asyncio.sleep(2.0 / len(self.sites))
        while True:
            on_state(made_up(rng.choice(self.sites), rng))
            await asyncio.sleep(1.0 / self.rate)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def measure(sites: int, seconds: float, rate: float, transport: FleetTransport) -> None:
    app = FleetApp(transport)
    started = time.monotonic()
    async with app.run_test(size=(160, 50)) as pilot:
        while app.query_one("#table").row_count < sites:  # type: ignore[attr-defined]
            await pilot.pause(0.05)
        first = time.monotonic() - started
        live = not isinstance(transport, MadeUpFleet)
        print(f"{sites} {'live ' if live else ''}sites: all rows painted {first:.2f} s after start")
        cpu0, t0 = cpu(), time.monotonic()
        await pilot.pause(seconds)
        share = (cpu() - cpu0) / (time.monotonic() - t0) * 100
        arriving = "as the sites publish" if live else f"with {rate:g} states/s arriving"
        print(f"  CPU {arriving}: {share:.1f} % of a core over {seconds:g} s")
        t1 = time.monotonic()
        await pilot.press("s")
        await pilot.press("s")
        await pilot.pause(0)
        print(f"  re-sort (two presses): {(time.monotonic() - t1) * 1000:.0f} ms")
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  peak RSS {rss:.0f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=20.0, help="states per second across the fleet")
    parser.add_argument("--live", nargs="+", metavar="URL", help="watch real sites on these brokers instead")
    parser.add_argument("--username", default="monitor", help="with --live (default: monitor)")
    parser.add_argument("--password-file", metavar="FILE", help="with --live: the monitor's password")
    args = parser.parse_args()
    transport = (
        FleetTransport(args.live, args.username, args.password_file)
        if args.live
        else MadeUpFleet(args.sites, args.rate)
    )
    asyncio.run(measure(args.sites, args.seconds, args.rate, transport))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
