"""The TUI's pure parts: formatting, the model's bookkeeping, the override verdict, history downsampling, the CLI."""

from __future__ import annotations

import argparse
from datetime import UTC
from pathlib import Path

import pytest

from controller.protocol import ActuatorStateMsg, HistoryPoint, Request, Response
from tests.test_tui_helpers import T0, override, state
from tui.cli import add_options, build_transport, run_cli
from tui.demo import DemoTransport
from tui.fleet.transport import FleetTransport
from tui.format import (
    MIN_SPANS,
    age_text,
    duration_text,
    override_value_text,
    span_text,
    sparkline,
    temperature_hex,
)
from tui.model import TREND_POINTS, HearthModel
from tui.screens.history import downsample, segments
from tui.screens.override import describe_result
from tui.transport.local import LocalSocketTransport
from tui.transport.mqtt import MqttTransport


@pytest.mark.parametrize(
    ("seconds", "countdown", "span"),
    [
        (0, "0s", "0 s"),
        (45.4, "45s", "45 s"),
        (600, "10m 00s", "10 min"),
        (1263, "21m 03s", "21 min"),
        (5400, "1h 30m", "1 h 30 min"),
        (14400, "4h 00m", "4 h"),
        (-5, "0s", "0 s"),
    ],
)
def test_durations(seconds: float, countdown: str, span: str) -> None:
    assert duration_text(seconds) == countdown
    assert span_text(seconds) == span


def test_ages_and_values() -> None:
    assert [age_text(s) for s in (None, 3, 119, 600, 7200, 200000)] == ["never", "3 s", "119 s", "10 min", "2 h", "2 d"]
    assert override_value_text("heat-pump", True) == "ON"
    assert override_value_text("setpoint:comfort", 21.5) == "21.5 °C"


def test_sparkline_scales_to_its_own_range_and_leaves_gaps() -> None:
    assert sparkline([1.0, 2.0, 3.0, None, 3.0], 5) == "▁▅█ █"
    assert sparkline([5.0] * 3, 10) == "▄▄▄"
    assert sparkline([None, None], 4) == "  "
    assert len(sparkline(range(100), 30)) == 30


def test_sparkline_noise_stays_flat_on_a_minimum_span_per_unit() -> None:
    noise = [20.0, 20.01, 19.99, 20.0, 20.01]
    assert sparkline(noise, 5) == "▅█▁▅█"  # scaled to its own range, noise fills the height
    assert set(sparkline(noise, 5, MIN_SPANS["degC"])) <= {"▄", "▅"}  # on 2 K: flat, one step at most
    assert sparkline([19.0, 20.0, 21.0], 3, MIN_SPANS["degC"]) == "▁▅█"  # a real change still uses the height
    assert sparkline([20.0, 20.5], 2, MIN_SPANS["degC"]) == "▄▅"  # half a kelvin: a quarter of the height


def test_temperature_colours_go_from_blue_to_red() -> None:
    assert temperature_hex(0) == "#2850c8" and temperature_hex(80) == "#d73c32"
    assert temperature_hex(40) != temperature_hex(50)


def test_model_trends_are_bounded_and_count_only_new_samples() -> None:
    model = HearthModel()
    for second in range(TREND_POINTS + 40):
        model.apply_state(state(T0 + second), T0 + second)
        model.apply_state(state(T0 + second), T0 + second)  # the same samples again: no new point
    assert len(model.trends["tank-top"]) == TREND_POINTS


def test_model_tells_expired_from_released_overrides() -> None:
    model = HearthModel()
    model.apply_state(state(overrides=[override(expires_at=T0 + 600)]), T0)
    assert model.apply_state(state(T0 + 100), T0 + 100)[0].how == "released"
    model.apply_state(state(T0 + 200, overrides=[override(expires_at=T0 + 600)]), T0 + 200)
    ended = model.apply_state(state(T0 + 601), T0 + 601)
    assert ended[0].how == "expired" and ended[0].at == T0 + 600
    assert list(model.ended) == [model.ended[0], ended[0]]


def test_model_finds_the_heat_pump_and_the_override_targets() -> None:
    model = HearthModel()
    model.apply_state(state(), T0)
    assert model.heat_pump() is not None and model.heat_pump()[0] == "heat-pump"  # type: ignore[index]
    assert model.targets()[-1] == "setpoint:comfort" and "aux-element" in model.targets()


def test_verdicts() -> None:
    request = Request(id="r", op="override", target="heat-pump", value=True, duration_s=600)
    held = ActuatorStateMsg(
        on=False, source="interlock", reason="minimum off-time 180 s", held_by="min-off", held_until=T0 + 95
    )
    kind, text = describe_result(request, Response(id="r", ok=True, actuator=held), T0, UTC)
    assert kind == "-held" and "held by min-off until 00:01:35 (1m 35s left) — minimum off-time 180 s." in text.plain
    safety = held.model_copy(update={"held_by": "safety", "held_until": None, "reason": "tank over-temperature"})
    assert (
        "held by safety while it lasts — tank over-temperature"
        in describe_result(request, Response(id="r", ok=True, actuator=safety), T0, UTC)[1].plain
    )
    kind, text = describe_result(request, Response(id="r", ok=False, error="unknown actuator"), T0, UTC)
    assert (kind, text.plain) == ("-refused", "Refused: unknown actuator")
    setpoint = Request(id="s", op="override", target="setpoint:comfort", value=22.0, duration_s=3600)
    kind, text = describe_result(setpoint, Response(id="s", ok=True), T0, UTC)
    assert kind == "-ok" and text.plain == "Accepted: setpoint:comfort 22.0 °C until 01:00:00 (1 h)."


