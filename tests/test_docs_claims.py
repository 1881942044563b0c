"""What the README and docs/ tell a new user, checked against the code: every `hearth` command line they show
parses, every repository path and link they name exists, every key the README's TUI table names is bound, the
exit codes table matches `hearth run`, and the quick-start scripts take the options the README gives them."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest
from textual.binding import Binding

from controller import cli
from tui.app import HearthApp
from tui.screens.actuators import ActuatorsScreen
from tui.screens.channels import ChannelsScreen
from tui.screens.energy import EnergyScreen
from tui.screens.events import EventsScreen
from tui.screens.overview import OverviewScreen

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "systemd/README.md", ROOT / "bench/README.md"]
SUBCOMMANDS = next(a for a in cli.build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
COMMAND = re.compile(rf"(?:^|[\s`/])hearth ((?:{'|'.join(SUBCOMMANDS)})\b[^`|#\n]*)", re.MULTILINE)
PATH = re.compile(r"`((?:controller|tui|layouts|systemd|scripts|docs|deploy|bench|tests)/[^` ]*)`")
LINK = re.compile(r"\]\(((?!https?:)[^)#]+)\)")


def command_lines() -> list[tuple[str, str]]:
    found = []
    for doc in DOCS:
        # A shell line continued with a backslash is one command.
        for match in COMMAND.finditer(re.sub(r"\\\n\s*", " ", doc.read_text())):
            line = match.group(1).strip().removesuffix("&").strip()  # a command the docs start in the background
            if "..." in line or "<" in line:  # a pattern such as `hearth atn-sim --broker URL --site ID ...`
                line = line.split("...")[0].split("<")[0].strip()
            found.append((doc.name, line))
    return found


def parses(words: list[str]) -> bool:
    try:
        cli.build_parser().parse_args(words)
    except SystemExit:  # argparse's way of refusing
        return False
    return True


@pytest.mark.parametrize(("doc", "line"), command_lines())
def test_every_hearth_command_the_docs_show_parses(doc: str, line: str) -> None:
    """A full command line parses; a mention in a sentence (`hearth run --speed`) parses once given a value."""
    words = shlex.split(line)
    assert parses(words) or parses([*words, "1"]), f"{doc}: `hearth {line}` does not parse"


def test_the_docs_show_every_command() -> None:
    shown = {line.split()[0] for _doc, line in command_lines()}
    assert shown == set(SUBCOMMANDS)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_path_and_link_the_docs_name_exists(doc: Path) -> None:
    text = doc.read_text()
    named = [ROOT / path for path in PATH.findall(text)]
    named += [doc.parent / link for link in LINK.findall(text)]
    missing = [str(path.relative_to(ROOT)) for path in named if not path.exists()]
    assert missing == [], f"{doc.name} names what does not exist"


def test_the_exit_codes_table_is_what_hearth_run_returns() -> None:
    readme = (ROOT / "README.md").read_text()
    table = dict(re.findall(r"^\| (\d+) \| ([^|]+) \|$", readme, re.MULTILINE))
    codes = {
        cli.EXIT_OK: "stopped cleanly",
        cli.EXIT_LAYOUT: "bad layout",
        cli.EXIT_USAGE: "bad arguments",
        cli.EXIT_HARDWARE: "hardware unavailable",
        cli.EXIT_STORE: "store unavailable",
        cli.EXIT_LOG: "log file",
        cli.EXIT_CRASHED: "crashed",
    }
    assert sorted(int(code) for code in table) == sorted(codes)
    for code, words in codes.items():
        assert words in table[str(code)], (code, table[str(code)])


def bound_keys(*owners: type) -> set[str]:
    keys: set[str] = set()
    for owner in owners:
        for binding in owner.BINDINGS:  # type: ignore[attr-defined]
            assert isinstance(binding, Binding)
            keys.update(key.strip() for key in binding.key.split(","))
    return keys


def test_every_key_the_readme_names_is_bound_where_it_says() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| (`[^|]+) \| ([^|]+) \| ([^|]+) \|$", readme, re.MULTILINE)
    assert rows, "the README's TUI key table"
    where = {
        "everywhere": (HearthApp,),
        "Overview, Actuators": (OverviewScreen, ActuatorsScreen),
        "Overview": (OverviewScreen,),
        "Channels, Events": (ChannelsScreen, EventsScreen),
        "Energy": (EnergyScreen,),
    }
    names = {"?": "question_mark", "/": "slash", "Ctrl-C": "ctrl+c", "[": "left_square_bracket",
             "]": "right_square_bracket"}  # fmt: skip
    for keys, place, _what in rows:
        owners = where[place.strip()]
        wanted = re.findall(r"`([^`]+)`", keys) + (["Ctrl-C"] if "Ctrl-C" in keys else [])
        for key in wanted:
            expanded = [str(n) for n in range(1, 7)] if key == "1`–`6" or key == "1" else [key]
            for one in expanded:
                for owner in owners:
                    assert names.get(one, one) in bound_keys(owner), f"`{one}` ({place}) is not bound on {owner}"


@pytest.mark.parametrize(("script", "option"), [("demo", "--no-atn"), ("demo", "--speed"), ("demo", "--port")])
def test_the_quick_start_scripts_take_the_options_the_readme_gives(script: str, option: str) -> None:
    readme = (ROOT / "README.md").read_text()
    assert f"`{option}" in readme
    assert option in (ROOT / "scripts" / script).read_text()
    assert '"$@"' in (ROOT / "scripts/test").read_text()  # `scripts/test -k layout` passes arguments to pytest
