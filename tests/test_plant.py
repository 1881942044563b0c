"""Tests of the plant simulator: weather, house, tank, heat pump, energy balance, stability and speed."""

from __future__ import annotations

import itertools
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.sim.plant import (
    ACTUATORS,
    PROBES,
    Plant,
    PlantInputs,
    PlantParams,
    heat_pump_capacity_w,
    heat_pump_cop,
)
from controller.sim.weather import WEATHER_PRESETS, Weather, WeatherParams

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z
HOUR = 3600.0
DAY = 86_400.0

OFF = PlantInputs()
CHARGE = PlantInputs(heat_pump=True, store_pump=True)
DIRECT = PlantInputs(heat_pump=True, store_pump=True, distribution_pump=True)
DISCHARGE = PlantInputs(distribution_pump=True)


def steady(outdoor_c: float, **overrides: float) -> PlantParams:
    """Params with a constant outdoor temperature (no daily swing, no noise)."""
    weather = WeatherParams(mean_c=outdoor_c, daily_amplitude_c=0.0, noise_sigma_c=0.0)
    return PlantParams(weather=weather, **overrides)  # type: ignore[arg-type]


def run(plant: Plant, seconds: float, dt: float, inputs: PlantInputs) -> None:
    for _ in range(round(seconds / dt)):
        plant.step(dt, inputs)


def mixed_schedule(t_rel: float) -> PlantInputs:
    """A day of everything: charging, direct heating, discharging, element, idle (changes on 300 s edges)."""
    hour = t_rel / HOUR
    if hour < 3:
        return CHARGE
    if hour < 6:
        return DIRECT
    if hour < 9:
        return DISCHARGE
    if hour < 10:
        return PlantInputs(aux_element=True, distribution_pump=True)
    if hour < 12:
        return OFF
    if hour < 14:
        return PlantInputs(store_pump=True)  # circulation only: destratifies
    if hour < 18:
        return DIRECT
    return DISCHARGE if hour < 21 else OFF


# --- inputs and naming ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        ({}, PlantInputs()),
        ({"heat-pump": True, "store-pump": True}, CHARGE),
        ({name: True for name in ACTUATORS}, PlantInputs(True, True, True, True)),
        ({"distribution-pump": True, "aux-element": False}, DISCHARGE),
    ],
)
def test_inputs_from_mapping(mapping: dict[str, bool], expected: PlantInputs) -> None:
    assert PlantInputs.from_mapping(mapping) == expected


def test_inputs_from_mapping_rejects_unknown_names() -> None:
    with pytest.raises(KeyError, match="heat-pmup"):
        PlantInputs.from_mapping({"heat-pmup": True})


def test_probes_cover_every_name_and_reject_unknown() -> None:
    plant = Plant(start_time=T0)
    assert tuple(plant.probes()) == PROBES
    assert plant.probe("tank-top") == 45.0
    with pytest.raises(KeyError, match="tank-tpo"):
        plant.probe("tank-tpo")


@pytest.mark.parametrize("dt", [-1.0, math.nan, math.inf])
def test_step_rejects_bad_dt(dt: float) -> None:
    with pytest.raises(ValueError):
        Plant(start_time=T0).step(dt, OFF)


# --- weather --------------------------------------------------------------------------------------


def test_determinism_for_a_seed() -> None:
    def day(seed: int) -> dict[str, float]:
        plant = Plant(start_time=T0, seed=seed)
        for i in range(288):
            plant.step(300.0, mixed_schedule(i * 300.0))
        return plant.probes()

    assert day(7) == day(7)
    assert day(7)["outdoor"] != day(8)["outdoor"]


@pytest.mark.parametrize("name", sorted(WEATHER_PRESETS))
def test_weather_preset_smooth_and_in_range(name: str) -> None:
    params = WEATHER_PRESETS[name]
    weather = Weather(params, seed=3)
    spread = params.daily_amplitude_c + 5.0 * (params.noise_sigma_c + params.drift_sigma_c)
    values = [weather.outdoor_c(T0 + i * 60.0) for i in range(30 * 24 * 60)]  # 30 days, every minute
    assert all(abs(v - params.mean_c) <= spread for v in values)
    # OU noise is continuous but rough; a front moving 0.2 K a minute is already brisk.
    assert max(abs(b - a) for a, b in itertools.pairwise(values)) < 0.2  # K per minute
    assert abs(sum(values) / len(values) - params.mean_c) < 1.0 + 2.0 * params.drift_sigma_c
    assert min(values) < params.mean_c - 0.5 * params.daily_amplitude_c  # it does swing


