"""The TUI's figures, in a real terminal (a private tmux server, 120x40), each printed next to its target:

1. launch to first paint with live data: `hearth tui --socket PATH` against a small fake controller in this
   process (the local API: `subscribe`, then a State with N channels at once and at 1 Hz), from spawning tmux's
   command to the moment `capture-pane` (polled every 10 ms) shows a value from that State; then the same against
   `hearth run --layout layouts/demo.toml --speed 10`. Target <= 0.75 s.
2. the TUI's CPU (utime + stime of its process) with 200 channels, every value changing, pushed at 1 Hz, on the
   Overview and on the Channels screen; then at 10 Hz, where bursts should merge (CPU must not scale 10x).
   Target <= 25 % of one core.
3. override keypress to relay change: the real controller in this process (layouts/demo.toml with the aux
   element's minimum on/off times at 0) with a listener on the emulated GPIO line of the aux element; the override
   form is driven by keys (o, the target Select to aux-element, Tab to the Override button) and the final Enter is
   timed to the line switching ON; then `x` on the overview (release: the local policy switches it OFF) is timed
   the same way. Each is split where the request reaches the controller. The timed key goes once the TUI has been
   idle for 150 ms (`--trials`), then 0.2 s after the previous key, as a quick hand types (`--typed-trials`).
   Target p99 <= 100 ms.
4. RSS while 200-channel States arrive at 20 Hz for 3 minutes (3,600 updates, an hour's worth at 1 Hz) on the
   Channels screen, sampled every 10 s: start, end and slope; `--rss-1hz-seconds` adds a plain 1 Hz run. Then with
   no controller at all (the header's reconnect countdown changes every second) for `--away-seconds`.

    .venv/bin/python bench/tui.py [--quick] [--runs 7] [--seconds 20] [--trials 30] [--only 3]

Screen times are when the `capture-pane` that first showed the value returned (at most ~15 ms late); key times
are taken just before `tmux send-keys` runs. The default run takes about 6 minutes, `--quick` a little over 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

# This file is bench/tui.py: with bench/ first on sys.path, `import tui` would find it instead of the TUI package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import contextlib
import json
import os
import re
import shlex
import signal
import statistics
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import controller  # noqa: F401  (Blinka check off)
from controller import logs
from controller.clock import SimClock
from controller.layout.load import load_layout
from controller.links.local import LocalApiServer
from controller.protocol import Push, ReadingState, Request, Response, State
from controller.runtime import Controller, RunOptions
from controller.sim.world import SimBuses
from tui.app import MIN_REPAINT_S
from tui.demo import CHANNELS, sample_state
from tui.model import TREND_POINTS

ROOT = Path(__file__).resolve().parent.parent
HEARTH = str(Path(sys.executable).parent / "hearth")
DEMO_LAYOUT = ROOT / "layouts/demo.toml"
WIDTH, HEIGHT = 120, 40
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
MARKER_C = 63.7
"""tank-top in every State the fake controller pushes: `63.7 °C` on the overview means live data is drawn"""
MARKER = f"{MARKER_C:.1f} °C"
LIVE_TANK_TOP = re.compile(r"top\s+-?\d+\.\d °C")
"""the overview's tank-top value, whatever it is (the real controller's data)"""
OVERRIDE_TITLE = "Override — force for a limited time"
AUX_PIN = 23
AUX = "aux-element"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


# ---- a private terminal ------------------------------------------------------------------------------------


class Tmux:
    """A tmux server of our own (-L NAME), with an idle session keeping it up; one session per TUI."""

    def __init__(self, name: str, width: int = WIDTH, height: int = HEIGHT) -> None:
        self.name = name
        self.width, self.height = width, height
        # Without COLUMNS/LINES: Rich and Textual would take them over the terminal's real size.
        self.env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
        try:
            size = ("-x", str(width), "-y", str(height))
            self.run("-f", "/dev/null", "new-session", "-d", "-s", "idle", *size, "sleep 1d")
            self.run("set-option", "-g", "default-size", f"{width}x{height}")  # sessions come up at this size
            self.run("set-option", "-g", "status", "off")  # the whole pane for the TUI
        except BaseException:
            self.kill_server()
            raise

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-L", self.name, *args], capture_output=True, text=True, env=self.env)
        if check and done.returncode != 0:
            raise RuntimeError(f"tmux {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def spawn(self, session: str, command: list[str]) -> None:
        shell = "exec " + shlex.join(command)  # the pane's process is the TUI itself
        self.run("new-session", "-d", "-s", session, "-x", str(self.width), "-y", str(self.height), shell)

    def size(self, session: str) -> str:
        return self.run("display-message", "-p", "-t", session, "#{pane_width}x#{pane_height}").strip()

    def screen(self, session: str) -> str:
        return self.run("capture-pane", "-p", "-t", session)

    def keys(self, session: str, *keys: str, pause_s: float = 0.0) -> None:
        for key in keys:
            self.run("send-keys", "-t", session, key)
            if pause_s:
                time.sleep(pause_s)

    def wait_for(
        self, session: str, condition: Callable[[str], bool], timeout_s: float, what: str, every_s: float = 0.05
    ) -> float:
        """Poll the screen until `condition`; the time (perf_counter) the capture that satisfied it returned."""
        deadline = time.perf_counter() + timeout_s
        screen = ""
        while True:
            started = time.perf_counter()
            screen = self.screen(session)
            now = time.perf_counter()
            if condition(screen):
                return now
            if now > deadline:
                raise TimeoutError(f"timed out waiting for {what}; the screen shows:\n{screen}")
            time.sleep(max(0.0, every_s - (now - started)))

    def pane_pid(self, session: str) -> int:
        return int(self.run("list-panes", "-t", session, "-F", "#{pane_pid}").split()[0])

    def kill_session(self, session: str) -> None:
        self.run("kill-session", "-t", session, check=False)

    def kill_server(self) -> None:
        self.run("kill-server", check=False)


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(p) for p in (task / "children").read_text().split()]
    return found


def tui_pid(tmux: Tmux, session: str) -> int:
    """The python process running `hearth tui` in the pane: the pane's own process (exec), or its child."""
    pane = tmux.pane_pid(session)
    for pid in (pane, *children(pane)):
        if " tui " in cmdline(pid) + " ":
            return pid
    raise RuntimeError(f"no `hearth tui` process under pane pid {pane}: {cmdline(pane)!r}")


