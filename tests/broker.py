"""A real, private mosquitto for tests: TLS, passwords and the ACL of deploy/mosquitto, on free loopback ports.

`start_broker(workdir)` builds everything a broker needs inside `workdir` (a throwaway CA and a server
certificate for localhost/127.0.0.1, a password file, the ACL template, a config made from the deployment
template) and starts mosquitto as a subprocess. Users: the site's controller (username = site id, "demo-house"
by default), a second controller "other-site", "atn", "monitor", "homeassistant" and "technician".

Import it from test modules (it is not a conftest) and stop the broker when done, e.g. in a module fixture::

    @pytest.fixture(scope="module")
    def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
        broker = start_broker(tmp_path_factory.mktemp("broker"))
        yield broker
        broker.stop()

The broker log (every packet, denied publishes included) is `workdir/mosquitto.log`; start-up failures quote it.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = ROOT / "deploy" / "mosquitto"
HOST = "127.0.0.1"
START_TIMEOUT_S = 5.0

# Each command the broker needs, with the Debian package that provides it.
_PACKAGES = {
    "mosquitto": "mosquitto",
    "mosquitto_passwd": "mosquitto",
    "mosquitto_pub": "mosquitto-clients",
    "openssl": "openssl",
}
# mosquitto lives in /usr/sbin, which is not on an ordinary user's PATH on Debian.
_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")
_apt_updated = False
_running: set[Broker] = set()


class BrokerRefused(ConnectionError):
    """The broker answered CONNECT with a failure (e.g. "Not authorized" for a wrong password)."""

    def __init__(self, reason: ReasonCode) -> None:
        super().__init__(f"broker refused the connection: {reason}")
        self.reason = reason


def _find(command: str) -> str | None:
    found = shutil.which(command)
    if found:
        return found
    for directory in _SBIN_DIRS:
        candidate = Path(directory) / command
        if os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def _apt_install(packages: list[str]) -> None:
    """Install Debian packages, as root or through non-interactive sudo; RuntimeError says why it failed."""
    global _apt_updated
    if os.geteuid() == 0:
        prefix: list[str] = []
    elif shutil.which("sudo"):
        prefix = ["sudo", "-n"]
    else:
        raise RuntimeError(f"tests need the Debian packages {' '.join(packages)}: not root and no sudo to install")
    # Through `env`, because sudo resets the environment.
    apt = [*prefix, "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    steps = [] if _apt_updated else [[*apt, "update", "-qq"]]
    steps.append([*apt, "install", "-y", "-qq", "--no-install-recommends", *packages])
    for step in steps:
        try:
            result = subprocess.run(step, capture_output=True, text=True, timeout=600, check=False)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RuntimeError(f"could not run {' '.join(step)}: {error}") from error
        if result.returncode != 0:
            output = (result.stderr or result.stdout).strip()[-2000:]
            raise RuntimeError(
                f"installing {' '.join(packages)} failed ({' '.join(step)} exited {result.returncode}); "
                f"install them by hand (apt-get install {' '.join(packages)}):\n{output}"
            )
        if step[-2:] == ["update", "-qq"]:
            _apt_updated = True


def ensure_mosquitto() -> str:
    """Path of the mosquitto binary; installs mosquitto, mosquitto-clients and openssl first if any is missing."""
    missing = sorted({package for command, package in _PACKAGES.items() if _find(command) is None})
    if missing:
        _apt_install(missing)
    still_missing = [command for command in _PACKAGES if _find(command) is None]
    if still_missing:
        raise RuntimeError(f"still missing after apt-get install: {', '.join(still_missing)}")
    binary = _find("mosquitto")
    assert binary is not None
    return binary


def _run(command: list[str], what: str, *, stdin: bytes | None = None, timeout_s: float = 10.0) -> None:
    """Run a helper command; RuntimeError with its output if it fails."""
    try:
        result = subprocess.run(command, input=stdin, capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as error:
        raise RuntimeError(f"{what}: timed out after {timeout_s} s") from error
    if result.returncode != 0:
        output = (result.stderr or result.stdout).decode(errors="replace").strip()
        raise RuntimeError(f"{what}: {command[0]} exited {result.returncode}: {output}")


def _make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for localhost/127.0.0.1 signed by it: (ca, cert, key)."""
    directory.mkdir(parents=True, exist_ok=True)
    openssl = _find("openssl") or "openssl"
    ca_key, ca_cert = directory / "ca.key", directory / "ca.crt"
    server_key, server_csr, server_cert = directory / "server.key", directory / "server.csr", directory / "server.crt"
    extensions = directory / "server.ext"
    extensions.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature\n"
        "extendedKeyUsage = serverAuth\n"
        "subjectAltName = DNS:localhost, IP:127.0.0.1\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    ec_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    ca_extensions = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    steps = {
        "creating the test CA": [
            *["req", "-x509", *ec_key, "-keyout", str(ca_key), "-out", str(ca_cert), "-days", "2"],
            *["-subj", "/CN=Hearth test CA", *ca_extensions],
        ],
        "creating the server key": [
            *["req", "-new", *ec_key, "-keyout", str(server_key), "-out", str(server_csr), "-subj", "/CN=localhost"],
        ],
        "signing the server certificate": [
            *["x509", "-req", "-in", str(server_csr), "-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial"],
            *["-out", str(server_cert), "-days", "2", "-extfile", str(extensions)],
        ],
    }
    for what, arguments in steps.items():
        _run([openssl, *arguments], what)
    for key in (ca_key, server_key):
        key.chmod(0o600)
    return ca_cert, server_cert, server_key


