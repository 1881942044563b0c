"""The planner's model and dynamic programme: the physics of one step (a table), and properties of plans
followed in the model: comfort holds where it can, heat is bought when it is cheap, the aux element only
where the heat pump falls short, starts cost something."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.control.params import ControlParams
from controller.planner import forecast as fc
from controller.planner.dp import Plan
from controller.planner.model import STEP_S, Model
from controller.planner.params import PlannerParams

PARAMS = ControlParams()
MODEL = Model(PARAMS.planner)
T0 = 1_767_225_600.0  # 2026-01-01T00:00Z, 01:00 in Brussels


def one(x: float) -> np.ndarray:
    return np.array([x])


STEP_CASES = [
    # (what, tank, house, outdoor, hp, aux, share, check(tank_end, house_end, electric_kwh))
    (
        "idle: the house cools, the tank barely",
        45,
        20,
        -5,
        0,
        0,
        0.0,
        lambda t, h, e: 44.8 < t < 45 and h < 20 and e == 0,
    ),
    ("charging without emitters: the tank rises ~5 K", 40, 20, 0, 1, 0, 0.0, lambda t, h, e: 44 < t < 47 and e > 0.5),
    ("emitters from a warm tank: the house warms", 45, 20, 0, 0, 0, 1.0, lambda t, h, e: t < 40 and h > 20.2),
    (
        "emitters from a cold tank cannot stop the house cooling",
        21,
        20,
        0,
        0,
        0,
        1.0,
        lambda t, h, e: h < 20 and t < 21,
    ),
    ("aux alone: 3 kW for 15 min", 45, 20, 0, 0, 1, 0.0, lambda t, h, e: abs(e - 0.75) < 1e-9 and t > 46.5),
    ("heat pump near its high limit is infeasible", 53, 20, 0, 1, 0, 0.0, None),
]


@pytest.mark.parametrize(
    ("what", "tank", "house", "outdoor", "hp", "aux", "share", "check"), STEP_CASES, ids=[c[0] for c in STEP_CASES]
)
def test_one_step(what, tank, house, outdoor, hp, aux, share, check) -> None:  # type: ignore[no-untyped-def]
    r = MODEL.step(one(tank), one(house), outdoor, 300.0, one(hp), one(aux), one(share))
    if check is None:
        assert not r.feasible[0]
    else:
        assert r.feasible[0]
        assert check(r.tank_c[0], r.house_c[0], r.electric_kwh[0]), (r.tank_c, r.house_c, r.electric_kwh)


@pytest.mark.parametrize(
    ("outdoor", "leaving", "low", "high"),
    [(7, 35, 3.7, 4.1), (-7, 55, 1.9, 2.3), (7, 55, 2.6, 3.0)],
)
def test_cop_matches_datasheet_shape(outdoor: float, leaving: float, low: float, high: float) -> None:
    assert low < float(MODEL.cop(outdoor, leaving)) < high


@settings(max_examples=60, deadline=None)
@given(
    tank=st.floats(18, 55), house=st.floats(15, 24), outdoor=st.floats(-20, 15),
    hp=st.sampled_from([0.0, 1.0]), aux=st.sampled_from([0.0, 1.0]), share=st.sampled_from([0.0, 1 / 3, 1.0]),
)  # fmt: skip
def test_energy_is_conserved(tank: float, house: float, outdoor: float, hp: float, aux: float, share: float) -> None:
    """Heat into the tank and the house equals heat made plus gains minus the envelope's loss."""
    p = PARAMS.planner
    gains = 300.0
    r = MODEL.step(one(tank), one(house), outdoor, gains, one(hp), one(aux), one(share))
    stored = MODEL.tank_j_per_k * (r.tank_c[0] - tank) + p.house_capacitance_j_per_k * (r.house_c[0] - house)
    made = (r.heat_pump_kwh[0] + aux * p.aux_w * STEP_S / 3.6e6) * 3.6e6
    envelope = p.house_ua_w_per_k * (house - outdoor) * STEP_S
    assert stored == pytest.approx(made + gains * STEP_S - envelope, rel=1e-6, abs=1.0)


