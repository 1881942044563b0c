"""Bytes the store writes per day on the 24-channel bench layout (target <= 25 MB/day), and its control-path cost.

Readings: the plant simulator (`controller.sim.plant.Plant`, the layout's weather and seed) driven through a
simulated day by a simple two-loop thermostat (tank charging and house heating, with hysteresis) so the
temperatures move as they do on a working system. Every second each of the 24 channels reads its plant probe
(the layout's `[sim.probes]` map) through a model of its converter: NTC channels through their divider and an
ADS1115 (16-bit code at ±4.096 V, 2 LSB rms noise at 860 SPS), RTD channels through a MAX31865 (15-bit ratio,
4300 Ω reference, 0.1 LSB rms noise). That is the emulators' noise and quantisation (about 0.01 °C rms, as the
real chain shows: see `--check-noise`) without the register-level round trip, which would take ~3 min a day.

Each simulated second the bench calls `store.record(snapshot)` and `store.flush()` on a `ManualClock`:
* "thinned": what `hearth run` does: the layout's deadband/keep-alive policies, a commit every
  `storage.commit_every_s` (2 s), the file opened `exclusive` (no -shm);
* "thinned commit 1 s": the same with a commit every second and a shared -shm, for comparison;
* "every sample": deadband 0 (every sample of a noisy converter differs), the baseline;
* with `--sweep`: the thinned store with 4 KiB and 1 KiB pages (the store uses 512 B), opened `exclusive`
  (no -shm file), and with flushes every 2 s, 5 s and 30 s instead of every second.

Bytes written, measured with /proc/self/io around each store call, and printed per simulated day:
* "written": `write_bytes` (what the kernel accounts to the block layer: a 4 KiB page each time one turns dirty)
  where the kernel counts it, else `wchar`; the header line says which. Without /proc/self/io at all: the growth
  of the database file plus the largest WAL seen (a lower bound).
* "wchar": every byte SQLite handed to write()/pwrite(): each WAL frame (page + 24-byte header) of each commit and
  each checkpoint's copy into the database file. With `synchronous=NORMAL` nothing is fsynced per commit, so the
  page cache merges neighbouring frames before they reach the card; this is the upper bound for the WAL and DB.
* "+shm": an estimate of what neither counter sees: SQLite's WAL index (the `-shm` file) is memory-mapped, and
  the kernel writes a changed 4 KiB page of it back about every 30 s (dirty_expire). Counted as the pages that
  changed in each 30 simulated seconds; zero when the store is opened `exclusive`.
The ~54 MB/day often quoted for "every sample" is the database's growth ("db file"); what is written is far more,
because each commit rewrites whole pages.

    .venv/bin/python bench/store_bytes_per_day.py [--hours 24] [--sweep] [--check-noise]
"""

from __future__ import annotations

import argparse
import math
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import controller  # noqa: F401  (Blinka check off)
from controller.clock import ManualClock
from controller.conversions import rtd_resistance, rtd_temperature
from controller.drivers.ads1115 import Ads1115Config
from controller.layout.load import load_layout
from controller.layout.model import Layout
from controller.layout.sensors import NtcSensor
from controller.readings import Quality, Reading, Snapshot
from controller.sim.plant import Plant, PlantInputs, PlantParams
from controller.sim.weather import WEATHER_PRESETS
from controller.store import ChannelPolicy, Store, policies_for
from controller.store import schema as store_schema

LAYOUT = Path(__file__).resolve().parent.parent / "layouts/bench-24.toml"
TARGET_MB_PER_DAY = 25.0
DAY_S = 86_400

ADS_FSR_V = 4.096
ADS_NOISE_LSB = 2.0
RTD_RREF = 4300.0
RTD_R0 = 1000.0
RTD_NOISE_LSB = 0.1
WRITEBACK_S = 30  # the kernel's default dirty_expire: a dirty page is written back about this long after
OS_PAGE = 4096