def _free_ports(count: int) -> list[int]:
    """Distinct loopback ports that were free a moment ago (held open together so they differ)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _config_from_template(template: str, replacements: dict[str, str], ports: tuple[int, int], log_file: Path) -> str:
    """deploy/mosquitto/hearth.conf with the test's paths, ports (both on loopback) and log file.

    Fails on a listener it does not know, so a changed template cannot silently leave the tests behind.
    """
    port, tls_port = ports
    lines: list[str] = []
    for line in template.splitlines():
        words = line.split()
        key = words[0] if words and not line.startswith("#") else ""
        if key in replacements:
            lines.append(f"{key} {replacements[key]}")
        elif key == "listener":
            if words[1] == "1883":
                lines.append(f"listener {port} {HOST}")
            elif words[1] == "8883":
                lines.append(f"listener {tls_port} {HOST}")
            else:
                raise ValueError(f"hearth.conf has a listener tests/broker.py does not know: {line!r}")
        elif key == "user":
            # Started as root, mosquitto would switch to user mosquitto, which cannot read the temporary files.
            if os.geteuid() == 0:
                lines.append("user root")
        elif key in ("log_dest", "log_type"):
            continue
        else:
            lines.append(line)
    header = [f"log_dest file {log_file}", "log_type all", "log_timestamp_format %H:%M:%S"]
    return "\n".join(header + lines) + "\n"


@dataclass(eq=False)
class Broker:
    """A running private mosquitto: plain MQTT on `port`, TLS on `tls_port`, both on loopback."""

    host: str
    port: int
    tls_port: int
    ca_file: Path
    workdir: Path
    users: dict[str, str]
    """username -> password: the site's controller (username = site id), "other-site", "atn", "monitor",
    "homeassistant", "technician"."""
    binary: str = field(repr=False, default="mosquitto")
    process: subprocess.Popen[bytes] | None = field(repr=False, default=None)

    @property
    def config_file(self) -> Path:
        """The mosquitto config this broker runs."""
        return self.workdir / "mosquitto.conf"

    @property
    def log_file(self) -> Path:
        """mosquitto's own log (log_type all)."""
        return self.workdir / "mosquitto.log"

    @property
    def persistence_file(self) -> Path:
        """The persistence database (retained messages, sessions, queued messages)."""
        return self.workdir / "data" / "mosquitto.db"

    def log_tail(self, lines: int = 30) -> str:
        """The end of the broker log and of its stderr, for error messages."""
        parts = []
        for path in (self.log_file, self.workdir / "mosquitto.stderr"):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                if text:
                    parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts) or "(no broker output)"

    def start(self) -> None:
        """Start mosquitto and wait until both listeners accept connections (RuntimeError after 5 s)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("broker is already running")
        with (self.workdir / "mosquitto.stderr").open("ab") as stderr:
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config_file)], stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr
            )
        _running.add(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        pending = [self.port, self.tls_port]
        while pending:
            if self.process.poll() is not None:
                _running.discard(self)
                raise RuntimeError(f"mosquitto exited with {self.process.returncode} at start:\n{self.log_tail()}")
            if self._accepts(pending[0]):
                pending.pop(0)
                continue
            if time.monotonic() > deadline:
                self.kill()
                where = f"{self.host}:{pending[0]}"
                raise RuntimeError(f"mosquitto did not listen on {where} within 5 s:\n{self.log_tail()}")
            time.sleep(0.02)

    def _accepts(self, port: int) -> bool:
        """Whether `port` takes connections; on the TLS port, a full handshake (a bare TCP probe logs an error)."""
        try:
            with socket.create_connection((self.host, port), timeout=0.5) as sock:
                if port == self.tls_port:
                    context = ssl.create_default_context(cafile=str(self.ca_file))
                    context.wrap_socket(sock, server_hostname=self.host).close()
        except OSError:  # ssl.SSLError is an OSError too
            return False
        return True

    def stop(self) -> None:
        """Stop cleanly (SIGTERM; mosquitto saves its persistence database) and wait; SIGKILL after 5 s."""
        self._signal_and_wait(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL, as in a crash: whatever was not yet saved to the persistence database is lost."""
        self._signal_and_wait(signal.SIGKILL)

    def restart(self) -> None:
        """Start again on the same ports with the same persistence database (stops it first if running)."""
        self.stop()
        self.start()

    def _signal_and_wait(self, signum: signal.Signals) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            _running.discard(self)
            return
        process.send_signal(signum)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        _running.discard(self)

    def save(self) -> None:
        """Make mosquitto write its persistence database now (SIGUSR1) and wait until it has."""
        process = self.process
        if process is None or process.poll() is not None:
            raise RuntimeError("broker is not running")

        def identity() -> tuple[int, int, int] | None:
            try:
                stat = self.persistence_file.stat()
            except FileNotFoundError:
                return None
            return (stat.st_ino, stat.st_mtime_ns, stat.st_size)

        before = identity()
        process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + START_TIMEOUT_S
        while identity() == before:
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not save {self.persistence_file} within 5 s:\n{self.log_tail()}")
            time.sleep(0.01)

    def pub(self, user: str, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False) -> None:
        """Publish one message as `user` with mosquitto_pub over the plain listener (MQTT 3.1.1).

        Returns once the broker has acknowledged it (QoS 1/2). A publish the ACL denies returns normally too:
        mosquitto drops it silently. An empty payload is sent as a zero-length message (clears a retained one).
        """
        data = payload.encode() if isinstance(payload, str) else payload
        command = [_find("mosquitto_pub") or "mosquitto_pub", *self._client_args(user), "-t", topic, "-q", str(qos)]
        if retain:
            command.append("-r")
        command += ["-s"] if data else ["-n"]
        _run(command, f"mosquitto_pub as {user} to {topic}", stdin=data)

    def _client_args(self, user: str) -> list[str]:
        return ["-h", self.host, "-p", str(self.port), "-u", user, "-P", self.users[user], "-V", "mqttv311"]

    def connect(
        self,
        user: str,
        *,
        password: str | None = None,
        tls: bool = False,
        ssl_context: ssl.SSLContext | None = None,
        protocol: MQTTProtocolVersion = MQTTProtocolVersion.MQTTv311,
        timeout_s: float = 5.0,
    ) -> mqtt.Client:
        """A paho client connected as `user` with its network loop running; close it with `disconnect(client)`.

        `password` defaults to the user's own. With `tls`, the TLS listener is used and the client trusts this
        broker's CA, or exactly what `ssl_context` trusts. Raises BrokerRefused when CONNACK is a failure,
        ssl.SSLError when the TLS handshake fails.
        """
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=protocol, reconnect_on_failure=False)
        client.username_pw_set(user, self.users.get(user, "") if password is None else password)
        client.connect_timeout = timeout_s
        if tls:
            context = ssl_context or ssl.create_default_context(cafile=str(self.ca_file))
            client.tls_set_context(context)
        connected = threading.Event()
        outcome: list[ReasonCode] = []

        def on_connect(_c: mqtt.Client, _u: Any, _f: mqtt.ConnectFlags, reason: ReasonCode, _p: Any) -> None:
            outcome.append(reason)
            connected.set()

        client.on_connect = on_connect
        client.connect(self.host, self.tls_port if tls else self.port, keepalive=30)
        client.loop_start()
        if not connected.wait(timeout_s):
            disconnect(client)
            raise TimeoutError(f"no CONNACK within {timeout_s} s:\n{self.log_tail()}")
        if outcome[0].is_failure:
            disconnect(client)
            raise BrokerRefused(outcome[0])
        return client

    @contextmanager
    def subscribe(self, user: str, topic: str, qos: int = 1) -> Iterator[Subscription]:
        """Subscribe as `user` to a topic filter; the subscription is active (SUBACK received) on entry.

        A filter the ACL does not allow is still acknowledged by mosquitto; it just never delivers anything.
        """
        with ExitStack() as stack:
            client = self.connect(user)
            stack.callback(disconnect, client)
            subscription = Subscription(client)
            subscription.subscribe(topic, qos)
            yield subscription

    def sub(self, user: str, topic: str, count: int, timeout_s: float = 5.0) -> list[tuple[str, bytes]]:
        """Up to `count` messages `user` receives on `topic` within `timeout_s` (fewer on timeout, in order).

        Subscribes first, so this sees retained messages and whatever is published while it waits; to publish
        after the subscription is known to be active, use `subscribe`.
        """
        with self.subscribe(user, topic) as subscription:
            return subscription.wait_for(count, timeout_s)


