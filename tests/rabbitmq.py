"""A real, private 3-node RabbitMQ cluster (Debian's rabbitmq-server 3.10 and its MQTT plugin) for tests.

`start_cluster(workdir)` makes, inside `workdir`, a private Erlang cookie (HOME is the workdir), and per node a
config from deploy/rabbitmq/rabbitmq.conf with free loopback ports, an enabled-plugins file, and its own
database and log directories; node names are `hearth-<random>-<n>@localhost`, so they never meet a system
RabbitMQ (Debian's package may start one on install; only EPMD's port 4369 is shared). Users come from
`controller.fleet.rabbitmq.definitions`: the controllers "demo-house" and "other-site", "atn", "monitor",
"technician" and "homeassistant". Plain MQTT only (no TLS listener): the tests are about clustering and roles.

Nodes are stopped by their own pid (the beam process, from RABBITMQ_PID_FILE). Use one cluster per module::

    @pytest.fixture(scope="module")
    def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
        cluster = start_cluster(tmp_path_factory.mktemp("rabbitmq"))
        yield cluster
        cluster.stop()
"""

from __future__ import annotations

import atexit
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from controller.fleet.rabbitmq import Role, definitions_json
from tests.broker import HOST, Broker, BrokerRefused, _apt_install, _free_ports, disconnect

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "deploy" / "rabbitmq" / "rabbitmq.conf"
SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"
CTL = "/usr/lib/rabbitmq/bin/rabbitmqctl"
START_TIMEOUT_S = 90.0
# One scheduler and no busy-waiting: three nodes share two cores with everything else.
ERL_ARGS = "+S 1:1 +sbwt none +sbwtdcpu none +sbwtdio none -kernel inet_dist_use_interface {127,0,0,1}"
_running: set[Node] = set()


def ensure_rabbitmq() -> None:
    """Install Debian's rabbitmq-server if it is missing (it pulls Erlang in)."""
    if not Path(SERVER).exists():
        _apt_install(["rabbitmq-server"])
    if not Path(SERVER).exists():
        raise RuntimeError(f"{SERVER} still missing after apt-get install rabbitmq-server")