class Thermostat:
    """Charge the tank between two temperatures and heat the house from it, with hysteresis."""

    def __init__(self) -> None:
        self.charging = False
        self.heating = False

    def inputs(self, probes: dict[str, float]) -> PlantInputs:
        if probes["tank-top"] < 44.0:
            self.charging = True
        elif probes["tank-bottom"] > 47.0:
            self.charging = False
        if probes["house-air"] < 20.3:
            self.heating = True
        elif probes["house-air"] > 20.8:
            self.heating = False
        return PlantInputs(heat_pump=self.charging, store_pump=self.charging, distribution_pump=self.heating)


class Converters:
    """Each channel's probe read through a model of its converter: quantisation plus the chip's noise."""

    def __init__(self, layout: Layout, seed: int) -> None:
        assert layout.sim is not None
        self.rng = random.Random(seed)
        self.probe = {name: layout.sim.probes.get(name, name) for name in layout.channels}
        self.units = {name: "degC" for name in layout.channels}
        self.ntc = {}
        for name, channel in layout.channels.items():
            if isinstance(channel.sensor, NtcSensor):
                device = layout.devices[channel.device]
                supply_v = device.supply_v if isinstance(device, Ads1115Config) else 3.3
                self.ntc[name] = (channel.sensor.thermistor(), channel.sensor.divider(supply_v))
        self.plausible = {name: channel.plausible for name, channel in layout.channels.items()}

    def read(self, name: str, temperature_c: float) -> float:
        ntc = self.ntc.get(name)
        if ntc is not None:
            model, divider = ntc
            lsb = ADS_FSR_V / 32768
            code = round(divider.volts(model.resistance(temperature_c)) / lsb + self.rng.gauss(0.0, ADS_NOISE_LSB))
            return model.temperature(divider.resistance(code * lsb))
        code = round(rtd_resistance(temperature_c, RTD_R0) / RTD_RREF * 32768 + self.rng.gauss(0.0, RTD_NOISE_LSB))
        return rtd_temperature(code / 32768 * RTD_RREF, RTD_R0)

    def snapshot(self, probes: dict[str, float], now: float) -> Snapshot:
        readings = {}
        for name in self.probe:
            value = self.read(name, probes[self.probe[name]])
            low, high = self.plausible[name]
            quality = Quality.OK if low <= value <= high else Quality.OUT_OF_RANGE
            readings[name] = Reading(name, value, self.units[name], quality, now)
        return Snapshot(taken_at=now, readings=MappingProxyType(readings))


def io_counters() -> dict[str, int]:
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return {}
    return {key: int(value) for key, value in (line.split(": ") for line in text.splitlines())}


@dataclass
class Case:
    """One store under test and what it cost."""

    label: str
    policies: dict[str, ChannelPolicy]
    flush_every_s: int = 1
    page_size: int = store_schema.PAGE_SIZE
    exclusive: bool = False
    store: Store | None = None
    written: Counter[str] = field(default_factory=Counter)
    call_s: list[float] = field(default_factory=list)
    rows: int = 0
    commits: int = 0
    max_wal: int = 0
    shm_pages: int = 0
    shm_image: list[bytes] = field(default_factory=list)
    db_bytes: int = 0

    def open(self, directory: Path) -> None:
        # The page size only takes effect when the file is created, so it is swapped in just for the open.
        saved = store_schema.PAGE_SIZE
        store_schema.PAGE_SIZE = self.page_size
        try:
            self.store = Store.open(directory / f"{self.label.replace(' ', '-')}.sqlite", exclusive=self.exclusive)
        finally:
            store_schema.PAGE_SIZE = saved

    def step(self, snapshot: Snapshot, second: int) -> None:
        assert self.store is not None
        before = io_counters()
        started = time.perf_counter()
        self.store.record(snapshot, self.policies)
        if second % self.flush_every_s == 0:
            written = self.store.flush()
            self.rows += written
            self.commits += written > 0
        self.call_s.append(time.perf_counter() - started)
        after = io_counters()
        for key in ("write_bytes", "wchar"):
            if key in after:
                self.written[key] += after[key] - before[key]
        if second % WRITEBACK_S == 0:
            wal = Path(f"{self.store.path}-wal")
            self.max_wal = max(self.max_wal, wal.stat().st_size if wal.exists() else 0)
            self.shm_pages += self.shm_pages_changed()

    def shm_pages_changed(self) -> int:
        """4 KiB pages of the -shm file that changed since the last look. SQLite maps that file shared, so the
        kernel writes a changed page back to the card about every `dirty_expire` (30 s) no matter how many
        commits changed it; write()-based counters never see it."""
        assert self.store is not None
        try:
            data = Path(f"{self.store.path}-shm").read_bytes()
        except FileNotFoundError:
            return 0
        image = [data[i : i + OS_PAGE] for i in range(0, len(data), OS_PAGE)]
        changed = sum(1 for i, page in enumerate(image) if i >= len(self.shm_image) or self.shm_image[i] != page)
        self.shm_image = image
        return changed

    def close(self) -> None:
        assert self.store is not None
        self.store.close()
        self.db_bytes = self.store.path.stat().st_size  # the WAL is checkpointed into it and removed on close


