"""The TUI driven like a technician would, against a FakeTransport that replays States and records requests."""

from __future__ import annotations

import asyncio
from datetime import UTC
from typing import Any

from textual.coordinate import Coordinate
from textual.widgets import DataTable, Input, Select, Static, Tree

from controller.protocol import ActuatorStateMsg, Alarm, HistoryPoint, Request, Response
from tests.test_tui_helpers import (
    T0,
    FixedClock,
    event,
    make_app,
    override,
    settle,
    state,
    text_of,
)
from tui.app import HearthApp
from tui.screens.help import HelpScreen
from tui.screens.override import OverrideScreen
from tui.transport import ConnectionStatus
from tui.transport.fake import FakeTransport
from tui.widgets.tables import KeyedTable

SIZE = (120, 40)


def run(scenario: Any) -> None:
    asyncio.run(scenario())


# ---- overview ------------------------------------------------------------------------------------------


def test_the_once_a_second_tick_spares_a_screen_whose_widgets_are_gone() -> None:
    """The app's tick can reach a screen being torn down (the app quitting, a screen switch) after its nav bar
    has gone; that used to end the app with NoMatches ('NavBar', later 'ModeBanner' on OverviewScreen), seen in
    test runs. Any widget may be the one gone first."""
    from tui.widgets.mode_banner import ModeBanner
    from tui.widgets.nav_bar import NavBar

    async def scenario() -> None:
        app, _transport, _clock = make_app([state()])
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await app.screen.query_one(NavBar).remove()
            app.tick()
            await pilot.pause()
            assert app.is_running and app.return_code is None
            await app.screen.query_one(ModeBanner).remove()
            app.tick()
            await pilot.pause()
            assert app.is_running and app.return_code is None

    run(scenario)


def test_overview_shows_mode_link_house_tank_heat_pump_and_alarms() -> None:
    alarm = Alarm(id="relay-aux", message="aux-element relay did not follow its command", since=T0 - 300)

    async def scenario() -> None:
        app, _transport, _clock = make_app([state(alarms=[alarm])])
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            screen = app.screen
            banner = text_of(screen.query_one("#mode-banner"))
            assert "LOCAL" in banner and "cheap window: charging the tank" in banner
            assert screen.query_one("#mode-banner").has_class("mode-local")
            link = text_of(screen.query_one("#link-line"))
            assert "down" in link and "heartbeat 95 s ago" in link and "lease L-42 expired 20 s ago" in link
            assert "backlog 312" in link
            tank = text_of(screen.query_one("#tank"))
            assert "House   20.6 °C" in tank and "top    52.1 °C" in tank and "bottom 38.0 °C" in tank
            pump = text_of(screen.query_one("#heat-pump"))
            assert "ON" in pump and "by local" in pump and "held by min-on until 00:02:10 (2m 10s left)" in pump
            alarms = screen.query_one("#alarms", KeyedTable)
            assert alarms.row_count == 1 and "1 unacknowledged" in str(screen.query_one("#alarms-panel").border_title)
            assert "connected as alice (technician)" in text_of(screen.query_one("#status-bar"))

    run(scenario)


def test_countdowns_move_with_the_clock_without_a_new_state() -> None:
    async def scenario() -> None:
        app, _transport, clock = make_app([state(overrides=[override(expires_at=T0 + 600)])])
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            table = app.screen.query_one("#overrides", KeyedTable)
            assert str(table.get_cell("O-1", "left")) == "10m 00s left"
            clock.t += 61
            app.tick()
            await settle(pilot)
            assert str(table.get_cell("O-1", "left")) == "8m 59s left"
            assert "(1m 09s left)" in text_of(app.screen.query_one("#heat-pump"))

    run(scenario)


def test_countdowns_run_on_the_controllers_clock_under_speed() -> None:
    """`--speed 30`: the override expires in the controller's time, so its countdown runs 30 times faster than
    ours, and the State's own timestamp (30 min ahead of our clock here) is where it counts from."""
    sim_now = T0 + 1800
    fast = state(ts=sim_now, overrides=[override(expires_at=sim_now + 600)]).model_copy(update={"speed": 30.0})

    async def scenario() -> None:
        app, _transport, clock = make_app([fast])
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            table = app.screen.query_one("#overrides", KeyedTable)
            assert str(table.get_cell("O-1", "left")) == "10m 00s left"
            clock.t += 10  # ten of our seconds are five simulated minutes
            app.tick()
            await settle(pilot)
            assert str(table.get_cell("O-1", "left")) == "5m 00s left"
            assert app.controller_now() == sim_now + 300
            assert "live" in text_of(app.screen.query_one("NavBar"))  # its age is ours: 10 s

    run(scenario)


