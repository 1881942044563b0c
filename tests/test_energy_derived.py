"""Derived channels: heat output and COP now, added to snapshots, with quality that follows their inputs."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from controller.energy.derived import COP_CHANNEL, HEAT_CHANNEL, Derived, heat_reading
from controller.energy.params import EnergyParams
from controller.energy.physics import heat_w
from controller.readings import Quality, Reading, Snapshot

PARAMS = EnergyParams()


def snap(t: float, power: float | None = 1500.0, flow: float = 12.0, leaving: float = 40.0, entering: float = 35.0,
         flow_quality: Quality = Quality.OK) -> Snapshot:  # fmt: skip
    readings = {
        "hp-power": Reading("hp-power", power, "W", Quality.OK if power is not None else Quality.FAULT, t),
        "hp-flow": Reading(
            "hp-flow",
            flow if flow_quality is Quality.OK else None,
            "l/min",
            flow_quality,
            t,
            "" if flow_quality is Quality.OK else "volts out of range",
        ),
        "hp-leaving": Reading("hp-leaving", leaving, "degC", Quality.OK, t),
        "hp-entering": Reading("hp-entering", entering, "degC", Quality.OK, t),
    }
    return Snapshot(t, MappingProxyType(readings))


def test_heat_is_derived_from_flow_and_the_two_temperatures() -> None:
    reading = heat_reading(snap(10.0), PARAMS)
    assert reading is not None and reading.quality is Quality.OK and reading.unit == "W"
    assert reading.value == pytest.approx(heat_w(12.0, 40.0, 35.0))


@pytest.mark.parametrize("quality", [Quality.FAULT, Quality.STALE, Quality.OUT_OF_RANGE])
def test_heat_takes_the_quality_of_a_bad_input(quality: Quality) -> None:
    reading = heat_reading(snap(10.0, flow_quality=quality), PARAMS)
    assert reading is not None and reading.value is None and reading.quality is quality
    assert reading.detail.startswith("hp-flow ")


def test_no_flow_channel_means_no_heat_channel() -> None:
    readings = dict(snap(1.0).readings)
    del readings["hp-flow"]
    assert heat_reading(Snapshot(1.0, MappingProxyType(readings)), PARAMS) is None
    assert HEAT_CHANNEL not in Derived(PARAMS).apply(Snapshot(1.0, MappingProxyType(readings))).readings


def test_cop_now_over_the_window_and_undefined_when_off() -> None:
    derived = Derived(PARAMS)
    for t in range(0, 120):
        out = derived.apply(snap(float(t)))
    cop = out.readings[COP_CHANNEL]
    assert cop.quality is Quality.OK and cop.value == pytest.approx(heat_w(12.0, 40.0, 35.0) / 1500.0)
    off = derived.apply(snap(121.0, power=30.0, leaving=35.2))
    assert off.readings[COP_CHANNEL].value is None and "undefined" in off.readings[COP_CHANNEL].detail
    assert off.readings[HEAT_CHANNEL].value is not None  # heat still shown (the water is still warmer)


def test_defrost_shows_negative_heat() -> None:
    out = Derived(PARAMS).apply(snap(5.0, leaving=30.0, entering=33.0))
    assert out.readings[HEAT_CHANNEL].value is not None and out.readings[HEAT_CHANNEL].value < 0


def test_a_meter_fault_makes_cop_unavailable() -> None:
    out = Derived(PARAMS).apply(snap(5.0, power=None))
    assert out.readings[COP_CHANNEL].quality is Quality.FAULT and out.readings[COP_CHANNEL].value is None
