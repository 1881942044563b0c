"""The layout's `[links]` table: where the ATN's broker is and how to reach it safely, and the local socket."""

from __future__ import annotations

from pydantic import Field, model_validator

from controller.layout.base import Strict
from controller.links.brokers import parse_broker_urls
from controller.protocol import BrokerUrl, is_loopback

__all__ = ["AtnLink", "HouseBroker", "Links", "LocalLink", "MqttLink", "TechnicianKey", "is_loopback"]


class TechnicianKey(Strict):
    """A technician this site trusts to override over MQTT: the name they sign as and their public key."""

    name: str = Field(description="the technician's name, as in `hearth keys new NAME`")
    key: str = Field(description="their public key: ed25519:<base64>, the first word of NAME.pub")

    @model_validator(mode="after")
    def _usable(self) -> TechnicianKey:
        from controller.remote.keys import KeyFileError, check_name, parse_public

        try:
            check_name(self.name)
            parse_public(self.key)
        except KeyFileError as error:
            raise ValueError(str(error)) from None
        return self


class MqttLink(Strict):
    """An MQTT broker connection. Secrets are never written in the layout: name a file (or a systemd credential)."""

    url: str | list[str] = Field(
        description="mqtts://host:8883, or a list of them (the nodes of a cluster): on a lost connection the link "
        "moves to the next one at once"
    )
    username: str | None = None
    password_file: str | None = Field(
        default=None, description="a file holding the password; relative names are looked up in $CREDENTIALS_DIRECTORY"
    )
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure: bool = Field(default=False, description="allow plain MQTT to a broker that is not on this machine")
    keepalive_s: int = Field(default=30, ge=5, le=600)

    @model_validator(mode="after")
    def _safe(self) -> MqttLink:
        parse_broker_urls(self.url, insecure=self.insecure, insecure_hint="set insecure = true")
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        return self

    @property
    def brokers(self) -> tuple[BrokerUrl, ...]:
        """Every broker of the link, in the order they are tried."""
        return parse_broker_urls(self.url, insecure=self.insecure, insecure_hint="set insecure = true")


class AtnLink(MqttLink):
    telemetry_batch: int = Field(default=2000, ge=1, le=50_000, description="readings per telemetry message")
    max_unacked_batches: int = Field(default=16, ge=1, le=1000, description="batches in flight before waiting")
    telemetry_linger_s: float = Field(
        default=5.0,
        ge=0,
        le=30,
        description="live readings wait up to this long (or until a batch is full) before they are sent, so a "
        "site sends one telemetry message and gets one acknowledgement per linger instead of per commit; 0 sends "
        "at every commit. A replay (readings older than this) and events are never held",
    )
    state_every_s: float = Field(default=30.0, ge=1, le=3600)
    home_assistant: bool = Field(default=False, description="publish Home Assistant MQTT discovery")
    remote_overrides: bool = Field(
        default=False, description="accept technicians' signed overrides over MQTT (off by default)"
    )
    technicians: list[TechnicianKey] = Field(
        default_factory=list, description="the technicians whose signed requests this site trusts"
    )

    @model_validator(mode="after")
    def _remote_overrides_need_keys(self) -> AtnLink:
        if self.remote_overrides and not self.technicians:
            raise ValueError(
                "remote_overrides = true needs at least one trusted key: add [[links.atn.technicians]] with the "
                "name and key that `hearth keys new NAME` printed"
            )
        seen: set[tuple[str, str]] = set()
        for technician in self.technicians:
            if (technician.name, technician.key) in seen:
                raise ValueError(f"technician {technician.name} lists the same key twice")
            seen.add((technician.name, technician.key))
        return self


class LocalLink(Strict):
    """The local API's unix socket (JSON lines). The peer's credentials decide the role: root and members of
    `technician_group` may override, everyone else may watch."""

    socket: str = Field(
        default="/run/hearth/hearth.sock",
        description="set it to pin the path; unset, $RUNTIME_DIRECTORY/hearth.sock is used under systemd",
    )
    technician_group: str = Field(
        default="hearth-tech", min_length=1, description="members (and root) may override; a missing group = root only"
    )
    mode: int = Field(
        default=0o666,
        ge=0,
        le=0o777,
        description="socket file permissions; everyone may connect and watch by default, the role comes from "
        "the peer's credentials, never from the file mode",
    )


class HouseBroker(MqttLink):
    """The house's own broker, for a local Home Assistant: the controller publishes its status, state and
    discovery there (with these credentials), and reads nothing but Home Assistant's own status."""

    state_every_s: float = Field(default=30.0, ge=1, le=3600)


class Links(Strict):
    atn: AtnLink | None = None
    home_assistant: HouseBroker | None = Field(
        default=None, description="a second broker (the house's own) that gets Home Assistant discovery and state"
    )
    local: LocalLink = Field(default_factory=LocalLink)
