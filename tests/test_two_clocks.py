"""Two clocks: the control core under a wall clock that NTP steps +3 s, +3 h, +1 year and -1 h at random moments
while the monotonic clock runs on. No step may let the compressor start before its minimum off-time or more often
than its starts per hour, hold it on past its minimum on-time, shorten or stretch an override, or hide a silent
ATN (findings 1, 3 and 4 of issue 8)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controller.clock import ManualClock
from controller.control import authority
from controller.control.authority import AuthorityInputs, hold_lease
from controller.control.interlocks import HOUR_S
from controller.control.tick import ControlState, TickInputs, control_tick, initial_state
from controller.control.types import Lease, Mode, Override
from controller.overrides import OverrideBook
from controller.readings import Quality, Reading, Snapshot
from controller.store import Store
from tests.simhelpers import demo_layout

LAYOUT = demo_layout()
HP = LAYOUT.control.actuators.heat_pump
HP_CONFIG = LAYOUT.actuators[HP]
WALL0 = 1_767_225_600.0
YEAR = 365 * 86400.0
JUMPS = (3.0, 3 * 3600.0, YEAR, -3600.0)  # the steps the issue names

# A step: (monotonic seconds to the next tick, the wall-clock step before it (0: none), the heat pump wanted on).
steps_strategy = st.lists(
    st.tuples(
        st.floats(min_value=0.5, max_value=400.0, allow_nan=False),
        st.one_of(st.just(0.0), st.just(0.0), st.sampled_from(JUMPS)),
        st.booleans(),
    ),
    min_size=2,
    max_size=60,
)


def nominal(wall: float) -> Snapshot:
    """Every channel readable at comfortable temperatures: no safety rule acts, only the timers do."""

    def value(name: str) -> float:
        return 45.0 if "tank" in name else 20.0 if "house" in name else 5.0 if "outdoor" in name else 35.0

    readings = {n: Reading(n, value(n), "degC", Quality.OK, wall) for n in LAYOUT.channels}
    return Snapshot(wall, MappingProxyType(readings))


def technician(wall: float, on: bool) -> Override:
    return Override(
        id=f"ov-{on}", target=HP, value=on, created_at=wall - 1, expires_at=wall + 3600, who="t", origin="test"
    )


def run_ticks(steps: Sequence[tuple[float, float, bool]]) -> list[tuple[float, bool]]:
    """Drive the control tick through `steps` with the relays following every command; return the heat pump's
    real switches as (monotonic time, on)."""
    wall, mono = WALL0, 0.0
    state: ControlState = initial_state(LAYOUT, mono, dict.fromkeys(LAYOUT.actuators, False))
    switches: list[tuple[float, bool]] = [(0.0, False)]  # boot counts as a stop: it may have just stopped
    for dt, jump, wanted in steps:
        # Tick every few seconds in between, as the loop does, so a hold ends when it should.
        remaining = dt
        wall += jump
        while remaining > 0:
            tick = min(remaining, 5.0)
            remaining -= tick
            wall, mono = wall + tick, mono + tick
            inputs = TickInputs(
                now=wall,
                monotonic=mono,
                snapshot=nominal(wall),
                overrides=[technician(wall, wanted)],
                plan_inline=False,  # the timers are under test, not the planner: the present rules decide
            )
            result = control_tick(state, inputs, LAYOUT)
            actuators = {n: s.after(result.commands[n].on, mono) for n, s in state.actuators.items()}
            if actuators[HP].on != state.actuators[HP].on:
                switches.append((mono, actuators[HP].on))
            hold = result.holds.get(HP)
            if hold is not None and hold.until is not None:
                longest = max(HP_CONFIG.min_on_s, HP_CONFIG.min_off_s, HOUR_S, HP_CONFIG.prerun_s)
                assert hold.until - mono <= longest + 1e-6, f"a hold of {hold.until - mono:.0f} s after a step"
            if hold is not None and hold.interlock == "min-on":
                assert mono - state.actuators[HP].since < HP_CONFIG.min_on_s
            state = replace(result.state, actuators=actuators)
    return switches


@settings(max_examples=60, deadline=None)
@given(steps=steps_strategy)
def test_no_wall_clock_step_lets_the_compressor_short_cycle(steps: list[tuple[float, float, bool]]) -> None:
    switches = run_ticks(steps)
    starts = [t for t, on in switches if on]
    for (before, was_on), (after, on) in itertools.pairwise(switches):
        if on and not was_on:
            assert after - before >= HP_CONFIG.min_off_s, f"restarted after {after - before:.0f} s off"
        if was_on and not on:
            assert after - before >= HP_CONFIG.min_on_s, f"stopped after {after - before:.0f} s on"
    limit = HP_CONFIG.max_starts_per_hour
    assert limit is not None
    for i, start in enumerate(starts):
        assert len([s for s in starts[i:] if s < start + HOUR_S]) <= limit


@settings(max_examples=60, deadline=None)
@given(steps=steps_strategy)
def test_the_compressor_stops_when_its_minimum_on_time_is_up_whatever_the_wall_clock(
    steps: list[tuple[float, float, bool]],
) -> None:
    """Asked off, it runs at most min_on_s (plus a tick) from its real start: a -1 h step cannot hold it an hour."""
    on_steps = [(dt, jump, True) for dt, jump, _ in steps]
    switches = run_ticks([*on_steps, (5.0, -3600.0, False), (HP_CONFIG.min_on_s + 10, 0.0, False)])
    assert switches[-1][1] is False


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    duration=st.floats(min_value=60, max_value=86400),
    moves=st.lists(
        st.tuples(st.floats(min_value=1, max_value=7200), st.one_of(st.just(0.0), st.sampled_from(JUMPS))),
        max_size=12,
    ),
)
def test_an_override_lasts_its_duration_in_monotonic_time(
    tmp_path: Path, duration: float, moves: list[tuple[float, float]]
) -> None:
    clock = ManualClock(WALL0)
    with Store.open(tmp_path / f"ov-{len(moves)}-{duration}.sqlite") as store:
        book = OverrideBook(store, LAYOUT, clock)
        override = book.set(HP, False, duration, who="tech", origin="test", reason="maintenance")
        elapsed = 0.0
        for dt, jump in moves:
            clock.step_wall(jump)
            clock.advance(dt)
            elapsed += dt
            active = [o.id for o in book.active()]
            assert (override.id in active) == (elapsed < duration), f"{elapsed:.0f} s of {duration:.0f} s"
            if active:
                (shown,) = book.active()  # shown on the current wall clock: it says how long is left
                left = shown.expires_at - clock.now()
                assert abs(left - (duration - elapsed)) < 1e-3


@settings(max_examples=60, deadline=None)
@given(
    beats=st.integers(min_value=2, max_value=20),
    jumps=st.lists(st.tuples(st.floats(min_value=0, max_value=60), st.sampled_from(JUMPS)), max_size=4),
)
def test_a_silent_atn_is_noticed_within_its_timeout(beats: int, jumps: list[tuple[float, float]]) -> None:
    params = LAYOUT.control.authority
    mono, wall, true_wall = 100.0, WALL0, WALL0
    state = authority.boot(mono)
    pending = sorted(jumps)
    elapsed = 0.0

    def step(dt: float, **kwargs: object) -> None:
        nonlocal mono, wall, true_wall, state, elapsed
        mono, wall, true_wall, elapsed = mono + dt, wall + dt, true_wall + dt, elapsed + dt
        while pending and pending[0][0] <= elapsed:
            wall += pending.pop(0)[1]
        state, _ = authority.step(state, AuthorityInputs(now=mono, wall=wall, **kwargs), params)  # type: ignore[arg-type]

    for _ in range(beats):
        step(params.heartbeat_s, heartbeats=[mono + params.heartbeat_s])
    # The ATN's clock is right; ours may have stepped either way.
    issued = Lease(id="l1", issued_at=true_wall, valid_until=true_wall + 3600, received_at=wall)
    step(0.5, heartbeats=[mono + 0.5], lease=hold_lease(issued, wall, mono + 0.5))
    assert state.base is Mode.ATN or wall - true_wall >= 3600  # a clock far ahead finds it expired: stays LOCAL
    last_contact = state.last_contact
    assert last_contact is not None
    while state.base is Mode.ATN:
        step(0.25)
    assert mono - last_contact <= params.silence_s + 0.25