def cpu_s(pid: int) -> float:
    """utime + stime of `pid` (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # fields 14 and 15; the list starts at field 3


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_gone(pid: int, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            return
        time.sleep(0.02)


@contextlib.contextmanager
def tui_session(tmux: Tmux, session: str, socket_path: Path) -> Iterator[None]:
    tmux.spawn(session, [HEARTH, "tui", "--socket", str(socket_path)])
    pid: int | None = None
    with contextlib.suppress(RuntimeError):
        pid = tui_pid(tmux, session)
    try:
        yield
    finally:
        tmux.kill_session(session)
        if pid is not None:
            wait_gone(pid)


# ---- a fake controller: the local API's subscribe and pushes ---------------------------------------------


def bench_state(seq: int, channels: int, ts: float) -> State:
    """The demo house's State with `channels` readings, every one of them (but tank-top) changed since `seq - 1`
    at the precision the screens show (0.37 a step, modulo 1)."""
    readings: dict[str, ReadingState] = {}
    names = [*CHANNELS, *(f"probe-{n:03d}" for n in range(max(0, channels - len(CHANNELS))))]
    for number, name in enumerate(names):
        if name == "tank-top":
            value = MARKER_C
        else:
            base = CHANNELS.get(name, 20.0 + number % 17)
            value = round(base + (seq * 0.37 + number * 0.013) % 1.0, 3)
        readings[name] = ReadingState(value=value, unit="degC", quality="ok", ts=ts - 0.4)
    base_state = sample_state(ts)
    return State(
        site=base_state.site,
        ts=ts,
        mode=base_state.mode,
        reason=base_state.reason,
        readings=readings,
        actuators=base_state.actuators,
        link=base_state.link,
    )


class FakeController:
    """Serves the local API on a unix socket from a thread of its own: `subscribe` is answered as a technician's,
    then a State is pushed at once and every 1/`rate_hz` s (which may be changed while it runs)."""

    def __init__(self, path: Path, channels: int, rate_hz: float = 1.0) -> None:
        self.path = path
        self.channels = channels
        self.rate_hz = rate_hz
        self.pushed = 0
        self.build_s = 0.0
        self._seq = 0
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self._main, name="fake-controller", daemon=True)

    def __enter__(self) -> FakeController:
        self._thread.start()
        if not self._ready.wait(10) or self._failed is not None:
            raise RuntimeError(f"the fake controller did not start: {self._failed}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed
                self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def _main(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:  # reported to the main thread through __enter__
            self._failed = error
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_unix_server(self._client, path=str(self.path), limit=1024 * 1024)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await asyncio.sleep(0.05)  # let the connection handlers finish

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        pusher: asyncio.Task[None] | None = None
        try:
            while line := await reader.readline():
                request = Request.model_validate_json(line)
                if request.op == "subscribe":
                    answer = Response(id=request.id, ok=True, role="technician", user="bench")
                else:
                    answer = Response(id=request.id, ok=False, error=f"the bench's fake controller has no {request.op}")
                writer.write(answer.to_json() + b"\n")
                await writer.drain()
                if request.op == "subscribe" and pusher is None:
                    pusher = asyncio.create_task(self._push(writer))
        except (ConnectionError, ValueError):
            pass
        finally:
            self._writers.discard(writer)
            if pusher is not None:
                pusher.cancel()
            writer.close()

    async def _push(self, writer: asyncio.StreamWriter) -> None:
        due = time.monotonic()
        with contextlib.suppress(ConnectionError):
            while True:
                started = time.perf_counter()
                self._seq += 1
                line = Push(push="state", state=bench_state(self._seq, self.channels, time.time())).to_json()
                self.build_s += time.perf_counter() - started
                writer.write(line + b"\n")
                await writer.drain()
                self.pushed += 1
                due += 1.0 / self.rate_hz
                if due < time.monotonic() - 1.0:  # fell behind: no catch-up burst
                    due = time.monotonic()
                await asyncio.sleep(max(0.0, due - time.monotonic()))


# ---- the real controller ---------------------------------------------------------------------------------


class ControllerProcess:
    """`hearth run` on the demo layout, sped up; ready once its socket answers with a State."""

    def __init__(self, layout: Path, state_dir: Path, speed: float) -> None:
        self.socket = state_dir / "s.sock"
        self.log = state_dir / "hearth.log"
        command = [HEARTH, "run", "--layout", str(layout), "--state-dir", str(state_dir), "--socket", str(self.socket)]
        command += ["--speed", f"{speed:g}", "--log-format", "json", "--log-level", "warning"]
        with self.log.open("w") as log:
            self.process = subprocess.Popen(command, stderr=log, stdout=subprocess.DEVNULL, cwd=ROOT)

    def wait_ready(self, timeout_s: float = 20.0) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"hearth run exited ({self.process.returncode}): {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError, TimeoutError):
                if subscribed_state(self.socket) is not None:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"hearth run did not answer in {timeout_s:g} s: {self.log.read_text()[-2000:]}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def subscribed_state(path: Path, timeout_s: float = 2.0) -> State | None:
    """The first State a subscriber of the socket at `path` gets (None if the answer is a refusal)."""
    import socket

    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(timeout_s)
        client.connect(str(path))
        client.sendall(Request(id="bench", op="subscribe").to_json() + b"\n")
        buffer = b""
        while True:
            chunk = client.recv(1 << 16)
            if not chunk:
                return None
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if b'"push"' in line:
                    push = Push.model_validate_json(line)
                    if push.state is not None:
                        return push.state
                elif b'"ok":false' in line:
                    return None


class InProcessController:
    """`controller.runtime.Controller` on simulated buses, in a thread with its own event loop, so a listener can
    sit on an emulated GPIO line."""

    def __init__(self, layout: Path, state_dir: Path, socket_path: Path) -> None:
        self.layout_path = layout
        self.state_dir = state_dir
        self.socket = socket_path
        self.buses: SimBuses | None = None
        self.runner: Controller | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._main, name="controller", daemon=True)
        self.arrivals: list[tuple[float, str]] = []
        """(perf_counter, op) of every request line as the local API starts answering it"""

    def __enter__(self) -> InProcessController:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not (self._ready.is_set() and self.runner is not None and self.runner.loop and self.runner.loop.ticks):
            if self._failed is not None or not self._thread.is_alive():
                raise RuntimeError(f"the controller did not start: {self._failed!r}")
            if time.monotonic() > deadline:
                raise RuntimeError("the controller made no control decision in 20 s")
            time.sleep(0.05)
        assert self.runner.local_api is not None
        self._time_requests(self.runner.local_api)
        return self

    def _time_requests(self, server: LocalApiServer) -> None:
        """Note when each request reaches the controller (splits a latency into the TUI's part and its own)."""
        answer = server._answer

        async def timed(client: Any, line: bytes) -> None:
            with contextlib.suppress(ValueError, AttributeError):
                self.arrivals.append((time.perf_counter(), str(json.loads(line).get("op"))))
            await answer(client, line)

        setattr(server, "_answer", timed)  # noqa: B010  (an instance attribute over the method, for this bench)

    def arrival(self, op: str, since: float) -> float:
        return next((at for at, seen in list(self.arrivals) if seen == op and at >= since), float("nan"))

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self.runner is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self.runner.stop_requested.set)
        self._thread.join(20)

    def _main(self) -> None:
        try:
            asyncio.run(self._run())
        except BaseException as error:
            self._failed = error

    async def _run(self) -> None:
        layout = load_layout(self.layout_path)
        clock = SimClock(speed=1.0)
        self.buses = SimBuses(layout, clock, layout.sim)
        options = RunOptions(state_dir=self.state_dir, report_every_s=3600, socket_path=self.socket)
        self.runner = Controller(layout, self.buses, clock, options, {"plant": self.buses.run})
        self._loop = asyncio.get_running_loop()
        self._ready.set()
        await self.runner.run()


