"""Shared fixtures. Importing `controller` first switches off Blinka's pip check before any Adafruit import."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

import controller  # noqa: F401  (sets BLINKA_SKIP_DEPENDENCY_CHECK)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    return ROOT


@pytest.fixture(autouse=True)
def _fresh_structlog() -> Iterator[None]:
    """A test that configures logging (as `hearth run` does) must not filter what later tests capture."""
    yield
    structlog.reset_defaults()