def run(hours: float, sweep: bool) -> None:
    layout = load_layout(LAYOUT)
    assert layout.sim is not None
    thinned = policies_for(layout.channels)
    every = {name: ChannelPolicy(deadband=0.0, keepalive_s=1.0) for name in layout.channels}
    # "thinned" is what `hearth run` does: the layout's deadbands, commits every storage.commit_every_s, exclusive.
    commit_every = max(1, round(layout.storage.commit_every_s))
    cases = [
        Case("thinned", thinned, flush_every_s=commit_every, exclusive=True),
        Case("thinned commit 1 s", thinned),
        Case("every sample", every),
    ]
    if sweep:
        cases += [
            Case("thinned 4 KiB pages", thinned, page_size=4096),
            Case("thinned 1 KiB pages", thinned, page_size=1024),
            Case("thinned exclusive", thinned, exclusive=True),
            Case("thinned flush 2 s", thinned, flush_every_s=2),
            Case("thinned flush 5 s", thinned, flush_every_s=5),
            Case("thinned flush 30 s", thinned, flush_every_s=30),
        ]
    clock = ManualClock()
    plant = Plant(
        PlantParams(weather=WEATHER_PRESETS[layout.sim.weather]),
        start_time=clock.now(),
        seed=layout.sim.seed,
        initial_house_c=layout.sim.initial_house_c,
        initial_tank_c=layout.sim.initial_tank_c,
    )
    thermostat = Thermostat()
    converters = Converters(layout, seed=layout.sim.seed)
    seconds = int(hours * 3600)
    hp_starts = 0
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hearth-store-bench-") as tmp:
        for case in cases:
            case.open(Path(tmp))
        for second in range(1, seconds + 1):
            probes = plant.probes()
            was_charging = thermostat.charging
            inputs = thermostat.inputs(probes)
            hp_starts += inputs.heat_pump and not was_charging
            clock.advance(1.0)
            plant.step(1.0, inputs)
            snapshot = converters.snapshot(plant.probes(), clock.now())
            for case in cases:
                case.step(snapshot, second)
        assert cases[0].store is not None
        per_channel = Counter(r.channel for r in cases[0].store.readings_after(0, 10**9))
        for case in cases:
            case.close()
    elapsed = time.perf_counter() - began
    report(cases, per_channel, seconds, hp_starts, elapsed)


