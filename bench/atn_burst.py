"""A telemetry burst at the real `hearth atn-sim` through a private mosquitto: what the ATN's receive path costs.

One site publishes `--batches` telemetry batches of `--rows` readings (QoS 1) as fast as the broker takes them,
`--rounds` times (the second and later rounds are a resent window: every row a duplicate), and waits for the
acknowledgement of the last one. Prints the ATN's CPU seconds per batch, its peak RSS (VmHWM) and the time to
drain the burst. `--tree DIR` runs atn-sim from another source tree (PYTHONPATH), for a before/after on the same
machine: `git archive <commit> | tar -x -C DIR`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import aiomqtt  # noqa: E402

from tests.broker import start_broker  # noqa: E402

HEARTH = str(Path(sys.executable).parent / "hearth")
TICK = os.sysconf("SC_CLK_TCK")
SITE = "demo-house"
CHUNK = 500  # publishes in flight from the sender at once


def batch(first: int, rows: int) -> bytes:
    readings = [[s, 1.7e9 + s * 2.5, f"ch{s % 12}", 20.0 + (s % 400) / 10, "ok"] for s in range(first, first + rows)]
    body = {"v": 1, "site": SITE, "first_seq": first, "last_seq": first + rows - 1, "historical": True}
    return json.dumps({**body, "readings": readings}, separators=(",", ":")).encode()


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM"):
            return int(line.split()[1]) / 1024
    return 0.0


async def burst(args: argparse.Namespace, work: Path) -> None:
    broker = start_broker(work / "mosquitto", site=SITE)
    (work / "atn-password").write_text(broker.users["atn"])
    env = dict(os.environ, BLINKA_SKIP_DEPENDENCY_CHECK="1")
    if args.tree:
        env["PYTHONPATH"] = str(Path(args.tree).resolve())
    broker_url = f"mqtt://{broker.host}:{broker.port}"
    account = ["--password-file", str(work / "atn-password"), "--db", str(work / "ledger.sqlite")]
    quiet = ["--bands", "--heartbeat", "30", "--log-level", "warning"]
    atn = subprocess.Popen(
        [HEARTH, "atn-sim", "--broker", broker_url, "--site", SITE, *account, *quiet],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        payloads = [batch(1 + k * args.rows, args.rows) for k in range(args.batches)]
        last, total = args.batches * args.rows, args.batches * args.rounds
        topic = f"hearth/v1/{SITE}/telemetry"
        async with aiomqtt.Client(
            broker.host,
            broker.port,
            username=SITE,
            password=broker.users[SITE],
            identifier="burst-house",
            max_inflight_messages=200,
            timeout=120,
        ) as house:
            await house.subscribe(f"hearth/v1/{SITE}/atn/telemetry-ack", qos=1)
            await asyncio.sleep(3)  # atn-sim connects and subscribes
            used0, start = cpu_s(atn.pid), time.monotonic()
            sent_s = 0.0

            async def send() -> None:
                nonlocal sent_s
                for _ in range(args.rounds):
                    for i in range(0, len(payloads), CHUNK):
                        await asyncio.gather(*(house.publish(topic, p, qos=1) for p in payloads[i : i + CHUNK]))
                sent_s = time.monotonic() - start

            sender = asyncio.create_task(send())
            acks = 0
            async for message in house.messages:
                acks += 1
                assert isinstance(message.payload, bytes)
                if json.loads(message.payload)["upto_seq"] == last and acks >= total:
                    break
            await sender
            drained_s = time.monotonic() - start
            used = cpu_s(atn.pid) - used0
        print(
            f"{total} batches of {args.rows} rows ({args.rounds - 1} of {args.rounds} rounds duplicates): "
            f"all acknowledged after {drained_s:.1f} s (sent in {sent_s:.1f} s); atn-sim CPU {used:.1f} s = "
            f"{used / total * 1000:.2f} ms/batch; peak RSS {peak_rss_mb(atn.pid):.0f} MB"
        )
    finally:
        atn.terminate()
        atn.wait(timeout=10)
        broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=4000)
    parser.add_argument("--rows", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2, help="1: new rows only; 2: then all again (duplicates)")
    parser.add_argument("--tree", help="run atn-sim from this source tree (PYTHONPATH)")
    args = parser.parse_args()
    logging.getLogger("mqtt").setLevel(logging.ERROR)  # aiomqtt counts its thousands of pending publishes aloud
    with tempfile.TemporaryDirectory(prefix="hearth-atn-burst-") as work:
        asyncio.run(burst(args, Path(work)))


if __name__ == "__main__":
    main()
