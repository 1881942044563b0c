"""Home Assistant discovery payloads checked against Home Assistant's documented MQTT discovery schema, and their
templates rendered (with Jinja, as Home Assistant does) against a real State message.

The rules below are written from Home Assistant's documentation, not from our output:
- MQTT discovery (home-assistant.io/integrations/mqtt, "Discovery messages"): the topic is
  `<discovery_prefix>/<component>/[<node_id>/]<object_id>/config`, node_id and object_id from [a-zA-Z0-9_-];
  the `origin` block's `name` is required (`sw_version`, `support_url` optional); a `device` needs `identifiers`
  or `connections`; `unique_id` lets an entity be registered (and must be unique).
- MQTT sensor (integrations/sensor.mqtt): `state_topic` required; `expire_after` a positive number of seconds.
- Sensor device classes and their units (developers.home-assistant.io/docs/core/entity/sensor, "Available device
  classes"); state classes `measurement`, `measurement_angle`, `total`, `total_increasing`; a sensor with
  device class `enum` has `options` and neither a state class nor a unit; `energy` is never a `measurement`.
- Energy dashboard (home-assistant.io/docs/energy): an energy sensor it accepts has device class `energy`, state
  class `total` or `total_increasing`, and an energy unit.
- A template that renders `None` makes an MQTT sensor unknown (home-assistant/core#53227 made MQTT entities
  treat the rendered string "None" so); a sensor with a state class must otherwise render a number.
- Binary sensor device classes (integrations/binary_sensor) include `running` and `heat`; its default payloads
  are `ON` and `OFF`.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import MappingProxyType

import jinja2
import pytest

from controller import protocol
from controller.energy.counter import HEAT_ENERGY_CHANNEL
from controller.energy.derived import COP_CHANNEL, HEAT_CHANNEL
from controller.layout.load import load_layout
from controller.layout.model import Layout
from controller.links.homeassistant import discovery
from controller.links.state import state_message
from controller.readings import Quality, Reading, Snapshot

ROOT = Path(__file__).resolve().parent.parent

TOPIC = re.compile(r"^homeassistant/(?P<component>[a-z_]+)/(?:[a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config$")
COMPONENTS = {"sensor", "binary_sensor"}
STATE_CLASSES = {"measurement", "measurement_angle", "total", "total_increasing"}
ENERGY_UNITS = {"J", "kJ", "MJ", "GJ", "mWh", "Wh", "kWh", "MWh", "GWh", "TWh", "cal", "kcal", "Mcal", "Gcal"}
# device class -> the units Home Assistant accepts for it (the ones a heat-pump controller can have)
SENSOR_UNITS: dict[str, set[str | None]] = {
    "temperature": {"°C", "°F", "K"},
    "power": {"mW", "W", "kW", "MW", "GW", "TW"},
    "energy": set(ENERGY_UNITS),
    "voltage": {"V", "mV", "µV", "kV", "MV"},
    "current": {"A", "mA"},
    "frequency": {"mHz", "Hz", "kHz", "MHz", "GHz"},
    "gas": {"L", "m³", "ft³", "CCF", "MCF"},
    "pressure": {"cbar", "bar", "hPa", "mmHg", "inHg", "kPa", "mbar", "Pa", "psi", "mPa"},
    "volume_flow_rate": {"m³/h", "m³/min", "m³/s", "ft³/min", "L/h", "L/min", "L/s", "gal/d", "gal/h", "gal/min"},
    "power_factor": {"%", None},
}
BINARY_CLASSES = {"running", "heat", "power", "problem", "plug", "connectivity"}
ORIGIN_KEYS = {"name", "sw_version", "support_url"}


def sensor_rules(config: dict[str, object]) -> list[str]:
    """What breaks Home Assistant's documented rules for a sensor config (empty: none)."""
    problems = []
    device_class, unit = config.get("device_class"), config.get("unit_of_measurement")
    state_class = config.get("state_class")
    if not config.get("state_topic"):
        problems.append("state_topic is required")
    if device_class == "enum":
        if not config.get("options"):
            problems.append("an enum needs options")
        if state_class is not None or unit is not None:
            problems.append("an enum has no state class and no unit")
        return problems
    if state_class is not None and state_class not in STATE_CLASSES:
        problems.append(f"state class {state_class!r} unknown")
    if device_class is not None:
        if device_class not in SENSOR_UNITS:
            problems.append(f"device class {device_class!r} not one we know Home Assistant has")
        elif unit not in SENSOR_UNITS[device_class]:
            problems.append(f"unit {unit!r} not accepted for {device_class}")
    if device_class == "energy" and state_class == "measurement":
        problems.append("energy is a total, never a measurement")
    return problems


