"""Hearth on a private 3-node RabbitMQ cluster (tests/rabbitmq.py): the short form of the node-loss bench.

One cluster for the module (about 25 s to start on two cores, more under load). The permission cases run all
at once, each on a connection of its own. Two sites, each starting on its own node, and the reference ATN on the
third; the first site's node is killed -9: it must move to the next node at once (no backoff while other nodes
are up), every site come back to ATN mode, and no reading or event be lost (`hearth atn-sim check`). Killing
the ATN's node as well is the slow form (HEARTH_SLOW=1, about a minute more); hundreds of sites are
bench/fleet.py's (`--cluster --kill`).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from controller.atnsim.ledger import Ledger
from controller.fleet.rabbitmq import ROLES, grant_for
from tests.broker import BrokerRefused, Subscription, disconnect
from tests.rabbitmq import CTL, Cluster, start_cluster
from tests.soak import LONG
from tests.test_atn_link import HEARTH, ROOT, Process, current_mode, wait_for

SITES = ("demo-house", "other-site")
HEARTBEAT_S = 1.0
DEBIAN_CTL = "/usr/sbin/rabbitmqctl"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    running = start_cluster(tmp_path_factory.mktemp("rabbitmq"), sites=SITES)
    yield running
    running.stop()


def layout(cluster: Cluster, directory: Path, site: str, first: int, *, user: str | None = None) -> Path:
    """The demo layout as `site`, with every node in its broker list, starting at node `first`."""
    secret = directory / f"{site}-password"
    secret.write_text(cluster.users[user or site])
    order = cluster.urls[first:] + cluster.urls[:first]
    noisy = '[sim]\nfaults = { tank-top = "noise", tank-mid = "noise", house-air = "noise" }\n'
    text = (ROOT / "layouts/demo.toml").read_text().replace("[sim]\n", noisy, 1)
    text = text.replace('id = "demo-house"', f'id = "{site}"', 1)
    text += f"""
[control.authority]
heartbeat_s = {HEARTBEAT_S}

