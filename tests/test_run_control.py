"""`hearth run` as systemd runs it: controls the simulated plant, explains every decision, keeps its store, brings
back overrides after a restart, and speaks the notify protocol."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from controller.control.types import Override
from controller.store import Store

ROOT = Path(__file__).resolve().parent.parent
HEARTH = str(Path(sys.executable).parent / "hearth")
DEMO = str(ROOT / "layouts/demo.toml")


def run(state: Path, *extra: str, env: dict[str, str] | None = None, seconds: float = 4.0) -> list[dict[str, object]]:
    result = subprocess.run(
        [
            HEARTH,
            "run",
            "--layout",
            DEMO,
            "--state-dir",
            str(state),
            "--log-format",
            "json",
            "--duration",
            str(seconds),
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]


Events = list[dict[str, object]]


def run_until(
    state: Path, *extra: str, until: Callable[[Events], bool], env: dict[str, str] | None = None, limit_s: float = 60
) -> Events:
    """`hearth run` until `until(events so far)` holds (or `limit_s` passes), then SIGTERM, as systemd stops it.
    Waiting for what the test is about, not for a fixed time: start-up alone takes seconds on a busy machine."""
    process = subprocess.Popen(
        [HEARTH, "run", "--layout", DEMO, "--state-dir", str(state), "--log-format", "json", *extra],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
    )
    assert process.stderr is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stderr.readline, "")), daemon=True)
    reader.start()

    def events() -> Events:
        return [json.loads(line) for line in list(lines) if line.startswith("{")]

    deadline = time.monotonic() + limit_s
    try:
        while not until(events()) and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        reader.join(timeout=10)
    text = "".join(lines)
    assert process.returncode == 0, text[-3000:]
    assert "Traceback" not in text
    return events()


def test_controls_the_plant_and_explains_every_decision(tmp_path: Path) -> None:
    events = run(tmp_path, "--speed", "60")
    decisions = [e for e in events if e["event"] == "decision"]
    assert {d["actuator"] for d in decisions} == {"heat-pump", "store-pump", "distribution-pump", "aux-element"}
    assert all(isinstance(d["reason"], str) and d["reason"] for d in decisions)
    assert all(d["source"] in ("local", "interlock", "safe", "override", "atn") for d in decisions)
    first = next(e for e in events if e["event"] == "first control decision")
    assert isinstance(first["startup_s"], float) and "LOCAL" in str(first["summary"])
    # The store kept readings and events on disk.
    with Store.open(tmp_path / "demo.sqlite") as store:
        assert store.integrity == "ok"
        assert store.last_seq() > 9
        kinds = {event.kind for _, event in store.events_after(0)}
        assert {"start", "mode", "stop"} <= kinds


def test_an_override_survives_a_restart_and_wins_over_the_policy(tmp_path: Path) -> None:
    now = time.time()
    with Store.open(tmp_path / "demo.sqlite") as store:
        store.save_override(
            Override(
                id="ov-1",
                target="aux-element",
                value=True,
                created_at=now - 60,
                expires_at=now + 600,
                who="alice",
                origin="test",
                reason="drying the screed",
            )
        )

    # Speed 20: the 60 s minimum off-time passes in 3 s, and a sample period (50 ms) stays longer than an I2C
    # round of the demo's eight ADS1115 channels even on a loaded machine (at 60 the tanks went stale).
    def aux_by_override(events: Events) -> bool:
        return any(
            e["event"] == "decision" and e["actuator"] == "aux-element" and e["source"] == "override" for e in events
        )

    events = run_until(tmp_path, "--speed", "20", until=aux_by_override)
    opened = next(e for e in events if e["event"] == "store open")
    assert opened["overrides_restored"] == 1
    aux = [e for e in events if e["event"] == "decision" and e["actuator"] == "aux-element"]
    # At boot the element's minimum off-time counts from the start (a crash-looping controller must not
    # short-cycle anything); then the override takes it.
    assert aux[0]["source"] == "interlock" and aux[0]["held_by"] == "min-off" and aux[0]["on"] is False
    assert aux[-1]["source"] == "override" and aux[-1]["on"] is True
    assert "alice" in str(aux[-1]["reason"]) and "drying the screed" in str(aux[-1]["reason"])
    mode = [e for e in events if e["event"] == "mode"]
    assert mode and "OVERRIDE" in str(mode[0]["message"])


def test_notify_ready_and_watchdog_over_a_real_socket(tmp_path: Path) -> None:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    messages: list[str] = []

    def receive() -> None:
        while True:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                return

    def three_pats(_events: Events) -> bool:
        receive()
        return messages.count("WATCHDOG=1") >= 3

    try:
        run_until(tmp_path, env={"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "1000000"}, until=three_pats)
        receive()  # STOPPING=1
    finally:
        sock.close()
    ready = [m for m in messages if "READY=1" in m]
    assert len(ready) == 1 and "STATUS=OVERRIDE" not in ready[0] and "STATUS=LOCAL: " in ready[0]
    pats = [m for m in messages if m == "WATCHDOG=1"]
    assert len(pats) >= 3  # every 0.5 s after healthy ticks, over ~2.5 s of control
    assert messages.index(ready[0]) < messages.index(pats[0])
    assert any("STOPPING=1" in m for m in messages)


def test_a_crash_leaves_relays_safe_logs_once_and_exits_for_a_restart(tmp_path: Path) -> None:
    """Any unexpected error in a task: every relay to its safe state, one critical log line, exit 70."""
    import asyncio

    from controller import logs
    from controller.clock import SimClock
    from controller.layout.load import load_layout
    from controller.runtime import Controller, RunOptions
    from controller.sim.world import SimBuses

    layout = load_layout(DEMO)
    clock = SimClock(speed=60)
    buses = SimBuses(layout, clock)

    async def broken_task() -> None:
        await asyncio.sleep(1.0)
        buses.gpio.line(17).value = True  # something switched the heat pump on behind the controller's back ...
        raise RuntimeError("boom")  # ... and then failed

    runner = Controller(
        layout, buses, clock, RunOptions(state_dir=tmp_path), {"plant": buses.run, "broken": broken_task}
    )
    logs.configure("warning", json=True)
    try:
        asyncio.run(runner.run())
    except* RuntimeError as group:
        assert str(group.exceptions[0]) == "boom"
    else:
        raise AssertionError("the crash did not propagate")
    assert buses.relay_states() == {
        "heat-pump": False,
        "store-pump": False,
        "distribution-pump": True,
        "aux-element": False,
    }


def test_an_unusable_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    bad_state = tmp_path / "not-a-dir"
    bad_state.write_text("a file where the state directory should be")
    result = subprocess.run(
        [HEARTH, "run", "--layout", DEMO, "--state-dir", str(bad_state), "--log-format", "json", "--duration", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 4, result.stderr[-2000:]
    errors = [json.loads(line) for line in result.stderr.splitlines() if '"store unavailable"' in line]
    assert len(errors) == 1 and str(errors[0]["detail"]).startswith(f"cannot open the store at {bad_state}/demo.sqlite")
    assert "Traceback" not in result.stderr
    stopped = [json.loads(line) for line in result.stderr.splitlines() if "relays in safe state" in line]
    assert stopped  # the relays were claimed in their safe states before the store was opened
