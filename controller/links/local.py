"""The local API: a unix socket speaking JSON lines with the protocol's `Request`, `Response` and `Push`.

One request per line, one response per request (matched by `id`). The role comes from the peer's credentials
(SO_PEERCRED), never from anything the client says: root and members of the technician group may override and
acknowledge alarms; everyone else may watch (subscribe, layout, history). Refusals say why.

- `subscribe`: the answer, then the state at once, the last few events (context for a fresh screen), then the
  state whenever it changes (polled at 5 Hz) and at least once a second, and every new event.
- `override`, `keepalive`, `release`: `controller.links.override_ops.carry_out` (shared with signed requests over
  MQTT): through `OverrideBook`, then the answer waits for a decision that saw the change, so it carries the
  actuator as the interlocks left it (`held_by`, `reason`).
- `ack_alarm`, `layout`, `history`; `energy` (daily totals, month and season) and `energy_day` (one local day's
  curves of power, heat, flow and temperatures for the Energy screen's plot).

A bad line (not JSON, not a valid request, longer than `LINE_LIMIT`) gets `ok: false` with the reason and the
connection carries on. Each client has a bounded outbox: a client that reads slower than the pushes come gets the
latest state only (older ones are merged away) and loses the oldest events (their `seq` shows the gap); one that
stops reading for `WRITE_TIMEOUT_S` is disconnected. Memory per client stays bounded either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import grp
import math
import os
import pwd
import socket
import sqlite3
import stat
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import structlog
from pydantic import ValidationError

from controller import protocol
from controller.alarms import AlarmBoard, AlarmError
from controller.clock import Clock
from controller.control.types import Event
from controller.decode import SOCKET_LIMITS
from controller.energy.book import recent_days
from controller.energy.dayplot import day_curves
from controller.energy.rollup import totals_rows
from controller.layout.model import Layout
from controller.links.admission import Admission, SocketLimits
from controller.links.config import LocalLink
from controller.links.override_ops import carry_out
from controller.overrides import OverrideBook, OverrideError
from controller.planner.fitting.run import model_reply
from controller.store import Store

log = structlog.get_logger("hearth.local")

SOCKET_NAME = "hearth.sock"
LINE_LIMIT = SOCKET_LIMITS.max_bytes  # bytes per request line
REFUSALS_LOGGED_EVERY = 100
ROLE_CACHE_S = 10.0  # a change of group membership is seen within this
ACCEPT_BATCH = 64  # connections accepted in a row before the loop lets other work run
LISTEN_BACKLOG = 4096  # a flood of connects must not fill the queue a technician's connect waits in
POLL_S = 0.2  # state and events are looked at 5 times a second while someone subscribes
STATE_EVERY_S = 1.0  # and the state is pushed at least this often
IDLE_S = 1.0  # with no subscriber, the state is still built this often (it keeps the alarm board's clocks)
EVENT_BACKLOG = 256  # events queued per client before the oldest are dropped
RECENT_EVENTS = 20  # sent right after a subscribe
WRITE_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 3.0
HISTORY_MAX_POINTS = 2000
HISTORY_DEFAULT_H = 1.0
ENERGY_DEFAULT_DAYS = 30
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid


class LocalApiError(Exception):
    """The socket cannot be served; the message says where and why."""


# ---- who is at the other end -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Peer:
    """A connected client, as the kernel vouches for it."""

    pid: int
    uid: int
    gid: int
    user: str
    role: protocol.Role
    group: str
    group_exists: bool

    @property
    def origin(self) -> str:
        return f"local socket uid {self.uid} pid {self.pid}"

    def refusal(self, what: str) -> str:
        missing = "" if self.group_exists else " (no such group on this machine)"
        return f"read-only: {self.user} is not root and not in group {self.group}{missing}; {what} a technician"


def peer_credentials(sock: Any) -> tuple[int, int, int]:
    """(pid, uid, gid) of the process at the other end of a connected unix socket."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    pid, uid, gid = _UCRED.unpack(raw)
    return pid, uid, gid


def identify(pid: int, uid: int, gid: int, technician_group: str) -> Peer:
    """Name and role of a peer: technician for root and for members (primary or supplementary, from the group
    database) of `technician_group`; a group that does not exist makes nobody but root a technician."""
    try:
        name: str | None = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = None
    user = name or f"uid {uid}"
    try:
        tech_gid: int | None = grp.getgrnam(technician_group).gr_gid
    except KeyError:
        tech_gid = None
    if uid == 0:
        role: protocol.Role = "technician"
    elif tech_gid is None:
        role = "monitor"
    else:
        groups = os.getgrouplist(name, gid) if name else [gid]
        role = "technician" if tech_gid in groups else "monitor"
    return Peer(pid, uid, gid, user, role, technician_group, tech_gid is not None)