def test_a_burst_of_states_is_drawn_once_with_the_newest() -> None:
    async def scenario() -> None:
        app, transport, _clock = make_app()
        app._min_repaint_s = 0.25
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            drawn = app.states_drawn
            for number in range(50):
                transport.push_state(state(T0 + number, values={"house-air": 20.0 + number / 10}))
            await settle(pilot, lambda: app.model.state is not None and app.model.state.ts == T0 + 49)
            assert app.states_drawn - drawn <= 2
            await settle(pilot)
            assert "House   24.9 °C" in text_of(app.screen.query_one("#tank"))

    run(scenario)


def test_header_says_when_the_link_is_down_and_when_it_retries() -> None:
    async def scenario() -> None:
        app, transport, _clock = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            transport.push_status(
                ConnectionStatus("reconnecting", detail="the controller closed the connection", retry_in_s=3)
            )
            await settle(pilot)
            header = text_of(app.screen.query_one("#status-bar"))
            assert "local socket /run/hearth/hearth.sock — reconnecting in 3 s…" in header
            assert app.screen.query_one("#status-bar").has_class("-down")
            assert "last update" in text_of(app.screen.query_one("#mode-banner"))  # not live any more

    run(scenario)


# ---- the override flow -----------------------------------------------------------------------------------


def test_override_flow_request_result_countdown_and_expiry() -> None:
    def respond(request: Request) -> Response:
        if request.op != "override":
            return Response(id=request.id, ok=True)
        made = override(expires_at=T0 + 600)
        pump = ActuatorStateMsg(on=True, source="override", reason="override by alice: boiler check")
        return Response(id=request.id, ok=True, override=made, actuator=pump)

    async def scenario() -> None:
        app, transport, clock = make_app(responder=respond)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("o")
            await settle(pilot, lambda: isinstance(app.screen, OverrideScreen))
            dialog = app.screen
            dialog.query_one("#target", Select).value = "heat-pump"
            await pilot.click("#value-on")
            await pilot.click("#dur-600")
            dialog.query_one("#reason", Input).value = "boiler check"
            await settle(pilot)
            assert "Will force heat-pump ON until 00:10:00 (10 min)" in text_of(dialog.query_one("#summary"))
            await pilot.click("#confirm")
            await settle(pilot, lambda: bool(transport.requests) and "Accepted" in text_of(dialog.query_one("#result")))
            sent = transport.requests[-1]
            assert (sent.op, sent.target, sent.value, sent.duration_s, sent.reason) == (
                "override",
                "heat-pump",
                True,
                600.0,
                "boiler check",
            )
            assert "Accepted: heat-pump ON until 00:10:00 (10 min)." in text_of(dialog.query_one("#result"))
            assert dialog.query_one("#result").has_class("-ok")
            await pilot.press("escape")
            await settle(pilot, lambda: not isinstance(app.screen, OverrideScreen))

            transport.push_state(state(mode="OVERRIDE", reason="technician override", overrides=[override()]))
            await settle(pilot, lambda: bool(app.model.state and app.model.state.overrides))
            table = app.screen.query_one("#overrides", KeyedTable)
            assert str(table.get_cell("O-1", "target")) == "heat-pump"
            assert str(table.get_cell("O-1", "left")) == "10m 00s left"

            clock.t = T0 + 600
            transport.push_state(state(T0 + 600))  # the controller dropped it: it expired
            await settle(pilot, lambda: app.model.state is not None and not app.model.state.overrides)
            note = text_of(app.screen.query_one("#overrides-note"))
            assert "Override heat-pump = ON (alice) expired at 00:10:00." in note
            assert app.screen.query_one("#overrides", KeyedTable).row_count == 0

    run(scenario)


def test_the_forms_choices_show_by_shape_not_colour_alone() -> None:
    async def scenario() -> None:
        app, _transport, _clock = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("o")
            await settle(pilot, lambda: isinstance(app.screen, OverrideScreen))
            dialog = app.screen

            def marks(*ids: str) -> list[str]:
                return [dialog.query_one(f"#{i}").render().plain[1] for i in ids]

            assert marks("value-on", "value-off") == ["●", "○"]
            await pilot.click("#value-off")
            await settle(pilot)
            assert marks("value-on", "value-off") == ["○", "●"]
            assert marks("dur-1800").count("●") == 1  # the default duration is chosen, by shape

    run(scenario)


