"""What a site trusts, and the checks a signed request must pass before it counts.

Trust: the public keys listed in the site's layout (`[[links.atn.technicians]]`, name and key). Not keys signed by
an operator key: revoking one of those would still need a list on every site, and the list *is* the trust; the
layout is already the reviewed, versioned record of what a site does, and a key is added or revoked by one edit and
a restart, which the audit log records as a layout change.

The checks, in this order, each refusing with its own reason: a signature is there; the technician and the key's
fingerprint are listed; the request came in its one canonical spelling; the signature is valid over every field; the
request is for this site; it has not expired and does not expire too far ahead (so an id need only be remembered
until it expires); its id is new. Ids are kept in the store until their request expires, so a replay is refused
after a restart too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from controller.decode import Rejected
from controller.protocol import MAX_CLOCK_SKEW_S, MAX_REQUEST_LIFE_S, SignedOverride
from controller.remote.keys import fingerprint, parse_public
from controller.remote.signing import NOT_SIGNED, signature_problem


@dataclass(frozen=True, slots=True)
class TrustedKey:
    technician: str
    key: Ed25519PublicKey
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Verified:
    """A request that passed every check: who sent it, with which key."""

    request: SignedOverride
    technician: str
    fingerprint: str

    @property
    def origin(self) -> str:
        """For the audit trail: how it came and which key vouched for it."""
        return f"via MQTT, signed with key {self.fingerprint}"


def trusted_keys(listed: Iterable[tuple[str, str]]) -> dict[tuple[str, str], TrustedKey]:
    """The keys of (technician name, `ed25519:...`) pairs, by (name, fingerprint)."""
    keys = {}
    for name, text in listed:
        key = parse_public(text)
        trusted = TrustedKey(name, key, fingerprint(key))
        keys[(name, trusted.fingerprint)] = trusted
    return keys


class SeenIds(Protocol):
    """Where request ids are remembered (the store: they survive a restart)."""

    def remember_request(self, request_id: str, expires_at: float, now: float) -> bool:
        """Record `request_id` until `expires_at`; False if it was recorded already."""
        ...


class Gate:
    """The checks of one site."""

    def __init__(self, site: str, keys: dict[tuple[str, str], TrustedKey], seen: SeenIds) -> None:
        self.site = site
        self.keys = keys
        self.seen = seen

    def check(self, request: SignedOverride, now: float, received: bytes | None = None) -> Verified:
        """The request as verified, or Rejected with the reason. `received`: the bytes it came as, which must be its
        one canonical spelling (`SignedOverride.wire()`), so that no byte of a request can change unnoticed."""
        if not request.signature:
            raise Rejected(NOT_SIGNED)
        trusted = self.keys.get((request.technician, request.key))
        if trusted is None:
            listed = any(name == request.technician for name, _ in self.keys)
            why = "is not one this site lists for them" if listed else "is not listed: unknown technician"
            raise Rejected(
                f"unknown key: {request.technician}'s key {request.key} {why} (layout: links.atn.technicians)"
            )
        if received is not None and received != request.wire():
            raise Rejected("not in canonical form: a signed request is sent exactly as SignedOverride.wire() spells it")
        problem = signature_problem(request, trusted.key)
        if problem is not None:
            raise Rejected(problem)
        if request.site != self.site:
            raise Rejected(f"wrong site: the request is for {request.site!r}, this is {self.site!r}")
        if request.expires_at <= now:
            raise Rejected(f"expired: request {request.id} expired {now - request.expires_at:.0f} s ago")
        if request.expires_at > now + MAX_REQUEST_LIFE_S + MAX_CLOCK_SKEW_S:
            raise Rejected(
                f"expires too far ahead: {request.expires_at - now:.0f} s from now; at most "
                f"{MAX_REQUEST_LIFE_S:g} s (plus {MAX_CLOCK_SKEW_S:g} s for clocks) are accepted"
            )
        if not self.seen.remember_request(f"{request.technician}/{request.id}", request.expires_at, now):
            raise Rejected(f"replayed: request id {request.id} was used already")
        return Verified(request, trusted.technician, trusted.fingerprint)
