"""Packaging: what pip installs is what the tests passed with, and pyproject.toml declares nothing dead."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
SUPPORTED = ["3.11", "3.12", "3.13", "3.14"]


def test_license_is_an_spdx_expression_without_the_deprecated_classifier() -> None:
    assert PROJECT["license"] == "MIT"
    assert PROJECT["license-files"] == ["LICENSE"]
    assert not [c for c in PROJECT["classifiers"] if c.startswith("License ::")]


def test_no_dependency_carries_a_marker_that_can_never_apply() -> None:
    requirements = [Requirement(r) for r in PROJECT["dependencies"]]
    requirements += [Requirement(r) for extra in PROJECT["optional-dependencies"].values() for r in extra]
    dead = [
        str(r)
        for r in requirements
        if r.marker is not None
        and not any(Marker(str(r.marker)).evaluate({"python_version": v, "extra": ""}) for v in SUPPORTED)
    ]
    assert dead == [], f"markers that never hold for Python {SUPPORTED}: {dead}"


def imported_modules() -> set[str]:
    names: set[str] = set()
    for path in [*ROOT.glob("controller/**/*.py"), *ROOT.glob("tui/**/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_every_runtime_dependency_is_imported_by_hearth() -> None:
    distributions = importlib.metadata.packages_distributions()
    used = {canonicalize_name(d) for module in imported_modules() for d in distributions.get(module, [])}
    declared = {canonicalize_name(Requirement(r).name) for r in PROJECT["dependencies"]}
    assert declared - used == set(), "declared in pyproject.toml but imported nowhere in controller/ or tui/"


def constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_the_environment_the_tests_run_in_is_the_one_constraints_txt_pins() -> None:
    pins = constraints()
    installed = {
        canonicalize_name(d.metadata["Name"]): d.version
        for d in importlib.metadata.distributions()
        if canonicalize_name(d.metadata["Name"]) not in {"hearth", "pip", "setuptools", "wheel"}
    }
    differing = {
        name: (version, pins[name]) for name, version in installed.items() if pins.get(name, version) != version
    }
    assert differing == {}, "installed (version, pinned): run scripts/bootstrap, or scripts/lock after a change"
    required = [*PROJECT["dependencies"], *(r for extra in PROJECT["optional-dependencies"].values() for r in extra)]
    unpinned = [r for r in required if canonicalize_name(Requirement(r).name) not in pins]
    assert unpinned == [], "declared in pyproject.toml but not in constraints.txt: run scripts/lock"


def test_bootstrap_and_the_pi_install_use_the_constraints() -> None:
    assert re.search(r"pip install .*-c constraints\.txt", (ROOT / "scripts/bootstrap").read_text())
    assert "-c /opt/hearth/constraints.txt" in (ROOT / "README.md").read_text()