def test_an_override_held_by_an_interlock_says_which_why_and_until_when() -> None:
    def respond(request: Request) -> Response:
        held = ActuatorStateMsg(
            on=False, source="interlock", reason="minimum off-time 180 s", held_by="min-off", held_until=T0 + 95
        )
        return Response(id=request.id, ok=True, override=override(expires_at=T0 + 1800), actuator=held)

    async def scenario() -> None:
        app, transport, _clock = make_app(responder=respond)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            app.open_override("heat-pump")
            await settle(pilot, lambda: isinstance(app.screen, OverrideScreen))
            dialog = app.screen
            await pilot.click("#confirm")
            await settle(pilot, lambda: "held" in text_of(dialog.query_one("#result")))
            result = text_of(dialog.query_one("#result"))
            assert transport.requests[-1].duration_s == 1800.0  # the default: 30 min
            assert "Accepted, but held: heat-pump stays OFF, held by min-off until 00:01:35 (1m 35s left)" in result
            assert "minimum off-time 180 s" in result
            assert "the override runs until 00:30:00 (30 min)" in result
            assert dialog.query_one("#result").has_class("-held")

    run(scenario)


def test_a_refusal_from_the_server_is_shown_as_it_came() -> None:
    def respond(request: Request) -> Response:
        return Response(id=request.id, ok=False, error="read-only: uid 1001 (bob) is not in the technician group")

    async def scenario() -> None:
        app, _transport, _clock = make_app(responder=respond)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("o")
            await settle(pilot, lambda: isinstance(app.screen, OverrideScreen))
            await pilot.click("#confirm")
            result = app.screen.query_one("#result")
            await settle(pilot, lambda: "Refused" in text_of(result))
            assert text_of(result) == "Refused: read-only: uid 1001 (bob) is not in the technician group"
            assert result.has_class("-refused")

    run(scenario)


def test_read_only_removes_and_labels_every_control() -> None:
    async def scenario() -> None:
        app, transport, _clock = make_app([state(overrides=[override()])], read_only=True)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            screen = app.screen
            assert "read-only (monitor)" in text_of(screen.query_one("#status-bar"))
            assert "read-only (monitor): overrides are disabled here." in text_of(screen.query_one("#overrides-note"))
            bindings = screen.active_bindings
            for key in ("o", "k", "x"):
                assert key not in bindings, key  # absent for a monitor, not merely greyed out
            await pilot.press("o", "k", "x")
            await settle(pilot)
            assert not isinstance(app.screen, OverrideScreen)
            assert transport.requests == []
            await pilot.press("3")
            await settle(pilot, lambda: app.current_mode == "actuators")
            assert "o" not in app.screen.active_bindings
            assert "read-only (monitor)" in text_of(app.screen.query_one("#actuator-detail"))

    run(scenario)


def test_the_controller_decides_the_role_after_connecting() -> None:
    async def scenario() -> None:
        app, transport, _clock = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            assert app.screen.active_bindings["o"].enabled
            transport.read_only = True
            transport.push_status(ConnectionStatus("connected", user="bob", role="monitor", read_only=True))
            await settle(pilot)
            assert "o" not in app.screen.active_bindings
            assert "connected, read-only (monitor)" in text_of(app.screen.query_one("#status-bar"))

    run(scenario)


def test_keep_alive_release_and_acknowledge_send_what_they_say() -> None:
    alarm = Alarm(id="relay-aux", message="aux-element relay did not follow", since=T0 - 60)

    async def scenario() -> None:
        app, transport, _clock = make_app([state(overrides=[override()], alarms=[alarm])])
        app.override_durations["heat-pump"] = 600.0
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("k")
            await settle(pilot, lambda: len(transport.requests) == 1)
            await pilot.press("x")
            await settle(pilot, lambda: len(transport.requests) == 2)
            await pilot.press("a")
            await settle(pilot, lambda: len(transport.requests) == 3)
            keep, release, ack = transport.requests
            assert (keep.op, keep.override_id, keep.duration_s) == ("keepalive", "O-1", 600.0)
            assert (release.op, release.override_id) == ("release", "O-1")
            assert (ack.op, ack.alarm) == ("ack_alarm", "relay-aux")

    run(scenario)


# ---- the other screens ---------------------------------------------------------------------------------