def energy_dashboard_accepts(config: dict[str, object]) -> bool:
    return (
        config.get("device_class") == "energy"
        and config.get("state_class") in {"total", "total_increasing"}
        and config.get("unit_of_measurement") in ENERGY_UNITS
    )


RULE_CASES = [  # the rules themselves must catch what they say they catch
    ({"state_topic": "t", "device_class": "power", "unit_of_measurement": "W", "state_class": "measurement"}, []),
    ({"state_topic": "t", "device_class": "power", "unit_of_measurement": "kWh"},
     ["unit 'kWh' not accepted for power"]),
    ({"state_topic": "t", "device_class": "energy", "unit_of_measurement": "kWh", "state_class": "measurement"},
     ["energy is a total, never a measurement"]),
    ({"state_topic": "t", "device_class": "temperature", "unit_of_measurement": "degC"},
     ["unit 'degC' not accepted for temperature"]),
    ({"state_topic": "t", "device_class": "enum", "options": ["A"], "state_class": "measurement"},
     ["an enum has no state class and no unit"]),
    ({"device_class": "volume_flow_rate", "unit_of_measurement": "L/min", "state_class": "rising"},
     ["state_topic is required", "state class 'rising' unknown"]),
]  # fmt: skip


@pytest.mark.parametrize(("config", "problems"), RULE_CASES)
def test_the_schema_rules_catch_what_they_describe(config: dict[str, object], problems: list[str]) -> None:
    assert sensor_rules(config) == problems


@pytest.fixture(scope="module")
def demo() -> Layout:
    return load_layout(ROOT / "layouts/demo.toml")


@pytest.fixture(scope="module")
def configs(demo: Layout) -> dict[str, dict[str, object]]:
    return {topic: json.loads(payload) for topic, payload in discovery(demo)}


def test_every_topic_and_id_follows_the_discovery_scheme(configs: dict[str, dict[str, object]]) -> None:
    unique_ids = [config["unique_id"] for config in configs.values()]
    assert len(unique_ids) == len(set(unique_ids)), "unique_id must be unique"
    for topic, config in configs.items():
        match = TOPIC.match(topic)
        assert match and match["component"] in COMPONENTS, topic
        assert re.fullmatch(r"[a-zA-Z0-9_-]+", str(config["object_id"])), topic
        origin = config["origin"]
        assert isinstance(origin, dict) and origin.get("name") and set(origin) <= ORIGIN_KEYS, topic
        device = config["device"]
        assert isinstance(device, dict) and (device.get("identifiers") or device.get("connections")), topic
        expire = config.get("expire_after")
        assert isinstance(expire, int) and expire > 0, topic


def test_every_sensor_keeps_home_assistants_rules(configs: dict[str, dict[str, object]]) -> None:
    problems = {
        topic: sensor_rules(config) for topic, config in configs.items() if topic.startswith("homeassistant/sensor/")
    }
    assert {topic: found for topic, found in problems.items() if found} == {}
    for topic, config in configs.items():
        if topic.startswith("homeassistant/binary_sensor/"):
            assert config["device_class"] in BINARY_CLASSES, topic


def entity(configs: dict[str, dict[str, object]], name: str) -> dict[str, object]:
    return configs[f"homeassistant/sensor/demo-house/{name}/config"]


