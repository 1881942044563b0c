"""RabbitMQ's version of deploy/mosquitto/acl: the same roles as vhost and topic permissions, and a definitions
file (users with salted password hashes, permissions) that a node imports at boot.

How RabbitMQ's MQTT plugin maps the ACL (3.10):
- An MQTT topic is a routing key on the `amq.topic` exchange with `/` turned into `.` (and `+` into `*` in a
  subscription), so `hearth/v1/demo-house/state` is checked as `hearth.v1.demo-house.state`.
- A **topic permission** is a pair of regular expressions per user: `write` is checked on every PUBLISH (the
  last will included), `read` on every SUBSCRIBE against the filter (so `hearth/v1/+/state` is checked as
  `hearth.v1.*.state`).
- The **vhost permissions** (configure/write/read) must also let the plugin make the client's subscription
  queue (`mqtt-subscription-...`), bind it to `amq.topic` and publish to `amq.topic`. A read-only role has no
  write on `amq.topic` at all.
- There are no `pattern` lines: each site's user gets its own rules with its site id written in, which is why
  `fleet provision` makes them per site. Site ids are `[a-z0-9-]`, so they need no escaping beyond `re.escape`.

A denial is not silent as on mosquitto: RabbitMQ closes the client's connection (see deploy/rabbitmq/README.md).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["ROLES", "Grant", "Role", "definitions", "grant_for", "orphaned_subscriptions_policy", "password_hash"]

Role = Literal["controller", "atn", "monitor", "technician", "homeassistant"]
ROLES: tuple[Role, ...] = ("controller", "atn", "monitor", "technician", "homeassistant")
VHOST = "/"
EXCHANGE = "amq.topic"
_SUBSCRIPTION_QUEUES = r"^mqtt-subscription-.*"
_SITE_TOPICS = r"(status|state|telemetry|events|ack|layout)"
_ANY_SITE = r"[^.]+"
_STATE_REQUEST = r"^hearth\.v1\.state-request$"


@dataclass(frozen=True)
class Grant:
    """One user's permissions: on the vhost (configure, write, read) and on `amq.topic` (write, read)."""

    configure: str
    write: str
    read: str
    topic_write: str
    topic_read: str


def grant_for(role: Role, user: str) -> Grant:
    """What `user` may do in `role`; for a controller the user name is its site id."""
    publishes = rf"^(mqtt-subscription-.*|{re.escape(EXCHANGE)})$"
    readers = Grant(  # read everything; write nothing but a state request (it switches nothing)
        configure=_SUBSCRIPTION_QUEUES,
        write=publishes,
        read=publishes,
        topic_write=_STATE_REQUEST,
        topic_read=r"^(hearth\.v1\..+|homeassistant\..+)$",
    )
    if role == "controller":
        site = re.escape(user)
        return Grant(
            configure=_SUBSCRIPTION_QUEUES,
            write=publishes,
            read=publishes,
            topic_write=rf"^(hearth\.v1\.{site}\.({_SITE_TOPICS[1:-1]}|override\.reply|energy)|homeassistant\.[^.]+\.{site}\..+)$",
            topic_read=rf"^(hearth\.v1\.{site}\.({_SITE_TOPICS[1:-1]}|override|override\.reply|energy)|hearth\.v1\.{site}\.atn\..+"
            r"|homeassistant\.status|hearth\.v1\.state-request)$",
        )
    if role == "atn":
        return Grant(
            configure=_SUBSCRIPTION_QUEUES,
            write=publishes,
            read=publishes,
            topic_write=rf"^(hearth\.v1\.{_ANY_SITE}\.atn\..+|hearth\.v1\.state-request)$",
            topic_read=rf"^hearth\.v1\.{_ANY_SITE}\.{_SITE_TOPICS}$",
        )
    if role == "monitor":
        return readers
    if role == "technician":  # signed override requests (issue 16); a controller acts only on a key it lists
        return Grant(
            configure=readers.configure,
            write=publishes,
            read=readers.read,
            topic_write=rf"^(hearth\.v1\.{_ANY_SITE}\.override|hearth\.v1\.state-request)$",
            topic_read=rf"^hearth\.v1\.{_ANY_SITE}\.(override\.reply|status|state|events|layout|telemetry|energy)$",
        )
    if role == "homeassistant":  # reads like a monitor, and publishes its birth/last will
        return Grant(
            configure=readers.configure,
            write=publishes,
            read=readers.read,
            topic_write=r"^(homeassistant\.status|hearth\.v1\.state-request)$",
            topic_read=readers.topic_read,
        )
    raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")


