"""A simulated week of plant + control (target <= 60 s), and the cost of the cheap-window policy against a
plain thermostat on the same week.

    .venv/bin/python bench/simulated_week.py [--weather cold] [--days 7]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import controller  # noqa: F401  (Blinka check off)
from controller.layout.load import load_layout
from controller.sim.week import simulate, thermostat_strategy

LAYOUT = Path(__file__).resolve().parent.parent / "layouts/demo.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weather", default="cold", choices=["mild", "cold", "freezing"])
    parser.add_argument("--days", type=float, default=7.0)
    args = parser.parse_args()
    layout = load_layout(LAYOUT)
    started = time.perf_counter()
    policy = simulate(layout, weather=args.weather, days=args.days)
    wall = time.perf_counter() - started
    thermostat = simulate(layout, weather=args.weather, days=args.days, strategy=thermostat_strategy)
    print(f"policy:     {policy.summary()}")
    print(f"thermostat: {thermostat.summary()}")
    print(f"simulated {args.days:g} days in {wall:.1f} s wall (target <= 60 s)")
    print(f"cost ratio policy / thermostat: {policy.cost / thermostat.cost:.3f} (prices 0.15 / 0.30 / 0.45 per kWh)")


if __name__ == "__main__":
    main()