def quick_aux_layout(directory: Path) -> Path:
    """layouts/demo.toml with the aux element free to switch at once (no minimum on/off time)."""
    text = DEMO_LAYOUT.read_text()
    head, section, rest = text.partition(f"[actuators.{AUX}]")
    body, bracket, tail = rest.partition("\n[")
    for key in ("min_on_s", "min_off_s"):
        body, found = re.subn(rf"(?m)^{key} = .*$", f"{key} = 0", body)
        if found != 1:
            raise RuntimeError(f"{DEMO_LAYOUT}: no single {key} in [actuators.{AUX}] to set to 0")
    path = directory / "demo-quick-aux.toml"
    path.write_text(head + section + body + bracket + tail)
    return path


# ---- 1. launch to first paint ------------------------------------------------------------------------------


def first_paints(tmux: Tmux, socket_path: Path, runs: int, live: Callable[[str], bool], tag: str) -> list[float]:
    times: list[float] = []
    for run in range(runs):
        session = f"{tag}{run}"
        started = time.perf_counter()
        with tui_session(tmux, session, socket_path):
            painted = tmux.wait_for(session, live, 15, "live data", every_s=0.01)
            times.append(painted - started)
            if run == 0:
                size = tmux.size(session)
                if size != f"{WIDTH}x{HEIGHT}":
                    print(f"  (note: the pane is {size}, not {WIDTH}x{HEIGHT})")
    return times


