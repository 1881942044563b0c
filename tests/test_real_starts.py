"""Anti-short-cycle timed from the compressor's real start (its meter's power rising through the starting
power) where there is a meter, from the relay's read-back where there is none; the reason says which."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.actuator_model import ActuatorModel
from controller.control.interlocks import HOUR_S, ActuatorState, SafetyInputs, apply_interlocks
from controller.control.types import Command, Source
from controller.energy.integrate import Sample
from controller.energy.starts import RealRun, follow_power, start_times
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
PARAMS = LAYOUT.control
HP = "heat-pump"
MODEL = ActuatorModel(safe_on=False, min_on_s=300, min_off_s=180, max_starts_per_hour=3)
NOMINAL = SafetyInputs(tank_c=(45.0, 40.0, 35.0), water_c=(45.0,), outdoor_c=0.0)
STARTING_W = 100.0


def decide(state: ActuatorState, on: bool, now: float) -> Command:
    asked = {HP: Command(actuator=HP, on=on, source=Source.LOCAL, reason="test")}
    return apply_interlocks(asked, {HP: state}, {HP: MODEL}, NOMINAL, PARAMS, now).commands[HP]


def metered(state: ActuatorState, powers: list[tuple[float, float | None]]) -> ActuatorState:
    real = state.real
    for t, power in powers:
        real = follow_power(real, power, STARTING_W, t)
    return replace(state, real=real)


def test_without_a_meter_minimum_on_time_runs_from_the_relay() -> None:
    command = decide(ActuatorState(True, 0.0, (0.0,)), False, 200.0)
    assert command.on and command.reason == "minimum on-time 300 s (from the relay's read-back)"


def test_with_a_meter_minimum_on_time_runs_from_the_real_start() -> None:
    # Enabled at 0; the compressor started 40 s later. At 320 s the relay has been on 320 s, the compressor 280 s.
    state = metered(ActuatorState(True, 0.0, (0.0,)), [(0.0, 20.0), (20.0, 30.0), (40.0, 1800.0), (320.0, 1900.0)])
    command = decide(state, False, 320.0)
    assert command.on and command.reason == "minimum on-time 300 s (from the meter's power)"
    assert not decide(state, False, 341.0).on


def test_an_enable_whose_compressor_never_started_may_drop() -> None:
    state = metered(ActuatorState(True, 0.0, (0.0,)), [(0.0, 20.0), (60.0, 25.0)])
    assert not decide(state, False, 60.0).on


def test_minimum_off_time_runs_from_the_later_of_relay_off_and_power_falling() -> None:
    # The relay dropped at 1000 s but the compressor ran down until 1030 s.
    state = ActuatorState(False, 1000.0, (0.0,), RealRun(True, 40.0, (40.0,), True, 1800.0))
    state = metered(state, [(1030.0, 30.0)])
    held = decide(state, True, 1200.0)
    assert not held.on and held.reason == "minimum off-time 180 s (from the meter's power)"
    assert decide(state, True, 1211.0).on


def test_starts_the_heat_pump_made_by_itself_count_and_drop_the_enable() -> None:
    # Enabled once, the compressor cycled three times by itself; now stopped: the enable is dropped.
    powers = [(0.0, 20.0), (60.0, 1800.0), (600.0, 20.0), (900.0, 1800.0), (1500.0, 20.0), (1800.0, 1800.0)]
    state = metered(ActuatorState(True, 0.0, (0.0,)), [*powers, (2400.0, 20.0)])
    command = decide(state, True, 2400.0)
    assert not command.on
    assert (
        command.reason
        == "at most 3 starts per hour (real starts, from the meter's power): enable dropped while stopped"
    )


def test_a_meter_gap_falls_back_to_the_relay_and_invents_no_start() -> None:
    state = metered(ActuatorState(True, 0.0, (0.0,)), [(0.0, 20.0), (60.0, 1800.0), (90.0, None)])
    assert state.real is not None and not state.real.metered and state.real.starts == (60.0,)
    command = decide(state, False, 200.0)
    assert command.on and command.reason == "minimum on-time 300 s (from the relay's read-back)"
    back = metered(state, [(120.0, 1800.0)])
    assert back.real is not None and back.real.starts == (60.0,)  # still the same run, not a new start


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(1.0, 400.0),  # seconds to the next tick
            st.sampled_from([True, True, True, False]),  # what the policy (or anyone) asks for
            st.sampled_from(["toggle", "toggle", "keep"]),  # what the compressor does meanwhile, if enabled
            st.sampled_from([True, True, True, False]),  # whether the meter answers at the next tick
        ),
        min_size=1,
        max_size=120,
    )
)
def test_no_sequence_starts_the_compressor_more_often_than_allowed(
    steps: list[tuple[float, bool, str, bool]],
) -> None:
    """Whatever is asked, whatever the heat pump's own controller does while enabled and whenever the meter
    drops out, the power readings never show more than max_starts_per_hour rises through the starting power in
    any hour. (A compressor needs its enable: it starts only while the relay is on.)"""
    state = ActuatorState(False, -HOUR_S)
    now, running = 0.0, False
    readings: list[Sample] = []
    for dt, asked, behaviour, answers in steps:
        now += dt
        if not state.on:
            running = False
        elif behaviour == "toggle":
            running = not running
        power = (1800.0 if running else 20.0) if answers else None
        readings.append(Sample(now, power))
        state = metered(state, [(now, power)])
        state = state.after(decide(state, asked, now).on, now)
    starts = start_times(readings, STARTING_W)
    for t in starts:
        in_hour = [s for s in starts if t - HOUR_S < s <= t]
        assert len(in_hour) <= MODEL.max_starts_per_hour, (t, starts)


@pytest.mark.parametrize("power", [None, 20.0, 1800.0])
def test_the_first_reading_invents_no_start(power: float | None) -> None:
    run = follow_power(None, power, STARTING_W, 5.0)
    assert run.starts == () and run.since == 5.0
