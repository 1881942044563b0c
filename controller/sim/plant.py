"""The plant: a house, a stratified tank, an air-to-water heat pump, two pumps and an immersion element.

Hydronic topology (all water lumped into the tank; pipes and emitters hold no water of their own):

    heat pump loop (store pump):  tank bottom -> heat pump -> tank top               (charging)
    distribution loop (dist pump): tank top -> emitters in the house -> tank bottom   (discharging)

With both loops running the heat pump heats the house "through" the tank. The house is one lumped node (air
plus fabric) losing heat to the outdoor air through a UA value. The tank is N fully mixed layers with upwind
plug-flow advection of the net flow, a little conduction between neighbours, instant buoyancy mixing of any
inversion and a loss to the house air (the tank stands inside the envelope: its loss is a gain of the house).

Integration is explicit Euler on sub-steps short enough that every node stays a convex combination of its
neighbours (Courant number <= 0.5), which makes the scheme monotone: no overshoot, no NaN, for any `dt`. Every
heat flow is computed once per sub-step and applied to both sides, so energy is conserved to rounding error.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from controller.sim.weather import WEATHER_PRESETS, Weather, WeatherParams

__all__ = [
    "ACTUATORS",
    "FLOWS",
    "PROBES",
    "WATER_CP_J_PER_KG_K",
    "Plant",
    "PlantInputs",
    "PlantParams",
    "PlantState",
    "heat_pump_capacity_w",
    "heat_pump_cop",
]

PROBES: tuple[str, ...] = (
    "tank-top", "tank-mid", "tank-bottom", "outdoor", "house-air",
    "hp-leaving", "hp-entering", "dist-supply", "dist-return",
)  # fmt: skip
ACTUATORS: tuple[str, ...] = ("heat-pump", "store-pump", "distribution-pump", "aux-element")
FLOWS: tuple[str, ...] = ("hp-flow", "dist-flow")  # water flow (l/min) where a flow sensor can sit

WATER_CP_J_PER_KG_K = 4186.0
WATER_KG_PER_L = 0.99  # density at ~45 °C, the middle of the tank's working range
KELVIN = 273.15
_J_PER_KWH = 3.6e6

# Relative internal gains by local hour (occupants, cooking, appliances): low at night, peaks at breakfast and
# in the evening. Normalised below to a mean of 1 so `internal_gain_w` is the daily average.
_GAIN_SHAPE = (0.6, 0.6, 0.6, 0.6, 0.6, 0.7, 1.2, 1.6, 1.4, 0.9, 0.8, 0.8,
               1.0, 0.9, 0.8, 0.8, 1.0, 1.4, 1.7, 1.7, 1.5, 1.2, 0.9, 0.7)  # fmt: skip
_GAIN_PROFILE = tuple(x * len(_GAIN_SHAPE) / sum(_GAIN_SHAPE) for x in _GAIN_SHAPE)


@dataclass(frozen=True)
class PlantInputs:
    """Actuator states held constant over one `Plant.step`."""

    heat_pump: bool = False
    store_pump: bool = False
    distribution_pump: bool = False
    aux_element: bool = False

    @classmethod
    def from_mapping(cls, states: Mapping[str, bool]) -> PlantInputs:
        """Build from `{"heat-pump": True, ...}` keyed by ACTUATORS names; missing names are off."""
        unknown = sorted(set(states) - set(ACTUATORS))
        if unknown:
            raise KeyError(f"unknown actuator(s) {unknown}; known: {list(ACTUATORS)}")
        return cls(
            heat_pump=bool(states.get("heat-pump", False)),
            store_pump=bool(states.get("store-pump", False)),
            distribution_pump=bool(states.get("distribution-pump", False)),
            aux_element=bool(states.get("aux-element", False)),
        )


@dataclass(frozen=True)
class PlantParams:
    """Physical parameters; the defaults are a ~150 m² fairly well insulated house with an 8 kW monobloc."""

    # House: 180 W/K is ~5.4 kW at -10 °C outdoor; 20 MJ/K gives a free-cooling time constant C/UA of ~31 h.
    house_ua_w_per_k: float = 180.0
    house_capacitance_j_per_k: float = 20e6
    internal_gain_w: float = 300.0  # daily mean, shaped by _GAIN_PROFILE
    solar_gain_peak_w: float = 800.0  # at solar noon through glazing, a half-sine between sunrise and sunset
    sunrise_local_h: float = 8.0
    sunset_local_h: float = 16.0
    # Tank: 300 l; 2 W/K is a typical standing loss (~1.5 kWh/day at 45 °C in a 20 °C room).
    tank_volume_l: float = 300.0
    tank_layers: int = 12
    tank_loss_ua_w_per_k: float = 2.0
    # Between neighbouring layers: water conduction plus the steel wall and some eddy mixing (~1.5 W/m/K
    # effective over a 0.2 m² cross-section and 0.12 m layer pitch).
    tank_layer_coupling_w_per_k: float = 2.5
    # Heat pump: 8 kW at A7/W35 (30 °C in); capacity falls ~1.5 %/K colder air, ~0.6 %/K warmer water.
    hp_nominal_heat_w: float = 8000.0
    hp_capacity_air_slope_per_k: float = 0.015
    hp_capacity_water_slope_per_k: float = 0.006
    # COP = eta * T_cond / (T_cond - T_evap) with T_cond = leaving + approach, T_evap = outdoor - approach.
    # These give ~3.9 at A7/W35 and ~2.1 at A-7/W55, in line with datasheets.
    hp_carnot_efficiency: float = 0.45
    hp_condenser_approach_k: float = 3.0
    hp_evaporator_approach_k: float = 6.0
    hp_cop_min: float = 1.0
    hp_cop_max: float = 6.5
    hp_max_leaving_c: float = 58.0  # its own high limit: compressor trips when leaving water would exceed it
    hp_high_limit_differential_k: float = 8.0  # re-arms when the entering water has fallen this far below it
    hp_ramp_s: float = 60.0  # compressor soft start: heat and electric power rise linearly over this time
    hp_min_outdoor_c: float = -25.0  # below this the unit locks itself out
    store_pump_flow_kg_s: float = 0.3  # ~6.4 K rise at 8 kW
    distribution_pump_flow_kg_s: float = 0.25
    # Emitters: with 450 W/K (NTU ~0.43) a 45 °C supply gives ~9 kW into a 20 °C house, above the design load.
    emitter_ua_w_per_k: float = 450.0
    aux_element_w: float = 3000.0  # immersion element in the top layer
    aux_thermostat_c: float = 75.0  # its own thermostat opens here (top layer) ...
    aux_thermostat_differential_k: float = 5.0  # ... and closes this far below
    # Pipe probes: a short lag in flowing water (sensor pocket), a slow drift to room air when still.
    probe_lag_flowing_s: float = 5.0
    probe_relax_still_s: float = 240.0
    max_substep_s: float = 10.0
    weather: WeatherParams = field(default_factory=lambda: WEATHER_PRESETS["cold"])

    def __post_init__(self) -> None:
        if self.tank_layers < 3:
            raise ValueError(f"tank_layers must be >= 3 (top, mid and bottom probes), got {self.tank_layers}")
        positive = (
            "house_ua_w_per_k", "house_capacitance_j_per_k", "tank_volume_l", "hp_nominal_heat_w",
            "store_pump_flow_kg_s", "distribution_pump_flow_kg_s", "emitter_ua_w_per_k",
            "hp_carnot_efficiency", "probe_lag_flowing_s", "probe_relax_still_s", "max_substep_s",
        )  # fmt: skip
        for name in positive:
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.sunset_local_h <= self.sunrise_local_h:
            raise ValueError("sunset_local_h must be after sunrise_local_h")

    @property
    def tank_layer_mass_kg(self) -> float:
        """Water mass of one tank layer."""
        return self.tank_volume_l * WATER_KG_PER_L / self.tank_layers


def heat_pump_capacity_w(params: PlantParams, outdoor_c: float, entering_c: float) -> float:
    """Full-speed heat output (W) at this outdoor air and entering water temperature (a linear fit)."""
    air = 1.0 + params.hp_capacity_air_slope_per_k * (outdoor_c - 7.0)
    water = 1.0 - params.hp_capacity_water_slope_per_k * (entering_c - 30.0)
    return params.hp_nominal_heat_w * min(1.3, max(0.2, air)) * min(1.2, max(0.5, water))


def heat_pump_cop(params: PlantParams, outdoor_c: float, leaving_c: float) -> float:
    """Coefficient of performance: a fixed fraction of the Carnot COP between condenser and evaporator."""
    t_hot = leaving_c + params.hp_condenser_approach_k + KELVIN
    t_cold = outdoor_c - params.hp_evaporator_approach_k + KELVIN
    lift = t_hot - t_cold
    if lift <= 0.0:
        return params.hp_cop_max
    return min(params.hp_cop_max, max(params.hp_cop_min, params.hp_carnot_efficiency * t_hot / lift))


@dataclass
class PlantState:
    """Everything that changes as the plant runs. Energies are cumulative joules since construction."""

    time: float
    house_c: float
    tank_c: list[float]  # top layer first
    hp_leaving_c: float
    hp_entering_c: float
    dist_supply_c: float
    dist_return_c: float
    compressor_running: bool = False
    compressor_run_s: float = 0.0  # since the compressor's last real start
    compressor_starts: int = 0
    hp_flow_kg_s: float = 0.0  # through the heat pump (store pump loop)
    dist_flow_kg_s: float = 0.0  # through the emitters
    high_limit_tripped: bool = False
    aux_thermostat_open: bool = False
    # Instantaneous values (averages over the last sub-step).
    heat_pump_electric_w: float = 0.0
    heat_pump_heat_w: float = 0.0
    aux_electric_w: float = 0.0
    house_heat_w: float = 0.0
    # Cumulative energies (J).
    heat_pump_electric_j: float = 0.0
    heat_pump_heat_j: float = 0.0
    aux_electric_j: float = 0.0
    house_heat_delivered_j: float = 0.0
    internal_gains_j: float = 0.0
    solar_gains_j: float = 0.0
    envelope_loss_j: float = 0.0
    tank_loss_j: float = 0.0


def _mean_ramp(start_s: float, length_s: float, ramp_s: float) -> float:
    """Mean of min(1, s / ramp_s) over s in [start_s, start_s + length_s]: exact for any sub-step length."""
    end_s = start_s + length_s
    if ramp_s <= 0.0 or start_s >= ramp_s:
        return 1.0
    if end_s <= ramp_s:
        return (start_s + end_s) / (2.0 * ramp_s)
    rising = (ramp_s - start_s) * (start_s + ramp_s) / (2.0 * ramp_s)
    return (rising + (end_s - ramp_s)) / length_s


def _mix_inversions(tank: list[float]) -> None:
    """Buoyancy: merge any layer colder than the one below it with its neighbours (equal masses, so averages).

    Pool-adjacent-violators gives the energy-conserving, non-increasing-from-the-top profile in one pass.
    """
    for i in range(len(tank) - 1):
        if tank[i] < tank[i + 1]:
            break
    else:
        return
    sums: list[float] = []
    counts: list[int] = []
    for x in tank:
        s, c = x, 1
        while sums and sums[-1] * c < s * counts[-1]:  # block above is colder than this one
            s += sums.pop()
            c += counts.pop()
        sums.append(s)
        counts.append(c)
    i = 0
    for s, c in zip(sums, counts, strict=True):
        mean = s / c
        for _ in range(c):
            tank[i] = mean
            i += 1


_DEFAULT_PARAMS = PlantParams()


class Plant:
    """The simulated plant. Advance it with `step(dt, inputs)`; read it through `probes()` and the meters."""

    def __init__(
        self,
        params: PlantParams = _DEFAULT_PARAMS,
        *,
        start_time: float,
        seed: int = 0,
        initial_house_c: float = 20.0,
        initial_tank_c: float = 45.0,
    ) -> None:
        self.params = params
        self.weather = Weather(self.params.weather, seed=seed)
        p = self.params
        self.state = PlantState(
            time=start_time,
            house_c=initial_house_c,
            tank_c=[initial_tank_c] * p.tank_layers,
            hp_leaving_c=initial_house_c,
            hp_entering_c=initial_house_c,
            dist_supply_c=initial_house_c,
            dist_return_c=initial_house_c,
        )
        self._layer_cap = p.tank_layer_mass_kg * WATER_CP_J_PER_KG_K
        # Monotone explicit scheme: the largest flow may replace at most half a layer per sub-step.
        max_flow = max(p.store_pump_flow_kg_s, p.distribution_pump_flow_kg_s)
        self._substep_s = min(p.max_substep_s, 0.5 * p.tank_layer_mass_kg / max_flow)
        self._emitter_eff = 1.0 - math.exp(
            -p.emitter_ua_w_per_k / (p.distribution_pump_flow_kg_s * WATER_CP_J_PER_KG_K)
        )
        self._decay_h = -1.0
        self._decay_flow = 0.0
        self._decay_still = 0.0

    # --- time and stepping -------------------------------------------------------------------------------
    @property
    def time(self) -> float:
        """Simulated time (UTC epoch seconds)."""
        return self.state.time

    def step(self, dt: float, inputs: PlantInputs) -> None:
        """Advance by `dt` seconds with `inputs` held, in equal sub-steps no longer than the stable limit."""
        if not math.isfinite(dt) or dt < 0:
            raise ValueError(f"dt must be a finite, non-negative number of seconds, got {dt}")
        if dt == 0:
            return
        n = max(1, math.ceil(dt / self._substep_s - 1e-9))
        h = dt / n
        t0 = self.state.time
        for i in range(n):
            self._substep(t0 + i * h, h, inputs)
        self.state.time = t0 + dt  # no drift from summing n sub-steps

    def _local_hour(self, t: float) -> float:
        return (t / 3600.0 + self.params.weather.utc_offset_h) % 24.0

    def internal_gain_w(self, t: float) -> float:
        """Internal gains (W) at `t`, from the daily profile (linear between hours)."""
        hour = self._local_hour(t)
        k = int(hour)
        frac = hour - k
        a, b = _GAIN_PROFILE[k % 24], _GAIN_PROFILE[(k + 1) % 24]
        return self.params.internal_gain_w * (a + (b - a) * frac)

    def solar_gain_w(self, t: float) -> float:
        """Solar gain (W) at `t`: a half-sine between local sunrise and sunset (a clear-ish winter day)."""
        p = self.params
        hour = self._local_hour(t)
        if not p.sunrise_local_h < hour < p.sunset_local_h:
            return 0.0
        return p.solar_gain_peak_w * math.sin(
            math.pi * (hour - p.sunrise_local_h) / (p.sunset_local_h - p.sunrise_local_h)
        )

    def _substep(self, t: float, h: float, inputs: PlantInputs) -> None:
        p, s, tank = self.params, self.state, self.state.tank_c
        n = len(tank)
        cp = WATER_CP_J_PER_KG_K
        mid_t = t + 0.5 * h
        outdoor = self.weather.outdoor_c(mid_t)
        house = s.house_c
        top, bottom = tank[0], tank[-1]

        # Heat pump. The internal flow switch needs store-pump flow; the high limit latches until re-armed.
        m_c = p.store_pump_flow_kg_s if inputs.store_pump else 0.0
        if s.high_limit_tripped and bottom <= p.hp_max_leaving_c - p.hp_high_limit_differential_k:
            s.high_limit_tripped = False
        q_hp = e_hp = 0.0
        leaving = bottom
        run = inputs.heat_pump and m_c > 0.0 and not s.high_limit_tripped and outdoor >= p.hp_min_outdoor_c
        if run:
            ramp_from = s.compressor_run_s if s.compressor_running else 0.0
            q = heat_pump_capacity_w(p, outdoor, bottom) * _mean_ramp(ramp_from, h, p.hp_ramp_s)
            leaving = bottom + q / (m_c * cp)
            if leaving >= p.hp_max_leaving_c:
                s.high_limit_tripped = True
                run = False
                leaving = bottom
            else:
                if not s.compressor_running:
                    s.compressor_starts += 1
                    s.compressor_run_s = 0.0
                q_hp = q
                e_hp = q / heat_pump_cop(p, outdoor, leaving)
                s.compressor_run_s += h
        s.compressor_running = run
        if not run:
            s.compressor_run_s = 0.0

        # Emitters: effectiveness-NTU against the house air (the air side is a large, well-mixed reservoir).
        m_d = p.distribution_pump_flow_kg_s if inputs.distribution_pump else 0.0
        q_em = self._emitter_eff * m_d * cp * (top - house)
        ret = top - q_em / (m_d * cp) if m_d > 0.0 else top

        # Immersion element with its own thermostat on the top layer.
        if s.aux_thermostat_open:
            if top <= p.aux_thermostat_c - p.aux_thermostat_differential_k:
                s.aux_thermostat_open = False
        elif top >= p.aux_thermostat_c:
            s.aux_thermostat_open = True
        q_aux = p.aux_element_w if inputs.aux_element and not s.aux_thermostat_open else 0.0

        # Tank energy rates (W) per layer. Loops: in at the top/bottom, out at the bottom/top.
        rates = [0.0] * n
        rates[0] += m_c * cp * leaving - m_d * cp * top + q_aux
        rates[-1] += m_d * cp * ret - m_c * cp * bottom
        down = m_c - m_d  # net downward flow through the layer interfaces (plug flow, upwind)
        k_mix = p.tank_layer_coupling_w_per_k
        ua_layer = p.tank_loss_ua_w_per_k / n
        q_tank_loss = 0.0
        upper = top
        for i in range(n - 1):
            lower = tank[i + 1]
            flux = down * cp * (upper if down > 0.0 else lower) + k_mix * (upper - lower)
            rates[i] -= flux
            rates[i + 1] += flux
            upper = lower
        for i in range(n):
            loss = ua_layer * (tank[i] - house)
            rates[i] -= loss
            q_tank_loss += loss

        # House: one lumped node of air and fabric.
        q_int = self.internal_gain_w(mid_t)
        q_sun = self.solar_gain_w(mid_t)
        q_env = p.house_ua_w_per_k * (house - outdoor)
        s.house_c = house + h * (q_em + q_tank_loss + q_int + q_sun - q_env) / p.house_capacitance_j_per_k

        scale = h / self._layer_cap
        for i in range(n):
            tank[i] += rates[i] * scale
        _mix_inversions(tank)

        self._update_probes(h, m_c > 0.0, leaving, bottom, m_d > 0.0, top, ret)

        s.heat_pump_heat_w, s.heat_pump_electric_w, s.aux_electric_w, s.house_heat_w = q_hp, e_hp, q_aux, q_em
        s.hp_flow_kg_s, s.dist_flow_kg_s = m_c, m_d
        s.heat_pump_heat_j += q_hp * h
        s.heat_pump_electric_j += e_hp * h
        s.aux_electric_j += q_aux * h
        s.house_heat_delivered_j += q_em * h
        s.internal_gains_j += q_int * h
        s.solar_gains_j += q_sun * h
        s.envelope_loss_j += q_env * h
        s.tank_loss_j += q_tank_loss * h

    def _update_probes(
        self,
        h: float,
        hp_flow: bool,
        leaving: float,
        entering: float,
        dist_flow: bool,
        supply: float,
        ret: float,
    ) -> None:
        """Exact first-order relaxation (stable for any h) toward the water, or toward room air when still."""
        if h != self._decay_h:
            self._decay_h = h
            self._decay_flow = math.exp(-h / self.params.probe_lag_flowing_s)
            self._decay_still = math.exp(-h / self.params.probe_relax_still_s)
        s = self.state
        room = s.house_c  # the plant room is inside the envelope
        if hp_flow:
            a = self._decay_flow
            s.hp_leaving_c = leaving + (s.hp_leaving_c - leaving) * a
            s.hp_entering_c = entering + (s.hp_entering_c - entering) * a
        else:
            a = self._decay_still
            s.hp_leaving_c = room + (s.hp_leaving_c - room) * a
            s.hp_entering_c = room + (s.hp_entering_c - room) * a
        if dist_flow:
            a = self._decay_flow
            s.dist_supply_c = supply + (s.dist_supply_c - supply) * a
            s.dist_return_c = ret + (s.dist_return_c - ret) * a
        else:
            a = self._decay_still
            s.dist_supply_c = room + (s.dist_supply_c - room) * a
            s.dist_return_c = room + (s.dist_return_c - room) * a

    # --- readings ------------------------------------------------------------------------------------------
    def probes(self) -> dict[str, float]:
        """Temperature (°C) at every PROBES point, now."""
        s, tank = self.state, self.state.tank_c
        n = len(tank)
        mid = tank[n // 2] if n % 2 else 0.5 * (tank[n // 2 - 1] + tank[n // 2])  # a sensor at half height
        return {
            "tank-top": tank[0],
            "tank-mid": mid,
            "tank-bottom": tank[-1],
            "outdoor": self.weather.outdoor_c(s.time),
            "house-air": s.house_c,
            "hp-leaving": s.hp_leaving_c,
            "hp-entering": s.hp_entering_c,
            "dist-supply": s.dist_supply_c,
            "dist-return": s.dist_return_c,
        }

    def flows(self) -> dict[str, float]:
        """Water flow (l/min) at every FLOWS point, now."""
        per_kg_s = 60.0 / WATER_KG_PER_L
        return {"hp-flow": self.state.hp_flow_kg_s * per_kg_s, "dist-flow": self.state.dist_flow_kg_s * per_kg_s}

    def probe(self, name: str) -> float:
        """Temperature (°C) at one PROBES point."""
        if name not in PROBES:
            raise KeyError(f"unknown probe {name!r}; known: {list(PROBES)}")
        return self.probes()[name]

    def tank_layers_c(self) -> tuple[float, ...]:
        """Layer temperatures (°C), top first."""
        return tuple(self.state.tank_c)

    def tank_energy_kwh(self, reference_c: float = 20.0) -> float:
        """Heat stored in the tank above `reference_c` (kWh)."""
        return sum(t - reference_c for t in self.state.tank_c) * self._layer_cap / _J_PER_KWH

    def house_energy_kwh(self, reference_c: float = 20.0) -> float:
        """Heat stored in the house's lumped mass above `reference_c` (kWh)."""
        return (self.state.house_c - reference_c) * self.params.house_capacitance_j_per_k / _J_PER_KWH

    # Instantaneous meters (averages over the last sub-step).
    @property
    def heat_pump_electric_w(self) -> float:
        """Heat pump electrical input (W)."""
        return self.state.heat_pump_electric_w

    @property
    def heat_pump_heat_w(self) -> float:
        """Heat pump heat output into the water (W)."""
        return self.state.heat_pump_heat_w

    @property
    def heat_pump_cop(self) -> float:
        """Instantaneous COP, or 0.0 while the compressor is off."""
        e = self.state.heat_pump_electric_w
        return self.state.heat_pump_heat_w / e if e > 0.0 else 0.0

    @property
    def aux_electric_w(self) -> float:
        """Immersion element electrical input (W) = its heat into the tank."""
        return self.state.aux_electric_w

    @property
    def compressor_running(self) -> bool:
        """Whether the compressor really runs (commanded, flow proven, not tripped)."""
        return self.state.compressor_running

    @property
    def compressor_starts(self) -> int:
        """Real compressor starts since construction (including restarts after a high-limit trip)."""
        return self.state.compressor_starts

    # Cumulative meters.
    @property
    def heat_pump_electric_kwh(self) -> float:
        """Heat pump electrical energy (kWh)."""
        return self.state.heat_pump_electric_j / _J_PER_KWH

    @property
    def heat_pump_heat_kwh(self) -> float:
        """Heat pump heat into the water (kWh)."""
        return self.state.heat_pump_heat_j / _J_PER_KWH

    @property
    def aux_electric_kwh(self) -> float:
        """Immersion element energy (kWh)."""
        return self.state.aux_electric_j / _J_PER_KWH

    @property
    def house_heat_delivered_kwh(self) -> float:
        """Heat the emitters delivered to the house (kWh; negative if they ever cooled it)."""
        return self.state.house_heat_delivered_j / _J_PER_KWH

    @property
    def free_gains_kwh(self) -> float:
        """Internal plus solar gains into the house (kWh)."""
        return (self.state.internal_gains_j + self.state.solar_gains_j) / _J_PER_KWH

    @property
    def envelope_loss_kwh(self) -> float:
        """Heat lost from the house to outdoors (kWh)."""
        return self.state.envelope_loss_j / _J_PER_KWH

    @property
    def tank_loss_kwh(self) -> float:
        """Standing loss of the tank into the house (kWh; an internal transfer, not a building loss)."""
        return self.state.tank_loss_j / _J_PER_KWH
