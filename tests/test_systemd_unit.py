"""The systemd unit and sysusers files: required settings, and systemd's own tools when they are installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

SYSTEMD = Path(__file__).resolve().parent.parent / "systemd"
UNIT = SYSTEMD / "hearth.service"
SYSUSERS = SYSTEMD / "hearth.sysusers.conf"

Unit = dict[str, dict[str, list[str]]]


def parse_unit(text: str) -> Unit:
    """Sections -> key -> every value assigned, in order (systemd keys such as DeviceAllow= repeat)."""
    unit: Unit = {}
    section: dict[str, list[str]] | None = None
    lines = iter(text.splitlines())
    for raw in lines:
        line = raw.strip()
        while line.endswith("\\"):  # a continuation line
            line = line[:-1] + " " + next(lines, "").strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
            continue
        assert section is not None, f"assignment outside a section: {line!r}"
        key, sep, value = line.partition("=")
        assert sep, f"not an assignment: {line!r}"
        section.setdefault(key.strip(), []).append(value.strip())
    return unit


@pytest.fixture(scope="module")
def unit() -> Unit:
    return parse_unit(UNIT.read_text())


def single(unit: Unit, section: str, key: str) -> str:
    values = unit.get(section, {}).get(key)
    assert values is not None, f"[{section}] {key}= is missing"
    assert len(values) == 1, f"[{section}] {key}= is set {len(values)} times: {values}"
    return values[0]


REQUIRED = [
    ("Type", "notify"),
    ("NotifyAccess", "main"),
    ("WatchdogSec", "30"),
    ("Restart", "always"),
    ("RestartSec", "5"),
    ("User", "hearth"),
    ("Group", "hearth"),
    ("StateDirectory", "hearth"),
    ("RuntimeDirectory", "hearth"),
    ("RuntimeDirectoryPreserve", "no"),
    ("ConfigurationDirectory", "hearth"),
    ("ExecStartPre", "/opt/hearth/.venv/bin/hearth layout check /etc/hearth/layout.toml"),
    (
        "ExecStart",
        "/opt/hearth/.venv/bin/hearth run --layout /etc/hearth/layout.toml --state-dir ${STATE_DIRECTORY} "
        "--log-format json",
    ),
    ("ProtectSystem", "strict"),
    ("ProtectHome", "yes"),
    ("NoNewPrivileges", "yes"),
    ("PrivateTmp", "yes"),
    ("ProtectKernelTunables", "yes"),
    ("ProtectKernelModules", "yes"),
    ("ProtectControlGroups", "yes"),
    ("RestrictRealtime", "yes"),
    ("RestrictSUIDSGID", "yes"),
    ("LockPersonality", "yes"),
    ("MemoryDenyWriteExecute", "yes"),
    ("SystemCallArchitectures", "native"),
    ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ("DevicePolicy", "closed"),
    ("CapabilityBoundingSet", ""),
    ("UMask", "0027"),
    ("TimeoutStopSec", "20"),
    ("KillSignal", "SIGTERM"),
    ("SyslogLevelPrefix", "yes"),
]


@pytest.mark.parametrize(("key", "expected"), REQUIRED, ids=[key for key, _ in REQUIRED])
def test_required_service_setting(unit: Unit, key: str, expected: str) -> None:
    assert single(unit, "Service", key) == expected


def test_supplementary_groups(unit: Unit) -> None:
    assert single(unit, "Service", "SupplementaryGroups").split() == ["gpio", "i2c", "spi", "dialout"]


def test_environment(unit: Unit) -> None:
    assignments = [word for line in unit["Service"]["Environment"] for word in line.split()]
    assert "BLINKA_SKIP_DEPENDENCY_CHECK=1" in assignments
    assert "PYTHONUNBUFFERED=1" in assignments


# Each bus's device nodes and the DeviceAllow= specifier that covers them ("char-NAME" is a driver name in
# /proc/devices: systemd does not accept globs in /dev paths).
DEVICES = {
    "/dev/i2c-*": "char-i2c",
    "/dev/spidev*": "char-spi",
    "/dev/gpiochip*": "char-gpiochip",
    "/dev/gpiomem": "/dev/gpiomem",
    "/dev/ttyUSB*": "char-ttyUSB",
    "/dev/ttyAMA*": "char-ttyAMA",
}


@pytest.mark.parametrize(("nodes", "specifier"), DEVICES.items(), ids=list(DEVICES))
def test_device_allowed(unit: Unit, nodes: str, specifier: str) -> None:
    allowed = dict(value.split() for value in unit["Service"]["DeviceAllow"])
    assert allowed.get(specifier) == "rw", f"{nodes} needs DeviceAllow={specifier} rw"


def test_no_device_beyond_the_buses(unit: Unit) -> None:
    assert {value.split()[0] for value in unit["Service"]["DeviceAllow"]} == set(DEVICES.values())


@pytest.mark.parametrize(
    "key",
    [
        "PrivateDevices",  # a private /dev has no bus device nodes at all
        "PrivateUsers",  # the device groups would be unmapped inside the user namespace
        "ProcSubset",  # Blinka reads /proc/cpuinfo and /proc/device-tree to identify the board
        "DynamicUser",  # the user must be a fixed member of the device groups
    ],
)
def test_settings_that_would_break_the_hardware_stay_off(unit: Unit, key: str) -> None:
    assert unit["Service"].get(key, ["no"]) in (["no"], ["false"], ["all"]), f"{key}= would cut off the hardware"


def test_no_comment_at_the_end_of_a_line() -> None:
    """systemd has no trailing comments: "Key=value  # why" would make "# why" part of the value."""
    for number, line in enumerate(UNIT.read_text().splitlines(), start=1):
        if not line.lstrip().startswith(("#", ";")):
            assert "#" not in line, f"hearth.service:{number}: comment after a value: {line!r}"


def test_installed_for_multi_user(unit: Unit) -> None:
    assert single(unit, "Install", "WantedBy") == "multi-user.target"


# --- sysusers -------------------------------------------------------------------------------------------------


def sysusers_lines() -> list[list[str]]:
    lines = []
    for raw in SYSUSERS.read_text().splitlines():
        if raw.strip() and not raw.lstrip().startswith("#"):
            # Fields are whitespace-separated; a quoted GECOS counts as one field.
            lines.append([field.strip('"') for field in re.findall(r'"[^"]*"|\S+', raw)])
    return lines


def test_sysusers_declares_the_user_and_its_groups() -> None:
    lines = sysusers_lines()
    assert ["u", "hearth", "-", "Hearth controller", "/var/lib/hearth"] in lines
    assert {line[2] for line in lines if line[:2] == ["m", "hearth"]} == {"gpio", "i2c", "spi", "dialout"}


@pytest.mark.skipif(shutil.which("systemd-sysusers") is None, reason="systemd-sysusers is not installed")
def test_systemd_sysusers_creates_them(tmp_path: Path) -> None:
    etc = tmp_path / "etc"
    etc.mkdir()
    (etc / "group").write_text("root:x:0:\ndialout:x:20:\n")  # as on Debian: dialout exists, gpio may not
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    done = subprocess.run(
        ["systemd-sysusers", f"--root={tmp_path}", str(SYSUSERS)], capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, done.stderr
    users = {line.split(":")[0]: line.split(":") for line in (etc / "passwd").read_text().splitlines()}
    assert users["hearth"][4:] == ["Hearth controller", "/var/lib/hearth", "/usr/sbin/nologin"]
    groups = {line.split(":")[0]: line.split(":") for line in (etc / "group").read_text().splitlines()}
    for name in ("gpio", "i2c", "spi", "dialout"):
        assert "hearth" in groups[name][3].split(","), f"hearth is not in {name}"
    assert groups["dialout"][2] == "20"
    assert users["hearth"][3] == groups["hearth"][2]


# --- systemd-analyze ----------------------------------------------------------------------------------------

needs_analyze = pytest.mark.skipif(
    shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed (apt-get install systemd)"
)

# What systemd prints for a setting it does not understand or cannot parse (and then ignores).
BAD_SETTING = re.compile(r"Unknown (key|section|lvalue)|Failed to parse|[Ii]nvalid|ignoring|not executable")


def runnable_copy(directory: Path, extra: str = "") -> Path:
    """The unit with the Hearth executable replaced by one that exists here (verify checks Exec paths)."""
    true = shutil.which("true") or "/bin/true"
    text = UNIT.read_text().replace("/opt/hearth/.venv/bin/hearth", true)
    if extra:
        text = text.replace("[Service]\n", f"[Service]\n{extra}\n", 1)
    copy = directory / "hearth.service"
    copy.write_text(text)
    return copy


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, timeout=60)


@needs_analyze
def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    done = analyze("verify", str(runnable_copy(tmp_path)))
    output = done.stdout + done.stderr
    assert not BAD_SETTING.search(output), output
    assert done.returncode == 0, output


@needs_analyze
def test_systemd_analyze_verify_would_catch_a_bad_key(tmp_path: Path) -> None:
    """The check above is not vacuous: this systemd-analyze reports an unknown key."""
    done = analyze("verify", str(runnable_copy(tmp_path, extra="ProtectSystemm=strict")))
    assert BAD_SETTING.search(done.stdout + done.stderr)


@needs_analyze
def test_hardening_exposure_stays_low(tmp_path: Path) -> None:
    done = analyze("security", "--offline=yes", "--no-pager", str(runnable_copy(tmp_path)))
    if done.returncode != 0 and "offline" in done.stderr:
        pytest.skip("this systemd-analyze has no `security --offline` (systemd < 250)")
    found = re.search(r"Overall exposure level for hearth\.service: ([0-9.]+)", done.stdout + done.stderr)
    assert found, done.stdout + done.stderr
    assert float(found.group(1)) <= 2.5, done.stdout
