"""Signed overrides end to end: a private mosquitto with the deploy ACL, `hearth run` with remote_overrides and a
trusted key, and the TUI (Textual's Pilot) over MQTT with the technician's key file. The technician overrides the
emulated heat pump from the override form, sees the countdown, releases it, overrides again and lets it expire.
Then the two fences: a monitor's account cannot get a request to the controller at all, and a technician's broker
password without the key is refused by the controller. Nothing switches either way."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.widgets import Select

from controller.protocol import Request
from controller.remote.keys import load_private, new_pair, public_text
from controller.remote.signing import Signer
from tests.broker import Broker, start_broker
from tests.test_tui_app import SIZE
from tests.test_tui_e2e import Controller
from tests.test_tui_helpers import settle, text_of
from tui.app import HearthApp
from tui.screens.override import OverrideScreen
from tui.transport import TransportError
from tui.transport.mqtt import MqttTransport
from tui.widgets.tables import KeyedTable

ROOT = Path(__file__).resolve().parent.parent
SITE = "demo-house"


class Site:
    def __init__(self, broker: Broker, controller: Controller, key_file: Path) -> None:
        self.broker = broker
        self.controller = controller
        self.key_file = key_file

    def heat_pump(self) -> dict[str, Any]:
        actuators = self.controller.state()["actuators"]
        assert isinstance(actuators, dict)
        return dict(actuators["heat-pump"])

    def overrides(self) -> list[dict[str, Any]]:
        overrides = self.controller.state()["overrides"]
        assert isinstance(overrides, list)
        return overrides

    def transport(self, user: str = "technician", key: bool = True) -> MqttTransport:
        password = self.key_file.parent / f"{user}.password"
        password.write_text(self.broker.users[user])
        signer = None
        if key:
            name, private = load_private(self.key_file)
            signer = Signer(name, private, SITE)
        return MqttTransport(f"mqtt://127.0.0.1:{self.broker.port}", SITE, user, str(password), signer=signer)


def quick_heat_pump(layout: str) -> str:
    """layouts/demo.toml with the heat pump's interlocks short (1 s on/off, 1 s pre-run), so an override switches it
    within a test, not after the 3 minutes of minimum off-time that follow a start."""
    quick = layout.replace("min_on_s = 300\nmin_off_s = 180\nmax_starts_per_hour = 3", "min_on_s = 1\nmin_off_s = 1")
    quick = quick.replace("prerun_s = 30", "prerun_s = 1")
    assert quick.count("min_off_s = 1\n") >= 1 and "prerun_s = 1\n" in quick, "layouts/demo.toml changed"
    return quick


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("remote")
    broker = start_broker(tmp_path / "broker", site=SITE)
    secret = tmp_path / "controller-password"
    secret.write_text(broker.users[SITE])
    key_file, _ = new_pair("alice", tmp_path / "keys")
    _, key = load_private(key_file)
    layout = tmp_path / "layout.toml"
    layout.write_text(
        quick_heat_pump((ROOT / "layouts/demo.toml").read_text())
        + f'\n[links.atn]\nurl = "mqtt://127.0.0.1:{broker.port}"\nusername = "{SITE}"\n'
        f'password_file = "{secret}"\nstate_every_s = 1\nremote_overrides = true\n'
        f'[[links.atn.technicians]]\nname = "alice"\nkey = "{public_text(key.public_key())}"\n'
    )
    controller = Controller(layout, tmp_path / "state")
    deadline = time.monotonic() + 20
    while "heat-pump" not in dict(controller.state()["actuators"]):  # type: ignore[call-overload]
        assert time.monotonic() < deadline, "no control decision within 20 s"
        time.sleep(0.2)
    try:
        yield Site(broker, controller, key_file)
    finally:
        controller.stop()
        broker.stop()


async def _wait(condition: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(condition):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def _override_from_the_form(app: HearthApp, pilot: Any, duration_id: str) -> None:
    await pilot.press("o")
    await settle(pilot, lambda: isinstance(app.screen, OverrideScreen))
    dialog = app.screen
    dialog.query_one("#target", Select).value = "heat-pump"
    await pilot.click("#value-on")
    await pilot.click(f"#{duration_id}")
    await pilot.click("#confirm")
    await settle(pilot, lambda: "Accepted" in text_of(dialog.query_one("#result")), timeout_s=10)
    await pilot.press("escape")
    await settle(pilot, lambda: not isinstance(app.screen, OverrideScreen))


def test_a_technician_with_a_key_overrides_releases_and_sees_the_expiry_over_mqtt(site: Site) -> None:
    async def scenario() -> None:
        app = HearthApp(site.transport())
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None and app.can_change, timeout_s=20)
            assert app.model.role == "technician" and not app.changes_hidden
            assert site.heat_pump()["source"] != "override"

            # Override from the form: the controller's verdict, then the countdown on the overview.
            await _override_from_the_form(app, pilot, "dur-600")
            await settle(pilot, lambda: bool(app.model.state and app.model.state.overrides), timeout_s=10)
            table = app.screen.query_one("#overrides", KeyedTable)
            (shown,) = app.model.state.overrides if app.model.state else []
            assert shown.who == "alice"
            assert "left" in str(table.get_cell(shown.id, "left"))
            await _wait(lambda: site.heat_pump()["on"] and site.heat_pump()["source"] == "override", 30, "the relay")
            assert "override by alice" in site.heat_pump()["reason"]

            # The audit: an event naming the technician, the key and "via MQTT", sent over MQTT to the TUI.
            await settle(pilot, lambda: any("via MQTT" in e.message for e in app.model.events), timeout_s=10)
            audit = next(e for e in app.model.events if "via MQTT" in e.message)
            assert "alice set heat-pump on" in audit.message and "SHA256:" in audit.message
            assert audit.kind == "override" and str(audit.data["origin"]).startswith(
                "via MQTT, signed with key SHA256:"
            )

            # Release it from the overview (x on the selected override).
            table.focus()
            await pilot.press("x")
            await settle(pilot, lambda: app.model.state is not None and not app.model.state.overrides, timeout_s=10)
            assert app.model.ended[-1].how == "released"
            assert site.overrides() == []

            # Override again, keep it alive for 3 s only (k), and watch it expire.
            await _override_from_the_form(app, pilot, "dur-1200")
            await settle(pilot, lambda: bool(app.model.state and app.model.state.overrides), timeout_s=10)
            app.override_durations["heat-pump"] = 3.0
            app.screen.query_one("#overrides", KeyedTable).focus()
            await pilot.press("k")
            await settle(pilot, lambda: bool(app.model.ended) and app.model.ended[-1].how == "expired", timeout_s=15)
            assert "expired at" in text_of(app.screen.query_one("#overrides-note"))
            assert site.overrides() == []

    asyncio.run(scenario())


def _nothing_switched_for(site: Site, seconds: float, since: float) -> None:
    """No override appears for `seconds`, and no override is set after the request (the events topic carries every
    stored event, at least once; an earlier test's override ending may show up, a new one may not)."""
    with site.broker.subscribe("monitor", f"hearth/v1/{SITE}/events") as events:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            assert site.overrides() == []
            time.sleep(0.3)
        new = [json.loads(payload) for _, payload in events.messages]
    assert [e for e in new if e["kind"] == "override" and e["data"].get("action") == "set" and e["ts"] >= since] == []


def test_a_monitors_account_reaches_nothing_even_with_a_valid_signature(site: Site) -> None:
    name, key = load_private(site.key_file)
    since = time.time()
    signed = Signer(name, key, SITE).request("override", since, target="heat-pump", value=True)
    with site.broker.subscribe("technician", f"hearth/v1/{SITE}/override/reply") as replies:
        site.broker.pub("monitor", f"hearth/v1/{SITE}/override", signed.wire())  # the broker drops it
        _nothing_switched_for(site, 2.0, since)
        assert replies.messages == []
    assert "Denied PUBLISH from" in site.broker.log_file.read_text()

    # The TUI with a monitor's account and the key: the request is sent, and no answer ever comes.
    async def scenario() -> str:
        app = HearthApp(site.transport(user="monitor"))
        async with app.run_test(size=SIZE) as pilot:
            await settle(pilot, lambda: app.model.state is not None and app.can_change, timeout_s=20)
            request = Request(id="m-1", op="override", target="heat-pump", value=True)
            try:
                answer = await app.transport.request(request, timeout_s=2.0)
            except TransportError as error:
                return str(error)
            raise AssertionError(f"a monitor's request got an answer: {answer}")

    since = time.time()
    assert asyncio.run(scenario()).startswith("no answer from the controller within 2 s")
    _nothing_switched_for(site, 0.5, since)


def test_a_technicians_password_without_the_key_changes_nothing(site: Site) -> None:
    since = time.time()
    unsigned = json.dumps(
        {"v": 1, "id": "stolen-password-1", "op": "override", "technician": "alice", "key": "SHA256:0", "site": SITE,
         "target": "heat-pump", "value": True, "expires_at": time.time() + 60}
    )  # fmt: skip
    with site.broker.subscribe("technician", f"hearth/v1/{SITE}/override/reply") as replies:
        site.broker.pub("technician", f"hearth/v1/{SITE}/override", unsigned)
        assert replies.wait_until(lambda m: len(m) == 1, timeout_s=5), "no answer from the controller"
        answer = json.loads(replies.messages[0][1])
    assert answer["ok"] is False and answer["id"] == "stolen-password-1"
    assert answer["error"] == "not signed: a request over MQTT needs a technician's signature"
    _nothing_switched_for(site, 1.0, since)
