"""Before any bus opens on a Pi: the device nodes a layout needs, and the step that creates each one.

Blinka turns a missing node into an error deep in a driver (FileNotFoundError from an ioctl wrapper, "no GPIO
controller exposes GPIO 17"), which says nothing about what the installer must do. Checking the nodes first
turns that into one line naming the node and the raspi-config or config.txt step that creates it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from controller.layout.buses import I2CBus, SPIBus
from controller.layout.model import Layout

CONFIG_TXT = "/boot/firmware/config.txt"


@dataclass(frozen=True)
class Node:
    """A device node the layout needs, the group that grants access to it, and how to create it."""

    path: str
    group: str
    how_to_create: str


def _i2c_step(bus: int) -> str:
    if bus == 1:
        return f"enable I2C: `sudo raspi-config nonint do_i2c 0` (or dtparam=i2c_arm=on in {CONFIG_TXT}), then reboot"
    return f"add the dtoverlay that creates I2C bus {bus} (e.g. i2c-gpio,bus={bus}) to {CONFIG_TXT}, then reboot"


def _spi_step(bus: int) -> str:
    if bus == 0:
        return (
            f"enable SPI: `sudo raspi-config nonint do_spi 0` (or dtparam=spi=on in {CONFIG_TXT}), with "
            "dtoverlay=spi0-0cs for chip selects on free GPIOs, then reboot"
        )
    return f"add dtoverlay=spi{bus}-1cs to {CONFIG_TXT}, then reboot"


def needed_nodes(layout: Layout) -> list[Node]:
    """Every device node `layout` opens, in bus order, GPIO first."""
    nodes: list[Node] = []
    if layout.actuators or any(getattr(d, "cs_pin", None) is not None for d in layout.devices.values()):
        nodes.append(
            Node(
                "/dev/gpiochip0",
                "gpio",
                "Raspberry Pi OS bookworm always creates it: this is not a Pi running bookworm "
                '(off a Pi, use backend = "sim")',
            )
        )
    for config in layout.buses.values():
        if isinstance(config, I2CBus):
            nodes.append(Node(f"/dev/i2c-{config.bus}", "i2c", _i2c_step(config.bus)))
        elif isinstance(config, SPIBus):
            nodes.append(Node(f"/dev/spidev{config.bus}.0", "spi", _spi_step(config.bus)))
    return nodes


def node_problems(nodes: list[Node], dev: Path = Path("/dev")) -> list[str]:
    """One message per node that is missing or that this user may not open; `dev` stands for /dev in tests."""
    problems: list[str] = []
    for node in nodes:
        path = dev / Path(node.path).relative_to("/dev")
        if node.group == "gpio":
            # Pi 5 kernels may number the header's controller 4 (or keep a gpiochip4 alias): any chip will do here.
            chips = sorted(dev.glob("gpiochip[0-9]*"))
            path = chips[0] if chips else path
        if not path.exists():
            problems.append(f"{node.path} is missing: {node.how_to_create}")
        elif not os.access(path, os.R_OK | os.W_OK):
            problems.append(
                f"/dev/{path.name} is not readable and writable by this user: add it to the {node.group} group "
                "(the hearth service user gets it from systemd/hearth.sysusers.conf)"
            )
    return problems
