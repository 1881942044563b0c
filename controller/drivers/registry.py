"""The one table from a device's `kind` string to the module that drives it.

Adding a device kind means writing controller/drivers/<kind>.py with a `KIND` entry and adding it here, to the
table and to the union (tests/test_registry.py checks they agree). Kind modules import only the layout's leaf
models (base, sensors, buses, channel), never controller.layout.model, which imports this table.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from controller.drivers import ads1115, dsmr_p1, gpio_relay, max31865, sdm120, sdm630
from controller.drivers.base import ActuatorKind, DeviceKind

DEVICE_KINDS: dict[str, DeviceKind] = {
    entry.kind: entry for entry in (ads1115.KIND, max31865.KIND, sdm120.KIND, sdm630.KIND, dsmr_p1.KIND)
}
ACTUATOR_KINDS: dict[str, ActuatorKind] = {entry.kind: entry for entry in (gpio_relay.KIND,)}

DeviceConfig = Annotated[
    ads1115.Ads1115Config | max31865.Max31865Config | sdm120.Sdm120Config | sdm630.Sdm630Config | dsmr_p1.DsmrP1Config,
    Field(discriminator="kind"),
]
"""The settings of any registered device kind, chosen by its `kind` key."""

ActuatorConfig = Annotated[gpio_relay.GpioRelay, Field(discriminator="kind")]
"""The settings of any registered actuator kind, chosen by its `kind` key."""
