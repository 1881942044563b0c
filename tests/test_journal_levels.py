"""Log levels reach the journal as priorities: `journalctl -u hearth -p warning` must filter."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import pytest
import structlog

from controller import logs

# syslog priorities (RFC 5424 / sd-daemon.h): 2 crit, 3 err, 4 warning, 5 notice, 6 info, 7 debug.
PRIORITIES = [("debug", 7), ("info", 6), ("warning", 4), ("error", 3), ("critical", 2), ("exception", 3)]


@pytest.mark.parametrize(("level", "priority"), PRIORITIES)
def test_level_maps_to_journal_priority(level: str, priority: int) -> None:
    assert logs.journal_priority(level) == priority
    assert logs.journal_priority(level.upper()) == priority


def journal_stream(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    status = os.stat(path)
    monkeypatch.setenv("JOURNAL_STREAM", f"{status.st_dev}:{status.st_ino}")


def test_lines_to_the_journal_start_with_their_priority(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "journal"
    path.touch()
    journal_stream(path, monkeypatch)
    with path.open("a", encoding="utf-8") as stream:
        logs.configure("debug", json=True, stream=stream)
        log = structlog.get_logger("test")
        log.debug("d")
        log.info("i")
        log.warning("w", detail="x")
        log.error("e")
        log.critical("c")
    lines = path.read_text().splitlines()
    assert [line[:3] for line in lines] == ["<7>", "<6>", "<4>", "<3>", "<2>"]
    # After the prefix the line is still the JSON event journald keeps as MESSAGE.
    assert json.loads(lines[2][3:])["event"] == "w"


def test_stdlib_records_get_the_prefix_too(tmp_path: Path) -> None:
    record = logging.LogRecord("aiomqtt", logging.WARNING, __file__, 1, "broker went away", None, None)
    assert logs.JournalFormatter("%(message)s").format(record) == "<4>broker went away"


def test_no_prefix_when_stderr_is_not_the_journal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    journal = tmp_path / "journal"
    journal.touch()
    journal_stream(journal, monkeypatch)  # the journal is some other file: a shell, a --log-file, a pipe
    path = tmp_path / "file.log"
    with path.open("a", encoding="utf-8") as stream:
        logs.configure("info", json=True, stream=stream)
        structlog.get_logger("test").warning("w")
    assert json.loads(path.read_text())["level"] == "warning"


def test_no_prefix_without_journal_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    path = tmp_path / "file.log"
    with path.open("a", encoding="utf-8") as stream:
        assert not logs.writes_to_journal(stream)