# ---- where the socket lives ------------------------------------------------------------------------------


def _writable(directory: Path) -> bool:
    """Whether this process could create a file in `directory`, creating the directory first if need be."""
    probe = directory
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return probe.is_dir() and os.access(probe, os.W_OK | os.X_OK)


def socket_paths(
    explicit: Path | None, config: LocalLink, state_dir: Path, env: Mapping[str, str] | None = None
) -> list[Path]:
    """Where to listen, in order of preference.

    A chosen path alone: `--socket`, else the layout's `links.local.socket` if the layout sets it. Otherwise
    `$RUNTIME_DIRECTORY/hearth.sock` (systemd) or the default /run/hearth/hearth.sock, then `<state_dir>/hearth.sock`
    for when another controller already serves the default (a second `hearth run` beside the service); a user who
    is not root and cannot write to the default's directory goes straight to the state directory.
    """
    if explicit is not None:
        return [explicit]
    if "socket" in config.model_fields_set:
        return [Path(config.socket)]
    fallback = state_dir.absolute() / SOCKET_NAME
    runtime_dir = (os.environ if env is None else env).get("RUNTIME_DIRECTORY", "")
    path = Path(runtime_dir.split(":")[0]) / SOCKET_NAME if runtime_dir else Path(config.socket)
    if not runtime_dir and os.geteuid() != 0 and not _writable(path.parent):
        log.info("socket directory not writable: using the state directory", wanted=str(path), path=str(fallback))
        return [fallback]
    return [path] if path == fallback else [path, fallback]


# ---- waiting for the control loop ------------------------------------------------------------------------


class Ticking(Protocol):
    """The part of `ControlLoop` the API waits on."""

    ticks: int

    def wake(self) -> None: ...


async def next_decision(loop: Ticking, timeout_s: float = SETTLE_TIMEOUT_S) -> bool:
    """Wake the control loop and wait for a decision that started after this call, so it saw whatever was
    stored just before. Returns False if none came within `timeout_s` (real time).

    A tick reads the overrides when it starts; one already under way when we wake the loop may have read them
    before the change. So wake twice, each time waiting for a tick to finish: the second one started after the
    first wake at the latest. The cost is one extra tick per override request (a few milliseconds).
    """
    deadline = time.monotonic() + timeout_s
    for _ in range(2):
        seen = loop.ticks
        loop.wake()
        while loop.ticks == seen:
            if time.monotonic() >= deadline:
                log.warning("no control decision after a change", timeout_s=timeout_s)
                return False
            await asyncio.sleep(0.002)
    return True


# ---- one connection ----------------------------------------------------------------------------------------


class _Client:
    """One connection: its peer, its writer and a bounded outbox of pushes."""

    def __init__(self, peer: Peer, writer: asyncio.StreamWriter) -> None:
        self.peer = peer
        self.writer = writer
        self.subscribed = False
        self._lock = asyncio.Lock()
        self._state: bytes | None = None
        self._events: deque[bytes] = deque(maxlen=EVENT_BACKLOG)
        self._ready = asyncio.Event()
        self.dropped_events = 0
        self.merged_states = 0

    async def send(self, message: protocol.Message) -> None:
        """Write one line now (answers are never dropped; a client that does not read stops being read)."""
        async with self._lock:
            self.writer.write(message.to_json() + b"\n")
            async with asyncio.timeout(WRITE_TIMEOUT_S):
                await self.writer.drain()

    def offer_state(self, line: bytes) -> None:
        if self._state is not None:
            self.merged_states += 1
        self._state = line
        self._ready.set()

    def offer_event(self, line: bytes) -> None:
        if len(self._events) == self._events.maxlen:
            self.dropped_events += 1
        self._events.append(line)
        self._ready.set()

    async def pushes(self) -> None:
        """Write queued pushes as the client reads them; disconnect a client that stops reading."""
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                lines = [] if self._state is None else [self._state]
                lines += self._events
                self._state = None
                self._events.clear()
                async with self._lock:
                    self.writer.writelines(line + b"\n" for line in lines)
                    async with asyncio.timeout(WRITE_TIMEOUT_S):
                        await self.writer.drain()
        except TimeoutError:
            log.warning("local client too slow: disconnected", user=self.peer.user, pid=self.peer.pid)
            self.abort()
        except ConnectionError:
            self.abort()

    def abort(self) -> None:
        self.writer.transport.abort()


