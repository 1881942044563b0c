"""A Pi 4 and a Pi 5 start: Blinka, told it is on one, loads its GPIO backend from the [pi] extra, and
`hearth run` on the example layout fails only on the device nodes this machine lacks, in one line.

The [pi] extra is installed into the test environment by scripts/bootstrap (gpiod binds /dev/gpiochip* only
when Blinka believes it is on a Pi, so it changes nothing on x86), which keeps these tests at a second each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from types import SimpleNamespace

import pytest
from packaging.requirements import Requirement

from controller.buses.nodes import Node, needed_nodes, node_problems
from controller.layout.load import load_layout

ROOT = Path(__file__).resolve().parent.parent
HEARTH = Path(sys.executable).with_name("hearth")
BOARDS = ["RASPBERRY_PI_4B", "RASPBERRY_PI_5"]


def forced_pi(board: str) -> dict[str, str]:
    # Both boards carry Blinka's BCM2XXX chip id; the board id picks bcm2711 or bcm2712 pin maps.
    return {
        **os.environ,
        "BLINKA_FORCEBOARD": board,
        "BLINKA_FORCECHIP": "BCM2XXX",
        "BLINKA_SKIP_DEPENDENCY_CHECK": "1",
    }


def run_python(board: str, code: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", code], env=forced_pi(board), capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
    return result


def pi_detector(board: str) -> SimpleNamespace:
    """What Blinka's detector reports on that Pi (a Revision line in /proc/cpuinfo makes `any_raspberry_pi`)."""
    pi5 = board == "RASPBERRY_PI_5"
    return SimpleNamespace(
        board=SimpleNamespace(id=board, any_raspberry_pi=True, any_raspberry_pi_5_board=pi5, any_jetson_board=False),
        chip=SimpleNamespace(id="BCM2XXX"),
    )


@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("python", [(3, 11), (3, 13)], ids=["bookworm", "trixie"])
def test_pi_extra_is_exactly_what_blinka_needs(board: str, python: tuple[int, int]) -> None:
    """Blinka's own list (adafruit_blinka/platform_dependencies.py): what it requires is pinned as it says, and
    installed here; what it marks optional (PWM, NeoPixel) is left out, Hearth uses neither."""
    from adafruit_blinka import platform_dependencies as blinka

    detector = pi_detector(board)
    required = [
        Requirement(requirement)
        for module, requirement in blinka.get_platform_dependencies(detector, python)
        if module not in blinka._OPTIONAL_BACKENDS
    ]
    assert [r.name for r in required] == ["gpiod"]
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["pi"]
    pinned = {Requirement(r).name.lower(): Requirement(r).specifier for r in extra}
    for requirement in required:
        assert pinned.get(requirement.name.lower()) == requirement.specifier, f"[pi] must pin {requirement}"
    # Beyond Blinka's list, only what Hearth itself opens: I2C buses other than bus 1.
    assert set(pinned) - {r.name.lower() for r in required} == {"adafruit-extended-bus"}
    missing = [str(r) for r in required if str(r) in blinka.get_missing_platform_dependencies(detector, python)]
    assert missing == [], "the [pi] extra is not installed here: run scripts/bootstrap"


IMPORT_CHAIN = """
import json, board, busio, digitalio
print(json.dumps({"pin": digitalio.Pin.__module__, "d17": board.D17.id, "spi": hasattr(busio, "SPI")}))
"""


@pytest.mark.parametrize("board", BOARDS)
def test_blinka_loads_its_gpiod_backend(board: str) -> None:
    found = run_python(board, IMPORT_CHAIN)
    assert found == {"pin": "adafruit_blinka.microcontroller.generic_linux.raspberry_pi_pin", "d17": 17, "spi": True}


@pytest.mark.parametrize("board", BOARDS)
def test_run_on_a_pi_fails_only_on_missing_device_nodes(board: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(HEARTH), "run", "--layout", "layouts/pi4-example.toml", "--state-dir", str(tmp_path), "--duration", "5"],
        env=forced_pi(board) | {"JOURNAL_STREAM": ""},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 3, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    event = json.loads(lines[0])
    assert (event["level"], event["event"]) == ("error", "hardware unavailable")
    detail = event["detail"]
    for needed in ("/dev/gpiochip0 is missing", "/dev/i2c-1 is missing", "/dev/spidev0.0 is missing"):
        assert needed in detail
    assert "raspi-config nonint do_i2c 0" in detail and "raspi-config nonint do_spi 0" in detail
    assert "dtoverlay=spi0-0cs" in detail
    assert "Error" not in done.stderr and "No module" not in done.stderr


def test_nodes_the_example_layout_needs() -> None:
    layout = load_layout(ROOT / "layouts/pi4-example.toml")
    assert [node.path for node in needed_nodes(layout)] == ["/dev/gpiochip0", "/dev/i2c-1", "/dev/spidev0.0"]


NODES = [Node("/dev/gpiochip0", "gpio", "no GPIO"), Node("/dev/i2c-1", "i2c", "enable I2C")]


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ([], ["/dev/gpiochip0 is missing: no GPIO", "/dev/i2c-1 is missing: enable I2C"]),
        (["gpiochip0"], ["/dev/i2c-1 is missing: enable I2C"]),
        (["gpiochip4", "i2c-1"], []),  # a Pi 5 whose header controller is numbered 4
        (["gpiochip0", "i2c-1"], []),
        (["i2c-11", "gpiochip0"], ["/dev/i2c-1 is missing: enable I2C"]),
    ],
)
def test_node_problems(tmp_path: Path, present: list[str], expected: list[str]) -> None:
    for name in present:
        (tmp_path / name).touch()
    assert node_problems(NODES, tmp_path) == expected


@pytest.mark.skipif(os.geteuid() == 0, reason="root may open any node")
def test_node_without_permission_names_the_group(tmp_path: Path) -> None:
    (tmp_path / "gpiochip0").touch()
    (tmp_path / "i2c-1").touch(mode=0o600)
    os.chmod(tmp_path / "i2c-1", 0o000)
    assert node_problems(NODES, tmp_path) == [
        "/dev/i2c-1 is not readable and writable by this user: add it to the i2c group "
        "(the hearth service user gets it from systemd/hearth.sysusers.conf)"
    ]


WITHOUT_GPIOD = """
import sys
sys.modules["gpiod"] = None  # as if the [pi] extra were not installed: `import gpiod` fails
from controller.cli import main
args = ["run", "--layout", "layouts/pi4-example.toml", "--state-dir", sys.argv[1], "--log-format", "json"]
raise SystemExit(main(args))
"""


def test_without_the_pi_extra_the_one_line_says_how_to_install_it(tmp_path: Path) -> None:
    """The failure this issue started from: now one line that points at the [pi] extra, not at the gpio group."""
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_GPIOD, str(tmp_path)],
        env=forced_pi("RASPBERRY_PI_4B"),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.returncode == 3, done.stderr
    [line] = done.stderr.splitlines()
    detail = json.loads(line)["detail"]
    assert detail.startswith("Blinka cannot load its GPIO backend (The platform library 'gpiod' was not found")
    assert "pip install '/opt/hearth[pi]'" in detail and "group" not in detail