def test_channels_update_in_place_filter_and_trend() -> None:
    async def scenario() -> None:
        app, transport, clock = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("2")
            await settle(pilot, lambda: app.current_mode == "channels")
            table = app.screen.query_one("#channels", DataTable)
            assert table.row_count == 12  # nine temperatures, the heat-pump meter, its flow, the grid
            for second in range(1, 6):
                clock.t = T0 + second
                transport.push_state(state(T0 + second, values={"tank-top": 52.1 + second}))
                await settle(pilot, lambda: app.model.state is not None and app.model.state.ts == clock.t)
            assert str(table.get_cell("tank-top", "value")) == "57.10"
            assert str(table.get_cell("tank-top", "trend")).strip() == "▁▂▄▅▇█"
            assert str(table.get_cell("outdoor", "trend")).strip() == "▄▄▄▄▄▄"  # flat
            await pilot.press("slash", "t", "a", "n", "k")
            await settle(pilot, lambda: table.row_count == 3)
            assert [str(table.get_cell_at(Coordinate(row, 0))) for row in range(3)] == [
                "tank-top",
                "tank-mid",
                "tank-bottom",
            ]

    run(scenario)


def test_a_faulty_channel_shows_its_quality_and_detail() -> None:
    async def scenario() -> None:
        app, _transport, _clock = make_app([state(values={"tank-mid": None})])
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            assert "mid    fault" in text_of(app.screen.query_one("#tank"))
            await pilot.press("2")
            await settle(pilot, lambda: app.current_mode == "channels")
            table = app.screen.query_one("#channels", DataTable)
            assert str(table.get_cell("tank-mid", "quality")) == "fault"
            assert str(table.get_cell("tank-mid", "value")) == "—"
            assert str(table.get_cell("tank-mid", "detail")) == "open circuit"

    run(scenario)


def test_enter_on_a_channel_plots_its_history() -> None:
    def respond(request: Request) -> Response:
        points = [HistoryPoint(ts=T0 - 3600 + 60 * i, value=40.0 + i / 10, quality="ok") for i in range(60)]
        return Response(id=request.id, ok=True, history=points)

    async def scenario() -> None:
        app, transport, _clock = make_app(responder=respond)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("2")
            await settle(pilot, lambda: app.current_mode == "channels")
            await pilot.press("down", "enter")
            await settle(pilot, lambda: "60 samples" in text_of(app.screen.query_one("#history-status")))
            request = transport.requests[-1]
            assert (request.op, request.channel, request.hours) == ("history", "tank-mid", 6.0)
            assert app.screen.query_one("#history-channel", Select).value == "tank-mid"

    run(scenario)


def test_history_and_layout_say_when_the_transport_cannot_give_them() -> None:
    def respond(request: Request) -> Response:
        return Response(id=request.id, ok=False, error=f"{request.op} is not available over MQTT")

    async def scenario() -> None:
        app, _transport, _clock = make_app(responder=respond)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("5")
            await settle(pilot, lambda: "unavailable" in text_of(app.screen.query_one("#history-status")))
            assert "History unavailable: history is not available over MQTT" in text_of(
                app.screen.query_one("#history-status")
            )
            await pilot.press("6")
            await settle(pilot, lambda: "unavailable" in text_of(app.screen.query_one("#layout-status")))
            assert "Layout unavailable: layout is not available over MQTT" in text_of(
                app.screen.query_one("#layout-status")
            )

    run(scenario)


def test_layout_is_a_tree_of_what_the_controller_runs() -> None:
    from tui.demo import sample_layout

    def respond(request: Request) -> Response:
        return Response(id=request.id, ok=True, layout=sample_layout())

    async def scenario() -> None:
        app, _transport, _clock = make_app(responder=respond)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("6")
            tree = app.screen.query_one(Tree)
            await settle(pilot, lambda: bool(tree.root.children))
            assert str(tree.root.label) == "Demo house (simulated)"
            branches = {str(child.label) for child in tree.root.children}
            assert {"buses", "devices", "channels", "actuators"} <= branches
            actuators = next(c for c in tree.root.children if str(c.label) == "actuators")
            assert actuators.is_expanded and len(actuators.children) == 4

    run(scenario)


