"""Signed technician overrides over MQTT, at the controller's handler: every refusal of issue 16 with its reason and
nothing switched, the accepted path with its audit (technician, key fingerprint, "via MQTT"), replays refused across
a restart, random byte flips always refused, and key files with loose permissions refused.

The handler runs against a real store on disk and the real `OverrideBook`; the broker and the TUI are in
tests/test_remote_e2e.py."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller import protocol
from controller.clock import ManualClock
from controller.overrides import OverrideBook
from controller.remote.gate import Gate, trusted_keys
from controller.remote.handler import RemoteOverrides
from controller.remote.keys import KeyFileError, fingerprint, load_private, new_pair, public_text
from controller.remote.signing import Signer, sign
from controller.store import Store
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
SITE = LAYOUT.site.id
WALL0 = 1_767_225_600.0
ALICE = Ed25519PrivateKey.generate()
MALLORY = Ed25519PrivateKey.generate()  # a key the site does not list
HEARTH = str(Path(sys.executable).parent / "hearth")


def idle_state() -> protocol.State:
    pump = protocol.ActuatorStateMsg(on=False, source="policy", reason="idle")
    return protocol.State(site=SITE, ts=WALL0, mode="LOCAL", reason="", readings={}, actuators={"heat-pump": pump})


@dataclass
class Site:
    handler: RemoteOverrides
    book: OverrideBook
    store: Store
    clock: ManualClock
    settled: list[int]

    def send(self, payload: bytes, retained: bool = False) -> protocol.Response:
        return asyncio.run(self.handler.handle(payload, retained))

    def override_events(self) -> list[dict[str, object]]:
        return [e.data for _, e in self.store.events_after(0) if e.kind == "override"]


def open_site(path: Path, clock: ManualClock) -> Site:
    store = Store.open(path)
    book = OverrideBook(store, LAYOUT, clock)
    gate = Gate(SITE, trusted_keys([("alice", public_text(ALICE.public_key()))]), store)
    settled: list[int] = []

    async def settle() -> None:
        settled.append(1)

    return Site(RemoteOverrides(gate, book, clock, settle, idle_state), book, store, clock, settled)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    opened = open_site(tmp_path / "store.sqlite", ManualClock(WALL0))
    yield opened
    opened.store.close()


def alice(site: str = SITE, key: Ed25519PrivateKey = ALICE, name: str = "alice") -> Signer:
    return Signer(name, key, site)


def heat_pump_on(signer: Signer, now: float = WALL0, **changes: object) -> protocol.SignedOverride:
    return signer.request("override", now, target="heat-pump", value=True, duration_s=1200.0, reason="call-out")


def assert_nothing_switched(site: Site) -> None:
    assert site.book.active() == []
    assert site.override_events() == []
    assert site.settled == []  # the control loop was never even woken


# ---- accepted -------------------------------------------------------------------------------------------


def test_a_signed_override_is_carried_out_like_a_local_one_and_audited(site: Site) -> None:
    answer = site.send(heat_pump_on(alice()).wire())
    assert answer.ok and answer.error is None, answer
    assert answer.override is not None and answer.override.target == "heat-pump" and answer.override.value is True
    assert answer.override.expires_at == pytest.approx(WALL0 + 1200)
    assert answer.actuator is not None and answer.user == "alice"
    (active,) = site.book.active()
    assert (active.who, active.target, active.value) == ("alice", "heat-pump", True)
    key = fingerprint(ALICE.public_key())
    (event,) = site.override_events()
    assert event["who"] == "alice" and event["action"] == "set"
    assert event["origin"] == f"via MQTT, signed with key {key}"
    message = site.store.events_after(0)[-1][1].message
    assert "alice set heat-pump on" in message and "via MQTT" in message and key in message


def test_keepalive_and_release_are_signed_too(site: Site) -> None:
    made = site.send(heat_pump_on(alice()).wire()).override
    assert made is not None
    site.clock.advance(60)
    kept = site.send(alice().request("keepalive", site.clock.now(), override_id=made.id, duration_s=3600.0).wire())
    assert kept.ok and kept.override is not None
    assert kept.override.expires_at == pytest.approx(site.clock.now() + 3600)
    released = site.send(alice().request("release", site.clock.now(), override_id=made.id).wire())
    assert released.ok, released
    assert site.book.active() == []
    assert [e["action"] for e in site.override_events()] == ["set", "keepalive", "release"]
    assert all("via MQTT" in str(e["origin"]) for e in site.override_events())


def test_the_same_limits_apply_as_on_the_local_socket(site: Site) -> None:
    too_long = alice().request("override", WALL0, target="heat-pump", value=True, duration_s=90_000.0)
    answer = site.send(too_long.wire())
    assert not answer.ok and answer.error == "an override lasts at most 24 h (86400 s); 90000 s was asked for"
    unknown = site.send(alice().request("override", WALL0, target="sauna", value=True).wire())
    assert not unknown.ok and unknown.error is not None and "unknown override target 'sauna'" in unknown.error
    assert site.book.active() == []


# ---- refused, each with its reason, and nothing switched ---------------------------------------------------


def _unsigned() -> bytes:
    return heat_pump_on(alice()).model_copy(update={"signature": None}).wire()


def _bad_signature() -> bytes:
    other = alice().request("override", WALL0, target="heat-pump", value=False)
    return heat_pump_on(alice()).model_copy(update={"signature": other.signature}).wire()


def _unknown_key() -> bytes:
    return heat_pump_on(alice(key=MALLORY)).wire()


def _unknown_technician() -> bytes:
    return heat_pump_on(alice(key=MALLORY, name="mallory")).wire()


def _other_site() -> bytes:
    return heat_pump_on(alice(site="other-site")).wire()


def _expired() -> bytes:
    return heat_pump_on(alice(), now=WALL0 - 600).wire()


def _too_far_ahead() -> bytes:
    return heat_pump_on(alice(), now=WALL0 + 3600).wire()


def _modified_value() -> bytes:
    signed = heat_pump_on(alice())
    return signed.model_copy(update={"value": False}).wire()


def _modified_duration() -> bytes:
    signed = heat_pump_on(alice())
    return signed.model_copy(update={"duration_s": 86_400.0}).wire()


def _respelled() -> bytes:
    return heat_pump_on(alice()).wire().replace(b'"duration_s":1200.0', b'"duration_s":1.2e3')


def _re_signed_by_another_key_under_alices_name() -> bytes:
    return sign(heat_pump_on(alice()), MALLORY).wire()


REFUSALS = {
    "no signature": (_unsigned, "not signed: a request over MQTT needs a technician's signature"),
    "a bad signature": (_bad_signature, "bad signature: it does not match this request and alice's key"),
    "an unknown key": (_unknown_key, "unknown key: alice's key SHA256:"),
    "an unknown technician": (_unknown_technician, "is not listed: unknown technician"),
    "another site": (_other_site, "wrong site: the request is for 'other-site', this is 'demo-house'"),
    "an expired request": (_expired, "expired: request"),
    "an expiry too far ahead": (_too_far_ahead, "expires too far ahead"),
    "a modified value": (_modified_value, "bad signature: it does not match this request"),
    "a modified duration": (_modified_duration, "bad signature: it does not match this request"),
    "another spelling": (_respelled, "not in canonical form"),
    "another key, alice's name": (_re_signed_by_another_key_under_alices_name, "bad signature"),
    "not JSON": (lambda: b"{not json", "not JSON"),
    "NaN": (lambda: _unsigned().replace(b'"duration_s":1200.0', b'"duration_s":NaN'), "NaN is not a number"),
    "deep nesting": (lambda: b"[" * 100_000, "nested"),
    "an unknown field": (lambda: _unsigned().replace(b"{", b'{"admin":true,', 1), "Extra inputs are not permitted"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_every_refusal_says_why_and_switches_nothing(site: Site, case: str) -> None:
    make, reason = REFUSALS[case]
    answer = site.send(make())
    assert not answer.ok
    assert answer.error is not None and reason in answer.error, answer.error
    assert_nothing_switched(site)


def test_a_retained_request_is_refused(site: Site) -> None:
    answer = site.send(heat_pump_on(alice()).wire(), retained=True)
    assert not answer.ok and answer.error is not None and "must not be retained" in answer.error
    assert_nothing_switched(site)


def test_a_replayed_id_is_refused_even_after_a_restart(tmp_path: Path) -> None:
    clock = ManualClock(WALL0)
    request = heat_pump_on(alice()).wire()
    first = open_site(tmp_path / "s.sqlite", clock)
    assert first.send(request).ok
    again = first.send(request)
    assert not again.ok and again.error is not None and again.error.startswith("replayed: request id")
    assert len(first.override_events()) == 1
    first.store.close()
    restarted = open_site(tmp_path / "s.sqlite", clock)  # a new process: the ids are in the store
    try:
        clock.advance(30)
        after = restarted.send(request)
        assert not after.ok and after.error is not None and after.error.startswith("replayed:")
        assert len(restarted.override_events()) == 1
    finally:
        restarted.store.close()


def test_remembered_ids_are_forgotten_once_their_request_has_expired(site: Site) -> None:
    for _ in range(5):
        assert site.store.remember_request(f"alice/{_}", WALL0 + 100, WALL0)
    assert not site.store.remember_request("alice/0", WALL0 + 100, WALL0)
    assert site.store.remember_request("alice/new", WALL0 + 400, WALL0 + 200)  # the five are past their expiry
    rows = site.store._conn.execute("SELECT count(*) FROM request_ids").fetchone()[0]
    assert rows == 1


# ---- random byte flips: always refused --------------------------------------------------------------------

VALID = heat_pump_on(alice()).wire()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(flips=st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(1, 255)), min_size=1, max_size=3))
def test_random_byte_flips_of_a_valid_request_are_always_refused(tmp_path: Path, flips: list[tuple[int, int]]) -> None:
    payload = bytearray(VALID)
    for position, mask in flips:
        payload[position] ^= mask
    if bytes(payload) == VALID:  # two flips of one byte that cancel out
        return
    site = open_site(tmp_path / f"flip-{uuid.uuid4().hex}.sqlite", ManualClock(WALL0))  # a fresh store each time
    try:
        answer = site.send(bytes(payload))
        assert not answer.ok, f"a flipped request was accepted: {bytes(payload)!r}"
        assert answer.error
        assert_nothing_switched(site)
        assert site.send(VALID).ok  # the untouched request would have been accepted (a fresh store)
    finally:
        site.store.close()


# ---- key files ----------------------------------------------------------------------------------------------


def test_a_new_key_is_private_and_loads(tmp_path: Path) -> None:
    private, public = new_pair("alice", tmp_path / "keys")
    assert private.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "keys").stat().st_mode & 0o777 == 0o700
    name, key = load_private(private)
    assert name == "alice"
    assert public.read_text().split() == [public_text(key.public_key()), "alice"]
    with pytest.raises(KeyFileError, match="exists already; not overwriting"):
        new_pair("alice", tmp_path / "keys")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o606])
def test_a_key_others_may_read_or_change_is_refused_with_a_clear_message(tmp_path: Path, mode: int) -> None:
    private, _ = new_pair("alice", tmp_path)
    private.chmod(mode)
    with pytest.raises(KeyFileError) as refused:
        load_private(private)
    assert str(refused.value).startswith(f"key file {private} has mode {mode:04o}: others may read or change it")
    assert f"chmod 600 {private}" in str(refused.value)


def test_the_cli_refuses_a_loose_key_and_the_tui_will_not_start_with_one(tmp_path: Path) -> None:
    private, _ = new_pair("alice", tmp_path)
    private.chmod(0o644)
    shown = subprocess.run([HEARTH, "keys", "show", str(private)], capture_output=True, text=True)
    assert shown.returncode == 1 and "has mode 0644: others may read or change it" in shown.stderr
    tui = subprocess.run(
        [HEARTH, "tui", "--mqtt", "mqtt://127.0.0.1:1", "--site", SITE, "--key", str(private)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert tui.returncode == 2
    assert tui.stderr.startswith(f"hearth tui: --key: key file {private} has mode 0644")


def test_keys_new_prints_the_layout_lines_that_trust_it(tmp_path: Path) -> None:
    made = subprocess.run([HEARTH, "keys", "new", "bob", "--dir", str(tmp_path)], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    _, key = load_private(tmp_path / "bob.key")
    assert f'name = "bob"\nkey = "{public_text(key.public_key())}"' in made.stdout
    assert fingerprint(key.public_key()) in made.stdout


def test_a_layout_trusting_keys_turns_remote_overrides_on() -> None:
    from tests.simhelpers import layout_from

    text = (Path(__file__).resolve().parent.parent / "layouts/demo.toml").read_text()
    layout = layout_from(
        text + '\n[links.atn]\nurl = "mqtt://127.0.0.1:1883"\nremote_overrides = true\n'
        f'[[links.atn.technicians]]\nname = "alice"\nkey = "{public_text(ALICE.public_key())}"\n'
    )
    assert layout.links.atn is not None and layout.links.atn.remote_overrides
    assert json.loads(layout.model_dump_json())["links"]["atn"]["technicians"][0]["name"] == "alice"
