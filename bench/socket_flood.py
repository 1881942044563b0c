"""A technician's override under a local socket flood: worst latency against the 1 s target.

Starts `hearth run` on the simulated demo house, then one unprivileged user (nobody) holds 1,000 connections
(reconnecting whatever the controller closes) while another runs 64 slowloris clients (a request line started and
never finished). Meanwhile a technician (root, who runs this) connects, overrides a relay and releases it, again
and again; the time from connect to the override's answer is measured each time.

Run as root (the attackers are forked and setuid): `.venv/bin/python bench/socket_flood.py [--rounds 40]`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # for tests/flood.py: the same attackers the tests use

from tests import flood  # noqa: E402

HEARTH = str(Path(sys.executable).parent / "hearth")
NOBODY = 65534
TARGET_S = 1.0


def request(sock: socket.socket, buffer: bytearray, **fields: object) -> dict[str, object]:
    sock.sendall(json.dumps({"v": 1, "id": "b", **fields}).encode() + b"\n")
    while True:
        while b"\n" not in buffer:
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("closed")
            buffer += chunk
        line, _, rest = bytes(buffer).partition(b"\n")
        buffer[:] = rest
        message: dict[str, object] = json.loads(line)
        if "push" not in message:
            return message


def technician_round(path: Path) -> float:
    started = time.monotonic()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(path))
    buffer = bytearray()
    answer = request(sock, buffer, op="override", target="aux-element", value=False, duration_s=60)
    elapsed = time.monotonic() - started
    if not answer.get("ok"):
        raise RuntimeError(f"override refused: {answer}")
    override = answer["override"]
    assert isinstance(override, dict)
    request(sock, buffer, op="release", override_id=override["id"])
    sock.close()
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=40, help="technician overrides to time (default 40)")
    parser.add_argument("--flood", type=int, default=1000, help="connections held by one user (default 1000)")
    parser.add_argument("--slowloris", type=int, default=64, help="slowloris connections (default 64)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("run as root: the attackers become other users", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="hearth-flood-", dir="/tmp"))
    work.chmod(0o755)
    path = work / "hearth.sock"
    process = subprocess.Popen(
        [
            HEARTH,
            "run",
            "--layout",
            str(ROOT / "layouts/demo.toml"),
            "--state-dir",
            str(work / "state"),
            "--socket",
            str(path),
            "--log-format",
            "json",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not path.exists():
            if time.monotonic() > deadline or process.poll() is not None:
                print("hearth run did not start", file=sys.stderr)
                return 1
            time.sleep(0.1)
        quiet = [technician_round(path) for _ in range(5)]
        duration = args.rounds * 0.3 + 5
        attackers = [
            flood.start(path, NOBODY, args.flood, duration),
            flood.start(path, NOBODY - 1, args.slowloris, duration, slowloris=True),
        ]
        time.sleep(2.0)
        latencies = []
        for _ in range(args.rounds):
            latencies.append(technician_round(path))
            time.sleep(0.2)
        reports = [attack.finish() for attack in attackers]
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        shutil.rmtree(work, ignore_errors=True)
    worst = max(latencies)
    print(f"quiet socket: technician override p50 {statistics.median(quiet) * 1000:.0f} ms")
    print(
        f"under {args.flood} connections + {args.slowloris} slowloris: {len(latencies)} overrides, "
        f"p50 {statistics.median(latencies) * 1000:.0f} ms, worst {worst * 1000:.0f} ms (target <= {TARGET_S:g} s)"
    )
    print(f"flood: {reports[0]}; slowloris: {reports[1]}")
    print("PASS" if worst <= TARGET_S else "FAIL")
    return 0 if worst <= TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