def paint_line(what: str, times: list[float]) -> str:
    ms = [t * 1000 for t in times]
    good = max(times) <= 0.75
    return (
        f"  {what}: median {statistics.median(ms):.0f} ms, max {max(ms):.0f} ms over {len(ms)} runs "
        f"({', '.join(f'{m:.0f}' for m in ms)}) (target <= 750 ms: {verdict(good)})"
    )


def figure_first_paint(tmux: Tmux, work: Path, runs: int, controller_runs: int) -> None:
    print("1. launch to first paint with live data (120x40, from spawning the command)")
    socket_path = work / "fake.sock"
    for channels in (9, 200):
        with FakeController(socket_path, channels):
            times = first_paints(tmux, socket_path, runs, lambda s: MARKER in s, f"paint{channels}-")
        print(paint_line(f"fake controller, {channels} channels", times))
    if controller_runs <= 0:
        return
    state = work / "run"
    state.mkdir()
    running = ControllerProcess(DEMO_LAYOUT, state, speed=10)
    try:
        running.wait_ready()
        times = first_paints(tmux, running.socket, controller_runs, lambda s: bool(LIVE_TANK_TOP.search(s)), "real-")
    finally:
        running.stop()
    print(paint_line("hearth run --speed 10 (layouts/demo.toml)", times))


# ---- 2. CPU --------------------------------------------------------------------------------------------------