def test_events_newest_at_the_bottom_bounded_and_filtered() -> None:
    async def scenario() -> None:
        app, transport, _clock = make_app(events=[event(1, "mode", "LOCAL -> ATN: lease L-42")])
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("4")
            await settle(pilot, lambda: app.current_mode == "events")
            log = app.screen.query_one("#events", DataTable)
            assert log.row_count == 1
            for seq in range(2, 2506):
                transport.push_event(event(seq, "switch", f"store-pump on #{seq}", T0 + seq))
            await settle(pilot, lambda: app.model.events_total == 2505 and log.row_count > 1)
            assert len(app.model.events) == 2000 and 2000 <= log.row_count <= 2200
            last = log.row_count - 1
            assert str(log.get_cell_at(Coordinate(last, 2))) == "store-pump on #2505"
            assert log.cursor_row == last  # it follows the newest
            assert "#2505 switch: store-pump on #2505" in text_of(app.screen.query_one("#event-detail"))
            await pilot.press("slash", "m", "o", "d", "e")
            await settle(pilot, lambda: log.row_count == 0)  # the mode event fell out of the last 2000
            transport.push_event(event(9000, "mode", "ATN -> LOCAL: ATN silent for 30 s"))
            await settle(pilot, lambda: log.row_count == 1)
            assert str(log.get_cell_at(Coordinate(0, 2))) == "ATN -> LOCAL: ATN silent for 30 s"

    run(scenario)


def test_actuators_show_source_hold_countdown_and_override() -> None:
    async def scenario() -> None:
        app, _transport, clock = make_app([state(overrides=[override("aux-element", True)])])
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("3")
            await settle(pilot, lambda: app.current_mode == "actuators")
            table = app.screen.query_one("#actuators", DataTable)
            assert table.row_count == 4
            assert (str(table.get_cell("heat-pump", "held")), str(table.get_cell("heat-pump", "left"))) == (
                "min-on",
                "2m 10s",
            )
            assert str(table.get_cell("aux-element", "override")) == "ON 10m 00s"
            clock.t += 10
            app.tick()
            await settle(pilot)
            assert str(table.get_cell("heat-pump", "left")) == "2m 00s"
            detail = text_of(app.screen.query_one("#actuator-detail"))
            assert "held by min-on until 00:02:10 (2m 00s left)" in detail

    run(scenario)


def test_help_lists_the_keys_and_closes() -> None:
    async def scenario() -> None:
        app, _transport, _clock = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            await pilot.press("question_mark")
            await settle(pilot, lambda: isinstance(app.screen, HelpScreen))
            await pilot.press("escape")
            await settle(pilot, lambda: not isinstance(app.screen, HelpScreen))

    run(scenario)


def test_mqtt_monitor_header() -> None:
    async def scenario() -> None:
        app, _transport, _clock = make_app(
            read_only=True, description="MQTT mqtts://broker:8883 site demo-house", clock=FixedClock()
        )
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            header = text_of(app.screen.query_one("#status-bar", Static))
            assert header == "Hearth MQTT mqtts://broker:8883 site demo-house — connected, read-only (monitor)"

    run(scenario)


def test_comfort_setpoint_and_custom_minutes_are_validated_before_sending() -> None:
    async def scenario() -> None:
        app, transport, _clock = make_app()
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None)
            app.open_override("setpoint:comfort")
            await settle(pilot, lambda: isinstance(app.screen, OverrideScreen))
            dialog = app.screen
            confirm = dialog.query_one("#confirm")
            assert not dialog.query_one("#value-row").display and dialog.query_one("#setpoint-row").display
            dialog.query_one("#setpoint", Input).value = "35"
            await settle(pilot)
            assert confirm.disabled and "between 10 and 28 °C" in text_of(dialog.query_one("#summary"))
            dialog.query_one("#setpoint", Input).value = "22.5"
            dialog.query_one("#minutes", Input).value = "2000"
            await settle(pilot)
            assert confirm.disabled and "1440 (24 h at most)" in text_of(dialog.query_one("#summary"))
            dialog.query_one("#minutes", Input).value = "90"
            await settle(pilot)
            assert not confirm.disabled
            assert "setpoint:comfort 22.5 °C until 01:30:00 (1 h 30 min)" in text_of(dialog.query_one("#summary"))
            await pilot.click("#confirm")
            await settle(pilot, lambda: bool(transport.requests))
            sent = transport.requests[-1]
            assert (sent.target, sent.value, sent.duration_s) == ("setpoint:comfort", 22.5, 5400.0)

    run(scenario)


def test_a_transport_that_breaks_is_reported_not_fatal() -> None:
    class Broken(FakeTransport):
        async def run(self, on_state: Any, on_event: Any, on_status: Any) -> None:
            raise RuntimeError("socket library exploded")

    async def scenario() -> None:
        app = HearthApp(Broken(), now=FixedClock(), tz=UTC)
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.status.phase == "stopped")
            header = text_of(app.screen.query_one("#status-bar"))
            assert "stopped: RuntimeError: socket library exploded" in header

    run(scenario)
