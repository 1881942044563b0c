"""Hearth: a transactive heat-pump and thermal-storage controller."""

import os

# Blinka 10 may try to pip-install platform packages when `board` is imported (and prompt on a terminal).
# Hearth installs what it needs explicitly, so the check is switched off before any Adafruit import.
os.environ.setdefault("BLINKA_SKIP_DEPENDENCY_CHECK", "1")

__version__ = "0.1.0"
