"""The `hearth` command line."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from controller import __version__
from controller.atnsim.cli import add_parser as add_atn_sim
from controller.energy.cli import add_parser as add_energy
from controller.fleet.cli import add_parser as add_fleet
from controller.fleet.cli import add_sim_parser as add_fleet_sim
from controller.fleet.cli import run_cli as run_fleet
from controller.fleet.cli import run_sim_cli as run_fleet_sim
from controller.planner.fitting.cli import add_parser as add_model
from controller.probe.cli import add_parser as add_probe
from controller.probe.cli import run_cli as run_probe
from controller.remote.cli import add_parser as add_keys
from controller.remote.cli import run_cli as run_keys
from tui.cli import add_parser as add_tui
from tui.cli import run_cli as run_tui
from tui.status import add_parser as add_status
from tui.status import run_cli as run_status

if TYPE_CHECKING:
    from controller.layout.model import Layout

DEFAULT_LAYOUT = "/etc/hearth/layout.toml"
EXIT_OK, EXIT_LAYOUT, EXIT_USAGE, EXIT_HARDWARE, EXIT_STORE, EXIT_LOG = 0, 1, 2, 3, 4, 5
WATCH_LOG = "hearth-watch.log"
EXIT_CRASHED = 70  # EX_SOFTWARE: systemd restarts the service


def _layout_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layout",
        default=os.environ.get("HEARTH_LAYOUT", DEFAULT_LAYOUT),
        help=f"hardware layout (TOML); default $HEARTH_LAYOUT or {DEFAULT_LAYOUT}",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hearth",
        description="Hearth: a transactive heat-pump and thermal-storage controller.",
    )
    parser.add_argument("--version", action="version", version=f"hearth {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run the controller",
        description="Run the controller: sample every channel and keep the relays safe. With a layout whose "
        'backend is "sim", the buses are emulators driven by the plant simulator.',
    )
    _layout_arg(run)
    run.add_argument("--dry-run", action="store_true", help="check the layout, print what would run, and exit")
    run.add_argument(
        "--state-dir",
        default=os.environ.get("STATE_DIRECTORY", "state"),
        help="where the store lives: $STATE_DIRECTORY under systemd, else ./state",
    )
    run.add_argument(
        "--socket",
        metavar="PATH",
        help="the local API's unix socket: default $RUNTIME_DIRECTORY/hearth.sock under systemd, else the layout's "
        "links.local.socket (/run/hearth/hearth.sock), or <state-dir>/hearth.sock for a user who cannot write there",
    )
    run.add_argument("--speed", type=float, help="simulated time runs this many times faster (sim backend only)")
    run.add_argument("--duration", type=float, metavar="SECONDS", help="stop cleanly after this many seconds")
    run.add_argument(
        "--report-every", type=float, default=10.0, metavar="SECONDS", help="log a readings summary this often"
    )
    run.add_argument(
        "--watch",
        action="store_true",
        help=f"draw a live table of readings and relays (logs then go to --log-file, default <state-dir>/{WATCH_LOG})",
    )
    run.add_argument("--log-file", metavar="FILE", help="write logs to FILE instead of stderr")
    run.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    run.add_argument(
        "--log-format",
        choices=["auto", "json", "console"],
        default="auto",
        help="auto: console on a terminal, else JSON",
    )

    add_tui(commands)
    add_atn_sim(commands)
    add_probe(commands)
    add_fleet(commands)
    add_fleet_sim(commands)
    add_status(commands)
    add_keys(commands)
    add_energy(commands)
    add_model(commands)
    layout = commands.add_parser(
        "layout", help="check or show a hardware layout", description="Work with layout files."
    )
    layout_commands = layout.add_subparsers(dest="layout_command", metavar="ACTION", required=True)
    check = layout_commands.add_parser(
        "check", help="validate layouts and list every problem", description="Validate layouts; exit 1 on any problem."
    )
    check.add_argument("files", nargs="+", metavar="FILE")
    show = layout_commands.add_parser(
        "show", help="print a layout as a tree", description="Print the buses, devices, channels and actuators."
    )
    show.add_argument("file", metavar="FILE")
    return parser


def _cmd_layout_check(files: Sequence[str]) -> int:
    from controller.layout.load import LayoutError, load_layout

    status = EXIT_OK
    for file in files:
        try:
            layout = load_layout(file)
        except LayoutError as error:
            print(error, file=sys.stderr)
            status = EXIT_LAYOUT
            continue
        print(
            f"{file}: ok ({len(layout.buses)} buses, {len(layout.devices)} devices, "
            f"{len(layout.channels)} channels, {len(layout.actuators)} actuators)"
        )
    return status


def _cmd_layout_show(file: str) -> int:
    from controller.layout.load import LayoutError, load_layout
    from controller.layout.show import render
    from controller.layout.units import channel_units

    try:
        layout = load_layout(file)
    except LayoutError as error:
        print(error, file=sys.stderr)
        return EXIT_LAYOUT
    print(render(layout, channel_units(layout)))
    return EXIT_OK


def _cmd_run(args: argparse.Namespace, started_at: float) -> int:
    from controller import logs
    from controller.layout.load import LayoutError, load_layout

    try:
        layout = load_layout(args.layout)
    except LayoutError as error:
        print(error, file=sys.stderr)
        return EXIT_LAYOUT
    if args.speed is not None and layout.backend != "sim":
        print(f'{args.layout}: --speed only applies to a layout with backend = "sim"', file=sys.stderr)
        return EXIT_USAGE
    if args.dry_run:
        return _dry_run(args.layout, layout)
    private_and_roomy()
    log_file = args.log_file or (str(Path(args.state_dir) / WATCH_LOG) if args.watch else None)
    stream: TextIO = sys.stderr
    if log_file:
        try:
            if not args.log_file:  # the state directory the store is about to use
                Path(args.state_dir).mkdir(parents=True, exist_ok=True)
            args.log_file = log_file
            stream = open(log_file, "a", encoding="utf-8")  # noqa: SIM115 (open as long as the process)
        except OSError as error:
            print(f"hearth: cannot write the log file {log_file}: {error.strerror or error}", file=sys.stderr)
            return EXIT_LOG
        print(f"hearth: logging to {log_file}", file=sys.stderr)
    logs.configure(args.log_level, json={"auto": None, "json": True, "console": False}[args.log_format], stream=stream)
    return asyncio.run(_run(args, layout, started_at))


def private_and_roomy() -> None:
    """What `hearth run` sets for its process before it opens anything.

    - umask 077: the state directory, the store and its WAL, and any log file it creates are private to the
      controller's user even when it is started by hand from a shell with umask 022 (the local socket's mode is
      set explicitly, so it stays what the layout says).
    - The soft limit of open files raised to the hard one (at most 65536): a flood of local connections must
      reach the admission check and be refused there, not stop the accept loop with EMFILE, which would also
      keep a technician out.
    """
    import os
    import resource

    os.umask(0o077)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


def _dry_run(file: str, layout: Layout) -> int:
    from controller.layout.show import render
    from controller.layout.units import channel_units

    print(f"{file}: layout ok; `hearth run` would start:")
    print(f"  bus workers: {', '.join([*layout.buses, 'gpio'])}")
    print(
        "  tasks: sampler (one loop per bus), " + ("plant simulator, " if layout.backend == "sim" else "") + "reporter"
    )
    print(render(layout, channel_units(layout)))
    return EXIT_OK


async def _run(args: argparse.Namespace, layout: Layout, started_at: float) -> int:
    import structlog

    from controller.buses.choose import open_buses
    from controller.buses.real import HardwareUnavailableError
    from controller.runtime import Controller, RunOptions, StoreUnavailableError
    from controller.sim.world import SimBuses

    log = structlog.get_logger("hearth")
    options = RunOptions(
        state_dir=Path(args.state_dir),
        report_every_s=args.report_every,
        duration_s=args.duration,
        started_at=started_at,
        watch=sys.stdout if args.watch else None,
        log_file=args.log_file or "",
        socket_path=Path(args.socket) if args.socket else None,
    )
    extra_tasks = {}
    sim = layout.sim.model_copy(update={"speed": args.speed}) if layout.sim and args.speed else layout.sim
    try:
        buses, clock = open_buses(layout, sim)
    except HardwareUnavailableError as unavailable:
        log.error("hardware unavailable", detail=str(unavailable))
        return EXIT_HARDWARE
    if isinstance(buses, SimBuses):
        extra_tasks["plant"] = buses.run
    log.info("starting", version=__version__, site=layout.site.id, backend=layout.backend, layout=args.layout)
    status = EXIT_OK
    try:
        controller = Controller(layout, buses, clock, options, extra_tasks)
        controller.install_signal_handlers()
        await controller.run()
    except* HardwareUnavailableError as hardware:
        for missing in hardware.exceptions:
            log.error("hardware unavailable", detail=str(missing))
        status = EXIT_HARDWARE
    except* StoreUnavailableError as store:
        for unusable in store.exceptions:
            log.error("store unavailable", detail=str(unusable))
        status = EXIT_STORE
    except* Exception as crash:  # the one place that logs a crash; the runtime has already made the relays safe
        for error in crash.exceptions:
            log.critical("controller crashed; relays are in their safe states", exc_info=error)
        status = EXIT_CRASHED
    finally:
        buses.close()  # serial ports and their listeners; in simulation, the emulators and their ptys
    return status


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        # `hearth ... | head`: the reader has gone, which is not an error of ours. Point stdout at /dev/null so
        # the interpreter's own flush at exit does not raise again, and end as a SIGPIPE'd command would.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _main(argv: Sequence[str] | None) -> int:
    started_at = time.monotonic()
    args = build_parser().parse_args(argv)
    if args.command == "atn-sim":
        from controller.atnsim.cli import run_cli

        return run_cli(args)
    if args.command == "tui":
        return run_tui(args)
    if args.command == "fleet":
        return run_fleet(args)
    if args.command == "fleet-sim":
        return run_fleet_sim(args)
    if args.command == "probe":
        return run_probe(args)
    if args.command == "status":
        return run_status(args)
    if args.command == "keys":
        return run_keys(args)
    if args.command == "energy":
        from controller.energy.cli import run_cli as run_energy

        return run_energy(args)
    if args.command == "model":
        from controller.planner.fitting.cli import run_cli as run_model

        return run_model(args)
    if args.command == "layout":
        if args.layout_command == "check":
            return _cmd_layout_check(args.files)
        return _cmd_layout_show(args.file)
    return _cmd_run(args, started_at)


if __name__ == "__main__":
    raise SystemExit(main())
