"""Layouts: the shipped ones are valid, and each broken one gives exactly the problems written in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.layout.load import LayoutError, LineIndex, load_layout, parse_text
from controller.layout.model import Layout

ROOT = Path(__file__).resolve().parent.parent
BROKEN = sorted((ROOT / "tests/layouts/broken").glob("*.toml"))
SHIPPED = sorted((ROOT / "layouts").glob("*.toml"))


def expected_problems(path: Path) -> list[str]:
    prefix = "# expect: "
    return [line[len(prefix) :] for line in path.read_text().splitlines() if line.startswith(prefix)]


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_layouts_are_valid(path: Path) -> None:
    layout = load_layout(path)
    assert isinstance(layout, Layout)
    assert layout.channels and layout.actuators


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_layout_reports_exactly_its_problems(path: Path) -> None:
    expected = expected_problems(path)
    assert expected, f"{path.name} lists no expected problems"
    with pytest.raises(LayoutError) as caught:
        parse_text(path.read_text(), file=path.name)
    assert [str(problem) for problem in caught.value.problems] == expected


def test_all_problems_come_out_at_once() -> None:
    path = ROOT / "tests/layouts/broken/many-problems.toml"
    with pytest.raises(LayoutError) as caught:
        load_layout(path)
    sections = {problem.path.split(".")[0] for problem in caught.value.problems}
    assert sections == {"devices", "channels", "actuators", "storage"}


def test_unreadable_file_is_a_layout_error(tmp_path: Path) -> None:
    with pytest.raises(LayoutError, match="cannot read"):
        load_layout(tmp_path / "nope.toml")


@pytest.mark.parametrize(
    ("text", "path", "line"),
    [
        ("a = 1\n[t]\nb = 2\n", ("t", "b"), 3),
        ("[x.y]\nk = 1\n", ("x", "y", "k"), 2),
        ("[x.y]\nk = 1\n", ("x", "y", "missing"), 1),
        ('[channels."tank-top"]\ndevice = "a"\n', ("channels", "tank-top", "device"), 2),
        ("[a]\nsensor = { kind = 'ntc' }\n", ("a", "sensor", "kind"), 2),
        ("x = 1\n", ("nothing",), None),
    ],
)
def test_line_index(text: str, path: tuple[str, ...], line: int | None) -> None:
    assert LineIndex(text).line_of(path) == line


def test_pi_example_is_the_demo_equipment_on_real_buses() -> None:
    demo = load_layout(ROOT / "layouts/demo.toml")
    real = load_layout(ROOT / "layouts/pi4-example.toml")
    assert real.backend == "real" and real.sim is None
    assert set(real.channels) == set(demo.channels)
    assert set(real.actuators) == set(demo.actuators)
    assert {d.kind for d in real.devices.values()} == {"ads1115", "max31865", "sdm120", "dsmr_p1"}
