"""The TUI as a person uses it, end to end: `hearth tui` in a real terminal (tmux) against a running controller;
over SSH (a real sshd) with an override typed on the keyboard that switches the emulated relay; and over MQTT
as a read-only monitor."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.broker import Broker, start_broker
from tests.sshd import start_sshd

ROOT = Path(__file__).resolve().parent.parent
HEARTH = str(Path(sys.executable).parent / "hearth")
pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Terminal:
    """A private tmux server with one window running `command`."""

    def __init__(self, name: str, command: list[str], size: tuple[int, int] = (120, 40)) -> None:
        self.name = name
        quoted = " ".join(f"'{part}'" for part in command)
        self._tmux("new-session", "-d", "-s", "t", "-x", str(size[0]), "-y", str(size[1]), f"{quoted}; sleep 30")
        # A detached session may still come up at the server's default size: set it for certain.
        self._tmux("resize-window", "-t", "t", "-x", str(size[0]), "-y", str(size[1]))

    def _tmux(self, *args: str) -> str:
        # Without COLUMNS/LINES: Rich and Textual would take them over the terminal's real size.
        environment = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        return subprocess.run(
            ["tmux", "-L", self.name, *args], capture_output=True, text=True, check=True, env=environment
        ).stdout

    def screen(self) -> str:
        return self._tmux("capture-pane", "-p", "-t", "t")

    def keys(self, *keys: str) -> None:
        for key in keys:
            self._tmux("send-keys", "-t", "t", key)
            time.sleep(0.25)

    def wait_for(self, condition: Callable[[str], bool], timeout_s: float, what: str) -> str:
        deadline = time.monotonic() + timeout_s
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if condition(screen):
                return screen
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}; the screen shows:\n{screen}")

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.name, "kill-server"], capture_output=True)


class Controller:
    def __init__(self, layout: Path, state: Path, *extra: str) -> None:
        # A short path: AF_UNIX socket paths end at 108 bytes, and the TUI's header shows it in full.
        self._socket_dir = tempfile.mkdtemp(prefix="he2e-")
        self.socket = Path(self._socket_dir) / "hearth.sock"
        state.mkdir(parents=True, exist_ok=True)
        self.log = state / "hearth.log"
        self.process = subprocess.Popen(
            [HEARTH, "run", "--layout", str(layout), "--state-dir", str(state), "--socket", str(self.socket),
             "--log-format", "json", *extra],
            stderr=self.log.open("w"), cwd=ROOT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            assert time.monotonic() < deadline, self.log.read_text()[-2000:]
            time.sleep(0.05)

    def state(self) -> dict[str, object]:
        """The controller's State, read over its local socket as root would."""
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(self.socket))
            client.sendall(b'{"v": 1, "id": "t", "op": "subscribe"}\n')
            buffer = b""
            while True:
                buffer += client.recv(65536)
                for line in buffer.split(b"\n")[:-1]:
                    message = json.loads(line)
                    if message.get("push") == "state":
                        return dict(message["state"])
                buffer = buffer.split(b"\n")[-1] if b"\n" in buffer else buffer

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)
        shutil.rmtree(self._socket_dir, ignore_errors=True)


@pytest.fixture
def controller(tmp_path: Path) -> Iterator[Controller]:
    running = Controller(ROOT / "layouts/demo.toml", tmp_path / "state", "--speed", "30")
    yield running
    running.stop()


def test_live_values_change_in_a_real_terminal(controller: Controller, tmp_path: Path) -> None:
    terminal = Terminal("hearth-live", [HEARTH, "tui", "--socket", str(controller.socket)])
    try:
        first = terminal.wait_for(lambda s: "connected as root (technician)" in s and "°C" in s, 10, "live data")
        assert "LOCAL" in first or "OVERRIDE" in first
        terminal.keys("2")  # the channels screen: every channel with its value
        channels = terminal.wait_for(lambda s: "tank-bottom" in s and "dist-return" in s, 5, "the channels")
        later = terminal.wait_for(lambda s: s != channels and "tank-bottom" in s, 15, "values to change")
        assert later != channels
    finally:
        terminal.close()


