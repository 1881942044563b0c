"""A fleet on this machine: a private 3-node RabbitMQ cluster, N simulated houses and the reference ATN, watched
in the fleet view. Run it through `scripts/fleet-demo` (which installs what it needs first).

The cluster is the tests' own (tests/rabbitmq.py: Debian's rabbitmq-server with its MQTT plugin, private node
names, ports, cookie and directories, stopped by pid); `--mosquitto` runs one private mosquitto instead
(tests/broker.py). Every site is a whole controller with its own broker user (`hearth fleet-sim`), the ATN is
`hearth atn-sim` with every node in its broker list, and the fleet view is `hearth tui --mqtt URL...` as the
monitor user. When the fleet view quits, everything stops (fleet-sim, then the ATN, then the brokers) and the
ATN's ledger is checked for gaps (`hearth atn-sim check`).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import controller  # noqa: E402, F401  (Blinka check off)
from controller.fleet.provision import mosquitto_password_line, write_secret  # noqa: E402
from controller.fleet.sim import site_ids  # noqa: E402
from tests.broker import Broker, start_broker  # noqa: E402
from tests.rabbitmq import Cluster, start_cluster  # noqa: E402

HEARTH = str(Path(sys.executable).parent / "hearth")


def main() -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/fleet-demo",
        description="A private 3-node RabbitMQ cluster, N simulated houses and the reference ATN, in the fleet view. "
        "Quit the fleet view with q: everything stops with it.",
    )
    parser.add_argument("--sites", type=int, default=10, metavar="N", help="simulated houses (default: 10)")
    parser.add_argument(
        "--state-dir", default="state/fleet", metavar="DIR", help="logs, stores and broker files (default: state/fleet)"
    )
    parser.add_argument("--mosquitto", action="store_true", help="one private mosquitto instead of the cluster")
    parser.add_argument("--no-tui", action="store_true", help="no fleet view: print how to open one, run until Ctrl-C")
    parser.add_argument(
        "--bands", action="store_true", help="the ATN leases by price band instead of planning each site"
    )
    args = parser.parse_args()
    if not 1 <= args.sites <= 500:
        parser.error("--sites: from 1 to 500")
    work = Path(args.state_dir).resolve()
    try:
        if work.exists():
            shutil.rmtree(work)  # a cluster must start from fresh node directories
        work.mkdir(parents=True)
    except OSError as error:
        parser.error(f"--state-dir {args.state_dir}: {error.strerror or error}")
    sites = site_ids(args.sites)
    passwords = work / "passwords"
    cluster: Cluster | None = None
    broker: Broker | None = None
    processes: list[subprocess.Popen[bytes]] = []
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if args.mosquitto:
            print("Starting a private mosquitto ...", flush=True)
            broker = start_broker(work / "mosquitto")
            users = dict(broker.users)
            lines = (broker.workdir / "passwd").read_text().splitlines()
            for site in sites:
                users[site] = os.urandom(12).hex()
                lines.append(mosquitto_password_line(site, users[site]))
            (broker.workdir / "passwd").write_text("\n".join(lines) + "\n")
            broker.restart()
            urls = [f"mqtt://127.0.0.1:{broker.port}"]
        else:
            print("Starting a private 3-node RabbitMQ cluster (about 30 s) ...", flush=True)
            cluster = start_cluster(work / "rabbitmq", sites=tuple(sites))
            users, urls = cluster.users, cluster.urls
        for name in (*sites, "atn", "monitor"):
            write_secret(passwords / f"{name}.mqtt-password", users[name])
        atn_brokers = urls[2:] + urls[:2]  # the ATN starts on the third node, the sites on the first two
        atn = start(
            work / "atn.log",
            [HEARTH, "atn-sim", *[a for u in atn_brokers for a in ("--broker", u)], "--site", ",".join(sites)]
            + ["--username", "atn", "--password-file", str(passwords / "atn.mqtt-password")]
            + ["--db", str(work / "ledger.sqlite"), "--log-format", "json"]
            + (["--bands"] if args.bands else []),
        )
        processes.append(atn)
        fleet = start(
            work / "fleet-sim.log",
            [HEARTH, "fleet-sim", "--sites", str(args.sites), "--password-dir", str(passwords)]
            + [a for u in urls for a in ("--broker", u)]
            + ["--state-dir", str(work / "sites"), "--log-format", "json"],
        )
        processes.insert(0, fleet)
        view = [HEARTH, "tui", "--mqtt", *urls, "--username", "monitor"]
        view += ["--password-file", str(passwords / "monitor.mqtt-password")]
        pids = {"atn": atn.pid, "fleet-sim": fleet.pid}
        if cluster is not None:
            pids.update({f"node-{n}": node.beam_pid or 0 for n, node in enumerate(cluster.nodes, start=1)})
        write_pid_files(work, pids)
        print(describe(work, urls, cluster, atn, fleet, view, args.sites), flush=True)
        if args.no_tui:
            print("Ctrl-C stops everything.", flush=True)
            while all(p.poll() is None for p in processes):
                time.sleep(1)
            print("a process ended by itself: see its log", file=sys.stderr)
        else:
            time.sleep(3)
            subprocess.run(view, check=False)
    except KeyboardInterrupt:
        pass
    finally:
        for process in processes:  # fleet-sim first: its last readings reach the ATN before it stops
            stop(process)
        if cluster is not None:
            cluster.stop()
        if broker is not None:
            broker.stop()
        for pid_file in work.glob("*.pid"):  # stopped: a stale pid could name another process later
            pid_file.unlink()
    ledger = work / "ledger.sqlite"
    if ledger.exists():
        print("What the ATN received (hearth atn-sim check):", flush=True)
        check = subprocess.run([HEARTH, "atn-sim", "check", "--db", str(ledger)], capture_output=True, text=True)
        lines = check.stdout.splitlines()
        checked = {line.split(":", 1)[0] for line in lines if ":" in line}
        readings = sum(1 for line in lines if line.endswith(", no gaps"))
        events = sum(1 for line in lines if line.endswith(", no event gaps"))
        print(
            f"  {len(checked)} sites: readings with no gap at {readings}, events with no gap at {events} "
            f"(exit {check.returncode}; details: hearth atn-sim check --db {ledger})"
        )
    return 0


def start(log: Path, command: list[str]) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=out, stdin=subprocess.DEVNULL, cwd=ROOT)


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def write_pid_files(work: Path, pids: dict[str, int]) -> None:
    """`<work>/<name>.pid` for what the README has you kill from another terminal: the fleet view covers the pids
    printed before it opens (and a file serves a script as well)."""
    for name, pid in pids.items():
        (work / f"{name}.pid").write_text(f"{pid}\n")


def describe(
    work: Path,
    urls: list[str],
    cluster: Cluster | None,
    atn: subprocess.Popen[bytes],
    fleet: subprocess.Popen[bytes],
    view: list[str],
    sites: int,
) -> str:
    lines = [f"Fleet demo in {work}:"]
    if cluster is not None:
        for index, node in enumerate(cluster.nodes, start=1):
            lines.append(f"  node {index}   {node.url}  (beam pid {node.beam_pid}; log {node.log_file})")
    else:
        lines.append(f"  broker   {urls[0]}  (mosquitto)")
    lines.append(f"  ATN      hearth atn-sim, pid {atn.pid} (log {work / 'atn.log'}; ledger {work / 'ledger.sqlite'})")
    lines.append(f"  sites    hearth fleet-sim --sites {sites}, pid {fleet.pid} (log {work / 'fleet-sim.log'})")
    lines.append(f"Try, from another terminal (the pids are in {work}/*.pid):")
    if cluster is not None:
        lines.append(f"  kill -9 $(cat {work / 'node-1.pid'})     # node 1 dies: its sites move to node 2 at once")
        lines.append("  (one node at a time: with two of three down the third pauses, by design)")
    lines.append(
        f"  kill -USR1 $(cat {work / 'atn.pid'})     # pause / resume the ATN: every site goes LOCAL, then ATN"
    )
    lines.append("The fleet view (s sorts, / filters, Enter opens a site, q quits and stops everything):")
    lines.append("  " + " ".join(view))
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
