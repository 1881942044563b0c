"""`hearth atn-sim`: run the reference ATN, or `hearth atn-sim check` its ledger."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING

from controller.links.brokers import parse_broker_urls
from controller.protocol import parse_broker_url

if TYPE_CHECKING:
    from controller.atnsim.ledger import Ledger
    from controller.atnsim.sim import AtnConfig
    from controller.atnsim.weather import WeatherFeed
    from controller.control.params import ControlParams

EXIT_OK, EXIT_GAPS, EXIT_USAGE = 0, 1, 2
DEFAULT_DB = "atn-sim.sqlite"


def parse_broker(url: str, *, insecure: bool = False) -> tuple[str, int, bool]:
    """(host, port, tls) from mqtt://host[:port] or mqtts://host[:port]; ValueError if unusable or unsafe."""
    broker = parse_broker_url(url, insecure=insecure)
    return broker.host, broker.port, broker.tls


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _not_negative(text: str) -> float:
    value = float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"cannot be negative, got {text}")
    return value


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `atn-sim` subcommand (and its `check` action) to the `hearth` parser."""
    atn = subparsers.add_parser(
        "atn-sim",
        help="run a reference ATN (heartbeats, leases, telemetry ledger) against a broker",
        description="A reference ATN for testing deployments: publishes heartbeats and price-driven leases to "
        "each site, persists and acknowledges its telemetry in a SQLite ledger. SIGUSR1 pauses and resumes it "
        "(a silent cloud, for failover tests).",
    )
    atn.add_argument(
        "--broker",
        dest="brokers",
        action="append",
        metavar="URL",
        help="mqtt://host[:port] or mqtts://host[:port] (default mqtt://127.0.0.1:1883); repeat it, or give a "
        "comma-separated list, for the nodes of a cluster: on a lost connection the next one is tried at once",
    )
    atn.add_argument("--insecure", action="store_true", help="allow plain MQTT to a broker on another machine")
    atn.add_argument(
        "--site",
        dest="sites",
        action="append",
        metavar="ID",
        help="a site to serve (repeatable, or several separated by commas or spaces)",
    )
    atn.add_argument("--username", default="atn", help="broker user (default: atn)")
    atn.add_argument("--password-file", metavar="FILE", help="file holding the password (or a systemd credential)")
    atn.add_argument("--ca-file", metavar="FILE", help="CA certificate for mqtts:// (default: the system's)")
    atn.add_argument("--db", default=DEFAULT_DB, metavar="PATH", help=f"telemetry ledger (default: {DEFAULT_DB})")
    atn.add_argument("--name", default="atn-sim", help="the ATN name in heartbeats and lease ids")
    atn.add_argument("--heartbeat", type=_positive, default=10.0, metavar="S", help="heartbeat period (default 10)")
    atn.add_argument("--lease", type=_positive, default=120.0, metavar="S", help="lease length; renewed every half")
    atn.add_argument("--prices", metavar="FILE", help="price file: JSON [{start,end,price}] or CSV start,end,price")
    atn.add_argument("--timezone", default="UTC", metavar="TZ", help="site-local time zone (default: UTC)")
    atn.add_argument(
        "--dynamic-prices",
        type=int,
        metavar="SEED",
        help="seeded day-ahead prices (morning and evening peaks, a midday solar dip) instead of the daily profile",
    )
    atn.add_argument(
        "--layout",
        metavar="FILE",
        help="the site's layout: its [control] parameters (comfort, planner model) and time zone for planning",
    )
    atn.add_argument(
        "--weather",
        choices=["mild", "cold", "freezing", "none"],
        default=None,
        help="send each site a 48-h hourly weather forecast (atn/weather) from this simulated weather, hourly; "
        "default: the --layout's [sim] weather (the one its simulated plant feels), else none",
    )
    atn.add_argument(
        "--weather-seed",
        type=int,
        default=None,
        metavar="N",
        help="its seed (default: the --layout's [sim] seed, or 1)",
    )
    atn.add_argument(
        "--bands", action="store_true", help="lease by price band only; do not plan with the controller's planner"
    )
    atn.add_argument(
        "--plan-workers",
        type=int,
        default=1,
        metavar="N",
        help="worker processes that solve re-plans (default: 1); 0 solves them in the ATN's event loop, which holds "
        "up every acknowledgement while it plans",
    )
    atn.add_argument("--pause-after", type=_not_negative, metavar="S", help="go silent after S seconds")
    atn.add_argument("--pause-for", type=_positive, metavar="S", help="... for S seconds (default: until SIGUSR1)")
    atn.add_argument("--duration", type=_positive, metavar="S", help="stop cleanly after S seconds")
    atn.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    atn.add_argument("--log-format", choices=["auto", "json", "console"], default="auto")
    actions = atn.add_subparsers(dest="atn_action", metavar="ACTION")
    check = actions.add_parser(
        "check",
        help="report a ledger's readings and events, and their gaps",
        description="Print each site's event and reading counts, first and last seq, acknowledged seq and gaps. "
        "Exit 0 when no site has a gap, 1 when one has a gap (readings or events) or no readings, 2 when there "
        "is no ledger.",
    )
    check.add_argument("--db", dest="check_db", metavar="PATH", help=f"ledger (default: {DEFAULT_DB})")
    check.add_argument("--site", dest="check_sites", action="append", metavar="ID", help="default: every site")


def run_cli(args: argparse.Namespace) -> int:
    if getattr(args, "atn_action", None) == "check":
        return _check(args.check_db or args.db, args.check_sites or args.sites)
    return _serve(args)


def _check(db: str, sites: list[str] | None) -> int:
    import sqlite3
    from pathlib import Path

    from controller.atnsim.ledger import Ledger

    if not Path(db).is_file():
        print(f"{db}: no such ledger", file=sys.stderr)
        return EXIT_USAGE
    try:
        ledger = Ledger.open_to_read(db)
        chosen = sites or ledger.sites()
    except sqlite3.DatabaseError as error:
        print(f"{db}: not an ATN ledger ({error})", file=sys.stderr)
        return EXIT_USAGE
    try:
        if not chosen:
            print(f"{db}: no sites")
            return EXIT_GAPS
        status = EXIT_OK
        for site in chosen:
            if _check_events(ledger, site):
                status = EXIT_GAPS
            span = ledger.seq_range(site)
            if span is None:
                print(f"{site}: no readings")
                status = EXIT_GAPS
                continue
            gaps = ledger.gaps(site)
            missing = sum(end - start + 1 for start, end in gaps)
            print(
                f"{site}: {ledger.count(site)} readings, seq {span[0]}..{span[1]}, "
                f"acknowledged up to {ledger.contiguous_upto(site)}, "
                + (f"{len(gaps)} gap(s), {missing} missing" if gaps else "no gaps")
            )
            _print_gaps(gaps)
            if gaps:
                status = EXIT_GAPS
        return status
    finally:
        ledger.close()


def _print_gaps(gaps: list[tuple[int, int]]) -> None:
    for start, end in gaps[:50]:
        print(f"  missing {start}" + (f"..{end}" if end != start else ""))
    if len(gaps) > 50:
        print(f"  ... and {len(gaps) - 50} more")


def _check_events(ledger: Ledger, site: str) -> bool:
    """Print the site's events line; whether it has a gap."""
    span = ledger.event_range(site)
    if span is None:
        print(f"{site}: no events")
        return False
    gaps = ledger.event_gaps(site)
    missing = sum(end - start + 1 for start, end in gaps)
    print(
        f"{site}: {span[0]} events, seq {span[1]}..{span[2]}, acknowledged up to {ledger.events_upto(site)}, "
        + (f"{len(gaps)} event gap(s), {missing} missing" if gaps else "no event gaps")
    )
    _print_gaps(gaps)
    return bool(gaps)


