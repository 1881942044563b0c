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


CONTROL = sorted((ROOT / "controller" / "control").glob("*.py"))


@pytest.mark.parametrize("path", CONTROL, ids=lambda p: p.name)
def test_the_control_core_never_imports_a_driver(path: Path) -> None:
    """Interlocks read an ActuatorModel that each actuator kind fills in, never a driver's settings."""
    assert not any(name.startswith("controller.drivers") for name in _imports(path)), path.name


def test_every_actuator_kind_fills_in_the_interlocks_model() -> None:
    from controller.control.actuator_model import ActuatorModel
    from tests.simhelpers import demo_layout

    layout = demo_layout()
    models = layout.actuator_models()
    assert set(models) == set(layout.actuators)
    assert all(isinstance(model, ActuatorModel) for model in models.values())
    heat_pump = layout.actuators["heat-pump"]
    assert models["heat-pump"] == ActuatorModel(
        safe_on=False,
        min_on_s=heat_pump.min_on_s,
        min_off_s=heat_pump.min_off_s,
        max_starts_per_hour=heat_pump.max_starts_per_hour,
        requires=heat_pump.requires,
        prerun_s=heat_pump.prerun_s,
        postrun_s=heat_pump.postrun_s,
    )
    assert models["distribution-pump"].safe_on is True
