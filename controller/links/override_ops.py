"""Carrying out an override, keep-alive or release for whoever asked: the one path for the local socket and for a
signed request over MQTT, so both get the same duration limits, the same interlocks and the same verdict.

The change goes through `OverrideBook` (which checks the target, value and duration and writes the audit event with
who and from where), then the control loop is woken and the answer waits for a decision that saw the change, so it
carries the actuator as the interlocks left it (`held_by`, `held_until`, `reason`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal, Protocol

from controller import protocol
from controller.overrides import OverrideBook, OverrideError

OVERRIDE_OPS = frozenset({"override", "keepalive", "release"})


class OverrideAsk(Protocol):
    """What a request to change an override says (`protocol.Request` and `protocol.SignedOverride` both do)."""

    @property
    def op(self) -> Literal["override", "keepalive", "release"] | str: ...
    @property
    def target(self) -> str | None: ...
    @property
    def value(self) -> bool | float | None: ...
    @property
    def duration_s(self) -> float | None: ...
    @property
    def override_id(self) -> str | None: ...
    @property
    def reason(self) -> str: ...


async def carry_out(
    ask: OverrideAsk,
    who: str,
    origin: str,
    *,
    book: OverrideBook,
    settle: Callable[[], Awaitable[object]],
    state: Callable[[], protocol.State],
) -> tuple[protocol.OverrideState, protocol.ActuatorStateMsg | None]:
    """Do what `ask` says as `who` from `origin`; the override as it now stands and its actuator one decision later.
    Raises `OverrideError` with the reason when it cannot be done."""
    if ask.op == "override":
        if not ask.target:
            known = ", ".join([*book.layout.actuators, "setpoint:comfort"])
            raise OverrideError(f"override needs `target`: one of {known}")
        override = book.set(ask.target, ask.value, ask.duration_s, who, origin, ask.reason)
    elif ask.op in ("keepalive", "release"):
        if not ask.override_id:
            raise OverrideError(f"{ask.op} needs `override_id` (the id an override was answered with)")
        if ask.op == "keepalive":
            override = book.keepalive(ask.override_id, ask.duration_s, who, origin)
        else:
            override = book.release(ask.override_id, who, origin)
    else:
        raise OverrideError(f"{ask.op} is not an override operation")
    await settle()
    actuator = state().actuators.get(override.target)
    shown = protocol.OverrideState(
        id=override.id, target=override.target, value=override.value, expires_at=override.expires_at, who=override.who
    )
    return shown, actuator
