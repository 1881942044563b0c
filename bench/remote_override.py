"""Signed overrides over MQTT, two figures, each printed next to its target:

1. keypress to emulated relay over MQTT through the broker: a private mosquitto (the deploy ACL), the real
   controller in this process (layouts/demo.toml with the aux element's minimum on/off times at 0,
   remote_overrides on, one trusted key) with a listener on the aux element's emulated GPIO line, and
   `hearth tui --mqtt ... --key ...` in a real terminal (tmux) as the technician. The override form is driven by keys
   and the final Enter is timed to the line switching ON, then `x` on the overview (a signed release) to it
   switching OFF. Each trip is split where the request reaches the controller's handler. The same driver as
   bench/tui.py's figure 3 (the local socket), so the two compare. Target p99 <= 150 ms on loopback.
2. what checking a request costs the controller, per request: the parse path (size, depth, finite numbers, the
   strict model), the Ed25519 signature check alone, and the whole gate (canonical spelling, signature, site,
   expiry, the new id written to the store on disk).

    .venv/bin/python bench/remote_override.py [--trials 30] [--typed-trials 10] [--checks 2000] [--only 2]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import time

from bench.tui import (
    AUX,
    AUX_PIN,
    HEARTH,
    LIVE_TANK_TOP,
    InProcessController,
    LineWatch,
    Tmux,
    Trip,
    cpu_model,
    override_passes,
    percentile,
    quick_aux_layout,
    settle,
    spread,
    tui_pid,
    verdict,
    wait_gone,
)
from controller import protocol
from controller.remote.gate import Gate, trusted_keys
from controller.remote.keys import load_private, new_pair, public_text
from controller.remote.signing import Signer, signature_problem
from controller.store import Store
from tests.broker import start_broker

SITE = "demo-house"
TARGET_S = 0.150


def latency_lines(what: str, trips: list[Trip]) -> str:
    p99 = percentile([t.total_s for t in trips], 0.99)
    return (
        f"    {what}: {spread([t.total_s for t in trips])} over {len(trips)} "
        f"(target p99 <= 150 ms: {verdict(p99 <= TARGET_S)})\n"
        f"      keypress -> request at the controller {spread([t.to_controller_s for t in trips])}; "
        f"request -> relay {spread([t.in_controller_s for t in trips])}"
    )


def time_remote_requests(running: InProcessController) -> None:
    """Note when each signed request reaches the controller's handler (splits a trip into its two parts)."""
    assert running.runner is not None and running.runner.link is not None
    remote = running.runner.link.remote
    assert remote is not None, "remote_overrides is not on"
    handle = remote.handle

    async def timed(payload: bytes, retained: bool = False) -> protocol.Response:
        with contextlib.suppress(ValueError, AttributeError):
            running.arrivals.append((time.perf_counter(), str(json.loads(payload).get("op"))))
        return await handle(payload, retained)

    setattr(remote, "handle", timed)  # noqa: B010  (an instance attribute over the method, for this bench)


