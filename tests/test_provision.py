"""`hearth fleet provision` on a real private mosquitto (the RabbitMQ side is in tests/test_cluster.py)."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.fleet.provision import (
    ProvisionError,
    acl_user_lines,
    check_name,
    link_section,
    mosquitto_acl_block,
    mosquitto_password_line,
)
from controller.links.config import AtnLink
from tests.broker import Broker, BrokerRefused, disconnect, start_broker

HEARTH = str(Path(sys.executable).parent / "hearth")


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    running = start_broker(tmp_path_factory.mktemp("broker"))
    yield running
    running.stop()


def provision(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([HEARTH, "fleet", "provision", *arguments], capture_output=True, text=True, timeout=60)


def reload(broker: Broker) -> None:
    assert broker.process is not None
    broker.process.send_signal(signal.SIGHUP)
    time.sleep(0.5)  # mosquitto rereads the password file and the ACL on SIGHUP


def test_a_new_site_and_a_new_monitor_on_mosquitto(broker: Broker, tmp_path: Path) -> None:
    passwd, acl = broker.workdir / "passwd", broker.workdir / "acl"
    site = provision(
        *["new-site", "--mosquitto", "--passwd", str(passwd), "--acl", str(acl)],
        *["--secret-out", str(tmp_path / "new-site.pw"), "--url", f"mqtt://127.0.0.1:{broker.port}"],
        *["--url", "mqtt://127.0.0.1:1"],
    )
    assert site.returncode == 0, site.stderr
    assert stat.S_IMODE(os.stat(tmp_path / "new-site.pw").st_mode) == 0o600
    password = (tmp_path / "new-site.pw").read_text().strip()
    assert password not in passwd.read_text() and "new-site:$7$101$" in passwd.read_text()
    # The printed link section is a valid [links.atn] table with both brokers, in order.
    import tomllib

    link = AtnLink.model_validate(tomllib.loads(site.stdout)["links"]["atn"])
    assert [str(b) for b in link.brokers] == [f"mqtt://127.0.0.1:{broker.port}", "mqtt://127.0.0.1:1"]
    assert link.username == "new-site"

    monitor = provision("anna", "--role", "monitor", "--mosquitto", "--passwd", str(passwd), "--acl", str(acl))
    assert monitor.returncode == 0, monitor.stderr
    anna = Path("anna.mqtt-password")
    try:
        broker.users["new-site"], broker.users["anna"] = password, anna.read_text().strip()
        reload(broker)
        # The site publishes its own topics (the ACL's patterns), anna reads them and may not publish there.
        with broker.subscribe("anna", "hearth/v1/#") as watcher:
            broker.pub("new-site", "hearth/v1/new-site/state", b"mine")
            broker.pub("new-site", "hearth/v1/demo-house/state", b"not mine")
            broker.pub("anna", "hearth/v1/new-site/state", b"forged")
            broker.pub("anna", "hearth/v1/state-request", b'{"v": 1}')
            watcher.wait_for(2, 3)
            time.sleep(0.3)
            assert watcher.messages == [
                ("hearth/v1/new-site/state", b"mine"),
                ("hearth/v1/state-request", b'{"v": 1}'),
            ]
        with pytest.raises(BrokerRefused):
            broker.connect("new-site", password="wrong")
        disconnect(broker.connect("new-site"))
    finally:
        anna.unlink(missing_ok=True)
    # anna again, as a monitor: her block is the monitor role's, so only her password is new (no second block).
    before = acl.read_text()
    again = provision("anna", "--role", "monitor", "--mosquitto", "--passwd", str(passwd), "--acl", str(acl))
    Path("anna.mqtt-password").unlink(missing_ok=True)
    assert again.returncode == 0 and "grants it the monitor role already" in again.stderr
    assert acl.read_text() == before
    # As a technician: her block grants something else, and is never edited behind the operator's back.
    other = provision("anna", "--role", "technician", "--mosquitto", "--passwd", str(passwd), "--acl", str(acl))
    assert other.returncode == 1 and "already has a block for user anna that is not the technician role's" in (
        other.stderr
    )
    assert "lacks topic write hearth/v1/+/override" in other.stderr and "has topic read hearth/v1/#" in other.stderr
    assert acl.read_text() == before and not Path("anna.mqtt-password").exists()


def test_the_shipped_acls_users_are_provisioned_as_they_stand(broker: Broker, tmp_path: Path) -> None:
    """deploy/mosquitto/acl has blocks for atn, monitor, technician and homeassistant: `provision --role monitor
    monitor` gives monitor a new password and leaves the ACL as it is (it was refused before)."""
    passwd, acl = broker.workdir / "passwd", broker.workdir / "acl"
    before = acl.read_text()
    for role in ("atn", "monitor"):
        result = provision(
            *[role, "--role", role, "--mosquitto", "--passwd", str(passwd), "--acl", str(acl)],
            *["--secret-out", str(tmp_path / f"{role}.pw")],
        )
        assert result.returncode == 0, result.stderr
        assert f"grants it the {role} role already" in result.stderr
        broker.users[role] = (tmp_path / f"{role}.pw").read_text().strip()
    assert acl.read_text() == before
    reload(broker)
    with broker.subscribe("monitor", "hearth/v1/#") as watcher:
        broker.pub("atn", "hearth/v1/demo-house/atn/heartbeat", b"beat")
        assert watcher.wait_for(1, 3)


def test_provisions_blocks_are_the_shipped_acls() -> None:
    """One ACL, two places: a role's block from `provision` is deploy/mosquitto/acl's (the technician's lacked
    layout, telemetry and energy)."""
    shipped = (Path(__file__).resolve().parent.parent / "deploy" / "mosquitto" / "acl").read_text()
    for role in ("atn", "monitor", "technician", "homeassistant"):
        block = mosquitto_acl_block(role, role)
        assert acl_user_lines(shipped, role) == {line for line in block.splitlines() if line.startswith("topic ")}
        assert acl_user_lines(block, role) == acl_user_lines(shipped, role)
    assert acl_user_lines(shipped, "anna") is None


@pytest.mark.parametrize(
    ("name", "role", "reason"),
    [
        ("atn", "controller", "reserved"),
        ("Demo House", "controller", "not a user name"),
        ("a/b", "monitor", "not a user name"),
        ("x", "operator", "unknown role"),
    ],
)
def test_bad_names_and_roles_are_refused(name: str, role: str, reason: str) -> None:
    with pytest.raises(ProvisionError, match=reason):
        check_name(name, role)  # type: ignore[arg-type]


def test_a_missing_acl_is_a_clear_error(tmp_path: Path) -> None:
    result = provision("site-x", "--mosquitto", "--passwd", str(tmp_path / "p"), "--acl", str(tmp_path / "nope"))
    assert result.returncode == 1 and "no such ACL file" in result.stderr


def test_password_line_format() -> None:
    line = mosquitto_password_line("s", "pw", salt=bytes(12))
    assert line.startswith("s:$7$101$AAAAAAAAAAAAAAAA$") and len(line.split("$")[-1]) == 88
    assert 'url = ["mqtts://a:8883"]' in link_section("s", ["mqtts://a:8883"], "mqtt-password")
