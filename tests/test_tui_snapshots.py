"""Snapshots of the main screens (pytest-textual-snapshot): a fixed clock and UTC make them deterministic.

After an intended change of the look, check the new pictures by eye and run
`pytest tests/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from typing import Any

from textual.pilot import Pilot

from controller.protocol import ActuatorStateMsg, Alarm, HistoryPoint, LinkState, Request, Response
from tests.test_tui_helpers import T0, event, make_app, override, settle, state, text_of
from tui.app import HearthApp
from tui.demo import sample_layout
from tui.transport.fake import FakeTransport

ALARM = Alarm(id="relay-aux", message="aux-element relay did not follow its command", since=T0 - 420)
LIVE_LINK = LinkState(connected=True, last_heartbeat=T0 - 4, lease_id="L-43", lease_valid_until=T0 + 116, backlog=0)
EVENTS = [
    event(1, "mode", "LOCAL -> ATN: lease L-43 after 2 heartbeats", T0 - 900),
    event(2, "switch", "heat-pump on (atn: ATN lease L-43)", T0 - 600),
    event(3, "alarm", "aux-element relay did not follow its command", T0 - 420),
    event(4, "override", "override heat-pump = ON by alice for 10 min: boiler check", T0 - 120),
    event(5, "mode", "ATN -> OVERRIDE: heat-pump overridden by alice", T0 - 119),
]


def busy_state(ts: float = T0, **values: float) -> Any:
    """OVERRIDE mode: the heat pump forced on, the aux element held off, an open alarm, a live ATN link."""
    actuators = {
        "heat-pump": ActuatorStateMsg(on=True, source="override", reason="override by alice: boiler check"),
        "store-pump": ActuatorStateMsg(on=True, source="interlock", reason="circulator runs with the compressor"),
        "distribution-pump": ActuatorStateMsg(on=True, source="atn", reason="ATN lease L-43"),
        "aux-element": ActuatorStateMsg(
            on=False, source="interlock", reason="minimum off-time 60 s", held_by="min-off", held_until=ts + 42
        ),
    }
    return state(
        ts,
        mode="OVERRIDE",
        reason="technician override: heat-pump ON by alice until 00:08:00",
        actuators=actuators,
        overrides=[override(expires_at=T0 + 480)],
        alarms=[ALARM],
        link=LIVE_LINK,
        values={k.replace("_", "-"): v for k, v in values.items()},
    )


def app_with(states: list[Any], **kwargs: Any) -> tuple[HearthApp, FakeTransport]:
    app, transport, _clock = make_app(states, events=EVENTS, **kwargs)
    return app, transport


async def shown(pilot: Pilot[Any]) -> None:
    app = pilot.app
    assert isinstance(app, HearthApp)
    await settle(pilot, lambda: app.model.state is not None)


def test_overview_80x24(snap_compare: Any) -> None:
    app, _ = app_with([busy_state()])
    assert snap_compare(app, terminal_size=(80, 24), run_before=shown)


def test_overview_120x40(snap_compare: Any) -> None:
    app, _ = app_with([busy_state()])
    assert snap_compare(app, terminal_size=(120, 40), run_before=shown)


def test_overview_read_only_monitor_over_mqtt_local_mode(snap_compare: Any) -> None:
    app, _ = app_with(
        [state(values={"tank-mid": None})], read_only=True, description="MQTT mqtts://broker:8883 site demo-house"
    )
    assert snap_compare(app, terminal_size=(80, 24), run_before=shown)


def test_channels_with_trends_and_a_filter(snap_compare: Any) -> None:
    app, transport = app_with([busy_state()])

    async def run_before(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        await pilot.press("2")
        for second in range(1, 40):
            swing = (second % 10) / 10
            transport.push_state(busy_state(T0 + second, tank_top=52.1 + swing, house_air=20.6 - swing / 5))
            await settle(pilot)
        await pilot.press("down", "down")

    assert snap_compare(app, terminal_size=(120, 40), run_before=run_before)


def test_actuators(snap_compare: Any) -> None:
    app, _ = app_with([busy_state()])
    assert snap_compare(app, terminal_size=(120, 40), press=["3", "down", "down", "down"], run_before=shown)


def test_override_held_by_an_interlock(snap_compare: Any) -> None:
    def respond(request: Request) -> Response:
        held = ActuatorStateMsg(
            on=False, source="interlock", reason="minimum off-time 180 s", held_by="min-off", held_until=T0 + 95
        )
        return Response(id=request.id, ok=True, override=override(expires_at=T0 + 1200), actuator=held)

    app, _ = app_with([state()], responder=respond)

    async def run_before(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        await pilot.press("o")
        await pilot.click("#dur-1200")
        await pilot.click("#confirm")
        await settle(pilot, lambda: "held" in text_of(pilot.app.screen.query_one("#result")))

    assert snap_compare(app, terminal_size=(80, 24), run_before=run_before)


def test_events(snap_compare: Any) -> None:
    app, _ = app_with([busy_state()])
    assert snap_compare(app, terminal_size=(100, 24), press=["4"], run_before=shown)


def test_history_plot(snap_compare: Any) -> None:
    def respond(request: Request) -> Response:
        points = [
            HistoryPoint(ts=T0 - 6 * 3600 + 120 * i, value=None if 80 <= i < 95 else 45 + (i % 60) / 6, quality="ok")
            for i in range(180)
        ]
        return Response(id=request.id, ok=True, history=points)

    app, _ = app_with([busy_state()], responder=respond)

    async def run_before(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        await pilot.press("5")
        await settle(pilot, lambda: "samples" in text_of(pilot.app.screen.query_one("#history-status")))

    assert snap_compare(app, terminal_size=(100, 30), run_before=run_before)


def test_layout_tree(snap_compare: Any) -> None:
    app, _ = app_with([busy_state()], responder=lambda r: Response(id=r.id, ok=True, layout=sample_layout()))

    async def run_before(pilot: Pilot[Any]) -> None:
        await shown(pilot)
        await pilot.press("6")
        await settle(pilot, lambda: "reloads" in text_of(pilot.app.screen.query_one("#layout-status")))

    assert snap_compare(app, terminal_size=(80, 30), run_before=run_before)


def test_help(snap_compare: Any) -> None:
    app, _ = app_with([busy_state()])
    assert snap_compare(app, terminal_size=(100, 40), press=["question_mark"], run_before=shown)
