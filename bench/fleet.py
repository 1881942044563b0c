"""A fleet through a broker: `hearth fleet-sim --sites N` and the real `hearth atn-sim` serving them all, on a
private mosquitto or a private 3-node RabbitMQ cluster (the tests' own, tests/broker.py and tests/rabbitmq.py).

Prints, for the run: messages/s through the broker (counted from the ATN's ledger: telemetry, events; and the
leases and acks it logged), CPU (% of one core) and RSS of the simulator, the ATN and the broker(s), per site;
dispatch -> ack p50/p99 (the ATN's "lease sent" to its "controller accepted" for the same id, both in its log);
and `hearth atn-sim check` on the ledger (readings and events lost: must be 0).

With --kill (cluster only): after a third of the run, kill -9 the node the first third of the sites start on,
start it again once every site is back in ATN mode, then kill -9 the ATN's node; prints the time until every
site's link is up again and the ATN serves them, and then the ledger check.

    .venv/bin/python bench/fleet.py --sites 50 --duration 120                # mosquitto
    .venv/bin/python bench/fleet.py --sites 50 --duration 120 --cluster --kill
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import controller  # noqa: E402, F401  (Blinka check off)
from controller.fleet.provision import mosquitto_password_line, write_secret  # noqa: E402
from controller.fleet.sim import site_ids  # noqa: E402
from tests.broker import start_broker  # noqa: E402
from tests.rabbitmq import Cluster, start_cluster  # noqa: E402

HEARTH = str(Path(sys.executable).parent / "hearth")
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def cpu_and_rss(pid: int) -> tuple[float, int]:
    """(CPU seconds used so far, RSS bytes) of a process and its children that are still running."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        rss = int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except (FileNotFoundError, ProcessLookupError):
        return 0.0, 0
    return (int(fields[11]) + int(fields[12])) / TICK, rss


class Meter:
    """CPU and peak RSS of named groups of processes between `start()` and `report()`. The pids are asked for
    at every sample (a node killed and started again has a new one), and CPU is summed per pid from its first
    sample, so a restart never makes it go backwards."""

    def __init__(self, pids: dict[str, Callable[[], list[int]]]) -> None:
        self.pids = pids
        self.t0 = 0.0
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.group: dict[int, str] = {}
        self.peak: dict[str, int] = dict.fromkeys(pids, 0)
        self._starting = False

    def start(self) -> None:
        self.t0, self._starting = time.monotonic(), True
        self.sample()  # what runs now counts from now; a process started later counts from its start
        self._starting = False

    def sample(self) -> None:
        for name, pids in self.pids.items():
            rss_total = 0
            for pid in pids():
                used, rss = cpu_and_rss(pid)
                if rss == 0:
                    continue
                if pid not in self.first:
                    self.first[pid] = used if self._starting else 0.0
                self.last[pid], self.group[pid] = used, name
                rss_total += rss
            self.peak[name] = max(self.peak[name], rss_total)

    def report(self, sites: int) -> list[str]:
        self.sample()
        elapsed = time.monotonic() - self.t0
        lines = []
        for name in self.pids:
            used = sum(self.last[pid] - self.first[pid] for pid in self.last if self.group[pid] == name)
            cpu = used / elapsed * 100
            rss = self.peak[name] / 2**20
            lines.append(
                f"  {name:<10} CPU {cpu:6.1f} % of a core ({cpu / sites:.3f} %/site), "
                f"RSS {rss:7.1f} MB ({rss / sites:.2f} MB/site)"
            )
        return lines


