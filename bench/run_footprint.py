"""`hearth run` on the 24-channel simulated layout at 1 Hz: start-up time, CPU and RSS.

Targets: start to first readings snapshot <= 1.5 s; CPU <= 2 % of one core; RSS <= 80 MB. Start-up is measured
from just before the process is spawned (interpreter start and imports included) to the moment its "first
readings" log line arrives. CPU is utime + stime from /proc/PID/stat over the measuring window, after a
warm-up; RSS is VmRSS at the end and VmHWM (the peak).

    .venv/bin/python bench/run_footprint.py [--seconds 60] [--layout layouts/bench-24.toml]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEARTH = str(Path(sys.executable).parent / "hearth")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def memory_mb(pid: int) -> dict[str, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0]) / 1024
    return values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--layout", default=str(ROOT / "layouts/bench-24.toml"))
    args = parser.parse_args()

    state_dir = tempfile.mkdtemp(prefix="hearth-footprint-")
    spawned = time.monotonic()
    process = subprocess.Popen(
        [
            HEARTH,
            "run",
            "--layout",
            args.layout,
            "--log-format",
            "json",
            "--report-every",
            "3600",
            "--state-dir",
            state_dir,
            "--socket",
            f"{state_dir}/hearth.sock",
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    assert process.stderr is not None
    startup = decision = None
    for line in process.stderr:
        event = json.loads(line) if line.startswith("{") else {}
        if event.get("event") == "first readings":
            startup = time.monotonic() - spawned
            internal = event.get("startup_s")
        if event.get("event") == "first control decision":
            decision = time.monotonic() - spawned
        if startup is not None and decision is not None:
            break
    if startup is None or decision is None:
        raise SystemExit(f"hearth run ended before its first readings (exit {process.wait()})")
    time.sleep(args.warmup)
    cpu0, t0 = cpu_seconds(process.pid), time.monotonic()
    time.sleep(args.seconds)
    cpu1, t1 = cpu_seconds(process.pid), time.monotonic()
    memory = memory_mb(process.pid)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    cpu_percent = (cpu1 - cpu0) / (t1 - t0) * 100
    print(f"start to first readings: {startup:.3f} s (in-process from main(): {internal} s; target <= 1.5 s)")
    print(f"start to first control decision: {decision:.3f} s (target <= 1.5 s)")
    print(f"CPU over {t1 - t0:.0f} s: {cpu_percent:.2f} % of one core (target <= 2 %)")
    print(f"RSS: {memory['VmRSS']:.1f} MB now, {memory['VmHWM']:.1f} MB peak (target <= 80 MB)")
    print(f"exit code after SIGTERM: {process.returncode}")


if __name__ == "__main__":
    main()
