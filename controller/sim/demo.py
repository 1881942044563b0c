"""What `scripts/demo` needs besides processes: the demo's layout, its price file and its scripted technician.

The demo must show, within three minutes, the heat pump starting and stopping under its interlocks, the ATN in
control, failover to LOCAL, handback, and an override and its expiry. A real heat pump's anti-short-cycle times
(5 min on, 3 min off, counted from boot) would hold it still through all of that, so the demo's copy of
layouts/demo.toml shortens them (`QUICK_HEAT_PUMP`) and says so on screen. The prices are a file relative to the
start, so the reference ATN asks for heat at known moments:

    seconds after start   0 ─ 40 cheap: the ATN leases the heat pump on (held first by pre-run and by min-off
                                 from boot, then it starts at about 30 s)
                          40 ─ 100 expensive: the lease says off; min-on holds it until it has run 45 s, then
                                 it stops (about 75 s) and the store pump runs on (post-run)
                          80 ─ 115 the ATN is silent (`ATN_ARGS`): LOCAL 15 s later, the local policy decides
                          100 ─ 170 cheap again: after handback (about 125 s) the ATN asks for heat again
                          then normal prices: the controller's own policy decides
    140 ─ 170             a scripted technician forces the immersion element on (OVERRIDE_AT_S, OVERRIDE_FOR_S);
                          when it expires the element is held on by its own min-on time

`python -m controller.sim.demo --help` lists the steps scripts/demo runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from controller.protocol import Push, Request, Response

QUICK_HEAT_PUMP = {"min_on_s": 45, "min_off_s": 30, "max_starts_per_hour": 6, "prerun_s": 10, "postrun_s": 20}
"""The demo's heat-pump timings (layouts/demo.toml has a real heat pump's)."""
PRICE_STEPS = ((-3600.0, 0.10), (40.0, 0.40), (100.0, 0.10), (170.0, 0.25))
"""(seconds after start, price until the next step); the last lasts two days."""
OVERRIDE_TARGET = "aux-element"
OVERRIDE_AT_S = 140
OVERRIDE_FOR_S = 30
ATN_ARGS = ("--bands", "--heartbeat", "5", "--lease", "20", "--pause-after", "80", "--pause-for", "35")
"""`hearth atn-sim` options: leases by price band (not planned, so they follow the script), renewed every 10 s;
silent from 80 s to 115 s."""
OVERRIDE_REASON = "demo: a technician tests the immersion element"


def demo_layout(source: str, *, group: str, port: int | None = None, password_file: str | None = None) -> str:
    """layouts/demo.toml's text with the quick heat pump, `group` as technicians, and the ATN link on `port`."""
    block = re.search(r"^\[actuators\.heat-pump\]\n(?:(?!\[).*\n)*", source, re.MULTILINE)
    if block is None:
        raise ValueError("the layout has no [actuators.heat-pump] table")
    table = block.group(0)
    for key, value in QUICK_HEAT_PUMP.items():
        table, found = re.subn(rf"^{key} = .*$", f"{key} = {value}  # shortened for the demo", table, flags=re.M)
        if not found:
            table = table.rstrip("\n") + f"\n{key} = {value}  # shortened for the demo\n\n"
    text = source[: block.start()] + table + source[block.end() :]
    text += f'\n[links.local]\ntechnician_group = "{group}"\n'
    if port is not None:
        text += "\n[control.authority]\nheartbeat_s = 5\n"
        text += f'\n[links.atn]\nurl = "mqtt://127.0.0.1:{port}"\nusername = "demo-house"\n'
        text += f'password_file = "{password_file}"\n'
    return text


def price_slots(start: float) -> list[dict[str, float]]:
    """The demo's prices as `hearth atn-sim --prices` reads them (JSON start/end/price, epoch seconds)."""
    ends = [step for step, _price in PRICE_STEPS[1:]] + [2 * 86400.0]
    return [
        {"start": start + begin, "end": start + end, "price": price}
        for (begin, price), end in zip(PRICE_STEPS, ends, strict=True)
    ]


async def request(socket_path: str, message: Request, timeout_s: float = 10.0) -> Response:
    """Send one request over the controller's local socket and return its answer (pushes are skipped)."""
    reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(socket_path, limit=2**24), timeout_s)
    try:
        writer.write(message.to_json() + b"\n")
        await writer.drain()
        while True:
            line = await asyncio.wait_for(reader.readline(), timeout_s)
            if not line:
                raise ConnectionError("the controller closed the socket before answering")
            data = json.loads(line)
            if "push" in data:
                Push.model_validate(data)
                continue
            answer = Response.model_validate(data)
            if answer.id == message.id:
                return answer
    finally:
        writer.close()


def scripted_override(socket_path: str, *, at: float, speed: float) -> int:
    """Wait until `at` (epoch seconds), then force OVERRIDE_TARGET on for OVERRIDE_FOR_S (real seconds)."""
    time.sleep(max(0.0, at - time.time()))
    message = Request(
        id="demo-override",
        op="override",
        target=OVERRIDE_TARGET,
        value=True,
        duration_s=OVERRIDE_FOR_S * speed,
        reason=OVERRIDE_REASON,
    )
    try:
        answer = asyncio.run(request(socket_path, message))
    except (OSError, ConnectionError, ValueError, TimeoutError) as error:
        print(f"demo: the scripted override was not sent: {error}", file=sys.stderr)
        return 1
    if not answer.ok:
        print(f"demo: the scripted override was refused: {answer.error}", file=sys.stderr)
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m controller.sim.demo", description=__doc__.split("\n\n")[0])
    steps = parser.add_subparsers(dest="step", required=True)
    layout = steps.add_parser("layout", help="write the demo's layout (from layouts/demo.toml) to stdout")
    layout.add_argument("source", type=Path)
    layout.add_argument("--group", required=True, help="the group whose members may override (the demo user's)")
    layout.add_argument("--port", type=int, help="the demo broker's port (no ATN link without it)")
    layout.add_argument("--password-file", help="the controller's broker password")
    prices = steps.add_parser("prices", help="write the demo's price file (JSON) to stdout")
    prices.add_argument("--start", type=float, required=True, help="epoch seconds the price steps count from")
    steps.add_parser("atn-args", help="print the `hearth atn-sim` options of the demo's timeline")
    override = steps.add_parser("override", help="force the immersion element on through the socket, on time")
    override.add_argument("--socket", required=True)
    override.add_argument("--start", type=float, required=True, help="epoch seconds the timeline counts from")
    override.add_argument("--after", type=float, default=OVERRIDE_AT_S, help="real seconds after --start")
    override.add_argument("--speed", type=float, default=1.0, help="the controller's --speed")
    args = parser.parse_args(argv)
    if args.step == "layout":
        print(demo_layout(args.source.read_text(), group=args.group, port=args.port, password_file=args.password_file))
        return 0
    if args.step == "prices":
        print(json.dumps(price_slots(args.start)))
        return 0
    if args.step == "atn-args":
        print(" ".join(ATN_ARGS))
        return 0
    return scripted_override(args.socket, at=args.start + args.after, speed=args.speed)


if __name__ == "__main__":
    raise SystemExit(main())
