"""Least-squares fits of the planner's house and heat-pump models to hourly history (numpy), and their checks.

House (UA, heat capacity C, mean free gains G), from the heat balance of every 24-hour window of consecutive
usable hours (one window starting at each hour):

    heat pump heat - C_tank x tank rise  =  UA x sum((house - outdoor) x 1 h)  +  C x house rise  -  G x 24 h

The tank stands inside the house, so all heat not stored in the tank ends up in the house (its standing loss
included). A whole day's window holds every hour of the day once, so the daily cycle of free gains (people,
cooking, sun) is one constant G and the fit needs no model of its shape; the split of G into internal and solar
gains keeps the layout's solar peak. Hours in which the aux element ran are left out (its heat is not metered),
so no window spans one.

Heat pump, from the hours it ran at least `STEADY_RUN` of:
- COP: the fraction of Carnot `hp_carnot_efficiency`, by least squares of heat = eta x electricity x Carnot COP
  (condenser at the mean leaving water + approach, evaporator at the outdoor air - approach);
- capacity: heat per running second = N x (1 + a (outdoor - 7)) x (1 - w (entering - 30)), linear in (N, N a,
  N w) once the small product term is dropped: `hp_nominal_heat_w`, `hp_capacity_air_slope_per_k`,
  `hp_capacity_water_slope_per_k`.

Each part is checked on its own: enough data, conditions that vary enough to tell the parameters apart,
parameters within physical bounds, residuals small, and no large jump from the last accepted fit. A part that
fails any check is not used: the planner keeps the layout's values for it, and the reason says why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from controller.planner.fitting.hours import HOUR_S, Hour
from controller.planner.fitting.parts import CAPACITY, COP, HOUSE, RULES, Part
from controller.planner.model import KELVIN, WATER_CP_J_PER_KG_K, WATER_KG_PER_L
from controller.planner.params import PlannerParams

WINDOW_H = 24
STEADY_RUN = 0.8  # an hour counts for the heat pump when the compressor ran at least 80 % of it


def mean_solar_w(params: PlannerParams) -> float:
    """The daily mean of the layout's half-sine of sun."""
    return params.solar_gain_peak_w * (2.0 / math.pi) * (params.sunset_local_h - params.sunrise_local_h) / 24.0


def fit_house(hours: Sequence[Hour], params: PlannerParams) -> Part:
    usable = [h for h in hours if not h.aux]
    tank_j_per_k = params.tank_volume_l * WATER_KG_PER_L * WATER_CP_J_PER_KG_K
    balance = np.array([h.heat_j - tank_j_per_k * h.tank_rise_k for h in usable])
    difference = np.array([(h.house_c - h.outdoor_c) * HOUR_S for h in usable])
    rise = np.array([h.house_rise_k for h in usable])
    starts = {h.start: i for i, h in enumerate(usable)}
    rows, targets = [], []
    for i, h in enumerate(usable):
        j = starts.get(h.start + (WINDOW_H - 1) * HOUR_S)
        if j is None or j - i != WINDOW_H - 1:
            continue  # the window has a gap or an aux hour in it
        rows.append((difference[i : j + 1].sum(), rise[i : j + 1].sum(), -WINDOW_H * HOUR_S))
        targets.append(balance[i : j + 1].sum())
    part = Part(HOUSE, samples=len(rows))
    if len(rows) < RULES[HOUSE].min_samples:
        return _too_few(part, "24-hour windows of consecutive hours without the aux element")
    x, y = np.array(rows), np.array(targets)
    spread = float(np.ptp(x[:, 0] / (WINDOW_H * HOUR_S)))
    # Overlapping windows share 23 of their 24 hours: about one window in 24 is independent of the others.
    (ua, capacitance, gain), residual, error = _solve(x, y, independent_every=WINDOW_H)
    values = {
        "house_ua_w_per_k": ua,
        "house_capacitance_j_per_k": capacitance,
        "time_constant_h": capacitance / ua / HOUR_S if ua > 0 else math.inf,
        "free_gain_w": gain,
        "internal_gain_w": max(0.0, gain - mean_solar_w(params)),
    }
    uncertainty = {"house_ua_w_per_k": error[0], "house_capacitance_j_per_k": error[1]}
    part = Part(HOUSE, values, len(rows), residual, spread, uncertainty)
    return _checked(part, "of the daily mean house - outdoor difference")


def _steady(hours: Sequence[Hour]) -> list[Hour]:
    return [
        h
        for h in hours
        if h.running_s >= STEADY_RUN * HOUR_S and h.leaving_c is not None and h.entering_c is not None and h.elec_j > 0
    ]


def carnot_cop(leaving_c: float, outdoor_c: float, params: PlannerParams) -> float:
    hot = leaving_c + params.hp_condenser_approach_k + KELVIN
    cold = outdoor_c - params.hp_evaporator_approach_k + KELVIN
    return hot / max(hot - cold, 1.0)


