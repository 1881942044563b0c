"""The Plan screen (`p`): the next hours of planned heat-pump use against price and the tank's planned
temperature, from the State's `plan`; without one it says the present rules decide."""

from __future__ import annotations

import asyncio
from datetime import UTC

import pytest
from rich.console import Console

from controller.protocol import PlanHour, PlanState
from tests.test_tui_helpers import T0, make_app, settle, state, text_of
from tui.widgets.plan_chart import plan_table, share_bar

SIZE = (120, 40)


def plan(hours: int = 24) -> PlanState:
    rows = [
        PlanHour(
            start=T0 + h * 3600,
            heat_pump=1.0 if h < 5 else (0.5 if h == 13 else 0.0),
            aux=0.0,
            price=0.15 if h < 7 else (0.45 if 17 <= h < 21 else 0.30),
            tank_c=30.0 + 3 * min(h, 5) - 0.5 * max(0, h - 5),
            house_c=20.5,
        )
        for h in range(hours)
    ]
    return PlanState(made_at=T0 - 120, note="the 17:00–21:00 peak is covered", hours=rows)


@pytest.mark.parametrize(("share", "bar"), [(0.0, "░" * 8), (0.5, "████░░░░"), (1.0, "█" * 8), (1.7, "█" * 8)])
def test_share_bar(share: float, bar: str) -> None:
    assert share_bar(share) == bar


def test_plan_table_rows() -> None:
    console = Console(width=80, record=True, color_system=None)
    console.print(plan_table(plan(), UTC))
    text = console.export_text()
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0].split() == ["hour", "price", "heat", "pump", "tank", "house"]
    assert lines[1].split()[:3] == ["00:00", "0.15", "█" * 8]
    assert "████░░░░" in lines[14]  # 13:00, half the hour
    assert len(lines) == 25


def test_the_plan_screen_shows_the_plan_and_says_when_there_is_none() -> None:
    async def scenario() -> None:
        app, transport, _clock = make_app([state().model_copy(update={"plan": plan()})])
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("p")
            await settle(pilot, lambda: app.current_mode == "plan")
            screen = app.screen
            note = text_of(screen.query_one("#plan-note"))
            assert "Plan made 23:58:00" in note and "17:00–21:00 peak is covered" in note
            table = screen.query_one("#plan-table")
            assert table.content is not None
            transport.push_state(state(T0 + 1))
            await settle(pilot, lambda: app.model.state is not None and app.model.state.plan is None)
            assert "No plan: the present rules decide" in text_of(screen.query_one("#plan-note"))

    asyncio.run(scenario())
