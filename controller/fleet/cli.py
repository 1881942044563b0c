"""`hearth fleet provision`: credentials, permissions and the link section for one site (or person)."""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from controller.fleet.sim import FleetSite

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
START_SPREAD_PER_SITE_S = 0.3  # about one first plan's CPU time: the starts do not queue up plans
DEFAULT_LAYOUT = Path(__file__).resolve().parents[2] / "layouts" / "demo.toml"
"""the checkout's demo layout (scripts/bootstrap installs Hearth from its checkout): found from any directory"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    fleet = subparsers.add_parser(
        "fleet",
        help="run many sites: provision a site's broker credentials and permissions",
        description="Tools for an operator with many sites on one broker or a cluster.",
    )
    actions = fleet.add_subparsers(dest="fleet_command", metavar="ACTION", required=True)
    provision = actions.add_parser(
        "provision",
        help="create a user with its role's permissions on mosquitto or RabbitMQ, and print the site's link",
        description="Create (or replace) a broker user with a random password, give it the permissions of its "
        "role (deploy/mosquitto/acl, deploy/rabbitmq/README.md), write the password to a private file and, for a "
        "controller, print the [links.atn] section for the site's layout. The password never appears on a "
        "command line: the broker gets a hash. mosquitto rereads its files on SIGHUP (systemctl reload "
        "mosquitto); RabbitMQ takes the user at once, on every node.",
    )
    provision.add_argument(
        "users", nargs="+", metavar="NAME", help="the site id for a controller, else the user's name (several at once)"
    )
    provision.add_argument(
        "--role",
        default="controller",
        choices=["controller", "atn", "monitor", "technician", "homeassistant"],
        help="default: controller",
    )
    broker = provision.add_mutually_exclusive_group(required=True)
    broker.add_argument("--mosquitto", action="store_true", help="a mosquitto broker: give --passwd and --acl")
    broker.add_argument("--rabbitmq", action="store_true", help="a RabbitMQ cluster, through rabbitmqctl")
    provision.add_argument("--passwd", metavar="FILE", default="/etc/mosquitto/hearth/passwd", help="mosquitto")
    provision.add_argument("--acl", metavar="FILE", default="/etc/mosquitto/hearth/acl", help="mosquitto")
    provision.add_argument(
        "--rabbitmqctl",
        metavar="COMMAND",
        default="rabbitmqctl",
        help="how to run rabbitmqctl, e.g. 'rabbitmqctl -n rabbit@mq1' (default: rabbitmqctl)",
    )
    provision.add_argument("--secret-out", metavar="FILE", help="where to write the password, for one NAME (0600)")
    provision.add_argument(
        "--secret-dir",
        default=".",
        metavar="DIR",
        help="where to write each NAME.mqtt-password (0600) when --secret-out is not given (default: .)",
    )
    provision.add_argument(
        "--url",
        dest="urls",
        action="append",
        metavar="URL",
        help="a broker URL for the link section (repeat for each node, in the order the site should try them)",
    )
    provision.add_argument("--ca-file", metavar="FILE", help="CA certificate path for the link section")
    provision.add_argument(
        "--link-password-file",
        metavar="NAME",
        default="mqtt-password",
        help="password_file in the link section: where the password will be on the Pi (default: mqtt-password, "
        "a systemd credential)",
    )


def run_cli(args: argparse.Namespace) -> int:
    from controller.fleet.provision import ProvisionError, link_section, provision_mosquitto, provision_rabbitmq

    if args.secret_out and len(args.users) > 1:
        print("hearth fleet provision: --secret-out is for one NAME; use --secret-dir for several", file=sys.stderr)
        return EXIT_USAGE
    secrets = [
        (user, Path(args.secret_out) if args.secret_out else Path(args.secret_dir) / f"{user}.mqtt-password")
        for user in args.users
    ]
    try:
        if args.mosquitto:
            done = [
                provision_mosquitto(
                    user, args.role, password_file=Path(args.passwd), acl_file=Path(args.acl), secret_out=out
                )
                for user, out in secrets
            ]
            where = f"mosquitto ({args.passwd}, {args.acl}); reload it: systemctl reload mosquitto"
        else:
            done = provision_rabbitmq(secrets, args.role, rabbitmqctl=shlex.split(args.rabbitmqctl))
            where = "RabbitMQ (every node)"
    except (ProvisionError, OSError) as error:
        print(f"hearth fleet provision: {error}", file=sys.stderr)
        return EXIT_FAILED
    for one in done:
        note = f" ({one.note})" if one.note else ""
        print(
            f"# {one.role} {one.user} provisioned on {where}; password in {one.password_file} (0600){note}",
            file=sys.stderr,
        )
        if one.role == "controller" and args.urls and len(done) == 1:
            print(link_section(one.user, args.urls, args.link_password_file, args.ca_file), end="")
    if args.role == "controller" and not args.urls:
        print("# give --url (one per broker) to get the site's [links.atn] section", file=sys.stderr)
    return EXIT_OK


def add_sim_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    sim = subparsers.add_parser(
        "fleet-sim",
        help="run N simulated houses, each its own controller, store and broker user (one process per core)",
        description="N simulated houses: each its own controller (sampler, control loop with the pure tick and "
        "interlocks, store on disk, ATN link with its own user and password, local socket) and its own plant, read "
        "directly rather than through emulated chips (controller/fleet/house.py says what that leaves out; "
        "`hearth run` keeps the whole chain). Site ids are PREFIX001...; passwords come from "
        "PASSWORD_DIR/<site>.mqtt-password (hearth fleet provision --secret-dir writes them). Site n starts on "
        "broker n mod the number of brokers. The sites are shared out over --workers processes (one per core by "
        "default). Each worker plans (and fits the houses' models) in a planning process of its own, niced, one "
        "plan at a time: a plan is up to ~2 s of CPU that, in a thread, would hold the GIL the worker's event loop "
        "needs for every site's tick and link (its houses then fall to SAFE); a planning process that dies is "
        "started again and the plan asked again. Stop it with Ctrl-C or SIGTERM (the planning processes end too).",
    )
    sim.add_argument("--sites", type=int, required=True, metavar="N", help="how many houses")
    sim.add_argument("--prefix", default="site-", help="site id prefix (default: site-)")
    sim.add_argument(
        "--broker", dest="brokers", action="append", required=True, metavar="URL", help="a broker URL (repeatable)"
    )
    sim.add_argument("--password-dir", required=True, metavar="DIR", help="where <site>.mqtt-password files are")
    sim.add_argument("--state-dir", default="fleet-state", metavar="DIR", help="one directory per site under it")
    sim.add_argument(
        "--layout",
        default=str(DEFAULT_LAYOUT),
        metavar="FILE",
        help="a simulated layout (template; default: %(default)s)",
    )
    sim.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    sim.add_argument(
        "--start-spread",
        type=float,
        metavar="S",
        help="spread the starts over S s (default: 0.3 s per site, at least 10 s: each site plans its first 48 h "
        "at its start, about 0.3 s of CPU here, in its worker's planning process)",
    )
    sim.add_argument(
        "--commit-every",
        type=float,
        default=10.0,
        metavar="S",
        help="each site commits its readings every S s, which paces its telemetry too (default: %(default)s; "
        "the layout's storage.commit_every_s is for one house: 2 s by default)",
    )
    sim.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="K",
        help="processes to share the sites out over (default: one per core, here %(default)s)",
    )
    sim.add_argument(
        "--timer-grid",
        type=float,
        default=0.25,
        metavar="S",
        help="round each process's timers up to a grid of S s, so the sites' periodic work shares the event loop's "
        "wake-ups (never early, at most S late; default: %(default)s; 0: the plain asyncio loop)",
    )
    sim.add_argument("--worker-of", metavar="I/K", help=argparse.SUPPRESS)  # a worker process's share
    sim.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"])
    sim.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")


# numpy's OpenBLAS starts a thread per core that spins for a while after each call: 20 sites measured 25 % of a
# core in all against 3.8 % on the event loop, and 3.2 % in all with one BLAS thread. A fleet process is one core's
# worth and plans on one thread; set before numpy is first imported (here, and in the worker processes it starts).
ONE_BLAS_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def run_sim_cli(args: argparse.Namespace) -> int:
    for name, value in ONE_BLAS_THREAD.items():
        os.environ.setdefault(name, value)
    if args.sites < 1 or args.workers < 1:
        print("hearth fleet-sim: --sites and --workers must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    if args.start_spread is not None and not 0 <= args.start_spread <= 86400:
        print("hearth fleet-sim: --start-spread must be within 0..86400 s", file=sys.stderr)
        return EXIT_USAGE
    problem = _option_problem(args)
    if problem:
        print(f"hearth fleet-sim: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if not 0 <= args.timer_grid <= 1:
        print("hearth fleet-sim: --timer-grid must be within 0..1 s", file=sys.stderr)
        return EXIT_USAGE
    if not 0.2 <= args.commit_every <= 60:
        print("hearth fleet-sim: --commit-every must be within 0.2..60 s (storage.commit_every_s)", file=sys.stderr)
        return EXIT_USAGE
    if args.worker_of:
        worker, _, workers = args.worker_of.partition("/")
        return run_share(args, (int(worker), int(workers)))
    if args.workers > 1 and args.sites > 1:
        # The first site's layout and password here, once, rather than the same error from every worker.
        if plan_sites(args, (0, args.sites)) is None:
            return EXIT_USAGE
        return run_workers(min(args.workers, args.sites))
    return run_share(args, (0, 1))


def _option_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with --broker or --layout, named as the user wrote it (the layout's own check would blame a
    line of the generated site layout the user never saw)."""
    from controller.links.brokers import parse_broker_urls

    try:
        parse_broker_urls(args.brokers, insecure_hint="run the sites on the broker's machine")
    except ValueError as error:
        return f"--broker: {error}"
    if not Path(args.layout).is_file():
        return f"--layout {args.layout}: no such file"
    return None


