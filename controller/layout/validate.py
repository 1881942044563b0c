"""Cross-reference checks that no single model can make: names that point at other sections, shared pins
and addresses, and what a device kind accepts.

They run on the raw TOML mapping, not on validated models, so they still report while other parts of the file
are broken: a layout's problems all come out in one go.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from controller.drivers.registry import DEVICE_KINDS
from controller.layout.base import article
from controller.layout.load import FREE_CHIP_SELECTS, RESERVED_PINS, SPI_CHIP_SELECTS, did_you_mean
from controller.layout.model import DEVICE_FAULTS, SENSOR_FAULTS, SERIAL_FAULTS

Finding = tuple[list[str | int], str]


def _table(raw: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = raw.get(key, {})
    return {k: v for k, v in value.items() if isinstance(v, dict)} if isinstance(value, dict) else {}


def _check_devices(raw: Mapping[str, Any], buses: dict[str, Any]) -> Iterator[Finding]:
    seen_addresses: dict[tuple[str, int], str] = {}
    for name, device in _table(raw, "devices").items():
        kind = DEVICE_KINDS.get(str(device.get("kind")))
        bus_name = device.get("bus")
        if not isinstance(bus_name, str) or kind is None:
            continue
        bus = buses.get(bus_name)
        if bus is None:
            yield ["devices", name, "bus"], f"unknown bus '{bus_name}'{did_you_mean(bus_name, buses)}"
            continue
        if bus.get("kind") != kind.bus_kind:
            yield (
                ["devices", name, "bus"],
                f"{article(kind.kind)} {kind.kind} needs {article(kind.bus_kind)} {kind.bus_kind} bus, "
                f"but '{bus_name}' is {bus.get('kind')}",
            )
        address = device.get("address")
        if isinstance(address, int):
            other = seen_addresses.setdefault((bus_name, address), name)
            if other != name:
                yield (
                    ["devices", name, "address"],
                    f"address 0x{address:02x} on bus '{bus_name}' is also used by {other}",
                )


def _kernel_chip_selects(raw: Mapping[str, Any]) -> dict[int, tuple[int, str]]:
    """GPIO -> (SPI controller, name) for the chip selects of every SPI bus the layout declares."""
    owned: dict[int, tuple[int, str]] = {}
    for bus in _table(raw, "buses").values():
        number = bus.get("bus")
        if bus.get("kind") == "spi" and isinstance(number, int):
            owned.update({pin: (number, name) for pin, name in SPI_CHIP_SELECTS.get(number, {}).items()})
    return owned


def _kernel_pin_message(pin: int, controller: int, name: str) -> str:
    free = ", ".join(str(p) for p in FREE_CHIP_SELECTS)
    return (
        f"GPIO{pin} is {name}, which the kernel's SPI driver owns while SPI{controller} is enabled (GPIO busy), "
        f"and /dev/spidev{controller}.0 pulls it low on every transfer; wire the chip select to a free GPIO "
        f"({free}) and add dtoverlay=spi{controller}-0cs to /boot/firmware/config.txt"
    )


def _check_pins(raw: Mapping[str, Any]) -> Iterator[Finding]:
    kernel_owned = _kernel_chip_selects(raw)
    users: dict[int, str] = {}
    claims: list[tuple[list[str | int], int]] = []
    for name, device in _table(raw, "devices").items():
        if isinstance(device.get("cs_pin"), int):
            claims.append((["devices", name, "cs_pin"], device["cs_pin"]))
    for name, actuator in _table(raw, "actuators").items():
        if isinstance(actuator.get("pin"), int):
            claims.append((["actuators", name, "pin"], actuator["pin"]))
    for path, pin in claims:
        owner = f"{path[0]}.{path[1]}"
        if pin in RESERVED_PINS:
            yield path, f"GPIO{pin} is the Pi's {RESERVED_PINS[pin]}; choose another pin"
        elif pin in kernel_owned:
            yield path, _kernel_pin_message(pin, *kernel_owned[pin])
        elif pin in users:
            yield path, f"GPIO{pin} is also used by {users[pin]}"
        else:
            users[pin] = owner


def _check_channels(raw: Mapping[str, Any], devices: dict[str, Any]) -> Iterator[Finding]:
    for name, channel in _table(raw, "channels").items():
        device_name = channel.get("device")
        if not isinstance(device_name, str):
            continue
        device = devices.get(device_name)
        if device is None:
            yield ["channels", name, "device"], f"unknown device '{device_name}'{did_you_mean(device_name, devices)}"
            continue
        kind = DEVICE_KINDS.get(str(device.get("kind")))
        if kind is None:
            continue
        try:
            config = kind.config.model_validate(device)
        except ValueError:
            continue  # the device's own problems are reported against the device
        inputs = kind.inputs(config)
        chosen = str(channel.get("input", ""))
        if chosen not in inputs:
            shown = ", ".join(i for i in inputs if i) or "(none)"
            yield (
                ["channels", name, "input"],
                f"{article(kind.kind)} {kind.kind} has no input '{chosen}'; "
                f"its inputs are {shown}{did_you_mean(chosen, inputs)}",
            )
        sensor = channel.get("sensor")
        if kind.kind == "ads1115" and sensor is None:
            yield ["channels", name], 'an ads1115 channel needs a sensor table (kind = "ntc", "linear" or "volts")'
        if kind.kind != "ads1115" and sensor is not None:
            yield (
                ["channels", name, "sensor"],
                f"{article(kind.kind)} {kind.kind} channel takes no sensor table"
                + ("; set the RTD on the device" if kind.kind == "max31865" else ""),
            )
    used: dict[tuple[str, str], str] = {}
    for name, channel in _table(raw, "channels").items():
        key = (str(channel.get("device")), str(channel.get("input", "")))
        other = used.setdefault(key, name)
        if other != name:
            yield ["channels", name, "input"], f"input '{key[1]}' of {key[0]} is also read by channel {other}"


def _check_actuators(raw: Mapping[str, Any]) -> Iterator[Finding]:
    actuators = _table(raw, "actuators")
    for name, actuator in actuators.items():
        for i, needed in enumerate(actuator.get("requires", []) or []):
            if needed == name:
                yield ["actuators", name, "requires", i], "an actuator cannot require itself"
            elif needed not in actuators:
                yield (
                    ["actuators", name, "requires", i],
                    f"unknown actuator '{needed}'{did_you_mean(str(needed), actuators)}",
                )


SERIAL_KINDS = [kind for kind in DEVICE_KINDS.values() if kind.bus_kind == "serial"]


def _on_serial(raw: Mapping[str, Any], channel: Mapping[str, Any]) -> bool:
    device = _table(raw, "devices").get(str(channel.get("device")))
    kind = DEVICE_KINDS.get(str(device.get("kind"))) if device else None
    return kind is not None and kind.bus_kind == "serial"


def _check_serial(raw: Mapping[str, Any], buses: dict[str, Any]) -> Iterator[Finding]:
    """Serial settings against what each device can use, one bus per port, one id per meter, P1 alone."""
    ports: dict[str, str] = {}
    for name, bus in buses.items():
        if bus.get("kind") != "serial" or not isinstance(bus.get("port"), str):
            continue
        other = ports.setdefault(bus["port"], name)
        if other != name:
            yield ["buses", name, "port"], f"port {bus['port']} is also bus '{other}': one bus per serial port"
    on_bus: dict[str, list[tuple[str, Any]]] = {}
    for name, device in _table(raw, "devices").items():
        kind = DEVICE_KINDS.get(str(device.get("kind")))
        bus = buses.get(str(device.get("bus")))
        if kind is None or kind.bus_kind != "serial" or bus is None or bus.get("kind") != "serial":
            continue
        on_bus.setdefault(str(device["bus"]), []).append((name, device))
        yield from kind.check_bus(device, str(device["bus"]), bus)
    for bus_name, members in on_bus.items():
        kinds = {str(device.get("kind")) for _, device in members}
        if "dsmr_p1" in kinds and len(members) > 1:
            names = ", ".join(name for name, _ in members)
            yield ["buses", bus_name], f"a P1 port carries one smart meter and nothing else; '{bus_name}' has {names}"
            continue
        ids: dict[int, str] = {}
        for name, device in members:
            device_id = device.get("device_id", 1)
            if isinstance(device_id, int):
                other = ids.setdefault(device_id, name)
                if other != name:
                    yield (
                        ["devices", name, "device_id"],
                        f"device id {device_id} on bus '{bus_name}' is also {other}: give each meter its own id",
                    )


def _check_sim(raw: Mapping[str, Any]) -> Iterator[Finding]:
    from controller.sim.plant import ACTUATORS, FLOWS, PROBES

    sim = raw.get("sim")
    backend = raw.get("backend")
    if backend == "real" and sim is not None:
        yield ["sim"], 'a [sim] table only goes with backend = "sim"'
        return
    if backend != "sim":
        return
    if not isinstance(sim, dict):
        sim = {}
    probes = sim.get("probes", {}) if isinstance(sim.get("probes"), dict) else {}
    relays = sim.get("relays", {}) if isinstance(sim.get("relays"), dict) else {}
    # Meters on serial buses read the plant's own meters; only the chips' channels need a probe.
    channels = {name: c for name, c in _table(raw, "channels").items() if not _on_serial(raw, c)}
    actuators = _table(raw, "actuators")
    for section, mapping, names, known, what in (
        ("probes", probes, channels, (*PROBES, *FLOWS), "channel"),
        ("relays", relays, actuators, ACTUATORS, "actuator"),
    ):
        for key, target in mapping.items():
            if key not in names:
                yield ["sim", section, key], f"unknown {what} '{key}'{did_you_mean(key, names)}"
            if target not in known:
                yield (
                    ["sim", section, key],
                    f"the plant has no {section[:-1]} '{target}'; "
                    f"it has {', '.join(known)}{did_you_mean(target, known)}",
                )
        for name in names:
            if name not in mapping and name not in known:
                yield (
                    [("channels" if what == "channel" else "actuators"), name],
                    f"no plant {section[:-1]} for this {what} in the simulator: name it after one "
                    f"({', '.join(known)}) or map it under [sim.{section}]",
                )


def _check_sim_faults(raw: Mapping[str, Any]) -> Iterator[Finding]:

    sim = raw.get("sim")
    faults = sim.get("faults") if isinstance(sim, dict) else None
    if not isinstance(faults, dict):
        return
    channels = _table(raw, "channels")
    devices = _table(raw, "devices")
    for target, fault in faults.items():
        if target in channels:
            if fault not in SENSOR_FAULTS:
                yield ["sim", "faults", target], f"a channel's sensor can be {', '.join(SENSOR_FAULTS)}, not '{fault}'"
        elif target in devices:
            serial = DEVICE_KINDS.get(str(devices[target].get("kind"))) in SERIAL_KINDS
            allowed = SERIAL_FAULTS if serial else DEVICE_FAULTS
            what = "a serial device" if serial else "a device"
            if fault not in allowed:
                yield ["sim", "faults", target], f"{what} can be {', '.join(allowed)}, not '{fault}'"
        else:
            names = [*channels, *devices]
            yield ["sim", "faults", target], f"no channel or device '{target}'{did_you_mean(target, names)}"


def _check_roles(raw: Mapping[str, Any]) -> Iterator[Finding]:
    """Every channel and actuator the control block names explicitly must exist. (A default role whose channel
    the site does not have is left unassigned: the policy treats that input as missing.)"""
    from controller.control.params import Actuators, Sensors

    control = raw.get("control") if isinstance(raw.get("control"), dict) else {}
    assert isinstance(control, dict)
    channels = _table(raw, "channels")
    actuators = _table(raw, "actuators")
    for section, model, names, what in (
        ("sensors", Sensors, channels, "channel"),
        ("actuators", Actuators, actuators, "actuator"),
    ):
        given = control.get(section) if isinstance(control.get(section), dict) else {}
        assert isinstance(given, dict)
        for role, value in given.items():
            if role not in model.model_fields:
                continue  # reported as an unknown key by the model
            for i, name in enumerate(value if isinstance(value, list | tuple) else [value]):
                if isinstance(name, str) and name not in names:
                    path: list[str | int] = ["control", section, role]
                    if isinstance(value, list | tuple):
                        path.append(i)
                    yield path, f"no {what} '{name}'{did_you_mean(name, names)}"


def cross_check(raw: Mapping[str, Any]) -> list[Finding]:
    """Every cross-reference problem in a raw layout mapping."""
    buses = _table(raw, "buses")
    devices = _table(raw, "devices")
    findings: list[Finding] = []
    findings += _check_devices(raw, buses)
    findings += _check_pins(raw)
    findings += _check_serial(raw, buses)
    findings += _check_channels(raw, devices)
    findings += _check_actuators(raw)
    findings += _check_sim(raw)
    findings += _check_sim_faults(raw)
    findings += _check_roles(raw)
    return findings
