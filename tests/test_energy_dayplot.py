"""The Energy screen's day plot: 5-minute time-weighted means of one local day from the store's thinned readings
(gaps stay gaps, DST days have 276 or 300 buckets), the `energy_day` answer, and the screen that draws it (picked
with keys), readable in 80×24."""

from __future__ import annotations

import asyncio
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from textual.pilot import Pilot

from controller.energy.dayplot import bucket_means, day_curves, plot_channels
from controller.energy.days import day_bounds
from controller.energy.integrate import Sample
from controller.layout.load import load_layout
from controller.protocol import Request, Response
from controller.readings import Quality, Reading, Snapshot
from controller.store import Store, policies_for
from tests.test_tui_helpers import make_app, settle, text_of
from tui.app import HearthApp

ROOT = Path(__file__).resolve().parent.parent
ZONE = ZoneInfo("Europe/Brussels")

CASES = [
    # (what, samples, start, end, means)
    ("a held value is its own mean", [Sample(t, 5.0) for t in (0, 300, 600, 900)], 0, 900, [5.0, 5.0, 5.0]),
    ("a step at mid-bucket weighs by time", [Sample(0, 0.0), Sample(150, 10.0), Sample(300, 10.0)], 0, 300, [5.0]),
    ("a hole longer than the gap is None, not 0", [Sample(0, 1.0), Sample(300, 1.0), Sample(2000, 1.0),
                                                   Sample(2400, 1.0)], 0, 2400, [1.0, None, None, None, None, None,
                                                                                 1.0, 1.0]),
    ("a value-less sample makes both sides gaps", [Sample(0, 2.0), Sample(300, None), Sample(600, 2.0)], 0, 600,
     [None, None]),
    ("a row before the day holds into it", [Sample(-100, 3.0), Sample(300, 3.0), Sample(600, 3.0)], 0, 600,
     [3.0, 3.0]),
    ("nothing recorded: all None", [], 0, 600, [None, None]),
]  # fmt: skip


@pytest.mark.parametrize(("what", "samples", "start", "end", "means"), CASES, ids=[c[0] for c in CASES])
def test_bucket_means(what: str, samples: list[Sample], start: float, end: float, means: list[float | None]) -> None:
    assert bucket_means(samples, start, end, 300.0, max_gap=450.0) == means


@pytest.mark.parametrize(("day", "buckets"), [(date(2026, 3, 29), 276), (date(2026, 10, 25), 300),
                                              (date(2026, 1, 7), 288)])  # fmt: skip
def test_a_dst_day_has_its_own_number_of_buckets(day: date, buckets: int) -> None:
    start, end = day_bounds(day, ZONE)
    assert len(bucket_means([Sample(start, 1.0), Sample(end, 1.0)], start, end, 300.0, 1e9)) == buckets


def test_day_curves_from_a_store_with_a_recorded_day(tmp_path: Path) -> None:
    layout = load_layout(ROOT / "layouts/demo.toml")
    zone = ZoneInfo(layout.site.timezone)
    day = date(2026, 1, 7)
    start, end = day_bounds(day, zone)
    policies = policies_for(layout.channels)
    with Store.open(tmp_path / "hearth.db") as store:
        for i in range(0, int(end - start), 10):  # every 10 s: the heat pump runs 06:00-12:00 at 2 kW
            t = start + i
            running = 6 * 3600 <= i < 12 * 3600
            values = {"hp-power": 2000.0 if running else 15.0, "hp-flow": 14.0 if running else 0.0,
                      "hp-leaving": 40.0, "hp-entering": 35.0, "outdoor": 2.0, "house-air": 20.5}  # fmt: skip
            readings = {n: Reading(n, v, "", Quality.OK, t) for n, v in values.items()}
            store.record(Snapshot(t, MappingProxyType(readings)), policies)
            if i % 600 == 0:
                store.flush()
        store.flush()
        curves = day_curves(store, layout, day)
    assert curves["day"] == "2026-01-07" and (curves["start"], curves["end"]) == (start, end)
    assert set(curves["series"]) == set(plot_channels(layout)) - {"heat"} | {"heat"} & set(curves["series"])
    elec = curves["series"]["elec"]["values"]
    assert len(elec) == 288
    assert elec[6 * 12 + 1] == pytest.approx(2000.0) and elec[3 * 12] == pytest.approx(15.0)
    assert curves["series"]["outdoor_c"]["values"][100] == pytest.approx(2.0)
    assert curves["series"]["flow_rate"]["unit"] == "l/min"


