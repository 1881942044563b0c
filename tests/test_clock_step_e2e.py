"""A Pi's boot, end to end: `hearth run` on the simulated house at speed 1 runs on the system clock, as on a Pi;
its wall clock alone is set to 1970 and then stepped to today from outside (an LD_PRELOAD shim shifting only
CLOCK_REALTIME, tests/shims/realtime_shift.c) while a technician's override is active. The compressor keeps the
minimum off-time counted from boot, the override lasts its length, and the step is recorded with its size."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.store import Store
from tests.test_local_api import HEARTH, ROOT, Client

MIN_OFF_S = 15.0  # the demo's 180 s, shortened so the test takes half a minute
PRERUN_S = 3.0
OVERRIDE_S = 25.0
STEP_AT_S = 5.0


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Path:
    compiler = shutil.which("cc") or shutil.which("gcc")
    assert compiler is not None, "a C compiler is needed to build the clock shim (scripts/test installs gcc)"
    built = tmp_path_factory.mktemp("shim") / "realtime_shift.so"
    source = ROOT / "tests/shims/realtime_shift.c"
    subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(built), str(source), "-ldl"], check=True)
    return built


class Booted:
    """`hearth run` whose wall clock reads `shift_s` away from the machine's, until `step` changes it."""

    def __init__(self, shim: Path, state: Path, shift_s: float) -> None:
        self.shift_file = state / "realtime-shift"
        self.shift_file.write_text(f"{shift_s}\n")
        layout = state / "layout.toml"
        text = (ROOT / "layouts/demo.toml").read_text()
        text = text.replace("min_off_s = 180", f"min_off_s = {MIN_OFF_S:g}").replace(
            "prerun_s = 30", f"prerun_s = {PRERUN_S:g}"
        )
        assert "speed = 1.0" in text  # the Pi's clock: SystemClock (controller.buses.choose)
        layout.write_text(text)
        self._socket_dir = Path(tempfile.mkdtemp(prefix="hck-", dir="/tmp"))
        self.socket = self._socket_dir / "hearth.sock"
        self.log = state / "hearth.log"
        env = {"LD_PRELOAD": str(shim), "REALTIME_SHIFT_FILE": str(self.shift_file), "PATH": "/usr/bin:/bin"}
        command = [HEARTH, "run", "--layout", str(layout), "--state-dir", str(state), "--socket", str(self.socket)]
        with self.log.open("wb") as stderr:
            self.process = subprocess.Popen(
                [*command, "--log-format", "json"], stderr=stderr, stdout=subprocess.DEVNULL, cwd=ROOT, env=env
            )
        self.started = time.monotonic()
        self.state_dir = state

    def step(self, shift_s: float) -> None:
        """NTP steps the wall clock: only CLOCK_REALTIME moves."""
        staged = self.shift_file.with_suffix(".new")
        staged.write_text(f"{shift_s}\n")
        staged.replace(self.shift_file)

    def connect(self) -> Client:
        deadline = time.monotonic() + 15
        while True:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                return Client(self.socket)
            except (FileNotFoundError, ConnectionRefusedError):
                assert time.monotonic() < deadline, "the controller's socket never appeared"
                time.sleep(0.1)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=20)
        shutil.rmtree(self._socket_dir, ignore_errors=True)
        return code


@pytest.fixture
def booted_in_1970(shim: Path, tmp_path: Path) -> Iterator[Booted]:
    booted = Booted(shim, tmp_path, shift_s=86_400.0 - time.time())  # the Pi's clock reads 1970-01-02
    yield booted
    booted.stop()


def test_ntp_stepping_a_running_controller_from_1970_harms_neither_compressor_nor_override(
    booted_in_1970: Booted,
) -> None:
    hearth = booted_in_1970
    client = hearth.connect()
    try:
        assert client.request("subscribe")["ok"]
        assert client.push("state", timeout=10)["state"]["ts"] < 200_000  # it really runs on 1970
        answer = client.request(
            "override", target="heat-pump", value=True, duration_s=OVERRIDE_S, reason="commissioning"
        )
        assert answer["ok"], answer
        override_id = answer["override"]["id"]
        set_at = time.monotonic()
        heat_pump_on_at = override_gone_at = None
        stepped = False
        while time.monotonic() - set_at < OVERRIDE_S + 6:
            if not stepped and time.monotonic() - hearth.started >= STEP_AT_S:
                hearth.step(0.0)  # NTP: 1970 -> today, 56 years forward
                stepped = True
            now = client.push("state", timeout=5)["state"]
            if heat_pump_on_at is None and now["actuators"]["heat-pump"]["on"]:
                heat_pump_on_at = time.monotonic()
            active = [o["id"] for o in now["overrides"]]
            if override_gone_at is None and override_id not in active:
                override_gone_at = time.monotonic()
                break
        assert stepped
        assert heat_pump_on_at is not None, "the override never started the heat pump"
        # The minimum off-time counts from boot on the monotonic clock: the step did not cut it short.
        assert heat_pump_on_at - hearth.started >= MIN_OFF_S
        # The override lasted its length, not "ended at the step" (its 1970 expiry) nor longer.
        assert override_gone_at is not None
        assert OVERRIDE_S - 1.0 <= override_gone_at - set_at <= OVERRIDE_S + 2.0
        assert client.push("state", timeout=5)["state"]["ts"] > time.time() - 60  # and it now shows today's time
    finally:
        client.close()
    assert hearth.stop() == 0
    with Store.open(hearth.state_dir / "demo.sqlite") as store:
        clock = [event for _, event in store.events_after(0, limit=100_000) if event.kind == "clock"]
    assert [e.message.split(" (")[0] for e in clock[:1]] == ["wall clock not set"]
    (step,) = [e for e in clock if "stepped" in e.message]
    assert abs(float(step.data["step_s"]) - (time.time() - 86_400.0)) < 120  # 56 years forward, to the minute
    first, last = step.data["unset_clock_seqs"]
    assert 1 <= first <= last  # the readings dated by the unset clock, by seq
