"""`hearth tui`: the terminal UI, over the local socket (technicians) or MQTT (monitors; technicians with a key)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.fleet.transport import FleetTransport
    from tui.transport import Transport

DEFAULT_SOCKET = "/run/hearth/hearth.sock"
EXIT_OK, EXIT_USAGE = 0, 2


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def add_socket_option(parser: argparse.ArgumentParser) -> None:
    """`--socket PATH`, for every command that talks to the controller's local socket."""
    parser.add_argument(
        "--socket",
        default=os.environ.get("HEARTH_SOCKET") or DEFAULT_SOCKET,  # set but empty: the default too
        metavar="PATH",
        help=f"the controller's local socket (default: $HEARTH_SOCKET or {DEFAULT_SOCKET})",
    )


def add_options(parser: argparse.ArgumentParser) -> None:
    """The TUI's options, shared by `hearth tui` and `python -m tui`."""
    add_socket_option(parser)
    parser.add_argument(
        "--mqtt",
        metavar="URL",
        nargs="+",
        help="over MQTT instead: mqtts://host[:port]; read-only unless --key is given; several URLs (the nodes of a "
        "cluster) are tried in turn, the next one at once when a connection is lost",
    )
    parser.add_argument(
        "--site", metavar="ID", help="the site to watch over MQTT; without it, --mqtt shows the fleet: every site"
    )
    parser.add_argument("--username", metavar="USER", help="MQTT user (a monitor, or a technician with --key)")
    parser.add_argument(
        "--key",
        metavar="FILE",
        help="a technician's private key (hearth keys new NAME): sign overrides over MQTT; the site must list it",
    )
    parser.add_argument("--password-file", metavar="FILE", help="file holding the MQTT password")
    parser.add_argument("--ca-file", metavar="FILE", help="CA certificate for mqtts:// (default: the system's)")
    parser.add_argument("--insecure", action="store_true", help="allow plain mqtt:// to a broker on another machine")
    parser.add_argument("--log-file", metavar="FILE", help="write the TUI's warnings (skipped messages) to FILE")
    parser.add_argument("--demo", action="store_true", help="show a made-up house with live synthetic data")
    parser.add_argument(
        "--demo-channels", type=_positive_int, default=9, metavar="N", help="channels in the demo (default 9)"
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `tui` subcommand to the `hearth` parser."""
    parser = subparsers.add_parser(
        "tui",
        help="watch the controller live; technicians may override relays for a limited time",
        description="The Hearth terminal UI. Over the local socket, members of the technician group may override "
        "relays and the comfort setpoint for a limited time; everyone else only watches. Over MQTT it only watches, "
        "unless --key gives a technician's key that the site lists (remote_overrides): then overrides are signed.",
    )
    add_options(parser)


def build_transport(args: argparse.Namespace) -> Transport | FleetTransport:
    """The transport the arguments ask for; ValueError with a readable reason when they make no sense."""
    mqtt_only = [
        f"--{n.replace('_', '-')}"
        for n in ("site", "username", "password_file", "ca_file", "insecure", "key")
        if getattr(args, n)
    ]
    if args.demo:
        from tui.demo import DemoTransport

        return DemoTransport(channels=args.demo_channels)
    if args.mqtt is None:
        if mqtt_only:
            raise ValueError(
                f"{', '.join(mqtt_only)} only {'makes' if len(mqtt_only) == 1 else 'make'} sense with --mqtt URL"
            )
        from tui.transport.local import LocalSocketTransport

        return LocalSocketTransport(args.socket)
    for option, path in (("--password-file", args.password_file), ("--ca-file", args.ca_file)):
        if path is not None and not Path(path).is_file():
            raise ValueError(f"{option} {path}: no such file")
    if args.password_file is not None and not os.access(args.password_file, os.R_OK):
        raise ValueError(f"--password-file {args.password_file}: not readable by this user")
    if not args.site:
        if args.key is not None:
            raise ValueError("--key signs overrides for one site: give --site too")
        from tui.fleet.transport import FleetTransport

        fleet = FleetTransport(args.mqtt, args.username, args.password_file, args.ca_file, insecure=args.insecure)
        _need_username(args)  # after the URLs: a bad one is the first thing to fix
        return fleet
    signer = None
    if args.key is not None:
        from controller.remote.keys import KeyFileError, load_private
        from controller.remote.signing import Signer

        try:
            name, key = load_private(Path(args.key))
        except KeyFileError as error:
            raise ValueError(f"--key: {error}") from None
        signer = Signer(name, key, args.site)
    from tui.transport.mqtt import MqttTransport

    site = MqttTransport(
        args.mqtt, args.site, args.username, args.password_file, args.ca_file, insecure=args.insecure, signer=signer
    )
    _need_username(args)
    return site


def _need_username(args: argparse.Namespace) -> None:
    """Hearth's brokers take no anonymous client (deploy/mosquitto, deploy/rabbitmq): without a user the view only
    looped "reconnecting" with the broker's refusal. Say so before it starts."""
    if not args.username:
        raise ValueError(
            "--username is needed over MQTT (the broker takes no anonymous clients): e.g. --username monitor "
            "--password-file FILE"
        )


def run_cli(args: argparse.Namespace) -> int:
    """Run the TUI until the user quits; exit 2 with a clear message for arguments that make no sense."""
    try:
        transport = build_transport(args)
    except ValueError as error:
        print(f"hearth tui: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.log_file:
        logging.basicConfig(filename=args.log_file, level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    else:  # nothing may write to the terminal under the TUI
        logging.getLogger("tui").addHandler(logging.NullHandler())
        logging.getLogger("tui").propagate = False
    from tui.app import HearthApp
    from tui.fleet.transport import FleetTransport

    if not isinstance(transport, FleetTransport):
        HearthApp(transport).run()
        return EXIT_OK
    from tui.fleet.app import Choices, FleetApp
    from tui.fleet.model import FleetModel
    from tui.transport.mqtt import MqttTransport

    model = FleetModel()  # kept across visits to a site, so the table comes back at once
    choices = Choices()  # and so are the sort, the filter and the row
    while (site := FleetApp(transport, model, choices).run()) is not None:
        HearthApp(
            MqttTransport(transport.urls, site, args.username, args.password_file, args.ca_file, insecure=args.insecure)
        ).run()
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tui", description="The Hearth terminal UI.")
    add_options(parser)
    return run_cli(parser.parse_args(argv))
