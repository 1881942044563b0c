"""Daily totals from the store: a simulated local day recorded through the store's own thinning (deadband and
keep-alive), closed into the store, matching the emulated meter's counter within 0.5 %, kept after retention
has pruned the readings, and shown by `hearth energy --store`."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo

import pytest

from controller.cli import main
from controller.energy.book import close_days, recent_days
from controller.energy.days import day_bounds, local_day
from controller.readings import Quality, Reading, Snapshot
from controller.sim.energy_tally import float32
from controller.sim.plant import Plant, PlantInputs, PlantParams
from controller.sim.weather import WEATHER_PRESETS
from controller.sim.world import METER_START_KWH
from controller.store import Store
from controller.store.recorder import policies_for
from tests.simhelpers import ROOT, demo_layout

LAYOUT = demo_layout()
ZONE = ZoneInfo(LAYOUT.site.timezone)
STEP_S = 10.0


def snapshot(plant: Plant, now: float) -> Snapshot:
    probes, flows = plant.probes(), plant.flows()
    values = {
        "hp-power": (plant.heat_pump_electric_w, "W"),
        "hp-energy": (float32(METER_START_KWH + plant.heat_pump_electric_kwh), "kWh"),
        "hp-flow": (flows["hp-flow"], "l/min"),
        "hp-leaving": (probes["hp-leaving"], "degC"),
        "hp-entering": (probes["hp-entering"], "degC"),
        "outdoor": (probes["outdoor"], "degC"),
        "house-air": (probes["house-air"], "degC"),
    }
    readings = {n: Reading(n, v, unit, Quality.OK, now) for n, (v, unit) in values.items()}
    return Snapshot(now, MappingProxyType(readings))


@pytest.fixture(scope="module")
def recorded_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Plant, float, float]]:
    """Yesterday (local), simulated and recorded: the heat pump runs 50 minutes of every two hours."""
    yesterday = local_day(time.time(), ZONE) - timedelta(days=1)
    start, end = day_bounds(yesterday, ZONE)
    plant = Plant(PlantParams(weather=WEATHER_PRESETS["cold"]), start_time=start, seed=3, initial_house_c=20.0)
    path = tmp_path_factory.mktemp("energy") / "store.sqlite"
    policies = policies_for(LAYOUT.channels)
    with Store.open(path, retention_days=1, keep_unacknowledged=False) as store:
        now = start
        meter_start = plant.heat_pump_electric_kwh
        while now < end:
            store.record(snapshot(plant, now), policies)
            if int(now) % 60 == 0:
                store.flush()
            on = (now - start) % 7200 < 3000
            plant.step(STEP_S, PlantInputs(heat_pump=on, store_pump=on, distribution_pump=True))
            now += STEP_S
        store.record(snapshot(plant, now), policies)
        store.flush()
        yield path, plant, plant.heat_pump_electric_kwh - meter_start, end


def test_a_recorded_day_matches_the_meter_counter(recorded_day: tuple[Path, Plant, float, float]) -> None:
    path, plant, used_kwh, end = recorded_day
    with Store.open(path, retention_days=1, keep_unacknowledged=False) as store:
        assert close_days(store, LAYOUT, end + 600) == 1
        day = recent_days(store, LAYOUT, end + 600, 2)[0]
    assert day.meter_kwh == pytest.approx(used_kwh, rel=1e-4)
    assert day.meter_difference_pct is not None and abs(day.meter_difference_pct) < 0.5, day.row()
    assert day.elec_kwh == pytest.approx(used_kwh, rel=5e-3)
    assert day.heat_kwh == pytest.approx(plant.heat_pump_heat_kwh, rel=0.02)
    assert day.starts == plant.compressor_starts >= 6
    assert day.coverage_pct > 99.0
    assert day.cop is not None and 1.5 < day.cop < 5
    assert day.cost is not None and day.cost > 0


def test_totals_outlive_the_readings(recorded_day: tuple[Path, Plant, float, float]) -> None:
    path, _, _, end = recorded_day
    with Store.open(path, retention_days=1, keep_unacknowledged=False) as store:
        close_days(store, LAYOUT, end + 600)
        before = recent_days(store, LAYOUT, end + 600, 2)[0]
        store.prune(end + 5 * 86400)
        assert store.history("hp-power", end - 86400, end) == []
        after = recent_days(store, LAYOUT, end + 600, 2)[0]
    assert after == before


def test_hearth_energy_reads_a_store(
    recorded_day: tuple[Path, Plant, float, float], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _, _, _ = recorded_day
    layout = str(ROOT / "layouts/demo.toml")
    assert main(["energy", "--store", str(path), "--layout", layout, "--days", "3", "--csv", "-"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 3
    yesterday = rows[1]
    assert float(yesterday["elec_kwh"]) > 1 and float(yesterday["cop"]) > 1.5
    # Written for people: at most 4 decimals (no float noise like -2.08e-07), never '-0'.
    figures = [v for row in rows for v in row.values() if v and v[0] in "-0123456789" and "." in v]
    assert figures and all(len(v.split(".")[1]) <= 4 and not v.startswith("-0.0000") for v in figures)
    assert not [v for row in rows for v in row.values() if "e-" in v or v in ("-0", "-0.0")]
    assert main(["energy", "--store", str(path), "--layout", layout, "--days", "3"]) == 0
    table = capsys.readouterr().out
    assert "COP" in table and "month " in table and "season " in table


def test_hearth_energy_without_a_controller_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["energy", "--socket", str(tmp_path / "none.sock")]) == 3
    assert "no controller answers" in capsys.readouterr().err


def test_hearth_energy_on_a_missing_store_file_says_so_and_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope" / "x.sqlite"
    layout = str(ROOT / "layouts/demo.toml")
    assert main(["energy", "--store", str(missing), "--layout", layout]) == 4
    assert f"no store file at {missing}" in capsys.readouterr().err
    assert not missing.parent.exists()  # it used to make the directory and an empty store, and print 30 zero days
