"""What the ATN's weather forecast is worth to the planner: simulated weeks of the planner with its persistence
forecast from the outdoor sensor, and with the forecast the reference ATN sends (`atn/weather`: the next 48 h of
the plant's own weather as hourly means, every hour: a perfect forecast, so this is the most it can give).

    .venv/bin/python bench/planner_weather.py                       # cold and mild, time-of-use and dynamic
    .venv/bin/python bench/planner_weather.py --weather mild --prices dynamic --tick 30
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import controller  # noqa: F401  (Blinka check off)
from controller.layout.load import load_layout
from controller.sim.compare import PRICES, START, price_source, with_planner
from controller.sim.week import simulate

LAYOUT = Path(__file__).resolve().parent.parent / "layouts/demo.toml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weather", choices=["cold", "mild", "freezing"], action="append", help="default cold, mild")
    parser.add_argument("--prices", choices=PRICES, action="append", help="repeatable; default both")
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tick", type=float, default=10.0, help="control tick of the simulation, s (default 10)")
    args = parser.parse_args()
    layout = with_planner(load_layout(LAYOUT), True)
    print(f"{'weather':8s} {'prices':12s} {'forecast':12s} {'cost':>7s} {'comfort':>8s} {'starts':>6s} {'COP':>5s} "
          f"{'aux kWh':>7s} {'re-plans':>8s} {'wall s':>7s}")  # fmt: skip
    for weather in args.weather or ["cold", "mild"]:
        for prices in args.prices or list(PRICES):
            costs = []
            for forecast in (False, True):
                began = time.perf_counter()
                report = simulate(
                    layout, weather=weather, days=args.days, seed=args.seed, start=START,
                    prices=price_source(prices, layout, args.seed), tick_s=args.tick, weather_forecast=forecast,
                )  # fmt: skip
                costs.append(report.cost)
                print(
                    f"{weather:8s} {prices:12s} {'ATN' if forecast else 'persistence':12s} {report.cost:7.2f} "
                    f"{report.comfort_share:8.2%} {report.starts:6d} {report.cop:5.2f} {report.aux_kwh:7.1f} "
                    f"{report.replans:8d} {time.perf_counter() - began:7.1f}",
                    flush=True,
                )
            print(f"{'':8s} {'':12s} ATN / persistence cost: {costs[1] / costs[0]:.3f}", flush=True)


if __name__ == "__main__":
    main()
