"""Several brokers for one link (the nodes of a cluster): which one to try next, and how long to wait first.

The policy, pure and shared by the controller's ATN link, `hearth atn-sim` and `hearth tui --mqtt`:

- On a lost or refused connection, move to the next broker in the list **at once**: a cluster whose node died
  still has the others, and a site must not wait out a backoff while they are up.
- Only when every broker in the list has failed in a row, wait a full-jitter backoff (1 s, growing to a minute),
  so hundreds of sites do not hammer a cluster that is down as a whole, and do not all come back at the same
  instant.
- A connection that worked resets the count; the next failure starts from the broker after the current one.

With one broker this is the old behaviour exactly: backoff after every failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import aiomqtt
from aiomqtt.exceptions import MqttConnectError

from controller.protocol import BrokerUrl, parse_broker_url

__all__ = [
    "BACKOFF_MAX_S",
    "BACKOFF_MIN_S",
    "BrokerRotation",
    "Unanswered",
    "backoff_delay",
    "describe_mqtt_error",
    "parse_broker_urls",
]

BACKOFF_MIN_S = 1.0
BACKOFF_MAX_S = 60.0
T = TypeVar("T")


def backoff_delay(attempt: int, rng: random.Random) -> float:
    """Full jitter: uniform between the minimum and an exponentially growing cap, capped at a minute."""
    cap = min(BACKOFF_MAX_S, BACKOFF_MIN_S * 2**attempt)
    return rng.uniform(BACKOFF_MIN_S, max(BACKOFF_MIN_S, cap))


def parse_broker_urls(
    urls: str | Sequence[str], *, insecure: bool = False, insecure_hint: str = "pass --insecure"
) -> tuple[BrokerUrl, ...]:
    """One URL or several (a list, or one string with commas or spaces between them); ValueError names the bad
    one. The same broker twice is refused: it would only make a failover wait for it twice."""
    items = urls.replace(",", " ").split() if isinstance(urls, str) else [u.strip() for u in urls]
    if not items or any(not item for item in items):
        raise ValueError("give at least one broker URL (mqtt://host[:port] or mqtts://host[:port])")
    brokers = tuple(parse_broker_url(item, insecure=insecure, insecure_hint=insecure_hint) for item in items)
    seen: set[BrokerUrl] = set()
    for broker in brokers:
        if broker in seen:
            raise ValueError(f"{broker} is listed twice")
        seen.add(broker)
    return brokers


class BrokerRotation(Generic[T]):
    """Which broker to connect to now, and the delay before trying it after a failure."""

    def __init__(
        self,
        brokers: Sequence[T],
        rng: random.Random | None = None,
        *,
        start: int = 0,
        backoff: Callable[[int], float] | None = None,
    ) -> None:
        """`backoff(round)` is the wait after `round + 1` full rounds of failures (default: `backoff_delay`)."""
        if not brokers:
            raise ValueError("at least one broker")
        self.brokers = tuple(brokers)
        self.index = start % len(self.brokers)
        self.failed_in_a_row = 0
        chosen = rng or random.Random()
        self.backoff = backoff or (lambda attempt: backoff_delay(attempt, chosen))

    @property
    def current(self) -> T:
        return self.brokers[self.index]

    def connected(self) -> None:
        """The current broker took the connection: the next failure moves on at once again."""
        self.failed_in_a_row = 0

    def failed(self) -> float:
        """The current broker failed (refused, unreachable or dropped): move to the next one and return how long
        to wait before trying it: 0 while some broker of this round is untried, a backoff once all have failed."""
        self.failed_in_a_row += 1
        self.index = (self.index + 1) % len(self.brokers)
        rounds, rest = divmod(self.failed_in_a_row, len(self.brokers))
        if rest:
            return 0.0
        return self.backoff(rounds - 1)

    @property
    def all_failed(self) -> bool:
        """Every broker has failed since the last good connection (so a backoff is running)."""
        return self.failed_in_a_row >= len(self.brokers)


class Unanswered:
    """Publishes and subscriptions waiting for the broker's answer, so a dropped connection can say which one
    it dropped on. RabbitMQ answers an ACL denial by closing the connection at once (mosquitto drops the
    message and acknowledges it): without this, all a client sees is "Disconnected" or "Operation timed out"
    (aiomqtt waits out its timeout for a PUBACK that will never come)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._pending: dict[int, tuple[str, str, float]] = {}
        self._tokens = itertools.count()
        self.dropped: tuple[str, str, float] | None = None
        """(operation, topic, seconds it had waited when the connection was lost) of the newest one that never
        got its answer"""
        self.suspected: tuple[str, str] | None = None
        """the operation the previous connection was closed on, kept across reconnects: a denial repeats"""

    def reset(self) -> None:
        self._pending.clear()
        self.dropped = None

    def watch(self, client: aiomqtt.Client) -> None:
        """Note the moment `client`'s connection is lost (aiomqtt only reports it when an operation times out
        or the message iterator next runs). Chains paho's on_disconnect, which aiomqtt sets and keeps."""
        paho = client._client
        inner = paho.on_disconnect

        def on_disconnect(*arguments: Any) -> None:
            self.lost()
            if inner is not None:
                inner(*arguments)

        paho.on_disconnect = on_disconnect

    def lost(self) -> None:
        """The connection is gone: whatever is still waiting will never be answered."""
        if self._pending and self.dropped is None:
            operation, topic, started = max(self._pending.values(), key=lambda pending: pending[2])
            self.dropped = (operation, topic, self.clock() - started)

    @contextlib.contextmanager
    def waiting(self, operation: str, topic: str) -> Iterator[None]:
        token = next(self._tokens)
        self._pending[token] = (operation, topic, self.clock())
        try:
            yield
        except BaseException:
            self.lost()
            raise
        finally:
            self._pending.pop(token, None)