@pytest.mark.parametrize(("coldest_hour", "utc_offset"), [(5.0, 0.0), (4.0, 1.0), (6.5, -5.0), (3.0, 10.0)])
def test_coldest_around_the_configured_local_hour(coldest_hour: float, utc_offset: float) -> None:
    params = WeatherParams(mean_c=0.0, daily_amplitude_c=4.0, coldest_hour_local=coldest_hour, utc_offset_h=utc_offset)
    weather = Weather(params, seed=1)
    by_hour = [0.0] * 24
    for day in range(60):
        for hour in range(24):
            by_hour[hour] += weather.outdoor_c(T0 + day * DAY + hour * HOUR)
    coldest_utc = min(range(24), key=by_hour.__getitem__)
    local = (coldest_utc + utc_offset) % 24
    assert min(abs(local - coldest_hour), 24 - abs(local - coldest_hour)) <= 1.0


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**31),
    offsets=st.lists(st.floats(-30 * DAY, 30 * DAY, allow_nan=False), min_size=1, max_size=15),
)
def test_weather_is_a_pure_function_of_seed_and_time(seed: int, offsets: list[float]) -> None:
    params = WEATHER_PRESETS["mild"]
    forward = Weather(params, seed=seed)
    backward = Weather(params, seed=seed)
    times = [T0 + x for x in offsets]
    ahead = [forward.outdoor_c(t) for t in times]
    behind = [backward.outdoor_c(t) for t in reversed(times)][::-1]
    assert ahead == behind
    assert [Weather(params, seed=seed).outdoor_c(t) for t in times] == ahead


# --- house ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("ua", "capacitance"), [(180.0, 20e6), (120.0, 25e6), (250.0, 15e6)])
def test_house_cools_toward_outdoor_with_time_constant_c_over_ua(ua: float, capacitance: float) -> None:
    params = steady(
        0.0,
        house_ua_w_per_k=ua,
        house_capacitance_j_per_k=capacitance,
        internal_gain_w=0.0,
        solar_gain_peak_w=0.0,
        tank_loss_ua_w_per_k=0.0,
    )
    plant = Plant(params, start_time=T0, initial_house_c=20.0)
    tau = capacitance / ua
    run(plant, tau, 60.0, OFF)
    # After one time constant the excess over outdoor has fallen to 1/e (explicit Euler error << 1 %).
    assert plant.state.house_c == pytest.approx(20.0 * math.exp(-1.0), rel=0.01)


# --- heat pump and tank ---------------------------------------------------------------------------


def test_charging_raises_the_top_first_and_stays_stratified() -> None:
    plant = Plant(steady(-5.0), start_time=T0, initial_tank_c=40.0)
    run(plant, 600.0, 10.0, CHARGE)
    layers = plant.tank_layers_c()
    assert layers[0] - 40.0 > 3.0 * (layers[-1] - 40.0)
    assert plant.probe("hp-leaving") > plant.probe("hp-entering") + 4.0  # ~6 kW at 0.3 kg/s
    assert plant.probe("hp-entering") == pytest.approx(layers[-1], abs=0.1)
    run(plant, 1800.0, 10.0, CHARGE)
    layers = plant.tank_layers_c()
    assert all(a >= b for a, b in itertools.pairwise(layers))
    assert layers[0] > layers[-1] > 40.0


def test_heat_pump_power_ramps_up_over_a_minute_after_start() -> None:
    plant = Plant(steady(2.0), start_time=T0, initial_tank_c=30.0)
    electric = []
    for _ in range(120):
        plant.step(1.0, CHARGE)
        electric.append(plant.heat_pump_electric_w)
    full = electric[-1]
    assert full > 1000.0
    assert electric[0] < 0.05 * full
    assert electric[29] == pytest.approx(0.5 * full, rel=0.1)
    assert all(b >= a for a, b in itertools.pairwise(electric[:60]))
    assert electric[65] == pytest.approx(full, rel=0.02)
    assert plant.compressor_starts == 1


