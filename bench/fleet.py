"""A fleet through a broker: `hearth fleet-sim --sites N` and the real `hearth atn-sim` serving them all, on a
private mosquitto or a private 3-node RabbitMQ cluster (the tests' own, tests/broker.py and tests/rabbitmq.py).

The meters start once every site has accepted a lease and made its plans (the first at start, another when a
lease brings prices) and none has planned for 30 s: the start-up is not in the figures, its length is printed.
Prints, for the metered run: messages/s published through the broker (counted by a `monitor` subscribed to
hearth/v1/# for the first minute only, then gone, so it does not double the broker's deliveries for the rest),
readings/s reaching the ATN's ledger, CPU (% of one core) and
peak RSS of the simulator (all its worker processes), the ATN and the broker(s), per site; the load average;
dispatch -> ack p50/p99 (the ATN's "lease sent" to its "controller accepted" for the same id, both in its log);
and `hearth atn-sim check` on the ledger (readings and events lost: must be 0).

With --kill (cluster only), **after** the metered run (so its figures are those of a quiet fleet): kill -9 the
node the first third of the sites start on; once every site is back (link up and in ATN mode, from the fleet's
log, each line of which names its site and the broker it is on) start it again, give it --kill-gap seconds to
rejoin (as an operator would in a rolling restart), then kill -9 the ATN's node. For
each kill: the sites that were on the killed node, the sites hit that were not (lost their link or left ATN
mode), how many left ATN mode, the time from the kill until every site was back in ATN mode, and the sites not
back within --kill-limit; for the ATN's node also how long the ATN took to reconnect (and to settle, when its
first new node failed it too).

With --view: one minute into the metered run, the fleet view (bench/fleet_view.py --live, headless, as the
monitor user, through the same brokers) is started against every running site: first paint (start to every
site's row) and its CPU for a minute.

    flock /work/heavy.lock .venv/bin/python bench/fleet.py --sites 500 --duration 600            # mosquitto
    flock /work/heavy.lock .venv/bin/python bench/fleet.py --sites 500 --duration 600 --cluster --kill
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import controller  # noqa: E402, F401  (Blinka check off)
from controller.fleet.provision import mosquitto_password_line, write_secret  # noqa: E402
from controller.fleet.sim import site_ids  # noqa: E402
from tests.broker import Broker, start_broker  # noqa: E402
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


def with_children(pid: int) -> list[int]:
    """`pid` and all its descendants (fleet-sim's worker processes and their planning processes)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except FileNotFoundError:
        return [pid]
    return [pid, *(descendant for child in children for descendant in with_children(int(child)))]


def log_entries(data: bytes) -> list[dict[str, object]]:
    """The JSON lines of a log; two worker processes writing to one file can leave two entries on one line."""
    entries = []
    for line in data.replace(b"}{", b"}\n{").splitlines():
        if line.startswith(b"{"):
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by the other process: the bench is a reader, not a judge of the log
    return entries


def log_time(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


class FleetWatch:
    """Each site's link (up/down) and mode, read incrementally from the fleet's JSON log."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offset = 0
        self.up: dict[str, bool] = {}
        self.mode: dict[str, str] = {}
        self.broker: dict[str, str] = {}  # the broker of each site's last "ATN link up"
        self.changed: dict[str, float] = {}  # when the site last became healthy or unhealthy (log time)
        self.hit: set[str] = set()  # sites that lost their link or left ATN mode since `mark()`
        self.left_atn: set[str] = set()  # sites that left ATN mode since `mark()`

    def mark(self) -> None:
        """Count the hit from now on (read the log first)."""
        self.hit.clear()
        self.left_atn.clear()

    def on(self, broker: str) -> set[str]:
        """The sites whose link is up on `broker`."""
        return {site for site, up in self.up.items() if up and self.broker.get(site) == broker}

    def read(self) -> None:
        with self.log.open("rb") as stream:
            stream.seek(self.offset)
            data = stream.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for entry in log_entries(data[:end]):
            site, event = entry.get("site"), entry.get("event")
            if not isinstance(site, str):
                continue
            before = self.healthy(site)
            if event == "ATN link up":
                self.up[site] = True
                self.broker[site] = str(entry.get("broker"))
            elif event in ("ATN link down", "ATN link still down"):
                self.up[site] = False
            elif event == "mode" and "to" in entry:
                if self.mode.get(site) == "ATN" and entry["to"] != "ATN":
                    self.left_atn.add(site)
                self.mode[site] = str(entry["to"])
            else:
                continue
            if self.healthy(site) != before:
                self.changed[site] = log_time(str(entry["timestamp"]))
                if before:
                    self.hit.add(site)

    def healthy(self, site: str) -> bool:
        return self.up.get(site, False) and self.mode.get(site) == "ATN"

    def unhealthy(self) -> list[str]:
        return [site for site in self.up if not self.healthy(site)]


def topic_kind(topic: str) -> str:
    """What a topic carries, without its site: `hearth/v1/site-1/atn/telemetry-ack` -> `atn/telemetry-ack`."""
    parts = topic.split("/")
    return "/".join(parts[3:]) if len(parts) > 3 else "/".join(parts[2:])


def count_messages(broker: Broker, seconds: float, sites: int) -> threading.Thread:
    """In a thread: a monitor subscribed to hearth/v1/# for `seconds`; prints messages/s, in all and per topic
    (without its site: telemetry, atn/telemetry-ack, state, ...), and per site."""

    def run() -> None:
        counted: dict[str, int] = {}

        def on_message(_c: object, _u: object, message: Any) -> None:
            kind = topic_kind(message.topic)
            counted[kind] = counted.get(kind, 0) + 1

        client = broker.connect("monitor")
        client.on_message = on_message
        client.subscribe("hearth/v1/#", qos=0)
        time.sleep(seconds)
        client.disconnect()
        client.loop_stop()
        total = sum(counted.values())
        print(f"  messages published on hearth/v1/# (a monitor, first {seconds:.0f} s): {total / seconds:.0f}/s")
        print(f"    {'topic':24} {'msg/s':>8} {'msg/s/site':>11}")
        for kind, count in sorted(counted.items(), key=lambda item: -item[1]):
            print(f"    {kind:24} {count / seconds:8.2f} {count / seconds / sites:11.3f}")
        print(f"    {'all':24} {total / seconds:8.2f} {total / seconds / sites:11.3f}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


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


class LogTail:
    """The entries a log gained since the last look."""

    def __init__(self, log: Path) -> None:
        self.log, self.offset = log, 0

    def new(self) -> list[dict[str, object]]:
        with self.log.open("rb") as stream:
            stream.seek(self.offset)
            data = stream.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        return log_entries(data[:end])


def settle(work: Path, sites: set[str], limit_s: float, quiet_s: float = 30.0) -> float:
    """Wait until every site has accepted a lease from the ATN and made its first plan, and no site has planned
    for `quiet_s` (a lease's prices make each site plan again), or `limit_s`; how long that took."""
    began = time.monotonic()
    accepted: set[str] = set()
    planned: set[str] = set()
    last_plan = time.monotonic()
    atn, fleet = LogTail(work / "atn.log"), LogTail(work / "fleet.log")
    while time.monotonic() - began < limit_s:
        time.sleep(2)
        accepted.update(str(e["site"]) for e in atn.new() if e.get("event") == "controller accepted")
        plans = [str(e["site"]) for e in fleet.new() if e.get("event") == "plan"]
        if plans:
            planned.update(plans)
            last_plan = time.monotonic()
        if accepted == sites and planned == sites and time.monotonic() - last_plan >= quiet_s:
            break
    else:
        print(f"  after {limit_s:.0f} s, {len(sites - accepted)} site(s) had no lease, {len(sites - planned)} no plan")
    return time.monotonic() - began


def lease_latencies(log: Path, after: float = 0.0, before: float = float("inf")) -> list[float]:
    """Lease sent -> accepted, for the leases sent between `after` and `before`."""
    sent: dict[str, float] = {}
    latencies = []
    for entry in log_entries(log.read_bytes()):
        event, ident, stamp = entry.get("event"), entry.get("id"), entry.get("timestamp")
        if not isinstance(ident, str) or not isinstance(stamp, str):
            continue
        when = log_time(stamp)
        if when < after or (event == "lease sent" and when > before):
            continue
        if event == "lease sent":
            sent[ident] = when
        elif event == "controller accepted" and ident in sent:
            latencies.append(when - sent.pop(ident))
    return latencies


def safe_falls(log: Path, after: float, before: float) -> str:
    """How often sites fell to SAFE in the start-up and in the metered window, and why (the fleet's mode events):
    a house that keeps up never does."""
    start: list[str] = []
    window: list[str] = []
    for entry in log_entries(log.read_bytes()):
        if entry.get("event") != "mode" or entry.get("to") != "SAFE" or not isinstance(entry.get("timestamp"), str):
            continue
        when = log_time(str(entry["timestamp"]))
        if when < before:
            (start if when < after else window).append(str(entry.get("reason")))
    reasons = sorted({r: window.count(r) for r in window}.items(), key=lambda item: -item[1])[:3]
    return (
        f"  falls to SAFE: {len(start)} in the start-up; {len(window)} in the metered window "
        f"({len(window) / max(before - after, 1e-9) * 60:.1f}/min)"
        + "".join(f"; {count} '{reason}'" for reason, count in reasons)
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sites", type=int, default=50)
    parser.add_argument("--duration", type=float, default=120.0)
    parser.add_argument("--cluster", action="store_true", help="a private 3-node RabbitMQ cluster")
    parser.add_argument(
        "--kill", action="store_true", help="after the metered run, kill -9 a site node, then the ATN's (cluster only)"
    )
    parser.add_argument(
        "--kill-limit", type=float, default=180.0, help="s after a kill by which every site must be back in ATN mode"
    )
    parser.add_argument(
        "--kill-gap",
        type=float,
        default=60.0,
        help="s between node 1 taking clients again and the ATN's node being killed, as an operator gives a "
        "restarted node time to catch up before taking another one down. With 1 s, at 500 sites, the ATN moved to "
        "node 1, whose answers to it then stalled for 10 s: a double failure, not the loss of one node",
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory")
    parser.add_argument(
        "--plan",
        action="store_true",
        help="let atn-sim plan every lease with the controller's planner (default: --bands; planning hundreds of "
        "sites in the ATN's one event loop delays everything it receives by seconds)",
    )
    parser.add_argument("--commit-every", type=float, default=10.0, help="fleet-sim's --commit-every")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="fleet-sim worker processes")
    parser.add_argument("--view", action="store_true", help="also measure the fleet view against the live sites")
    parser.add_argument("--settle", type=float, default=600.0, help="max s to wait until every site took a lease")
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
            counter = cluster.broker(1)
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
            counter = broker
        for site in sites:
            write_secret(passwords / f"{site}.mqtt-password", users[site])
        write_secret(work / "atn-password", users["atn"])
        write_secret(work / "monitor-password", users["monitor"])
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
                + ["--state-dir", str(work / "state"), "--log-format", "json", "--log-level", "info"]
                + ["--workers", str(args.workers), "--commit-every", str(args.commit_every)],
                stderr=fleet_log,
                stdout=subprocess.DEVNULL,
                cwd=ROOT,
            )
            meter = Meter({"fleet-sim": lambda: with_children(fleet.pid), "atn-sim": lambda: [atn.pid], **broker_pids})
            settled = settle(work, set(sites), args.settle)
            print(f"  every site had a lease and its plans, none planning for 30 s, {settled:.0f} s after the start")
            meter.start()
            metered_from = time.time()
            loads = [os.getloadavg()[0]]
            counting = count_messages(counter, min(60.0, args.duration), args.sites)
            view = fleet_view(work, urls, args.sites, after_s=min(60.0, args.duration)) if args.view else None
            deadline = time.monotonic() + args.duration
            while time.monotonic() < deadline:
                meter.sample()
                loads.append(os.getloadavg()[0])
                time.sleep(2)
            counting.join()
            if view is not None:
                view.join()
            metered_to = time.time()
            print(f"  load average (1 min) during the run: mean {sum(loads) / len(loads):.1f}, max {max(loads):.1f}")
            print("\n".join(meter.report(args.sites)))
            print(safe_falls(work / "fleet.log", metered_from, metered_to))
            if args.kill and cluster is not None:
                node_kill(cluster, work, args.kill_limit, args.kill_gap)
            fleet.terminate()
            fleet.wait(timeout=120)
            time.sleep(5)  # the last acknowledgements
            atn.terminate()
            atn.wait(timeout=60)
        # After the ATN has stopped, not at the end of the window: an ATN that is behind logs the acknowledgements
        # of the window's leases minutes later, and counted then the window had none (run of 01:14).
        latencies = lease_latencies(work / "atn.log", after=metered_from, before=metered_to)
        if latencies:
            print(
                f"  dispatch -> ack (leases sent in the metered window): {len(latencies)} accepted, "
                f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
                f"max {max(latencies) * 1000:.0f} ms"
            )
        else:
            print("  dispatch -> ack: no lease sent in the metered window was accepted")
        rate(ledger, metered_from, metered_to)
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


def rate(ledger: Path, start: float, end: float) -> None:
    """Readings and events in the ledger, and the readings taken during the metered run per second."""
    import sqlite3

    db = sqlite3.connect(ledger)
    readings = db.execute("SELECT count(*) FROM readings").fetchone()[0]
    events = db.execute("SELECT count(*) FROM events").fetchone()[0]
    metered = db.execute("SELECT count(*) FROM readings WHERE ts >= ? AND ts < ?", (start, end)).fetchone()[0]
    print(
        f"  ledger: {readings} readings, {events} events; "
        f"{metered / (end - start):.0f} readings/s taken during the metered run"
    )


def fleet_view(work: Path, urls: list[str], sites: int, after_s: float) -> threading.Thread:
    """In a thread: after `after_s`, bench/fleet_view.py --live against every site; prints its figures."""

    def run() -> None:
        time.sleep(after_s)
        command = [sys.executable, str(ROOT / "bench" / "fleet_view.py"), "--live", *urls, "--sites", str(sites)]
        command += ["--seconds", "60", "--password-file", str(work / "monitor-password")]
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT)
        except subprocess.TimeoutExpired:
            print(f"  fleet view: not every one of the {sites} rows painted within 600 s")
            return
        lines = out.stdout.splitlines() or out.stderr.splitlines()[-5:]
        print("\n".join(f"  fleet view: {line.strip()}" for line in lines))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def node_kill(cluster: Cluster, work: Path, limit_s: float, gap_s: float) -> None:
    """Kill the node the first third of the sites start on; once every site is back (or `limit_s` has passed),
    bring it back, give it `gap_s` to rejoin, and kill the ATN's node; print what each kill cost."""
    watch = FleetWatch(work / "fleet.log")
    healthy_within(watch, limit_s, "before the first kill")
    one_kill(cluster, 0, watch, "node 1 (a third of the sites start on it)", limit_s)
    cluster.start_node(0)
    rejoined = time.monotonic()
    healthy_within(watch, limit_s, "before the second kill")
    time.sleep(max(0.0, gap_s - (time.monotonic() - rejoined)))
    atn_log = work / "atn.log"

    def connects() -> list[str]:
        return [str(e.get("broker")) for e in log_entries(atn_log.read_bytes()) if e.get("event") == "ATN connected"]

    before = connects()
    atn_node = cluster.urls.index(before[-1])
    one_kill(
        cluster,
        atn_node,
        watch,
        f"node {atn_node + 1} (the ATN's)",
        limit_s,
        atn=lambda: len(connects()) - len(before),
    )
    cluster.start_node(atn_node)


def healthy_within(watch: FleetWatch, limit_s: float, when: str) -> None:
    """Wait up to `limit_s` for every site to be up in ATN mode, so a kill's figures are the kill's own; say how
    many were not, if some never were (the figures of that kill then mix in whatever ailed them)."""
    began = time.monotonic()
    while True:
        watch.read()
        bad = watch.unhealthy()
        if not bad or time.monotonic() - began >= limit_s:
            break
        time.sleep(1)
    if bad:
        print(f"  {when}: {len(bad)} site(s) still not up in ATN mode after {limit_s:.0f} s; killing anyway")
    elif time.monotonic() - began >= 2:
        print(f"  {when}: waited {time.monotonic() - began:.0f} s for every site to be up in ATN mode")


def one_kill(
    cluster: Cluster,
    index: int,
    watch: FleetWatch,
    what: str,
    limit_s: float,
    quiet_s: float = 45.0,
    atn: Callable[[], int] | None = None,
) -> None:
    """kill -9 node `index`; follow the fleet's log until every site has been up in ATN mode for `quiet_s`
    (longer than the sites' silence timeout, so a site about to fall back to LOCAL is seen) or `limit_s` has
    passed; print the sites that were on it, the others hit, and when the last was back."""
    watch.read()
    on_node = watch.on(cluster.urls[index])
    watch.mark()
    killed_at = time.time()
    cluster.nodes[index].kill()
    healthy_since: float | None = None
    atn_back: float | None = None  # the ATN's first reconnect after the kill
    atn_settled: tuple[float, int] | None = None  # its last, and how many it took
    while time.time() - killed_at < limit_s:
        time.sleep(0.5)
        watch.read()
        if atn is not None and (count := atn()) > (atn_settled[1] if atn_settled else 0):
            atn_settled = (time.time() - killed_at, count)
            atn_back = atn_back or atn_settled[0]
        if watch.unhealthy():
            healthy_since = None
        elif healthy_since is None:
            healthy_since = time.time()
        elif time.time() - healthy_since >= quiet_s:
            break
    hit = set(watch.hit)
    still = watch.unhealthy()
    back = max((watch.changed[site] for site in hit if site in watch.changed), default=killed_at)
    print(
        f"  kill -9 {what}: {len(on_node)} site(s) on it; {len(hit - on_node)} site(s) not on it hit "
        f"(lost their link or left ATN mode); {len(watch.left_atn)} left ATN mode; "
        + (
            f"{len(still)} NOT back in ATN mode after {limit_s:.0f} s"
            if still
            else f"every site back in ATN mode {back - killed_at:.1f} s after the kill; 0 not back"
        )
        + (
            ""
            if atn is None
            else f"; the ATN reconnected in {atn_back:.1f} s"
            + (
                f" and settled after {atn_settled[0]:.1f} s ({atn_settled[1]} connects: a node it moved to failed too)"
                if atn_settled and atn_settled[1] > 1
                else ""
            )
            if atn_back
            else "; the ATN did NOT reconnect"
        )
    )


if __name__ == "__main__":
    raise SystemExit(main())
