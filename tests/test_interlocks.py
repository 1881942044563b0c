"""Interlocks: tables of cases and properties over any command sequence from any source."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.actuator_model import ActuatorModel
from controller.control.interlocks import HOUR_S, ActuatorState, SafetyInputs, apply_interlocks
from controller.control.params import ControlParams
from controller.control.types import Command, Source
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
CONFIGS: Mapping[str, ActuatorModel] = LAYOUT.actuator_models()
PARAMS: ControlParams = LAYOUT.control
HP, STORE, DIST, AUX = "heat-pump", "store-pump", "distribution-pump", "aux-element"
NOMINAL = SafetyInputs(tank_c=(45.0, 40.0, 35.0), water_c=(45.0, 40.0, 35.0, 30.0, 30.0, 35.0, 30.0), outdoor_c=0.0)
T0 = 1_000_000.0


def ask(on: Mapping[str, bool], source: Source = Source.LOCAL) -> dict[str, Command]:
    return {name: Command(actuator=name, on=value, source=source, reason="test") for name, value in on.items()}


def states(**kwargs: tuple[bool, float]) -> dict[str, ActuatorState]:
    """Actuator states as (on, seconds since the last change); all others off for an hour."""
    result = {name: ActuatorState(False, T0 - 3600) for name in CONFIGS}
    for key, (on, ago) in kwargs.items():
        name = key.replace("_", "-")
        result[name] = ActuatorState(on, T0 - ago, (T0 - ago,) if on else ())
    return result


ALL_OFF = {HP: False, STORE: False, DIST: False, AUX: False}

CASES = [
    # (description, requested, actuator states, safety inputs, expected final states, expected holds {name: interlock})
    (
        "heat pump waits for the store pump's pre-run, which starts",
        {**ALL_OFF, HP: True, STORE: True},
        states(),
        NOMINAL,
        {HP: False, STORE: True},
        {HP: "prerun"},
    ),
    (
        "heat pump starts once the store pump has run 30 s",
        {**ALL_OFF, HP: True, STORE: True},
        states(store_pump=(True, 31)),
        NOMINAL,
        {HP: True, STORE: True},
        {},
    ),
    (
        "store pump kept on for the heat pump's pre-run even if asked off",
        {**ALL_OFF, HP: True},
        states(store_pump=(True, 5)),
        NOMINAL,
        {HP: False, STORE: True},
        {HP: "prerun", STORE: "sequencing"},
    ),
    (
        "heat pump held on for its minimum on-time",
        {**ALL_OFF},
        states(heat_pump=(True, 100), store_pump=(True, 200)),
        NOMINAL,
        {HP: True, STORE: True},
        {HP: "min-on", STORE: "sequencing"},
    ),
    (
        "heat pump stops after 300 s; the store pump post-runs",
        {**ALL_OFF},
        states(heat_pump=(True, 301), store_pump=(True, 400)),
        NOMINAL,
        {HP: False, STORE: True},
        {STORE: "postrun"},
    ),
    (
        "post-run ends 120 s after the stop",
        {**ALL_OFF},
        states(heat_pump=(False, 121), store_pump=(True, 500)),
        NOMINAL,
        {HP: False, STORE: False},
        {},
    ),
    (
        "heat pump held off for its minimum off-time",
        {**ALL_OFF, HP: True, STORE: True},
        states(heat_pump=(False, 60), store_pump=(True, 100)),
        NOMINAL,
        {HP: False, STORE: True},
        {HP: "min-off"},
    ),
    (
        "over-temperature cuts the heat pump inside its minimum on-time",
        {**ALL_OFF, HP: True, STORE: True, AUX: True},
        states(heat_pump=(True, 10), store_pump=(True, 100), aux_element=(True, 10)),
        SafetyInputs(tank_c=(76.0, 60.0, 50.0), water_c=(76.0,), outdoor_c=0.0),
        {HP: False, AUX: False, STORE: True},
        {HP: "safety", AUX: "safety"},
    ),
    (
        "frost runs the pumps whatever was asked, and asks the heat pump for heat after its pre-run",
        {**ALL_OFF},
        states(store_pump=(False, 600), distribution_pump=(False, 600)),
        SafetyInputs(tank_c=(20.0, 10.0, 4.0), water_c=(20.0, 10.0, 4.0), outdoor_c=-10.0),
        {STORE: True, DIST: True, HP: False},
        {STORE: "safety", DIST: "safety", HP: "prerun"},
    ),
    (
        "no tank temperature: the aux element is held off",
        {**ALL_OFF, AUX: True},
        states(),
        SafetyInputs(tank_c=(None, None, None), water_c=(30.0,), outdoor_c=0.0),
        {AUX: False},
        {AUX: "safety"},
    ),
    (
        "no water temperature and unknown outdoor: blind frost protection circulates",
        {**ALL_OFF},
        states(),
        SafetyInputs(tank_c=(None, None, None), water_c=(None,), outdoor_c=None),
        {STORE: True, DIST: True, HP: False},
        {STORE: "safety", DIST: "safety", HP: "prerun"},
    ),
    (
        "no water temperature but a mild outdoor: no frost action",
        {**ALL_OFF},
        states(),
        SafetyInputs(tank_c=(None, None, None), water_c=(None,), outdoor_c=12.0),
        {STORE: False, DIST: False},
        {},
    ),
]


@pytest.mark.parametrize(
    ("what", "asked", "now_states", "safety", "expected", "holds"), CASES, ids=[c[0] for c in CASES]
)
def test_interlock_table(
    what: str,
    asked: dict[str, bool],
    now_states: dict[str, ActuatorState],
    safety: SafetyInputs,
    expected: dict[str, bool],
    holds: dict[str, str],
) -> None:
    result = apply_interlocks(ask(asked), now_states, CONFIGS, safety, PARAMS, T0)
    assert {name: result.commands[name].on for name in expected} == expected
    assert {name: hold.interlock for name, hold in result.holds.items()} == holds
    for name, hold in result.holds.items():
        assert result.commands[name].source is Source.INTERLOCK
        assert hold.reason, f"{name} is held without a reason"


def test_max_starts_per_hour_holds_until_the_oldest_start_ages_out() -> None:
    starts = (T0 - 3000, T0 - 2000, T0 - 1000)
    now_states = states(store_pump=(True, 900))
    now_states[HP] = ActuatorState(False, T0 - 700, starts)
    result = apply_interlocks(ask({**ALL_OFF, HP: True, STORE: True}), now_states, CONFIGS, NOMINAL, PARAMS, T0)
    assert result.commands[HP].on is False
    hold = result.holds[HP]
    assert hold.interlock == "max-starts" and hold.until == pytest.approx(T0 - 3000 + HOUR_S)


def test_hold_says_until_when() -> None:
    result = apply_interlocks(
        ask({**ALL_OFF, HP: True, STORE: True}),
        states(heat_pump=(False, 60), store_pump=(True, 100)),
        CONFIGS,
        NOMINAL,
        PARAMS,
        T0,
    )
    assert result.holds[HP].until == pytest.approx(T0 - 60 + 180)


def test_at_boot_the_holds_say_the_equipment_may_have_run_before() -> None:
    """At boot every actuator counts as just switched (its past is unknown): the store pump post-runs and the heat
    pump waits its minimum off-time, and the reasons say why, since nothing has run since this start."""
    from controller.control.tick import initial_state

    boot = initial_state(LAYOUT, T0, dict.fromkeys(CONFIGS, False))
    result = apply_interlocks(ask(dict(ALL_OFF)), boot.actuators, CONFIGS, NOMINAL, PARAMS, T0 + 10)
    assert result.holds[STORE].reason == "post-run after heat-pump stops (it may have run before this start)"
    pumping = {**boot.actuators, STORE: boot.actuators[STORE].after(True, T0 + 20)}  # its pre-run is done by 60
    later = apply_interlocks(ask({**ALL_OFF, HP: True, STORE: True}), pumping, CONFIGS, NOMINAL, PARAMS, T0 + 60)
    assert later.holds[HP].interlock == "min-off"
    assert later.holds[HP].reason.endswith("; counted from this start: it may have run before)")
    # Once it has really switched, it is its own history again.
    ran = {**boot.actuators, HP: boot.actuators[HP].after(True, T0 + 200).after(False, T0 + 500)}
    after = apply_interlocks(ask(dict(ALL_OFF)), ran, CONFIGS, NOMINAL, PARAMS, T0 + 510)
    assert after.holds[STORE].reason == "post-run after heat-pump stops"


# ---- properties -----------------------------------------------------------------------------------------

SOURCES = st.sampled_from([Source.LOCAL, Source.ATN, Source.OVERRIDE])
STEP = st.tuples(
    st.floats(0.2, 90.0),  # seconds until the next decision
    st.fixed_dictionaries({name: st.booleans() for name in CONFIGS}),
    SOURCES,
)


def run_sequence(steps: list[tuple[float, dict[str, bool], Source]], safety: SafetyInputs) -> list[dict[str, object]]:
    """Feed a command sequence through the interlocks; the hardware follows what they allow."""
    now = T0
    current = {name: ActuatorState(False, now - 7200) for name in CONFIGS}
    log: list[dict[str, object]] = []
    for dt, wanted, source in steps:
        now += dt
        result = apply_interlocks(ask(wanted, source), current, CONFIGS, safety, PARAMS, now)
        for name, command in result.commands.items():
            before = current[name]
            current[name] = before.after(command.on, now)
            if command.on != before.on:
                log.append({"t": now, "name": name, "on": command.on, "prev_since": before.since})
        log.append({"t": now, "final": {n: c.on for n, c in result.commands.items()}, "holds": result.holds})
    return log


@settings(max_examples=300, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=120))
def test_no_command_sequence_violates_min_times_or_starts_per_hour(
    steps: list[tuple[float, dict[str, bool], Source]],
) -> None:
    switches = [e for e in run_sequence(steps, NOMINAL) if "name" in e]
    starts: dict[str, list[float]] = {name: [] for name in CONFIGS}
    for event in switches:
        name, t, prev_since = str(event["name"]), float(event["t"]), float(event["prev_since"])  # type: ignore[arg-type]
        config = CONFIGS[name]
        ran = t - prev_since
        if event["on"]:
            assert ran >= config.min_off_s - 1e-9, f"{name} restarted after {ran:.1f} s off"
            starts[name].append(t)
            limit = config.max_starts_per_hour
            if limit is not None:
                assert len([s for s in starts[name] if s > t - HOUR_S]) <= limit, f"{name}: too many starts"
        else:
            assert ran >= config.min_on_s - 1e-9, f"{name} stopped after {ran:.1f} s on"


@settings(max_examples=200, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=60), st.floats(-5.0, 4.9))
def test_frost_protection_always_wins(steps: list[tuple[float, dict[str, bool], Source]], coldest: float) -> None:
    frost = SafetyInputs(tank_c=(30.0, 20.0, coldest), water_c=(30.0, coldest), outdoor_c=-15.0)
    for entry in run_sequence(steps, frost):
        if "final" not in entry:
            continue
        final, holds = entry["final"], entry["holds"]
        assert isinstance(final, dict) and isinstance(holds, dict)
        for pump in (STORE, DIST):
            # Pumps run, except for the few seconds a pump's own minimum off-time may hold a restart.
            assert final[pump] or holds[pump].interlock == "min-off", (pump, holds.get(pump))


@settings(max_examples=200, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=60), st.floats(75.0, 95.0))
def test_over_temperature_always_cuts_heat(steps: list[tuple[float, dict[str, bool], Source]], hottest: float) -> None:
    hot = SafetyInputs(tank_c=(hottest, 60.0, 50.0), water_c=(hottest, 50.0), outdoor_c=0.0)
    for entry in run_sequence(steps, hot):
        if "final" in entry:
            final = entry["final"]
            assert isinstance(final, dict)
            assert final[HP] is False and final[AUX] is False