def _serve(args: argparse.Namespace) -> int:
    from controller import logs
    from controller.atnsim.prices import (
        DailyProfile,
        DayAheadSeries,
        PriceFileError,
        PriceSeries,
        load_prices,
        timezone,
    )
    from controller.atnsim.sim import AtnConfig
    from controller.links.connection import read_secret

    if not args.sites:
        print("hearth atn-sim: --site is required (repeat it for several sites)", file=sys.stderr)
        return EXIT_USAGE
    try:
        brokers = parse_broker_urls(args.brokers or ["mqtt://127.0.0.1:1883"], insecure=args.insecure)
        if len({broker.tls for broker in brokers}) > 1:
            raise ValueError("give every broker with mqtts://, or every one with mqtt://, not a mix")
        control, zone_name = _control(args.layout, args.timezone)
        weather = _weather(args.layout, args.weather, args.weather_seed)
        tz = timezone(zone_name)
        if args.prices and args.dynamic_prices is not None:
            raise ValueError("--prices and --dynamic-prices are alternatives; give one")
        prices: PriceSeries = (
            load_prices(args.prices, tz)
            if args.prices
            else DayAheadSeries(args.dynamic_prices, tz)
            if args.dynamic_prices is not None
            else DailyProfile(tz)
        )
        try:
            password = read_secret(args.password_file) if args.password_file else None
        except FileNotFoundError:
            raise ValueError(f"--password-file {args.password_file}: no such file") from None
        except OSError as error:
            raise ValueError(f"--password-file {args.password_file}: {error.strerror or error}") from None
        config = AtnConfig(
            sites=tuple(site for item in args.sites for site in item.replace(",", " ").split()),
            host=brokers[0].host,
            port=brokers[0].port,
            tls=brokers[0].tls,
            more_brokers=brokers[1:],
            ca_file=args.ca_file,
            username=args.username or None,
            password=password,
            db=args.db,
            name=args.name,
            heartbeat_s=args.heartbeat,
            lease_s=args.lease,
            prices=prices,
            pause_after_s=args.pause_after,
            pause_for_s=args.pause_for,
            plan=not args.bands,
            plan_workers=args.plan_workers,
            control=control,
            timezone=zone_name,
            weather=weather,
        )
    except PriceFileError as error:
        print(f"hearth atn-sim: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (ValueError, OSError) as error:
        print(f"hearth atn-sim: {error}", file=sys.stderr)
        return EXIT_USAGE
    logs.configure(args.log_level, json={"auto": None, "json": True, "console": False}[args.log_format])
    return asyncio.run(_main(config, args.duration))


def _control(layout: str | None, zone: str) -> tuple[ControlParams, str]:
    """The control parameters and time zone to plan with: a layout's, or the defaults and --timezone."""
    from controller.control.params import ControlParams
    from controller.layout.load import LayoutError, load_layout

    if layout is None:
        return ControlParams(), zone
    try:
        loaded = load_layout(layout)
    except LayoutError as error:
        raise ValueError(f"--layout {layout}: {error}") from error
    return loaded.control, loaded.site.timezone


def _weather(layout: str | None, preset: str | None, seed: int | None) -> WeatherFeed | None:
    """The weather feed: --weather, else the layout's simulated weather; --weather none sends none."""
    from controller.atnsim.weather import WeatherFeed
    from controller.layout.load import load_layout

    sim = load_layout(layout).sim if layout is not None else None
    if preset == "none" or (preset is None and sim is None):
        return None
    return WeatherFeed(
        preset or (sim.weather if sim else "cold"), seed if seed is not None else (sim.seed if sim else 1)
    )


async def _main(config: AtnConfig, duration_s: float | None) -> int:
    import structlog

    from controller.atnsim.sim import AtnSim

    log = structlog.get_logger("hearth.atnsim")
    sim = AtnSim(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGUSR1, sim.toggle_pause)
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = asyncio.create_task(sim.run(), name="atnsim")
    stopper = asyncio.create_task(stop.wait(), name="atnsim:stop")
    try:
        await asyncio.wait({runner, stopper}, timeout=duration_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        runner.cancel()
        stopper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner  # re-raises what made it stop, unless it was our cancel
        for signum in (signal.SIGUSR1, signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        for site, stats in sim.stats.items():
            log.info(
                "ATN stopped",
                site=site,
                heartbeats=stats.heartbeats,
                leases=stats.dispatches,
                readings_stored=stats.readings_stored,
                acked_upto=sim.ledger.contiguous_upto(site),
            )
        sim.close()
    return EXIT_OK