REFUSED_CODES = {
    4: "bad user name or password",
    5: "not authorised",
    134: "bad user name or password",
    135: "not authorised",
}
DENIAL_WINDOW_S = 1.0  # RabbitMQ closes within milliseconds of a denied publish or subscription


async def still_listening(broker: BrokerUrl, timeout_s: float = 1.0) -> bool:
    """Whether the broker still takes TCP connections (a node that died refuses them at once)."""
    try:
        async with asyncio.timeout(timeout_s):
            _, writer = await asyncio.open_connection(broker.host, broker.port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def describe_drop(error: BaseException, broker: BrokerUrl, unanswered: Unanswered) -> str:
    """`describe_mqtt_error`, after checking whether a connection dropped right after a publish or subscription
    was closed by a broker that is still up (a denial) or by one that went away (a node lost)."""
    dropped = unanswered.dropped
    if dropped is not None and dropped[2] <= DENIAL_WINDOW_S and not await still_listening(broker):
        unanswered.dropped = None
    return describe_mqtt_error(error, unanswered)


def describe_mqtt_error(error: BaseException, unanswered: Unanswered | None = None) -> str:
    """A sentence for the log and the TUI: refused credentials said plainly; a connection closed right after a
    publish or subscription that got no answer said to be a denial (RabbitMQ's way: call `describe_drop`, which
    first rules out a broker that went away); else as aiomqtt words it."""
    code = getattr(error, "rc", None)
    value = getattr(code, "value", code)
    # Only a CONNACK's code is a refusal: aiomqtt puts paho's own error codes in `rc` too, and paho's 4 and 5
    # are "no connection" and "connection refused" (a publish on a connection that has just gone said "bad user
    # name or password" 72 times in a 500-site bench).
    if isinstance(error, MqttConnectError) and isinstance(value, int) and value in REFUSED_CODES:
        return f"the broker refused the connection: {REFUSED_CODES[value]} (check username and password_file)"
    dropped = unanswered.dropped if unanswered is not None else None
    if unanswered is None or dropped is None or dropped[2] > DENIAL_WINDOW_S:
        if unanswered is not None:
            unanswered.suspected = None
        return str(error) or type(error).__name__
    operation, topic, waited = dropped
    # A node of a cluster that loses another node can close connections once too (RabbitMQ 3.10 does when a
    # publish in flight was routed to a queue on the lost node: it does not handle the nack): only the same thing
    # closed twice in a row is called a denial.
    if unanswered.suspected == (operation, topic):
        return (
            f"not authorised to {operation} {topic}: the broker closed the connection {waited * 1000:.0f} ms after "
            f"it, before answering, twice in a row (RabbitMQ's answer to an ACL denial; check the user's topic "
            f"permissions)"
        )
    unanswered.suspected = (operation, topic)
    return (
        f"the broker closed the connection {waited * 1000:.0f} ms after {operation} {topic}, before answering "
        f"(if this repeats, the user is not authorised there: RabbitMQ closes the connection on an ACL denial)"
    )
