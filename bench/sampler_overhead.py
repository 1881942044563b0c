"""Sampler overhead vs bare driver calls on the same emulated bus (target <= 1.3x).

Bare: a loop calling each channel's reader (the real Adafruit driver plus our conversion) directly, on one
thread, round after round. Sampler: the same reads through `Sampler.sample_round` (thread hop to the bus
worker, quality judgement, snapshot bookkeeping). Both on the same 24-channel layout and the same emulated
buses, once with honest wire timing (what a Pi sees) and once with timing off (pure CPU, the worst case).

    .venv/bin/python bench/sampler_overhead.py [--rounds N]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

import controller  # noqa: F401  (Blinka check off)
from controller.clock import SystemClock
from controller.hardware import build_hardware
from controller.layout.load import load_layout
from controller.sampler import Sampler, read_once
from controller.sim.world import SimBuses

LAYOUT = Path(__file__).resolve().parent.parent / "layouts/bench-24.toml"


def measure(timing: bool, rounds: int) -> tuple[float, float]:
    layout = load_layout(LAYOUT)
    assert layout.sim is not None
    layout = layout.model_copy(update={"sim": layout.sim.model_copy(update={"bus_timing": timing})})
    clock = SystemClock()
    world = SimBuses(layout, clock)
    hardware = build_hardware(layout, world, clock)
    sampler = Sampler(hardware.channels, hardware.workers, clock)
    channels = hardware.channels
    for channel in channels:  # open every device and build every reader first
        _, error = read_once(channel)
        assert error == "", (channel.name, error)
    readers = [c.reader for c in channels]

    started = time.perf_counter()
    for _ in range(rounds):
        for reader in readers:
            assert reader is not None
            reader()
    bare = time.perf_counter() - started

    by_bus: dict[str, list] = {}
    for channel in channels:
        by_bus.setdefault(channel.bus, []).append(channel)

    async def through_sampler() -> float:
        began = time.perf_counter()
        for _ in range(rounds):
            for bus, members in by_bus.items():
                await sampler.sample_round(bus, members)
        return time.perf_counter() - began

    sampled = asyncio.run(through_sampler())
    hardware.close()
    return bare, sampled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    for timing in (True, False):
        rounds = args.rounds if timing else args.rounds * 10
        bare, sampled = measure(timing, rounds)
        reads = rounds * 24
        print(
            f"bus timing {'on ' if timing else 'off'}: bare {bare / reads * 1e6:7.1f} µs/read, "
            f"sampler {sampled / reads * 1e6:7.1f} µs/read, ratio {sampled / bare:.3f}x (target <= 1.3x)"
        )


if __name__ == "__main__":
    main()
