"""Water's properties and the heat a heat pump puts into its water loop.

Heat = mass flow × c_p × (leaving − entering). The flow sensor measures volume (l/min), so mass flow takes water's
density; both c_p and density are taken at the mean of the two temperatures (the loop's water is between them).
Values at 1 atm from the IAPWS-95 formulation (as tabulated by the NIST Chemistry WebBook), every 10 °C,
interpolated linearly; between points the interpolation is within 0.02 % (c_p) of the formulation.
A negative ΔT (a defrost pulls heat back out of the loop) gives negative heat: kept, never clipped.
"""

from __future__ import annotations

from bisect import bisect_right

_STEP_C = 10.0
_CP_J_PER_KG_K = (4219.9, 4195.5, 4184.1, 4179.8, 4179.4, 4181.3, 4185.0, 4190.1, 4196.8, 4205.2, 4215.9)
_DENSITY_KG_PER_M3 = (999.84, 999.70, 998.21, 995.65, 992.22, 988.03, 983.20, 977.76, 971.79, 965.31, 958.35)
_TEMPERATURES_C = tuple(i * _STEP_C for i in range(len(_CP_J_PER_KG_K)))


def _interp(t: float, values: tuple[float, ...]) -> float:
    """Linear interpolation in a table at 0, 10, ... 100 °C, clamped at its ends."""
    if t <= _TEMPERATURES_C[0]:
        return values[0]
    if t >= _TEMPERATURES_C[-1]:
        return values[-1]
    i = bisect_right(_TEMPERATURES_C, t) - 1
    fraction = (t - _TEMPERATURES_C[i]) / _STEP_C
    return values[i] + (values[i + 1] - values[i]) * fraction


SECONDS_PER_MINUTE = 60.0
LITRES_PER_M3 = 1000.0


def water_cp(temperature_c: float) -> float:
    """Specific heat capacity of liquid water (J/(kg·K)) at `temperature_c` (clamped to 0..100 °C)."""
    return _interp(temperature_c, _CP_J_PER_KG_K)


def water_density(temperature_c: float) -> float:
    """Density of liquid water (kg/m³) at `temperature_c` (clamped to 0..100 °C)."""
    return _interp(temperature_c, _DENSITY_KG_PER_M3)


def heat_w(flow_l_per_min: float, leaving_c: float, entering_c: float) -> float:
    """Heat put into the water (W): volume flow (l/min) × density × c_p × (leaving − entering), both properties at
    the mean temperature. Negative when the water leaves colder than it came (defrost)."""
    mean_c = (leaving_c + entering_c) / 2.0
    mass_kg_per_s = flow_l_per_min / SECONDS_PER_MINUTE / LITRES_PER_M3 * water_density(mean_c)
    return mass_kg_per_s * water_cp(mean_c) * (leaving_c - entering_c)


def heat_or_none(flow_l_per_min: float | None, leaving_c: float | None, entering_c: float | None) -> float | None:
    """`heat_w`, or None when any input has no trustworthy value: a derived channel's quality follows its inputs."""
    if flow_l_per_min is None or leaving_c is None or entering_c is None:
        return None
    return heat_w(flow_l_per_min, leaving_c, entering_c)
