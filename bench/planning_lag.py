"""How late a busy event loop runs while plans are solved beside it: in a thread (as `hearth run` does) or in
fleet-sim's niced planning process (`controller.fleet.planning.PlanningProcess`).

    .venv/bin/python bench/planning_lag.py [--sites 250] [--seconds 20]

The loop stands for a fleet-sim worker: `--sites` tasks each make a socket round trip (socketpair, the loop's own
sock_sendall/sock_recv) every second, as each site's link and store wake up; a probe sleeps 20 ms at a time and
records how late it woke. Meanwhile plans of the demo layout (`local.solve_request`, ~0.5-2 s of CPU each) are
solved back to back, one at a time, on the executor under test. `--sites 1` is a single house (`hearth run`).
Reported per executor: the probe's lateness p50/p99/max and the round trips' p99. No target: the figures are for
comparing; a fleet site's readings go stale after 1.75 sample periods, so lateness of seconds is what makes
houses fall to SAFE.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import time
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path

import controller  # noqa: F401  (Blinka check off)
from controller.fleet.planning import PlanningProcess
from controller.layout.load import load_layout
from controller.planner import forecast as fc
from controller.planner.local import PlanRequest, solve_request
from controller.sim.compare import START
from controller.sim.pricing import DayAhead

LAYOUT = Path(__file__).resolve().parent.parent / "layouts/demo.toml"
PROBE_S = 0.02


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def site(pair: tuple[socket.socket, socket.socket], offset: float, trips: list[float]) -> None:
    loop = asyncio.get_running_loop()
    a, b = pair
    await asyncio.sleep(offset)
    while True:
        began = time.perf_counter()
        await loop.sock_sendall(a, b"x" * 200)
        await loop.sock_recv(b, 4096)
        await loop.sock_sendall(b, b"ack")
        await loop.sock_recv(a, 4096)
        trips.append(time.perf_counter() - began)
        await asyncio.sleep(1.0)


async def probe(late: list[float]) -> None:
    while True:
        began = time.perf_counter()
        await asyncio.sleep(PROBE_S)
        late.append(time.perf_counter() - began - PROBE_S)


async def measure(executor: Executor | None, sites: int, seconds: float) -> str:
    layout = load_layout(LAYOUT)
    prices = DayAhead(1, layout.site.timezone)
    history = fc.OutdoorHistory().add(START, 2.0)
    pairs = []
    for _ in range(sites):
        pair = socket.socketpair()
        for end in pair:
            end.setblocking(False)
        pairs.append(pair)
    late: list[float] = []
    trips: list[float] = []
    tasks = [asyncio.create_task(site(p, i / sites, trips)) for i, p in enumerate(pairs)]
    tasks.append(asyncio.create_task(probe(late)))
    plans = 0
    deadline = time.perf_counter() + seconds
    loop = asyncio.get_running_loop()
    try:
        if executor is None:
            await asyncio.sleep(seconds)
        else:
            await loop.run_in_executor(executor, time.sleep, 0)  # a process executor starts its process first
            late.clear()
            trips.clear()
            while time.perf_counter() < deadline:
                now = START + 86400 + plans * 3600.0
                request = PlanRequest(now, 2.0, history, prices.forecast(now), None, 40.0, 20.0, False)
                await loop.run_in_executor(executor, solve_request, request, layout.control, layout.site.timezone)
                plans += 1
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for pair in pairs:
            for end in pair:
                end.close()
    return (
        f"{plans:3d} plans; loop lateness p50 {statistics.median(late) * 1000:6.1f} ms, "
        f"p99 {percentile(late, 0.99) * 1000:7.1f} ms, max {max(late) * 1000:7.1f} ms; "
        f"round trip p99 {percentile(trips, 0.99) * 1000:7.1f} ms ({len(trips)} trips)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sites", type=int, default=250)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args()
    print(f"{args.sites} site(s) on one event loop, {args.seconds:.0f} s each:")
    print(f"  no plans:                 {asyncio.run(measure(None, args.sites, args.seconds))}")
    with ThreadPoolExecutor(1) as thread:
        print(f"  plans in a thread:        {asyncio.run(measure(thread, args.sites, args.seconds))}")
    process = PlanningProcess()
    try:
        print(f"  plans in a niced process: {asyncio.run(measure(process, args.sites, args.seconds))}")
    finally:
        process.shutdown()
    with open("/proc/loadavg") as loadavg:
        print(f"load average at the end: {' '.join(loadavg.read().split()[:3])}")


if __name__ == "__main__":
    main()