def forecast(
    steps: int, outdoor: float | list[float], price: list[float] | None = None, **params: object
) -> tuple[fc.Forecast, ControlParams]:
    control = PARAMS.model_copy(update={"planner": PARAMS.planner.model_copy(update=params)}) if params else PARAMS
    out = np.full(steps, outdoor, dtype=float) if isinstance(outdoor, float | int) else np.array(outdoor, dtype=float)
    f = fc.build(T0, control, "Europe/Brussels", outdoor=out, price_forecast=None, setpoint_c=None, steps=steps)
    if price is not None:
        f = replace(f, price=np.array(price, dtype=float))
    return f, control


def plan_for(f: fc.Forecast, control: ControlParams = PARAMS) -> Plan:
    return Plan(Model(control.planner), f, control.planner.start_cost)


def test_charges_in_the_cheap_hours_and_covers_the_peak() -> None:
    """Four cheap hours, then four dear ones: heat is bought cheap, none in the peak."""
    price = [0.10] * 16 + [0.60] * 16 + [0.30] * 16
    f, _ = forecast(48, 2.0, price)
    rollout = plan_for(f).rollout(0, 30.0, 20.5, False, 32)
    cheap = sum(d.action.heat_pump for d in rollout[:16])
    dear = sum(d.action.heat_pump for d in rollout[16:32])
    assert cheap >= 8 and dear == 0


def test_flat_prices_keep_the_tank_cool() -> None:
    """With nothing to gain from storing, the plan keeps the tank well below the present rules' fixed 52 °C (COP),
    only as warm as a run long enough to be worth its start needs."""
    f, _ = forecast(96, 5.0, [0.3] * 96)
    rollout = plan_for(f).rollout(0, 35.0, 20.5, False, 96)
    tank = [d.tank_end_c for d in rollout]
    assert max(tank) < PARAMS.tank.charge_target_c - 2
    assert sum(tank) / len(tank) < 40
    assert all(d.action.aux is False for d in rollout)


def test_aux_only_when_the_heat_pump_falls_short() -> None:
    mild, _ = forecast(96, 5.0)
    assert not any(d.action.aux for d in plan_for(mild).rollout(0, 40, 20.5, False, 96))
    freezing, control = forecast(96, -18.0)
    rollout = plan_for(freezing, control).rollout(0, 40, 20.5, False, 96)
    assert any(d.action.aux for d in rollout)
    occupied = [
        d.house_end_c >= lo - 0.05
        for d, lo, occ in zip(rollout, freezing.low_c, freezing.occupied, strict=False)
        if occ
    ]
    assert all(occupied)


def test_a_start_costs_something() -> None:
    f0, c0 = forecast(96, 0.0, start_cost=0.0)
    f1, c1 = forecast(96, 0.0, start_cost=2.0)

    def starts(plan: Plan) -> int:
        rollout = plan.rollout(0, 35, 20.5, False, 96)
        return sum(
            1
            for a, b in zip(
                [False] + [d.action.heat_pump for d in rollout], [d.action.heat_pump for d in rollout], strict=False
            )
            if b and not a
        )

    assert starts(plan_for(f1, c1)) <= starts(plan_for(f0, c0))
    assert starts(plan_for(f1, c1)) <= 4


@settings(max_examples=15, deadline=None)
@given(
    outdoor=st.floats(-12, 14),
    prices=st.lists(st.floats(0.02, 0.8), min_size=12, max_size=12),
    tank=st.floats(25, 50),
    house=st.floats(19.6, 21.5),
)
def test_comfort_holds_in_the_model(outdoor: float, prices: list[float], tank: float, house: float) -> None:
    """From a comfortable state, whatever the prices (hourly, 12 h repeated), the plan keeps every occupied step
    within its comfort bounds in the model it plans with."""
    f, _ = forecast(96, outdoor, [p for p in prices for _ in range(4)] * 2)
    plan = plan_for(f)
    for k, d in enumerate(plan.rollout(0, tank, house, False, 96)):
        if f.occupied[k]:
            assert f.low_c[k] - 0.05 <= d.house_end_c, (k, d)
        assert d.action.aux is False or outdoor < -5