def test_history_is_downsampled_and_split_at_gaps() -> None:
    points = [HistoryPoint(ts=T0 + i, value=None if 40 <= i < 60 else float(i), quality="ok") for i in range(1000)]
    series = downsample(points, 100)
    assert len(series) == 100 and series[0] == (T0 + 4.5, 4.5)
    assert [len(run) for run in segments(series)] == [4, 94]
    assert downsample(points[:10], 100) == [(p.ts, p.value) for p in points[:10]]


# ---- CLI ----------------------------------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser)
    return parser.parse_args(list(argv))


def test_cli_picks_the_transport(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEARTH_SOCKET", "/tmp/other.sock")
    local = build_transport(parse())
    assert isinstance(local, LocalSocketTransport) and local.description == "local socket /tmp/other.sock"
    password = tmp_path / "pw"
    password.write_text("secret")
    monitor = ("--username", "monitor", "--password-file", str(password))
    mqtt = build_transport(parse("--mqtt", "mqtts://broker", "--site", "demo-house", *monitor))
    assert isinstance(mqtt, MqttTransport) and mqtt.read_only
    assert mqtt.description == "MQTT mqtts://broker:8883 site demo-house"
    assert isinstance(build_transport(parse("--demo")), DemoTransport)
    fleet = build_transport(parse("--mqtt", "mqtts://mq1", "mqtts://mq2:8884", *monitor))  # no --site: the fleet view
    assert isinstance(fleet, FleetTransport) and fleet.urls == ["mqtts://mq1:8883", "mqtts://mq2:8884"]
    two = build_transport(parse("--mqtt", "mqtts://mq1", "mqtts://mq2", "--site", "demo-house", *monitor))
    assert isinstance(two, MqttTransport)
    assert two.description == "MQTT mqtts://mq1:8883 (1 of 2) site demo-house"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--mqtt", "mqtts://a", "mqtts://a:8883"], "listed twice"),
        (["--site", "demo-house"], "--site only makes sense with --mqtt URL"),
        (["--mqtt", "mqtt://broker.example.com", "--site", "x"], "TLS is required"),
        (["--mqtt", "mqtts://broker", "--site", "x", "--ca-file", "/nonexistent/ca.pem"], "no such file"),
        (["--mqtt", "mqtts://broker"], "--username is needed over MQTT (the broker takes no anonymous clients)"),
        (["--mqtt", "mqtts://broker", "--site", "x"], "--username is needed over MQTT"),
    ],
)
def test_cli_bad_arguments_exit_2_with_a_clear_message(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(parse(*argv)) == 2
    assert message in capsys.readouterr().err


def test_the_tui_imports_nothing_but_the_protocol_from_the_controller() -> None:
    # The protocol, the client side of its signed requests (a technician's key file and signing, issue 16), and the
    # broker-list policy, shared with the controller's link (it imports nothing but the protocol), and how numbers
    # are written (controller.numbers, which imports nothing), so the TUI and `hearth energy` agree.
    allowed = {
        "controller.numbers",
        "controller",
        "controller.protocol",
        "controller.remote.keys",
        "controller.remote.signing",
        "controller.links.brokers",
    }
    for path in (Path(__file__).resolve().parent.parent / "tui").rglob("*.py"):
        for line in path.read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] in ("import", "from") and words[1].startswith("controller"):
                assert words[1] in allowed, f"{path}: {line.strip()}"
                if words[1] == "controller":
                    assert words[3:] == ["__version__"], f"{path}: {line.strip()}"


def test_the_tank_reads_without_colour_denser_is_warmer() -> None:
    from tui.model import HearthModel
    from tui.widgets.tank import tank_picture

    model = HearthModel()
    model.apply_state(state(values={"tank-top": 56.0, "tank-mid": 45.0, "tank-bottom": None}), T0)
    rows = [line for line in tank_picture(model).plain.splitlines() if line.startswith("▕")]
    assert [row[1:7] for row in rows] == ["██████", "██████", "▓▓▓▓▓▓", "······", "······"]
    assert "bottom fault" in rows[4]


@pytest.mark.parametrize(
    ("connected", "heartbeat_age", "shown"),
    [
        (True, 3.0, "ATN ● connected · heartbeat 3 s ago"),
        (True, 26.0, "ATN ◌ silent (broker connected) · heartbeat 26 s ago"),  # silence_s = 15 here
        (True, None, "ATN ◌ silent (broker connected) · no heartbeat yet"),
        (False, 3.0, "ATN ○ down · heartbeat 3 s ago"),
    ],
)
def test_the_link_line_tells_silence_from_connection(connected: bool, heartbeat_age: float | None, shown: str) -> None:
    from controller.protocol import LinkState
    from tui.widgets.link_line import link_text

    beat = None if heartbeat_age is None else T0 - heartbeat_age
    link = LinkState(connected=connected, last_heartbeat=beat, silence_s=15.0)
    assert link_text(link, T0).plain.startswith(shown)
    # Over MQTT the state comes every 30 s: 20 s after it, the link is still as the site saw it (it read
    # "silent" for a healthy link before).
    assert link_text(link, T0 + 20, as_of=T0).plain.startswith(shown)


@pytest.mark.parametrize(("value", "expected"), [("", "/run/hearth/hearth.sock"), ("/tmp/h.sock", "/tmp/h.sock")])
def test_hearth_socket_set_but_empty_means_the_default(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: str
) -> None:
    """An empty HEARTH_SOCKET (a unit file's 'Environment=HEARTH_SOCKET=') used to give 'no controller answers on :'."""
    from tui.cli import add_socket_option

    monkeypatch.setenv("HEARTH_SOCKET", value)
    parser = argparse.ArgumentParser()
    add_socket_option(parser)
    assert parser.parse_args([]).socket == expected