# ---- the server ----------------------------------------------------------------------------------------------


def state_signature(state: protocol.State) -> Hashable:
    """What a subscriber would see change (everything but the timestamp)."""
    return (
        state.mode,
        state.reason,
        tuple((n, r.value, r.quality, r.detail) for n, r in state.readings.items()),
        tuple((n, a.on, a.source, a.reason, a.held_by, a.held_until) for n, a in state.actuators.items()),
        tuple((o.id, o.expires_at) for o in state.overrides),
        tuple((a.id, a.message, a.acknowledged_by) for a in state.alarms),
        None if state.link is None else (state.link.connected, state.link.lease_id, state.link.backlog > 0),
    )


class LocalApiServer:
    """Serves the local API on a unix socket until cancelled; removes the socket when it stops."""

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        layout: Layout,
        store: Store,
        clock: Clock,
        overrides: OverrideBook,
        alarms: AlarmBoard,
        state: Callable[[], protocol.State],
        settle: Callable[[], Awaitable[object]],
        idle: Callable[[], object] | None = None,
        technician_group: str = "hearth-tech",
        mode: int = 0o666,
        limits: SocketLimits | None = None,
        refit: Callable[[], Awaitable[dict[str, object]]] | None = None,
    ) -> None:
        self.paths = list(paths)
        self.path = self.paths[0]  # the one served, once listening
        self.layout = layout
        self.store = store
        self.clock = clock
        self.overrides = overrides
        self.alarms = alarms
        self.state = state
        self.settle = settle
        self.refit = refit  # fit the planner's model now (hearth model fit); None: this server cannot
        # What to do once a second with nobody subscribed: time the alarm board's faults (default: build the state,
        # which does that and more; the controller gives the alarm board's own call).
        self.idle = idle or state
        self.technician_group = technician_group
        self.mode = mode
        self.site = layout.site.id
        self.listening = asyncio.Event()
        self._clients: set[_Client] = set()
        self.admission = Admission(limits)
        self._roles: dict[tuple[int, int], tuple[float, asyncio.Future[Peer]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._event_seq = 0
        self._inode: int | None = None

    # ---- life cycle -------------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Listen (on the first of `paths` that can be served) and publish until cancelled. When none can be, that
        is logged as an error and the controller goes on without its local API: heating the house matters more
        than the screen."""
        server: socket.socket | None = None
        for path in self.paths:
            self.path = path
            try:
                server = await self._listen()
                break
            except (OSError, LocalApiError) as error:
                if path is self.paths[-1]:
                    log.error("local API unavailable", path=str(path), detail=str(error))
                    return
                log.warning("cannot serve the local API here: trying the next place", path=str(path), detail=str(error))
        assert server is not None
        log.info(
            "local API listening", path=str(self.path), mode=oct(self.mode), technician_group=self.technician_group
        )
        self.listening.set()
        acceptor = asyncio.create_task(self._accept(server), name="local-api:accept")
        try:
            await self._publish()
        finally:
            acceptor.cancel()
            server.close()
            for client in list(self._clients):
                client.abort()
            self._remove_socket()

    async def _listen(self) -> socket.socket:
        path = self.path
        if not path.parent.exists():
            path.parent.mkdir(parents=True)
            path.parent.chmod(0o755)  # whatever the umask: every local user may reach the socket and watch
        if path.is_symlink() or path.exists():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise LocalApiError(f"{path} exists and is not a socket; not removing it")
            if await _answers(path):
                raise LocalApiError(f"another process is serving {path}; is a second controller running?")
            path.unlink()
            log.info("removed a stale socket", path=str(path))
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            server.bind(str(path))
            server.listen(LISTEN_BACKLOG)
            server.setblocking(False)
            os.chmod(path, self.mode)
            self._inode = path.stat().st_ino
        except OSError:
            server.close()
            raise
        with contextlib.suppress(KeyError, PermissionError):
            # Give the technician group the socket too, for a mode that keeps others out (0o660).
            os.chown(path, -1, grp.getgrnam(self.technician_group).gr_gid)
        self._event_seq = self.store.last_event_seq()
        return server

    def _remove_socket(self) -> None:
        """Remove the socket file, unless someone else's has taken its place meanwhile."""
        with contextlib.suppress(FileNotFoundError):
            if self.path.lstat().st_ino == self._inode:
                self.path.unlink()

    # ---- pushes ------------------------------------------------------------------------------------------------

    async def _publish(self) -> None:
        """Build the state once per poll for every subscriber, push it on change and every second; push new
        events. With nobody subscribed, call `idle` once a second (the alarm board times faults from it), and leave
        the events to the next subscriber (`_subscribe` catches up)."""
        last_signature: Hashable = None
        last_pushed = -math.inf
        while True:
            subscribers = [c for c in self._clients if c.subscribed]
            if not subscribers:
                self.idle()
                await asyncio.sleep(IDLE_S)
                continue
            state = self.state()
            if subscribers:
                signature = state_signature(state)
                if signature != last_signature or time.monotonic() - last_pushed >= STATE_EVERY_S:
                    line = protocol.Push(push="state", state=state).to_json()
                    for client in subscribers:
                        client.offer_state(line)
                    last_signature, last_pushed = signature, time.monotonic()
            for line in self._new_events():
                for client in subscribers:
                    client.offer_event(line)
            await asyncio.sleep(POLL_S if subscribers else IDLE_S)

    def _new_events(self) -> list[bytes]:
        lines = []
        while True:
            batch = self.store.events_after(self._event_seq, limit=500)
            lines += [self._event_line(seq, event) for seq, event in batch]
            if batch:
                self._event_seq = batch[-1][0]
            if len(batch) < 500:
                return lines

    def _event_line(self, seq: int, event: Event) -> bytes:
        message = protocol.EventMsg(
            site=self.site, seq=seq, ts=event.ts, kind=event.kind, message=event.message, data=event.data
        )
        return protocol.Push(push="event", event=message).to_json()

    def _subscribe(self, client: _Client) -> None:
        """Queue the state and the last few events (up to where the publisher has got) for a new subscriber."""
        client.subscribed = True
        client.offer_state(protocol.Push(push="state", state=self.state()).to_json())
        if not any(c.subscribed for c in self._clients if c is not client):  # the publisher was idle: catch up
            self._event_seq = max(self._event_seq, self.store.last_event_seq())
        first = max(0, self._event_seq - RECENT_EVENTS)
        for seq, event in self.store.events_after(first, limit=RECENT_EVENTS):
            if seq <= self._event_seq:
                client.offer_event(self._event_line(seq, event))

    # ---- requests ----------------------------------------------------------------------------------------------

    async def _accept(self, server: socket.socket) -> None:
        """Accept connections and decide at once, before any stream or task exists for them, whether each may stay:
        a refused one costs a getsockopt, a dictionary lookup, a send and a close. A flood of refused connections
        then costs little, and a technician's connection, queued behind them in the kernel, is reached soon."""
        loop = asyncio.get_running_loop()
        while True:
            connection, _ = await loop.sock_accept(server)
            for _ in range(ACCEPT_BATCH):
                self._admit(connection)
                try:
                    connection, _ = server.accept()
                except BlockingIOError:
                    break
            else:
                self._admit(connection)
            await asyncio.sleep(0)  # let the technician's answer (and the control loop) run between batches

    def _admit(self, connection: socket.socket) -> None:
        try:
            pid, uid, gid = peer_credentials(connection)
        except OSError as error:
            log.warning("local client without credentials: refused", detail=str(error))
            connection.close()
            return
        peer = self._known_peer(pid, uid, gid)
        if peer is not None and not self._take_slot(connection, peer):
            return
        task = asyncio.create_task(self._connection(connection, pid, uid, gid, peer), name=f"local-api:{pid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _take_slot(self, connection: socket.socket, peer: Peer) -> bool:
        """Admit `peer` or refuse it with a reason (written without waiting, then closed)."""
        refusal = self.admission.admit(peer.role, peer.uid)
        if refusal is None:
            return True
        if self.admission.refused % REFUSALS_LOGGED_EVERY == 1:  # a flood is logged, not each of its thousands
            log.warning(
                "local client refused", user=peer.user, pid=peer.pid, reason=refusal, refused=self.admission.refused
            )
        with contextlib.suppress(OSError):
            connection.setblocking(False)
            connection.send(protocol.Response(id="?", ok=False, error=refusal).to_json() + b"\n")
        connection.close()
        return False

    async def _connection(self, connection: socket.socket, pid: int, uid: int, gid: int, known: Peer | None) -> None:
        peer = known
        if peer is None:  # not in the cache: look the user up (on a thread), then admit or refuse
            peer = await self._identify(pid, uid, gid)
            if not self._take_slot(connection, peer):
                return
        try:
            reader, writer = await asyncio.open_unix_connection(sock=connection, limit=LINE_LIMIT)
        except OSError:
            self.admission.leave(peer.role, uid)
            connection.close()
            return
        client = _Client(peer, writer)
        self._clients.add(client)
        log.info("local client connected", user=peer.user, uid=uid, pid=pid, role=peer.role)
        pusher = asyncio.create_task(client.pushes(), name=f"local-api:push:{pid}")
        try:
            await self._requests(reader, client)
        except (ConnectionError, TimeoutError) as error:
            log.info("local client lost", user=peer.user, pid=pid, detail=str(error) or type(error).__name__)
        finally:
            self._clients.discard(client)
            self.admission.leave(peer.role, uid)
            pusher.cancel()
            writer.close()
            if client.dropped_events or client.merged_states:
                log.info(
                    "local client was slow",
                    user=peer.user,
                    pid=pid,
                    dropped_events=client.dropped_events,
                    merged_states=client.merged_states,
                )
            log.info("local client disconnected", user=peer.user, pid=pid)

    def _known_peer(self, pid: int, uid: int, gid: int) -> Peer | None:
        """The peer from the role cache, if it holds a fresh answer for (uid, gid)."""
        cached = self._roles.get((uid, gid))
        if cached is None or time.monotonic() - cached[0] > ROLE_CACHE_S or not cached[1].done():
            return None
        if cached[1].cancelled() or cached[1].exception() is not None:
            return None
        return dataclasses.replace(cached[1].result(), pid=pid)

    async def _identify(self, pid: int, uid: int, gid: int) -> Peer:
        """The peer's name and role, from the user and group databases at most once per `ROLE_CACHE_S` for a
        (uid, gid): a thousand connections from one user cost one lookup, not a thousand queued on threads ahead of
        a technician's."""
        key = (uid, gid)
        now = time.monotonic()
        cached = self._roles.get(key)
        if cached is None or now - cached[0] > ROLE_CACHE_S:
            lookup = asyncio.ensure_future(asyncio.to_thread(identify, 0, uid, gid, self.technician_group))
            cached = self._roles[key] = (now, lookup)
        peer = await asyncio.shield(cached[1])
        return dataclasses.replace(peer, pid=pid)

    async def _requests(self, reader: asyncio.StreamReader, client: _Client) -> None:
        """Answer each line until the client hangs up. An over-long line is answered once and skipped. A client
        that has not subscribed and sends nothing for `idle_s` is dropped, and so is one whose line has started but
        not ended within `line_deadline_s`."""
        limits = self.admission.limits
        skipping = False
        while True:
            stage = f"no request for {limits.idle_s:g} s"
            first = b""
            try:
                async with asyncio.timeout(None if client.subscribed else limits.idle_s):
                    first = await reader.readexactly(1)
                stage = f"a request line took more than {limits.line_deadline_s:g} s"
                line = first
                if first != b"\n":
                    async with asyncio.timeout(limits.line_deadline_s):
                        line += await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as eof:  # the client hung up; a last line may lack its newline
                if (first + eof.partial).strip() and not skipping:
                    await self._answer(client, first + eof.partial)
                return
            except asyncio.LimitOverrunError as overrun:
                await reader.readexactly(overrun.consumed)  # drop what is buffered of the long line
                if not skipping:
                    skipping = True
                    error = f"request line longer than {LINE_LIMIT} bytes: ignored"
                    await client.send(protocol.Response(id="?", ok=False, error=error))
                continue
            except TimeoutError:
                log.info("local client dropped", user=client.peer.user, pid=client.peer.pid, reason=stage)
                with contextlib.suppress(ConnectionError, TimeoutError):
                    client.writer.write(protocol.Response(id="?", ok=False, error=f"{stage}: disconnected").to_json())
                return
            if skipping:  # the tail of the long line
                skipping = False
            elif line.strip():
                await self._answer(client, line)

    async def _answer(self, client: _Client, line: bytes) -> None:
        peer = client.peer
        try:
            request = protocol.parse(protocol.Request, line, SOCKET_LIMITS)
        except protocol.Rejected as rejected:
            request_id = protocol.id_of(line, SOCKET_LIMITS) or "?"
            await client.send(
                protocol.Response(id=request_id, ok=False, error=rejected.reason, role=peer.role, user=peer.user)
            )
            return
        try:
            response = await self._dispatch(client, request)
        except (OverrideError, AlarmError) as refused:
            response = self._refuse(request, peer, str(refused))
        except ValidationError as invalid:
            response = self._refuse(request, peer, f"invalid: {invalid.errors()[0]['msg']}")
        except sqlite3.Error as error:
            log.error("local API: store error", op=request.op, detail=str(error))
            response = self._refuse(request, peer, f"the controller's store failed: {error}")
        await client.send(response)
        if request.op == "subscribe" and response.ok:
            self._subscribe(client)

    @staticmethod
    def _refuse(request: protocol.Request, peer: Peer, error: str) -> protocol.Response:
        return protocol.Response(id=request.id, ok=False, error=error, role=peer.role, user=peer.user)

    async def _dispatch(self, client: _Client, request: protocol.Request) -> protocol.Response:
        peer = client.peer
        op = request.op
        if op in ("override", "keepalive", "release", "ack_alarm", "model_fit") and peer.role != "technician":
            what = {"ack_alarm": "acknowledging alarms needs", "model_fit": "fitting the model needs"}.get(
                op, "overrides need"
            )
            log.info("local request refused: read-only", op=op, user=peer.user, uid=peer.uid, pid=peer.pid)
            return self._refuse(request, peer, peer.refusal(what))
        reply = functools.partial(protocol.Response, id=request.id, ok=True, role=peer.role, user=peer.user)
        if op == "subscribe":
            return reply()
        if op == "layout":
            # The layout holds no secret: brokers are named by password_file / key paths, never by the secret
            # itself (controller/links/config.py), so the whole model can be shown to any local user.
            return reply(layout=self.layout.model_dump(mode="json"))
        if op == "history":
            return self._history(request, peer)
        if op == "energy":
            count = request.days or ENERGY_DEFAULT_DAYS
            days = recent_days(self.store, self.layout, self.clock.now(), count, live=True)
            return reply(energy=[day.row() for day in days], energy_totals=totals_rows(days))
        if op == "energy_day":
            return self._energy_day(request, peer)
        if op == "model":
            return reply(model=model_reply(self.store, self.layout))
        if op == "model_fit":
            if self.refit is None:
                return self._refuse(request, peer, "this controller does not fit its model")
            return reply(model=await self.refit())
        if op == "ack_alarm":
            if not request.alarm:
                return self._refuse(request, peer, "ack_alarm needs `alarm`: the id of a current alarm")
            self.alarms.acknowledge(request.alarm, peer.user, self.clock.now(), peer.origin)
            return reply()
        shown, actuator = await carry_out(
            request, peer.user, peer.origin, book=self.overrides, settle=self.settle, state=self.state
        )
        return reply(override=shown, actuator=actuator)

    def _energy_day(self, request: protocol.Request, peer: Peer) -> protocol.Response:
        try:
            day = date.fromisoformat(request.day or "")
        except ValueError:
            return self._refuse(request, peer, f"energy_day needs `day` as a real date YYYY-MM-DD, not {request.day!r}")
        curves = day_curves(self.store, self.layout, day, now=self.clock.now())
        return protocol.Response(id=request.id, ok=True, role=peer.role, user=peer.user, energy_day=curves)

    def _history(self, request: protocol.Request, peer: Peer) -> protocol.Response:
        channel = request.channel
        if channel is None or channel not in self.layout.channels:
            known = ", ".join(self.layout.channels)
            asked = "history needs `channel`" if channel is None else f"unknown channel {channel!r}"
            return self._refuse(request, peer, f"{asked}: one of {known}")
        hours = request.hours or HISTORY_DEFAULT_H
        now = self.clock.now()
        rows = self.store.history(channel, now - hours * 3600.0, now)
        step = max(1, math.ceil(len(rows) / HISTORY_MAX_POINTS))
        points = [protocol.HistoryPoint(ts=r.ts, value=r.value, quality=r.quality.value) for r in rows[::step]]
        return protocol.Response(id=request.id, ok=True, role=peer.role, user=peer.user, history=points)


async def _answers(path: Path) -> bool:
    """Whether some process accepts connections on the socket at `path` (a live one, not a stale file)."""
    try:
        # asyncio.timeout, not wait_for: on 3.11, wait_for can swallow a cancellation that arrives as the connect
        # completes, and a stop requested during start-up then waited for ever on this task.
        async with asyncio.timeout(1.0):
            _, writer = await asyncio.open_unix_connection(str(path))
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True