def test_planner_params_reject_nonsense() -> None:
    with pytest.raises(ValueError, match="sunrise"):
        PlannerParams(sunrise_local_h=18, sunset_local_h=8)
    with pytest.raises(ValueError):
        PlannerParams(horizon_h=12)


def test_charge_temperatures_follow_the_forecast_demand() -> None:
    """Item 2 of issue 14: the tank is charged for the demand ahead, not to a fixed target. Against the same
    time-of-use prices, each colder forecast makes the plan buy more heat in the night's cheap hours (01:00-07:00
    local) and charge the tank warmer by 07:00, as long as the heat pump has capacity to spare (at -8 °C it runs
    all night and the house takes the heat as it comes); a mild forecast keeps the tank far below the present
    rules' fixed 52 °C."""
    bought, charged = [], []
    for outdoor in (15.0, 12.0, 7.0, 2.0, -3.0):
        f, control = forecast(192, outdoor)
        night = plan_for(f, control).rollout(0, 30.0, 20.5, False, 24)
        bought.append(sum(d.electric_kwh for d in night))
        charged.append(night[-1].tank_end_c)
    assert bought == sorted(bought) and bought[-1] > bought[0] + 5.0, bought
    assert charged == sorted(charged) and charged[-1] > charged[1] + 10.0, charged
    assert charged[1] < PARAMS.tank.charge_target_c - 10, charged  # 12 °C outside: a cool tank


@settings(max_examples=25, deadline=None)
@given(
    tank=st.floats(16, 60), house=st.floats(14, 24), outdoor=st.floats(-20, 15), gains=st.floats(0, 2000),
    hp=st.sampled_from([0.0, 1.0]), aux=st.sampled_from([0.0, 1.0]), share=st.sampled_from([0.0, 1 / 3, 1.0]),
)  # fmt: skip
def test_a_step_is_affine_in_the_house_temperature(
    tank: float, house: float, outdoor: float, gains: float, hp: float, aux: float, share: float
) -> None:
    """The backward pass uses each action's step as (tank, house) -> a + b x house per tank temperature; those
    coefficients give exactly the step itself."""
    c = MODEL.coefficients(one(tank), outdoor, gains, one(hp), one(aux), one(share))
    r = MODEL.step(one(tank), one(house), outdoor, gains, one(hp), one(aux), one(share))
    assert float(c.tank_a[0] + c.tank_b[0] * house) == pytest.approx(float(r.tank_c[0]), abs=1e-9)
    assert float(c.house_a[0] + c.house_b[0] * house) == pytest.approx(float(r.house_c[0]), abs=1e-9)


@settings(max_examples=10, deadline=None)
@given(
    outdoor=st.floats(-12, 14),
    prices=st.lists(st.floats(0.02, 0.8), min_size=8, max_size=8),
    k=st.integers(0, 23),
    tank_index=st.integers(0, 46),
    house_index=st.integers(0, 30),
    running=st.booleans(),
)
def test_the_tables_agree_with_a_decision_taken_at_a_grid_point(
    outdoor: float, prices: list[float], k: int, tank_index: int, house_index: int, running: bool
) -> None:
    """The backward pass (vectorised over the grid) and a single decision from a measured state (the model's step
    for one state) price the same best action at a grid point: the fast path is the same programme."""
    f, _ = forecast(24, outdoor, [p for p in prices for _ in range(3)])
    plan = plan_for(f)
    tank = float(plan.grid.tank[tank_index])
    house = float(plan.grid.house[min(house_index, len(plan.grid.house) - 1)])
    q, hp = plan._q(k, np.array([tank]), np.array([house]))
    best = float(np.min(q[:, 0] + np.where(hp & (not running), plan.start_cost, 0.0)))
    table = float(plan.values[k, int(running), tank_index, min(house_index, len(plan.grid.house) - 1)])
    assert table == pytest.approx(best, rel=1e-4, abs=1e-4)