def day_record(day: str = "2026-03-30") -> dict[str, Any]:
    start, end = day_bounds(date.fromisoformat(day), ZONE)
    count = round((end - start) / 300)
    on = [2000.0 if 72 <= i < 144 else 20.0 for i in range(count)]
    series = {
        "elec": {"channel": "hp-power", "what": "electricity", "unit": "W", "values": on},
        "heat": {"channel": "hp-heat", "what": "heat", "unit": "W", "values": [v * 3 if v > 100 else 0 for v in on]},
        "flow_rate": {"channel": "hp-flow", "what": "flow", "unit": "l/min",
                      "values": [14.0 if v > 100 else 0.0 for v in on]},
        "flow_c": {"channel": "hp-leaving", "what": "flow temperature", "unit": "degC",
                   "values": [45.0 if v > 100 else 30.0 for v in on]},
        "outdoor_c": {"channel": "outdoor", "what": "outdoor", "unit": "degC",
                      "values": [None if 200 <= i < 210 else 3.0 for i in range(count)]},
    }  # fmt: skip
    return {"day": day, "start": start, "end": end, "bucket_s": 300.0, "series": series}


def respond(request: Request) -> Response:
    from tests.test_tui_energy import respond as energy

    if request.op == "energy_day":
        assert request.day is not None
        return Response(id=request.id, ok=True, energy_day=day_record(request.day))
    return energy(request)


def test_the_day_plot_is_picked_with_keys_and_says_which_day() -> None:
    async def scenario() -> None:
        app, transport, _clock = make_app(responder=respond)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("e")
            await settle(pilot, lambda: "Today so far" in text_of(app.screen.query_one("#energy-today")))
            await pilot.press("d")
            status = app.screen.query_one("#energy-plot-status")
            await settle(pilot, lambda: "2026-03-30" in text_of(status))
            assert (transport.requests[-1].op, transport.requests[-1].day) == ("energy_day", "2026-03-30")
            assert not app.screen.query_one("#energy-box").display
            await pilot.press("left_square_bracket")
            await settle(pilot, lambda: "2026-03-29" in text_of(status))
            assert "23 hours" in text_of(status)  # the spring DST day
            await pilot.press("right_square_bracket", "right_square_bracket")  # back to today, and no further
            await settle(pilot, lambda: "2026-03-30" in text_of(status))
            assert [r.day for r in transport.requests if r.op == "energy_day"] == [
                "2026-03-30",
                "2026-03-29",
                "2026-03-30",
            ]
            await pilot.press("d")
            await settle(pilot, lambda: bool(app.screen.query_one("#energy-box").display))

    asyncio.run(scenario())


def test_the_day_plot_says_when_the_transport_cannot_give_it() -> None:
    def refuse(request: Request) -> Response:
        return Response(id=request.id, ok=False, error=f"{request.op} is not available over MQTT")

    async def scenario() -> None:
        app, _transport, _clock = make_app(responder=refuse)
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("e", "d")
            status = app.screen.query_one("#energy-plot-status")
            await settle(pilot, lambda: "unavailable" in text_of(status))
            assert "local socket" in text_of(status)

    asyncio.run(scenario())


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_day_plot_snapshot(snap_compare: Any, size: tuple[int, int]) -> None:
    app, _transport, _clock = make_app(responder=respond)

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, HearthApp)
        await settle(pilot, lambda: pilot.app.model.state is not None)  # type: ignore[attr-defined]
        await pilot.press("e")
        await settle(pilot, lambda: "Today so far" in text_of(pilot.app.screen.query_one("#energy-today")))
        await pilot.press("d")
        status = pilot.app.screen.query_one("#energy-plot-status")
        await settle(pilot, lambda: "2026-03-30" in text_of(status))

    assert snap_compare(app, terminal_size=size, run_before=run_before)


def test_the_plotted_days_totals_put_the_meters_counter_beside_the_integrated_electricity() -> None:
    from tui.screens.energy import day_totals_text

    row = {"heat_kwh": 18.8, "elec_kwh": 6.28, "cop": 2.99, "meter_kwh": 6.3, "meter_difference_pct": -0.3175}
    assert day_totals_text(row).plain == "  heat 18.80 kWh  electricity 6.28 kWh (meter 6.30 kWh, -0.32 %)  COP 2.99"
    assert "meter" not in day_totals_text({**row, "meter_kwh": None}).plain
    assert "no daily totals" in day_totals_text(None).plain
