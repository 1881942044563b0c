"""The reference ATN (`hearth atn-sim`): prices and leases, the telemetry ledger, message handling, a real broker."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import aiomqtt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from controller import protocol
from controller.atnsim.cli import add_parser, parse_broker, run_cli
from controller.atnsim.ledger import Ledger
from controller.atnsim.prices import (
    Band,
    DailyProfile,
    FileSeries,
    PriceFileError,
    band_at,
    lease_actuators,
    load_prices,
    parse_prices,
)
from controller.atnsim.sim import KINDS, WILDCARD_ABOVE_SITES, AtnConfig, AtnSim, subscription_filters
from controller.clock import ManualClock
from controller.protocol import TelemetryRow
from tests.broker import Broker, start_broker

SITE = "demo-house"
TOPICS = protocol.Topics(SITE)
JAN1 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()


def at(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def rows(*seqs: int, ts: float = JAN1) -> list[TelemetryRow]:
    return [(seq, ts + seq, "tank-top", 50.0 + seq / 10, "ok") for seq in seqs]


def telemetry(seqs: list[int], site: str = SITE, historical: bool = False) -> bytes:
    message = protocol.Telemetry(
        site=site, first_seq=min(seqs), last_seq=max(seqs), historical=historical, readings=rows(*seqs)
    )
    return message.to_json()


# ---- prices ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("utc_time", "price", "band"),
    [
        ("00:00", 0.15, Band.CHEAP),
        ("06:59", 0.15, Band.CHEAP),
        ("07:00", 0.30, Band.NORMAL),
        ("12:30", 0.30, Band.NORMAL),
        ("13:00", 0.15, Band.CHEAP),
        ("15:59", 0.15, Band.CHEAP),
        ("16:00", 0.30, Band.NORMAL),
        ("17:00", 0.45, Band.EXPENSIVE),
        ("20:59", 0.45, Band.EXPENSIVE),
        ("21:00", 0.30, Band.NORMAL),
        ("23:59", 0.30, Band.NORMAL),
    ],
)
def test_daily_profile_by_hour_in_utc(utc_time: str, price: float, band: Band) -> None:
    profile = DailyProfile()
    ts = at(f"2026-03-10T{utc_time}:00+00:00")
    assert profile.price_at(ts) == price
    assert band_at(profile, ts) is band


@pytest.mark.parametrize(
    ("zone", "utc", "band"),
    [
        ("Europe/London", "2026-07-01T06:30:00+00:00", Band.NORMAL),  # 07:30 BST
        ("Europe/London", "2026-01-15T06:30:00+00:00", Band.CHEAP),  # 06:30 GMT
        ("America/New_York", "2026-01-15T22:00:00+00:00", Band.EXPENSIVE),  # 17:00 EST
        ("America/New_York", "2026-01-15T04:00:00+00:00", Band.NORMAL),  # 23:00 EST
        ("Asia/Kolkata", "2026-01-15T01:00:00+00:00", Band.CHEAP),  # 06:30 IST
        ("Asia/Kolkata", "2026-01-15T01:30:00+00:00", Band.NORMAL),  # 07:00 IST
    ],
)
def test_daily_profile_follows_the_site_time_zone(zone: str, utc: str, band: Band) -> None:
    assert band_at(DailyProfile(ZoneInfo(zone)), at(utc)) is band


@pytest.mark.parametrize(
    ("zone", "start"),
    [("UTC", "2026-01-01T00:00:00+00:00"), ("Europe/Paris", "2026-03-28T12:17:00+00:00"), ("Asia/Kolkata", JAN1)],
)
def test_profile_slots_cover_the_next_24h_contiguously_and_match_price_at(zone: str, start: str | float) -> None:
    profile = DailyProfile(ZoneInfo(zone))
    now = at(start) if isinstance(start, str) else start
    slots = profile.slots(now, now + 86400)
    assert slots[0].start == now and slots[-1].end == now + 86400
    for before, after in itertools.pairwise(slots):
        assert before.end == after.start
        assert before.price != after.price  # equal neighbours are merged
    for slot in slots:
        assert profile.price_at((slot.start + slot.end) / 2) == slot.price
    assert {slot.price for slot in slots} == {0.15, 0.30, 0.45}


def test_price_files_json_and_csv_with_epoch_iso_and_local_times(tmp_path: Path) -> None:
    paris = ZoneInfo("Europe/Paris")
    as_json = tmp_path / "prices.json"
    as_json.write_text(
        json.dumps(
            [
                {"start": "2026-01-01T01:00:00", "end": "2026-01-01T02:00:00", "price": 0.5},  # Paris time
                {"start": JAN1 - 3600, "end": "2026-01-01T00:00:00Z", "price": "0.1"},  # epoch, ISO with Z
            ]
        )
    )
    series = load_prices(as_json, paris)
    assert series.spans == ((JAN1 - 3600, JAN1, 0.1), (JAN1, JAN1 + 3600, 0.5))
    as_csv = tmp_path / "prices.csv"
    as_csv.write_text(
        f"start,end,price\n# a comment\n\n{JAN1:.0f},{JAN1 + 3600:.0f},0.2\n"
        "2026-01-01T01:00:00+00:00,2026-01-01T03:00:00+00:00,0.4\n"
    )
    csv_series = load_prices(as_csv)
    assert csv_series.spans == ((JAN1, JAN1 + 3600, 0.2), (JAN1 + 3600, JAN1 + 3 * 3600, 0.4))
    assert csv_series.price_at(JAN1 + 1800) == 0.2
    assert csv_series.price_at(JAN1 + 3 * 3600) is None
    assert [s.price for s in csv_series.slots(JAN1 + 1800, JAN1 + 86400)] == [0.2, 0.4]
    assert csv_series.slots(JAN1 + 1800, JAN1 + 86400)[0].start == JAN1 + 1800


def test_naive_iso_times_in_a_price_file_are_site_local() -> None:
    text = json.dumps([{"start": "2026-01-01T01:00:00", "end": "2026-01-01T02:00:00", "price": 0.5}])
    series = parse_prices(text, tz=ZoneInfo("Europe/Paris"))
    assert series.spans == ((JAN1, JAN1 + 3600, 0.5),)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "no price slots"),
        ("[]", "no price slots"),
        ('{"start": 1}', "JSON list"),
        ('[{"start": 10, "end": 20}]', "item 0: expected an object with exactly start, end and price"),
        ('[{"start": 20, "end": 10, "price": 1}]', "ends before it starts"),
        ('[{"start": "soon", "end": 10, "price": 1}]', "neither epoch seconds nor an ISO-8601 time"),
        ('[{"start": 0, "end": 10, "price": "cheap"}]', "not a number"),
        ("0,10,1\n5,15,2\n", "prices:2: this slot overlaps"),
        ("0,10\n", "prices:1: expected start,end,price"),
        ("0,10,nan\n", "not finite"),
        ("[1,", "not JSON"),
    ],
)
def test_bad_price_files_say_where_and_why(text: str, problem: str) -> None:
    with pytest.raises(PriceFileError, match=problem):
        parse_prices(text)


def test_file_prices_are_banded_relative_to_the_next_24h() -> None:
    series = FileSeries([(0, 3600, 50.0), (3600, 7200, 120.0), (7200, 10800, 300.0)])
    # 120 is cheap once 50 is in the past: the band looks at what is still to come
    assert [band_at(series, t) for t in (10, 3700, 7300)] == [Band.CHEAP, Band.CHEAP, Band.NORMAL]
    assert band_at(series, 4000, horizon_s=7200) is Band.CHEAP
    # at 7300 only 300 is left in view: nothing to compare it with, so the controller decides
    assert band_at(series, 20000) is Band.NORMAL  # no price known


@pytest.mark.parametrize(
    ("hours", "band", "actuators"),
    [
        (3, Band.CHEAP, {"heat-pump": True, "store-pump": True}),
        (10, Band.NORMAL, {}),
        (18, Band.EXPENSIVE, {"heat-pump": False}),
    ],
)
def test_the_lease_follows_the_price_band(tmp_path: Path, hours: int, band: Band, actuators: dict[str, bool]) -> None:
    assert lease_actuators(band) == actuators
    clock = ManualClock(JAN1 + hours * 3600)
    sim = AtnSim(AtnConfig(sites=(SITE,), db=tmp_path / "l.sqlite", lease_s=120), clock)
    dispatch = protocol.parse(protocol.Dispatch, sim.dispatch_now(SITE).to_json())
    assert dispatch.actuators == actuators
    assert dispatch.issued_at == clock.now() and dispatch.valid_until == clock.now() + 120
    assert dispatch.prices is not None
    assert dispatch.prices[0].start == clock.now() and dispatch.prices[-1].end == clock.now() + 86400
    assert sim.make_dispatch(SITE).id != dispatch.id
    sim.close()


# ---- ledger ---------------------------------------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    ledger = Ledger.open(tmp_path / "ledger.sqlite")
    yield ledger
    ledger.close()


def test_ledger_ignores_duplicates(ledger: Ledger) -> None:
    assert ledger.store(SITE, rows(1, 2, 3), historical=False) == 3
    assert ledger.store(SITE, rows(2, 3, 4), historical=True) == 1
    assert ledger.count(SITE) == 4
    assert ledger.seq_range(SITE) == (1, 4)
    assert [historical for _, historical in ledger.rows(SITE)] == [False, False, False, True]


def test_a_resent_window_mixing_duplicates_a_conflict_and_new_rows(ledger: Ledger) -> None:
    """Duplicates are recognised by their whole content (a resent window is not offered to the insert at all);
    an int equal to the stored float is the same reading; a seq reused with other content is refused and
    recorded; the rest of the batch is stored; the same conflicting batch again is a conflict again."""
    first = rows(1, 2, 3, 4)
    assert ledger.store(SITE, first, False, covers=(1, 4)) == 4
    same_ts_as_int: TelemetryRow = (3, int(first[2][1]), "tank-top", 50.3, "ok")
    assert same_ts_as_int[1] == first[2][1]
    reused: TelemetryRow = (2, first[1][1], "tank-top", 99.0, "ok")  # only the value differs
    window = [first[0], reused, same_ts_as_int, first[3], *rows(5, 6)]
    assert ledger.store(SITE, window, False, covers=(1, 6)) == 2
    assert ledger.last_conflicts == [(2, first[1], reused)]
    assert ledger.contiguous_upto(SITE) == 6 and ledger.count(SITE) == 6
    assert ledger.store(SITE, window, False, covers=(1, 6)) == 0
    assert ledger.last_conflicts == [(2, first[1], reused)]
    assert ledger.conflicts(SITE) == [(2, first[1], reused), (2, first[1], reused)]
    assert [row for row, _ in ledger.rows(SITE)] == first + rows(5, 6)  # the first content kept


def test_a_gap_holds_contiguous_upto_back_until_it_is_filled(ledger: Ledger) -> None:
    assert ledger.contiguous_upto(SITE) == 0 and ledger.gaps(SITE) == [] and ledger.seq_range(SITE) is None
    ledger.store(SITE, rows(1, 2, 3), False)
    assert ledger.contiguous_upto(SITE) == 3
    ledger.store(SITE, rows(6, 7, 11), False)
    assert ledger.contiguous_upto(SITE) == 3
    assert ledger.gaps(SITE) == [(4, 5), (8, 10)]
    ledger.store(SITE, rows(4, 5), False)
    assert ledger.contiguous_upto(SITE) == 7
    ledger.store(SITE, rows(8, 9, 10), False)
    assert ledger.contiguous_upto(SITE) == 11 and ledger.gaps(SITE) == []


def test_joining_mid_stream_acknowledges_nothing_it_has_not_got(ledger: Ledger) -> None:
    """Sequences start at 1: a ledger that first sees seq 10 must not tell the controller 1..9 are safe."""
    ledger.store(SITE, rows(10, 11, 12), False)
    assert ledger.contiguous_upto(SITE) == 0
    ledger.store(SITE, rows(*range(1, 10)), False)
    assert ledger.contiguous_upto(SITE) == 12


def test_ledger_persists_across_reopen_and_sites_are_independent(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = Ledger.open(path)
    ledger.store(SITE, rows(1, 2, 3, 5), False)
    ledger.store("other-site", rows(100, 101), False)
    ledger.close()
    again = Ledger.open(path)
    assert again.contiguous_upto(SITE) == 3 and again.gaps(SITE) == [(4, 4)]
    assert again.contiguous_upto("other-site") == 0 and again.count("other-site") == 2  # 1..99 not received
    assert again.first_seen("other-site") == 1
    again.store(SITE, rows(4), False)
    assert again.contiguous_upto(SITE) == 5
    assert again.contiguous_upto("other-site") == 0
    assert again.sites() == ["demo-house", "other-site"]
    again.close()


@settings(max_examples=60, deadline=None)
@given(data=st.data(), size=st.integers(1, 40))
def test_any_order_and_duplication_of_a_complete_set_acks_its_maximum(data: st.DataObject, size: int) -> None:
    seqs = list(range(1, 1 + size))
    extra = data.draw(st.lists(st.sampled_from(seqs), max_size=20))
    order = data.draw(st.permutations(seqs + extra))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(order)), max_size=6)))
    ledger = Ledger.open(":memory:")
    inserted = 0
    for a, b in zip([0, *cuts], [*cuts, len(order)], strict=True):
        inserted += ledger.store(SITE, rows(*order[a:b]), False)
    assert inserted == size == ledger.count(SITE)
    assert ledger.contiguous_upto(SITE) == max(seqs)
    assert ledger.gaps(SITE) == []
    ledger.close()


# ---- message handling, no broker ------------------------------------------------------------------------------


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[AtnSim]:
    sim = AtnSim(AtnConfig(sites=(SITE, "other-site"), db=tmp_path / "atn.sqlite"), ManualClock())
    yield sim
    sim.close()


def ack_of(answer: tuple[str, bytes] | None) -> int:
    assert answer is not None
    topic, payload = answer
    assert topic == TOPICS.telemetry_ack
    return protocol.parse(protocol.TelemetryAck, payload).upto_seq


def test_telemetry_is_stored_and_acked_up_to_the_contiguous_seq(sim: AtnSim) -> None:
    assert ack_of(sim.handle_telemetry(TOPICS.telemetry, telemetry([1, 2, 3]))) == 3
    assert ack_of(sim.handle_telemetry(TOPICS.telemetry, telemetry([6, 7]))) == 3  # 4 and 5 went missing
    assert ack_of(sim.handle_telemetry(TOPICS.telemetry, telemetry([4, 5], historical=True))) == 7
    assert ack_of(sim.handle_telemetry(TOPICS.telemetry, telemetry([1, 2, 3]))) == 7  # a re-send changes nothing
    stats = sim.stats[SITE]
    assert (stats.telemetry_batches, stats.readings_stored, stats.duplicates) == (4, 7, 3)
    assert sim.ledger.count("other-site") == 0


def test_a_restarted_atn_continues_from_its_ledger(tmp_path: Path) -> None:
    config = AtnConfig(sites=(SITE,), db=tmp_path / "atn.sqlite")
    first = AtnSim(config, ManualClock())
    first.handle_telemetry(TOPICS.telemetry, telemetry([1, 2, 3, 5]))
    first.close()
    second = AtnSim(config, ManualClock())
    assert ack_of(second.handle_telemetry(TOPICS.telemetry, telemetry([4]))) == 5
    second.close()


def raw_batch(**changes: object) -> bytes:
    body: dict[str, object] = {"v": 1, "site": SITE, "first_seq": 1, "last_seq": 1, "historical": False}
    body["readings"] = []
    return json.dumps(body | changes).encode()


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"\xff\xfe",
        b"not json",
        b"[1, 2]",
        b'{"v": 2, "site": "demo-house"}',
        b'{"v": 1}',
        raw_batch(site="other-site"),  # another site's batch on this site's topic
        raw_batch(first_seq=5, last_seq=1),
        raw_batch(readings=[[9, 0, "a", 1, "ok"]]),  # outside first_seq..last_seq
        raw_batch(readings=[[1, "x"]]),
        raw_batch(readings=[[-1, 0, "a", 1, "ok"]], first_seq=-1),
        raw_batch(unknown=True),
    ],
)
def test_malformed_telemetry_is_ignored_without_an_ack(sim: AtnSim, payload: bytes) -> None:
    assert sim.handle_telemetry(TOPICS.telemetry, payload) is None
    assert sim.handle(TOPICS.telemetry, payload) == []
    assert sim.stats[SITE].malformed == 2
    assert sim.ledger.count(SITE) == 0


def test_a_group_is_answered_like_its_messages_one_by_one_and_stored_all_or_nothing(tmp_path: Path) -> None:
    """The messages waiting are stored in one transaction: the same answers, in order, as one at a time; and a
    failure part-way (a disk error, say) leaves none of the group stored, so none of it is acknowledged."""
    event = protocol.EventMsg(site=SITE, seq=1, ts=JAN1, kind="mode", message="ATN").to_json()
    group = [
        (TOPICS.telemetry, telemetry([1, 2]), False),
        (TOPICS.telemetry, b"{not json", False),
        (TOPICS.events, event, False),
        (TOPICS.telemetry, telemetry([2, 3]), False),
        (TOPICS.telemetry, telemetry([5]), False),
    ]
    one_by_one = AtnSim(AtnConfig(sites=(SITE,), db=tmp_path / "one.sqlite", plan=False))
    grouped = AtnSim(AtnConfig(sites=(SITE,), db=tmp_path / "group.sqlite", plan=False))
    failing = AtnSim(AtnConfig(sites=(SITE,), db=tmp_path / "failing.sqlite", plan=False))
    try:
        expected = [answer for message in group for answer in one_by_one.handle(*message)]
        assert [ack_of(answer) for answer in expected if answer[0] == TOPICS.telemetry_ack] == [2, 3, 3]
        assert grouped.handle_group(group) == expected
        assert grouped.ledger.rows(SITE) == one_by_one.ledger.rows(SITE) and grouped.ledger.events_upto(SITE) == 1

        def disk_error(site: str, event: protocol.EventMsg) -> bool:
            raise sqlite3.OperationalError("disk I/O error")

        failing.ledger.store_event = disk_error  # type: ignore[method-assign]
        with pytest.raises(sqlite3.OperationalError):
            failing.handle_group(group)
        assert failing.ledger.count(SITE) == 0 and failing.ledger.contiguous_upto(SITE) == 0
        assert failing.handle_group(group[:2])[0] == expected[0]  # the ledger carries on
    finally:
        for sim in (one_by_one, grouped, failing):
            sim.close()


def test_status_acks_and_events_are_counted_and_bad_ones_ignored(sim: AtnSim) -> None:
    ok = protocol.Ack(ts=JAN1, topic=TOPICS.dispatch, id="d1", accepted=True, reason="lease accepted")
    no = protocol.Ack(ts=JAN1, topic=TOPICS.dispatch, id="d2", accepted=False, reason="unknown actuator(s) x")
    event = protocol.EventMsg(site=SITE, seq=1, ts=JAN1, kind="mode", message="LOCAL")
    status = protocol.Status(site=SITE, online=True, ts=JAN1, version="0.1.0")
    for topic, payload in [
        (TOPICS.ack, ok.to_json()),
        (TOPICS.ack, no.to_json()),
        (TOPICS.status, status.to_json()),
        (TOPICS.ack, b"{broken"),
        (TOPICS.events, b'{"v": 1, "kind": 3}'),
        ("hearth/v1/stranger/telemetry", telemetry([1], site="stranger")),
        (TOPICS.heartbeat, b"{}"),
    ]:
        assert sim.handle(topic, payload) == []
    # An event is persisted and acknowledged (at least once, like telemetry); the same seq again is a duplicate.
    acked = protocol.EventAck(upto_seq=1).to_json()
    assert sim.handle(TOPICS.events, event.to_json()) == [(TOPICS.events_ack, acked)]
    assert sim.handle(TOPICS.events, event.to_json()) == [(TOPICS.events_ack, acked)]
    stats = sim.stats[SITE]
    assert (stats.acks_accepted, stats.acks_rejected, stats.events, stats.malformed) == (1, 1, 1, 2)
    assert stats.event_duplicates == 1
    assert stats.last_ack == no and stats.last_status == status


def test_paused_it_ignores_everything_and_resumes(sim: AtnSim) -> None:
    sim.pause()
    assert sim.paused
    assert sim.handle(TOPICS.telemetry, telemetry([1])) == []
    assert sim.ledger.count(SITE) == 0 and sim.ignored_while_paused == 1
    sim.toggle_pause()
    assert not sim.paused
    assert ack_of(sim.handle(TOPICS.telemetry, telemetry([1]))[0]) == 1


class FakeClient:
    """Records what the ATN publishes, stamped with the (manual) clock."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.sent: list[tuple[float, str]] = []

    async def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        assert qos == 1 and not retain
        self.sent.append((self.clock.monotonic(), topic.rsplit("/", 1)[-1]))


