"""Control-tick jitter while sampling: the controller runs in-process on the 24-channel simulated layout (wire
timing on, the plant stepping, the store writing) for a while at real time; each tick's lateness against its
fixed 1 s grid is recorded. Target: p99 <= 50 ms.

    .venv/bin/python bench/control_jitter.py [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

import controller  # noqa: F401  (Blinka check off)
from controller import logs
from controller.clock import SimClock
from controller.layout.load import load_layout
from controller.runtime import Controller, RunOptions
from controller.sim.world import SimBuses

LAYOUT = Path(__file__).resolve().parent.parent / "layouts/bench-24.toml"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def measure(seconds: float, state_dir: Path) -> list[float]:
    layout = load_layout(LAYOUT)
    clock = SimClock(speed=1.0)
    buses = SimBuses(layout, clock)
    options = RunOptions(state_dir=state_dir, report_every_s=3600, duration_s=seconds)
    runner = Controller(layout, buses, clock, options, {"plant": buses.run})
    await runner.run()
    assert runner.loop is not None
    return list(runner.loop.lateness_s)[2:]  # the first ticks wait for the first snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    args = parser.parse_args()
    logs.configure("warning", json=True)
    with tempfile.TemporaryDirectory() as state:
        lateness = asyncio.run(measure(args.seconds, Path(state)))
    ms = [v * 1000 for v in lateness]
    print(
        f"{len(ms)} ticks: lateness p50 {statistics.median(ms):.2f} ms, p99 {percentile(ms, 0.99):.2f} ms, "
        f"max {max(ms):.2f} ms (target p99 <= 50 ms)"
    )


if __name__ == "__main__":
    main()
