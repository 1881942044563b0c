"""The energy package's pure parts: water properties and heat, integration (analytic cases, gaps, restarts,
replays, DST days), daily totals against a hand-computed day, rollups, starts and COP now."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controller.energy.daily import ELEC, HEAT, METER_KWH, OUTDOOR_C, counter_delta, daily_totals
from controller.energy.days import day_bounds
from controller.energy.integrate import Gap, Sample, integrate, ordered, split_at
from controller.energy.physics import heat_or_none, heat_w, water_cp, water_density
from controller.energy.rollup import month_of, rollups, season_of
from controller.energy.starts import cop_now, count_starts, start_times

BRUSSELS = ZoneInfo("Europe/Brussels")


def series(start: float, end: float, step: float, value: float) -> list[Sample]:
    n = round((end - start) / step)
    return [Sample(start + i * step, value) for i in range(n + 1)]


# ---- physics ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("t", "cp", "rho"),
    [(0, 4219.9, 999.84), (20, 4184.1, 998.21), (35, 4179.6, 993.935), (40, 4179.4, 992.22), (100, 4215.9, 958.35)],
)
def test_water_properties_at_table_points_and_between(t: float, cp: float, rho: float) -> None:
    assert water_cp(t) == pytest.approx(cp, abs=0.05)
    assert water_density(t) == pytest.approx(rho, abs=0.01)


def test_heat_from_flow_and_delta_t() -> None:
    # 12 l/min, 40 -> 35 °C: mean 37.5 °C; 0.2 l/s x 992.9 kg/m3 x 4179.5 J/(kg K) x 5 K = 4150 W.
    assert heat_w(12.0, 40.0, 35.0) == pytest.approx(0.2e-3 * water_density(37.5) * water_cp(37.5) * 5.0)
    assert heat_w(12.0, 40.0, 35.0) == pytest.approx(4150, rel=2e-3)


def test_defrost_heat_is_negative_not_clipped() -> None:
    assert heat_w(12.0, 30.0, 33.0) < 0
    assert heat_w(12.0, 30.0, 33.0) == pytest.approx(-heat_w(12.0, 33.0, 30.0))


def test_heat_has_no_value_when_an_input_has_none() -> None:
    assert heat_or_none(None, 40, 35) is None
    assert heat_or_none(12, None, 35) is None
    assert heat_or_none(0.0, 40, 35) == 0.0


# ---- integration: analytic cases ---------------------------------------------------------------------------


def test_constant_power_integrates_exactly() -> None:
    result = integrate(series(0, 3600, 1, 2000.0), max_gap_s=5)
    assert result.kwh == pytest.approx(2.0)
    assert result.covered_s == 3600 and result.gaps == ()


def test_a_ramp_integrates_exactly() -> None:
    # 0 -> 3000 W linearly over an hour: 1.5 kWh, whatever the (irregular) sample times.
    times = [0, 1, 7, 100, 101, 2000, 3599, 3600]
    result = integrate([Sample(t, 3000.0 * t / 3600) for t in times], max_gap_s=3600)
    assert result.kwh == pytest.approx(1.5)


def test_a_gap_is_marked_and_not_filled() -> None:
    samples = series(0, 1000, 1, 1000.0) + series(1600, 3600, 1, 1000.0)
    result = integrate(samples, max_gap_s=5)
    assert result.gaps == (Gap(1000, 1600),)
    assert result.kwh == pytest.approx(3000 * 1000 / 3.6e6)
    assert result.covered_s == 3000


def test_a_meter_fault_is_a_gap_of_its_own_length() -> None:
    samples = [Sample(t, None if 100 <= t <= 160 else 500.0) for t in range(0, 301)]
    result = integrate(samples, max_gap_s=5)
    assert result.gaps == (Gap(99, 161),)
    assert result.covered_s == 300 - 62


def test_a_replay_after_restart_is_not_counted_twice() -> None:
    before = series(0, 1800, 1, 1000.0)
    after = series(1900, 3600, 1, 1000.0)
    replayed = ordered(before + before[-300:] + after)  # the last 5 minutes handed in again after the restart
    assert integrate(replayed, 5).kwh == pytest.approx(integrate(before + after, 5).kwh)
    assert integrate(replayed, 5).gaps == (Gap(1800, 1900),)


@given(
    st.lists(st.tuples(st.floats(0.1, 50), st.one_of(st.none(), st.floats(-5000, 5000))), min_size=2, max_size=60),
    st.lists(st.floats(0, 1500), max_size=4),
)
def test_splitting_at_cuts_never_loses_or_adds_energy(
    steps: list[tuple[float, float | None]], cuts: list[float]
) -> None:
    t, samples = 0.0, []
    for dt, value in steps:
        t += dt
        samples.append(Sample(t, value))
    cuts = sorted(set(cuts))
    whole = integrate(samples, max_gap_s=20)
    pieces = [integrate(p, max_gap_s=20) for p in split_at(samples, cuts, max_gap_s=20)]
    assert sum(p.area for p in pieces) == pytest.approx(whole.area, abs=1e-6 * (1 + abs(whole.area)))
    assert sum(p.covered_s for p in pieces) == pytest.approx(whole.covered_s, abs=1e-6)


# ---- daily totals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("day", "hours"), [(date(2026, 3, 29), 23), (date(2026, 10, 25), 25), (date(2026, 1, 15), 24)])
def test_dst_days_have_their_own_length_and_energy(day: date, hours: int) -> None:
    start, end = day_bounds(day, BRUSSELS)
    assert end - start == hours * 3600
    # Constant 1 kW from two hours before the local day to two hours after: the day holds exactly its own hours.
    power = series(start - 7200, end + 7200, 10, 1000.0)
    totals = daily_totals({ELEC: power, HEAT: power}, BRUSSELS, max_gap_s=30, days=[day])
    (total,) = totals
    assert total.hours == hours
    assert total.elec_kwh == pytest.approx(hours)
    assert total.coverage_pct == pytest.approx(100.0)
    assert total.running_h == pytest.approx(hours)


def test_a_restart_mid_day_leaves_a_reported_gap() -> None:
    day = date(2026, 1, 15)
    start, end = day_bounds(day, BRUSSELS)
    stop = start + 10 * 3600
    power = series(start, stop, 10, 1000.0) + series(stop + 1800, end, 10, 1000.0)
    (total,) = daily_totals({ELEC: power, HEAT: power}, BRUSSELS, max_gap_s=30, days=[day])
    assert total.elec_kwh == pytest.approx(23.5)
    assert total.gap_s == pytest.approx(1800)
    assert total.coverage_pct == pytest.approx(100 * (1 - 1800 / 86400))
    assert total.starts == 0  # the same power before and after the gap: no start invented


def test_days_are_cut_at_local_midnight_with_interpolated_energy() -> None:
    a, b = date(2026, 1, 15), date(2026, 1, 16)
    midnight = day_bounds(b, BRUSSELS)[0]
    # A ramp that crosses midnight between two samples 10 minutes apart: each day gets its exact share.
    ramp = [Sample(midnight - 300, 0.0), Sample(midnight + 300, 1200.0)]
    first, second = daily_totals({ELEC: ramp}, BRUSSELS, max_gap_s=900, days=[a, b])
    assert first.elec_kwh == pytest.approx(600 / 2 * 300 / 3.6e6)
    assert second.elec_kwh == pytest.approx((600 + 1200) / 2 * 300 / 3.6e6)


def test_a_hand_computed_day() -> None:
    """Hourly samples, worked out by hand (Wh per interval):
    elec 50 W except 2000 W at 06, 07, 08 h: 05-06 1025, 06-07 2000, 07-08 2000, 08-09 1025, 20 more x 50 -> 7050;
    heat 0 except 6000, -1000 (defrost), 6000 W at 06, 07, 08 h: 3000 + 2500 + 2500 + 3000 -> 11 000;
    defrost: 06-07 and 07-08 each -500 -> 1.0 kWh; running: intervals starting at 06, 07, 08 h -> 3 h; one start;
    cost at 0.15 before 07:00 (interval middles) and 0.30 after: 6 x 0.05 x 0.15 + 1.025 x 0.15 + 2 x 0.15
    + 2 x 0.30 + 1.025 x 0.30 + 15 x 0.05 x 0.30 = 1.62375 (the 00-05 intervals: 5 x 0.05 x 0.15; 05-06 below);
    outdoor 2 °C, 8 °C at 12 h: area 24 x 2 + 6 -> mean 2.25 °C; meter counter 1000.00 -> 1007.10 kWh."""
    day = date(2026, 1, 15)
    start, _ = day_bounds(day, BRUSSELS)
    hour = [start + h * 3600 for h in range(25)]
    elec = [Sample(t, 2000.0 if h in (6, 7, 8) else 50.0) for h, t in enumerate(hour)]
    heat_by_hour = {6: 6000.0, 7: -1000.0, 8: 6000.0}
    heat = [Sample(t, heat_by_hour.get(h, 0.0)) for h, t in enumerate(hour)]
    outdoor = [Sample(t, 8.0 if h == 12 else 2.0) for h, t in enumerate(hour)]
    meter = [Sample(hour[0], 1000.0), Sample(hour[24], 1007.10)]

    def price(t: float) -> float:
        return 0.15 if datetime.fromtimestamp(t, BRUSSELS).hour < 7 else 0.30

    (total,) = daily_totals(
        {ELEC: elec, HEAT: heat, OUTDOOR_C: outdoor, METER_KWH: meter},
        BRUSSELS,
        max_gap_s=3600,
        price=price,
        days=[day],
    )
    assert total.elec_kwh == pytest.approx(7.05)
    assert total.heat_kwh == pytest.approx(11.0)
    assert total.cop == pytest.approx(11.0 / 7.05)
    assert total.defrost_kwh == pytest.approx(1.0)
    assert total.running_h == pytest.approx(3.0)
    assert total.starts == 1
    assert total.cost == pytest.approx(
        5 * 0.05 * 0.15 + 1.025 * 0.15 + 2 * 0.15 + 2 * 0.30 + 1.025 * 0.30 + 15 * 0.05 * 0.30
    )
    assert total.cost == pytest.approx(1.62375)
    assert total.means_c[OUTDOOR_C] == pytest.approx(2.25)
    assert total.coverage_pct == pytest.approx(100.0)
    assert total.meter_kwh == pytest.approx(7.10)
    assert total.meter_difference_pct == pytest.approx((7.05 - 7.10) / 7.10 * 100)
    row = total.row()
    assert row["day"] == "2026-01-15" and row["outdoor_mean_c"] == pytest.approx(2.25)


def test_a_day_with_no_electricity_has_no_cop() -> None:
    day = date(2026, 1, 15)
    start, end = day_bounds(day, BRUSSELS)
    (total,) = daily_totals({ELEC: series(start, end, 60, 0.0)}, BRUSSELS, max_gap_s=120, days=[day])
    assert total.cop is None and total.elec_kwh == 0.0
    assert total.coverage_pct == 0.0  # no heat channel: the day is not covered


def test_a_day_without_samples_is_all_gap() -> None:
    (total,) = daily_totals({}, BRUSSELS, max_gap_s=60, days=[date(2026, 1, 15)])
    assert total.gap_s == 86400 and total.elec_kwh == 0 and total.meter_kwh is None


# ---- rollups -----------------------------------------------------------------------------------------------


def test_months_and_seasons_sum_and_take_cop_of_the_sums() -> None:
    days = []
    for day, kwh in [(date(2025, 8, 31), 1.0), (date(2025, 9, 1), 2.0), (date(2025, 9, 2), 4.0)]:
        start, end = day_bounds(day, BRUSSELS)
        power = series(start, end, 600, kwh * 1000 / 24)
        heat = series(start, end, 600, kwh * 1000 / 24 * (2.0 if day.day == 1 else 4.0))
        days += daily_totals({ELEC: power, HEAT: heat}, BRUSSELS, max_gap_s=900, days=[day])
    months = rollups(days, month_of)
    assert [m.name for m in months] == ["2025-08", "2025-09"]
    assert months[1].elec_kwh == pytest.approx(6.0)
    assert months[1].cop == pytest.approx((4.0 + 16.0) / 6.0)  # not the mean of 2.0 and 4.0
    seasons = rollups(days, season_of)
    assert [s.name for s in seasons] == ["2024/25", "2025/26"]
    assert seasons[1].days == 2


# ---- starts and COP now ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("powers", "starts"),
    [
        ([0, 50, 99, 100, 2000, 2000, 30, 0], 1),  # rising *to* the starting power is a start
        ([0, 2000, 0, 2000, 0, 2000], 3),
        ([2000, 2000, 50, None, None, 2000], 1),  # a start during a gap is seen when data comes back
        ([2000, None, 2000], 0),  # a gap in a run is not a start
        ([150, 90, 150, 99.9, 100], 2),
    ],
)
def test_starts_are_rises_through_the_starting_power(powers: list[float | None], starts: int) -> None:
    samples = [Sample(float(i), p) for i, p in enumerate(powers)]
    assert count_starts(samples) == starts
    assert len(start_times(samples, 100.0)) == starts


def test_cop_now_is_undefined_when_the_compressor_is_off() -> None:
    elec = [Sample(t, 1000.0) for t in range(0, 60)] + [Sample(60, 20.0)]
    heat = [Sample(t, 3500.0) for t in range(0, 61)]
    assert cop_now(elec, heat, window_s=30, now=59) == pytest.approx(3.5)
    assert cop_now(elec, heat, window_s=30, now=60) is None
    assert cop_now([], heat, window_s=30, now=60) is None


COUNTER_CASES = [
    # (what, (t s, value kWh) ..., the counter's increase)
    ("a steady counter", [(0, 1000.0), (3600, 1002.0), (7200, 1004.5)], 4.5),
    ("a meter swapped (a step back) counts nothing", [(0, 1000.0), (3600, 1002.0), (3630, 0.1), (7200, 1.1)], 3.0),
    ("a misread value (the power read as the counter) counts nothing, nor does the step back from it",
     [(0, 1525.40), (2832, 1525.83), (2862, 2308.29), (3155, 1526.26), (3600, 1526.50)], 0.43 + 0.24),
    ("a misread low value counts nothing either", [(0, 1525.4), (30, 2.3), (60, 1525.5), (90, 1525.6)], 0.1),
    ("a fault in between is skipped", [(0, 10.0), (30, None), (60, 10.1)], 0.1),
    ("one value: no increase known", [(0, 10.0)], None),
]  # fmt: skip


@pytest.mark.parametrize(("what", "points", "delta"), COUNTER_CASES, ids=[c[0] for c in COUNTER_CASES])
def test_counter_delta(what: str, points: list[tuple[float, float | None]], delta: float | None) -> None:
    result = counter_delta([Sample(t, v) for t, v in points])
    assert result == (pytest.approx(delta) if delta is not None else None)


def test_cop_now_weighs_time_not_samples() -> None:
    """Samples bunched while the heat pump runs (a loaded bus catching up) must not outweigh the quiet minutes
    before: the meter read every 30 s, the heat twice while off and every second once running, the compressor
    at COP 3 from about 200 s. A mean of samples says 8; time-weighted, the window's heat over its electricity
    is near 3 (the ramps between sparse samples are drawn straight)."""
    elec = [Sample(t, 0.0 if t < 200 else 2000.0) for t in range(0, 301, 30)]
    heat = [Sample(0, 0.0), Sample(150, 0.0)] + [Sample(t, 6000.0) for t in range(200, 301)]
    assert cop_now(elec, heat, window_s=300, now=300) == pytest.approx(3.0, abs=0.6)
    steady_e = [Sample(t, 2000.0) for t in range(0, 301, 30)]
    steady_h = [Sample(t, 6000.0) for t in range(0, 301)]
    assert cop_now(steady_e, steady_h, window_s=300, now=300) == pytest.approx(3.0)


def test_cop_now_right_after_a_start_is_not_inflated_by_a_meter_that_reads_late() -> None:
    """Heat flows from 100 s; the meter, read every 30 s, first shows the compressor at 150 s. Counted from that
    reading, the COP is the running one (3), not heat over minutes of 0 W electricity."""
    elec = [Sample(t, 0.0 if t < 150 else 2000.0) for t in range(0, 211, 30)]
    heat = [Sample(t, 0.0 if t < 100 else 6000.0) for t in range(0, 211)]
    assert cop_now(elec, heat, window_s=300, now=210) == pytest.approx(3.0, rel=0.01)
