"""The controller's side of signed overrides over MQTT: one request in, one `Response` out on the reply topic.

A request is parsed by the one parse path (`protocol.parse`: size, depth, finite numbers, the strict model), passes
the gate (signature, site, expiry, a new id), and is then carried out exactly like one from the local socket
(`override_ops.carry_out`): the same limits, interlocks and verdict. The audit event names the technician, the
key's fingerprint and "via MQTT". Anything refused changes nothing and is answered with the reason.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable

import structlog

from controller import protocol
from controller.clock import Clock
from controller.decode import MQTT_LIMITS, Rejected
from controller.links.override_ops import carry_out
from controller.overrides import OverrideBook, OverrideError
from controller.remote.gate import Gate

log = structlog.get_logger("hearth.remote")


class RemoteOverrides:
    """Signed override requests for one site."""

    def __init__(
        self,
        gate: Gate,
        book: OverrideBook,
        clock: Clock,
        settle: Callable[[], Awaitable[object]],
        state: Callable[[], protocol.State],
    ) -> None:
        self.gate = gate
        self.book = book
        self.clock = clock
        self.settle = settle
        self.state = state
        self.refused = 0
        self.accepted = 0

    async def handle(self, payload: bytes, retained: bool = False) -> protocol.Response:
        """The answer to one message on the override topic. Never raises for what the message holds."""
        request_id = protocol.id_of(payload, MQTT_LIMITS) or "?"
        try:
            if retained:
                raise Rejected("commands must not be retained: a retained override request is refused")
            request = protocol.parse(protocol.SignedOverride, payload)
            verified = self.gate.check(request, self.clock.now(), payload)
        except Rejected as rejected:
            return self._refuse(request_id, rejected.reason)
        except sqlite3.Error as error:
            return self._refuse(request_id, f"the controller's store failed: {error}")
        who = verified.technician
        try:
            shown, actuator = await carry_out(
                request, who, verified.origin, book=self.book, settle=self.settle, state=self.state
            )
        except OverrideError as refused:
            return self._refuse(request.id, str(refused), who)
        except sqlite3.Error as error:
            return self._refuse(request.id, f"the controller's store failed: {error}", who)
        self.accepted += 1
        log.info("remote override", op=request.op, id=request.id, technician=who, key=verified.fingerprint)
        return protocol.Response(id=request.id, ok=True, role="technician", user=who, override=shown, actuator=actuator)

    def _refuse(self, request_id: str, reason: str, who: str | None = None) -> protocol.Response:
        self.refused += 1
        log.warning("remote override refused", id=request_id, technician=who, reason=reason)
        return protocol.Response(id=request_id, ok=False, error=reason, user=who)
