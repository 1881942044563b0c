"""Authority scenarios: lease live, lease expired, silence, a flapping link, an override over the ATN, an
override expiring, and a fault forcing SAFE and clearing."""

from __future__ import annotations

from collections.abc import Sequence

from controller.control import authority
from controller.control.authority import AuthorityInputs, AuthorityState, HeldLease, hold_lease
from controller.control.params import Authority
from controller.control.types import Lease, Mode

PARAMS = Authority(heartbeat_s=10, handback_heartbeats=2)  # silence after 30 s
T0 = 1_000_000.0


WALL0 = 1_767_225_600.0  # the wall clock at T0 on the monotonic clock, until a test steps it


def lease(received: float, valid_s: float = 300, lease_id: str = "L", wall_offset: float = WALL0 - T0) -> HeldLease:
    """A lease received at monotonic `received`, issued by an ATN whose clock agrees with ours (before a step)."""
    at = received + WALL0 - T0
    issued = Lease(id=lease_id, issued_at=at - 0.1, valid_until=at + valid_s, received_at=at)
    return hold_lease(issued, received + wall_offset, received)


class Run:
    """Drives the state machine tick by tick and records the mode and events. `now` is the monotonic clock; the
    wall clock runs `wall_offset` apart from it and a test may step it."""

    def __init__(self) -> None:
        self.state: AuthorityState = authority.boot(T0)
        self.now = T0
        self.wall_offset = WALL0 - T0
        self.events: list[str] = []
        self.data: list[dict[str, object]] = []

    def tick(
        self,
        dt: float = 1.0,
        beats: Sequence[float] = (),
        new_lease: HeldLease | None = None,
        overridden: Sequence[str] = (),
        fault: str | None = None,
    ) -> Mode:
        self.now += dt
        self.state, events = authority.step(
            self.state,
            AuthorityInputs(
                now=self.now,
                wall=self.now + self.wall_offset,
                heartbeats=beats,
                lease=new_lease,
                overridden=overridden,
                critical_fault=fault,
            ),
            PARAMS,
        )
        self.events += [e.message for e in events]
        self.data += [e.data for e in events]
        return self.state.mode

    def healthy_atn(self) -> None:
        """Two heartbeats, then a lease: the handback rule's way into ATN."""
        self.tick(beats=[self.now + 1])
        self.tick(dt=10, beats=[self.now + 10])
        assert self.tick(new_lease=lease(self.now + 1)) is Mode.ATN


def test_boot_is_local_and_offline_first() -> None:
    run = Run()
    assert run.state.mode is Mode.LOCAL and "offline-first" in run.state.reason
    assert run.tick() is Mode.LOCAL


def test_without_an_atn_link_the_reason_does_not_wait_for_one() -> None:
    """A site with no [links.atn] is LOCAL for good: 'no ATN contact yet' would wait for what cannot come."""
    from controller.control.tick import initial_state
    from tests.simhelpers import demo_layout

    layout = demo_layout()
    assert layout.links.atn is None  # the demo layout alone; scripts/demo adds the link
    state = initial_state(layout, T0, {}).authority
    assert state.mode is Mode.LOCAL and state.reason == "local policy: no ATN link in the layout"
    assert authority.boot(T0, atn_link=True).reason == "booting offline-first: no ATN contact yet"


def test_lease_live_gives_atn_after_the_handback_rule() -> None:
    run = Run()
    assert run.tick(new_lease=lease(run.now + 1)) is Mode.LOCAL  # a lease alone, with no heartbeats, is not enough
    run.tick(beats=[run.now + 1])
    assert run.tick(dt=10, beats=[run.now + 10]) is Mode.LOCAL  # healthy, but the lease came before
    assert run.tick(new_lease=lease(run.now + 1, lease_id="fresh")) is Mode.ATN
    assert run.state.reason.startswith("ATN in control (first contact since boot)")
    # No lease id in the reason: it stays on screen while leases renew, next to the current lease's id (two ids
    # on one screen); the mode event keeps it.
    assert run.state.reason.endswith("heartbeats in a row and a fresh lease")
    assert run.data[-1]["lease"] == "fresh"


def test_the_banner_tells_first_contact_from_a_return() -> None:
    run = Run()
    run.healthy_atn()
    assert "first contact" in run.state.reason and "back" not in run.state.reason
    run.tick(dt=31)
    assert run.state.mode is Mode.LOCAL
    run.healthy_atn()
    assert run.state.reason.startswith("ATN back: 2 heartbeats in a row")


