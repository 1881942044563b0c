"""A meter's inputs as the registry asks for them: names, units, plausible ranges, and no erratic check."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from controller.layout.channel import Channel


class MeterValue(Protocol):
    """One value a meter reports: a Modbus register's quantity or a P1 telegram's OBIS object."""

    @property
    def name(self) -> str: ...

    @property
    def unit(self) -> str: ...

    @property
    def plausible(self) -> tuple[float, float]: ...


class MeterInputs:
    """The registry's view of a meter's values: what a channel's `input` may name, and what it implies."""

    def __init__(self, values: Iterable[MeterValue]) -> None:
        self.by_name: dict[str, MeterValue] = {}
        for value in values:
            self.by_name.setdefault(value.name, value)

    def inputs(self, _config: Any) -> tuple[str, ...]:
        return tuple(self.by_name)

    def default_unit(self, _config: Any, channel: Channel) -> str:
        value = self.by_name.get(channel.input)
        return value.unit if value else ""

    def channel_defaults(self, channel_input: str) -> Mapping[str, Any]:
        value = self.by_name.get(channel_input)
        if value is None:
            return {}
        # Power swings back and forth as loads switch: that is the meter's job, not a loose connection.
        return {"plausible": list(value.plausible), "max_jitter": None}