def lease_latencies(log: Path) -> list[float]:
    sent: dict[str, float] = {}
    latencies = []
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        event, ident = entry.get("event"), entry.get("id")
        stamp = entry.get("timestamp")
        if not ident or not stamp:
            continue
        when = time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + float("0" + stamp[19:-1])
        if event == "lease sent":
            sent[ident] = when
        elif event == "controller accepted" and ident in sent:
            latencies.append(when - sent.pop(ident))
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--cluster", action="store_true", help="a private 3-node RabbitMQ cluster")
    parser.add_argument("--kill", action="store_true", help="kill -9 a site node, then the ATN's (cluster only)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="let atn-sim plan every lease with the controller's planner (default: --bands; planning hundreds of "
        "sites in the ATN's one event loop delays everything it receives by seconds)",
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hearth-fleet-"))
    sites = site_ids(args.sites)
    passwords = work / "passwords"
    cluster: Cluster | None = None
    print(f"{args.sites} sites, {args.duration:.0f} s, {'3-node RabbitMQ' if args.cluster else 'mosquitto'}: {work}")
    try:
        if args.cluster:
            cluster = start_cluster(work / "rabbitmq", sites=tuple(sites))
            urls = cluster.urls
            users = cluster.users
            nodes = cluster.nodes
            broker_pids = {"rabbitmq": lambda: [pid for node in nodes if (pid := node.beam_pid)]}
        else:
            broker = start_broker(work / "mosquitto")
            passwd = broker.workdir / "passwd"
            users = dict(broker.users)
            lines = passwd.read_text().splitlines()
            for site in sites:
                users[site] = f"pw-{site}-{os.urandom(6).hex()}"
                lines.append(mosquitto_password_line(site, users[site]))
            passwd.write_text("\n".join(lines) + "\n")
            broker.restart()
            urls = [f"mqtt://127.0.0.1:{broker.port}"]
            assert broker.process is not None
            mosquitto_pid = broker.process.pid
            broker_pids = {"mosquitto": lambda: [mosquitto_pid]}
        for site in sites:
            write_secret(passwords / f"{site}.mqtt-password", users[site])
        write_secret(work / "atn-password", users["atn"])
        ledger = work / "ledger.sqlite"
        site_args = [a for s in sites for a in ("--site", s)]
        broker_args = [a for u in (urls[2:] + urls[:2] if len(urls) == 3 else urls) for a in ("--broker", u)]
        with (work / "atn.log").open("w") as atn_log, (work / "fleet.log").open("w") as fleet_log:
            account = ["--username", "atn", "--password-file", str(work / "atn-password")]
            atn = subprocess.Popen(
                [HEARTH, "atn-sim", *broker_args, *site_args, *account, "--db", str(ledger), "--log-format", "json"]
                + ([] if args.plan else ["--bands"]),
                stderr=atn_log,
                stdout=subprocess.DEVNULL,
            )
            fleet = subprocess.Popen(
                [HEARTH, "fleet-sim", "--sites", str(args.sites), "--password-dir", str(passwords)]
                + [a for u in urls for a in ("--broker", u)]
                + ["--state-dir", str(work / "state"), "--log-format", "json", "--log-level", "info"],
                stderr=fleet_log,
                stdout=subprocess.DEVNULL,
                cwd=ROOT,
            )
            meter = Meter({"fleet-sim": lambda: [fleet.pid], "atn-sim": lambda: [atn.pid], **broker_pids})
            time.sleep(15)  # starts are spread over 10 s
            meter.start()
            deadline = time.monotonic() + args.duration
            killed = False
            while time.monotonic() < deadline:
                meter.sample()
                time.sleep(2)
                if (
                    args.kill
                    and cluster is not None
                    and not killed
                    and time.monotonic() > deadline - args.duration * 2 / 3
                ):
                    killed = True
                    node_kill(cluster, work, args.sites)
            print("\n".join(meter.report(args.sites)))
            fleet.terminate()
            fleet.wait(timeout=120)
            time.sleep(5)  # the last acknowledgements
            atn.terminate()
            atn.wait(timeout=60)
        latencies = lease_latencies(work / "atn.log")
        if latencies:
            print(
                f"  dispatch -> ack: {len(latencies)} leases, p50 {percentile(latencies, 0.5) * 1000:.0f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.0f} ms, max {max(latencies) * 1000:.0f} ms"
            )
        rate(ledger, args.duration)
        check = subprocess.run([HEARTH, "atn-sim", "check", "--db", str(ledger)], capture_output=True, text=True)
        gaps = [line for line in check.stdout.splitlines() if "gap(s)" in line or "no readings" in line]
        print(f"  atn-sim check: exit {check.returncode}; sites with a gap: {len(gaps)}")
        for line in gaps[:10]:
            print("   ", line)
        return 0 if check.returncode == 0 else 1
    finally:
        if cluster is not None:
            cluster.stop()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def rate(ledger: Path, duration: float) -> None:
    import sqlite3

    db = sqlite3.connect(ledger)
    readings = db.execute("SELECT count(*) FROM readings").fetchone()[0]
    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    print(f"  ledger: {readings} readings, {events} events ({readings / duration:.0f} readings/s)")


def node_kill(cluster: Cluster, work: Path, sites: int) -> None:
    """Kill the node the first third of the sites start on; when they are all back, bring it back and kill the
    ATN's node; print how long each took."""
    fleet_log = work / "fleet.log"

    def ups() -> int:
        return sum(1 for line in fleet_log.read_text().splitlines() if '"ATN link up"' in line)

    before = ups()
    cluster.nodes[0].kill()
    killed = time.monotonic()
    moved = sites // 3 + (1 if sites % 3 else 0)
    while ups() < before + moved and time.monotonic() - killed < 120:
        time.sleep(0.2)
    print(f"  node 1 killed: {ups() - before} of ~{moved} sites reconnected in {time.monotonic() - killed:.1f} s")
    cluster.start_node(0)
    atn_log = work / "atn.log"
    connects = sum(1 for line in atn_log.read_text().splitlines() if '"ATN connected"' in line)
    cluster.nodes[2].kill()
    killed = time.monotonic()
    while sum(1 for line in atn_log.read_text().splitlines() if '"ATN connected"' in line) <= connects:
        if time.monotonic() - killed > 120:
            break
        time.sleep(0.2)
    print(f"  ATN's node killed: the ATN reconnected in {time.monotonic() - killed:.1f} s")
    cluster.start_node(2)


if __name__ == "__main__":
    raise SystemExit(main())
