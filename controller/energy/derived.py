"""Derived channels: the heat pump's heat output and its COP now, computed from the measured channels that
`[control.energy]` names and added to every snapshot, so the store, the links, the TUI and Home Assistant see
them like any channel.

Quality follows the inputs: heat is `ok` only when flow and both temperatures are; otherwise it takes the worst
input's quality, with no value. COP now is mean heat over mean electrical power over the last `cop_window_s`;
with the compressor off (power below the starting power) it is `ok` with no value: undefined, never infinite.
With a `register` (`controller.energy.counter`, attached once the store is open), the heat meter's register joins
them: kWh of heat that only count up, saved before shown.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection
from dataclasses import dataclass, field
from types import MappingProxyType

from controller.energy.counter import HEAT_ENERGY_CHANNEL, HeatRegister
from controller.energy.integrate import Sample
from controller.energy.params import EnergyParams
from controller.energy.physics import heat_w
from controller.energy.starts import cop_now
from controller.readings import Quality, Reading, Snapshot
from controller.store.recorder import ChannelPolicy

HEAT_CHANNEL = "hp-heat"
COP_CHANNEL = "hp-cop"
# How the store thins them, like a layout channel's deadband and keep-alive.
DERIVED_POLICIES = {
    HEAT_CHANNEL: ChannelPolicy(deadband=50.0, keepalive_s=300.0),
    COP_CHANNEL: ChannelPolicy(deadband=0.05, keepalive_s=300.0),
    HEAT_ENERGY_CHANNEL: ChannelPolicy(deadband=0.05, keepalive_s=300.0),
}
DERIVED_UNITS = {HEAT_CHANNEL: "W", COP_CHANNEL: "", HEAT_ENERGY_CHANNEL: "kWh"}
_SEVERITY = (Quality.OK, Quality.STALE, Quality.OUT_OF_RANGE, Quality.FAULT)


def heat_reading(snapshot: Snapshot, params: EnergyParams) -> Reading | None:
    """The heat output reading, or None when the layout measures no flow (nothing to derive it from)."""
    names = (params.flow, params.leaving, params.entering)
    inputs = [snapshot.readings.get(name) for name in names]
    if any(r is None for r in inputs):
        return None
    present = [r for r in inputs if r is not None]
    timestamp = max(r.timestamp for r in present)
    bad = [r for r in present if r.quality is not Quality.OK or r.value is None]
    if bad:
        worst = max(bad, key=lambda r: _SEVERITY.index(r.quality))
        detail = f"{worst.channel} {worst.quality.value}" + (f": {worst.detail}" if worst.detail else "")
        quality = worst.quality if worst.quality is not Quality.OK else Quality.FAULT  # OK but no value: a fault
        return Reading(HEAT_CHANNEL, None, "W", quality, timestamp, detail)
    flow, leaving, entering = (r.value for r in present)
    assert flow is not None and leaving is not None and entering is not None
    return Reading(HEAT_CHANNEL, heat_w(flow, leaving, entering), "W", Quality.OK, timestamp)


@dataclass
class Derived:
    """Adds the derived channels to snapshots; keeps the short history COP now needs (per input sample, once)."""

    params: EnergyParams
    elec: deque[Sample] = field(default_factory=deque)
    heat: deque[Sample] = field(default_factory=deque)
    register: HeatRegister | None = None
    _cached: tuple[tuple[object, ...], dict[str, Reading]] | None = None

    def apply(self, snapshot: Snapshot) -> Snapshot:
        """`snapshot` with the derived readings; they are computed once per new input sample (snapshots are taken
        many times a second by the loop, the recorder and the links)."""
        names = (self.params.flow, self.params.leaving, self.params.entering, self.params.heat_pump_power)
        key = tuple(snapshot.readings.get(name) for name in names)
        if self._cached is not None and self._cached[0] == key:
            derived = self._cached[1]
        else:
            derived = self._derive(snapshot)
            self._cached = (key, derived)
        if not derived:
            return snapshot
        return Snapshot(snapshot.taken_at, MappingProxyType({**snapshot.readings, **derived}))

    def _derive(self, snapshot: Snapshot) -> dict[str, Reading]:
        heat = heat_reading(snapshot, self.params)
        if heat is None:
            return {}
        derived = {HEAT_CHANNEL: heat}
        if self.register is not None:
            shown = self.register.add(Sample(heat.timestamp, heat.value if heat.quality is Quality.OK else None))
            derived[HEAT_ENERGY_CHANNEL] = Reading(
                HEAT_ENERGY_CHANNEL, shown, "kWh", Quality.OK, heat.timestamp, self.register.unsaved
            )
        power = snapshot.readings.get(self.params.heat_pump_power)
        if power is not None:
            self._remember(self.elec, power.timestamp, snapshot.value(self.params.heat_pump_power))
            self._remember(self.heat, heat.timestamp, heat.value if heat.quality is Quality.OK else None)
            derived[COP_CHANNEL] = self.cop(power, heat, max(power.timestamp, heat.timestamp))
        return derived

    def cop(self, power: Reading, heat: Reading, now: float) -> Reading:
        timestamp = max(power.timestamp, heat.timestamp)
        if power.quality is not Quality.OK or heat.quality is not Quality.OK:
            worst = power if power.quality is not Quality.OK else heat
            return Reading(COP_CHANNEL, None, "", worst.quality, timestamp, f"{worst.channel} {worst.quality.value}")
        value = cop_now(list(self.elec), list(self.heat), self.params.cop_window_s, now, self.params.starting_w)
        detail = "" if value is not None else "compressor off: COP undefined"
        return Reading(COP_CHANNEL, value, "", Quality.OK, timestamp, detail)

    def _remember(self, history: deque[Sample], t: float, value: float | None) -> None:
        if history and history[-1].t >= t:
            return  # the same sample seen through another snapshot
        history.append(Sample(t, value))
        while history and history[0].t < t - self.params.cop_window_s:
            history.popleft()


def derived_channels(channels: Collection[str], params: EnergyParams) -> dict[str, str]:
    """The derived channels a layout with these `channels` gets, with their units: heat and its register when flow
    and both temperatures are measured, COP when the heat pump's power is too."""
    if not all(name in channels for name in (params.flow, params.leaving, params.entering)):
        return {}
    names = [HEAT_CHANNEL, HEAT_ENERGY_CHANNEL] + ([COP_CHANNEL] if params.heat_pump_power in channels else [])
    return {name: DERIVED_UNITS[name] for name in names}
