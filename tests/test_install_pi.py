"""scripts/install-pi: the file-laying part under --root, twice (idempotent), and systemd-analyze on the result."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts/install-pi"
BAD_SETTING = re.compile(r"Unknown (key|section|lvalue)|Failed to parse|[Ii]nvalid|ignoring|not executable")

pytestmark = pytest.mark.skipif(
    shutil.which("systemd-sysusers") is None or shutil.which("systemd-analyze") is None,
    reason="systemd's tools are not installed (apt-get install systemd)",
)


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "--root", str(root), *args], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def tree(root: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under root: content and modification time (ns)."""
    return {
        str(path.relative_to(root)): (path.read_bytes(), path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
        if path.is_file() and path.name != ".pwd.lock"
    }


@pytest.fixture
def pi_root(tmp_path: Path) -> Path:
    """An empty system with Raspberry Pi OS's boot partition."""
    (tmp_path / "boot/firmware").mkdir(parents=True)
    (tmp_path / "boot/firmware/config.txt").write_text("dtparam=audio=on\n[cm4]\notg_mode=1\n[all]\n")
    return tmp_path


def test_lays_the_files(pi_root: Path) -> None:
    done = install(pi_root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (pi_root / "etc/sysusers.d/hearth.conf").read_bytes() == (ROOT / "systemd/hearth.sysusers.conf").read_bytes()
    unit = (pi_root / "etc/systemd/system/hearth.service").read_text()
    assert f"ExecStart={ROOT}/.venv/bin/hearth run --layout /etc/hearth/layout.toml" in unit
    layout = pi_root / "etc/hearth/layout.toml"
    assert layout.read_bytes() == (ROOT / "layouts/pi4-example.toml").read_bytes()
    groups = {line.split(":")[0]: line.split(":") for line in (pi_root / "etc/group").read_text().splitlines()}
    assert layout.stat().st_mode & 0o777 == 0o640 and layout.stat().st_gid == int(groups["hearth"][2])
    for group in ("gpio", "i2c", "spi", "dialout"):
        assert "hearth" in groups[group][3].split(",")
    config = (pi_root / "boot/firmware/config.txt").read_text().splitlines()
    assert config[-3:] == ["dtparam=i2c_arm=on", "dtparam=spi=on", "dtoverlay=spi0-0cs"]
    assert f"{pi_root}/etc/hearth/layout.toml: ok" in done.stdout


def test_second_run_changes_nothing(pi_root: Path) -> None:
    assert install(pi_root).returncode == 0
    before = tree(pi_root)
    again = install(pi_root)
    assert again.returncode == 0, again.stderr
    assert tree(pi_root) == before
    assert "installed" not in again.stdout and "added" not in again.stdout


def test_an_adapted_layout_is_kept(pi_root: Path) -> None:
    assert install(pi_root).returncode == 0
    layout = pi_root / "etc/hearth/layout.toml"
    adapted = layout.read_text().replace('name = "Example house"', 'name = "The Smiths"')
    layout.write_text(adapted)
    assert install(pi_root).returncode == 0
    assert layout.read_text() == adapted


def test_a_broken_layout_fails_the_install(pi_root: Path) -> None:
    (pi_root / "etc/hearth").mkdir(parents=True)
    (pi_root / "etc/hearth/layout.toml").write_text((ROOT / "tests/layouts/broken/spi-chip-select.toml").read_text())
    done = install(pi_root)
    assert done.returncode == 1
    assert "GPIO8 is SPI0 CE0" in done.stderr


def test_lines_after_a_model_section_go_under_all(tmp_path: Path) -> None:
    (tmp_path / "boot/firmware").mkdir(parents=True)
    (tmp_path / "boot/firmware/config.txt").write_text("dtparam=audio=on\n[pi4]\narm_boost=1\n")
    assert install(tmp_path).returncode == 0
    config = (tmp_path / "boot/firmware/config.txt").read_text().splitlines()
    assert config[-4:] == ["[all]", "dtparam=i2c_arm=on", "dtparam=spi=on", "dtoverlay=spi0-0cs"]


def test_systemd_analyze_verify_on_the_result(pi_root: Path) -> None:
    assert install(pi_root).returncode == 0
    done = subprocess.run(
        ["systemd-analyze", "verify", str(pi_root / "etc/systemd/system/hearth.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0 and not BAD_SETTING.search(output), output


def test_help_and_bad_option() -> None:
    shown = subprocess.run([str(SCRIPT), "--help"], capture_output=True, text=True, timeout=30)
    assert shown.returncode == 0 and "--root DIR" in shown.stdout and "idempotent" not in shown.stderr
    bad = subprocess.run([str(SCRIPT), "--rot", "x"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "unknown option '--rot'" in bad.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck is not installed")
def test_shellcheck() -> None:
    done = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60, env=os.environ)
    assert done.returncode == 0, done.stdout
