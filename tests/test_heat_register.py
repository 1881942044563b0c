"""The heat meter's register (kWh of heat for Home Assistant's Energy dashboard): counts up only, pays back defrost
before it rises again, never fills a gap, never counts a replayed sample twice, and resumes after a restart from a
saved value at least as high as anything it showed."""

from __future__ import annotations

import itertools
from pathlib import Path
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.energy.counter import HEAT_ENERGY_CHANNEL, STORE_KEY, HeatRegister
from controller.energy.derived import Derived
from controller.energy.integrate import Sample
from controller.energy.params import EnergyParams
from controller.readings import Quality, Reading, Snapshot
from controller.store import Store


class Sink:
    """The store's small records in memory; `failing` makes every save fail (a full disk)."""

    def __init__(self) -> None:
        self.kept: dict[str, object] = {}
        self.failing = False

    def remember(self, key: str, value: object, synced: bool = False) -> bool:
        assert synced, "the register must be saved in a synced commit"
        if self.failing:
            return False
        self.kept[key] = value
        return True

    def recall(self, key: str) -> object:
        return self.kept.get(key)


def feed(register: HeatRegister, samples: list[tuple[float, float | None]]) -> list[float]:
    return [register.add(Sample(t, w)) for t, w in samples]


def steady(watts: float, start: float, seconds: int, every: float = 1.0) -> list[tuple[float, float | None]]:
    return [(start + i * every, watts) for i in range(int(seconds / every) + 1)]


CASES = [
    # (what, samples, register shown at the end in kWh)
    ("3.6 kW for an hour", steady(3600.0, 0.0, 3600), 3.6),
    ("1 kW for 30 min in 10 s samples", steady(1000.0, 0.0, 1800, 10.0), 0.5),
    ("a 10-minute hole is a gap, not filled", steady(3600.0, 0.0, 600) + steady(3600.0, 1200.0, 600), 1.2),
    ("a sample without a value is a gap", [(0.0, 3600.0), (1.0, None), (2.0, 3600.0), (3.0, 3600.0)], 0.0),
    ("replayed samples count once", steady(3600.0, 0.0, 600) + steady(3600.0, 0.0, 600), 0.6),
    ("defrost is paid back before the register rises",
     steady(3600.0, 0.0, 1000) + steady(-3600.0, 1001.0, 499) + steady(3600.0, 1501.0, 499), 1.0),
    ("negative heat alone never counts", steady(-2000.0, 0.0, 600), 0.0),
]  # fmt: skip


@pytest.mark.parametrize(("what", "samples", "kwh"), CASES, ids=[c[0] for c in CASES])
def test_register_cases(what: str, samples: list[tuple[float, float | None]], kwh: float) -> None:
    register = HeatRegister(max_gap_s=60.0, step_kwh=0.01)
    register.restore(Sink())
    shown = feed(register, samples)
    assert shown[-1] == pytest.approx(kwh, abs=0.0101)
    assert all(b >= a for a, b in itertools.pairwise(shown))


def test_the_defrost_case_shows_the_debt_first() -> None:
    register = HeatRegister(max_gap_s=60.0, step_kwh=0.01)
    register.restore(Sink())
    feed(register, steady(3600.0, 0.0, 1000))
    assert register.shown_kwh == pytest.approx(1.0)
    feed(register, steady(-3600.0, 1001.0, 499))  # 0.5 kWh of defrost (and 1 s of gap before it)
    assert register.shown_kwh == pytest.approx(1.0) and register.net_kwh == pytest.approx(0.5, abs=0.002)


def test_a_restart_resumes_from_the_store_on_disk_and_never_goes_back(tmp_path: Path) -> None:
    with Store.open(tmp_path / "hearth.db") as store:
        first = HeatRegister(max_gap_s=60.0, step_kwh=0.01)
        first.restore(store)
        shown = feed(first, steady(3600.0, 0.0, 1805))  # 1.805 kWh: 1.80 shown and saved
        assert shown[-1] == pytest.approx(1.80)
    with Store.open(tmp_path / "hearth.db") as store:
        assert store.recall(STORE_KEY) == {"shown_kwh": 1.8, "net_kwh": pytest.approx(1.80, abs=0.001)}
        second = HeatRegister(max_gap_s=60.0, step_kwh=0.01)
        second.restore(store)
        assert second.shown_kwh == pytest.approx(1.80)
        # the first sample after the restart has no neighbour: the downtime is not counted
        after = feed(second, steady(3600.0, 5000.0, 600))
        assert after[0] == pytest.approx(1.80) and after[-1] == pytest.approx(2.40)


