"""`hearth status`: a running controller answers over its socket; SAFE and an unreachable controller give a
non-zero exit; the oldest unacknowledged reading comes from the store's outbox."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import MappingProxyType

import pytest

from controller import protocol
from controller.clock import ManualClock
from controller.control.inbox import AtnInbox
from controller.links.atn import AtnLinkRunner
from controller.links.config import AtnLink
from controller.readings import Quality, Reading, Snapshot
from controller.store import ChannelPolicy, Store
from tests.simhelpers import ROOT, demo_layout
from tui.status import EXIT_OK, EXIT_SAFE, EXIT_UNREACHABLE, Observation, exit_code, render, summary

HEARTH = Path(sys.executable).with_name("hearth")
NOW = 1_800_000_000.0


def status(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(HEARTH), "status", *args], capture_output=True, text=True, timeout=30, cwd=ROOT)


@pytest.fixture(scope="module")
def controller(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    state_dir = tmp_path_factory.mktemp("status")
    socket = state_dir / "hearth.sock"
    process = subprocess.Popen(
        [str(HEARTH), "run", "--layout", "layouts/demo.toml", "--state-dir", str(state_dir), "--socket", str(socket)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not socket.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert socket.exists(), "the controller did not open its socket"
        yield socket
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_running_controller_answers_in_json(controller: Path) -> None:
    done = status("--socket", str(controller), "--json")
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    answer = json.loads(done.stdout)
    assert (answer["reachable"], answer["site"], answer["mode"]) == (True, "demo-house", "LOCAL")
    assert answer["decision"].startswith("LOCAL: ")
    assert answer["link"] is None and answer["alarms"] == []
    assert sum(answer["readings"].values()) == 21  # the 18 channels of the demo layout; heat, its kWh register, COP


def test_running_controller_answers_in_text(controller: Path) -> None:
    done = status("--socket", str(controller))
    assert done.returncode == EXIT_OK, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("site demo-house: LOCAL (")
    assert lines[1].startswith("decision: LOCAL: ")
    assert "link: no ATN link in the layout" in lines
    assert "alarms: 0 (0 unacknowledged)" in lines


def test_unreachable_controller_exits_3(tmp_path: Path) -> None:
    done = status("--socket", str(tmp_path / "none.sock"), "--timeout", "1")
    assert done.returncode == EXIT_UNREACHABLE
    assert (
        done.stdout.strip()
        == f"hearth: not reachable: no controller socket at {tmp_path / 'none.sock'} (is `hearth run` running?)"
    )


def state(mode: str, **changes: object) -> protocol.State:
    fields: dict[str, object] = {
        "site": "demo-house",
        "ts": NOW,
        "mode": mode,
        "reason": "critical fault: relay aux-element on GPIO23 did not switch on" if mode == "SAFE" else "lease",
        "readings": {"tank-top": protocol.ReadingState(value=45.0, unit="degC", quality="ok", ts=NOW)},
        "actuators": {},
        "decision": "SAFE: every actuator to its safe state",
    }
    fields.update(changes)
    return protocol.State.model_validate(fields)


@pytest.mark.parametrize(
    ("seen", "code"),
    [
        (Observation(state=state("ATN")), EXIT_OK),
        (Observation(state=state("LOCAL")), EXIT_OK),
        (Observation(state=state("OVERRIDE")), EXIT_OK),
        (Observation(state=state("SAFE")), EXIT_SAFE),
        (Observation(problem="connection refused"), EXIT_UNREACHABLE),
    ],
)
def test_exit_codes(seen: Observation, code: int) -> None:
    assert exit_code(summary(seen, NOW)) == code


def test_safe_with_alarm_and_link_in_text() -> None:
    alarm = protocol.Alarm(id="relay:aux-element", message="relay aux-element did not switch on", since=NOW - 60)
    link = protocol.LinkState(connected=False, last_heartbeat=NOW - 45, backlog=120, oldest_unacked_ts=NOW - 300)
    text = render(summary(Observation(state=state("SAFE", alarms=[alarm], link=link)), NOW), NOW)
    assert text.splitlines() == [
        "site demo-house: SAFE (critical fault: relay aux-element on GPIO23 did not switch on)",
        "decision: SAFE: every actuator to its safe state",
        "link: DISCONNECTED, heartbeat 45 s ago, no lease, backlog 120",
        "oldest unacknowledged reading: 300 s ago",
        "readings: 1 ok",
        "alarms: 1 (1 unacknowledged)",
        "  ! relay aux-element did not switch on (since 60 s ago)",
    ]


def test_link_state_names_the_oldest_unacknowledged_reading(tmp_path: Path) -> None:
    store = Store.open(tmp_path / "link.sqlite")
    try:
        link = AtnLinkRunner(
            AtnLink(url="mqtt://127.0.0.1:1883"),
            demo_layout(),
            store,
            AtnInbox(),
            ManualClock(start=NOW),
            state=lambda: state("LOCAL"),
        )
        assert link.link_state().oldest_unacked_ts is None  # nothing stored, nothing owed
        every = {"tank-top": ChannelPolicy(deadband=0.0, keepalive_s=1.0)}
        for i in range(10):
            reading = Reading("tank-top", 40.0 + i, "degC", Quality.OK, NOW + i)
            store.record(Snapshot(NOW + i, MappingProxyType({"tank-top": reading})), every)
        store.flush()
        assert link.link_state().oldest_unacked_ts == NOW
        store.ack_upto(4)
        assert (link.link_state().backlog, link.link_state().oldest_unacked_ts) == (6, NOW + 4)
        store.ack_upto(10)
        assert link.link_state().oldest_unacked_ts is None
    finally:
        store.close()
