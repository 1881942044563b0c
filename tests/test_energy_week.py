"""A simulated day reports energy the way a live site does, and the integral of the sampled power agrees with
the emulated meter's own import counter (its float32 register) within 0.5 %."""

from __future__ import annotations

import pytest

from controller.energy.rollup import rollup
from controller.sim.week import WeekReport, simulate
from tests.simhelpers import demo_layout


@pytest.fixture(scope="module")
def cold_day() -> WeekReport:
    return simulate(demo_layout(), weather="cold", days=1.0)


def test_each_day_matches_the_meter_counter_within_half_a_percent(cold_day: WeekReport) -> None:
    assert cold_day.energy_days, "no day reported"
    for day in cold_day.energy_days:
        assert day.meter_kwh is not None and day.meter_kwh > 1.0
        assert day.meter_difference_pct is not None and abs(day.meter_difference_pct) < 0.5, day.row()
    assert cold_day.integration_error_pct is not None and abs(cold_day.integration_error_pct) < 0.5


def test_the_days_add_up_to_what_the_plant_used(cold_day: WeekReport) -> None:
    total = rollup("day", cold_day.energy_days)
    assert total.elec_kwh == pytest.approx(sum(cold_day.energy_kwh.values()), rel=5e-3)
    assert total.starts == cold_day.starts
    assert total.cop is not None and 1.5 < total.cop < 5.0
    assert total.cost is not None and total.cost > 0


def test_pv_absorbed_is_part_of_the_surplus(cold_day: WeekReport) -> None:
    assert 0.0 <= cold_day.pv_absorbed_kwh <= cold_day.pv_surplus_kwh <= cold_day.pv_kwh
    assert cold_day.pv_kwh > 0
    assert "absorbed" in cold_day.energy_summary()
