"""The Energy screen (`e`): daily bars of heat and electricity with COP, starts and running hours, month and
season totals; what it says when the transport cannot give them. Pilot and snapshot tests."""

from __future__ import annotations

import asyncio
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from textual.pilot import Pilot

from controller.energy.daily import ELEC, HEAT, DayTotals, daily_totals
from controller.energy.days import day_bounds
from controller.energy.integrate import Sample
from controller.energy.rollup import totals_rows
from controller.protocol import Request, Response
from tests.test_tui_helpers import make_app, settle, text_of
from tui.app import HearthApp
from tui.screens.energy import bar, days_text

ZONE = ZoneInfo("Europe/Brussels")


def energy_rows(count: int = 8) -> list[dict[str, Any]]:
    """`count` days up to 2026-03-30 (one is the 23-hour DST day): the heat pump runs more on colder days."""
    rows = []
    last = date(2026, 3, 30)
    for i in range(count - 1, -1, -1):
        day = last - timedelta(days=i)
        start, end = day_bounds(day, ZONE)
        hours = (end - start) / 3600
        on_s = 3600 * (4 + (i % 5) * 2)
        elec = [Sample(start + t, 1500.0 if t < on_s else 20.0) for t in range(0, int(end - start) + 1, 600)]
        heat = [Sample(s.t, s.value * (3.2 - 0.1 * (i % 4)) if s.value and s.value > 100 else 0.0) for s in elec]
        (totals,) = daily_totals({ELEC: elec, HEAT: heat}, ZONE, max_gap_s=900, days=[day], price=lambda t: 0.25)
        assert totals.hours == hours
        rows.append(totals.row())
    return rows


def respond(request: Request) -> Response:
    if request.op == "energy":
        rows = energy_rows()
        totals = totals_rows([DayTotals.from_row(r) for r in rows])
        return Response(id=request.id, ok=True, energy=rows, energy_totals=totals)
    return Response(id=request.id, ok=True)


def run(scenario: Any) -> None:
    asyncio.run(scenario())


def test_bars_scale_in_eighths() -> None:
    assert bar(0, 10, 4) == "    "
    assert bar(10, 10, 4) == "████"
    assert bar(5.0 + 10 / 32, 10, 4) == "██▏ "  # 2.125 cells: two full and one eighth
    assert bar(5.0 + 30 / 32, 10, 4) == "██▍ "  # 2.375 cells
    assert bar(20, 10, 4) == "████"  # never past the width


def test_days_newest_first_with_the_dst_day_marked() -> None:
    text = days_text(energy_rows()).plain
    lines = text.splitlines()
    assert lines[1].startswith("  2026-03-30")
    assert "2026-03-29*" in text and "daylight-saving" in text


def test_energy_screen_shows_days_and_totals() -> None:
    async def scenario() -> None:
        app, transport, _clock = make_app(responder=respond)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("e")
            await settle(pilot, lambda: "Today so far" in text_of(app.screen.query_one("#energy-today")))
            request = transport.requests[-1]
            assert (request.op, request.days) == ("energy", 30)
            days = text_of(app.screen.query_one("#energy-days"))
            assert "2026-03-23" in days and "COP" in days
            totals = text_of(app.screen.query_one("#energy-totals"))
            assert "Month 2026-03 (8 days)" in totals and "Season 2025/26" in totals

    run(scenario)


def test_energy_screen_says_when_the_transport_cannot_give_it() -> None:
    def refuse(request: Request) -> Response:
        return Response(id=request.id, ok=False, error=f"{request.op} is not available over MQTT")

    async def scenario() -> None:
        app, _transport, _clock = make_app(responder=refuse)
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("e")
            await settle(pilot, lambda: "unavailable" in text_of(app.screen.query_one("#energy-today")))
            assert "local socket" in text_of(app.screen.query_one("#energy-today"))

    run(scenario)


def test_energy_screen_snapshot(snap_compare: Any) -> None:
    app, _transport, _clock = make_app(responder=respond)

    async def run_before(pilot: Pilot[Any]) -> None:
        assert isinstance(pilot.app, HearthApp)
        await settle(pilot, lambda: pilot.app.model.state is not None)  # type: ignore[attr-defined]
        await pilot.press("e")
        await settle(pilot, lambda: "Today so far" in text_of(pilot.app.screen.query_one("#energy-today")))

    assert snap_compare(app, terminal_size=(120, 32), run_before=run_before)


def test_the_open_energy_screen_refreshes_itself_every_minute() -> None:
    """Found from outside: left open for 3 minutes of a fast demo it still showed its first figures while
    `hearth energy` had moved on; only `r` brought it up to date. It now asks again every minute while shown."""
    served: list[int] = []

    def growing(request: Request) -> Response:
        if request.op != "energy":
            return Response(id=request.id, ok=True)
        served.append(1)
        rows = energy_rows()
        rows[-1] = {**rows[-1], "starts": 100 + len(served)}
        return Response(id=request.id, ok=True, energy=rows, energy_totals=totals_rows([]))

    async def scenario() -> None:
        app, _transport, clock = make_app(responder=growing)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("e")
            await settle(pilot, lambda: "101 starts" in text_of(app.screen.query_one("#energy-today")))
            clock.t += 30
            app.tick()
            await pilot.pause()
            assert len(served) == 1  # not before a minute has passed
            clock.t += 31
            app.tick()
            await settle(pilot, lambda: "102 starts" in text_of(app.screen.query_one("#energy-today")))
            assert "as of" in text_of(app.screen.query_one("#energy-today"))
            app.action_show("overview")
            await pilot.pause()
            clock.t += 120
            app.tick()
            await pilot.pause()
            assert len(served) == 2  # a screen not shown does not ask

    run(scenario)
