"""`hearth fleet provision`: a site's (or a person's) broker credentials and permissions, and the site's link
section, on mosquitto or RabbitMQ.

- A random password (24 url-safe characters) is written to a private file (0600) and never appears in a
  command line, a log or the broker's files: mosquitto's password file gets a PBKDF2-SHA512 hash in its own
  `$7$` format, RabbitMQ gets a definitions document with a salted SHA-256 hash on `rabbitmqctl
  import_definitions`'s standard input (it adds and never deletes).
- mosquitto: a controller needs no ACL lines (the ACL's `pattern` lines give every site its own topics); any
  other role gets a `user` block appended to the ACL, unless the ACL has one that grants exactly that role
  already (deploy/mosquitto/acl has `atn`, `monitor`, `technician` and `homeassistant`); a block that grants
  anything else is refused, never edited. The broker rereads both files on SIGHUP.
- RabbitMQ: the user and both its vhost and topic permissions (`controller.fleet.rabbitmq.grant_for`).
- The link section (TOML) for the site's layout lists every broker URL given, in that order.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.fleet.rabbitmq import ROLES, Role, definitions

__all__ = [
    "RESERVED",
    "Provisioned",
    "link_section",
    "mosquitto_acl_block",
    "mosquitto_password_line",
    "provision_mosquitto",
    "provision_rabbitmq",
]

NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
RESERVED = frozenset({"atn", "monitor", "homeassistant", "state-request"})
"""not site ids: the ACL's patterns would give users of these names a site's topics"""
MOSQUITTO_ITERATIONS = 101  # what mosquitto_passwd 2.0 uses


class ProvisionError(ValueError):
    """Something the operator must fix; the message says what and where."""


@dataclass(frozen=True)
class Provisioned:
    user: str
    role: Role
    password_file: Path
    note: str = ""
    """what was already there (`the ACL grants it already`)"""


def check_name(user: str, role: Role) -> None:
    if role not in ROLES:
        raise ProvisionError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    if not NAME.match(user):
        raise ProvisionError(f"{user!r} is not a user name: lower-case letters, digits and '-', at most 63")
    if role == "controller" and user in RESERVED:
        raise ProvisionError(f"{user!r} is reserved and cannot be a site id ({', '.join(sorted(RESERVED))})")


def new_password() -> str:
    return secrets.token_urlsafe(18)


def write_secret(path: Path, password: str) -> None:
    """The password, alone, in a file only its owner can read (created 0600, never world-readable even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(password + "\n")
    path.chmod(0o600)


def mosquitto_password_line(user: str, password: str, salt: bytes | None = None) -> str:
    """`user:$7$101$<salt>$<hash>`, mosquitto 2.0's PBKDF2-SHA512 format (what `mosquitto_passwd` writes)."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, MOSQUITTO_ITERATIONS)
    return f"{user}:$7${MOSQUITTO_ITERATIONS}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def mosquitto_acl_block(user: str, role: Role) -> str:
    """The ACL lines a non-controller user needs (deploy/mosquitto/acl's roles); empty for a controller."""
    reads = ["topic read hearth/v1/#", "topic read homeassistant/#"]
    blocks: dict[Role, list[str]] = {
        "controller": [],
        "atn": [
            "topic write hearth/v1/+/atn/#",
            "topic write hearth/v1/state-request",
            *(f"topic read hearth/v1/+/{kind}" for kind in ("status", "state", "telemetry", "events", "ack")),
        ],
        "monitor": [*reads, "topic write hearth/v1/state-request"],
        "technician": [  # what `hearth tui --mqtt --key` subscribes to (deploy/mosquitto/acl says why)
            "topic write hearth/v1/+/override",
            "topic write hearth/v1/state-request",
            *(
                f"topic read hearth/v1/+/{kind}"
                for kind in ("override/reply", "status", "state", "events", "layout", "telemetry", "energy")
            ),
        ],
        "homeassistant": [*reads, "topic write homeassistant/status", "topic write hearth/v1/state-request"],
    }
    lines = blocks[role]
    if not lines:
        return ""
    # Take back what the controller patterns would give a user of this name.
    lines = [*lines, f"topic deny hearth/v1/{user}/#", f"topic deny homeassistant/+/{user}/#"]
    return f"\n# --- {role}: {user} (hearth fleet provision)\nuser {user}\n" + "\n".join(lines) + "\n"


def acl_user_lines(acl: str, user: str) -> set[str] | None:
    """The `topic` lines of `user`'s block in a mosquitto ACL (every block of that name), or None when it has
    none. A block runs from `user NAME` to the next `user` line; comments and blank lines do not count."""
    found: set[str] | None = None
    current = None
    for raw in acl.splitlines():
        line = " ".join(raw.split())
        if not line or line.startswith("#"):
            continue
        if line.startswith("user "):
            current = line[len("user ") :]
            if current == user and found is None:
                found = set()
        elif line.startswith("topic ") and current == user and found is not None:
            found.add(line)
    return found


def _replace_user(lines: list[str], user: str, line: str) -> list[str]:
    kept = [existing for existing in lines if existing.split(":", 1)[0] != user]
    return [*kept, line]


def provision_mosquitto(user: str, role: Role, *, password_file: Path, acl_file: Path, secret_out: Path) -> Provisioned:
    """Add (or replace) `user` in mosquitto's password file, give it its role in the ACL, write its password to
    `secret_out`. The broker picks both files up on SIGHUP."""
    check_name(user, role)
    if not acl_file.is_file():
        raise ProvisionError(f"{acl_file}: no such ACL file (deploy/mosquitto/acl is the template)")
    acl = acl_file.read_text()
    if role == "controller" and "pattern readwrite hearth/v1/%u/state" not in acl:
        raise ProvisionError(f"{acl_file} lacks deploy/mosquitto/acl's controller patterns; a site needs them")
    block = mosquitto_acl_block(user, role)
    granted = acl_user_lines(acl, user)
    if granted is not None:
        wanted = {line for line in block.splitlines() if line.startswith("topic ")}
        if granted != wanted:
            differs = sorted(granted ^ wanted, key=lambda line: (line not in granted, line))
            raise ProvisionError(
                f"{acl_file} already has a block for user {user} that is not the {role} role's ("
                + "; ".join(("has " if line in granted else "lacks ") + line for line in differs)
                + "): edit it by hand, or pick a new name"
            )
        block = ""  # the ACL grants it its role already: only the password is new
    password = new_password()
    existing = password_file.read_text().splitlines() if password_file.exists() else []
    _write_keeping_mode(
        password_file, "\n".join(_replace_user(existing, user, mosquitto_password_line(user, password)))
    )
    if block:
        _write_keeping_mode(acl_file, acl.rstrip("\n") + "\n" + block)
    write_secret(secret_out, password)
    note = f"{acl_file} grants it the {role} role already" if granted is not None else ""
    return Provisioned(user, role, secret_out, note)


def _write_keeping_mode(path: Path, text: str) -> None:
    """Replace a file atomically, with the old file's mode and owner (a broker's files are root:mosquitto 0640)."""
    mode, owner = (0o600, None)
    if path.exists():
        stat = path.stat()
        mode, owner = stat.st_mode & 0o777, (stat.st_uid, stat.st_gid)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "w") as file:
            file.write(text.rstrip("\n") + "\n")
        os.chmod(temporary, mode)
        if owner is not None and os.geteuid() == 0:
            os.chown(temporary, *owner)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def provision_rabbitmq(
    users: Sequence[tuple[str, Path]],
    role: Role,
    *,
    rabbitmqctl: Sequence[str] = ("rabbitmqctl",),
    timeout_s: float = 300,
) -> list[Provisioned]:
    """Create (or update) each (user, password file) with its role's permissions on a RabbitMQ cluster, all in one
    `rabbitmqctl import_definitions` (any node: definitions are cluster-wide; it adds and never deletes). The
    passwords travel only as hashes."""
    for user, _ in users:
        check_name(user, role)
    passwords = {user: new_password() for user, _ in users}
    document = definitions({user: (role, password) for user, password in passwords.items()})
    document["vhosts"] = []  # the vhost exists already; importing it again would only repeat it
    # On standard input, not in a file: Debian's /usr/sbin/rabbitmqctl, run as root, switches to the rabbitmq
    # user, who cannot read a root-owned 0600 file (and the hashes must not be readable by anyone else).
    try:
        result = subprocess.run(
            [*rabbitmqctl, "import_definitions"],
            input=json.dumps(document),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ProvisionError(f"could not run {' '.join(rabbitmqctl)}: {error}") from None
    if result.returncode != 0:
        output = (result.stderr or result.stdout).strip()[-1500:]
        raise ProvisionError(f"rabbitmqctl import_definitions failed (exit {result.returncode}): {output}")
    for user, secret_out in users:
        write_secret(secret_out, passwords[user])
    return [Provisioned(user, role, secret_out) for user, secret_out in users]


def link_section(site: str, urls: Sequence[str], password_file: str, ca_file: str | None = None) -> str:
    """The `[links.atn]` table for a site's layout."""
    lines = [
        "[links.atn]",
        f"url = {json.dumps(list(urls))}",
        f'username = "{site}"',
        f"password_file = {json.dumps(password_file)}",
    ]
    if ca_file:
        lines.append(f"ca_file = {json.dumps(ca_file)}")
    return "\n".join(lines) + "\n"
