"""Hostile input never crashes or bricks the controller (issue 9, defects 1 and 2).

- Deeply nested JSON on any ATN topic is a structured rejection, never a RecursionError out of the parse path.
- NaN and ±Infinity are refused inside decoding and by every model, so a lease with a NaN never reaches the store.
- A stored row that no longer validates (what an older Hearth left after storing a NaN as NULL) is quarantined with
  an event naming it, and `hearth run` starts without it.
"""

from __future__ import annotations

import json
import math
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller import protocol
from controller.clock import ManualClock
from controller.control.inbox import AtnInbox
from controller.control.types import Lease
from controller.decode import MQTT_LIMITS, SOCKET_LIMITS, Limits, Rejected, decode_json, nesting_depth
from controller.links.atn import AtnLinkRunner
from controller.links.config import AtnLink
from controller.store import Store
from tests.simhelpers import demo_layout

ROOT = Path(__file__).resolve().parent.parent
HEARTH = str(Path(sys.executable).parent / "hearth")
LAYOUT = demo_layout()
TOPICS = protocol.Topics("demo-house")
T0 = 1_800_000_000.0


@pytest.fixture
def link(tmp_path: Path) -> Iterator[AtnLinkRunner]:
    store = Store.open(tmp_path / "link.sqlite")
    runner = AtnLinkRunner(
        AtnLink(url="mqtt://127.0.0.1:1883"),
        LAYOUT,
        store,
        AtnInbox(),
        ManualClock(start=T0),
        state=lambda: protocol.State(site="demo-house", ts=T0, mode="LOCAL", reason="", readings={}, actuators={}),
    )
    yield runner
    store.close()


def rejection(link: AtnLinkRunner, topic: str, payload: bytes) -> protocol.Ack:
    ((reply_topic, body),) = link.handle(topic, payload)
    assert reply_topic == TOPICS.ack
    ack = protocol.parse(protocol.Ack, body)
    assert not ack.accepted
    return ack


# ---- defect 1: deep nesting ------------------------------------------------------------------------------------


@pytest.mark.parametrize("topic", TOPICS.from_atn)
@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deep_nesting_on_every_atn_topic_is_rejected_not_a_crash(
    link: AtnLinkRunner, topic: str, opener: bytes
) -> None:
    payload = opener * 200_000
    ack = rejection(link, topic, payload[: MQTT_LIMITS.max_bytes])
    assert "levels deep" in ack.reason, ack.reason
    assert link.inbox.take() == ([], None)  # nothing reached the control loop


