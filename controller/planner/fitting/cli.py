"""`hearth model`: the planner's model fitted from the site's history.

- `hearth model show` asks the running controller which model its planner uses (each part fitted, or the
  layout's, and why) and prints the last fit; `--store FILE --layout FILE` reads a store file instead.
- `hearth model fit` asks the running controller to fit now (a technician: its daily fit, kept and used at once);
  `--store FILE --layout FILE` fits the last `--days` of a store file instead and prints each part's values, fit
  and problems; `--save` keeps that outcome in the store as the controller would (a stopped controller's store:
  the running one holds its store exclusively); `--accept-jump` takes a part whose only problem is a large change
  from the last accepted fit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

from controller import protocol
from controller.energy.cli import NoAnswer, ask
from tui.cli import add_socket_option

EXIT_OK, EXIT_USAGE, EXIT_NO_ANSWER, EXIT_STORE = 0, 2, 3, 4


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "model",
        help="the planner's house and heat-pump model, fitted from the site's history",
        description="The planner's model of the house (UA, heat capacity, free gains) and of the heat pump (COP as "
        "a fraction of Carnot, capacity vs outdoor air and water) is fitted by least squares from the site's "
        "hourly history. A part is used only when it passes its checks (enough data, parameters pinned down, "
        "within physical bounds, small residuals, no large jump from the last accepted fit); otherwise the "
        "last accepted fit or the layout's values stand. The controller refits daily.",
    )
    sub = parser.add_subparsers(dest="model_command", required=True, metavar="{show,fit}")
    show = sub.add_parser(
        "show",
        help="which model the planner uses, and the last fit",
        description="Ask the running controller which model its planner uses and print the last fit; with "
        "--store and --layout, read a store file instead.",
    )
    add_socket_option(show)
    _store_options(show)
    show.add_argument("--json", action="store_true", help="print the fit as JSON")
    show.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the controller")
    fit = sub.add_parser(
        "fit",
        help="fit the model now and print the outcome",
        description="Ask the running controller to fit its model now (technicians only; the fit it makes daily, "
        "kept and used at once), or with --store and --layout fit the last --days of a store file (a stopped "
        "controller's store, or a copy made with `sqlite3 hearth.db '.backup copy.db'`), and print each part's "
        "values, fit and problems.",
    )
    add_socket_option(fit)
    fit.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the controller")
    _store_options(fit)
    fit.add_argument("--days", type=int, default=None, help="days of history (default: the layout's fit_days, 14)")
    fit.add_argument(
        "--until",
        metavar="ISO-TIME",
        default=None,
        help="the end of the history to fit, e.g. 2026-01-07T00:00Z (default: now)",
    )
    fit.add_argument("--save", action="store_true", help="keep the outcome in the store, as the controller would")
    fit.add_argument(
        "--accept-jump",
        action="store_true",
        help="take a part whose only problem is a large change from the last accepted fit",
    )
    fit.add_argument("--json", action="store_true", help="print the fit as JSON")


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", metavar="PATH", help="a store file (needs --layout)")
    parser.add_argument(
        "--layout",
        default=os.environ.get("HEARTH_LAYOUT"),
        help="the site's layout (its channels and [control.planner]); $HEARTH_LAYOUT by default",
    )


def render(reply: Mapping[str, object]) -> str:
    from controller.planner.fitting.accepted import ModelFit

    lines = [str(reply.get("in_use", ""))]
    fit = ModelFit.from_json(reply.get("fit"))
    if fit is None:
        return lines[0]
    lines.append(f"last fit at {_utc(fit.fitted_at)}, history {_utc(fit.since)} .. {_utc(fit.until)}")
    for part in fit.latest:
        state = "accepted" if part.accepted else "refused"
        residual = "-" if part.residual is None else f"{100 * part.residual:.1f} %"
        lines.append(f"  {part.name}: {state}, {part.samples} samples, residual {residual}")
        for name, value in part.values.items():
            error = part.uncertainty.get(name)
            spread = f" ±{100 * error:.1f} %" if error is not None else ""
            lines.append(f"    {name} = {value:.6g}{spread}")
        lines += [f"    problem: {problem}" for problem in part.problems]
    return "\n".join(lines)


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def run_cli(args: argparse.Namespace) -> int:
    if args.store and not args.layout:
        print(f"hearth model {args.model_command}: --store needs --layout", file=sys.stderr)
        return EXIT_USAGE
    if args.model_command == "fit" and args.days is not None and not 4 <= args.days <= 400:
        print("hearth model fit: --days must be 4 to 400", file=sys.stderr)
        return EXIT_USAGE
    store_only = [flag for flag, given in (("--days", "days"), ("--until", "until"), ("--save", "save"),
                  ("--accept-jump", "accept_jump")) if getattr(args, given, None) not in (None, False)]  # fmt: skip
    if args.model_command == "fit" and not args.store and store_only:
        print(f"hearth model fit: {', '.join(store_only)}: only with --store (the controller fits as it does "
              "daily)", file=sys.stderr)  # fmt: skip
        return EXIT_USAGE
    try:
        reply = _from_store(args) if args.store else _from_controller(args)
    except NoAnswer as error:
        print(f"hearth model: {error}", file=sys.stderr)
        return EXIT_NO_ANSWER
    except (OSError, ValueError) as error:
        print(f"hearth model: {error}", file=sys.stderr)
        return EXIT_STORE
    print(json.dumps(reply, indent=2) if args.json else render(reply))
    return EXIT_OK


def _until(text: str | None) -> float:
    if text is None:
        return time.time()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise ValueError(f"--until {text!r} is not an ISO 8601 time like 2026-01-07T00:00Z") from error
    if moment.tzinfo is None:
        raise ValueError(f"--until {text!r} needs a time zone, e.g. a trailing Z for UTC")
    return moment.timestamp()


def _from_controller(args: argparse.Namespace) -> dict[str, object]:
    request = protocol.Request(id=uuid.uuid4().hex[:12], op="model_fit" if args.model_command == "fit" else "model")
    return dict(ask(args.socket, request, args.timeout).model or {})


def _from_store(args: argparse.Namespace) -> dict[str, object]:
    from controller.layout.load import load_layout
    from controller.planner.fitting.run import model_reply, refit, save
    from controller.store import Store, StoreError

    layout = load_layout(Path(args.layout))
    try:
        with Store.open_existing(args.store) as store:
            if args.model_command == "fit":
                fit = refit(store, layout, _until(args.until), days=args.days, accept=args.accept_jump)
                if args.save:
                    save(store, fit)
                    store.flush()
                from controller.planner.fitting.accepted import describe

                return {"fit": fit.to_json(), "in_use": describe(layout.control.planner, fit)}
            return model_reply(store, layout)
    except StoreError as error:
        raise ValueError(str(error)) from error
