"""The planner as the local policy: degraded and blind inputs fall back to the present rules, reasons say what
the plan is, re-planning happens when (and only when) an assumption changed, the comfort guard acts whatever the
plan says, and a day in the simulator passes the interlocks with no more compressor starts than the present
rules."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.control import policy
from controller.control.tariff import Price
from controller.control.types import PriceForecast, PricePoint
from controller.planner import forecast as fc
from controller.planner import local
from controller.planner.dp import Action, Decision
from controller.sim.week import simulate
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
PARAMS = LAYOUT.control
ZONE = LAYOUT.site.timezone
T0 = 1_767_258_600.0  # 2026-01-01T09:10Z (10:10 in Brussels: occupied)
HP, STORE, DIST, AUX = "heat-pump", "store-pump", "distribution-pump", "aux-element"


def inputs(**changes: object) -> policy.PolicyInputs:
    base: dict[str, object] = {
        "house_c": 20.5,
        "outdoor_c": 0.0,
        "tank_top_c": 45.0,
        "tank_mid_c": 40.0,
        "tank_bottom_c": 35.0,
        "price": Price.NORMAL,
        "price_reason": "normal tariff",
        "occupied": True,
    }
    base.update(changes)
    return policy.PolicyInputs(**base)  # type: ignore[arg-type]


def decide(
    state: local.PlannerState, now: float = T0, forecast: PriceForecast | None = None, params=PARAMS, **changes: object
):  # type: ignore[no-untyped-def]
    return local.decide(state, policy.PolicyState(), inputs(**changes), params, now, ZONE, forecast)


@pytest.fixture(scope="module")
def planned() -> tuple[local.PlannerState, policy.PolicyDecision]:
    return decide(local.PlannerState())


DEGRADED = [
    ("no house temperature", {"house_c": None}),
    ("no tank temperature", {"tank_top_c": None, "tank_mid_c": None, "tank_bottom_c": None}),
    ("no outdoor temperature", {"outdoor_c": None}),
    ("blind", {"house_c": None, "tank_top_c": None, "tank_mid_c": None, "tank_bottom_c": None}),
]


@pytest.mark.parametrize(("why", "changes"), DEGRADED, ids=[d[0] for d in DEGRADED])
def test_degraded_falls_back_to_the_present_rules(why: str, changes: dict[str, object]) -> None:
    state, decision = decide(local.PlannerState(), **changes)
    rules = policy.decide(policy.PolicyState(), inputs(**changes), PARAMS)
    assert {n: c.on for n, c in decision.commands.items()} == {n: c.on for n, c in rules.commands.items()}
    assert decision.summary.startswith("present rules (") and why.split()[-1] in decision.summary
    assert state.plan is None


def test_planner_off_in_the_layout_is_exactly_the_present_rules() -> None:
    params = PARAMS.model_copy(update={"planner": PARAMS.planner.model_copy(update={"enabled": False})})
    _, decision = decide(local.PlannerState(), params=params)
    assert decision == policy.decide(policy.PolicyState(), inputs(), params)


def test_a_plan_with_reasons(planned: tuple[local.PlannerState, policy.PolicyDecision]) -> None:
    state, decision = planned
    assert state.plan is not None and state.replans == 1
    assert len(state.preview) >= local.PREVIEW_STEPS
    assert "17:00–21:00 peak" in state.peak_note  # the layout's expensive window, in local time
    reason = decision.commands[HP].reason
    assert reason.startswith("plan: ") and state.peak_note in reason
    assert decision.commands[STORE].on == decision.commands[HP].on


REPLANS = [
    ("nothing changed, a minute later", {"now": T0 + 60}, False),
    ("the next step, same assumptions", {"now": T0 + 900}, False),
    ("less than half the horizon left", {"now": T0 + 24 * 3600 + 60}, True),
    ("half a day on, same assumptions", {"now": T0 + 12 * 3600}, False),
    ("a setpoint override", {"setpoint_c": 22.0}, True),
    ("the outdoor air far off the forecast", {"outdoor_c": 6.0}, True),
    ("a price forecast that differs", {"forecast": "different"}, True),
    ("a price forecast the same as the windows", {"forecast": "same"}, False),
]


def _forecast(kind: str) -> PriceForecast:
    start = fc.slot_start(T0) - 3600
    points = []
    for hour in range(48):
        t = start + hour * 3600
        price = fc._tariff_price(PARAMS, fc.datetime.fromtimestamp(t + 1800, fc.ZoneInfo(ZONE)))
        points.append(PricePoint(start=t, end=t + 3600, price=price if kind == "same" else price * (1 + (hour % 3))))
    return PriceForecast(received_at=T0, points=tuple(points))


@pytest.mark.parametrize(("what", "changes", "replans"), REPLANS, ids=[r[0] for r in REPLANS])
def test_replans_when_an_assumption_changed(
    planned: tuple[local.PlannerState, policy.PolicyDecision], what: str, changes: dict[str, object], replans: bool
) -> None:
    state, _ = planned
    changes = dict(changes)
    now = float(changes.pop("now", T0 + 60))  # type: ignore[arg-type]
    kind = changes.pop("forecast", None)
    forecast = _forecast(str(kind)) if kind else None
    after, _ = decide(state, now=now, forecast=forecast, **changes)
    assert (after.replans == 2) is replans


def test_a_new_step_reads_the_table_at_the_measured_state(
    planned: tuple[local.PlannerState, policy.PolicyDecision],
) -> None:
    state, _ = planned
    warm, _ = decide(state, now=T0 + 900, house_c=21.9, tank_top_c=50.0, tank_mid_c=50.0, tank_bottom_c=50.0)
    cold, _ = decide(state, now=T0 + 900, house_c=19.6, tank_top_c=22.0, tank_mid_c=22.0, tank_bottom_c=22.0)
    assert warm.decision is not None and cold.decision is not None
    assert warm.decision.action.heat_pump is False and cold.decision.action.heat_pump is True


def step(hp: bool = False, aux: bool = False, share: float = 0.0, house_end: float = 20.5) -> Decision:
    return Decision(Action(hp, aux, share), 40.0, house_end, 0.3, 3.0 if hp else None, 0.5 if hp else 0.0)


GUARD = [
    # (what, decision, inputs, expected {actuator: on}, words in the reason of the actuator named first)
    ("plan followed: off", step(), {}, {HP: False, DIST: False, AUX: False}, (HP, "plan: heat pump off")),
    ("plan charges", step(hp=True), {}, {HP: True, STORE: True}, (HP, "charging to 40 °C")),
    ("emitters toward the plan's house temperature", step(house_end=21.0), {}, {DIST: True}, (DIST, "plan 21.0")),
    (
        "below the floor: emitters run whatever the plan",
        step(house_end=19.0),
        {"house_c": 19.6},
        {DIST: True},
        (DIST, "floor 19.5"),
    ),
    (
        "a tank colder than the house is not used",
        step(house_end=21.0),
        {"tank_top_c": 20.0},
        {DIST: False},
        (DIST, "house"),
    ),
    (
        "cold house, empty tank: the guard starts the heat pump",
        step(),
        {"house_c": 19.3, "tank_top_c": 25.0},
        {HP: True, DIST: True},
        (HP, "comfort: house 19.3 °C below 19.5"),
    ),
    (
        "cold house at -10 °C: a 31 °C tank is below the heating curve's 34.5 °C: heat the house directly",
        step(),
        {"house_c": 19.3, "tank_top_c": 31.0, "outdoor_c": -10.0},
        {HP: True, DIST: True},
        (HP, "heating it directly (tank top 31 °C < the heating curve's 35 °C)"),
    ),
    (
        "cold house at 10 °C: a 28.5 °C tank meets the heating curve's 28 °C: the emitters alone",
        step(),
        {"house_c": 19.3, "tank_top_c": 28.5, "outdoor_c": 10.0},
        {HP: False, DIST: True},
        (HP, "plan: heat pump off"),
    ),
    (
        "far below the floor with the heat pump on: the aux element helps",
        step(hp=True),
        {"house_c": 19.0, "tank_top_c": 25.0},
        {HP: True, AUX: True},
        (AUX, "aux element helps"),
    ),
    (
        "unoccupied: the floor is the setback's",
        step(house_end=17.0),
        {"house_c": 19.1, "occupied": False},
        {DIST: True},
        (DIST, "floor 19.0"),
    ),
]


@pytest.mark.parametrize(("what", "decision", "changes", "expected", "reason"), GUARD, ids=[g[0] for g in GUARD])
def test_execution_and_comfort_guard(
    what: str, decision: Decision, changes: dict[str, object], expected: dict[str, bool], reason: tuple[str, str]
) -> None:
    out = local.execute(decision, policy.PolicyState(), inputs(**changes), PARAMS, "")
    assert {n: out.commands[n].on for n in expected} == expected
    name, words = reason
    assert words in out.commands[name].reason


def test_history_feeds_a_persistence_forecast() -> None:
    history = fc.OutdoorHistory()
    for minute in range(0, 48 * 60, 10):
        t = T0 + minute * 60
        history = history.add(t, -5.0 + 4.0 * ((t // 3600) % 24 >= 12))  # 12 h at -5, 12 h at -1 (UTC hours)
    now = T0 + 48 * 3600
    times = fc.step_times(now, 96)
    out = fc.outdoor_forecast(times, now, -3.0, history)
    assert out[0] == pytest.approx(-3.0, abs=0.5)  # meets the present reading
    assert min(out) < -4 and max(out) > -2  # and keeps yesterday's shape


@settings(max_examples=20, deadline=None)
@given(
    shape=st.lists(st.floats(-10, 10), min_size=24, max_size=24),
    noise=st.lists(st.floats(-3, 3), min_size=6, max_size=6),
)
def test_the_daily_shape_is_averaged_over_days(shape: list[float], noise: list[float]) -> None:
    """Each hour's slot is a mean over several days (exponentially weighted), not yesterday alone: a day's own
    weather (a whole day `noise` K off) moves it by only `HISTORY_WEIGHT` of that, and a shape that repeats
    exactly is kept exactly."""
    exact = fc.OutdoorHistory()
    noisy = fc.OutdoorHistory()
    day0 = math.floor(T0 / 86400) * 86400
    for day, off in enumerate(noise):
        for hour in range(24):
            for minute in (0, 30):
                t = day0 + day * 86400 + hour * 3600 + minute * 60
                exact = exact.add(t, shape[hour])
                noisy = noisy.add(t, shape[hour] + off)
    end = day0 + len(noise) * 86400
    exact = exact.add(end, 0.0)  # closes the last hour
    noisy = noisy.add(end, 0.0)
    weights = [fc.HISTORY_WEIGHT * (1 - fc.HISTORY_WEIGHT) ** (len(noise) - 1 - d) for d in range(len(noise))]
    weights[0] = (1 - fc.HISTORY_WEIGHT) ** (len(noise) - 1)  # the first day starts the slot
    expected_off = sum(w * off for w, off in zip(weights, noise, strict=True))
    for hour in range(24):
        t = day0 + hour * 3600
        assert exact.at(t) == pytest.approx(shape[hour], abs=1e-9)
        assert noisy.at(t) == pytest.approx(shape[hour] + expected_off, abs=1e-9)


def test_a_day_passes_the_interlocks_with_no_more_starts_than_the_rules() -> None:
    present = LAYOUT.model_copy(
        update={"control": PARAMS.model_copy(update={"planner": PARAMS.planner.model_copy(update={"enabled": False})})}
    )
    planner = simulate(LAYOUT, weather="cold", days=1.0)
    rules = simulate(present, weather="cold", days=1.0)
    assert planner.violations == []
    assert planner.comfort_share >= 0.995
    assert planner.starts <= rules.starts
    assert planner.replans >= 2


def test_planner_state_is_replaced_not_mutated(planned: tuple[local.PlannerState, policy.PolicyDecision]) -> None:
    state, _ = planned
    before = replace(state)
    decide(state, now=T0 + 900)
    assert state == before


def test_the_plan_as_people_see_it(planned: tuple[local.PlannerState, policy.PolicyDecision]) -> None:
    from controller import protocol
    from controller.planner.view import plan_state

    state, _ = planned
    shown = plan_state(state, T0 + 3600)
    assert shown is not None and len(shown.hours) == 24
    assert shown.hours[0].start == fc.math.floor((T0 + 3600) / 3600) * 3600
    assert all(0 <= h.heat_pump <= 1 for h in shown.hours)
    assert shown.note == state.peak_note
    again = protocol.PlanState.model_validate_json(shown.model_dump_json())
    assert again == shown
    assert plan_state(local.PlannerState(), T0) is None


def test_deferred_planning_leaves_the_solve_to_the_caller() -> None:
    """The control loop plans off the control path: the tick asks, the present rules decide meanwhile, and
    the solved plan is adopted between ticks."""
    state, decision = local.decide(
        local.PlannerState(), policy.PolicyState(), inputs(), PARAMS, T0, ZONE, None, inline=False
    )
    assert state.plan is None and state.wanted is not None
    assert decision.summary.startswith("present rules (planning…)")
    again, _ = local.decide(state, policy.PolicyState(), inputs(), PARAMS, T0 + 1, ZONE, None, inline=False)
    assert again.wanted is state.wanted  # asked once, not every tick
    adopted = local.adopt(again, local.solve_request(state.wanted, PARAMS, ZONE))
    assert adopted.plan is not None and adopted.wanted is None and adopted.replans == 1
    after, decision = local.decide(adopted, policy.PolicyState(), inputs(), PARAMS, T0 + 2, ZONE, None, inline=False)
    assert after.wanted is None and decision.commands[HP].reason.startswith("plan: ")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(st.tuples(st.floats(20.0, 55.0), st.floats(19.8, 22.0)), min_size=12, max_size=12),
)
def test_the_heat_pump_request_changes_only_at_step_boundaries(
    planned: tuple[local.PlannerState, policy.PolicyDecision], states: list[tuple[float, float]]
) -> None:
    """Whatever the sensors say minute to minute (above the comfort floor, so the guard is not engaged), the
    plan's heat-pump request holds for its whole 15-minute step: the plan alone cannot short-cycle the compressor
    (at most 4 starts an hour are asked, and a step's run is 15 minutes, above the demo's 5-minute minimum)."""
    state, _ = planned
    requests: list[tuple[int, bool]] = []
    for minute in range(60):
        tank, house = states[minute // 5]
        now = T0 + minute * 60
        state, decision = decide(state, now=now, tank_top_c=tank, tank_mid_c=tank, tank_bottom_c=tank, house_c=house)
        requests.append((math.floor(now / 900), decision.commands[HP].on))
    for (slot_a, on_a), (slot_b, on_b) in itertools.pairwise(requests):
        assert on_a == on_b or slot_a != slot_b


PRICES = PriceForecast(
    received_at=T0 - 60,
    points=tuple(
        PricePoint(start=T0 - 3600 + h * 3600, end=T0 + h * 3600, price=0.1 + 0.2 * (h % 3)) for h in range(48)
    ),
)
# (has a plan, a price forecast, monotonic - the start, waits (prices_due = start + 60 s; None: no ATN link))
AWAITS = [
    ("no plan, no prices, within the wait: wait", False, None, 10.0, True),
    ("no plan, no prices, at the wait's end: plan", False, None, 60.0, False),
    ("no plan, prices came: plan", False, PRICES, 10.0, False),
    ("a plan already: never wait", True, None, 10.0, False),
    ("no ATN link: never wait", False, None, None, False),
]


@pytest.mark.parametrize(("why", "has_plan", "forecast", "since_start", "waits"), AWAITS, ids=[a[0] for a in AWAITS])
def test_the_first_plan_waits_briefly_for_the_atns_prices(
    planned: tuple[local.PlannerState, policy.PolicyDecision],
    why: str,
    has_plan: bool,
    forecast: PriceForecast | None,
    since_start: float | None,
    waits: bool,
) -> None:
    """With an ATN link, the first plan waits up to `first_plan_wait_s` for the ATN's prices: planning without
    them and again when they come doubled every start's planning (500 fleet sites: ~1000 plans of ~0.3 s)."""
    start = 1000.0
    state = planned[0] if has_plan else local.PlannerState()
    state = replace(state, prices_due=None if since_start is None else start + PARAMS.planner.first_plan_wait_s)
    monotonic = start + (since_start or 0.0)
    assert local.awaits_prices(state, forecast, monotonic) is waits
    after, decision = local.decide(
        state, policy.PolicyState(), inputs(), PARAMS, T0, ZONE, forecast, inline=False, await_prices=waits
    )
    if waits:  # the present rules decide meanwhile, as before any first plan, and nothing is asked yet
        rules = policy.decide(policy.PolicyState(), inputs(), PARAMS)
        assert after.wanted is None and after.plan is None
        assert {n: c.on for n, c in decision.commands.items()} == {n: c.on for n, c in rules.commands.items()}
        assert decision.summary.startswith("present rules (waiting for the ATN's prices…)")
    elif not has_plan:
        assert after.wanted is not None and after.wanted.price_forecast is forecast


