"""structlog set-up: JSON lines when not on a terminal (the journal), pretty key=value on a terminal.

When stderr is connected to the journal (systemd sets `$JOURNAL_STREAM` to that stream's device and inode),
every line starts with its syslog priority, `<4>` for a warning: journald reads the prefix (the unit's
`SyslogLevelPrefix=yes`) and stores the line at that priority, so `journalctl -u hearth -p warning` filters.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any, TextIO

import structlog

# Python's level names -> syslog priorities (RFC 5424), the numbers journald stores as PRIORITY=.
JOURNAL_PRIORITIES = {"critical": 2, "error": 3, "exception": 3, "warning": 4, "info": 6, "debug": 7}


def journal_priority(level: str) -> int:
    """The syslog priority for a level name; an unknown level is logged as a notice (5)."""
    return JOURNAL_PRIORITIES.get(level.lower(), 5)


def writes_to_journal(stream: TextIO) -> bool:
    """True when `stream` is the journal stream systemd connected us to (`$JOURNAL_STREAM` is "device:inode")."""
    expected = os.environ.get("JOURNAL_STREAM", "")
    try:
        status = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):  # a stream without a file descriptor (StringIO)
        return False
    return expected == f"{status.st_dev}:{status.st_ino}"


class JournalPrefix:
    """Wraps a renderer: the rendered line starts with `<priority>` from the event's level."""

    def __init__(self, renderer: structlog.typing.Processor) -> None:
        self._renderer = renderer

    def __call__(self, logger: Any, method_name: str, event_dict: structlog.typing.EventDict) -> str:
        priority = journal_priority(str(event_dict.get("level", method_name)))
        rendered = self._renderer(logger, method_name, event_dict)
        text = rendered.decode() if isinstance(rendered, bytes) else str(rendered)
        return f"<{priority}>{text}"


class JournalFormatter(logging.Formatter):
    """The stdlib's side of the same prefix, for libraries that log through `logging`."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{journal_priority(record.levelname)}>{super().format(record)}"


def configure(level: str = "info", *, json: bool | None = None, stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger once, for the whole process."""
    stream = stream or sys.stderr
    as_json = (not stream.isatty()) if json is None else json
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level '{level}'; use debug, info, warning or error")
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer() if as_json else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    journal = writes_to_journal(stream)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            JournalPrefix(renderer) if journal else renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )
    handler = logging.StreamHandler(stream)
    text = "%(levelname)s %(name)s: %(message)s"
    handler.setFormatter(JournalFormatter(text) if journal else logging.Formatter(text))
    logging.basicConfig(level=numeric, handlers=[handler])