def test_lease_expiry_goes_local_at_once() -> None:
    run = Run()
    run.tick(beats=[run.now + 1])
    run.tick(dt=10, beats=[run.now + 10])
    run.tick(new_lease=lease(run.now + 1, valid_s=20))
    assert run.state.mode is Mode.ATN
    for _ in range(5):
        run.tick(dt=5, beats=[run.now + 5])  # the link stays healthy
    assert run.state.mode is Mode.LOCAL and "lease expired" in run.state.reason


def test_silence_goes_local_within_the_timeout() -> None:
    run = Run()
    run.healthy_atn()
    last_contact = run.state.last_contact
    assert last_contact is not None
    while run.state.mode is Mode.ATN:
        run.tick(dt=0.1)
    assert run.now - last_contact <= PARAMS.silence_s + 0.1
    assert "silent" in run.state.reason


def test_flapping_link_does_not_flap_the_authority() -> None:
    run = Run()
    run.healthy_atn()
    modes = []
    for _ in range(6):
        run.tick(dt=31)  # silence: LOCAL
        modes.append(run.state.mode)
        run.tick(beats=[run.now + 0.5], new_lease=lease(run.now + 0.5))  # one beat and a lease: not enough
        modes.append(run.state.mode)
    assert set(modes) == {Mode.LOCAL}
    assert sum("LOCAL" in e and "-> LOCAL" in e for e in run.events) == 1


def test_override_shows_over_atn_and_expiry_returns_to_atn() -> None:
    run = Run()
    run.healthy_atn()
    assert run.tick(beats=[run.now + 1], overridden=["heat-pump"]) is Mode.OVERRIDE
    assert run.state.base is Mode.ATN
    assert run.tick(beats=[run.now + 1]) is Mode.ATN  # the override expired: no override in the inputs
    assert any("-> OVERRIDE" in e for e in run.events) and any("OVERRIDE -> ATN" in e for e in run.events)


def test_fault_forces_safe_and_clearing_it_returns_to_local() -> None:
    run = Run()
    assert run.tick(fault="relay heat-pump did not switch") is Mode.SAFE
    assert "relay heat-pump" in run.state.reason
    assert run.tick(fault="relay heat-pump did not switch", overridden=["heat-pump"]) is Mode.SAFE  # SAFE wins
    assert run.tick() is Mode.LOCAL
    assert [e.split(":")[0] for e in run.events] == ["LOCAL -> SAFE", "SAFE -> LOCAL"]


def test_every_mode_change_is_one_event_with_a_reason() -> None:
    run = Run()
    run.healthy_atn()
    run.tick(dt=40)
    assert len(run.events) == 2
    assert all(":" in e and e.split(": ", 1)[1] for e in run.events)


def test_after_an_override_the_base_mode_shows_its_own_reason_again() -> None:
    run = Run()
    run.tick(overridden=["aux-element"])
    assert run.tick() is Mode.LOCAL
    assert run.state.reason == "booting offline-first: no ATN contact yet"
    assert run.events[-1] == "OVERRIDE -> LOCAL: booting offline-first: no ATN contact yet"


def test_a_wall_clock_step_back_neither_hides_a_dead_atn_nor_stretches_a_lease() -> None:
    """Finding 3: after a -1 h step the controller followed a dead ATN's last lease for an hour."""
    run = Run()
    run.healthy_atn()
    last_contact = run.state.last_contact
    assert last_contact is not None
    run.wall_offset -= 3600  # NTP steps the wall clock back an hour
    while run.state.mode is Mode.ATN:
        run.tick(dt=0.5)
    assert run.now - last_contact <= PARAMS.silence_s + 0.5


def test_a_lease_received_on_a_clock_behind_lives_no_longer_than_the_atn_made_it() -> None:
    behind = lease(T0, valid_s=60, wall_offset=WALL0 - T0 - 3600)  # our wall clock an hour behind the ATN's
    assert behind.ends - behind.received <= 60.1
    ahead = lease(T0, valid_s=60, wall_offset=WALL0 - T0 + 30)  # ours 30 s ahead: 30 s of it are left
    assert 29.9 <= ahead.ends - ahead.received <= 30.0
