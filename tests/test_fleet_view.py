"""The fleet view: its rows (pure), and the app against a real private mosquitto, where it asks for every site's
state (no retained message needed) and opens the site chosen with Enter."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.protocol import ActuatorStateMsg, LinkState, ReadingState, State, Status, Topics
from tests.broker import Broker, start_broker
from tui.fleet.app import FleetApp
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