def fit_cop(hours: Sequence[Hour], params: PlannerParams) -> Part:
    steady = _steady(hours)
    part = Part(COP, samples=len(steady))
    if len(steady) < RULES[COP].min_samples:
        return _too_few(part, "hours with the compressor running at least 80 % of the hour")
    assert all(h.leaving_c is not None for h in steady)
    carnot = np.array([carnot_cop(h.leaving_c or 0.0, h.outdoor_c, params) for h in steady])
    elec = np.array([h.elec_j for h in steady])
    heat = np.array([h.heat_j for h in steady])
    lift = np.array([(h.leaving_c or 0.0) - h.outdoor_c for h in steady])
    (eta,), _, error = _solve((elec * carnot)[:, None], heat)
    measured, predicted = heat / elec, eta * carnot
    residual = float(np.sqrt(np.mean((measured - predicted) ** 2)) / np.mean(measured))
    return _checked(
        Part(
            COP,
            {"hp_carnot_efficiency": eta},
            len(steady),
            residual,
            float(np.ptp(lift)),
            {"hp_carnot_efficiency": error[0]},
        ),
        "of the lift (leaving water - outdoor air)",
    )


def fit_capacity(hours: Sequence[Hour], params: PlannerParams) -> Part:
    steady = _steady(hours)
    part = Part(CAPACITY, samples=len(steady))
    if len(steady) < RULES[CAPACITY].min_samples:
        return _too_few(part, "hours with the compressor running at least 80 % of the hour")
    air = np.array([h.outdoor_c - 7.0 for h in steady])
    water = np.array([(h.entering_c or 0.0) - 30.0 for h in steady])
    rate = np.array([h.heat_j / h.running_s for h in steady])
    (nominal, air_term, water_term), residual, error = _solve(np.column_stack([np.ones(len(steady)), air, water]), rate)
    values = {
        "hp_nominal_heat_w": nominal,
        "hp_capacity_air_slope_per_k": air_term / nominal if nominal > 0 else math.nan,
        "hp_capacity_water_slope_per_k": -water_term / nominal if nominal > 0 else math.nan,
    }
    spread = float(min(np.ptp(air), np.ptp(water)))
    part = Part(CAPACITY, values, len(steady), residual, spread, {"hp_nominal_heat_w": error[0]})
    return _checked(part, "of the outdoor air and entering water")


def _solve(x: np.ndarray, y: np.ndarray, independent_every: int = 1) -> tuple[list[float], float, list[float]]:
    """Least squares: the solution, the residual as RMS over the mean magnitude of `y`, and each value's relative
    standard error (from the residuals and the design, with only one sample in `independent_every` counted as
    independent; infinite where the data cannot tell a value apart from the others)."""
    solution, *_ = np.linalg.lstsq(x, y, rcond=None)
    scale = float(np.mean(np.abs(y)))
    misfit = y - x @ solution
    residual = float(np.sqrt(np.mean(misfit**2)) / scale) if scale > 0 else math.inf
    freedom = len(y) - x.shape[1]
    errors = [math.inf] * x.shape[1]
    if freedom > 0:
        try:
            covariance = np.linalg.inv(x.T @ x) * float(misfit @ misfit) / freedom * independent_every
        except np.linalg.LinAlgError:
            covariance = None
        if covariance is not None:
            for i, value in enumerate(solution):
                variance = float(covariance[i, i])
                if value != 0 and variance >= 0:
                    errors[i] = math.sqrt(variance) / abs(float(value))
    return [float(v) for v in solution], residual, errors


def _too_few(part: Part, what: str) -> Part:
    need = RULES[part.name].min_samples
    return Part(part.name, samples=part.samples, problems=(f"too little data: {part.samples} {what} (need {need})",))


def _checked(part: Part, spread_of: str) -> Part:
    rule = RULES[part.name]
    problems = []
    if part.spread_k < rule.min_spread_k:
        problems.append(
            f"too little variation: {part.spread_k:.1f} K {spread_of} (need {rule.min_spread_k:g} K to tell the "
            "parameters apart)"
        )
    for name, (low, high) in rule.bounds.items():
        value = part.values[name]
        if not low <= value <= high:  # NaN fails too
            problems.append(f"{name} {value:.4g} is outside its physical bounds {low:g}..{high:g}")
    for name, limit in rule.max_uncertainty.items():
        error = part.uncertainty.get(name, math.inf)
        if not error <= limit:
            problems.append(
                f"{name} too uncertain: ±{100 * error:.0f} % (at most ±{100 * limit:.0f} %; more days, or days of "
                "more varied weather, pin it down)"
            )
    if part.residual is None or not part.residual <= rule.max_residual:
        shown = "unknown" if part.residual is None else f"{100 * part.residual:.0f} %"
        problems.append(f"poor fit: residuals {shown} (at most {100 * rule.max_residual:.0f} %)")
    return replace(part, problems=tuple(problems))


def against_last(part: Part, last: Part | None) -> Part:
    """`part` with a problem added for each value that jumped too far from the last accepted fit's."""
    if last is None or not last.accepted or not part.values:
        return part
    problems = list(part.problems)
    for name, limit in RULES[part.name].max_jump.items():
        before, now = last.values.get(name), part.values.get(name)
        if before is None or now is None or before == 0:
            continue
        change = (now - before) / abs(before)
        if abs(change) > limit:
            problems.append(
                f"{name} {now:.4g} is {100 * change:+.0f} % from the last accepted {before:.4g} (at most "
                f"±{100 * limit:.0f} %; `hearth model fit --accept-jump` takes it)"
            )
    return replace(part, problems=tuple(problems))


def fit_all(hours: Sequence[Hour], params: PlannerParams, last: Mapping[str, Part] | None = None) -> list[Part]:
    """Every part fitted and checked (against `last`, the last accepted parts, when given)."""
    last = last or {}
    return [
        against_last(fit(hours, params), last.get(name))
        for name, fit in ((HOUSE, fit_house), (COP, fit_cop), (CAPACITY, fit_capacity))
    ]