@dataclass
class CpuCase:
    screen: str
    key: str
    rate_hz: float
    seconds: float


def measure_cpu(tmux: Tmux, session: str, pid: int, fake: FakeController, seconds: float) -> tuple[float, int]:
    """% of one core over `seconds`, and how many States were pushed meanwhile."""
    cpu0, wall0, pushed0 = cpu_s(pid), time.perf_counter(), fake.pushed
    time.sleep(seconds)
    cpu1, wall1, pushed1 = cpu_s(pid), time.perf_counter(), fake.pushed
    return 100 * (cpu1 - cpu0) / (wall1 - wall0), pushed1 - pushed0


def figure_cpu(tmux: Tmux, work: Path, seconds: float, warm_s: float) -> None:
    print("2. TUI CPU, 200 channels, every value changing (% of one core)")
    socket_path = work / "cpu.sock"
    cases = [
        CpuCase("Overview", "1", 1.0, seconds),
        CpuCase("Channels", "2", 1.0, seconds),
        CpuCase("Channels", "2", 10.0, seconds / 2),
        CpuCase("Overview", "1", 10.0, seconds / 2),
    ]
    shown = {"Overview": lambda s: "House & tank" in s, "Channels": lambda s: "probe-000" in s}
    at_1hz: dict[str, float] = {}
    with FakeController(socket_path, 200) as fake, tui_session(tmux, "cpu", socket_path):
        tmux.wait_for("cpu", lambda s: MARKER in s, 15, "live data")
        pid = tui_pid(tmux, "cpu")
        for case in cases:
            fake.rate_hz = case.rate_hz
            tmux.keys("cpu", case.key)
            tmux.wait_for("cpu", shown[case.screen], 10, f"the {case.screen} screen")
            time.sleep(warm_s)  # the screen's first build and the new rate settle
            percent, pushed = measure_cpu(tmux, "cpu", pid, fake, case.seconds)
            line = (
                f"  {case.screen:<8} at {case.rate_hz:>2g} Hz: {percent:5.1f} % over {case.seconds:.0f} s "
                f"({pushed} States pushed)"
            )
            if case.rate_hz == 1.0:
                at_1hz[case.screen] = percent
                line += f" (target <= 25 %: {verdict(percent <= 25)})"
            else:
                base = at_1hz.get(case.screen)
                ratio = f"{percent / base:.1f}x" if base else "n/a"
                line += f" = {ratio} the 1 Hz figure for {case.rate_hz:g}x the States (merged: should be far below)"
            print(line)
        print(f"  (the bench's own cost of building a State: {1000 * fake.build_s / max(1, fake.pushed):.2f} ms)")


# ---- 3. override keypress to relay --------------------------------------------------------------------------


class LineWatch:
    """Every change of one emulated GPIO line, with its perf_counter time (called from the GPIO worker)."""

    def __init__(self) -> None:
        self.changes: list[tuple[float, bool]] = []
        self._changed = threading.Condition()

    def __call__(self, level: bool) -> None:
        at = time.perf_counter()
        with self._changed:
            self.changes.append((at, level))
            self._changed.notify_all()

    def first_after(self, since: float, timeout_s: float) -> tuple[float, bool]:
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while True:
                for at, level in self.changes:
                    if at >= since:
                        return at, level
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"the relay line did not change within {timeout_s:g} s")
                self._changed.wait(left)


def choose_aux(tmux: Tmux, session: str) -> None:
    """The target Select has the focus and shows heat-pump: open it, go down to the aux element, choose it.
    Each step is checked on the screen; a key that arrived before the form was ready is simply tried again."""
    for _attempt in range(4):
        tmux.keys(session, "Enter")
        try:
            tmux.wait_for(session, lambda s: "setpoint:comfort" in s, 1.0, "the target list")
        except TimeoutError:
            continue
        tmux.keys(session, "Down", "Down", "Down", pause_s=0.05)
        tmux.keys(session, "Enter")
        with contextlib.suppress(TimeoutError):
            tmux.wait_for(session, lambda s: f"Will force {AUX} ON" in s, 1.5, f"{AUX} chosen in the form")
            return
    raise TimeoutError(f"could not choose {AUX} in the override form:\n{tmux.screen(session)}")


