"""The CLI, through the installed `hearth` entry point (and `python -m controller`), as a user runs it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEARTH = shutil.which("hearth", path=str(Path(sys.executable).parent)) or "hearth"
DEMO = str(ROOT / "layouts/demo.toml")


def hearth(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEARTH, *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT)


def json_events(stderr: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]


@pytest.mark.parametrize(
    "args",
    [["--help"], ["run", "--help"], ["layout", "--help"], ["layout", "check", "--help"], ["layout", "show", "--help"]],
)
def test_every_command_has_help(args: list[str]) -> None:
    result = hearth(*args)
    assert result.returncode == 0
    assert result.stdout.startswith("usage: hearth")


def test_version_and_module_entry_point() -> None:
    assert hearth("--version").stdout.startswith("hearth ")
    module = subprocess.run([sys.executable, "-m", "controller", "--version"], capture_output=True, text=True)
    assert module.stdout == hearth("--version").stdout


def test_layout_check_ok_and_broken() -> None:
    ok = hearth("layout", "check", DEMO, str(ROOT / "layouts/pi4-example.toml"))
    assert ok.returncode == 0
    assert "demo.toml: ok (4 buses, 6 devices, 18 channels, 4 actuators)" in ok.stdout
    broken = hearth("layout", "check", DEMO, "tests/layouts/broken/typo-key.toml")
    assert broken.returncode == 1
    assert (
        "tests/layouts/broken/typo-key.toml:20 channels.tank-top.devcie: unknown key 'devcie'; did you mean 'device'?"
        in broken.stderr
    )


def test_layout_show_prints_the_tree() -> None:
    result = hearth("layout", "show", DEMO)
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "site demo-house — Demo house (simulated)"
    assert any(line.strip().startswith("ads-tank: ads1115 at 0x48") for line in lines)
    assert any("dist-supply" in line and "RTD" in line for line in lines)
    assert any(line.strip().startswith("heat-pump: relay on GPIO17") for line in lines)


def test_dry_run_good_and_bad() -> None:
    good = hearth("run", "--layout", DEMO, "--dry-run")
    assert (
        good.returncode == 0
        and "layout ok" in good.stdout
        and "bus workers: i2c-1, spi-0, rs485, p1, gpio" in good.stdout
    )
    bad = hearth("run", "--layout", "tests/layouts/broken/unknown-device.toml", "--dry-run")
    assert bad.returncode == 1 and "unknown device 'ads-1'; did you mean 'ads1'?" in bad.stderr


def test_real_backend_off_a_pi_fails_loudly_and_cleanly() -> None:
    result = hearth("run", "--layout", "layouts/pi4-example.toml", "--duration", "2", "--log-format", "json")
    assert result.returncode == 3
    error = [e for e in json_events(result.stderr) if e["event"] == "hardware unavailable"]
    assert len(error) == 1
    assert str(error[0]["detail"]).startswith("/dev/gpiochip0 is missing:")
    assert 'backend = "sim"' in str(error[0]["detail"])
    assert "Traceback" not in result.stderr


def test_run_samples_reports_and_exits_on_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [HEARTH, "run", "--layout", DEMO, "--log-format", "json", "--report-every", "0.5"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Stop it once it is running (a fixed sleep raced start-up on a busy machine) and half a second of reports on.
    assert process.stderr is not None
    lines: list[str] = []
    for line in process.stderr:
        lines.append(line)
        if '"event": "first control decision"' in line:
            break
    time.sleep(1.0)
    process.send_signal(signal.SIGTERM)
    rest, _ = process.communicate(timeout=20)[1], None
    stderr = "".join(lines) + (rest or "")
    assert process.returncode == 0, stderr
    events = json_events(stderr)
    names = [e["event"] for e in events]
    first = events[names.index("first readings")]
    readings = first["readings"]
    assert isinstance(readings, dict) and set(readings) >= {"tank-top", "outdoor", "dist-supply"}
    # The smart meter's first telegram may still be on its way (DSMR 5 sends one a second): its channels may
    # be pending at the first snapshot; every chip and the Modbus meter has a value. The derived COP has none
    # while the compressor is off.
    pending = {name for name, value in readings.items() if not isinstance(value, float)}
    assert pending <= {"grid-power", "grid-import-t1", "grid-import-t2", "grid-export-t1", "grid-export-t2",
                       "grid-tariff", "hp-cop"}, readings  # fmt: skip
    assert "readings" in names
    stop = events[names.index("stopped; relays in safe state")]
    assert stop["relays"] == {"heat-pump": False, "store-pump": False, "distribution-pump": True, "aux-element": False}
    assert names.index("stop requested") < names.index("stopped; relays in safe state")


def test_run_keeps_going_with_a_missing_board_and_a_broken_sensor(tmp_path: Path) -> None:
    layout = (
        (ROOT / "layouts/demo.toml")
        .read_text()
        .replace("[sim]\n", '[sim]\nfaults = { ads-house = "absent", tank-top = "open" }\n')
    )
    path = tmp_path / "faulty.toml"
    path.write_text(layout)
    result = hearth("run", "--layout", str(path), "--duration", "2.5", "--log-format", "json", "--report-every", "1")
    assert result.returncode == 0, result.stderr
    events = json_events(result.stderr)
    missing = [e for e in events if e["event"] == "device missing"]
    assert missing and "no ADS1115 answers on emulated I2C bus 1 (i2c-1) address 0x49 (errno 121" in str(
        missing[0]["detail"]
    )
    bad = {e["channel"]: e["detail"] for e in events if e["event"] == "channel bad"}
    assert "thermistor open" in str(bad["tank-top"])
    assert {"outdoor", "house-air", "hp-entering"} <= set(bad)
    last = [e for e in events if e["event"] == "readings"][-1]["readings"]
    assert isinstance(last, dict) and isinstance(last["tank-mid"], float) and last["tank-top"] == "fault"
    assert "Traceback" not in result.stderr


def test_speed_is_only_for_simulation() -> None:
    result = hearth("run", "--layout", "layouts/pi4-example.toml", "--speed", "10")
    assert result.returncode == 2 and "--speed only applies" in result.stderr


def test_blinka_pip_check_is_off_in_the_process() -> None:
    env = {k: v for k, v in os.environ.items() if k != "BLINKA_SKIP_DEPENDENCY_CHECK"}
    code = "import controller, os; print(os.environ['BLINKA_SKIP_DEPENDENCY_CHECK'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "1"


def test_watch_logs_go_to_the_state_directory_not_the_working_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = subprocess.run(
        [HEARTH, "run", "--layout", DEMO, "--state-dir", str(state), "--watch", "--duration", "1.5"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert f"hearth: logging to {state / 'hearth-watch.log'}" in result.stderr
    assert '"event": "starting"' in (state / "hearth-watch.log").read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state"]


def test_an_unwritable_log_file_is_one_line_and_its_own_exit_code(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    result = hearth("run", "--layout", DEMO, "--log-file", str(tmp_path / "a-file" / "hearth.log"), "--duration", "5")
    assert result.returncode == 5
    assert result.stderr.strip().splitlines() == [
        f"hearth: cannot write the log file {tmp_path / 'a-file' / 'hearth.log'}: Not a directory"
    ]


def test_the_watch_table_tells_a_silent_atn_from_a_connected_one() -> None:
    from controller.protocol import LinkState
    from controller.watch import _link_line

    now = 1_767_225_600.0
    live = LinkState(connected=True, last_heartbeat=now - 3, silence_s=15.0)
    quiet = LinkState(connected=True, last_heartbeat=now - 40, silence_s=15.0)
    assert _link_line(live, now).startswith("ATN link: connected, last heartbeat 3 s ago")
    assert _link_line(quiet, now).startswith("ATN link: SILENT (broker connected), last heartbeat 40 s ago")
    assert _link_line(LinkState(connected=False), now).startswith("ATN link: DOWN")


def test_atn_sim_check_refuses_a_file_that_is_not_a_ledger_and_leaves_it_alone(tmp_path: Path) -> None:
    store = tmp_path / "demo.sqlite"
    from controller.store import Store

    with Store.open(store):
        pass
    before = store.read_bytes()
    result = hearth("atn-sim", "check", "--db", str(store))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{store}: not an ATN ledger (no readings table with a site column)" in result.stderr
    assert store.read_bytes() == before  # read-only: no ledger tables added, no journal mode changed
    junk = tmp_path / "junk.db"
    junk.write_text("not sqlite\n")
    result = hearth("atn-sim", "check", "--db", str(junk))
    assert result.returncode == 2 and "not an ATN ledger" in result.stderr and "Traceback" not in result.stderr


def test_output_into_a_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    """`hearth keys new NAME | head -1`: the reader leaves early; no BrokenPipeError traceback. Here the reader has
    gone before the first write, so the write fails every time."""
    for args in (["keys", "new", "alice", "--dir", str(tmp_path)], ["--help"]):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            result = subprocess.run([HEARTH, *args], stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
        finally:
            os.close(write_end)
        assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, (args, result.stderr)