@pytest.mark.parametrize(
    ("outdoor_c", "leaving_c", "low", "high"),
    [
        (7.0, 35.0, 3.5, 4.5),
        (2.0, 35.0, 3.0, 3.8),
        (-7.0, 35.0, 2.4, 3.2),
        (-7.0, 55.0, 1.8, 2.5),
        (-20.0, 55.0, 1.0, 2.0),
    ],
)
def test_cop_table(outdoor_c: float, leaving_c: float, low: float, high: float) -> None:
    assert low <= heat_pump_cop(PlantParams(), outdoor_c, leaving_c) <= high


@pytest.mark.parametrize(("outdoor_c", "low_w", "high_w"), [(7.0, 7500, 8500), (-7.0, 5500, 7000), (-15.0, 4500, 6000)])
def test_capacity_table(outdoor_c: float, low_w: float, high_w: float) -> None:
    assert low_w <= heat_pump_capacity_w(PlantParams(), outdoor_c, 30.0) <= high_w


def test_cop_falls_as_outdoor_temperature_falls() -> None:
    cops = []
    for outdoor in (15.0, 7.0, 0.0, -7.0, -15.0):
        plant = Plant(steady(outdoor), start_time=T0, initial_tank_c=35.0)
        run(plant, 120.0, 10.0, CHARGE)
        cops.append(plant.heat_pump_heat_w / plant.heat_pump_electric_w)
    assert cops == sorted(cops, reverse=True)
    assert cops[0] - cops[-1] > 1.0


def test_heat_pump_cuts_out_at_its_leaving_water_limit() -> None:
    params = steady(0.0)
    plant = Plant(params, start_time=T0, initial_tank_c=45.0)
    leaving = []
    for _ in range(4 * 360):
        plant.step(10.0, CHARGE)
        leaving.append(plant.probe("hp-leaving"))
    assert not plant.compressor_running
    assert plant.state.high_limit_tripped
    assert max(leaving) <= params.hp_max_leaving_c
    assert max(plant.tank_layers_c()) <= params.hp_max_leaving_c
    assert plant.heat_pump_electric_w == 0.0


@pytest.mark.parametrize(
    ("inputs", "running"),
    [
        (PlantInputs(heat_pump=True), False),  # flow switch open: no compressor
        (PlantInputs(heat_pump=True, distribution_pump=True), False),
        (PlantInputs(store_pump=True), False),
        (CHARGE, True),
        (DIRECT, True),
    ],
)
def test_no_store_flow_no_compressor(inputs: PlantInputs, running: bool) -> None:
    plant = Plant(steady(0.0), start_time=T0, initial_tank_c=35.0)
    run(plant, 300.0, 10.0, inputs)
    assert plant.compressor_running is running
    assert (plant.heat_pump_electric_w > 0.0) is running
    assert (plant.heat_pump_electric_kwh > 0.0) is running


def test_aux_element_heats_the_top_and_obeys_its_thermostat() -> None:
    params = steady(0.0)
    plant = Plant(params, start_time=T0, initial_tank_c=40.0)
    run(plant, 600.0, 10.0, PlantInputs(aux_element=True))
    assert plant.aux_electric_w == params.aux_element_w
    assert plant.tank_layers_c()[0] > plant.tank_layers_c()[-1] + 5.0
    run(plant, 8 * HOUR, 60.0, PlantInputs(aux_element=True))
    assert max(plant.tank_layers_c()) <= params.aux_thermostat_c + 0.5


def test_distribution_heats_the_house_and_cools_the_tank() -> None:
    plant = Plant(steady(-5.0), start_time=T0, initial_house_c=18.0, initial_tank_c=50.0)
    run(plant, HOUR, 10.0, DISCHARGE)
    assert plant.state.house_c > 18.3
    assert plant.tank_layers_c()[-1] < 40.0
    assert plant.probe("dist-supply") > plant.probe("dist-return") > plant.probe("house-air")
    assert plant.house_heat_delivered_kwh > 5.0


def test_full_tank_carries_the_house_for_a_plausible_time() -> None:
    """300 l from 55 °C down to ~house temperature is ~11 kWh; the house at -5 °C needs ~4 kW net of gains."""
    plant = Plant(steady(-5.0), start_time=T0, initial_house_c=20.0, initial_tank_c=55.0)
    heating, elapsed = True, 0.0
    while plant.state.house_c >= 19.0 and elapsed < DAY:
        house = plant.state.house_c
        heating = house < 20.0 or (heating and house <= 21.0)
        plant.step(60.0, DISCHARGE if heating else OFF)
        elapsed += 60.0
    assert 2.5 * HOUR < elapsed < 8 * HOUR