@dataclass
class Trip:
    """One keypress to relay change, split where the request reached the controller."""

    total_s: float
    to_controller_s: float

    @property
    def in_controller_s(self) -> float:
        return self.total_s - self.to_controller_s


def settle(pid: int, quiet_s: float = 0.15, timeout_s: float = 3.0) -> None:
    """Wait until the TUI has used no CPU for `quiet_s` (what the last keys and pushes started is drawn)."""
    deadline = time.monotonic() + timeout_s
    last, since = cpu_s(pid), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.01)
        used = cpu_s(pid)
        if used != last:
            last, since = used, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return


def override_trial(
    tmux: Tmux, session: str, watch: LineWatch, running: InProcessController, pid: int, typed: bool
) -> tuple[Trip, Trip]:
    """One override of the aux element to ON through the form, then its release with `x`; both trips. The timed
    key goes on a settled screen, or (`typed`) 0.2 s after the previous key, as a quick hand would."""

    def before_timed_key() -> None:
        if typed:
            time.sleep(0.2)
        else:
            settle(pid)

    tmux.keys(session, "o")
    tmux.wait_for(session, lambda s: OVERRIDE_TITLE in s, 5, "the override form")
    choose_aux(tmux, session)
    # Tab order: target, value radios, duration radios, minutes, reason, the Override button.
    tmux.keys(session, "Tab", "Tab", "Tab", "Tab", "Tab", pause_s=0.05)
    before_timed_key()
    pressed = time.perf_counter()
    tmux.keys(session, "Enter")
    switched, level_on = watch.first_after(pressed, 5)
    on_trip = Trip(switched - pressed, running.arrival("override", pressed) - pressed)
    tmux.wait_for(session, lambda s: "Accepted" in s, 5, "the controller's answer")
    tmux.keys(session, "Escape")
    tmux.wait_for(session, lambda s: "Overrides (1)" in s and AUX in s, 5, "the override on the overview")
    before_timed_key()
    pressed = time.perf_counter()
    tmux.keys(session, "x")
    switched, level_off = watch.first_after(pressed, 5)
    if level_off == level_on:
        raise RuntimeError("the aux relay line changed the same way twice")
    off_trip = Trip(switched - pressed, running.arrival("release", pressed) - pressed)
    tmux.wait_for(session, lambda s: "Overrides (1)" not in s, 5, "the override gone from the overview")
    return on_trip, off_trip