class Subscription:
    """Messages arriving on a connected paho client, collected in arrival order (thread-safe)."""

    def __init__(self, client: mqtt.Client) -> None:
        self.client = client
        self.messages: list[tuple[str, bytes]] = []
        self._changed = threading.Condition()
        self._subacks: dict[int, list[ReasonCode]] = {}
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append((message.topic, bytes(message.payload)))
            self._changed.notify_all()

    def _on_subscribe(self, _c: mqtt.Client, _u: Any, mid: int, reasons: list[ReasonCode], _p: Any) -> None:
        with self._changed:
            self._subacks[mid] = reasons
            self._changed.notify_all()

    def subscribe(self, topic: str, qos: int = 1, timeout_s: float = 5.0) -> None:
        """Subscribe to one more filter and wait for its SUBACK; PermissionError if the broker refused it."""
        result, mid = self.client.subscribe(topic, qos)
        if result != mqtt.MQTT_ERR_SUCCESS or mid is None:
            raise ConnectionError(f"subscribing to {topic} failed: {mqtt.error_string(result)}")
        with self._changed:
            if not self._changed.wait_for(lambda: mid in self._subacks, timeout_s):
                raise TimeoutError(f"no SUBACK for {topic} within {timeout_s} s")
            reasons = self._subacks.pop(mid)
        if any(reason.is_failure for reason in reasons):
            raise PermissionError(f"subscription to {topic} refused: {[str(reason) for reason in reasons]}")

    def suback(self, mid: int) -> list[ReasonCode] | None:
        """The reason codes of the SUBACK for `mid`, or None while none has come (see `subscribe`)."""
        with self._changed:
            return self._subacks.get(mid)

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[tuple[str, bytes]]:
        """The first `count` messages, waiting up to `timeout_s` for them; fewer if they did not all come."""
        with self._changed:
            self._changed.wait_for(lambda: len(self.messages) >= count, timeout_s)
            return list(self.messages[:count])

    def wait_until(self, predicate: Callable[[list[tuple[str, bytes]]], bool], timeout_s: float = 5.0) -> bool:
        """Wait until `predicate(messages)` holds; False on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.messages), timeout_s)


def disconnect(client: mqtt.Client) -> None:
    """Disconnect a client from `Broker.connect` and stop its network thread."""
    client.disconnect()
    client.loop_stop()


def start_broker(workdir: Path, *, site: str = "demo-house") -> Broker:
    """Set up and start a private broker in `workdir` (created if needed); the caller stops it."""
    binary = ensure_mosquitto()
    workdir.mkdir(parents=True, exist_ok=True)
    ca_file, cert_file, key_file = _make_certificates(workdir / "tls")
    names = (site, "other-site", "atn", "monitor", "homeassistant", "technician")
    users = {name: secrets.token_urlsafe(12) for name in names}
    password_file = workdir / "passwd"
    password_file.write_text("")
    password_file.chmod(0o600)
    for name, password in users.items():
        _run([_find("mosquitto_passwd") or "mosquitto_passwd", "-b", str(password_file), name, password], "passwd")
    acl_file = workdir / "acl"
    shutil.copyfile(TEMPLATE_DIR / "acl", acl_file)
    (workdir / "data").mkdir(exist_ok=True)
    port, tls_port = _free_ports(2)
    replacements = {
        "password_file": str(password_file),
        "acl_file": str(acl_file),
        "persistence_location": f"{workdir / 'data'}/",
        "cafile": str(ca_file),
        "certfile": str(cert_file),
        "keyfile": str(key_file),
    }
    template = (TEMPLATE_DIR / "hearth.conf").read_text()
    config = _config_from_template(template, replacements, (port, tls_port), workdir / "mosquitto.log")
    broker = Broker(HOST, port, tls_port, ca_file, workdir, users, binary=binary)
    broker.config_file.write_text(config)
    broker.start()
    return broker


@atexit.register
def _kill_leftovers() -> None:
    """A test run that dies without stopping its brokers must not leave mosquitto processes behind."""
    for broker in list(_running):
        broker.kill()
