"""A channel: one measured quantity of a device, and how it is sampled and trusted.

Device-kind modules hand out one reader per channel, so they import this module; it depends only on the
layout's base and sensor models, never on the registry, so there is no import cycle between drivers and layout.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from controller.layout.base import Name, Strict
from controller.layout.calibration import Calibration
from controller.layout.sensors import Sensor


class Channel(Strict):
    """One measured quantity: which device input it comes from, how it converts, how often and how trusted."""

    device: Name
    input: str = Field(default="", description="the device's input: A0..A3 or A0-A1 ... for ads1115")
    sensor: Sensor | None = None
    unit: str | None = Field(default=None, description="defaults to the sensor's unit (degC or V)")
    sample_period_s: float = Field(default=1.0, ge=0.05, le=3600)
    deadband: float = Field(default=0.1, ge=0, description="store a new value only past this change")
    keepalive_s: float = Field(default=300.0, ge=1, le=86_400, description="store at least this often")
    plausible: tuple[float, float] = Field(default=(-40.0, 120.0), description="[min, max]; outside is out_of_range")
    calibration: Calibration | None = Field(
        default=None, description="{ offset = ... } or { two_point = [[read, true], [read, true]] }"
    )
    max_jitter: float | None = Field(
        default=1.0, gt=0, description="median sample-to-sample change above which the sensor is erratic (fault)"
    )
    label: str = Field(
        default="", max_length=60, description="the name people see (Home Assistant); default: from the channel name"
    )
    description: str = ""

    @model_validator(mode="after")
    def _ordered_range(self) -> Channel:
        if self.plausible[0] >= self.plausible[1]:
            raise ValueError(f"plausible range {list(self.plausible)} must be [min, max] with min < max")
        return self
