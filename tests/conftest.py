"""Shared fixtures. Importing `controller` first switches off Blinka's pip check before any Adafruit import."""

from __future__ import annotations

from pathlib import Path

import pytest

import controller  # noqa: F401  (sets BLINKA_SKIP_DEPENDENCY_CHECK)

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def repo_root() -> Path:
    return ROOT