def test_depth_is_counted_outside_strings_only() -> None:
    assert nesting_depth(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[", "b": [1, [2]]}') == 3
    assert nesting_depth(b'"\\"[[[["') == 0
    assert decode_json(b'{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}', Limits(100, max_depth=1)) == {"a": "[" * 38}


def test_a_socket_line_as_deep_as_the_line_limit_allows_is_rejected() -> None:
    with pytest.raises(Rejected) as caught:
        protocol.parse(protocol.Request, b"[" * 60_000, SOCKET_LIMITS)
    assert caught.value.code == "too-deep"


# ---- defect 2: NaN ---------------------------------------------------------------------------------------------

NON_FINITE = ["NaN", "Infinity", "-Infinity", "1e400", "-1e999"]


def lease_text(**fields: str) -> bytes:
    body = {"issued_at": str(T0 - 1), "valid_until": str(T0 + 600), **fields}
    return ('{"v": 1, "id": "x", ' + ", ".join(f'"{k}": {v}' for k, v in body.items()) + "}").encode()


@pytest.mark.parametrize("number", NON_FINITE)
@pytest.mark.parametrize("field", ["issued_at", "valid_until"])
def test_a_lease_with_a_non_finite_time_is_rejected_and_never_stored(
    link: AtnLinkRunner, field: str, number: str
) -> None:
    ack = rejection(link, TOPICS.dispatch, lease_text(**{field: number}))
    assert "finite" in ack.reason or "too large" in ack.reason, ack.reason
    assert ack.id == "x"
    assert link.store.latest_lease() is None
    assert link.inbox.take() == ([], None)


@pytest.mark.parametrize("number", NON_FINITE)
def test_non_finite_numbers_are_refused_in_every_inbound_message(link: AtnLinkRunner, number: str) -> None:
    for topic, payload in [
        (TOPICS.heartbeat, f'{{"v": 1, "atn": "a", "ts": {number}, "seq": 1}}'),
        (TOPICS.telemetry_ack, f'{{"v": 1, "upto_seq": {number}}}'),
        (TOPICS.dispatch, lease_text(setpoints=f'{{"comfort": {number}}}').decode()),
        (TOPICS.dispatch, lease_text(prices=f'[{{"v": 1, "start": 1, "end": 2, "price": {number}}}]').decode()),
    ]:
        rejection(link, topic, payload.encode())
    assert link.last_heartbeat is None


def test_models_built_in_code_refuse_non_finite_numbers_too() -> None:
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(ValueError):
            protocol.Heartbeat(atn="a", ts=bad, seq=1)
        with pytest.raises(ValueError):
            Lease(id="x", issued_at=bad, valid_until=T0, received_at=T0)


# ---- defect 2: a bad row in the store -------------------------------------------------------------------------


def write_bad_rows(path: Path) -> None:
    """What an older Hearth stored after accepting `issued_at: NaN` (SQLite keeps NaN as NULL, so the JSON body has
    `null`), plus a forecast and an override edited into nonsense."""
    with Store.open(path) as store:
        store.save_lease(Lease(id="good", issued_at=T0 - 10, valid_until=T0 + 60, received_at=T0 - 10))
    db = sqlite3.connect(path)
    with db:
        body = json.dumps({"id": "nan-lease", "issued_at": None, "valid_until": T0 + 600, "received_at": T0})
        db.execute(
            "INSERT INTO leases (id, received_at, valid_until, body) VALUES (?, ?, ?, ?)",
            ("nan-lease", T0, T0 + 600, body),
        )
        db.execute(
            "INSERT INTO forecasts (received_at, body) VALUES (?, ?)", (T0, '{"received_at": NaN, "points": []}')
        )
        db.execute(
            "INSERT INTO overrides (id, target, value, created_at, expires_at, who) VALUES (?, ?, ?, ?, ?, ?)",
            ("ov-bad", "heat-pump", "[[[[", T0, T0 + 60, "tech"),
        )
        db.execute("INSERT INTO events (ts, kind, message, data) VALUES (?, ?, ?, ?)", (T0, "x", "bad data", "{NaN"))
    db.close()


def test_bad_rows_are_quarantined_with_an_event_and_the_rest_still_reads(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    write_bad_rows(path)
    with Store.open(path) as store:
        assert store.latest_lease() is not None and store.latest_lease().id == "good"  # type: ignore[union-attr]
        moved = store.quarantine_invalid(T0)
        assert len(moved) == 3, moved
        assert store.quarantine_invalid(T0) == []  # moved aside once
        events = [event for _, event in store.events_after(0)]
        bad_event = next(e for e in events if e.message == "bad data")
        assert "unreadable" in bad_event.data
        quarantined = [e for e in events if e.message.startswith("quarantined")]
        assert {(e.data["table"], e.data["key"]) for e in quarantined} == {
            ("leases", "nan-lease"),
            ("forecasts", "1"),
            ("overrides", "ov-bad"),
        }
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM quarantine").fetchone()[0] == 3  # kept for a person to look at
    db.close()


RUN_BRIEFLY = ("--log-format", "json", "--duration", "2", "--speed", "10")


def test_hearth_run_starts_on_a_store_with_bad_rows(tmp_path: Path) -> None:
    """Before: `store.latest_lease()` failed validation at every start and the process exited 70 (a restart loop)."""
    write_bad_rows(tmp_path / "demo.sqlite")
    result = subprocess.run(
        [
            HEARTH,
            "run",
            "--layout",
            str(ROOT / "layouts/demo.toml"),
            "--state-dir",
            str(tmp_path),
            "--log-format",
            "json",
            "--duration",
            "2",
            "--speed",
            "10",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "store row quarantined" in result.stderr
    with Store.open(tmp_path / "demo.sqlite") as store:
        messages = [event.message for _, event in store.events_after(0)]
    assert any("quarantined leases row nan-lease" in m for m in messages), messages


def test_state_directory_and_store_are_private_under_umask_022(tmp_path: Path) -> None:
    """`hearth run` started by hand from a shell with umask 022: before, the state directory was 0755 and the store
    0644, so any local user could read the readings, the overrides and the audit trail."""
    state = tmp_path / "fresh" / "state"
    result = subprocess.run(
        [HEARTH, "run", "--layout", str(ROOT / "layouts/demo.toml"), "--state-dir", str(state), *RUN_BRIEFLY],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        umask=0o022,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert state.stat().st_mode & 0o077 == 0, oct(state.stat().st_mode)
    files = [path for path in state.iterdir() if path.name.startswith("demo.sqlite")]
    assert files and all(path.stat().st_mode & 0o077 == 0 for path in files), [oct(p.stat().st_mode) for p in files]


def test_an_existing_world_readable_store_is_made_private(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    Store.open(path).close()
    path.chmod(0o644)
    Store.open(path).close()
    assert path.stat().st_mode & 0o777 == 0o600
