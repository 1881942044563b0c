"""Signing a request and checking its signature (Ed25519 over `SignedOverride.signed_bytes()`)."""

from __future__ import annotations

import base64
import binascii
import secrets
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from controller.protocol import SignedOverride

SIGNATURE_BYTES = 64
NOT_SIGNED = "not signed: a request over MQTT needs a technician's signature"


def sign(request: SignedOverride, key: Ed25519PrivateKey) -> SignedOverride:
    """`request` with its signature (any signature it had is replaced)."""
    unsigned = request.model_copy(update={"signature": None})
    signature = key.sign(unsigned.signed_bytes())
    return request.model_copy(update={"signature": base64.b64encode(signature).decode("ascii")})


def signature_problem(request: SignedOverride, key: Ed25519PublicKey) -> str | None:
    """None when `request` carries a valid signature by `key` over all of its fields; else why not."""
    if not request.signature:
        return NOT_SIGNED
    try:
        raw = base64.b64decode(request.signature, validate=True)
    except (binascii.Error, ValueError):
        return "bad signature: not base64"
    if base64.b64encode(raw).decode("ascii") != request.signature:
        return "bad signature: not in canonical base64"
    if len(raw) != SIGNATURE_BYTES:
        return f"bad signature: {len(raw)} bytes, an Ed25519 signature has {SIGNATURE_BYTES}"
    try:
        key.verify(raw, request.signed_bytes())
    except InvalidSignature:
        return (
            f"bad signature: it does not match this request and {request.technician}'s key {request.key} "
            "(a changed field, or another key)"
        )
    return None


class Signer:
    """Makes signed requests for one technician and one site (the TUI, the bench, the tests)."""

    def __init__(self, technician: str, key: Ed25519PrivateKey, site: str, life_s: float = 120.0) -> None:
        from controller.remote.keys import fingerprint

        self.technician = technician
        self.key = key
        self.site = site
        self.fingerprint = fingerprint(key.public_key())
        self.life_s = life_s

    def request(
        self,
        op: Literal["override", "keepalive", "release"],
        now: float,
        *,
        target: str | None = None,
        value: bool | float | None = None,
        duration_s: float | None = None,
        override_id: str | None = None,
        reason: str = "",
        request_id: str | None = None,
    ) -> SignedOverride:
        """A new signed request, valid for `life_s` from `now`, with a fresh random id unless one is given."""
        unsigned = SignedOverride(
            id=request_id or secrets.token_hex(12),
            op=op,
            technician=self.technician,
            key=self.fingerprint,
            site=self.site,
            target=target,
            value=value,
            duration_s=duration_s,
            override_id=override_id,
            reason=reason,
            expires_at=now + self.life_s,
        )
        return sign(unsigned, self.key)
