"""`hearth energy`: the heat pump's daily totals (heatpumpmonitor.org's definitions) with month and season
rollups, as a table or as CSV for a spreadsheet.

It asks the running controller over its local socket (the controller holds its store exclusively); with
`--store` and `--layout` it reads a store file directly instead (a stopped controller, a copied file).
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from controller import protocol
from controller.energy.daily import MEANS, DayTotals
from controller.energy.rollup import Rollup, month_of, rollups, season_of
from controller.numbers import fixed
from tui.cli import add_socket_option

EXIT_OK, EXIT_NO_ANSWER, EXIT_STORE = 0, 3, 4
COLUMNS = (
    "day",
    "hours",
    "elec_kwh",
    "heat_kwh",
    "cop",
    "running_h",
    "starts",
    "defrost_kwh",
    "coverage_pct",
    "gap_s",
    "cost",
    "meter_kwh",
    "meter_difference_pct",
    *(f"{name}_mean_c" for name in MEANS),
)


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "energy",
        help="daily heat, electricity, COP, starts and cost, with month and season totals",
        description="The heat pump's daily totals by local day (DST days have 23 and 25 hours), with the "
        "definitions heatpumpmonitor.org uses: electricity and heat kWh, COP = heat / electricity, running hours "
        "(power >= the starting power), starts (power rising through it), defrost heat, data coverage, the mean "
        "flow, return, outdoor and house temperatures, and the cost at the tariff or forecast in force; the meter "
        "counter's own kWh beside the integrated figure. Then month and heating-season (September to August) "
        "totals. Asks the running controller; --store reads a store file instead. Exit 0 with the table, 2 on wrong "
        "options, 3 when no controller answers, 4 when the store file is missing or unreadable. "
        "Example: hearth energy --days 7 --csv week.csv",
    )
    add_socket_option(parser)
    parser.add_argument("--days", type=int, default=30, help="how many local days up to today (default 30)")
    parser.add_argument(
        "--csv", metavar="FILE", help="write the daily rows as CSV to FILE ('-' for standard output) instead"
    )
    parser.add_argument("--store", metavar="PATH", help="read this store file directly (needs --layout)")
    parser.add_argument("--layout", default=os.environ.get("HEARTH_LAYOUT"), help="the site's layout, with --store")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the controller")


class NoAnswer(Exception):
    """The controller did not answer (not running, no permission, timeout) or refused."""


def ask(path: str, request: protocol.Request, timeout_s: float) -> protocol.Response:
    """One request to the running controller over its local socket, and its answer (pushes are skipped)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout_s)
            sock.connect(path)
            sock.sendall(request.to_json() + b"\n")
            buffer = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    raise NoAnswer("the controller closed the connection without an answer")
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if b'"push"' in line[:40]:
                        continue
                    response = protocol.parse(protocol.Response, line)
                    if response.id != request.id:
                        continue
                    if not response.ok:
                        raise NoAnswer(f"the controller refused: {response.error}")
                    return response
    except (OSError, TimeoutError) as error:
        raise NoAnswer(f"no controller answers on {path}: {error}") from error


def ask_controller(path: str, days: int, timeout_s: float) -> list[DayTotals]:
    request = protocol.Request(id=uuid.uuid4().hex[:12], op="energy", days=days)
    return [DayTotals.from_row(row) for row in ask(path, request, timeout_s).energy or []]


def read_store(store_path: str, layout_path: str, days: int) -> list[DayTotals]:
    from controller.energy.book import recent_days
    from controller.layout.load import load_layout
    from controller.store import Store

    layout = load_layout(Path(layout_path))
    with Store.open_existing(store_path) as store:
        return recent_days(store, layout, time.time(), days)


def _number(value: object, digits: int = 1) -> str:
    return "-" if value is None else fixed(float(value), digits)  # type: ignore[arg-type]


def render(days: Sequence[DayTotals]) -> str:
    lines = [
        f"{'day':<10} {'h':>2} {'elec kWh':>8} {'heat kWh':>8} {'COP':>5} {'run h':>5} {'starts':>6} "
        f"{'defrost':>7} {'cover':>6} {'cost':>6} {'meter kWh':>9} {'diff %':>7} {'flow':>5} {'return':>6} "
        f"{'outdoor':>7} {'house':>5}"
    ]
    for d in days:
        lines.append(
            f"{d.day.isoformat():<10} {d.hours:>2.0f} {_number(d.elec_kwh, 2):>8} {_number(d.heat_kwh, 2):>8} "
            f"{_number(d.cop, 2):>5} "
            f"{d.running_h:>5.1f} {d.starts:>6d} {_number(d.defrost_kwh, 2):>7} {d.coverage_pct:>5.1f}% "
            f"{_number(d.cost, 2):>6} {_number(d.meter_kwh, 2):>9} {_number(d.meter_difference_pct, 2):>7} "
            + " ".join(f"{_number(d.means_c.get(name)):>{w}}" for name, w in zip(MEANS, (5, 6, 7, 5), strict=True))
        )
    for title, key in (("month", month_of), ("season", season_of)):
        lines.append("")
        lines += [_rollup_line(title, r) for r in rollups(days, key)]
    return "\n".join(lines)


def _rollup_line(title: str, r: Rollup) -> str:
    return (
        f"{title} {r.name}: {r.days} day{'' if r.days == 1 else 's'}, "
        f"electricity {_number(r.elec_kwh)} kWh, heat {_number(r.heat_kwh)} kWh, "
        f"COP {_number(r.cop, 2)}, {r.running_h:.1f} h running, {r.starts} starts, "
        f"defrost {_number(r.defrost_kwh)} kWh, "
        f"coverage {r.coverage_pct:.1f} %, cost {_number(r.cost, 2)}"
    )


def _csv_value(value: object) -> object:
    """Floats to 4 decimals (a tenth of a watt-hour; the sums carry float noise such as -2.08e-07 beyond it)."""
    if value is None:
        return ""
    return fixed(value, 4).rstrip("0").rstrip(".") if isinstance(value, float) else value


def to_csv(days: Sequence[DayTotals]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for day in days:
        writer.writerow({k: _csv_value(v) for k, v in day.row().items()})
    return out.getvalue()


def run_cli(args: argparse.Namespace) -> int:
    if args.days < 1 or args.days > 400:
        print("hearth energy: --days must be 1 to 400", file=sys.stderr)
        return 2
    try:
        if args.store:
            if not args.layout:
                print("hearth energy: --store needs --layout (the site's time zone and channels)", file=sys.stderr)
                return 2
            from controller.store import StoreError

            try:
                days = read_store(args.store, args.layout, args.days)
            except StoreError as error:
                print(f"hearth energy: {error}", file=sys.stderr)
                return EXIT_STORE
        else:
            days = ask_controller(args.socket, args.days, args.timeout)
    except NoAnswer as error:
        print(f"hearth energy: {error}", file=sys.stderr)
        return EXIT_NO_ANSWER
    if args.csv:
        text = to_csv(days)
        if args.csv == "-":
            sys.stdout.write(text)
        else:
            Path(args.csv).write_text(text, encoding="utf-8")
            print(f"wrote {len(days)} day{'' if len(days) == 1 else 's'} to {args.csv}")
        return EXIT_OK
    print(render(days))
    return EXIT_OK
