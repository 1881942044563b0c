"""The weather-compensated heating curve: a table of supplies for both forms (slope and shift, two points), its
properties (never falls as it gets colder or as the target rises, always within the layout's limits), the
layout's strict validation of it, and its use by the present rules and the planner's comfort guard."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from controller.control.curve import HeatingCurve, supply_c
from controller.control.params import ControlParams
from controller.control.policy import PolicyInputs, PolicyState, decide
from controller.control.tariff import Price
from controller.layout.load import LayoutError, parse_text

ROOT = Path(__file__).resolve().parent.parent
DEMO = (ROOT / "layouts/demo.toml").read_text()

SLOPE = HeatingCurve(slope=0.6, shift_k=2.0)
POINTS = HeatingCurve(points=((-10.0, 45.0), (15.0, 28.0)), max_supply_c=55.0)

CASES = [
    # (what, curve, target, outdoor, reference, supply)
    ("default slope 0.5 at 0 °C", HeatingCurve(), 20.5, 0.0, 20.5, 30.75),
    ("default, no outdoor sensor: assumed 0 °C", HeatingCurve(), 20.5, None, 20.5, 30.75),
    ("default, mild: clamped up to the minimum", HeatingCurve(), 20.5, 20.0, 20.5, 28.0),
    ("default, -40 °C: clamped down to the maximum", HeatingCurve(), 20.5, -40.0, 20.5, 50.0),
    ("slope 0.6, shift +2 at -5 °C", SLOPE, 20.0, -5.0, 20.0, 20.0 + 2.0 + 0.6 * 25.0),
    ("two points: through the cold point", POINTS, 20.0, -10.0, 20.0, 45.0),
    ("two points: through the warm point", POINTS, 20.0, 15.0, 20.0, 28.0),
    ("two points: halfway between them", POINTS, 20.0, 2.5, 20.0, 36.5),
    ("two points given in either order", HeatingCurve(points=((15.0, 28.0), (-10.0, 45.0))), 20.0, 2.5, 20.0, 36.5),
    ("two points, a target 1 K up raises it 1 + slope", POINTS, 21.0, 2.5, 20.0, 36.5 + 1.0 + 17.0 / 25.0),
    ("two points trimmed by shift_k", HeatingCurve(points=((-10.0, 45.0), (15.0, 28.0)), shift_k=-3.0), 20.0,
     -10.0, 20.0, 42.0),
]  # fmt: skip


@pytest.mark.parametrize(
    ("what", "curve", "target", "outdoor", "reference", "supply"), CASES, ids=[c[0] for c in CASES]
)
def test_supply_table(
    what: str, curve: HeatingCurve, target: float, outdoor: float | None, reference: float, supply: float
) -> None:
    assert supply_c(curve, target, outdoor, reference) == pytest.approx(supply, abs=1e-9)


curves = st.one_of(
    st.builds(
        lambda slope, shift: HeatingCurve(slope=slope, shift_k=shift),
        st.floats(0, 3),
        st.floats(-15, 15),
    ),
    st.builds(
        lambda cold, spread, warm_supply, rise, shift: HeatingCurve(
            points=((cold, warm_supply + rise), (cold + spread, warm_supply)), shift_k=shift, max_supply_c=70.0
        ),
        st.floats(-40, 0),
        st.floats(5, 30),
        st.floats(15, 40),
        st.floats(0, 15),
        st.floats(-5, 5),
    ),
)
temperatures = st.floats(-40, 30)
targets = st.floats(5, 28)


@settings(max_examples=200, deadline=None)
@given(curve=curves, target=targets, a=temperatures, b=temperatures, reference=targets)
def test_colder_never_asks_for_less(curve: HeatingCurve, target: float, a: float, b: float, reference: float) -> None:
    colder, warmer = min(a, b), max(a, b)
    assert supply_c(curve, target, colder, reference) >= supply_c(curve, target, warmer, reference) - 1e-9


@settings(max_examples=200, deadline=None)
@given(curve=curves, low=targets, high=targets, outdoor=temperatures, reference=targets)
def test_a_higher_target_never_asks_for_less(
    curve: HeatingCurve, low: float, high: float, outdoor: float, reference: float
) -> None:
    low, high = min(low, high), max(low, high)
    assert supply_c(curve, high, outdoor, reference) >= supply_c(curve, low, outdoor, reference) - 1e-9


@settings(max_examples=200, deadline=None)
@given(curve=curves, target=targets, outdoor=st.one_of(st.none(), st.floats(-80, 60)), reference=targets)
def test_always_within_the_layouts_limits(
    curve: HeatingCurve, target: float, outdoor: float | None, reference: float
) -> None:
    assert curve.min_supply_c <= supply_c(curve, target, outdoor, reference) <= curve.max_supply_c


REJECTED = [
    ({"slope": 0.5, "points": ((-10, 45), (15, 28))}, "give either slope (with shift_k) or points, not both"),
    ({"points": ((-10, 28), (15, 45))}, "a heating curve rises as it gets colder"),
    ({"points": ((0, 40), (3, 30))}, "must be at least 5 K apart"),
    ({"points": ((-50, 40), (15, 30))}, "outdoor -50 °C is outside -40..30 °C"),
    ({"points": ((-10, 95), (15, 30))}, "supply 95 °C is outside 15..80 °C"),
    ({"points": ((-10, 80), (-5, 20))}, "slope 12.00 is above 3"),
    ({"min_supply_c": 40, "max_supply_c": 35}, "need min_supply_c < max_supply_c"),
    ({"slope": -0.1}, "greater than or equal to 0"),
    ({"slope": 3.5}, "less than or equal to 3"),
]


@pytest.mark.parametrize(("fields", "message"), REJECTED, ids=[m for _, m in REJECTED])
def test_nonsense_is_rejected(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        HeatingCurve.model_validate(fields)


def test_the_curve_must_stay_below_the_charge_target() -> None:
    with pytest.raises(ValidationError, match=r"heating_curve.max_supply_c \(55\) is above tank.charge_target_c"):
        ControlParams.model_validate({"heating_curve": {"max_supply_c": 55}})


LAYOUT_PROBLEMS = [
    ("shfit_k = 1", "control.heating_curve.shfit_k: unknown key 'shfit_k'"),
    ("slope = 0.5\npoints = [[-10, 45], [15, 28]]", "heating_curve: give either slope (with shift_k) or points"),
    ("points = [[-10, 28], [15, 45]]", "a heating curve rises as it gets colder"),
    ("points = [[-10, 45]]", "control.heating_curve.points"),
    ("max_supply_c = 60", "control: heating_curve.max_supply_c (60) is above tank.charge_target_c (52)"),
]


@pytest.mark.parametrize(("body", "message"), LAYOUT_PROBLEMS, ids=[b for b, _ in LAYOUT_PROBLEMS])
def test_the_layout_reports_curve_problems_with_their_file_line_and_path(body: str, message: str) -> None:
    text = DEMO + f"\n[control.heating_curve]\n{body}\n"
    with pytest.raises(LayoutError) as caught:
        parse_text(text, file="site.toml")
    problems = [str(p) for p in caught.value.problems]
    assert len(problems) == 1 and message in problems[0], problems
    assert problems[0].startswith("site.toml:"), problems


def test_a_layout_with_two_points_drives_the_present_rules() -> None:
    layout = parse_text(DEMO + "\n[control.heating_curve]\npoints = [[-10, 45], [15, 28]]\n", file="site.toml")
    control = layout.control
    # The tank top (33 °C) is warm enough for the default curve at 5 °C (28.25 °C) but not for this one (~35.7).
    inputs = PolicyInputs(
        house_c=19.0, outdoor_c=5.0, tank_top_c=33.0, tank_mid_c=32.0, tank_bottom_c=30.0,
        price=Price.NORMAL, price_reason="normal", occupied=True,
    )  # fmt: skip
    hp = control.actuators.heat_pump
    with_points = decide(PolicyState(), inputs, control)
    assert with_points.commands[hp].on
    assert "heating the house directly" in with_points.commands[hp].reason
    assert not decide(PolicyState(), inputs, ControlParams()).commands[hp].on