[links.atn]
url = {json.dumps(order)}
username = "{user or site}"
password_file = "{secret}"
telemetry_batch = 200
state_every_s = 60
"""
    path = directory / f"{site}.toml"
    path.write_text(text)
    return path


def hearth_run(layout_path: Path, state: Path, log: Path) -> Process:
    args = ["run", "--layout", str(layout_path), "--state-dir", str(state), "--socket", str(state / "hearth.sock")]
    return Process([*args, "--log-format", "json"], log)


def atn_sim(cluster: Cluster, directory: Path, ledger: Path, first: int) -> Process:
    secret = directory / "atn-password"
    secret.write_text(cluster.users["atn"])
    order = cluster.urls[first:] + cluster.urls[:first]
    brokers = [argument for url in order for argument in ("--broker", url)]
    sites = [argument for site in SITES for argument in ("--site", site)]
    timing = ["--heartbeat", str(HEARTBEAT_S), "--lease", "20", "--log-format", "json"]
    account = ["--username", "atn", "--password-file", str(secret), "--db", str(ledger)]
    return Process(["atn-sim", *brokers, *sites, *account, *timing], directory / "atn.log")


def restart_dead_nodes(cluster: Cluster) -> None:
    """Bring back every node a test killed, for the tests after it."""
    dead = [index for index, node in enumerate(cluster.nodes) if not node.running]
    for index in dead:
        cluster.nodes[index].launch()
    deadline = time.monotonic() + 90
    for index in dead:
        cluster.nodes[index].wait_ready(deadline)
        cluster.wait_accepting(index, deadline)


def links_up(process: Process) -> list[str]:
    return [str(e["broker"]) for e in process.events() if e.get("event") in ("ATN link up", "ATN connected")]


PUBLISH_CASES = [
    # (user, topic, allowed): deploy/mosquitto/acl's rules, as RabbitMQ topic permissions
    ("demo-house", "hearth/v1/demo-house/state", True),
    ("demo-house", "hearth/v1/demo-house/telemetry", True),
    ("demo-house", "hearth/v1/demo-house/layout", True),  # the layout summary (issue 16's Layout screen over MQTT)
    ("demo-house", "hearth/v1/demo-house/energy", True),  # the energy summary (the Energy screen over MQTT)
    ("demo-house", "hearth/v1/other-site/energy", False),
    ("demo-house", "homeassistant/sensor/demo-house/tank-top/config", True),
    ("demo-house", "hearth/v1/other-site/state", False),  # another site
    ("demo-house", "hearth/v1/demo-house/atn/dispatch", False),  # only the ATN commands a site
    ("demo-house", "homeassistant/sensor/other-site/x/config", False),
    ("atn", "hearth/v1/demo-house/atn/dispatch", True),
    ("atn", "hearth/v1/demo-house/atn/weather", True),  # the weather forecast: only the ATN sends it
    ("demo-house", "hearth/v1/demo-house/atn/weather", False),
    ("technician", "hearth/v1/demo-house/atn/weather", False),
    ("atn", "hearth/v1/demo-house/state", False),  # cannot forge a site's own topics
    ("monitor", "hearth/v1/demo-house/state", False),  # read-only ...
    ("monitor", "hearth/v1/state-request", True),  # ... but for asking every site for a fresh state
    ("demo-house", "hearth/v1/state-request", False),
    ("monitor", "homeassistant/status", False),
    ("homeassistant", "homeassistant/status", True),
    ("homeassistant", "hearth/v1/demo-house/state", False),
    ("technician", "hearth/v1/demo-house/override", True),
    ("technician", "hearth/v1/demo-house/atn/dispatch", False),
    ("demo-house", "hearth/v1/demo-house/override/reply", True),
    ("demo-house", "hearth/v1/demo-house/override", False),  # only a technician asks
]
SUBSCRIBE_CASES = [
    ("demo-house", "hearth/v1/demo-house/atn/#", True),
    ("demo-house", "hearth/v1/demo-house/atn/weather", True),
    ("demo-house", "hearth/v1/other-site/atn/weather", False),
    ("demo-house", "hearth/v1/other-site/state", False),
    ("demo-house", "hearth/v1/+/state", False),
    ("atn", "hearth/v1/+/telemetry", True),
    ("atn", "hearth/v1/demo-house/atn/dispatch", False),
    ("monitor", "hearth/v1/#", True),
    ("monitor", "homeassistant/#", True),
    ("technician", "hearth/v1/+/state", True),
    ("technician", "hearth/v1/+/override/reply", True),
    ("technician", "hearth/v1/+/telemetry", True),  # the TUI's History with --key
    ("technician", "hearth/v1/+/energy", True),  # the TUI's Energy screen with --key
    ("technician", "hearth/v1/+/atn/#", False),
    ("demo-house", "hearth/v1/demo-house/override", True),
]


def test_publish_permissions_mirror_the_mosquitto_acl(cluster: Cluster) -> None:
    """Every case at once, each on a connection of its own (a denial closes it): a publish the role allows reaches
    a subscriber on another node; one it does not closes the connection (RabbitMQ's answer) and reaches nobody."""
    with cluster.broker(1).subscribe("monitor", "hearth/v1/#") as watcher:
        watcher.subscribe("homeassistant/#")
        cases = []
        try:
            for number, (user, topic, allowed) in enumerate(PUBLISH_CASES):
                client = cluster.broker(0).connect(user)
                payload = f"probe-{number}".encode()
                client.publish(topic, payload, qos=1)
                cases.append((user, topic, allowed, client, (topic, payload)))

            def delivered(case: tuple[Any, ...]) -> bool:
                return case[4] in watcher.messages

            def settled() -> bool:
                return all(delivered(c) if c[2] else not c[3].is_connected() for c in cases)

            wait_for(settled, 15, "every allowed publish delivered and every denied one closed")
            time.sleep(0.3)  # a denied publish that was delivered after all would show by now
            wrong = [
                (c[0], c[1], f"delivered={delivered(c)}", f"connected={c[3].is_connected()}")
                for c in cases
                if delivered(c) != c[2] or c[3].is_connected() != c[2]
            ]
            assert wrong == []
        finally:
            for case in cases:
                disconnect(case[3])


def test_subscribe_permissions_mirror_the_mosquitto_acl(cluster: Cluster) -> None:
    """Every case at once, each on a connection of its own: an allowed subscription gets its SUBACK; a denied one
    is refused (a failure code, or RabbitMQ closes the connection)."""
    cases = []
    try:
        for user, topic, allowed in SUBSCRIBE_CASES:
            client = cluster.broker(2).connect(user)
            subscription = Subscription(client)
            _, mid = client.subscribe(topic, 1)
            cases.append((user, topic, allowed, client, subscription, mid))

        def outcome(case: tuple[Any, ...]) -> str | None:
            _, _, _, client, subscription, mid = case
            reasons = subscription.suback(mid)
            if reasons is not None:
                return "refused" if any(reason.is_failure for reason in reasons) else "granted"
            return None if client.is_connected() else "closed"

        wait_for(lambda: all(outcome(case) is not None for case in cases), 15, "every subscription answered")
        wrong = [(c[0], c[1], outcome(c)) for c in cases if (outcome(c) == "granted") != c[2]]
        assert wrong == []
    finally:
        for case in cases:
            disconnect(case[3])


def test_every_role_has_a_grant() -> None:
    """controller/fleet/rabbitmq.py knows every role deploy/rabbitmq/README.md lists; an unknown one is refused."""
    readme = (ROOT / "deploy" / "rabbitmq" / "README.md").read_text()
    for role in ROLES:
        assert f"| {role} |" in readme
        grant_for(role, "demo-house")
    with pytest.raises(ValueError, match="unknown role"):
        grant_for("operator", "demo-house")  # type: ignore[arg-type]


def test_a_denied_publish_closes_the_connection_and_a_wrong_password_is_refused(cluster: Cluster) -> None:
    """RabbitMQ closes the connection on an ACL denial (mosquitto drops the message). What a controller then
    says ("not authorised", not "Operation timed out") is checked in `node_loss`, alongside the sites' start."""
    node = cluster.broker(0)
    client = node.connect("monitor")
    try:
        client.publish("hearth/v1/demo-house/atn/dispatch", b"{}", qos=1)
        assert wait_for(lambda: not client.is_connected(), 5, "RabbitMQ to close the monitor's connection")
    finally:
        disconnect(client)
    with pytest.raises(BrokerRefused):
        node.connect("atn", password="not-the-password")


def test_provision_a_site_on_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    """`hearth fleet provision --rabbitmq`: the new site may publish its own topics on every node, no other's."""
    node = cluster.nodes[1]
    ctl = f"{CTL} -n {node.name}"
    if os.geteuid() == 0 and Path(DEBIAN_CTL).exists():
        # What an operator runs: as root, Debian's wrapper switches to the rabbitmq user (HOME /var/lib/rabbitmq,
        # so the cluster's private cookie must be given), who could not read a root-owned 0600 file.
        cookie = (cluster.workdir / ".erlang.cookie").read_text().strip()
        ctl = f"{DEBIAN_CTL} -n {node.name} --erlang-cookie {cookie}"
    urls = [argument for url in cluster.urls for argument in ("--url", url)]
    command = [HEARTH, "fleet", "provision", "third-site", "--rabbitmq", "--rabbitmqctl", ctl, *urls]
    result = subprocess.run(
        [*command, "--secret-out", str(tmp_path / "pw")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "HOME": str(cluster.workdir)},  # the cluster's private Erlang cookie
    )
    assert result.returncode == 0, result.stderr
    assert f"url = {json.dumps(cluster.urls)}" in result.stdout
    cluster.users["third-site"] = (tmp_path / "pw").read_text().strip()
    with cluster.broker(0).subscribe("monitor", "hearth/v1/#") as watcher:
        client = cluster.broker(2).connect("third-site")
        try:
            client.publish("hearth/v1/third-site/state", b"mine", qos=1).wait_for_publish(5)
            assert watcher.wait_until(lambda m: ("hearth/v1/third-site/state", b"mine") in m, 5)
            client.publish("hearth/v1/demo-house/state", b"forged", qos=1)
            wait_for(lambda: not client.is_connected(), 5, "RabbitMQ to close third-site's connection")
        finally:
            disconnect(client)


def node_loss(cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest, *, atn_node_too: bool) -> None:
    """Two sites on nodes 0 and 1, the ATN on node 2; kill -9 demo-house's node (and then, once it is back, the
    ATN's node); every site back in ATN mode, every reading and event in the ATN's ledger. Started with them (to
    share the wait), an impostor: site "impostor" with other-site's credentials, whose topics RabbitMQ does not
    let it publish: it must say "not authorised" (the same operation closed twice in a row)."""
    ledger_path = tmp_path / "ledger.sqlite"
    atn = atn_sim(cluster, tmp_path, ledger_path, first=2)
    request.addfinalizer(atn.stop)  # whatever fails below, nothing is left running
    sites = {
        site: hearth_run(layout(cluster, tmp_path, site, first), tmp_path / site, tmp_path / f"{site}.log")
        for site, first in zip(SITES, (0, 1), strict=True)
    }
    impostor = hearth_run(
        layout(cluster, tmp_path, "impostor", 0, user="other-site"), tmp_path / "impostor", tmp_path / "impostor.log"
    )
    for process in (*sites.values(), impostor):
        request.addfinalizer(process.stop)
    if atn_node_too:
        request.addfinalizer(lambda: restart_dead_nodes(cluster))
    try:
        for site, process in sites.items():
            wait_for(lambda p=process: current_mode(p) == "ATN", 40, f"{site} in ATN mode")  # type: ignore[misc]
        assert links_up(sites["demo-house"]) == [cluster.urls[0]]
        denied = wait_for(
            lambda: [e for e in impostor.events() if "not authorised" in str(e.get("error"))], 30, "a denial said"
        )
        assert isinstance(denied, list)
        assert "hearth/v1/impostor/" in str(denied[0]["error"]), denied[0]
        assert impostor.stop() == 0

        # RabbitMQ gives a wildcard subscription no retained message: a monitor joining on the third node asks
        # for a fresh state and gets every site's at once (within the 2 s spread), not at the next period.
        with cluster.broker(2).subscribe("monitor", "hearth/v1/+/state") as monitor:
            asked = time.monotonic()
            cluster.broker(2).pub("monitor", "hearth/v1/state-request", b'{"v": 1}')
            got = monitor.wait_until(lambda m: {t.split("/")[2] for t, _ in m} >= set(SITES), 5)
            assert got, f"states after a request: {[t for t, _ in monitor.messages]}"
            assert time.monotonic() - asked < 4.0

        # Every subscription queue carries the policy that deletes it once orphaned (deploy/rabbitmq/README.md).
        queues = json.loads(cluster.ctl(2, "list_queues", "name", "policy", "--formatter", "json"))
        subscriptions = [q for q in queues if q["name"].startswith("mqtt-subscription-")]
        assert subscriptions and all(q["policy"] == "hearth-orphaned-subscriptions" for q in subscriptions), queues

        demo = sites["demo-house"]
        # demo-house is frozen while its node dies and thawed once the others have settled the loss, as a site on
        # a slow link would come back: its subscription queue, homed on the dead node, stays behind as a record
        # that no other node can declare again, so under the same client id (as before ids per node) the site
        # could subscribe nowhere until the dead node returned. (Reconnecting within milliseconds, before the
        # other nodes have noticed, it may get away with it, as most of the sites of a small fleet did.)
        demo.signal(signal.SIGSTOP)
        try:
            cluster.nodes[0].kill()  # demo-house's node
            time.sleep(5)
        finally:
            demo.signal(signal.SIGCONT)
        # The next node at once, not a backoff on the dead one. (How soon that node takes the client is
        # RabbitMQ's business: when the dead node led the MQTT plugin's client-id Raft cluster, the others refuse
        # or hang new clients until they have elected a new leader, seconds to tens of seconds under load.)
        down = wait_for(lambda: [e for e in demo.events() if e.get("event") == "ATN link down"], 20, "the link down")
        assert isinstance(down, list)
        assert down[0]["broker"] == cluster.urls[0] and down[0]["next_broker"] == cluster.urls[1], down[0]
        assert down[0]["retry_in_s"] == 0, down[0]
        wait_for(lambda: len(links_up(demo)) >= 2, 60, "demo-house to reconnect")
        assert links_up(demo)[-1] != cluster.urls[0]

        if atn_node_too:
            # One node at a time: with two of three dead the last one is a minority and pauses (pause_minority),
            # so the lost node comes back before the next one goes. (Losing a node can close connections on the
            # others once, too: RabbitMQ 3.10 does to a client whose publish in flight was routed to a queue on
            # the lost node, as the ATN's may be; the ATN may have moved.)
            cluster.start_node(0)
            atn_node = cluster.urls.index(links_up(atn)[-1])
            before = len(links_up(atn))
            cluster.nodes[atn_node].kill()  # the ATN's node
            wait_for(lambda: len(links_up(atn)) > before, 20, "the ATN to reconnect")
            assert links_up(atn)[-1] != cluster.urls[atn_node]
            time.sleep(3 * HEARTBEAT_S)
        for site, process in sites.items():
            wait_for(lambda p=process: current_mode(p) == "ATN", 40, f"{site} back in ATN mode")  # type: ignore[misc]
    finally:
        stops = {site: process.stop() for site, process in sites.items()}
    # Everything stored was acknowledged before the clean stop (or is replayed to the next start): wait for the
    # ledger to hold every site's stored readings and events, then check it as an operator would.
    try:
        from controller.store import Store

        for site in SITES:
            with Store.open(tmp_path / site / "demo.sqlite") as store:
                last, events = store.last_seq(), store.last_event_seq()

            def caught_up(site: str = site, last: int = last, events: int = events) -> bool:
                ledger = Ledger.open(ledger_path)
                try:
                    return ledger.contiguous_upto(site) >= last and ledger.events_upto(site) >= events
                finally:
                    ledger.close()

            if not caught_up():  # what was in flight at the stop: a restart replays it
                again = hearth_run(layout(cluster, tmp_path, site, 1), tmp_path / site, tmp_path / f"{site}-2.log")
                try:
                    wait_for(caught_up, 30, f"{site}'s readings and events in the ledger")
                finally:
                    again.stop()
    finally:
        assert atn.stop() == 0
        if atn_node_too:
            restart_dead_nodes(cluster)
    assert stops == dict.fromkeys(SITES, 0)
    check = subprocess.run(
        [HEARTH, "atn-sim", "check", "--db", str(ledger_path)], capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("no gaps") == 2 and check.stdout.count("no event gaps") == 2, check.stdout


@pytest.mark.slow
@pytest.mark.skipif(not LONG, reason="slow (about a minute more): set HEARTH_SLOW=1")
def test_a_node_lost_then_the_atns_node_lost_nothing_lost(
    cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    node_loss(cluster, tmp_path, request, atn_node_too=True)


def test_a_sites_node_lost_it_moves_on_at_once_and_nothing_is_lost(
    cluster: Cluster, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The CI form: one node killed. Last in the module: node 0 stays dead (restarting it costs ~15 s)."""
    node_loss(cluster, tmp_path, request, atn_node_too=False)
