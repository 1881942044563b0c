"""Each channel's effective unit: what the layout says, else what its device kind and sensor produce."""

from __future__ import annotations

from controller.drivers.registry import DEVICE_KINDS
from controller.layout.model import Layout


def channel_units(layout: Layout) -> dict[str, str]:
    units: dict[str, str] = {}
    for name, channel in layout.channels.items():
        device = layout.devices[channel.device]
        units[name] = channel.unit or DEVICE_KINDS[device.kind].default_unit(device, channel)
    return units
