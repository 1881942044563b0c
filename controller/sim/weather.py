"""Seeded, deterministic outdoor temperature.

The outdoor temperature is a daily cosine (coldest just before dawn) plus two Ornstein-Uhlenbeck processes:
fast weather noise (hours) and an optional slow drift (days: a cold spell, a mild spell). Each process is
sampled on a fixed time grid and linearly interpolated, so `outdoor_c(t)` depends only on the seed and `t`,
never on which other times were asked for first or in which order.

Making an OU sequence order-independent: the grid is cut into blocks whose innovations come from a generator
seeded by (seed, block index). A block's values are computed by running the AR(1) recursion from zero through
enough preceding blocks that the starting condition has decayed to below e^-15 of sigma. Two neighbouring
blocks therefore agree at their seam to ~1e-7 sigma, and any block can be computed on its own.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["WEATHER_PRESETS", "Weather", "WeatherParams"]

_DAY_S = 86_400.0


@dataclass(frozen=True)
class WeatherParams:
    """Statistics of the outdoor temperature (°C) at a site.

    `coldest_hour_local` is the local hour of the daily minimum (typically around dawn); `utc_offset_h`
    converts UTC to local time. `noise_*` is hour-scale weather noise, `drift_*` an optional multi-day drift.
    """

    mean_c: float
    daily_amplitude_c: float
    coldest_hour_local: float = 5.0
    utc_offset_h: float = 0.0
    noise_sigma_c: float = 0.5
    noise_tau_s: float = 3 * 3600
    drift_sigma_c: float = 0.0
    drift_tau_s: float = 3 * 86_400

    def __post_init__(self) -> None:
        if self.daily_amplitude_c < 0:
            raise ValueError(f"daily_amplitude_c must be >= 0, got {self.daily_amplitude_c}")
        for name in ("noise_sigma_c", "drift_sigma_c"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("noise_tau_s", "drift_tau_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")


WEATHER_PRESETS: dict[str, WeatherParams] = {
    # A hard continental winter week.
    "cold": WeatherParams(mean_c=-5.0, daily_amplitude_c=4.0, drift_sigma_c=1.5),
    # A maritime shoulder season: the tank matters more than the heat pump's capacity.
    "mild": WeatherParams(mean_c=8.0, daily_amplitude_c=5.0, noise_sigma_c=0.8, drift_sigma_c=2.0),
    # Below the heat pump's design temperature: the auxiliary element has to help.
    "freezing": WeatherParams(mean_c=-15.0, daily_amplitude_c=3.0, drift_sigma_c=1.0),
}


class _GridOU:
    """An Ornstein-Uhlenbeck process sampled on a fixed grid, computable block by block (see module doc)."""

    _BLOCK = 256

    def __init__(self, sigma: float, tau_s: float, grid_s: float, key: str) -> None:
        self._grid_s = grid_s
        a = math.exp(-grid_s / tau_s)
        self._a = a
        # Exact discretisation of OU: the stationary variance stays sigma^2 whatever the grid.
        self._b = sigma * math.sqrt(1.0 - a * a)
        warm_points = math.ceil(15.0 * tau_s / grid_s)
        self._warm_blocks = max(1, math.ceil(warm_points / self._BLOCK))
        self._key = key
        self._cache: dict[int, list[float]] = {}

    def _innovations(self, block: int) -> list[float]:
        # Seeding with a str uses SHA-512 inside `random`: stable across runs, platforms and PYTHONHASHSEED.
        rng = random.Random(f"{self._key}/{block}")
        return [rng.gauss(0.0, 1.0) for _ in range(self._BLOCK)]

    def _block(self, block: int) -> list[float]:
        values = self._cache.get(block)
        if values is not None:
            return values
        a, b = self._a, self._b
        x = 0.0
        for warm in range(block - self._warm_blocks, block):
            for e in self._innovations(warm):
                x = a * x + b * e
        values = []
        for e in self._innovations(block):
            x = a * x + b * e
            values.append(x)
        if len(self._cache) >= 64:  # a year of blocks would be wasteful; simulations move forward
            self._cache.clear()
        self._cache[block] = values
        return values

    def _point(self, k: int) -> float:
        block, index = divmod(k, self._BLOCK)
        return self._block(block)[index]

    def value(self, t: float) -> float:
        u = t / self._grid_s
        k = math.floor(u)
        frac = u - k
        x0 = self._point(k)
        x1 = self._point(k + 1)
        return x0 + (x1 - x0) * frac


class Weather:
    """Outdoor temperature for one seed: `outdoor_c(t)` is a pure function of `t` (UTC epoch seconds)."""

    def __init__(self, params: WeatherParams, *, seed: int) -> None:
        self.params = params
        self.seed = seed
        self._noise: _GridOU | None = None
        self._drift: _GridOU | None = None
        if params.noise_sigma_c > 0:
            # A grid a quarter of tau (at most 10 min) keeps the interpolation error well below sigma.
            grid = min(600.0, params.noise_tau_s / 4.0)
            self._noise = _GridOU(params.noise_sigma_c, params.noise_tau_s, grid, f"hearth-weather/{seed}/noise")
        if params.drift_sigma_c > 0:
            grid = min(3 * 3600.0, params.drift_tau_s / 4.0)
            self._drift = _GridOU(params.drift_sigma_c, params.drift_tau_s, grid, f"hearth-weather/{seed}/drift")
        self._omega = 2.0 * math.pi / _DAY_S
        self._phase_s = (params.utc_offset_h - params.coldest_hour_local) * 3600.0
        self._recent: dict[float, float] = {}  # the plant, its probes and the tally ask for the same few times

    def diurnal_c(self, t: float) -> float:
        """The deterministic part: mean minus a cosine whose minimum falls at the coldest local hour."""
        p = self.params
        return p.mean_c - p.daily_amplitude_c * math.cos(self._omega * (t + self._phase_s))

    def outdoor_c(self, t: float) -> float:
        """Outdoor air temperature (°C) at UTC epoch second `t`."""
        known = self._recent.get(t)
        if known is not None:
            return known
        if len(self._recent) >= 8:
            self._recent.clear()
        value = self._recent[t] = self._compute(t)
        return value

    def _compute(self, t: float) -> float:
        value = self.diurnal_c(t)
        if self._noise is not None:
            value += self._noise.value(t)
        if self._drift is not None:
            value += self._drift.value(t)
        return value
