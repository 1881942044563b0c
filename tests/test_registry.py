"""The kind registry stays easy to grow: imports run one way and the table and the unions agree."""

from __future__ import annotations

import ast
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from controller.drivers import registry

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = sorted((ROOT / "controller" / "drivers").glob("*.py"))
# What the layout's root model pulls in; device-kind modules must never import it (that was the cycle).
ABOVE_THE_DRIVERS = {"controller.layout.model", "controller.layout.load", "controller.layout.validate"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


@pytest.mark.parametrize("path", DRIVERS, ids=lambda p: p.name)
def test_driver_modules_never_import_the_layout_root(path: Path) -> None:
    assert not _imports(path) & ABOVE_THE_DRIVERS, f"{path.name} imports the layout root: an import cycle"


@pytest.mark.parametrize("path", DRIVERS, ids=lambda p: p.name)
def test_each_driver_module_imports_first_in_a_fresh_interpreter(path: Path) -> None:
    module = f"controller.drivers.{path.stem}"
    done = subprocess.run([sys.executable, "-c", f"import {module}"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def _union_members(alias: object) -> set[type]:
    union = typing.get_args(alias)[0]
    return set(typing.get_args(union)) or {union}


def test_device_union_and_table_agree() -> None:
    assert _union_members(registry.DeviceConfig) == {entry.config for entry in registry.DEVICE_KINDS.values()}


def test_actuator_union_and_table_agree() -> None:
    assert _union_members(registry.ActuatorConfig) == {entry.config for entry in registry.ACTUATOR_KINDS.values()}
