"""Home Assistant MQTT discovery: every channel as a sensor, the mode as a sensor, every actuator as a binary
sensor, all reading the controller's retained `state` topic. Published (retained) on connect when the layout's
`links.atn.home_assistant` is on, and again whenever Home Assistant announces itself on `homeassistant/status`.

Topics are `homeassistant/<component>/<site>/<object>/config`: the site id is the node id, so the broker's ACL
can keep each controller to its own entities.
"""

from __future__ import annotations

import json

from controller import __version__, protocol
from controller.layout.model import Layout
from controller.layout.units import channel_units

STATUS_TOPIC = "homeassistant/status"
UNITS = {
    "degC": ("°C", "temperature"),
    "V": ("V", "voltage"),
    "A": ("A", "current"),
    "W": ("W", "power"),
    "kWh": ("kWh", "energy"),
    "Hz": ("Hz", "frequency"),
    "m3": ("m³", "gas"),
    "l/min": ("L/min", "volume_flow_rate"),
}
COUNTERS = {"kWh", "m3"}  # meter registers that only count up: Home Assistant's Energy dashboard takes these


def discovery(layout: Layout) -> list[tuple[str, bytes]]:
    """(topic, payload) of every discovery message for this site; publish them retained."""
    site = layout.site.id
    topics = protocol.Topics(site)
    atn = layout.links.atn
    device = {
        "identifiers": [f"hearth_{site}"],
        "name": layout.site.name or site,
        "manufacturer": "Hearth",
        "model": "heat-pump controller",
        "sw_version": __version__,
    }
    common = {
        "state_topic": topics.state,
        "availability_topic": topics.status,
        "availability_template": "{{ 'online' if value_json.online else 'offline' }}",
        # A controller that has gone quiet (a crash the broker has not noticed, a cut network) shows unavailable
        # after three of its state periods, not its last values as live.
        "expire_after": round(
            protocol.QUIET_AFTER_PERIODS * (atn.state_every_s if atn else protocol.DEFAULT_STATE_EVERY_S)
        ),
        "device": device,
    }
    messages: list[tuple[str, bytes]] = []
    for name, unit in channel_units(layout).items():
        label, device_class = UNITS.get(unit, (unit, None))
        config = {
            **common,
            "name": name,
            "unique_id": f"hearth_{site}_{name}",
            "value_template": f"{{{{ value_json.readings['{name}'].value }}}}",
            "unit_of_measurement": label,
            "state_class": "total_increasing" if unit in COUNTERS else "measurement",
        }
        if device_class:
            config["device_class"] = device_class
        messages.append((f"homeassistant/sensor/{site}/{name}/config", json.dumps(config).encode()))
    mode = {**common, "name": "mode", "unique_id": f"hearth_{site}_mode", "value_template": "{{ value_json.mode }}"}
    messages.append((f"homeassistant/sensor/{site}/mode/config", json.dumps(mode).encode()))
    for name in layout.actuators:
        config = {
            **common,
            "name": name,
            "unique_id": f"hearth_{site}_{name}",
            "value_template": f"{{{{ 'ON' if value_json.actuators['{name}'].on else 'OFF' }}}}",
        }
        messages.append((f"homeassistant/binary_sensor/{site}/{name}/config", json.dumps(config).encode()))
    return messages
