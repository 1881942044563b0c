"""The fleet view: its rows (pure), and the app against a real private mosquitto, where it asks for every site's
state (no retained message needed) and opens the site chosen with Enter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import DataTable

from controller.protocol import ActuatorStateMsg, LinkState, ReadingState, State, Status, Topics
from tests.broker import Broker, start_broker
from tui.fleet.app import Choices, FleetApp
from tui.fleet.model import FleetModel
from tui.fleet.transport import FleetTransport
from tui.transport import Backoff

NOW = 1_800_000_000.0


def state(site: str, ts: float = NOW, *, mode: str = "ATN", alarms: int = 0, backlog: int = 0) -> State:
    from controller.protocol import Alarm

    return State(
        site=site,
        ts=ts,
        mode=mode,
        reason="lease",
        readings={
            "house-air": ReadingState(value=20.5, unit="°C", quality="ok", ts=ts),
            "tank-top": ReadingState(value=51.0, unit="°C", quality="ok", ts=ts),
        },
        actuators={"heat-pump": ActuatorStateMsg(on=True, source="atn", reason="cheap")},
        alarms=[Alarm(id=f"a{n}", message="x", since=ts) for n in range(alarms)],
        link=LinkState(connected=True, last_heartbeat=ts - 3, backlog=backlog),
        every_s=30.0,
    )


POWER_CASES = [
    # (readings as name -> (value, unit), what the heat-pump cell says)
    ({}, "on"),
    ({"hp-power": (1830.4, "W")}, "on 1830 W"),
    ({"grid-power": (411.0, "W"), "hp-power": (-0.3, "W")}, "on 0 W"),  # the grid meter is not the heat pump's
    ({"grid-power": (411.0, "W")}, "on"),
    ({"hp-electric": (1.2, "kW")}, "on 1200 W"),
]


@pytest.mark.parametrize(("readings", "cell"), POWER_CASES)
def test_the_heat_pump_cell_shows_the_heat_pumps_own_power(readings: dict[str, tuple[float, str]], cell: str) -> None:
    model = FleetModel()
    site = state("a-site")
    extra = {name: ReadingState(value=v, unit=unit, quality="ok", ts=NOW) for name, (v, unit) in readings.items()}
    model.state(site.model_copy(update={"readings": {**site.readings, **extra}}))
    assert model.row("a-site", NOW).cells[4] == cell


def test_rows_sort_filter_and_quiet_sites() -> None:
    model = FleetModel()
    model.state(state("b-site", alarms=2))
    model.state(state("a-site", backlog=500))
    model.state(state("c-site", ts=NOW - 200))  # quiet: older than 3 periods of 30 s
    model.state(state("d-site"))
    model.status("d-site", False)  # its status says offline
    rows = {row.site: row for row in model.rows(NOW)}
    assert [r.site for r in model.rows(NOW)] == ["a-site", "b-site", "c-site", "d-site"]
    assert rows["a-site"].cells[:6] == ("a-site", "ATN", "20.5 °C", "51.0 °C", "on", "up 3 s")
    # 25 s on, with no newer state: the link is as the state said (it climbed to "up 28 s", past the 30 s silence
    # timeout of a healthy site, before); how old the state is, "last seen" says.
    later = model.row("a-site", NOW + 25)
    assert (later.cells[5], later.cells[8]) == ("up 3 s", "25 s ago")
    assert rows["a-site"].available and rows["b-site"].cells[6] == "2" and rows["a-site"].cells[7] == "500"
    assert not rows["c-site"].available and rows["c-site"].cells[1] == "unavailable"
    assert rows["c-site"].cells[9] == "last: ATN, lease"
    assert not rows["d-site"].available and rows["d-site"].cells[1] == "offline"
    assert next(r.site for r in model.rows(NOW, "alarms")) == "b-site"
    assert next(r.site for r in model.rows(NOW, "backlog")) == "a-site"
    assert next(r.site for r in model.rows(NOW, "last seen")) == "c-site"
    assert [r.site for r in model.rows(NOW, text="UNAVAIL")] == ["c-site"]
    with pytest.raises(ValueError, match="sort by one of"):
        model.rows(NOW, "colour")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    running = start_broker(tmp_path_factory.mktemp("broker"))
    yield running
    running.stop()


def test_the_fleet_view_asks_for_states_and_opens_a_site(broker: Broker, tmp_path: Path) -> None:
    password = tmp_path / "monitor.pw"
    password.write_text(broker.users["monitor"])
    transport = FleetTransport(
        [f"mqtt://127.0.0.1:{broker.port}"], "monitor", str(password), backoff=Backoff(0.05, 0.1, 0.0)
    )

    async def scenario() -> str | None:
        app = FleetApp(transport)
        with broker.subscribe("demo-house", "hearth/v1/state-request") as requests:
            async with app.run_test(size=(140, 30)) as pilot:
                # The view asks; a controller would answer with its state (here the sites' users do).
                assert await asyncio.to_thread(requests.wait_for, 1, 5)
                now = time.time()
                for site in ("demo-house", "other-site"):
                    topics = Topics(site)
                    await asyncio.to_thread(
                        broker.pub, site, topics.status, Status(site=site, online=True, ts=now).to_json()
                    )
                    await asyncio.to_thread(broker.pub, site, topics.state, state(site, now).to_json())
                for _ in range(50):
                    await pilot.pause(0.1)
                    if len(app.model.states) == 2:
                        break
                app.refresh_table()
                await pilot.pause(0.1)
                header = str(app.query_one("#header").render())
                assert "2 sites, 0 unavailable" in header and f"127.0.0.1:{broker.port}" in header
                await pilot.press("s")  # sort: mode
                assert app.sort == "mode"
                await pilot.press("down", "enter")  # the second row: other-site
                await pilot.pause(0.1)
        return app.return_value

    assert asyncio.run(scenario()) == "other-site"


class Scripted(FleetTransport):
    """States handed to the view's callbacks one by one, when the test says so (no broker)."""

    def __init__(self) -> None:
        super().__init__(["mqtt://127.0.0.1:1883"])
        self.queue: asyncio.Queue[State] = asyncio.Queue()

    async def run(self, on_state: Any, on_online: Any, on_status: Any) -> None:
        while True:
            on_state(await self.queue.get())