# --- energy, stability, physical bounds -----------------------------------------------------------


def test_energy_balance_closes_over_a_day_of_mixed_operation() -> None:
    plant = Plant(PlantParams(), start_time=T0, seed=5, initial_house_c=19.5, initial_tank_c=42.0)
    stored0 = plant.house_energy_kwh() + plant.tank_energy_kwh()
    for i in range(288):
        plant.step(300.0, mixed_schedule(i * 300.0))
    stored = plant.house_energy_kwh() + plant.tank_energy_kwh() - stored0
    inputs = plant.heat_pump_heat_kwh + plant.aux_electric_kwh + plant.free_gains_kwh
    net = inputs - plant.envelope_loss_kwh
    assert plant.heat_pump_heat_kwh > 10.0 and plant.aux_electric_kwh > 1.0  # the day really was mixed
    assert abs(stored - net) <= 0.01 * inputs
    assert abs(stored - net) <= 1e-9 * inputs  # in fact conserved to rounding


def test_same_day_whether_stepped_at_1_s_or_300_s() -> None:
    fine = Plant(start_time=T0, seed=2)
    coarse = Plant(start_time=T0, seed=2)
    for i in range(288):
        inputs = mixed_schedule(i * 300.0)
        run(fine, 300.0, 1.0, inputs)
        coarse.step(300.0, inputs)
    assert fine.time == coarse.time == T0 + DAY
    assert fine.state.house_c == pytest.approx(coarse.state.house_c, abs=0.05)
    for a, b in zip(fine.tank_layers_c(), coarse.tank_layers_c(), strict=True):
        assert a == pytest.approx(b, abs=0.5)
    assert fine.heat_pump_electric_kwh == pytest.approx(coarse.heat_pump_electric_kwh, rel=0.02)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 1000),
    preset=st.sampled_from(sorted(WEATHER_PRESETS)),
    tank_c=st.floats(15.0, 60.0),
    steps=st.lists(
        st.tuples(st.floats(0.5, 300.0), st.booleans(), st.booleans(), st.booleans(), st.booleans()),
        min_size=1,
        max_size=40,
    ),
)
def test_random_operation_stays_physical(
    seed: int, preset: str, tank_c: float, steps: list[tuple[float, bool, bool, bool, bool]]
) -> None:
    plant = Plant(PlantParams(weather=WEATHER_PRESETS[preset]), start_time=T0, seed=seed, initial_tank_c=tank_c)
    coldest = plant.probe("outdoor")
    for dt, *states in steps:
        plant.step(dt, PlantInputs(*states))
        readings = plant.probes()
        coldest = min(coldest, readings["outdoor"])
        assert all(math.isfinite(v) for v in readings.values())
        assert all(coldest - 1.0 <= t <= 95.0 for t in plant.tank_layers_c())
        assert -40.0 < readings["house-air"] < 40.0
        assert plant.heat_pump_electric_w >= 0.0 and plant.heat_pump_heat_w >= 0.0


# --- a control loop -------------------------------------------------------------------------------


def test_thermostat_holds_the_house_through_a_cold_week_quickly() -> None:
    plant = Plant(PlantParams(weather=WEATHER_PRESETS["cold"]), start_time=T0, seed=11)
    heating = False
    low = high = plant.state.house_c
    started = time.process_time()
    for _ in range(7 * 2880):  # a week at dt = 30 s
        house = plant.state.house_c
        heating = house < 20.0 or (heating and house <= 21.0)
        plant.step(30.0, DIRECT if heating else OFF)
        low, high = min(low, plant.state.house_c), max(high, plant.state.house_c)
    cpu = time.process_time() - started
    print(f"cold week at dt=30 s: {cpu:.2f} s CPU, house {low:.2f}..{high:.2f} °C, "
          f"COP {plant.heat_pump_heat_kwh / plant.heat_pump_electric_kwh:.2f}")  # fmt: skip
    assert low >= 19.0 and high <= 22.0
    assert cpu < 5.0
