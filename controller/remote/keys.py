"""Technicians' Ed25519 keys: files, public-key text and fingerprints.

A key pair is two files: `NAME.key`, the private key (PKCS#8 PEM, unencrypted, mode 0600, refused when anyone but
its owner may read or write it), and `NAME.pub`, one line `ed25519:<base64 of the 32-byte public key> NAME`, the
form a layout lists under `[[links.atn.technicians]]`. The technician's name is the key file's name: the TUI
signs requests as that name.

A fingerprint names a key in the audit log: `SHA256:` and the first 16 hex digits of the SHA-256 of the raw
public key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

PUBLIC_PREFIX = "ed25519:"
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
PRIVATE_MODE = 0o600


class KeyFileError(Exception):
    """A key file or key text that cannot be used; the message says which and why."""


def check_name(name: str) -> str:
    if not NAME_PATTERN.match(name):
        raise KeyFileError(
            f"technician name {name!r}: use 1 to 64 of a-z, 0-9, '.', '_', '-', starting with a letter or digit"
        )
    return name


def public_text(key: Ed25519PublicKey) -> str:
    """`ed25519:<base64>`: how a layout lists a public key."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return PUBLIC_PREFIX + base64.b64encode(raw).decode("ascii")


def parse_public(text: str) -> Ed25519PublicKey:
    """The key in `ed25519:<base64>`, or KeyFileError saying what is wrong with it."""
    if not text.startswith(PUBLIC_PREFIX):
        raise KeyFileError(
            f"a public key starts with {PUBLIC_PREFIX!r} (as `hearth keys new` prints it), got {text[:20]!r}"
        )
    try:
        raw = base64.b64decode(text.removeprefix(PUBLIC_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        raise KeyFileError(f"public key {text[:60]!r} is not valid base64") from None
    if len(raw) != 32:
        raise KeyFileError(f"an Ed25519 public key is 32 bytes; {text[:60]!r} holds {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def fingerprint(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return "SHA256:" + hashlib.sha256(raw).hexdigest()[:16]


def new_pair(name: str, directory: Path) -> tuple[Path, Path]:
    """Write `NAME.key` (0600, created so: never readable by others, even for an instant) and `NAME.pub`.
    Refuses to overwrite either."""
    check_name(name)
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} exists already; not overwriting a key (move it away first)")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE)
    with os.fdopen(descriptor, "wb") as file:
        file.write(pem)
    os.chmod(private_path, PRIVATE_MODE)  # whatever the umask made of it
    public_path.write_text(f"{public_text(key.public_key())} {name}\n", encoding="ascii")
    return private_path, public_path


def load_private(path: Path) -> tuple[str, Ed25519PrivateKey]:
    """(technician name, key) from a private key file; KeyFileError when the file is missing, is readable or writable
    by anyone but its owner (like ssh, a key others could read is not a secret any more), or holds no Ed25519 key."""
    try:
        info = path.stat()
    except OSError as error:
        raise KeyFileError(f"key file {path}: {error.strerror or error}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"key file {path} is not a regular file")
    loose = stat.S_IMODE(info.st_mode) & 0o077
    if loose:
        raise KeyFileError(
            f"key file {path} has mode {stat.S_IMODE(info.st_mode):04o}: others may read or change it, so it is "
            f"refused; make it private with `chmod 600 {path}` (and make a new key if others may have copied it)"
        )
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as error:
        raise KeyFileError(f"key file {path} holds no usable private key: {error}") from None
    except OSError as error:
        raise KeyFileError(f"key file {path}: {error.strerror or error}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"key file {path} holds a {type(key).__name__}, not an Ed25519 key (use `hearth keys new`)")
    name = path.name.removesuffix(".key")
    return check_name(name), key