@dataclass(eq=False)
class Node:
    """One node of the cluster: MQTT on `mqtt_port`, Erlang distribution on `dist_port`."""

    name: str
    mqtt_port: int
    dist_port: int
    workdir: Path
    home: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mqtt://{HOST}:{self.mqtt_port}"

    @property
    def pid_file(self) -> Path:
        return self.workdir / "beam.pid"

    @property
    def log_file(self) -> Path:
        return self.workdir / "log" / f"{self.name}.log"

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "HOME": str(self.home),  # the private Erlang cookie lives here
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_USE_LONGNAME": "false",
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.workdir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.workdir / "log"),
            "RABBITMQ_CONFIG_FILE": str(self.workdir / "rabbitmq.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.workdir / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": ERL_ARGS,
        }

    def log_tail(self, lines: int = 20) -> str:
        parts = []
        for path in (self.log_file, self.workdir / "stdout"):
            if path.exists():
                parts.append(f"--- {path.name}\n" + "\n".join(path.read_text(errors="replace").splitlines()[-lines:]))
        return "\n".join(parts) or "(no output)"

    def launch(self) -> None:
        """Start the node (it joins the others by itself); `wait_ready` waits for its MQTT listener."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        self.pid_file.unlink(missing_ok=True)
        with (self.workdir / "stdout").open("ab") as out:
            self.process = subprocess.Popen(
                [SERVER], cwd=self.workdir, env=self.environment(), stdin=subprocess.DEVNULL, stdout=out, stderr=out
            )
        _running.add(self)

    def wait_ready(self, deadline: float) -> None:
        while not _accepts(self.mqtt_port):
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode} at start:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} no MQTT on {self.mqtt_port} in time:\n{self.log_tail()}")
            time.sleep(0.2)

    @property
    def beam_pid(self) -> int | None:
        """The Erlang VM's pid (the start script is its parent)."""
        try:
            return int(self.pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9 the VM, as in a crash; its start script then exits."""
        self._signal(signal.SIGKILL)

    def stop(self) -> None:
        """SIGTERM the VM (a clean shutdown); SIGKILL after 20 s."""
        self._signal(signal.SIGTERM)

    def _signal(self, signum: signal.Signals) -> None:
        self.send(signum)
        self.wait_stopped()

    def send(self, signum: signal.Signals) -> None:
        """Signal the VM (or, before it wrote its pid, the start script) and return at once."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        pid = self.beam_pid
        with contextlib.suppress(ProcessLookupError):
            if pid is not None:
                os.kill(pid, signum)
            else:  # not yet far enough to write its pid: the script's whole process group
                process.send_signal(signum)

    def wait_stopped(self) -> None:
        """Wait up to 20 s for the node to end, then kill -9 it."""
        process = self.process
        if process is None or process.poll() is not None:
            _running.discard(self)
            return
        pid = self.beam_pid
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            process.kill()
            process.wait(timeout=10)
        _running.discard(self)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


@dataclass(eq=False)
class Cluster:
    """Three running nodes, and the users every test may connect as."""

    nodes: list[Node]
    users: dict[str, str]
    roles: dict[str, Role]
    workdir: Path

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def broker(self, index: int) -> Broker:
        """One node as a `tests.broker.Broker`, for its `connect`/`subscribe`/`sub` helpers (no TLS port)."""
        node = self.nodes[index]
        return Broker(HOST, node.mqtt_port, node.mqtt_port, self.workdir / "no-ca", self.workdir, self.users)

    def ctl(self, node: int, *arguments: str, timeout_s: float = 60.0) -> str:
        """rabbitmqctl against one node; RuntimeError with its output on failure."""
        target = self.nodes[node]
        result = subprocess.run(
            [CTL, "-n", target.name, *arguments],
            env=target.environment(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(arguments)}: {result.stderr.strip() or result.stdout.strip()}")
        return result.stdout

    def start_node(self, index: int) -> None:
        node = self.nodes[index]
        node.launch()
        deadline = time.monotonic() + START_TIMEOUT_S
        node.wait_ready(deadline)
        self.wait_accepting(index, deadline)

    def wait_accepting(self, index: int, deadline: float) -> None:
        """Until the node takes an MQTT connection. Its listener opens before the plugin's client-id tracking
        (a Raft cluster) is ready; until then it refuses clients ("client ID registration timed out")."""
        while True:
            try:
                disconnect(self.broker(index).connect("monitor", timeout_s=5))
                return
            except (OSError, TimeoutError, BrokerRefused) as error:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{self.nodes[index].name} takes no MQTT client: {error}") from error
                time.sleep(0.5)

    def stop(self) -> None:
        """SIGTERM every node at once, then wait for each (one by one took ~10 s)."""
        for node in self.nodes:
            node.send(signal.SIGTERM)
        for node in self.nodes:
            node.wait_stopped()


def start_cluster(workdir: Path, *, sites: tuple[str, ...] = ("demo-house", "other-site"), size: int = 3) -> Cluster:
    """Set up and start a private cluster in `workdir`; the caller stops it (`Cluster.stop`)."""
    ensure_rabbitmq()
    workdir.mkdir(parents=True, exist_ok=True)
    cookie = workdir / ".erlang.cookie"
    cookie.write_text(secrets.token_hex(16).upper())
    cookie.chmod(0o400)
    roles: dict[str, Role] = {site: "controller" for site in sites}
    roles.update(atn="atn", monitor="monitor", technician="technician", homeassistant="homeassistant")
    users = {name: secrets.token_urlsafe(12) for name in roles}
    defs = workdir / "definitions.json"
    defs.write_text(definitions_json({name: (role, users[name]) for name, role in roles.items()}))
    defs.chmod(0o600)
    tag = secrets.token_hex(3)
    ports = _free_ports(2 * size)
    nodes = [
        Node(f"hearth-{tag}-{n + 1}@localhost", ports[2 * n], ports[2 * n + 1], workdir / f"node{n + 1}", workdir)
        for n in range(size)
    ]
    for node in nodes:
        node.workdir.mkdir(exist_ok=True)
        (node.workdir / "enabled_plugins").write_text("[rabbitmq_mqtt].\n")
        (node.workdir / "rabbitmq.conf").write_text(config_for(node, nodes, defs))
    cluster = Cluster(nodes, users, roles, workdir)
    try:
        # One node at a time: the first forms the cluster (and the MQTT plugin's client-id Raft cluster) alone,
        # then each of the others joins it. Started together, the client-id tracking could stay without a
        # leader; two joining at once each waited on the other's (the MQTT plugin's start ran into its 100 s
        # `leader_call` timeout on both, 00:12 UTC on 2 December, an unloaded machine).
        for index, node in enumerate(nodes):
            deadline = time.monotonic() + START_TIMEOUT_S
            node.launch()
            node.wait_ready(deadline)
            cluster.wait_accepting(index, deadline)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def config_for(node: Node, nodes: list[Node], definitions_file: Path) -> str:
    """deploy/rabbitmq/rabbitmq.conf with this cluster's node names, the node's MQTT port on loopback, the
    definitions file, no TLS listener; fails on a key it does not know, so the template cannot drift away."""
    lines: list[str] = []
    for line in TEMPLATE.read_text().splitlines():
        key = line.split("=", 1)[0].strip() if "=" in line and not line.startswith("#") else ""
        if not key:
            lines.append(line)
        elif key.startswith("cluster_formation.classic_config.nodes."):
            number = int(key.rsplit(".", 1)[1])
            if number == 1:
                lines += [f"cluster_formation.classic_config.nodes.{i + 1} = {n.name}" for i, n in enumerate(nodes)]
        elif key == "mqtt.listeners.tcp.1":
            lines.append(f"{key} = {HOST}:{node.mqtt_port}")
        elif key == "mqtt.listeners.ssl.default" or key.startswith("ssl_options."):
            continue
        elif key == "definitions.local.path":
            lines.append(f"{key} = {definitions_file}")
        elif key in (
            "cluster_formation.peer_discovery_backend",
            "cluster_partition_handling",
            "listeners.tcp",
            "mqtt.allow_anonymous",
            "mqtt.vhost",
            "mqtt.exchange",
            "mqtt.retained_message_store",
            "definitions.import_backend",
            "log.console",
            "log.file.level",
        ):
            lines.append(line)
        else:
            raise ValueError(f"deploy/rabbitmq/rabbitmq.conf has a key tests/rabbitmq.py does not know: {line!r}")
    return "\n".join(lines) + "\n"


def connect(cluster: Cluster, node: int, user: str) -> mqtt.Client:
    """A paho client connected to one node as `user` (see `tests.broker.Broker.connect`)."""
    return cluster.broker(node).connect(user)


@atexit.register
def _kill_leftovers() -> None:
    """A test run that dies without stopping its cluster must not leave Erlang VMs behind."""
    for node in list(_running):
        node.kill()


__all__ = ["Cluster", "Node", "connect", "ensure_rabbitmq", "start_cluster"]
