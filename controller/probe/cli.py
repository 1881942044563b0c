"""`hearth probe --layout FILE`: the commissioning command."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from dataclasses import asdict

from controller.probe.check import ProbeReport
from tui.cli import add_socket_option

DEFAULT_LAYOUT = "/etc/hearth/layout.toml"
EXIT_OK, EXIT_LAYOUT, EXIT_USAGE, EXIT_HARDWARE, EXIT_INCOMPLETE, EXIT_BUSY = 0, 1, 2, 3, 5, 6


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "probe",
        help="commissioning: which devices answer, raw and converted readings, switch a relay on request",
        description="Scan each bus for the layout's devices (which answer, which are missing, which addresses "
        "answer unexpectedly), read every channel once and show the raw values (ADC code, volts, ohms, fault "
        "bits) next to the converted value and its quality. A relay switches only when named with --switch. "
        "Exit 5 when anything the layout declares is missing or a channel reads a fault. On real hardware it "
        "refuses to run (exit 6) while a controller answers on the local socket: stop the service first "
        "(sudo systemctl stop hearth), it holds the buses and drives the relays.",
    )
    add_socket_option(parser)
    parser.add_argument(
        "--layout",
        default=os.environ.get("HEARTH_LAYOUT", DEFAULT_LAYOUT),
        help=f"hardware layout (TOML); default $HEARTH_LAYOUT or {DEFAULT_LAYOUT}",
    )
    parser.add_argument(
        "--switch",
        action="append",
        default=[],
        metavar="RELAY=on|off",
        help="switch this relay, read it back, hold it, then return it to its safe state (repeatable)",
    )
    parser.add_argument(
        "--hold", type=float, default=5.0, metavar="SECONDS", help="how long a switched relay holds (default 5)"
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def controller_running(path: str) -> bool:
    """Whether a controller answers on its local socket (a connect is enough: it accepts every local user)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe_socket:
        probe_socket.settimeout(1.0)
        try:
            probe_socket.connect(path)
        except OSError:
            return False
    return True


def _switches(given: list[str], relays: dict[str, object]) -> dict[str, bool]:
    from controller.layout.load import did_you_mean

    switches: dict[str, bool] = {}
    for item in given:
        name, _, state = item.partition("=")
        if name not in relays:
            raise ValueError(f"--switch {item}: no relay '{name}'{did_you_mean(name, relays)}")
        if state not in ("on", "off"):
            raise ValueError(f"--switch {item}: say {name}=on or {name}=off")
        switches[name] = state == "on"
    return switches


def render(report: ProbeReport) -> str:
    """The report as an installer reads it."""
    lines: list[str] = []
    for scan in report.buses:
        lines.append(f"{scan.label}: {scan.error or 'answering ' + (', '.join(scan.answered) or 'nothing')}")
        lines += [f"  MISSING {address} ({device})" for address, device in scan.missing.items()]
        lines += [f"  unexpected {address}: not in the layout" for address in scan.unexpected]
    lines.append("devices:")
    for device in report.devices:
        state = "ok" if device.present else f"MISSING: {device.detail}"
        lines.append(f"  {device.name} ({device.kind}): {state}")
    lines.append("channels:")
    for channel in report.channels:
        raw = " ".join(f"{key}={value}" for key, value in channel.raw.items())
        value = "-" if channel.value is None else f"{channel.value:.2f} {channel.unit}"
        detail = f" ({channel.detail})" if channel.detail else ""
        lines.append(f"  {channel.name}: {value} [{channel.quality}]{detail}")
        if raw:
            lines.append(f"      raw: {raw}")
    if report.relays:
        lines.append("relays:")
    for relay in report.relays:
        verdict = "ok" if relay.ok else f"FAILED: {relay.detail}"
        lines.append(
            f"  {relay.name}: commanded {relay.commanded}, read back {relay.read_back}, "
            f"back to safe state {relay.restored or '?'}: {verdict}"
        )
    lines.append("probe: everything answered" if report.complete else "probe: INCOMPLETE (see above)")
    return "\n".join(lines)


def run_cli(args: argparse.Namespace) -> int:
    from controller import logs
    from controller.buses.choose import open_buses
    from controller.buses.real import HardwareUnavailableError
    from controller.layout.load import LayoutError, load_layout
    from controller.probe.check import probe

    try:
        layout = load_layout(args.layout)
    except LayoutError as error:
        print(error, file=sys.stderr)
        return EXIT_LAYOUT
    try:
        switches = _switches(args.switch, dict(layout.actuators))
    except ValueError as error:
        print(f"hearth probe: {error}", file=sys.stderr)
        return EXIT_USAGE
    if layout.backend == "real" and controller_running(args.socket):
        print(
            f"hearth probe: a controller is running ({args.socket} answers); it holds the buses and drives the "
            "relays: stop it first (sudo systemctl stop hearth), then probe",
            file=sys.stderr,
        )
        return EXIT_BUSY
    logs.configure("critical", stream=sys.stderr)  # the report says what the drivers would log
    try:
        buses, clock = open_buses(layout)
    except HardwareUnavailableError as error:
        print(f"hearth probe: {error}", file=sys.stderr)
        return EXIT_HARDWARE
    try:
        report = probe(layout, buses, clock, switches, args.hold)
    except HardwareUnavailableError as error:
        print(f"hearth probe: {error}", file=sys.stderr)
        return EXIT_HARDWARE
    finally:
        buses.close()
    print(json.dumps(asdict(report), indent=2) if args.json else render(report))
    return EXIT_OK if report.complete else EXIT_INCOMPLETE
