"""Solar surplus: charge the tank with PV the house would otherwise export.

A small rule beside the local policy (and the planner), not inside it: when the smart meter shows export of at
least `solar_export_w` for `solar_for_s`, the heat pump and its store pump are asked on to charge the tank, until
its bottom reaches `solar_tank_c` or the house has been importing more than `solar_import_w` (the surplus no
longer carries most of the heat pump) for `solar_for_s`. After a warm tank it waits for the bottom to cool by
`restart_k` (a tank kept near the heat pump's own high limit makes it trip and short-cycle). The interlocks
still apply last. Times are monotonic.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import Field

from controller.layout.base import Strict


class SolarParams(Strict):
    # Off by default: in the simulated weeks (bench/energy_week.py) it absorbed no more PV than the time-of-use
    # policy, whose cheap window already covers midday, and quadrupled the compressor starts in a mild week.
    enabled: bool = Field(default=False, description="charge the tank with exported PV when there is a P1 reader")
    export_w: float = Field(default=1000.0, gt=0, le=50_000, description="export that counts as a surplus")
    for_s: float = Field(default=300.0, ge=0, le=3600, description="how long it must last (and how long a lack)")
    import_w: float = Field(default=1000.0, ge=0, le=10_000, description="import that ends a surplus charge")
    tank_c: float = Field(default=48.0, ge=25, le=80, description="charge until the tank bottom reaches this")
    restart_k: float = Field(default=5.0, ge=0, le=20, description="after a full tank, wait for it to cool this much")


@dataclass(frozen=True, slots=True)
class SolarState:
    exporting_since: float | None = None
    charging: bool = False
    short_since: float | None = None
    full: bool = False  # the last charge ended at a warm tank: wait until it has cooled by restart_k


def solar_step(
    state: SolarState, grid_w: float | None, tank_bottom_c: float | None, params: SolarParams, now: float
) -> tuple[SolarState, str | None]:
    """The next state, and the reason to charge now (None: no surplus charge). `grid_w`: net grid power, positive
    for import; None (no P1 reading) or an unknown tank bottom ends any surplus charge."""
    if not params.enabled or grid_w is None or tank_bottom_c is None:
        return SolarState(), None
    if tank_bottom_c >= params.tank_c or (state.full and tank_bottom_c >= params.tank_c - params.restart_k):
        return SolarState(full=True), None
    if not state.charging:
        if grid_w > -params.export_w:
            return SolarState(), None
        since = state.exporting_since if state.exporting_since is not None else now
        if now - since < params.for_s:
            return SolarState(exporting_since=since), None
        state = SolarState(exporting_since=since, charging=True)
    elif grid_w > params.import_w:
        short = state.short_since if state.short_since is not None else now
        if now - short >= params.for_s:
            return SolarState(), None
        state = SolarState(state.exporting_since, True, short)
    else:
        state = SolarState(state.exporting_since, True, None)
    flow = f"exporting {-grid_w:.0f} W" if grid_w < 0 else f"importing {grid_w:.0f} W"
    return state, f"solar surplus: charging the tank with PV ({flow}) until its bottom reaches {params.tank_c:g} °C"