def figure_keypress(work: Path, trials: int, typed_trials: int) -> None:
    print(f"1. keypress to relay over MQTT (in-process controller, {AUX} on GPIO {AUX_PIN}, min on/off 0 s)")
    broker = start_broker(work / "broker", site=SITE)
    try:
        key_file, _ = new_pair("alice", work / "keys")
        _, key = load_private(key_file)
        controller_password, technician_password = work / "controller.password", work / "technician.password"
        controller_password.write_text(broker.users[SITE])
        technician_password.write_text(broker.users["technician"])
        layout = quick_aux_layout(work)
        layout.write_text(
            layout.read_text() + f'\n[links.atn]\nurl = "mqtt://127.0.0.1:{broker.port}"\nusername = "{SITE}"\n'
            f'password_file = "{controller_password}"\nremote_overrides = true\n'
            f'[[links.atn.technicians]]\nname = "alice"\nkey = "{public_text(key.public_key())}"\n'
        )
        state = work / "state"
        state.mkdir()
        watch = LineWatch()
        tmux = Tmux(f"hearth-remote-{os.getpid()}")
        with InProcessController(layout, state, work / "ctl.sock") as running:
            assert running.buses is not None
            running.buses.gpio.line(AUX_PIN).add_listener(watch)
            deadline = time.monotonic() + 20
            while running.runner is None or running.runner.link is None or not running.runner.link.connected:
                if time.monotonic() > deadline:
                    raise RuntimeError("the controller's MQTT link did not come up within 20 s")
                time.sleep(0.05)
            time_remote_requests(running)
            command = [HEARTH, "tui", "--mqtt", f"mqtt://127.0.0.1:{broker.port}", "--site", SITE,
                       "--username", "technician", "--password-file", str(technician_password),
                       "--key", str(key_file)]  # fmt: skip
            tmux.spawn("remote", command)
            pid = tui_pid(tmux, "remote")
            try:
                tmux.wait_for("remote", lambda s: bool(LIVE_TANK_TOP.search(s)) and "technician" in s, 20, "live data")
                settle(pid)
                override_passes(tmux, "remote", watch, running, pid, (trials, typed_trials), latency_lines)
            finally:
                tmux.kill_session("remote")
                wait_gone(pid)
                tmux.kill_server()
    finally:
        broker.stop()


def per_request(seconds: list[float]) -> str:
    us = [s * 1e6 for s in seconds]
    return f"p50 {statistics.median(us):.0f} us, p99 {percentile(us, 0.99):.0f} us"


def figure_check_cost(work: Path, count: int) -> None:
    print(f"2. what checking one signed request costs the controller ({count} requests, each with a new id)")
    signer = Signer("alice", load_private(new_pair("alice", work / "check-keys")[0])[1], SITE)
    now = time.time()
    requests = [
        signer.request("override", now, target="heat-pump", value=True, duration_s=1200.0, reason="call-out")
        for _ in range(count)
    ]
    wires = [r.wire() for r in requests]
    with Store.open(work / "check.sqlite") as store:
        gate = Gate(SITE, trusted_keys([("alice", public_text(signer.key.public_key()))]), store)
        trusted = next(iter(gate.keys.values())).key
        parse, verify, whole = [], [], []
        for wire in wires:
            started = time.perf_counter()
            parsed = protocol.parse(protocol.SignedOverride, wire)
            parsed_at = time.perf_counter()
            assert signature_problem(parsed, trusted) is None
            verified_at = time.perf_counter()
            gate.check(parsed, now, wire)
            done = time.perf_counter()
            parse.append(parsed_at - started)
            verify.append(verified_at - parsed_at)
            whole.append(done - verified_at)
    print(f"    the parse path (decode_json + the strict model): {per_request(parse)}")
    print(f"    the Ed25519 signature check alone:               {per_request(verify)}")
    print(f"    the whole gate (the signature again, the id to disk): {per_request(whole)}")
    print(
        f"    => at most ~{1 / statistics.median([a + b for a, b in zip(parse, whole, strict=True)]):.0f} requests/s "
        "on one core (parse + gate, p50) before anything is switched"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=30, help="override+release trials on a settled screen")
    parser.add_argument("--typed-trials", type=int, default=10, help="trials with the key 0.2 s after the previous")
    parser.add_argument("--checks", type=int, default=2000, help="requests for the check-cost figure")
    parser.add_argument("--only", type=int, choices=[1, 2], help="only this figure")
    args = parser.parse_args()
    print(f"bench/remote_override.py on {cpu_model()}, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}")
    with tempfile.TemporaryDirectory(prefix="hearth-remote-") as tmp:
        work = Path(tmp)
        if args.only in (None, 2):
            figure_check_cost(work, args.checks)
        if args.only in (None, 1):
            figure_keypress(work, args.trials, args.typed_trials)


if __name__ == "__main__":
    main()