@pytest.mark.parametrize(
    ("channel", "name", "device_class", "unit", "state_class"),
    [
        (HEAT_CHANNEL, "Heat output", "power", "W", "measurement"),
        (COP_CHANNEL, "COP", None, None, "measurement"),
        (HEAT_ENERGY_CHANNEL, "Heat energy", "energy", "kWh", "total_increasing"),
        ("hp-power", "Heat pump power", "power", "W", "measurement"),
        ("hp-energy", "Heat pump energy", "energy", "kWh", "total_increasing"),
    ],
)
def test_heat_power_cop_and_the_energy_counters_are_sensors(
    configs: dict[str, dict[str, object]], channel: str, name: str, device_class: str | None, unit: str | None,
    state_class: str,
) -> None:  # fmt: skip
    config = entity(configs, channel)
    assert (config["name"], config.get("device_class"), config.get("unit_of_measurement"), config["state_class"]) == (
        name,
        device_class,
        unit,
        state_class,
    )


def test_the_energy_dashboard_takes_the_heat_and_electricity_counters(configs: dict[str, dict[str, object]]) -> None:
    accepted = {topic.split("/")[3] for topic, config in configs.items() if energy_dashboard_accepts(config)}
    assert {HEAT_ENERGY_CHANNEL, "hp-energy"} <= accepted


def test_names_are_for_people_not_layout_ids(configs: dict[str, dict[str, object]]) -> None:
    for topic, config in configs.items():
        name = str(config["name"])
        assert name[0].isupper() and not re.search(r"[a-z]-[a-z]", name), (topic, name)


def state_json(demo: Layout, configs: dict[str, dict[str, object]]) -> object:
    """A real State message: every sensor with a value, except a faulted probe and COP with the compressor off."""
    sensors = [topic for topic in configs if topic.startswith("homeassistant/sensor/")]
    names = [topic.split("/")[3] for topic in sensors if "/mode/" not in topic]
    readings = {}
    for index, name in enumerate(names):
        value: float | None = 10.0 + index
        quality = Quality.OK
        if name == COP_CHANNEL:
            value = None
        if name == "tank-top":
            value, quality = None, Quality.FAULT
        readings[name] = Reading(name, value, "", quality, 1_700_000_000.0)
    state = state_message("demo-house", 1_700_000_000.0, Snapshot(1_700_000_000.0, MappingProxyType(readings)), None)
    actuators = {name: protocol.ActuatorStateMsg(on=i % 2 == 0, source="local", reason="test")
                 for i, name in enumerate(demo.actuators)}  # fmt: skip
    return json.loads(state.model_copy(update={"actuators": actuators}).to_json())


def test_templates_render_a_number_or_none_against_a_real_state(
    demo: Layout, configs: dict[str, dict[str, object]]
) -> None:
    value_json = state_json(demo, configs)
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    rendered = {
        topic.split("/")[3]: env.from_string(str(config["value_template"])).render(value_json=value_json).strip()
        for topic, config in configs.items()
    }
    assert rendered["tank-top"] == "None" and rendered[COP_CHANNEL] == "None"  # unknown, not a bad number
    assert rendered["mode"] == "LOCAL"
    for topic, config in configs.items():
        name = topic.split("/")[3]
        if topic.startswith("homeassistant/binary_sensor/"):
            assert rendered[name] in {"ON", "OFF"}, name
        elif config.get("state_class") and rendered[name] != "None":
            assert math.isfinite(float(rendered[name])), name


@pytest.mark.parametrize(
    ("name", "reads"),
    [("tank-top", "Tank top"), ("hp-power", "Heat pump power"), ("dist-supply", "Distribution supply"),
     ("grid-import-t1", "Grid import tariff 1"), ("hp-cop", "Heat pump COP")],
)  # fmt: skip
def test_a_layout_name_reads_as_words(name: str, reads: str) -> None:
    from controller.links.homeassistant import readable

    assert readable(name) == reads
