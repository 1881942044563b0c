"""Load a layout file: parse TOML, validate every section, check cross-references, report every problem at once.

Each problem reads like `layouts/site.toml:42 channels.tank-top.device: unknown device 'ads-1'; did you mean
'ads1'?`. tomllib keeps no positions, so `LineIndex` finds the line of a key path by reading the file's table
headers and `key =` lines; where it cannot, the problem carries no line and the key path still locates it.
"""

from __future__ import annotations

import difflib
import re
import tomllib
import types  # Python >= 3.11 (Raspberry Pi OS bookworm ships 3.11)
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from controller.drivers.registry import ACTUATOR_KINDS, DEVICE_KINDS
from controller.layout import buses as bus_models
from controller.layout import channel, model, sensors
from controller.layout.model import Layout

# GPIO lines that the Pi's own buses use; a relay or chip-select on one of them would fight the bus.
RESERVED_PINS = {
    2: "I2C1 SDA",
    3: "I2C1 SCL",
    9: "SPI0 MISO",
    10: "SPI0 MOSI",
    11: "SPI0 SCLK",
    19: "SPI1 MISO",
    20: "SPI1 MOSI",
    21: "SPI1 SCLK",
}
# Chip-select lines the kernel's SPI driver claims once that SPI controller is enabled: digitalio cannot open them
# ("GPIO busy"), and Blinka's /dev/spidevN.0 drives CE0 low on every transfer, whichever chip was meant.
SPI_CHIP_SELECTS = {
    0: {8: "SPI0 CE0", 7: "SPI0 CE1"},
    1: {18: "SPI1 CE0"},
}
FREE_CHIP_SELECTS = (5, 6, 12, 13, 16, 24, 25, 26)


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a layout."""

    line: int | None
    path: str
    message: str
    file: str = ""

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where} {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class LayoutError(Exception):
    """A layout that cannot be used; `problems` lists everything found, in file order."""

    def __init__(self, file: str, problems: Sequence[Problem]) -> None:
        self.file = file
        self.problems = sorted(problems, key=lambda p: (p.line or 0, p.path))
        count = len(self.problems)
        super().__init__(f"{file}: {count} problem{'s' if count != 1 else ''}\n" + "\n".join(map(str, self.problems)))


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`; did you mean 'x'?` for the closest choice, or an empty string."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-\"'.]+)\s*=")


def _split_key(dotted: str) -> list[str]:
    return [part.strip().strip("\"'") for part in re.split(r"\.(?=(?:[^\"']*[\"'][^\"']*[\"'])*[^\"']*$)", dotted)]


class LineIndex:
    """Maps key paths to the line that defines them, from the raw text."""

    def __init__(self, text: str) -> None:
        self.lines: dict[tuple[str, ...], int] = {}
        table: list[str] = []
        for number, line in enumerate(text.splitlines(), start=1):
            header = _HEADER.match(line)
            if header:
                table = _split_key(header.group(1))
                self.lines.setdefault(tuple(table), number)
                continue
            key = _KEY.match(line)
            if key:
                self.lines.setdefault(tuple(table + _split_key(key.group(1))), number)

    def line_of(self, path: Sequence[str | int]) -> int | None:
        """The line of the longest prefix of `path` that the file defines."""
        parts = [str(p) for p in path]
        for end in range(len(parts), 0, -1):
            found = self.lines.get(tuple(parts[:end]))
            if found:
                return found
        return None


# Names people reach for that Hearth spells differently.
KEY_HINTS = {
    "gain": "range_v",
    "type": "kind",
    "addr": "address",
    "cs": "cs_pin",
    "period": "sample_period_s",
    "interval": "sample_period_s",
    "pin_number": "pin",
    "normally_open": "contacts",
}

_UNION_TAGS = {
    "devices": 2,
    "buses": 2,
    "actuators": 2,
}


def _strip_tags(loc: list[str | int]) -> tuple[list[str | int], str | None]:
    """Drop discriminated-union tags and pydantic's `[key]` marker from a location; return the tag found."""

    tags = {*DEVICE_KINDS, *ACTUATOR_KINDS, "i2c", "spi", "serial", "ntc", "volts", "linear"}
    tag: str | None = None
    cleaned: list[str | int] = []
    for i, part in enumerate(loc):
        if part == "[key]":
            continue
        if isinstance(part, str) and part in tags and i >= 2 and (loc[0] in _UNION_TAGS or loc[i - 1] == "sensor"):
            tag = part
            continue
        cleaned.append(part)
    return cleaned, tag