def test_the_boot_state_waits_for_prices_only_with_an_atn_link() -> None:
    from controller.control.tick import initial_state
    from controller.links.config import AtnLink

    linked = LAYOUT.model_copy(
        update={"links": LAYOUT.links.model_copy(update={"atn": AtnLink(url="mqtt://127.0.0.1:1883")})}
    )
    assert LAYOUT.links.atn is None
    assert initial_state(LAYOUT, 500.0, {}).planner.prices_due is None
    assert initial_state(linked, 500.0, {}).planner.prices_due == 500.0 + PARAMS.planner.first_plan_wait_s
    off = linked.model_copy(
        update={
            "control": PARAMS.model_copy(
                update={"planner": PARAMS.planner.model_copy(update={"first_plan_wait_s": 0.0})}
            )
        }
    )
    assert initial_state(off, 500.0, {}).planner.prices_due is None


def test_prices_that_come_while_the_first_plan_is_solved_are_planned_with() -> None:
    """A deferred plan asked before the ATN's prices came is adopted without them; the next tick sees that the
    prices differ from what that plan assumed and asks again (they were once marked seen and then ignored)."""
    asked, _ = local.decide(local.PlannerState(), policy.PolicyState(), inputs(), PARAMS, T0, ZONE, None, inline=False)
    assert asked.wanted is not None and asked.wanted.price_forecast is None
    meanwhile, _ = local.decide(asked, policy.PolicyState(), inputs(), PARAMS, T0 + 1, ZONE, PRICES, inline=False)
    adopted = local.adopt(meanwhile, local.solve_request(asked.wanted, PARAMS, ZONE))
    after, _ = local.decide(adopted, policy.PolicyState(), inputs(), PARAMS, T0 + 2, ZONE, PRICES, inline=False)
    assert after.wanted is not None and after.wanted.price_forecast is PRICES
    # Planned with them, the same forecast asks nothing more.
    again = local.adopt(after, local.solve_request(after.wanted, PARAMS, ZONE))
    settled, _ = local.decide(again, policy.PolicyState(), inputs(), PARAMS, T0 + 3, ZONE, PRICES, inline=False)
    assert settled.wanted is None
