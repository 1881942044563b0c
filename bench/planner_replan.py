"""What one re-plan costs here (target <= 0.5 s; a Pi 4 is 3-5x slower) and whether memory stays flat over many.

    .venv/bin/python bench/planner_replan.py [--replans 100]

Each re-plan is the full backward pass the local policy runs (48 h of 15-minute steps, the demo layout's model)
against a fresh day-ahead price forecast and a persistence weather forecast, from a different start each time.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import controller  # noqa: F401  (Blinka check off)
from controller.layout.load import load_layout
from controller.planner import forecast as fc
from controller.planner.local import solve
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
    for i in range(args.replans):
        now = START + 86400 + i * 3 * 3600.0
        started, began = time.perf_counter(), time.process_time()
        plan = solve(
            now, layout.control, layout.site.timezone, weather.outdoor_c(now), history, prices.forecast(now), None
        )
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - began)
        del plan
        rss.append(rss_mb())
    times.sort()
    cpu.sort()
    horizon = layout.control.planner.horizon_h
    print(
        f"re-plan ({args.replans}x, {horizon:g} h horizon): median {statistics.median(times):.3f} s, "
        f"p95 {times[int(0.95 * (len(times) - 1))]:.3f} s, max {times[-1]:.3f} s (target <= 0.5 s)"
    )
    print(f"CPU per re-plan (what a loaded machine does not inflate as much): median {statistics.median(cpu):.3f} s")
    tenth = max(1, len(rss) // 10)
    print(
        f"RSS after the first {tenth} re-plans {max(rss[:tenth]):.1f} MB, after all {rss[-1]:.1f} MB, "
        f"peak {max(rss):.1f} MB (flat: growth after warm-up {max(rss) - max(rss[:tenth]):+.1f} MB)"
    )


if __name__ == "__main__":
    main()
