"""Home Assistant MQTT discovery: every channel as a sensor, the mode as an enum sensor, every actuator as a
binary sensor, all reading the controller's retained `state` topic. Published (retained) on connect when the
layout's `links.atn.home_assistant` is on, and again whenever Home Assistant announces itself on
`homeassistant/status`.

Topics are `homeassistant/<component>/<site>/<object>/config`: the site id is the node id, so the broker's ACL
can keep each controller to its own entities. The controller also reads its own discovery topics back: a
retained config for a channel or actuator the layout no longer has is cleared (an empty retained message is
Home Assistant's way to remove an entity), so renaming a channel leaves no dead entity behind.

Entities look native: names come from the layout's `label` (else from the name: `tank-top` is "Tank top"),
sensors carry their device class and unit, relays are `running` (pumps, the heat pump) or `heat` (the
immersion element), the mode is an `enum` with its four values, and an `origin` block says who published them.

The derived channels (`controller.energy.derived`) are sensors too: heat output (W, power), COP (no unit) and
the heat meter's register (kWh, energy, total_increasing: what the Energy dashboard takes, beside the electricity
meter's import counter). A reading without a value (a sensor fault, COP while the compressor is off) renders as
`None`, which Home Assistant shows as unknown, not as a bad number.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import structlog

from controller import __version__, protocol
from controller.energy.counter import HEAT_ENERGY_CHANNEL
from controller.energy.derived import COP_CHANNEL, HEAT_CHANNEL, derived_channels
from controller.layout.model import Layout
from controller.layout.units import channel_units

if TYPE_CHECKING:
    import aiomqtt

log = structlog.get_logger("hearth.homeassistant")
STATUS_TOPIC = "homeassistant/status"
MODES = ("ATN", "LOCAL", "OVERRIDE", "SAFE")
UNITS: dict[str, tuple[str, str | None, str]] = {
    # unit: (Home Assistant unit, device class, state class); meter registers that only count up are
    # total_increasing, which Home Assistant's Energy dashboard takes
    "degC": ("°C", "temperature", "measurement"),
    "V": ("V", "voltage", "measurement"),
    "A": ("A", "current", "measurement"),
    "W": ("W", "power", "measurement"),
    "kW": ("kW", "power", "measurement"),
    "kWh": ("kWh", "energy", "total_increasing"),
    "Hz": ("Hz", "frequency", "measurement"),
    "m3": ("m³", "gas", "total_increasing"),
    "l/min": ("L/min", "volume_flow_rate", "measurement"),
    "bar": ("bar", "pressure", "measurement"),
    "%": ("%", None, "measurement"),
}
ORIGIN = {"name": "Hearth", "sw_version": __version__}
DERIVED_NAMES = {HEAT_CHANNEL: "Heat output", COP_CHANNEL: "COP", HEAT_ENERGY_CHANNEL: "Heat energy"}
PRECISION = {"W": 0, "kW": 2, "kWh": 2, "": 2}  # how many decimals Home Assistant shows


def value_template(name: str) -> str:
    """The reading's value from the State, or None (Home Assistant's unknown) when it has none."""
    return f"{{{{ (value_json.readings.get('{name}') or {{}}).get('value') }}}}"


ABBREVIATIONS = {
    "hp": "heat pump",
    "dhw": "hot water",
    "cop": "COP",
    "pv": "PV",
    "dist": "distribution",
    "t1": "tariff 1",
    "t2": "tariff 2",
}


def readable(name: str) -> str:
    """`tank-top` -> `Tank top`, `hp-power` -> `Heat pump power`: what a kebab-case layout name reads as."""
    words = [ABBREVIATIONS.get(word, word) for word in name.replace("_", "-").split("-")]
    words[0] = words[0][:1].upper() + words[0][1:]
    return " ".join(words).strip()


def config_topic(component: str, site: str, object_id: str) -> str:
    return f"homeassistant/{component}/{site}/{object_id}/config"


def own_configs(site: str) -> str:
    """The subscription that reads back this site's retained discovery configs."""
    return f"homeassistant/+/{site}/+/config"


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
        "origin": ORIGIN,
    }
    messages: list[tuple[str, bytes]] = []
    labels = {name: channel.label or readable(name) for name, channel in layout.channels.items()}
    units = channel_units(layout)
    for name, unit in derived_channels(layout.channels, layout.control.energy).items():
        units[name], labels[name] = unit, DERIVED_NAMES[name]
    for name, unit in units.items():
        label, device_class, state_class = UNITS.get(unit, (unit, None, "measurement"))
        config: dict[str, object] = {
            **common,
            "name": labels[name],
            "object_id": f"{site}_{name}",
            "unique_id": f"hearth_{site}_{name}",
            "value_template": value_template(name),
            "state_class": state_class,
        }
        if label:
            config["unit_of_measurement"] = label
        if device_class:
            config["device_class"] = device_class
        if unit in PRECISION:
            config["suggested_display_precision"] = PRECISION[unit]
        messages.append((config_topic("sensor", site, name), json.dumps(config).encode()))
    mode = {
        **common,
        "name": "Mode",
        "object_id": f"{site}_mode",
        "unique_id": f"hearth_{site}_mode",
        "device_class": "enum",
        "options": list(MODES),
        "value_template": "{{ value_json.mode }}",
    }
    messages.append((config_topic("sensor", site, "mode"), json.dumps(mode).encode()))
    heaters = {layout.control.actuators.aux}
    for name, actuator in layout.actuators.items():
        config = {
            **common,
            "name": actuator.label or readable(name),
            "object_id": f"{site}_{name}",
            "unique_id": f"hearth_{site}_{name}",
            "device_class": "heat" if name in heaters else "running",
            "value_template": f"{{{{ 'ON' if value_json.actuators['{name}'].on else 'OFF' }}}}",
        }
        messages.append((config_topic("binary_sensor", site, name), json.dumps(config).encode()))
    return messages


def stale(topic: str, payload: bytes, current: set[str]) -> bool:
    """A retained config read back from the broker that this layout no longer publishes (and not yet cleared)."""
    return bool(payload) and topic.startswith("homeassistant/") and topic not in current


async def announce(client: aiomqtt.Client, layout: Layout) -> set[str]:
    """Publish every discovery config (retained); returns their topics, the ones that are current."""
    messages = discovery(layout)
    for topic, payload in messages:
        await client.publish(topic, payload, qos=1, retain=True)
    log.info("Home Assistant discovery published", entities=len(messages))
    return {topic for topic, _ in messages}


async def subscribe(client: aiomqtt.Client, layout: Layout) -> set[str]:
    """On connect: announce, then listen for Home Assistant's restarts and read back this site's configs."""
    current = await announce(client, layout)
    await client.subscribe(STATUS_TOPIC, qos=1)
    await client.subscribe(own_configs(layout.site.id), qos=1)
    return current


async def answer(client: aiomqtt.Client, layout: Layout, topic: str, payload: bytes, current: set[str]) -> set[str]:
    """A message on a `homeassistant/` topic: announce again when Home Assistant comes online, clear a retained
    config the layout no longer has. Returns the current topics."""
    if topic == STATUS_TOPIC:
        if payload.strip() == b"online":  # Home Assistant restarted: it needs discovery again
            return await announce(client, layout)
    elif stale(topic, payload, current):
        await client.publish(topic, b"", qos=1, retain=True)
        log.info("Home Assistant entity removed: no longer in the layout", topic=topic)
    return current