def spread(values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"p50 {statistics.median(ms):.1f} ms, p99 {percentile(ms, 0.99):.1f} ms, max {max(ms):.1f} ms"


def latency_lines(what: str, trips: list[Trip]) -> str:
    p99 = percentile([t.total_s for t in trips], 0.99)
    slowest = sorted(enumerate(trips), key=lambda it: -it[1].total_s)[:5]
    return (
        f"    {what}: {spread([t.total_s for t in trips])} over {len(trips)} "
        f"(target p99 <= 100 ms: {verdict(p99 <= 0.1)})\n"
        f"      keypress -> request at the controller {spread([t.to_controller_s for t in trips])}; "
        f"request -> relay {spread([t.in_controller_s for t in trips])}\n"
        f"      slowest (trial: ms): {', '.join(f'#{i}: {1000 * t.total_s:.0f}' for i, t in slowest)}"
    )


def override_passes(
    tmux: Tmux,
    session: str,
    watch: LineWatch,
    running: InProcessController,
    pid: int,
    counts: tuple[int, int],
    lines: Callable[[str, list[Trip]], str],
) -> int:
    """`counts` = (trials on a settled screen, trials 0.2 s after the previous key): run them and print each pass's
    override and release latencies with `lines`; returns how many trials were done. Also bench/remote_override.py."""
    done = 0
    for typed, count in zip((False, True), counts, strict=True):
        if count <= 0:
            continue
        trips: list[tuple[Trip, Trip]] = []
        for number in range(count):
            try:
                trips.append(override_trial(tmux, session, watch, running, pid, typed))
            except (TimeoutError, RuntimeError) as error:  # report what was measured, then go on
                print(f"  trial {number} failed, the rest of this pass is skipped: {error}")
                break
        done += len(trips)
        if not trips:
            continue
        when = "0.2 s after the previous key" if typed else "on a settled screen"
        print(f"  the timed key {when}:")
        print(lines("Enter on the form's Override button -> relay ON ", [t[0] for t in trips]))
        print(lines("x (release) on the overview         -> relay OFF", [t[1] for t in trips]))
    return done


def figure_override(tmux: Tmux, work: Path, trials: int, typed_trials: int) -> None:
    print(f"3. override keypress to relay change (in-process controller, {AUX} on GPIO {AUX_PIN}, min on/off 0 s)")
    state = work / "override"
    state.mkdir()
    layout = quick_aux_layout(work)
    socket_path = work / "ctl.sock"
    watch = LineWatch()
    with InProcessController(layout, state, socket_path) as running:
        assert running.buses is not None
        running.buses.gpio.line(AUX_PIN).add_listener(watch)
        with tui_session(tmux, "override", socket_path):
            tmux.wait_for("override", lambda s: bool(LIVE_TANK_TOP.search(s)) and "technician" in s, 15, "live data")
            pid = tui_pid(tmux, "override")
            settle(pid)
            rss_before, started = rss_mb(pid), time.perf_counter()
            done = override_passes(tmux, "override", watch, running, pid, (trials, typed_trials), latency_lines)
            settle(pid)
            print(
                f"  (the TUI's RSS went from {rss_before:.1f} to {rss_mb(pid):.1f} MB over these "
                f"{done} overrides and releases, {time.perf_counter() - started:.0f} s)"
            )


# ---- 4. RSS --------------------------------------------------------------------------------------------------


def slope(points: list[tuple[float, float]], scale: float = 1.0) -> str:
    """The least-squares slope of y over x, times `scale`, signed; "n/a" with fewer than 3 points."""
    if len(points) < 3:
        return "n/a"
    mean_x = statistics.fmean(x for x, _ in points)
    mean_y = statistics.fmean(y for _, y in points)
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if spread == 0:
        return "n/a"
    return f"{scale * sum((x - mean_x) * (y - mean_y) for x, y in points) / spread:+.2f}"


def rss_run(tmux: Tmux, work: Path, rate_hz: float, seconds: float, every_s: float = 10.0) -> None:
    socket_path = work / f"rss{rate_hz:g}.sock"
    session = f"rss{rate_hz:g}"
    with FakeController(socket_path, 200, rate_hz) as fake, tui_session(tmux, session, socket_path):
        tmux.wait_for(session, lambda s: MARKER in s, 15, "live data")
        pid = tui_pid(tmux, session)
        tmux.keys(session, "2")
        tmux.wait_for(session, lambda s: "probe-000" in s, 10, "the Channels screen")
        time.sleep(2)
        first, cpu0, wall0 = fake.pushed, cpu_s(pid), time.perf_counter()
        points: list[tuple[float, float]] = [(0, rss_mb(pid))]
        end = wall0 + seconds
        while (now := time.perf_counter()) < end - 1e-3:
            time.sleep(min(every_s, end - now))
            points.append((fake.pushed - first, rss_mb(pid)))
        percent = 100 * (cpu_s(pid) - cpu0) / (time.perf_counter() - wall0)
    updates = points[-1][0]
    # Warm-up: each channel's trend fills up (TREND_POINTS drawn States, at most 1/MIN_REPAINT_S a second), the
    # table's caches fill up: twice that.
    drawn_share = min(1.0, 1.0 / (MIN_REPAINT_S * rate_hz))
    warm = [p for p in points if p[0] * drawn_share >= 2 * TREND_POINTS] or points[-1:]
    half = [p for p in points if p[0] >= updates / 2]
    print(
        f"  {rate_hz:g} Hz for {seconds:.0f} s ({updates:.0f} updates, Channels screen): "
        f"RSS start {points[0][1]:.1f} MB, {warm[0][1]:.1f} MB once warm (after {warm[0][0]:.0f} updates), "
        f"end {points[-1][1]:.1f} MB; slope since warm "
        f"{slope(warm, 1000)} MB per 1,000 updates (second half {slope(half, 1000)}, all {slope(points, 1000)}) "
        f"(target: flat); CPU meanwhile {percent:.1f} % of a core"
    )
    print("    samples (updates: MB): " + ", ".join(f"{n:.0f}: {mb:.1f}" for n, mb in points))


def rss_away(tmux: Tmux, work: Path, seconds: float, every_s: float = 5.0) -> None:
    """No controller at all: the header counts down to the next connection attempt every second."""
    socket_path = work / "nobody-here" / "s.sock"
    with tui_session(tmux, "away", socket_path):
        tmux.wait_for("away", lambda s: "retrying in" in s, 15, "the reconnect countdown")
        pid = tui_pid(tmux, "away")
        time.sleep(2)
        wall0, cpu0 = time.perf_counter(), cpu_s(pid)
        points: list[tuple[float, float]] = [(0.0, rss_mb(pid))]
        while (elapsed := time.perf_counter() - wall0) < seconds - 1e-3:
            time.sleep(min(every_s, seconds - elapsed))
            points.append((time.perf_counter() - wall0, rss_mb(pid)))
        percent = 100 * (cpu_s(pid) - cpu0) / (time.perf_counter() - wall0)
    print(
        f"  controller away for {seconds:.0f} s (reconnect countdown redrawn every second): RSS start "
        f"{points[0][1]:.1f} MB, end {points[-1][1]:.1f} MB, slope {slope(points, 3600)} MB per hour (target: flat); "
        f"CPU meanwhile {percent:.1f} % of a core"
    )


def figure_rss(tmux: Tmux, work: Path, seconds: float, seconds_1hz: float, seconds_away: float) -> None:
    print("4. TUI RSS while 200-channel States arrive, sampled every 10 s")
    if seconds > 0:
        rss_run(tmux, work, 20.0, seconds)
    if seconds_1hz > 0:
        rss_run(tmux, work, 1.0, seconds_1hz)
    if seconds_away > 0:
        rss_away(tmux, work, seconds_away)


# ---- main ----------------------------------------------------------------------------------------------------


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return "unknown CPU"


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter everything (about a minute)")
    parser.add_argument("--runs", type=int, help="first-paint runs per case (default 7; quick 2)")
    parser.add_argument("--seconds", type=float, help="CPU window per 1 Hz case; 10 Hz gets half (default 20)")
    parser.add_argument("--trials", type=int, help="override trials on a settled screen (default 30; quick 5)")
    parser.add_argument(
        "--typed-trials", type=int, help="override trials with the timed key 0.2 s after the previous one (default 6)"
    )
    parser.add_argument("--rss-seconds", type=float, help="the 20 Hz RSS run (default 180; quick 15; 0: none)")
    parser.add_argument("--rss-1hz-seconds", type=float, default=0.0, help="also a 1 Hz RSS run this long")
    parser.add_argument(
        "--away-seconds", type=float, help="RSS with no controller, reconnect countdown running (default 20; quick 10)"
    )
    parser.add_argument("--only", type=int, choices=(1, 2, 3, 4), action="append", help="run only these figures")
    args = parser.parse_args()

    def pick(given: float | None, quick: float, default: float) -> float:
        return given if given is not None else quick if args.quick else default

    runs = int(pick(args.runs, 2, 7))
    seconds = pick(args.seconds, 6.0, 20.0)
    trials = int(pick(args.trials, 5, 30))
    typed_trials = int(pick(args.typed_trials, 2, 6))
    rss_seconds = pick(args.rss_seconds, 15.0, 180.0)
    away_seconds = pick(args.away_seconds, 10.0, 20.0)
    figures = set(args.only or (1, 2, 3, 4))
    logs.configure("warning", json=True)
    signal.signal(signal.SIGTERM, _stop)
    started = time.monotonic()
    print(f"hearth tui in tmux {WIDTH}x{HEIGHT}; {cpu_model()}, {os.cpu_count()} cores")
    tmux: Tmux | None = None
    # A short directory: AF_UNIX paths end at 108 bytes.
    with tempfile.TemporaryDirectory(prefix="htui-") as directory:
        work = Path(directory)
        try:
            tmux = Tmux(f"bench-tui-{os.getpid()}")
            if 1 in figures:
                figure_first_paint(tmux, work, runs, runs)
            if 2 in figures:
                figure_cpu(tmux, work, seconds, 1.5 if args.quick else 2.0)
            if 3 in figures:
                figure_override(tmux, work, trials, typed_trials)
            if 4 in figures:
                figure_rss(tmux, work, rss_seconds, args.rss_1hz_seconds, away_seconds)
        finally:
            if tmux is not None:
                tmux.kill_server()
    print(f"({time.monotonic() - started:.0f} s in all)")


if __name__ == "__main__":
    main()
