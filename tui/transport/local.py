"""The controller's local socket: JSON lines over a unix socket; the peer's credentials decide the role.

One `Request` per line goes out; a line with `push` is a pushed State or event, a line with `id` and `ok` is the
`Response` to a pending request. After connecting we `subscribe`; the controller answers with our role and user
(technicians may override, everyone else only watches) and then pushes State and events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import ValidationError

from controller.protocol import Limits, Push, Rejected, Request, Response, decode_json
from tui.transport import (
    Backoff,
    ConnectionStatus,
    EventCallback,
    StateCallback,
    StatusCallback,
    TransportError,
    countdown,
    new_request_id,
)

log = logging.getLogger(__name__)

LINE_LIMIT = 64 * 1024 * 1024
"""A history answer for a month of 1 Hz samples is tens of MB on one line."""


class LocalSocketTransport:
    """A client of `hearth run`'s unix socket (default /run/hearth/hearth.sock)."""

    def __init__(
        self,
        path: str,
        *,
        backoff: Backoff | None = None,
        subscribe_timeout_s: float = 5.0,
        line_limit: int = LINE_LIMIT,
    ) -> None:
        self.path = path
        self.description = f"local socket {path}"
        self.read_only = True  # until the controller tells us our role
        self.skipped = 0
        """lines that could not be used (malformed, unknown, or a response nobody waits for)"""
        self._backoff = backoff or Backoff()
        self._subscribe_timeout_s = subscribe_timeout_s
        self._line_limit = line_limit
        self._writer: asyncio.StreamWriter | None = None
        self._pending: dict[str, asyncio.Future[Response]] = {}

    async def run(self, on_state: StateCallback, on_event: EventCallback, on_status: StatusCallback) -> None:
        attempt = 0
        while True:
            on_status(ConnectionStatus("connecting", read_only=self.read_only))
            try:
                reader, writer = await asyncio.open_unix_connection(self.path, limit=self._line_limit)
            except OSError as error:
                reason = _connect_error(self.path, error)
            else:
                reason, subscribed = await self._session(reader, writer, on_state, on_event, on_status)
                if subscribed:
                    attempt = 0
            async for left in countdown(self._backoff.delay(attempt)):
                on_status(ConnectionStatus("reconnecting", detail=reason, retry_in_s=left, read_only=self.read_only))
            attempt += 1

    async def request(self, request: Request, timeout_s: float = 5.0) -> Response:
        writer = self._writer
        if writer is None or writer.is_closing():
            raise TransportError("not connected to the controller")
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request.id] = future
        try:
            writer.write(request.to_json() + b"\n")
            await writer.drain()
            async with asyncio.timeout(timeout_s):  # not wait_for: on 3.11 it can swallow a cancellation
                return await future
        except TimeoutError:
            raise TransportError(f"timed out: no answer from the controller within {timeout_s:g} s") from None
        except (ConnectionError, OSError) as error:
            raise TransportError(f"connection lost: {error}") from None
        finally:
            self._pending.pop(request.id, None)

    async def _session(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        on_state: StateCallback,
        on_event: EventCallback,
        on_status: StatusCallback,
    ) -> tuple[str, bool]:
        """One connection, until it ends: (why it ended, whether the subscription was accepted)."""
        self._writer = writer
        reading = asyncio.create_task(self._read_lines(reader, on_state, on_event), name="hearth-tui-socket-reader")
        subscribed = False
        try:
            try:
                answer = await self.request(Request(id=new_request_id(), op="subscribe"), self._subscribe_timeout_s)
            except TransportError as error:
                return str(error), False
            if not answer.ok:
                return f"subscription refused: {answer.error or 'no reason given'}", False
            subscribed = True
            self.read_only = answer.role != "technician"
            on_status(ConnectionStatus("connected", user=answer.user, role=answer.role, read_only=self.read_only))
            return await reading, True
        finally:
            self._writer = None
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            self._fail_pending()
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            if not subscribed:
                self.read_only = True

    async def _read_lines(self, reader: asyncio.StreamReader, on_state: StateCallback, on_event: EventCallback) -> str:
        """Dispatch lines until the connection ends; returns why it ended."""
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # longer than the limit: the rest of that line was dropped
                    self._skip("a line longer than %d bytes", self._line_limit)
                    continue
                except OSError as error:
                    return f"connection lost: {error}"
                if not line:
                    return "the controller closed the connection"
                if line.strip():
                    self._dispatch(line, on_state, on_event)
        finally:
            self._fail_pending()

    def _fail_pending(self) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(TransportError("connection lost before the controller answered"))

    def _dispatch(self, line: bytes, on_state: StateCallback, on_event: EventCallback) -> None:
        try:
            data = decode_json(line, Limits(max_bytes=self._line_limit, max_depth=32))
        except Rejected as error:
            self._skip("a line that cannot be used (%s)", error.reason)
            return
        if not isinstance(data, dict):
            self._skip("a JSON %s instead of an object", type(data).__name__)
            return
        try:
            if "push" in data:
                push = Push.model_validate_json(line)
                if push.state is not None:
                    on_state(push.state)
                elif push.event is not None:
                    on_event(push.event)
            elif "id" in data and "ok" in data:
                response = Response.model_validate_json(line)
                future = self._pending.get(response.id)
                if future is None or future.done():
                    self._skip("a response to no pending request (%s)", response.id)
                else:
                    future.set_result(response)
            else:
                self._skip("a message that is neither a push nor a response (keys %s)", sorted(data)[:8])
        except ValidationError as error:
            self._skip("a malformed message: %s", error.errors()[0]["msg"] if error.errors() else error)

    def _skip(self, what: str, *args: object) -> None:
        self.skipped += 1
        log.warning("skipped " + what, *args)


def _connect_error(path: str, error: OSError) -> str:
    if isinstance(error, FileNotFoundError):
        return f"no controller socket at {path} (is `hearth run` running?)"
    if isinstance(error, PermissionError):
        return f"permission denied on {path} (are you in the hearth group?)"
    if isinstance(error, ConnectionRefusedError):
        return f"connection refused at {path} (the controller is not listening)"
    return f"cannot connect to {path}: {error.strerror or error}"