ORPHANS_EXPIRE_MS = 15 * 60 * 1000


def orphaned_subscriptions_policy(vhost: str = VHOST) -> dict[str, Any]:
    """A policy that deletes an MQTT subscription queue nobody has consumed from for 15 minutes.

    A client's subscription queue is durable and homed on the node it was connected to. When that node dies, the
    queue's record stays; when the node comes back, so does the queue, bound to the client's topics and without
    a consumer, since the client has moved on to another node (under another client id: see
    `controller.links.connection.client_id`). Nothing deletes such a queue (an auto-delete queue goes only when
    its last consumer leaves) and the ATN's heartbeats, leases and acks would pile up in it for ever. A queue in
    use always has its consumer, so `expires` only ever takes the orphans."""
    return {
        "vhost": vhost,
        "name": "hearth-orphaned-subscriptions",
        "pattern": r"^mqtt-subscription-",
        "apply-to": "queues",
        "definition": {"expires": ORPHANS_EXPIRE_MS},
        "priority": 0,
    }


def password_hash(password: str, salt: bytes | None = None) -> str:
    """RabbitMQ's `rabbit_password_hashing_sha256`: base64(salt + sha256(salt + password)), a 4-byte salt."""
    salt = secrets.token_bytes(4) if salt is None else salt
    if len(salt) != 4:
        raise ValueError("RabbitMQ's salt is 4 bytes")
    return base64.b64encode(salt + hashlib.sha256(salt + password.encode()).digest()).decode()


def definitions(users: Mapping[str, tuple[Role, str]], *, vhost: str = VHOST) -> dict[str, Any]:
    """A definitions document (`rabbitmqctl import_definitions`, or `definitions.local.path` at boot) with each
    user (name -> (role, password)) and its permissions, and the policy that deletes orphaned subscription queues
    (`orphaned_subscriptions_policy`). Passwords appear only as salted hashes."""
    rows = [(name, role, password, grant_for(role, name)) for name, (role, password) in users.items()]
    return {
        "users": [
            {
                "name": name,
                "password_hash": password_hash(password),
                "hashing_algorithm": "rabbit_password_hashing_sha256",
                "tags": [],
            }
            for name, _, password, _ in rows
        ],
        "vhosts": [{"name": vhost}],
        "permissions": [
            {"user": name, "vhost": vhost, "configure": g.configure, "write": g.write, "read": g.read}
            for name, _, _, g in rows
        ],
        "topic_permissions": [
            {"user": name, "vhost": vhost, "exchange": EXCHANGE, "write": g.topic_write, "read": g.topic_read}
            for name, _, _, g in rows
        ],
        "policies": [orphaned_subscriptions_policy(vhost)],
    }


def definitions_json(users: Mapping[str, tuple[Role, str]]) -> str:
    return json.dumps(definitions(users), indent=2) + "\n"


def rabbitmqctl_commands(user: str, role: Role, *, vhost: str = VHOST) -> Iterable[list[str]]:
    """The rabbitmqctl arguments that give an existing `user` the permissions of `role` (after `add_user`)."""
    grant = grant_for(role, user)
    yield ["set_permissions", "-p", vhost, user, grant.configure, grant.write, grant.read]
    yield ["set_topic_permissions", "-p", vhost, user, EXCHANGE, grant.topic_write, grant.topic_read]