def test_a_register_the_store_cannot_save_holds_still_and_says_why() -> None:
    sink = Sink()
    register = HeatRegister(max_gap_s=60.0, step_kwh=0.01)
    register.restore(sink)
    feed(register, steady(3600.0, 0.0, 600))
    sink.failing = True
    feed(register, steady(3600.0, 601.0, 600))
    assert register.shown_kwh == pytest.approx(0.6) and "could not save" in register.unsaved
    sink.failing = False
    feed(register, steady(3600.0, 1202.0, 10))
    assert register.shown_kwh == pytest.approx(1.21) and register.unsaved == ""


def test_a_saved_value_that_is_not_a_number_is_not_restored() -> None:
    sink = Sink()
    sink.kept[STORE_KEY] = {"shown_kwh": "lots"}
    register = HeatRegister(max_gap_s=60.0, step_kwh=0.01)
    register.restore(sink)
    assert register.shown_kwh == 0.0


steps = st.lists(
    st.tuples(
        st.floats(min_value=0.5, max_value=120.0),  # seconds to the next sample
        st.one_of(st.none(), st.floats(min_value=-3000.0, max_value=9000.0)),  # heat W, or no value
        st.booleans(),  # the controller restarts before this sample
    ),
    max_size=200,
)


@settings(max_examples=60, deadline=None)
@given(steps)
def test_property_never_backwards_never_more_than_the_heat_delivered(
    plan: list[tuple[float, float | None, bool]],
) -> None:
    sink = Sink()
    register = HeatRegister(max_gap_s=60.0, step_kwh=0.01)
    register.restore(sink)
    t, seen, positive_kwh = 0.0, [0.0], 0.0
    previous: tuple[float, float | None] | None = None
    for dt, watts, restart in plan:
        t += dt
        if restart:
            register = HeatRegister(max_gap_s=60.0, step_kwh=0.01)
            register.restore(sink)
            previous = None
        if previous is not None and previous[1] is not None and watts is not None and dt <= 60.0:
            positive_kwh += max(0.0, (previous[1] + watts) / 2 * dt) / 3.6e6
        previous = (t, watts)
        seen.append(register.add(Sample(t, watts)))
    assert all(b >= a for a, b in itertools.pairwise(seen)), "the register went backwards"
    assert seen[-1] <= positive_kwh + 1e-9, "the register shows heat that was never delivered"


def test_derived_adds_the_register_reading_beside_heat() -> None:
    derived = Derived(EnergyParams(), register=HeatRegister(max_gap_s=60.0))
    assert derived.register is not None
    derived.register.restore(Sink())
    out = None
    for t in range(0, 601):
        readings = {
            "hp-power": Reading("hp-power", 1500.0, "W", Quality.OK, float(t)),
            "hp-flow": Reading("hp-flow", 12.0, "l/min", Quality.OK, float(t)),
            "hp-leaving": Reading("hp-leaving", 40.0, "degC", Quality.OK, float(t)),
            "hp-entering": Reading("hp-entering", 35.0, "degC", Quality.OK, float(t)),
        }
        out = derived.apply(Snapshot(float(t), MappingProxyType(readings)))
    assert out is not None
    reading = out.readings[HEAT_ENERGY_CHANNEL]
    heat_w = out.readings["hp-heat"].value
    assert heat_w is not None and reading.unit == "kWh" and reading.quality is Quality.OK
    assert reading.value == pytest.approx(heat_w * 600 / 3.6e6, abs=0.101)  # in whole 0.1 kWh (STEP_KWH)
    assert reading.value > 0