def report(cases: list[Case], per_channel: Counter[str], seconds: int, starts: int, took: float) -> None:
    scale = DAY_S / seconds
    have_io = bool(io_counters())
    blocks = have_io and cases[0].written["write_bytes"] > 0
    print(f"store bytes per day: {seconds / 3600:g} simulated h of layouts/bench-24.toml (24 channels at 1 Hz)")
    print(f"  heat-pump starts: {starts}; run took {took:.1f} s; figures scaled to one day")
    if not have_io:
        print("  /proc/self/io unavailable: 'written' is the database file plus the largest WAL (a lower bound)")
    print("  written = /proc/self/io " + ("write_bytes (block layer)" if blocks else "wchar (write_bytes is 0 here)"))
    print("  wchar = bytes passed to write(); shm = -shm pages changed per 30 s (mmap writeback, not in wchar)")
    print(
        f"  {'case':<20} {'written':>8} {'wchar':>7} {'+shm':>6} {'rows':>9} {'commits':>8} {'B/commit':>8} "
        f"{'db file':>8} {'µs/call p50':>11} {'p99':>5} {'max':>6}"
    )
    figures: dict[str, float] = {}
    for case in cases:
        wchar = case.written["wchar"]
        written = case.written["write_bytes"] if blocks else wchar if have_io else case.db_bytes + case.max_wal
        figures[case.label] = written * scale / 1e6
        calls = sorted(case.call_s)
        p99 = calls[min(len(calls) - 1, math.ceil(0.99 * len(calls)))]
        print(
            f"  {case.label:<20} {written * scale / 1e6:>8.1f} {wchar * scale / 1e6:>7.1f} "
            f"{case.shm_pages * OS_PAGE * scale / 1e6:>6.1f} {case.rows * scale:>9.0f} {case.commits * scale:>8.0f} "
            f"{written / max(1, case.commits):>8.0f} {case.db_bytes * scale / 1e6:>8.1f} "
            f"{statistics.median(calls) * 1e6:>11.0f} {p99 * 1e6:>5.0f} {calls[-1] * 1e6:>6.0f}"
        )
    print("  (MB/day except rows, commits per day; B/commit = written / commits; db file = its growth per day)")
    thinned, every = figures["thinned"], figures["every sample"]
    verdict = "meets" if thinned <= TARGET_MB_PER_DAY else "MISSES"
    print(f"  thinned: {thinned:.1f} MB/day written; target <= {TARGET_MB_PER_DAY:g} MB/day: {verdict}")
    print(f"  every sample: {every:.1f} MB/day written, {every / thinned:.0f}x the thinned store")
    print("  thinned rows per channel per day:")
    names = sorted(per_channel)
    for i in range(0, len(names), 6):
        print("   " + "  ".join(f"{n} {per_channel[n] * scale:>6.0f}" for n in names[i : i + 6]))


def check_noise(samples: int = 300) -> None:
    """The converter model's noise next to the real drivers on the emulated chips, at fixed plant temperatures."""
    from controller.hardware import build_hardware
    from controller.sampler import read_once
    from controller.sim.world import SimBuses

    layout = load_layout(LAYOUT)
    assert layout.sim is not None
    layout = layout.model_copy(update={"sim": layout.sim.model_copy(update={"bus_timing": False})})
    clock = ManualClock()
    world = SimBuses(layout, clock)
    hardware = build_hardware(layout, world, clock)
    converters = Converters(layout, seed=1)
    probes = world.plant.probes()
    print(f"  {'channel':<8} {'°C':>7} {'real rms':>9} {'model rms':>9}")
    for channel in hardware.channels:
        if channel.name not in ("ntc-00", "ntc-03", "ntc-04", "rtd-00"):
            continue
        temperature = probes[world.probe_for(channel.name)]
        real = [read_once(channel)[0] or math.nan for _ in range(samples)]
        model = [converters.read(channel.name, temperature) for _ in range(samples)]
        real_rms, model_rms = statistics.pstdev(real), statistics.pstdev(model)
        print(f"  {channel.name:<8} {temperature:>7.2f} {real_rms:>9.4f} {model_rms:>9.4f}")
    hardware.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours (figures are scaled to a day)")
    parser.add_argument("--sweep", action="store_true", help="also other page sizes and flush intervals (slower)")
    parser.add_argument("--check-noise", action="store_true", help="compare the converter model with the real chain")
    args = parser.parse_args()
    if args.check_noise:
        check_noise()
    run(args.hours, args.sweep)
    return 0


if __name__ == "__main__":
    sys.exit(main())