def _model_at(path: Sequence[str | int], tag: str | None) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path`, to suggest its field names."""

    if not path:
        return Layout
    head = str(path[0])
    singles: dict[str, type[BaseModel]] = {"site": model.Site, "storage": model.Storage, "sim": model.Sim}
    if head in singles and len(path) == 1:
        return singles[head]
    if head == "channels" and len(path) == 2:
        return channel.Channel
    if head == "channels" and len(path) == 3 and path[2] == "sensor":
        sensor_kinds: dict[str, type[BaseModel]] = {"ntc": sensors.NtcSensor, "linear": sensors.LinearSensor}
        return sensor_kinds.get(tag or "")
    if head == "actuators" and len(path) == 2 and tag in ACTUATOR_KINDS:
        return ACTUATOR_KINDS[tag].config
    if head == "devices" and len(path) == 2 and tag in DEVICE_KINDS:
        return DEVICE_KINDS[tag].config
    if head == "buses" and len(path) == 2:
        kinds: dict[str, type[BaseModel]] = {
            "i2c": bus_models.I2CBus,
            "spi": bus_models.SPIBus,
            "serial": bus_models.SerialBus,
        }
        return kinds.get(tag or "")
    return _walk(path)


def _walk(path: Sequence[str | int]) -> type[BaseModel] | None:
    """Any other table, found by following the models' own fields (control.heating_curve, links.atn, ...)."""
    current: object = Layout
    parts = list(path)
    while parts:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(parts.pop(0)))
        if field is None:
            return None
        current = _inner(field.annotation, parts)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner(annotation: object, parts: list[str | int]) -> object:
    """The model a field holds, stepping over Optional and Annotated and taking a dict's key or a list's index
    from `parts`; None where that is ambiguous (a union of several models) or the path stops at a container."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return _inner(get_args(annotation)[0], parts)
    if origin in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        return _inner(members[0], parts) if len(members) == 1 else None
    if origin in (dict, Mapping, list, tuple, Sequence):
        if not parts:
            return None
        parts.pop(0)
        return _inner(get_args(annotation)[-1 if origin in (dict, Mapping) else 0], parts)
    return annotation


def _describe(error: Mapping[str, Any]) -> tuple[list[str | int], str]:
    """Turn one pydantic error into (key path, friendly message)."""
    loc, tag = _strip_tags(list(error["loc"]))
    kind = error["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(loc[:-1], tag)
        fields = list(model.model_fields) if model else []
        hint = f"; use '{KEY_HINTS[key]}'" if KEY_HINTS.get(key) in fields else did_you_mean(key, fields)
        return loc, f"unknown key '{key}'{hint}"
    if kind == "union_tag_invalid":
        tag_found = error.get("ctx", {}).get("tag", "?")
        expected = error.get("ctx", {}).get("expected_tags", "")
        known = [t.strip().strip("'") for t in str(expected).split(",")]
        return loc, f"unknown kind '{tag_found}'; known kinds: {', '.join(known)}{did_you_mean(str(tag_found), known)}"
    if kind == "union_tag_not_found":
        return loc, "missing key 'kind'"
    if kind == "missing":
        return loc[:-1], f"missing key '{loc[-1]}'"
    message = str(error["msg"]).removeprefix("Value error, ")
    value = error.get("input")
    if kind != "value_error" and isinstance(value, str | int | float | bool):
        message += f" (got {value!r})"
    return loc, message


def _dotted(path: Sequence[str | int]) -> str:
    return ".".join(str(p) for p in path)


def parse_text(text: str, file: str = "<layout>") -> Layout:
    """Validate layout text; raise LayoutError listing every problem."""
    index = LineIndex(text)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        position = re.search(r"at line (\d+)", str(error))
        line = int(position.group(1)) if position else None
        raise LayoutError(file, [Problem(line, "", f"not valid TOML: {error}", file)]) from error

    problems: list[Problem] = []

    def add(path: Sequence[str | int], message: str) -> None:
        problems.append(Problem(index.line_of(path), _dotted(path), message, file))

    layout: Layout | None = None
    try:
        layout = Layout.model_validate(raw)
    except ValidationError as error:
        for detail in error.errors():
            path, message = _describe(detail)
            add(path, message)

    from controller.layout.validate import cross_check

    for path, message in cross_check(raw):
        add(path, message)

    if problems or layout is None:
        raise LayoutError(file, problems or [Problem(None, "", "invalid layout", file)])
    return layout


def load_layout(path: str | Path) -> Layout:
    """Read and validate a layout file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise LayoutError(file, [Problem(None, "", f"cannot read: {error.strerror}", file)]) from error
    return parse_text(text, file)
