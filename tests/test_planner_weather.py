"""The outdoor air a plan assumes: the ATN's weather forecast while it is fresh and covers the present, persistence
from the outdoor sensor otherwise (and beyond the forecast's end); the reason says which; a new forecast, or the
one in use going stale, re-plans."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from controller.control import policy
from controller.control.tariff import Price
from controller.control.types import WeatherForecast, WeatherPoint
from controller.planner import forecast as fc
from controller.planner import local
from controller.planner.base import WEATHER_MAX_AGE_S, OutdoorHistory, freshness
from controller.planner.weather import OFFSET_FADE_S, outdoor
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
PARAMS = LAYOUT.control
ZONE = LAYOUT.site.timezone
T0 = 1_767_258_600.0  # 2026-01-01T09:10Z
HP = "heat-pump"
TIMES = fc.step_times(T0, 192)


def forecast(
    values: list[float], *, start: float = T0 - 1800, received: float = T0, hours: float = 1.0
) -> WeatherForecast:
    points = tuple(
        WeatherPoint(start=start + i * hours * 3600, end=start + (i + 1) * hours * 3600, outdoor_c=v)
        for i, v in enumerate(values)
    )
    return WeatherForecast(received_at=received, issued_at=received - 600, points=points)


FRESHNESS = [
    ("none", None, "no ATN weather forecast"),
    ("fresh", forecast([0.0] * 24), None),
    ("13 h old", forecast([0.0] * 48, received=T0 - 13 * 3600), "is 13 h old (at most 12 h)"),
    ("starts tomorrow", forecast([0.0] * 24, start=T0 + 86400), "does not cover now"),
    ("ended yesterday", forecast([0.0] * 24, start=T0 - 2 * 86400), "does not cover now"),
]


@pytest.mark.parametrize(("what", "weather", "why"), FRESHNESS, ids=[f[0] for f in FRESHNESS])
def test_freshness(what: str, weather: WeatherForecast | None, why: str | None) -> None:
    got = freshness(weather, T0)
    assert got is None if why is None else (got is not None and why in got)


def test_a_fresh_forecast_meets_the_sensor_now_and_persistence_after_its_end() -> None:
    """12 h at -5 °C while the sensor says -3 °C: the first step is near -3, the offset fades over 6 h, and past
    the forecast's end the persistence forecast (the sensor's -3 °C, no history yet) takes over."""
    out, note = outdoor(TIMES, T0, -3.0, OutdoorHistory(), forecast([-5.0] * 12))
    assert out[0] == -3.0  # the step holding now: the sensor's reading
    assert out[4] == pytest.approx(-5.0 + 2.0 * math.exp(-(TIMES[4] + 450 - T0) / OFFSET_FADE_S))
    assert -5.0 < out[40] < -4.6  # 10 h on: the offset has mostly faded
    covered = int(np.sum(TIMES + 450 < T0 - 1800 + 12 * 3600))
    assert np.all(out[covered:] == -3.0)
    assert note == f"weather: the ATN's forecast issued 09:00 UTC ({covered / 4:g} h of the plan, persistence after)"


@pytest.mark.parametrize(
    ("what", "weather", "words"), [f for f in FRESHNESS if f[2] is not None], ids=[f[0] for f in FRESHNESS if f[2]]
)
def test_stale_or_absent_gives_persistence_and_says_why(what: str, weather: WeatherForecast | None, words: str) -> None:
    persistence = fc.outdoor_forecast(TIMES, T0, 4.0, OutdoorHistory())
    out, note = outdoor(TIMES, T0, 4.0, OutdoorHistory(), weather)
    assert np.array_equal(out, persistence)
    assert note.startswith("weather: persistence (") and words in note


@settings(max_examples=60, deadline=None)
@example(values=[0.0, 1.0], sensor=0.0, age_h=12.0)  # received 12 h ago, issued 12 h 10 min ago: stale
@given(
    values=st.lists(st.floats(-40, 40), min_size=1, max_size=72),
    sensor=st.floats(-40, 40),
    age_h=st.floats(0, 24),
)
def test_forecast_where_it_covers_persistence_elsewhere(values: list[float], sensor: float, age_h: float) -> None:
    weather = forecast(values, received=T0 - age_h * 3600)
    out, _ = outdoor(TIMES, T0, sensor, OutdoorHistory(), weather)
    persistence = fc.outdoor_forecast(TIMES, T0, sensor, OutdoorHistory())
    assert np.all(np.isfinite(out))
    end = T0 - 1800 + len(values) * 3600
    for i, t in enumerate(TIMES):
        mid = t + 450
        if age_h * 3600 + 600 > WEATHER_MAX_AGE_S or mid >= end:  # issued 10 min before it was received
            assert out[i] == persistence[i]
        else:
            value = values[int((mid - (T0 - 1800)) // 3600)]
            low, high = sorted((value, value + (sensor - values[0])))
            assert low - 1e-9 <= out[i] <= high + 1e-9  # between the forecast and the forecast moved to the sensor


def inputs(outdoor_c: float = -5.0) -> policy.PolicyInputs:
    return policy.PolicyInputs(
        house_c=20.5, outdoor_c=outdoor_c, tank_top_c=45.0, tank_mid_c=40.0, tank_bottom_c=35.0,
        price=Price.NORMAL, price_reason="normal tariff", occupied=True,
    )  # fmt: skip


def decide(state: local.PlannerState, now: float, weather: WeatherForecast | None):  # type: ignore[no-untyped-def]
    return local.decide(state, policy.PolicyState(), inputs(), PARAMS, now, ZONE, None, weather=weather)


def test_the_plan_follows_the_atn_forecast_and_the_reason_says_so() -> None:
    cold_front = forecast([-5.0] * 6 + [-15.0] * 43)
    state, decision = decide(local.PlannerState(), T0, cold_front)
    assert state.plan is not None and state.weather_used == T0
    assert float(state.plan.forecast.outdoor_c[60]) == pytest.approx(-15.0, abs=0.5)
    assert "weather: the ATN's forecast issued 09:00 UTC (48 h of the plan)" in decision.commands[HP].reason
    blind, decision = decide(local.PlannerState(), T0, None)
    assert blind.plan is not None and float(blind.plan.forecast.outdoor_c[60]) == pytest.approx(-5.0)
    assert "weather: persistence (no ATN weather forecast)" in decision.commands[HP].reason


def test_a_different_forecast_or_the_used_one_going_stale_replans() -> None:
    first = forecast([-5.0] * 72)
    state, _ = decide(local.PlannerState(), T0, first)
    same, _ = decide(state, T0 + 3600, first)
    assert same.replans == 1
    agreeing = forecast([-5.3] * 72, received=T0 + 3600)  # hourly re-issues that agree cost no re-plan
    kept, decision = decide(state, T0 + 3600, agreeing)
    assert kept.replans == 1 and kept.weather_used == T0 + 3600
    assert (
        "weather: the ATN's forecast issued 10:00 UTC agrees with the plan's within 1 K" in decision.commands[HP].reason
    )
    colder = forecast([-5.0] * 6 + [-9.0] * 66, received=T0 + 3600)
    renewed, _ = decide(state, T0 + 3600, colder)
    assert renewed.replans == 2 and renewed.weather_used == T0 + 3600
    stale, decision = decide(state, T0 + WEATHER_MAX_AGE_S + 3600, first)
    assert stale.replans == 2 and stale.weather_used is None
    assert "weather: persistence (the ATN's weather forecast is 13 h old" in decision.commands[HP].reason
