"""What the fleet view shows, pure: one row per site from its newest `state` and `status`, sorted and filtered.

The link column is the ATN heartbeat's age when the site sent its state (not counted on here: "last seen" is the
state's own age). A site is *unavailable* when its status says offline or its newest state is older than
`QUIET_AFTER_PERIODS` of its own period (as in the single-site TUI): its last values are then shown as such, never
as live.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controller.protocol import DEFAULT_STATE_EVERY_S, QUIET_AFTER_PERIODS, State

COLUMNS = ("site", "mode", "house", "tank", "heat pump", "link", "alarms", "backlog", "last seen", "reason")
SORT_KEYS = ("site", "mode", "alarms", "backlog", "last seen")


@dataclass(frozen=True)
class Row:
    site: str
    available: bool
    cells: tuple[str, ...]
    alarms: int
    backlog: int
    seen: float


def _reading(state: State, *names: str, contains: str = "") -> float | None:
    for name in names:
        reading = state.readings.get(name)
        if reading is not None and reading.quality == "ok" and reading.value is not None:
            return reading.value
    for name, reading in sorted(state.readings.items()):
        if contains and contains in name and reading.quality == "ok" and reading.value is not None:
            return reading.value
    return None


HEAT_PUMP_POWER = "hp-power"  # the energy section's default name for the heat pump's meter


def _power_w(state: State) -> float | None:
    """The heat pump's electrical power: `hp-power`, else a W or kW channel named for the heat pump (never the
    house's grid meter, whose name sorts first in the demo layout and showed 400 W for a heat pump that was off)."""
    candidates = sorted(state.readings.items(), key=lambda item: (item[0] != HEAT_PUMP_POWER, item[0]))
    for name, reading in candidates:
        if reading.value is None or reading.quality != "ok" or reading.unit not in ("W", "kW"):
            continue
        if name == HEAT_PUMP_POWER or name.startswith("hp-") or "heat-pump" in name:
            return reading.value * (1000 if reading.unit == "kW" else 1)
    return None


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def _temperature(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} °C"


@dataclass
class FleetModel:
    states: dict[str, State] = field(default_factory=dict)
    online: dict[str, bool] = field(default_factory=dict)
    changed: bool = False

    def state(self, state: State) -> None:
        self.states[state.site] = state
        self.changed = True

    def status(self, site: str, online: bool) -> None:
        self.online[site] = online
        self.changed = True

    def quiet(self, site: str, now: float) -> bool:
        state = self.states.get(site)
        if state is None:
            return True
        return now - state.ts > QUIET_AFTER_PERIODS * (state.every_s or DEFAULT_STATE_EVERY_S)

    def row(self, site: str, now: float) -> Row:
        state = self.states.get(site)
        offline = self.online.get(site) is False
        if state is None:
            cells = (site, "offline" if offline else "?", "-", "-", "-", "-", "-", "-", "-", "no state yet")
            return Row(site, False, cells, 0, 0, 0.0)
        available = not offline and not self.quiet(site, now)
        pump = state.actuators.get("heat-pump")
        power = _power_w(state)
        pump_text = "-" if pump is None else ("on" if pump.on else "off")
        if power is not None:
            pump_text += f" {round(power)} W"  # round(): never "-0 W"
        link = state.link
        link_text = "-"
        if link is not None:
            # As of the state, as the site saw it: a healthy site's stays near its heartbeat period. Counted on
            # from here it climbed to ~32 s between two states (every 30 s), past the 30 s silence timeout, so a
            # healthy site looked like one about to go LOCAL. How old the state is, "last seen" says.
            heard = None if link.last_heartbeat is None else max(0.0, state.ts - link.last_heartbeat)
            link_text = ("up " if link.connected else "down ") + _age(heard)
        mode = state.mode if available else ("offline" if offline else "unavailable")
        cells = (
            site,
            mode,
            _temperature(_reading(state, "house-air", contains="house")),
            _temperature(_reading(state, "tank-top", contains="tank")),
            pump_text,
            link_text,
            str(len(state.alarms)) if state.alarms else "",
            str(link.backlog) if link is not None and link.backlog else "",
            _age(now - state.ts) + " ago",
            state.reason if available else f"last: {state.mode}, {state.reason}",
        )
        return Row(site, available, cells, len(state.alarms), link.backlog if link else 0, state.ts)

    def rows(self, now: float, sort: str = "site", text: str = "") -> list[Row]:
        """Every site, filtered by `text` (in any cell, case-blind) and sorted by `sort` (one of SORT_KEYS):
        problems first for alarms and backlog, the longest silent first for last seen."""
        sites = set(self.states) | set(self.online)
        rows = [self.row(site, now) for site in sites]
        needle = text.strip().lower()
        if needle:
            rows = [row for row in rows if any(needle in cell.lower() for cell in row.cells)]
        keys = {
            "site": lambda r: (r.site,),
            "mode": lambda r: (r.cells[1], r.site),
            "alarms": lambda r: (-r.alarms, r.site),
            "backlog": lambda r: (-r.backlog, r.site),
            "last seen": lambda r: (r.seen, r.site),
        }
        if sort not in keys:
            raise ValueError(f"sort by one of {', '.join(SORT_KEYS)}")
        return sorted(rows, key=keys[sort])
