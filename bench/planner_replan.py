"""What one re-plan costs here (target <= 0.5 s; a Pi 4 is 3-5x slower) and whether memory stays flat over many.

    .venv/bin/python bench/planner_replan.py [--replans 100]

Each re-plan is what the local policy runs (`local.solve_request`): the backward pass over 48 h of 15-minute
steps (the demo layout's model) against a fresh day-ahead price forecast and a persistence weather forecast, the
search for the price per start that keeps the start budget (one or more passes), and the roll-out for the TUI;
from a different start and state each time, carrying the price per start from one re-plan to the next.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import controller  # noqa: F401  (Blinka check off)
from controller.layout.load import load_layout
from controller.planner import forecast as fc
from controller.planner.local import PlanRequest, solve_request
from controller.sim.compare import START
from controller.sim.pricing import DayAhead
from controller.sim.weather import WEATHER_PRESETS, Weather

LAYOUT = Path(__file__).resolve().parent.parent / "layouts/demo.toml"


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replans", type=int, default=100)
    args = parser.parse_args()
    layout = load_layout(LAYOUT)
    weather = Weather(WEATHER_PRESETS["cold"], seed=1)
    prices = DayAhead(1, layout.site.timezone)
    history = fc.OutdoorHistory()
    for minute in range(0, 24 * 60, 15):
        t = START + minute * 60
        history = history.add(t, weather.outdoor_c(t))
    times: list[float] = []
    cpu: list[float] = []
    rss: list[float] = []
    passes = 0
    start_cost: float | None = None
    for i in range(args.replans):
        now = START + 86400 + i * 3 * 3600.0
        tank, house, running = 30.0 + (i * 7) % 20, 19.5 + (i % 3) * 0.5, i % 2 == 1
        request = PlanRequest(
            now, weather.outdoor_c(now), history, prices.forecast(now), None, tank, house, running,
            start_cost=start_cost,
        )  # fmt: skip
        started, began = time.perf_counter(), time.process_time()
        solved = solve_request(request, layout.control, layout.site.timezone)
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - began)
        passes += solved.passes
        start_cost = solved.start_cost
        del solved
        rss.append(rss_mb())
    times.sort()
    cpu.sort()
    horizon = layout.control.planner.horizon_h
    print(
        f"re-plan ({args.replans}x, {horizon:g} h horizon): median {statistics.median(times):.3f} s, "
        f"p95 {times[int(0.95 * (len(times) - 1))]:.3f} s, max {times[-1]:.3f} s (target <= 0.5 s)"
    )
    print(f"CPU per re-plan (what a loaded machine does not inflate as much): median {statistics.median(cpu):.3f} s")
    print(f"backward passes per re-plan (start-budget search): mean {passes / args.replans:.2f}")
    with open("/proc/loadavg") as loadavg:
        print(f"load average at the end: {' '.join(loadavg.read().split()[:3])}")
    tenth = max(1, len(rss) // 10)
    print(
        f"RSS after the first {tenth} re-plans {max(rss[:tenth]):.1f} MB, after all {rss[-1]:.1f} MB, "
        f"peak {max(rss):.1f} MB (flat: growth after warm-up {max(rss) - max(rss[:tenth]):+.1f} MB)"
    )


if __name__ == "__main__":
    main()