def test_heartbeat_and_lease_schedule_with_a_handback_lease_after_connect_and_resume(tmp_path: Path) -> None:
    clock = ManualClock(JAN1)
    sim = AtnSim(AtnConfig(sites=(SITE,), db=tmp_path / "atn.sqlite", heartbeat_s=10, lease_s=120), clock)
    client = FakeClient(clock)

    async def scenario() -> float:
        sim._schedule_handback([SITE], immediate=True)  # what a new connection does
        beat = asyncio.create_task(sim._beat(client))  # type: ignore[arg-type]
        while clock.monotonic() < 200:
            await asyncio.sleep(0)
        sim.pause()
        paused_at = len(client.sent)
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(client.sent) == paused_at
        sim.resume()
        resumed = clock.monotonic()
        while clock.monotonic() < resumed + 100:
            await asyncio.sleep(0)
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
        return resumed

    resumed = asyncio.run(scenario())
    before = [(t, kind) for t, kind in client.sent if t < 200]
    assert [t for t, kind in before if kind == "heartbeat"] == [10.0 * i for i in range(20)]
    assert [t for t, kind in before if kind == "dispatch"] == [0, 25, 85, 145]  # then every lease_s / 2
    after = [(t - resumed, kind) for t, kind in client.sent if t >= resumed]
    assert [t for t, kind in after if kind == "heartbeat"][:3] == [0, 10, 20]
    assert [t for t, kind in after if kind == "dispatch"][:3] == [0, 25, 85]
    sim.close()


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"sites": ()}, "at least one site"),
        ({"sites": ("a/b",)}, "not a site id"),
        ({"sites": ("a", "a")}, "twice"),
        ({"heartbeat_s": 0}, "heartbeat"),
        ({"lease_s": 10 * 86400}, "lease"),
        ({"pause_for_s": 5}, "--pause-for"),
    ],
)
def test_config_is_checked(changes: dict[str, object], problem: str) -> None:
    arguments: dict[str, object] = {"sites": (SITE,), **changes}
    with pytest.raises(ValueError, match=problem):
        AtnConfig(**arguments)  # type: ignore[arg-type]


