"""The issue-13 "done when", repeatable: the demo at `--speed` in a real terminal, then the Energy screen's totals of
a whole simulated day against the heat-pump meter's own counter. Target: within 0.5 %.

1. `scripts/demo --no-atn --speed S --state-dir DIR` in a private tmux (80x24 by default: the smallest terminal
   the screens are made for): the controller on simulated hardware, the TUI on its socket.
2. The Overview's heat-pump panel is captured once the heat pump runs (power, heat, flow and COP now).
3. When the controller's clock (from its State) is past the end of the first whole local day after the start, the
   bench presses `e` (Energy), `d` (day plot) and `[` (the day before today) and reads the day's electricity as
   the Energy screen shows it: "electricity 12.34 kWh (meter 12.35 kWh, -0.08 %)".
4. It quits the TUI (`q`: the demo stops the controller), opens the store the controller wrote and reads the
   meter's import counter (`hp-energy`: the register the emulated SDM120 keeps itself, read over Modbus) at the
   day's two midnights, interpolated between its stored values. The error is the screen's electricity against
   that counter difference.

    flock /work/heavy.lock .venv/bin/python bench/demo_energy_day.py [--speed 600] [--size 80x24] [--show]

At --speed 600 a simulated day takes 2.4 minutes of wall time; the run takes about 3 to 4 minutes in all.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `bench.tui` (the tmux harness) and the packages

import argparse
import json
import os
import re
import shutil
import socket
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import controller  # noqa: F401  (Blinka check off)
from bench.tui import Tmux
from controller.energy.days import day_bounds, local_day
from controller.energy.integrate import Sample, _interpolate
from controller.layout.load import load_layout
from controller.store import Store

ROOT = Path(__file__).resolve().parent.parent
TARGET_PCT = 0.5
SHOWN = re.compile(r"electricity\s+([\d.]+)\s+kWh\s+\(meter\s+([\d.]+)\s+kWh,\s+([+-][\d.]+)\s+%\)")


def ask(sock_path: Path, request: dict[str, Any], wanted: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    """Send `request` on the controller's local socket; the first message `wanted` accepts."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(sock_path))
        sock.sendall(json.dumps({"v": 1, "id": "bench", **request}).encode() + b"\n")
        buffer = b""
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("the controller closed the socket")
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message: dict[str, Any] = json.loads(line)
                if wanted(message):
                    return message


def controller_now(sock_path: Path) -> float:
    """The controller's clock: the `ts` of the State it pushes after `subscribe` on its local socket."""
    state = ask(sock_path, {"op": "subscribe"}, lambda m: m.get("push") == "state")
    return float(state["state"]["ts"])