def test_override_typed_over_ssh_switches_the_emulated_relay(controller: Controller, tmp_path: Path) -> None:
    server = start_sshd(tmp_path / "sshd", user="root")
    remote = f"{HEARTH} tui --socket {controller.socket}"
    terminal = Terminal("hearth-ssh", server.ssh_command(remote))
    try:
        terminal.wait_for(lambda s: "connected as root (technician)" in s, 15, "the TUI over ssh")
        before = controller.state()["actuators"]
        assert isinstance(before, dict) and before["heat-pump"]["source"] != "override"
        # o: the override form (heat-pump, on, 30 min by default); Tab to its Override button; Enter.
        terminal.keys("o")
        terminal.wait_for(lambda s: "Override — force for a limited time" in s, 5, "the override form")
        terminal.keys("Tab", "Tab", "Tab", "Tab", "Tab", "Enter")
        terminal.wait_for(lambda s: "Accepted" in s, 5, "the controller's answer")

        def relay_on() -> dict[str, object] | None:
            actuators = controller.state()["actuators"]
            assert isinstance(actuators, dict)
            heat_pump = actuators["heat-pump"]
            return heat_pump if heat_pump["on"] and heat_pump["source"] == "override" else None

        deadline = time.monotonic() + 30  # the interlocks (minimum off-time, pre-run) may hold it a while
        while (heat_pump := relay_on()) is None:
            assert time.monotonic() < deadline, f"the relay never followed the override: {controller.state()}"
            time.sleep(0.5)
        assert "override by root" in str(heat_pump["reason"])
        terminal.keys("Escape")
        screen = terminal.wait_for(lambda s: "Overrides (1)" in s, 5, "the override on the overview")
        assert "heat-pump" in screen and "left" in screen
    finally:
        terminal.close()
        server.stop()


@pytest.fixture
def mqtt_setup(tmp_path: Path) -> Iterator[tuple[Broker, Controller, Path]]:
    broker = start_broker(tmp_path / "broker")
    secret = tmp_path / "controller-password"
    secret.write_text(broker.users["demo-house"])
    layout = tmp_path / "layout.toml"
    layout.write_text(
        (ROOT / "layouts/demo.toml").read_text()
        + f'\n[links.atn]\nurl = "mqtt://127.0.0.1:{broker.port}"\nusername = "demo-house"\n'
        f'password_file = "{secret}"\nstate_every_s = 1\n'
    )
    running = Controller(layout, tmp_path / "state")
    monitor = tmp_path / "monitor-password"
    monitor.write_text(broker.users["monitor"])
    yield broker, running, monitor
    running.stop()
    broker.stop()


def test_monitor_over_mqtt_sees_everything_and_can_change_nothing(mqtt_setup: tuple[Broker, Controller, Path]) -> None:
    broker, running, password = mqtt_setup
    command = [
        HEARTH, "tui", "--mqtt", f"mqtt://127.0.0.1:{broker.port}", "--site", "demo-house",
        "--username", "monitor", "--password-file", str(password),
    ]  # fmt: skip
    terminal = Terminal("hearth-mqtt", command)
    try:
        screen = terminal.wait_for(lambda s: "read-only" in s and "°C" in s, 15, "the live view over MQTT")
        assert "o Override" not in screen  # the override binding is not offered
        terminal.keys("o")
        time.sleep(0.5)
        assert "Override — force for a limited time" not in terminal.screen()
        terminal.keys("2")
        terminal.wait_for(lambda s: "tank-top" in s and "dist-return" in s, 5, "the channels over MQTT")
        actuators = running.state()["actuators"]
        assert isinstance(actuators, dict)
        assert all(a["source"] != "override" for a in actuators.values())
    finally:
        terminal.close()