def test_password_is_not_in_the_config_repr() -> None:
    assert "hunter2" not in repr(AtnConfig(sites=(SITE,), password="hunter2"))


# ---- CLI ------------------------------------------------------------------------------------------------------


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="hearth")
    add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["atn-sim", *argv])


def test_check_reports_count_range_and_gaps(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "atn.sqlite"
    ledger = Ledger.open(db)
    ledger.store(SITE, rows(1, 2, 3, 6, 7, 9), False)
    ledger.store("other-site", rows(1, 2), False)
    ledger.close()
    assert run_cli(parse("check", "--db", str(db), "--site", SITE)) == 1
    out = capsys.readouterr().out
    assert "demo-house: 6 readings, seq 1..9, acknowledged up to 3, 2 gap(s), 3 missing" in out
    assert "missing 4..5" in out and "missing 8\n" in out
    assert run_cli(parse("check", "--db", str(db), "--site", "other-site")) == 0
    assert "other-site: 2 readings, seq 1..2, acknowledged up to 2, no gaps" in capsys.readouterr().out
    assert run_cli(parse("--db", str(db), "check")) == 1  # every site, from the parent's --db
    assert run_cli(parse("check", "--db", str(db), "--site", "nowhere")) == 1
    assert "nowhere: no readings" in capsys.readouterr().out
    assert run_cli(parse("check", "--db", str(tmp_path / "missing.sqlite"))) == 2


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        ([], "--site is required"),
        (["--site", SITE, "--broker", "http://x"], "not an mqtt://"),
        (["--site", SITE, "--broker", "mqtt://broker.example.com"], "TLS is required"),
        (["--site", SITE, "--timezone", "Mars/Olympus"], "unknown time zone"),
        (["--site", SITE, "--prices", "/nonexistent/prices.csv"], "cannot read it"),
        (
            ["--site", SITE, "--password-file", "/nonexistent/pw"],
            "hearth atn-sim: --password-file /nonexistent/pw: no such file",
        ),
    ],
)
def test_serve_refuses_bad_options(argv: list[str], problem: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_cli(parse(*argv)) == 2
    assert problem in capsys.readouterr().err


def test_broker_urls() -> None:
    assert parse_broker("mqtt://localhost") == ("localhost", 1883, False)
    assert parse_broker("mqtts://broker.example.com") == ("broker.example.com", 8883, True)
    assert parse_broker("mqtt://10.0.0.5:1884", insecure=True) == ("10.0.0.5", 1884, False)
    with pytest.raises(ValueError, match="--password-file"):
        parse_broker("mqtt://atn:secret@localhost")


# ---- with a real broker ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    broker = start_broker(tmp_path_factory.mktemp("broker"), site=SITE)
    yield broker
    broker.stop()


async def _wait(predicate: object, timeout_s: float = 3.0) -> None:
    assert callable(predicate)
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out waiting")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("others", [0, WILDCARD_ABOVE_SITES], ids=["its-own-topics", "wildcards"])
def test_against_a_real_broker(broker: Broker, tmp_path: Path, others: int) -> None:
    """Heartbeats, a lease, telemetry stored and acknowledged, pause and resume; serving more sites than
    `WILDCARD_ABOVE_SITES`, the ATN subscribes with `+` for the site (allowed by the ACL) and works the same."""
    sites = (SITE, *(f"site-{n:03d}" for n in range(others)))
    assert (subscription_filters(sites) == ["hearth/v1/+/" + kind for kind in KINDS]) == (others > 0)
    config = AtnConfig(
        sites=sites,
        host=broker.host,
        port=broker.port,
        username="atn",
        password=broker.users["atn"],
        db=tmp_path / "atn.sqlite",
        heartbeat_s=0.5,
        lease_s=30.0,
    )
    received: list[tuple[str, bytes]] = []

    def on(topic: str) -> list[bytes]:
        return [payload for t, payload in received if t == topic]

    async def scenario() -> None:
        sim = AtnSim(config)
        async with aiomqtt.Client(
            broker.host, broker.port, username=SITE, password=broker.users[SITE], identifier="test-house"
        ) as house:
            await house.subscribe(f"hearth/v1/{SITE}/atn/#", qos=1)

            async def collect() -> None:
                async for message in house.messages:
                    assert isinstance(message.payload, bytes)
                    assert not message.retain
                    received.append((message.topic.value, message.payload))

            collector = asyncio.create_task(collect())
            runner = asyncio.create_task(sim.run())
            try:
                await sim.wait_connected()
                await _wait(lambda: len(on(TOPICS.heartbeat)) >= 2 and on(TOPICS.dispatch))
                beats = [protocol.parse(protocol.Heartbeat, p) for p in on(TOPICS.heartbeat)]
                assert [b.seq for b in beats[:2]] == [0, 1] and beats[0].atn == "atn-sim"
                lease = protocol.parse(protocol.Dispatch, on(TOPICS.dispatch)[0])
                assert lease.valid_until - lease.issued_at == 30.0 and lease.prices

                await house.publish(TOPICS.telemetry, telemetry([1, 2, 3, 4]), qos=1)
                await _wait(lambda: on(TOPICS.telemetry_ack))
                assert protocol.parse(protocol.TelemetryAck, on(TOPICS.telemetry_ack)[0]).upto_seq == 4
                assert sim.ledger.count(SITE) == 4

                ack = protocol.Ack(ts=JAN1, topic=TOPICS.dispatch, id=lease.id, accepted=True, reason="lease accepted")
                await house.publish(TOPICS.ack, ack.to_json(), qos=1)
                await _wait(lambda: sim.stats[SITE].acks_accepted == 1)

                sim.pause()
                await asyncio.sleep(0.2)  # let a publish already on its way arrive
                silent_from = len(on(TOPICS.heartbeat))
                await house.publish(TOPICS.telemetry, telemetry([5]), qos=1)
                await asyncio.sleep(1.2)
                assert len(on(TOPICS.heartbeat)) == silent_from
                assert len(on(TOPICS.telemetry_ack)) == 1 and sim.ledger.count(SITE) == 4

                sim.resume()
                await _wait(lambda: len(on(TOPICS.heartbeat)) > silent_from, timeout_s=1.0)
            finally:
                runner.cancel()
                collector.cancel()
                await asyncio.gather(runner, collector, return_exceptions=True)
                sim.close()

    asyncio.run(scenario())


def test_a_message_is_acknowledged_to_the_broker_only_once_handled(broker: Broker, tmp_path: Path) -> None:
    """Back-pressure: while the ATN is stuck on one message, the broker delivers no more than its limit of
    unacknowledged messages (mosquitto's max_inflight_messages, 20) and keeps the rest; the ATN's memory does
    not fill with what it cannot handle yet. Released, it handles every message (none was dropped), those
    waiting as a group whose answers are published together."""
    config = AtnConfig(
        sites=(SITE,),
        host=broker.host,
        port=broker.port,
        username="atn",
        password=broker.users["atn"],
        db=tmp_path / "atn.sqlite",
        heartbeat_s=30.0,
        lease_s=600.0,
    )
    batches = 60

    async def scenario() -> None:
        sim = AtnSim(config)
        clients: list[aiomqtt.Client] = []
        make = sim.connection.client
        sim.connection.client = lambda url: clients.append(make(url)) or clients[-1]
        release = asyncio.Event()
        publish = sim._publish
        acks_in_flight = [0, 0]  # now, most at once

        async def stuck_on_acks(client: aiomqtt.Client, topic: str, payload: str | bytes) -> None:
            if topic != TOPICS.telemetry_ack:
                await publish(client, topic, payload)
                return
            await release.wait()
            acks_in_flight[0] += 1
            acks_in_flight[1] = max(acks_in_flight)
            try:
                await publish(client, topic, payload)
            finally:
                acks_in_flight[0] -= 1

        sim._publish = stuck_on_acks  # type: ignore[method-assign]
        runner = asyncio.create_task(sim.run())
        try:
            await sim.wait_connected()
            async with aiomqtt.Client(
                broker.host, broker.port, username=SITE, password=broker.users[SITE], identifier="test-house"
            ) as house:
                for seq in range(1, batches + 1):
                    await house.publish(TOPICS.telemetry, telemetry([seq]), qos=1)
            await _wait(lambda: len(clients[-1].messages) >= 10)
            await asyncio.sleep(0.5)  # whatever the broker would still send
            stuck_on = sim.ledger.count(SITE)  # the first group's batches, whose answers cannot go out
            waiting = len(clients[-1].messages)
            assert stuck_on >= 1 and 10 <= stuck_on + waiting <= 20  # not the 60 an acknowledgement on receipt lets in
            release.set()
            await _wait(lambda: sim.ledger.count(SITE) == batches and sim.stats[SITE].last_telemetry_ack == batches)
            assert acks_in_flight[1] >= 10  # the next group's answers went out together, not one round trip each
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            sim.close()

    asyncio.run(scenario())


def test_a_rounds_heartbeats_and_leases_go_out_together(broker: Broker, tmp_path: Path) -> None:
    """Every site's heartbeat (and lease) of a round is published at once, not one broker round trip after the
    other: at 500 sites on a loaded cluster, one at a time took longer than the heartbeat period itself."""
    sites = tuple(f"site-{n:03d}" for n in range(12))
    config = AtnConfig(
        sites=sites,
        host=broker.host,
        port=broker.port,
        username="atn",
        password=broker.users["atn"],
        db=tmp_path / "atn.sqlite",
        heartbeat_s=30.0,
        lease_s=600.0,
    )

    async def scenario() -> None:
        sim = AtnSim(config)
        publish = sim._publish
        in_flight = {"heartbeat": [0, 0, 0], "dispatch": [0, 0, 0]}  # now, most at once, done

        async def slow_broker(client: aiomqtt.Client, topic: str, payload: str | bytes) -> None:
            kind = topic.rsplit("/", 1)[-1]
            count = in_flight.get(kind)
            if count is None:
                await publish(client, topic, payload)
                return
            count[0] += 1
            count[1] = max(count[1], count[0])
            try:
                await asyncio.sleep(0.2)  # a broker round trip on a loaded cluster
                await publish(client, topic, payload)
            finally:
                count[0] -= 1
                count[2] += 1

        sim._publish = slow_broker  # type: ignore[method-assign]
        runner = asyncio.create_task(sim.run())
        try:
            await sim.wait_connected()
            await _wait(lambda: in_flight["heartbeat"][2] >= len(sites) and in_flight["dispatch"][2] >= len(sites))
            assert in_flight["heartbeat"][1] == len(sites)  # one at a time: 1 (and 12 x 0.2 s for the round)
            assert in_flight["dispatch"][1] == len(sites)
        finally:
            runner.cancel()
            await asyncio.gather(runner, return_exceptions=True)
            sim.close()

    asyncio.run(scenario())
