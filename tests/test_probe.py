"""`hearth probe` on the simulated house: devices found and missing, raw next to converted readings, faults
named, relays switched only on request and read back."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.clock import ManualClock
from controller.emulators.ads1115 import Ads1115Emulator
from controller.probe.check import probe, scan_i2c, switch_relay
from controller.sim.world import SimBuses
from tests.simhelpers import ROOT, demo_layout

HEARTH = Path(sys.executable).with_name("hearth")
RELAY_PINS = {17, 27, 22, 23}


def hearth_probe(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HEARTH), "probe", *args], capture_output=True, text=True, timeout=60, cwd=ROOT)


def faulty_layout(tmp_path: Path) -> Path:
    text = (ROOT / "layouts/demo.toml").read_text()
    assert "\n[sim]\n" in text
    faults = 'faults = { tank-top = "open", ads-house = "absent", dist-supply = "short" }'
    path = tmp_path / "faulty.toml"
    path.write_text(text.replace("\n[sim]\n", f"\n[sim]\n{faults}\n"))
    return path


@pytest.fixture
def world() -> Iterator[SimBuses]:
    layout = demo_layout()
    buses = SimBuses(layout, ManualClock())
    yield buses
    buses.close()


def test_healthy_house_answers_everything(world: SimBuses) -> None:
    report = probe(world.layout, world, world.clock, {})  # type: ignore[arg-type]
    assert report.complete
    assert [(scan.answered, scan.missing, scan.unexpected) for scan in report.buses] == [(["0x48", "0x49"], {}, [])]
    assert all(device.present for device in report.devices)
    channels = {channel.name: channel for channel in report.channels}
    tank = channels["tank-top"]
    assert tank.quality == "ok" and tank.value == pytest.approx(world.thermistors["tank-top"].temperature_c, abs=0.1)
    assert set(tank.raw) == {"code", "volts", "supply_v", "ohms"}
    # The raw fields are the chip's own: code x LSB (4.096 V / 32768) is the volts shown.
    assert tank.raw["volts"] == pytest.approx(int(tank.raw["code"]) * 4.096 / 32768, abs=1e-4)
    rtd = channels["dist-supply"]
    assert rtd.raw["fault_status"] == "0x00" and rtd.raw["config"] == "0xd1"
    assert float(rtd.raw["ohms"]) == pytest.approx(int(rtd.raw["ratio"]) / 32768 * 4300, abs=0.01)
    assert report.relays == []


def test_no_relay_pin_is_touched_unless_asked(world: SimBuses) -> None:
    probe(world.layout, world, world.clock, {})  # type: ignore[arg-type]
    assert {number for number, line in world.gpio.lines.items() if line.direction == "output"} & RELAY_PINS == set()


def test_a_named_relay_switches_reads_back_and_returns_to_safe(world: SimBuses) -> None:
    seen: list[bool] = []
    line = world.gpio.line(17)
    line.add_listener(seen.append)
    check = switch_relay(world.layout, world, "heat-pump", True, hold_s=0.0)
    assert (check.commanded, check.read_back, check.restored, check.ok) == ("on", "on", "off", True)
    assert seen == [True, False]  # the pin went high (normally-open, active high) and back
    others = {number for number, each in world.gpio.lines.items() if each.direction == "output"}
    assert others & RELAY_PINS == {17}


def test_a_relay_that_does_not_follow_is_reported(world: SimBuses) -> None:
    world.gpio.line(17).stuck_at = False  # a welded driver transistor: the pin stays low
    check = switch_relay(world.layout, world, "heat-pump", True, hold_s=0.0)
    assert not check.ok and check.read_back == "mismatch"
    assert "did not switch on" in check.detail


def test_unexpected_address_is_named(world: SimBuses) -> None:
    world.buses["i2c-1"].attach(0x4B, Ads1115Emulator())
    [scan] = scan_i2c(world.layout, world)
    assert scan.unexpected == ["0x4b"] and scan.missing == {}


def test_faults_are_shown_and_the_exit_code_says_incomplete(tmp_path: Path) -> None:
    done = hearth_probe("--layout", str(faulty_layout(tmp_path)), "--json")
    assert done.returncode == 5, done.stderr
    report = json.loads(done.stdout)
    assert report["buses"][0]["missing"] == {"0x49": "ads-house"}
    devices = {device["name"]: device for device in report["devices"]}
    assert not devices["ads-house"]["present"] and "no ADS1115 answers" in devices["ads-house"]["detail"]
    assert devices["ads-tank"]["present"]
    channels = {channel["name"]: channel for channel in report["channels"]}
    assert channels["tank-top"]["quality"] == "fault" and "thermistor open" in channels["tank-top"]["detail"]
    assert channels["tank-top"]["raw"]["code"] >= 26000  # the supply rail, as the ADC saw it
    assert channels["dist-supply"]["detail"].startswith("RTD shorted")
    assert channels["dist-supply"]["raw"]["fault_status"] == "0x40"  # bit 6: at or below the low threshold
    assert channels["outdoor"]["quality"] == "fault" and channels["outdoor"]["raw"] == {}
    assert channels["tank-mid"]["quality"] == "ok"


def test_text_report_and_relay_switch(tmp_path: Path) -> None:
    done = hearth_probe("--layout", "layouts/demo.toml", "--switch", "heat-pump=on", "--hold", "0")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "emulated I2C bus 1 (i2c-1): answering 0x48, 0x49" in done.stdout
    assert "heat-pump: commanded on, read back on, back to safe state off: ok" in done.stdout
    assert done.stdout.rstrip().endswith("probe: everything answered")
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("switch", "message"),
    [
        ("heat-pmup=on", "no relay 'heat-pmup'; did you mean 'heat-pump'?"),
        ("heat-pump=maybe", "say heat-pump=on or heat-pump=off"),
    ],
)
def test_bad_switch_is_a_usage_error(switch: str, message: str) -> None:
    done = hearth_probe("--layout", "layouts/demo.toml", "--switch", switch)
    assert done.returncode == 2 and message in done.stderr


def test_help_says_what_it_does() -> None:
    done = hearth_probe("--help")
    assert done.returncode == 0
    for words in ("--switch RELAY=on|off", "--hold SECONDS", "Exit 5", "(exit 6)", "systemctl stop hearth"):
        assert words in " ".join(done.stdout.split()), words


def test_refuses_real_hardware_while_a_controller_answers(tmp_path: Path) -> None:
    """On a Pi the service holds the buses and drives the relays: probing beside it would fight it."""
    path = tmp_path / "hearth.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(str(path))
        listener.listen()
        busy = hearth_probe("--layout", "layouts/pi4-example.toml", "--socket", str(path))
    assert busy.returncode == 6
    assert "a controller is running" in busy.stderr and "sudo systemctl stop hearth" in busy.stderr
    # Nobody listening: it goes on to the hardware (which this machine lacks: the device nodes are named).
    alone = hearth_probe("--layout", "layouts/pi4-example.toml", "--socket", str(path))
    assert alone.returncode == 3 and "/dev/i2c-1 is missing" in alone.stderr
