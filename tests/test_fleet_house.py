"""A fleet site's house (`controller.fleet.house.PlantHouse`): every channel of the demo layout reads what the plant
holds, the relays drive the plant through their wiring, the meters count, and what the house cannot read is
refused by name. Also the controller built on it, and how `fleet-sim` shares the sites out over its workers."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from controller.clock import ManualClock, SystemClock
from controller.drivers.gpio_relay import RelayOutput
from controller.fleet.house import PLANT_BUS, PlantHouse, UnmodelledChannelError
from controller.fleet.provision import write_secret
from controller.fleet.sim import FleetController, plan_fleet, site_layout_text
from controller.layout.load import load_layout, parse_text
from controller.links.state import change_signature, change_signature_of, state_message
from controller.readings import Quality
from controller.runtime import RunOptions
from controller.sim.world import METER_START_KWH

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "layouts/demo.toml"


@pytest.fixture
def house() -> PlantHouse:
    return PlantHouse(load_layout(DEMO), ManualClock())


@pytest.mark.parametrize(
    ("channel", "plant_value"),
    [
        ("tank-top", lambda h: h.plant.probes()["tank-top"]),
        ("tank-mid", lambda h: h.plant.probes()["tank-mid"]),
        ("tank-bottom", lambda h: h.plant.probes()["tank-bottom"]),
        ("hp-leaving", lambda h: h.plant.probes()["hp-leaving"]),
        ("outdoor", lambda h: h.plant.probes()["outdoor"]),
        ("house-air", lambda h: h.plant.probes()["house-air"]),
        ("dist-supply", lambda h: h.plant.probes()["dist-supply"]),
        ("hp-flow", lambda h: h.plant.flows()["hp-flow"]),
        ("hp-power", lambda h: h.plant.heat_pump_electric_w),
        ("hp-energy", lambda h: METER_START_KWH + h.plant.heat_pump_electric_kwh),
        ("grid-power", lambda h: h.p1.flows.net_w),
        ("grid-import-t1", lambda h: h.p1.import_kwh[0]),
        ("grid-export-t2", lambda h: h.p1.export_kwh[1]),
        ("grid-tariff", lambda h: float(h.p1.tariff)),
    ],
)
def test_each_channel_reads_the_plant(house: PlantHouse, channel: str, plant_value: object) -> None:
    for relay in ("heat-pump", "store-pump"):
        config = house.layout.actuators[relay]
        RelayOutput(relay, config, house.pin(config.pin)).set(True)
    assert isinstance(house.clock, ManualClock)
    for _ in range(120):  # two minutes of a running heat pump, so power, energy and flow are not zero
        house.clock.advance(1.0)
        house.step()
    assert callable(plant_value)
    assert house.readers[channel]() == pytest.approx(plant_value(house))


def test_relays_reach_the_plant_through_their_wiring(house: PlantHouse) -> None:
    assert house.plant_inputs().distribution_pump  # normally closed: an unpowered coil runs the pump
    for name in ("heat-pump", "store-pump", "distribution-pump"):
        config = house.layout.actuators[name]
        RelayOutput(name, config, house.pin(config.pin)).set(name != "distribution-pump")
    inputs = house.plant_inputs()
    assert (inputs.heat_pump, inputs.store_pump, inputs.distribution_pump, inputs.aux_element) == (
        True,
        True,
        False,
        False,
    )


def test_the_meters_count_what_the_plant_draws(house: PlantHouse) -> None:
    for relay in ("heat-pump", "store-pump"):  # the compressor runs only with water flowing
        config = house.layout.actuators[relay]
        RelayOutput(relay, config, house.pin(config.pin)).set(True)
    energy = house.readers["hp-energy"]
    imported = sum(house.p1.import_kwh)
    before = energy()
    assert isinstance(house.clock, ManualClock)
    for _ in range(600):
        house.clock.advance(1.0)
        house.step()
    assert energy() > before
    assert sum(house.p1.import_kwh) > imported


@pytest.mark.parametrize(
    ("device", "channel", "named"),
    [
        ('kind = "dsmr_p1"\nbus = "p1"\ndsmr = 5', 'device = "smart-meter"\ninput = "voltage-l1"', "voltage-l1"),
        ('kind = "dsmr_p1"\nbus = "p1"\ndsmr = 5', 'device = "smart-meter"\ninput = "gas"', "gas"),
    ],
)
def test_a_channel_the_house_cannot_read_is_refused_by_name(device: str, channel: str, named: str) -> None:
    text = DEMO.read_text().replace(
        "[channels.grid-power]", f"[channels.odd-one]\n{channel}\n\n[channels.grid-power]", 1
    )
    layout = parse_text(text)
    with pytest.raises(UnmodelledChannelError, match=f"channel odd-one: .*{named}"):
        PlantHouse(layout, ManualClock())


def test_the_controller_samples_the_plant_and_drives_its_relays(tmp_path: Path) -> None:
    """A FleetController without a link: its sampler reads every channel OK from the plant, the control loop
    decides, and the relay it switches on is on in the plant's inputs."""
    layout = load_layout(DEMO)
    options = RunOptions(state_dir=tmp_path, socket_path=tmp_path / "hearth.sock", duration_s=3.0)

    async def run() -> FleetController:
        controller = FleetController(layout, SystemClock(), options)
        await controller.run()
        return controller

    controller = asyncio.run(run())
    snapshot = controller.sampler.snapshot()
    assert set(snapshot.readings) == set(layout.channels)
    assert all(r.quality is Quality.OK for r in snapshot.readings.values()), snapshot.readings
    assert {c.bus for c in controller.sampler.channels} == {PLANT_BUS}
    assert controller.loop is not None and controller.loop.ticks > 0
    inputs = controller.house.plant_inputs()  # stopped: the plant sees, through each relay's wiring, its safe state
    seen = {
        "heat-pump": inputs.heat_pump,
        "store-pump": inputs.store_pump,
        "distribution-pump": inputs.distribution_pump,
        "aux-element": inputs.aux_element,
    }
    assert seen == {name: config.safe_state == "on" for name, config in layout.actuators.items()}
    # What the ATN link compares at every tick is what the message it would build says
    assert controller.state_signature() == change_signature(controller.state_message())
    assert change_signature_of(None, [], {}) == change_signature(state_message("x", 0.0, snapshot, None))


def test_sites_are_shared_out_over_the_workers(tmp_path: Path) -> None:
    for n in range(1, 6):
        write_secret(tmp_path / f"site-{n:03d}.mqtt-password", "pw")
    urls = ["mqtt://127.0.0.1:1"]
    shares = [plan_fleet(DEMO, 5, urls, tmp_path, tmp_path / "state", share=(i, 2)) for i in range(2)]
    assert [[s.site for s in share] for share in shares] == [
        ["site-001", "site-003", "site-005"],
        ["site-002", "site-004"],
    ]
    whole = parse_text(site_layout_text(DEMO.read_text(), "site-004", urls, tmp_path / "pw", 3))
    assert shares[1][1].layout.sim == whole.sim  # a site's seed does not depend on the worker it runs in
