"""The dynamic programme: backward over 15-minute steps on a grid of tank and house temperatures.

State: the tank's mean temperature (1 K grid), the house air (0.2 K grid) and whether the compressor ran in the
step before (a start costs `start_cost`). Actions per step: heat pump off or on, the aux element (only where the
heat pump alone could fall short), and the emitters at 0, 1/3, 2/3 or full flow. Values between grid points are
interpolated bilinearly. The aux element carries a premium (`AUX_PREMIUM`) on top of its price, so the plan uses
it to stay comfortable where the heat pump cannot, never to save money. Comfort is a constraint: a step that ends
outside the comfort bounds costs `COMFORT_PENALTY` per kelvin, far above any price, so a plan leaves the band
only where nothing can keep it in (and then the least). The value at the horizon credits stored heat at what it
would cost to buy later, so the plan does not run the tank and the house down just because its horizon ends.

Why a dynamic programme and not an LP/MILP: the heat pump's COP depends on the temperature it heats to, which
is the tank's state, so the electricity a step costs is a product of a decision and a state (bilinear). An LP
must fix the COP in advance (and then cannot choose low charge temperatures, which is most of the gain in mild
weather) and a MILP needs a piecewise linearisation of it plus binaries for starts; the DP takes the model as
it is, its cost is fixed and known (grid x actions x steps, ~0.2 s here for 48 h), and its value tables give a
decision from any measured state, not only from the one it was solved for.

The result, `Plan`, holds one value table per step: a feedback law. Taking a decision reads the table at the
measured state (`Plan.decide`), so between re-plans the plan still reacts to what the sensors say.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from controller.planner.forecast import Forecast
from controller.planner.model import STEP_S, Array, Coefficients, Model

COMFORT_PENALTY = 100.0  # currency per kelvin outside the comfort bounds per step: a constraint, not a price
SHARES = (0.0, 1.0 / 3.0, 2.0 / 3.0, 1.0)
TANK_MIN_C, TANK_MAX_C, TANK_STEP_K = 16.0, 62.0, 1.0
HOUSE_STEP_K = 0.2
AUX_PREMIUM = 5.0  # currency per kWh on top of the price: the aux element is for comfort, never for economy
AUX_MARGIN = 1.2  # offer the aux element where the heat pump's capacity is below 1.2 x the house's loss


@dataclass(frozen=True)
class Action:
    heat_pump: bool
    aux: bool
    share: float


@dataclass(frozen=True)
class Decision:
    """What to do in one step from a measured state, and what the plan expects from it."""

    action: Action
    tank_end_c: float
    house_end_c: float
    price: float
    cop: float | None
    electric_kwh: float


@dataclass(frozen=True)
class Grid:
    tank: Array
    house: Array

    @classmethod
    def around(cls, forecast: Forecast) -> Grid:
        low = math.floor(float(forecast.low_c.min()) - 3.0)
        high = math.ceil(float(forecast.high_c.max()) + 1.0)
        return cls(
            tank=np.arange(TANK_MIN_C, TANK_MAX_C + 1e-9, TANK_STEP_K),
            house=np.arange(low, high + 1e-9, HOUSE_STEP_K),
        )


def _actions(with_aux: bool) -> list[Action]:
    actions = [Action(False, False, s) for s in SHARES] + [Action(True, False, s) for s in SHARES]
    if with_aux:
        actions += [Action(True, True, s) for s in SHARES]
    return actions


_ACTIONS = {with_aux: _actions(with_aux) for with_aux in (False, True)}


def _action_arrays(with_aux: bool, ndim: int) -> tuple[Array, Array, Array]:
    """Heat pump, aux and emitter share of every action, shaped to broadcast over `ndim` state axes."""
    actions = _ACTIONS[with_aux]
    shape = (len(actions),) + (1,) * ndim
    return (
        np.array([float(a.heat_pump) for a in actions]).reshape(shape),
        np.array([float(a.aux) for a in actions]).reshape(shape),
        np.array([a.share for a in actions]).reshape(shape),
    )


class Plan:
    """Value tables over `forecast`'s steps, and what the plan assumed."""

    def __init__(self, model: Model, forecast: Forecast, start_cost: float) -> None:
        self.model = model
        self.forecast = forecast
        self.start_cost = start_cost
        self.grid = Grid.around(forecast)
        n = forecast.steps
        nt, nh = len(self.grid.tank), len(self.grid.house)
        self.values = np.empty((n + 1, 2, nt, nh), dtype=np.float32)
        self._quads_step = -1
        self._quads_cache = np.empty((0, 4))
        self._aux_offered = [self._offers_aux(k) for k in range(n)]
        tank, house = self.grid.tank[:, None], self.grid.house[None, :]  # broadcast: cheap per-tank terms
        self.values[n, :] = self._terminal(tank, house)
        for k in range(n - 1, -1, -1):
            q, hp = self._q(k, tank, house)
            off = q[~hp].min(axis=0)
            on = q[hp].min(axis=0)
            self.values[k, 0] = np.minimum(off, on + start_cost)
            self.values[k, 1] = np.minimum(off, on)

    @property
    def t0(self) -> float:
        return self.forecast.t0

    @property
    def end(self) -> float:
        return self.forecast.t0 + self.forecast.steps * STEP_S

    def step_at(self, now: float) -> int | None:
        k = math.floor((now - self.forecast.t0) / STEP_S)
        return k if 0 <= k < self.forecast.steps else None

    def _terminal(self, tank: Array, house: Array) -> Array:
        """Stored heat is worth what it would cost to buy in the plan's last day (at its mean price and COP)."""
        f = self.forecast
        last = slice(max(0, f.steps - 96), f.steps)
        cop = float(self.model.cop(float(f.outdoor_c[last].mean()), 40.0))
        per_kwh = float(f.price[last].mean()) / cop
        joules = self.model.tank_j_per_k * (tank - 40.0) + self.model.params.house_capacitance_j_per_k * (house - 20.0)
        return np.asarray(-per_kwh * joules / 3.6e6)

    def _offers_aux(self, k: int) -> bool:
        f, p = self.forecast, self.model.params
        loss = p.house_ua_w_per_k * max(0.0, float(f.high_c[k]) - float(f.outdoor_c[k])) - float(f.gains_w[k])
        too_cold = float(f.outdoor_c[k]) < p.hp_min_outdoor_c
        return p.aux_w > 0 and (too_cold or float(self.model.capacity_w(f.outdoor_c[k], 35.0)) < AUX_MARGIN * loss)

    def _q(self, k: int, tank: Array, house: Array) -> tuple[Array, npt.NDArray[np.bool_]]:
        q, hp, _ = self._q_steps(k, tank, house)
        return q, hp

    def _q_steps(self, k: int, tank: Array, house: Array) -> tuple[Array, npt.NDArray[np.bool_], Coefficients]:
        """The cost-to-go of every action from every state in `tank` x `house` at step k (actions first).

        Each action's step is affine in the house temperature (`Model.coefficients`), and everything else is
        computed in grid coordinates, so the full-size arrays (actions x tank x house) see few operations."""
        f = self.forecast
        hp, aux, share = _action_arrays(self._aux_offered[k], tank.ndim)
        c = self.model.coefficients(tank, float(f.outdoor_c[k]), float(f.gains_w[k]), hp, aux, share)
        g = self.grid
        # Where each step ends, as fractional grid indices.
        fi = (c.tank_a - g.tank[0]) * (1.0 / TANK_STEP_K) + c.tank_b * (1.0 / TANK_STEP_K) * house
        fj = (c.house_a - g.house[0]) * (1.0 / HOUSE_STEP_K) + c.house_b * (1.0 / HOUSE_STEP_K) * house
        # Kelvin outside the comfort bounds at the step's end, in grid units.
        low = (float(f.low_c[k]) - g.house[0]) / HOUSE_STEP_K
        high = (float(f.high_c[k]) - g.house[0]) / HOUSE_STEP_K
        outside = np.maximum(low - fj, 0.0)
        outside += np.maximum(fj - high, 0.0)
        aux_kwh = aux * self.model.params.aux_w * STEP_S / 3.6e6
        base = float(f.price[k]) * c.electric_kwh + AUX_PREMIUM * aux_kwh
        base = np.where(c.feasible, base, np.inf)
        cost = outside * (COMFORT_PENALTY * HOUSE_STEP_K)
        cost += base
        cost[fi > (TANK_MAX_C - g.tank[0]) / TANK_STEP_K] = np.inf
        on = hp.reshape(-1).astype(bool)
        cost += self._interpolate_at(k + 1, on, fi, fj)
        return cost, on, c

    def _interpolate_at(self, k: int, hp: npt.NDArray[np.bool_], fi: Array, fj: Array) -> Array:
        """Bilinear interpolation of step k's values at fractional grid indices (clamped to the grid)."""
        g = self.grid
        nt, nh = len(g.tank), len(g.house)
        quads = self._quads(k)
        fi = np.clip(fi, 0.0, nt - 1.000001)
        fj = np.clip(fj, 0.0, nh - 1.000001)
        i = fi.astype(np.intp)
        j = fj.astype(np.intp)
        wi = fi - i
        wj = fj - j
        base = i * (nh - 1)
        base += j
        base += (hp.astype(np.intp) * (nt - 1) * (nh - 1)).reshape((-1,) + (1,) * (fi.ndim - 1))
        corners = np.take(quads, base, axis=0)  # (..., 4): v00, v01, v10, v11 (take: far faster than [])
        low = corners[..., 1] - corners[..., 0]
        low *= wj
        low += corners[..., 0]
        high = corners[..., 3] - corners[..., 2]
        high *= wj
        high += corners[..., 2]
        high -= low
        high *= wi
        high += low
        return np.asarray(high)

    def _quads(self, k: int) -> Array:
        """Step k's table as the four corners of every grid cell, so one gather fetches a cell."""
        if self._quads_step != k:
            v = self.values[k].astype(np.float64)
            self._quads_cache = np.stack((v[:, :-1, :-1], v[:, :-1, 1:], v[:, 1:, :-1], v[:, 1:, 1:]), axis=-1).reshape(
                -1, 4
            )
            self._quads_step = k
        return self._quads_cache

    def decide(self, k: int, tank_c: float, house_c: float, running: bool) -> Decision:
        """The best action at step k from the measured state (compressor `running` or not)."""
        tank = np.array([min(max(tank_c, TANK_MIN_C), TANK_MAX_C)])
        house = np.array([house_c])
        q, hp, c = self._q_steps(k, tank, house)
        q = q[:, 0] + np.where(hp & (not running), self.start_cost, 0.0)
        best = int(np.argmin(q))
        action = _ACTIONS[self._aux_offered[k]][best]
        electric = float(c.electric_kwh[best, 0])
        cop = None
        if action.heat_pump and electric > 0:
            aux_kwh = float(action.aux) * self.model.params.aux_w * STEP_S / 3.6e6
            cop = float(c.heat_pump_kwh[best, 0]) / max(1e-9, electric - aux_kwh)
        return Decision(
            action=action,
            tank_end_c=float(c.tank_a[best, 0] + c.tank_b[best, 0] * house_c),
            house_end_c=float(c.house_a[best, 0] + c.house_b[best, 0] * house_c),
            price=float(self.forecast.price[k]),
            cop=cop,
            electric_kwh=electric,
        )

    def rollout(self, k: int, tank_c: float, house_c: float, running: bool, steps: int) -> list[Decision]:
        """The plan followed from step k for `steps` steps, as the model expects it to go."""
        out: list[Decision] = []
        for step in range(k, min(self.forecast.steps, k + steps)):
            decision = self.decide(step, tank_c, house_c, running)
            out.append(decision)
            tank_c, house_c, running = decision.tank_end_c, decision.house_end_c, decision.action.heat_pump
        return out
