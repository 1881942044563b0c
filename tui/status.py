"""`hearth status`: one scriptable answer to "is it running and what is it doing", from the local socket.

It subscribes like the TUI does (the same transport), takes the first state and the recent events that come
with it, prints them and leaves. Exit 0 when the controller answers and is not in SAFE.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from controller.protocol import EventMsg, State
from tui.cli import add_socket_option
from tui.transport import ConnectionStatus

EXIT_OK, EXIT_SAFE, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
EVENTS_GRACE_S = 0.3  # the recent events follow the first state at once; wait this long for them


@dataclass
class Observation:
    """What one subscription showed: the first state, the events that came with it, or why nothing came."""

    state: State | None = None
    events: list[EventMsg] = field(default_factory=list)
    problem: str = ""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "status",
        help="is the controller running, and what is it doing (for people and scripts)",
        description="Ask the running controller over its local socket: mode and reason, the ATN link, alarms, the "
        "oldest reading the ATN has not acknowledged, and the last control decision. Exit 0 when it answers and "
        "is not in SAFE, 1 in SAFE, 3 when it cannot be reached.",
    )
    add_socket_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument(
        "--timeout", type=float, default=5.0, metavar="SECONDS", help="give up after this long (default 5)"
    )


async def observe(path: str, timeout_s: float) -> Observation:
    """Subscribe once and collect the first state and its recent events."""
    from tui.transport.local import LocalSocketTransport

    seen = Observation()
    first_state = asyncio.get_running_loop().create_future()

    def on_state(state: State) -> None:
        if seen.state is None:
            seen.state = state
            first_state.set_result(None)

    def on_status(status: ConnectionStatus) -> None:
        if status.detail:
            seen.problem = status.detail

    transport = LocalSocketTransport(path)
    running = asyncio.create_task(transport.run(on_state, seen.events.append, on_status), name="hearth-status")
    try:
        await asyncio.wait_for(first_state, timeout_s)
        await asyncio.sleep(EVENTS_GRACE_S)
    except TimeoutError:
        seen.problem = seen.problem or f"no answer from {path} within {timeout_s:g} s"
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
    return seen


def _age(now: float, ts: float | None) -> str:
    return "never" if ts is None else f"{max(0.0, now - ts):.0f} s ago"


def summary(seen: Observation, now: float) -> dict[str, Any]:
    """The answer as plain data: what `--json` prints and the text is made of."""
    state = seen.state
    if state is None:
        return {"reachable": False, "problem": seen.problem}
    qualities: dict[str, int] = {}
    for reading in state.readings.values():
        qualities[reading.quality] = qualities.get(reading.quality, 0) + 1
    link = state.link
    return {
        "reachable": True,
        "site": state.site,
        "ts": state.ts,
        "mode": state.mode,
        "reason": state.reason,
        "decision": state.decision,
        "link": None if link is None else link.model_dump(exclude={"v"}),
        "oldest_unacked_ts": None if link is None else link.oldest_unacked_ts,
        "alarms": [alarm.model_dump(exclude={"v"}) for alarm in state.alarms],
        "unacknowledged_alarms": sum(alarm.acknowledged_by is None for alarm in state.alarms),
        "readings": qualities,
        "overrides": [override.model_dump(exclude={"v"}) for override in state.overrides],
        "last_event": None if not seen.events else seen.events[-1].model_dump(exclude={"v"}),
    }


def render(answer: dict[str, Any], now: float) -> str:
    if not answer["reachable"]:
        return f"hearth: not reachable: {answer['problem']}"
    lines = [
        f"site {answer['site']}: {answer['mode']} ({answer['reason']})",
        f"decision: {answer['decision'] or 'none yet'}",
    ]
    link = answer["link"]
    if link is None:
        lines.append("link: no ATN link in the layout")
    else:
        lease = (
            f"lease until {time.strftime('%H:%M:%S', time.localtime(link['lease_valid_until']))}"
            if link["lease_valid_until"]
            else "no lease"
        )
        lines.append(
            f"link: {'connected' if link['connected'] else 'DISCONNECTED'}, heartbeat "
            f"{_age(now, link['last_heartbeat'])}, {lease}, backlog {link['backlog']}"
        )
        oldest = answer["oldest_unacked_ts"]
        lines.append(f"oldest unacknowledged reading: {'none' if oldest is None else _age(now, oldest)}")
    readings = ", ".join(f"{count} {quality}" for quality, count in sorted(answer["readings"].items()))
    lines.append(f"readings: {readings or 'none'}")
    alarms = answer["alarms"]
    lines.append(f"alarms: {len(alarms)} ({answer['unacknowledged_alarms']} unacknowledged)")
    lines += [
        f"  {'!' if alarm['acknowledged_by'] is None else ' '} {alarm['message']} (since {_age(now, alarm['since'])})"
        for alarm in alarms
    ]
    for override in answer["overrides"]:
        lines.append(f"override: {override['target']} = {override['value']} by {override['who']}")
    if answer["last_event"]:
        lines.append(f"last event: {answer['last_event']['message']} ({_age(now, answer['last_event']['ts'])})")
    return "\n".join(lines)


def exit_code(answer: dict[str, Any]) -> int:
    if not answer["reachable"]:
        return EXIT_UNREACHABLE
    return EXIT_SAFE if answer["mode"] == "SAFE" else EXIT_OK


def run_cli(args: argparse.Namespace) -> int:
    seen = asyncio.run(observe(args.socket, args.timeout))
    now = time.time()
    answer = summary(seen, now)
    print(json.dumps(answer) if args.json else render(answer, now), file=sys.stdout)
    return exit_code(answer)
