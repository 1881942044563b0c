"""Who commands the actuators: a pure state machine over the ATN link, leases, overrides and faults.

- Boot is offline-first: the state starts `LOCAL` and the first decision needs no network.
- `ATN` needs a live lease and a live link. Silence (no heartbeat or dispatch for `silence_timeout_s`) or the
  lease running out moves control to `LOCAL` at once, with the reason.
- Back to `ATN` only after `handback_heartbeats` heartbeats in a row with no silence between them, and then a
  lease that arrived after that: a link that flaps never gets control back in between.
- `SAFE` while a critical fault stands; `OVERRIDE` is shown while any override is active (the actuators not
  overridden still follow the ATN or the local policy).
Every change of the displayed mode is an event carrying its reason.

Time: every duration here (silence, lease life, the heartbeats in a row) is measured on the monotonic clock
(`AuthorityInputs.now`, heartbeat times, `HeldLease`), so an NTP step of the wall clock neither hides a dead ATN
nor cuts a live one off. The wall time (`AuthorityInputs.wall`) only dates the events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from controller.control.params import Authority as AuthorityParams
from controller.control.types import Event, Lease, Mode, clock_text


@dataclass(frozen=True, slots=True)
class HeldLease:
    """A lease as the control core times it: when it arrived and when it runs out, on the monotonic clock."""

    lease: Lease
    received: float
    ends: float

    def live(self, now: float) -> bool:
        return self.received <= now < self.ends


def hold_lease(lease: Lease, wall: float, monotonic: float) -> HeldLease:
    """Put a lease received at (`wall`, `monotonic`) on the monotonic clock.

    It lives for what is left of it by this controller's wall clock, and never longer than the ATN made it
    (`valid_until - issued_at`): a wall clock that is behind (before NTP, or stepped back) cannot stretch a lease,
    and one that is ahead only shortens it, which hands control to the local policy sooner, never later.
    """
    life = min(lease.valid_until - lease.issued_at, lease.valid_until - wall)
    return HeldLease(lease, monotonic, monotonic + max(0.0, life))


@dataclass(frozen=True, slots=True)
class AuthorityState:
    base: Mode  # ATN or LOCAL: who runs the actuators nobody overrides
    mode: Mode  # what is shown: SAFE > OVERRIDE > base
    reason: str
    since: float  # monotonic, like every time below
    last_contact: float | None = None  # the newest heartbeat or dispatch
    healthy_heartbeats: int = 0  # heartbeats in a row without silence, counted while LOCAL
    healthy_at: float | None = None  # when the count reached the handback threshold
    lease: HeldLease | None = None
    base_reason: str = ""  # why the base mode is what it is; `reason` is what is shown (SAFE, OVERRIDE, base)
    had_atn: bool = False  # the ATN has been in control since boot: the next handback is a return, not a first


@dataclass(frozen=True, slots=True)
class AuthorityInputs:
    now: float  # monotonic
    wall: float  # wall time, for the events only
    heartbeats: Sequence[float] = ()  # heartbeat arrival times (monotonic) since the last step
    lease: HeldLease | None = None  # a dispatch received since the last step
    overridden: Sequence[str] = ()  # targets with an active override
    critical_fault: str | None = None


def boot(now: float, *, atn_link: bool = True) -> AuthorityState:
    """LOCAL at start-up. Without an ATN link in the layout the local policy is all there is, and the reason says
    that rather than waiting for a contact that cannot come."""
    why = "booting offline-first: no ATN contact yet" if atn_link else "local policy: no ATN link in the layout"
    return AuthorityState(Mode.LOCAL, Mode.LOCAL, why, now, base_reason=why)


def _silent(state: AuthorityState, now: float, params: AuthorityParams) -> bool:
    return state.last_contact is None or now - state.last_contact >= params.silence_s


def step(state: AuthorityState, inputs: AuthorityInputs, params: AuthorityParams) -> tuple[AuthorityState, list[Event]]:
    """Advance the authority by one control tick."""
    now = inputs.now
    new = state
    # Heartbeats: count them in a row; a beat after silence starts the count again at one.
    for beat in sorted(inputs.heartbeats):
        in_a_row = new.last_contact is not None and beat - new.last_contact < params.silence_s
        count = new.healthy_heartbeats + 1 if in_a_row else 1
        healthy_at = new.healthy_at if in_a_row else None
        if count >= params.handback_heartbeats and healthy_at is None:
            healthy_at = beat
        last = beat if new.last_contact is None else max(beat, new.last_contact)
        new = replace(new, last_contact=last, healthy_heartbeats=count, healthy_at=healthy_at)
    if inputs.lease is not None:
        last = inputs.lease.received if new.last_contact is None else max(inputs.lease.received, new.last_contact)
        new = replace(new, lease=inputs.lease, last_contact=last)

    base, reason = new.base, new.base_reason
    if base is Mode.ATN:
        if _silent(new, now, params):
            base, reason = Mode.LOCAL, f"ATN silent for {params.silence_s:g} s: local policy takes over"
        elif new.lease is None or not new.lease.live(now):
            held = new.lease
            until = inputs.wall - (now - held.ends) if held else inputs.wall
            base, reason = Mode.LOCAL, f"ATN lease expired at {clock_text(until)}: local policy takes over"
        if base is Mode.LOCAL:
            new = replace(new, healthy_heartbeats=0, healthy_at=None)
    elif base is Mode.LOCAL:
        if _silent(new, now, params):
            new = replace(new, healthy_heartbeats=0, healthy_at=None)
        lease = new.lease
        fresh = (
            lease is not None and lease.live(now) and new.healthy_at is not None and lease.received >= new.healthy_at
        )
        if fresh and not _silent(new, now, params) and lease is not None:
            base = Mode.ATN
            how = "ATN back" if new.had_atn else "ATN in control (first contact since boot)"
            # No lease id here: the reason stays on screen while the leases renew, and an id in it read as a
            # second, different lease next to the link line's current one. The mode event keeps the id.
            reason = f"{how}: {new.healthy_heartbeats} heartbeats in a row and a fresh lease"
            new = replace(new, had_atn=True)

    if inputs.critical_fault:
        mode, shown_reason = Mode.SAFE, f"critical fault: {inputs.critical_fault}"
    elif inputs.overridden:
        mode, shown_reason = Mode.OVERRIDE, f"override active on {', '.join(sorted(inputs.overridden))}"
    else:
        mode, shown_reason = base, reason

    events: list[Event] = []
    if mode != state.mode or base != state.base:
        events.append(
            Event(
                ts=inputs.wall,
                kind="mode",
                message=f"{state.mode.value} -> {mode.value}: {shown_reason}",
                data={"from": state.mode.value, "to": mode.value, "base": base.value, "reason": shown_reason}
                | ({"lease": new.lease.lease.id} if base is Mode.ATN and new.lease is not None else {}),
            )
        )
        since = now
    else:
        since = state.since
    return replace(new, base=base, mode=mode, reason=shown_reason, base_reason=reason, since=since), events