def counter_at(samples: list[Sample], t: float) -> float:
    """The counter at `t`, interpolated between the stored values around it."""
    before = [s for s in samples if s.t <= t and s.value is not None]
    after = [s for s in samples if s.t >= t and s.value is not None]
    if not before or not after:
        raise RuntimeError(f"the store has no counter value on both sides of {t}")
    a, b = before[-1], after[0]
    return float(a.value) if a.t == b.t else _interpolate(a, b, t)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speed", type=float, default=600.0, help="simulated time runs this many times faster")
    parser.add_argument("--size", default="80x24", help="the terminal, COLUMNSxLINES (default 80x24)")
    parser.add_argument("--show", action="store_true", help="print the captured screens")
    parser.add_argument("--keep", type=Path, help="keep the demo's state here (default: a temporary directory)")
    args = parser.parse_args()
    width, height = (int(n) for n in args.size.lower().split("x"))
    state = args.keep or Path(tempfile.mkdtemp(prefix="hearth-demo-day-"))
    layout = load_layout(ROOT / "layouts/demo.toml")
    zone = ZoneInfo(layout.site.timezone)
    tmux = Tmux(f"hearth-demo-day-{os.getpid()}", width, height)
    session = "demo"
    try:
        command = ["scripts/demo", "--no-atn", "--speed", f"{args.speed:g}", "--state-dir", str(state)]
        tmux.run("new-session", "-d", "-s", session, "-x", str(width), "-y", str(height), "-c", str(ROOT),
                 "exec " + " ".join(command))  # fmt: skip
        sock = state / "hearth.sock"
        tmux.wait_for(session, lambda s: "heat pump" in s.lower() and "°C" in s, 90, "the TUI with live data")
        start = controller_now(sock)
        day = local_day(start, zone) + timedelta(days=1)
        day_start, day_end = day_bounds(day, zone)
        wall = (day_end - start) / args.speed
        print(f"demo at {args.speed:g}x, {width}x{height}; simulated start {time.ctime(start)}; day {day} ends in "
              f"{wall:.0f} s of wall time")  # fmt: skip
        # the heat-pump panel with power, heat and a COP now: the compressor runs and its meter has seen it
        running = re.compile(r"electric\s+[1-9][\d.]*\s*k?W\s+heat\s+-?[\d.]+\s*k?W\s+COP\s+\d")
        tmux.wait_for(session, lambda s: running.search(" ".join(s.split())) is not None, wall, "the panel's COP")
        panel = tmux.screen(session)
        if args.show:
            print("--- Overview, heat pump running ---\n" + panel)
        while controller_now(sock) < day_end + 900:  # and a keep-alive more, so the day's last rows are stored
            time.sleep(2)
        tmux.keys(session, "e")
        tmux.wait_for(session, lambda s: "Today so far" in s, 30, "the Energy screen")
        if args.show:
            print("--- Energy ---\n" + tmux.screen(session))
        tmux.keys(session, "d")
        tmux.wait_for(session, lambda s: "recorded" in s, 30, "the day plot")
        tmux.keys(session, "[")
        wanted = day.strftime("%Y-%m-%d")
        heading = re.compile(rf"\w+day {wanted}[ ,]")  # the day's own heading: its figures are drawn

        def drawn(screen: str) -> bool:
            return heading.search(screen) is not None and SHOWN.search(" ".join(screen.split())) is not None

        tmux.wait_for(session, drawn, 30, wanted)
        screen = tmux.screen(session)
        if args.show:
            print(f"--- Energy, day plot of {wanted} ---\n{screen}")
        found = SHOWN.search(" ".join(screen.split()))
        assert found is not None
        shown_elec, shown_meter, shown_pct = (float(g) for g in found.groups())
        answer = ask(sock, {"op": "energy", "days": 3}, lambda m: m.get("id") == "bench")
        row = next(d for d in answer["energy"] if d["day"] == wanted)
        tmux.keys(session, "q")
        deadline = time.monotonic() + 30
        while sock.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(1.0)
        with Store.open(state / layout.storage.path) as store:
            rows = [Sample(r.ts, r.value) for r in store.history("hp-energy", day_start - 3600, day_end + 3600)]
        meter = counter_at(rows, day_end) - counter_at(rows, day_start)
        error = (shown_elec - meter) / meter * 100.0
        print(f"day {wanted}: Energy screen electricity {shown_elec:.2f} kWh (it shows meter {shown_meter:.2f} kWh, "
              f"{shown_pct:+.2f} %)")  # fmt: skip
        print(f"the meter's own counter over the day (store, interpolated at the midnights): {meter:.3f} kWh")
        print(f"the day's data: coverage {row['coverage_pct']:.1f} %, gaps {row['gap_s']:.0f} s (an interval of "
              f"the stored power longer than 1.5 keep-alives is a gap, not filled), {row['starts']} starts, heat "
              f"{row['heat_kwh']:.2f} kWh, COP {row['cop']:.2f}")  # fmt: skip
        ok = abs(error) <= TARGET_PCT
        print(f"energy integrated vs the meter's counter: {error:+.3f} %  (target within {TARGET_PCT} %)  "
              f"{'ok' if ok else 'MISSED'}")  # fmt: skip
        if not ok:
            sys.exit(1)
    finally:
        tmux.kill_server()
        if args.keep is None:
            shutil.rmtree(state, ignore_errors=True)


if __name__ == "__main__":
    main()