def plan_sites(args: argparse.Namespace, share: tuple[int, int]) -> list[FleetSite] | None:
    """This process's sites, or None after saying what is wrong with them."""
    from controller.fleet.sim import plan_fleet
    from controller.layout.load import LayoutError

    try:
        return plan_fleet(
            Path(args.layout),
            args.sites,
            args.brokers,
            Path(args.password_dir),
            Path(args.state_dir),
            args.prefix,
            share,
            args.commit_every,
        )
    except (ValueError, OSError, LayoutError) as error:
        print(f"hearth fleet-sim: {error}", file=sys.stderr)
        return None


def run_workers(workers: int) -> int:
    """Run this same command as `workers` processes, each with its share of the sites; pass SIGTERM/SIGINT on and
    end with the worst exit status."""
    import signal

    argv = [sys.executable, "-m", "controller", *sys.argv[1:]]
    children = [subprocess.Popen([*argv, "--worker-of", f"{i}/{workers}"]) for i in range(workers)]

    def stop(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    return max(child.wait() for child in children)


def run_share(args: argparse.Namespace, share: tuple[int, int]) -> int:
    import asyncio
    import contextlib
    import functools
    import signal

    from controller import logs
    from controller.fleet.planning import PlanningProcess
    from controller.fleet.sim import run_fleet

    sites = plan_sites(args, share)
    if sites is None:
        return EXIT_USAGE
    logs.configure(args.log_level, json={"auto": None, "json": True, "console": False}[args.log_format])
    spread = args.start_spread if args.start_spread is not None else max(10.0, START_SPREAD_PER_SITE_S * args.sites)

    async def main() -> None:
        # Each site plans its next day (~0.5 s of CPU, more at its first plan, then about daily) and fits its model.
        # In a thread they would hold the GIL the event loop needs for every site's tick and link (with 250 sites
        # per loop, houses fell to SAFE by the hundred): one niced planning process per worker, one plan at a time;
        # on a stop the queued plans go and the process ends with the worker (controller.fleet.planning).
        planning = PlanningProcess()
        loop = asyncio.get_running_loop()
        runner = asyncio.create_task(run_fleet(sites, args.duration, spread, planning))
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, runner.cancel)
        try:
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        finally:
            planning.shutdown(wait=False, cancel_futures=True)

    if args.timer_grid > 0:
        from controller.fleet.timers import GridEventLoop

        with asyncio.Runner(loop_factory=functools.partial(GridEventLoop, args.timer_grid)) as loop_runner:
            loop_runner.run(main())
    else:
        asyncio.run(main())
    return EXIT_OK
