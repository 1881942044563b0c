"""The simulated week's energy, per weather preset, as the live controller reports it: heat, electricity, COP,
compressor starts, cost, PV absorbed (with the solar-surplus rule on and off), and the energy-integration error
against the meter's own counter (target: within 0.5 %).

    .venv/bin/python bench/energy_week.py [--weather mild cold freezing] [--days 7]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import controller  # noqa: F401  (Blinka check off)
from controller.layout.load import load_layout
from controller.layout.model import Layout
from controller.sim.week import simulate

LAYOUT = Path(__file__).resolve().parent.parent / "layouts/demo.toml"


def with_solar(layout: Layout, enabled: bool) -> Layout:
    energy = layout.control.energy
    solar = energy.solar.model_copy(update={"enabled": enabled})
    control = layout.control.model_copy(update={"energy": energy.model_copy(update={"solar": solar})})
    return layout.model_copy(update={"control": control})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weather", nargs="+", default=["mild", "cold", "freezing"])
    parser.add_argument("--days", type=float, default=7.0)
    args = parser.parse_args()
    layout = load_layout(LAYOUT)
    for weather in args.weather:
        for label, site in (
            ("solar rule on ", with_solar(layout, True)),
            ("solar rule off", with_solar(layout, False)),
        ):
            started = time.perf_counter()
            report = simulate(site, weather=weather, days=args.days)
            print(f"{label}: {report.energy_summary()}")
            print(f"{label}: {report.summary()} ({time.perf_counter() - started:.0f} s wall)", flush=True)


if __name__ == "__main__":
    main()