def test_a_cell_that_grows_is_shown_whole() -> None:
    """A column is as wide as its first values: before the first heartbeat the link says "up -", and "up 12 s" was
    then cut to "up 1" (seen in scripts/fleet-demo)."""
    transport = Scripted()

    async def scenario() -> None:
        app = FleetApp(transport)
        async with app.run_test(size=(140, 20)) as pilot:
            now = time.time()
            first = state("a-site", now).model_copy(update={"link": LinkState(connected=True)})
            await transport.queue.put(first)
            await pilot.pause(0.1)
            app.refresh_table()
            await transport.queue.put(
                state("a-site", now).model_copy(update={"link": LinkState(connected=True, last_heartbeat=now - 12)})
            )
            await pilot.pause(0.1)
            app.refresh_table()
            await pilot.pause(0.2)  # the table resizes its columns when idle
            table = app.query_one(DataTable)
            link = next(column for column in table.columns.values() if column.key.value == "link")
            assert table.get_row("a-site")[5] == "up 12 s"
            assert link.content_width >= len("up 12 s")

    asyncio.run(scenario())


def test_the_sort_filter_and_row_survive_a_visit_to_a_site() -> None:
    """Enter opens a site (the view exits), q there brings a new view back: with the sort, the filter and the row
    the person had (the sort went back to "site" before)."""
    transport = Scripted()
    model, choices = FleetModel(), Choices()
    now = time.time()
    for site, mode in (("a-site", "LOCAL"), ("b-site", "ATN"), ("c-site", "ATN"), ("x-other", "ATN")):
        model.state(state(site, now, mode=mode))

    async def visit(keys: tuple[str, ...]) -> tuple[str | None, FleetApp]:
        app = FleetApp(transport, model, choices)
        async with app.run_test(size=(140, 20)) as pilot:
            await pilot.pause(0.1)
            await pilot.press(*keys)
            await pilot.pause(0.1)
        return app.return_value, app

    async def scenario() -> None:
        # sort: mode (ATN first; the cursor stays on a-site, now last), filter "site", then the row above: c-site
        opened, _ = await visit(("s", "slash", *"site", "enter", "up", "enter"))
        assert opened == "c-site"
        opened, app = await visit(("enter",))  # back: the cursor is still on c-site
        assert opened == "c-site"
        assert (app.sort, app.filter_text) == ("mode", "site")
        assert app._order == ["b-site", "c-site", "a-site"]

    asyncio.run(scenario())
