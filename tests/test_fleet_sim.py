"""`hearth fleet-sim`: several whole controllers in one process, each with its own broker user, served by the real
`hearth atn-sim` through a private mosquitto. The 500-site run is bench/fleet.py's."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.fleet.planning import PLANNING_NICE
from controller.fleet.provision import mosquitto_password_line, write_secret
from controller.fleet.sim import plan_fleet, site_ids, site_layout_text
from controller.layout.load import parse_text
from tests.broker import Broker, start_broker
from tests.test_atn_link import HEARTH, ROOT, Process, wait_for

SITES = site_ids(3)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    running = start_broker(tmp_path_factory.mktemp("broker"))
    lines = (running.workdir / "passwd").read_text().splitlines()
    for site in SITES:
        running.users[site] = f"pw-{site}"
        lines.append(mosquitto_password_line(site, running.users[site]))
    (running.workdir / "passwd").write_text("\n".join(lines) + "\n")
    running.restart()
    yield running
    running.stop()


def test_site_layouts_spread_over_the_brokers() -> None:
    template = (ROOT / "layouts/demo.toml").read_text()
    urls = ["mqtt://127.0.0.1:1", "mqtt://127.0.0.1:2", "mqtt://127.0.0.1:3"]
    layouts = [parse_text(site_layout_text(template, s, urls, Path("/pw"), i)) for i, s in enumerate(site_ids(4))]
    assert [layout.site.id for layout in layouts] == ["site-001", "site-002", "site-003", "site-004"]
    firsts = [str(layout.links.atn.brokers[0]) for layout in layouts if layout.links.atn]
    assert firsts == [urls[0], urls[1], urls[2], urls[0]]
    assert len({layout.sim.seed for layout in layouts if layout.sim}) == 4


def test_a_missing_password_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"site-001\.mqtt-password: no password file"):
        plan_fleet(ROOT / "layouts/demo.toml", 2, ["mqtt://127.0.0.1:1883"], tmp_path, tmp_path / "state")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--broker", "htp:/127.0.0.1:1"], "--broker: 'htp:/127.0.0.1:1' is not an mqtt://host[:port]"),
        (["--broker", "mqtt://127.0.0.1:1", "--start-spread", "-1"], "--start-spread must be within 0..86400 s"),
        (["--broker", "mqtt://127.0.0.1:1", "--layout", "/nonexist.toml"], "--layout /nonexist.toml: no such file"),
        # The default layout is found from any directory; what is missing here is the password.
        (
            ["--broker", "mqtt://127.0.0.1:1"],
            "site-001.mqtt-password: no password file for site-001 (hearth fleet provision --secret-dir writes it)",
        ),
    ],
)
def test_bad_options_are_named_as_given(
    options: list[str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from controller.cli import main

    monkeypatch.chdir(tmp_path)  # not the repository: the default layout must not depend on it
    assert main(["fleet-sim", "--sites", "1", "--password-dir", str(tmp_path), *options]) == 2
    assert message in capsys.readouterr().err


def test_three_houses_in_one_process_reach_the_atn_with_nothing_lost(broker: Broker, tmp_path: Path) -> None:
    passwords = tmp_path / "passwords"
    for site in SITES:
        write_secret(passwords / f"{site}.mqtt-password", broker.users[site])
    write_secret(tmp_path / "atn-password", broker.users["atn"])
    url = f"mqtt://127.0.0.1:{broker.port}"
    ledger = tmp_path / "ledger.sqlite"
    sites = [argument for site in SITES for argument in ("--site", site)]
    account = ["--username", "atn", "--password-file", str(tmp_path / "atn-password")]
    atn = Process(
        ["atn-sim", "--broker", url, *sites, *account, "--db", str(ledger), "--heartbeat", "1", "--log-format", "json"],
        tmp_path / "atn.log",
    )
    logging = ["--log-format", "json", "--log-level", "info"]
    where = ["--password-dir", str(passwords), "--state-dir", str(tmp_path / "state")]
    fleet = Process(
        ["fleet-sim", "--sites", "3", "--broker", url, *where, "--start-spread", "1", "--commit-every", "1", *logging],
        tmp_path / "fleet.log",
    )
    try:
        accepted = lambda: [e for e in atn.events() if e.get("event") == "controller accepted"]  # noqa: E731
        wait_for(lambda: {e["site"] for e in accepted()} == set(SITES), 60, "every site to accept a lease")
        ups = [e for e in fleet.events() if e.get("event") == "ATN link up"]
        assert len(ups) == 3 and all(e["broker"] == url for e in ups)
        # Each site's plan is made in its worker's planning process (a niced grandchild), and adopted.
        plans = lambda: [e for e in fleet.events() if e.get("event") == "plan"]  # noqa: E731
        wait_for(lambda: {e["site"] for e in plans()} == set(SITES), 60, "every site to adopt a plan")
        planners = {int(str(e["pid"])) for e in plans()}
        workers = {stat(p)[0] for p in planners}
        assert all(stat(w)[0] == fleet.popen.pid for w in workers) and fleet.popen.pid not in planners | workers
        assert all(stat(p)[1] == stat(stat(p)[0])[1] + PLANNING_NICE for p in planners)
        time.sleep(2)
    finally:
        fleet_exit = fleet.stop()
        time.sleep(1)
        atn_exit = atn.stop()
    assert (fleet_exit, atn_exit) == (0, 0)
    assert not [p for p in planners if Path(f"/proc/{p}").exists()], "a planning process outlived fleet-sim"
    for site in SITES:  # each its own store, in its own state directory
        assert (tmp_path / "state" / site / "demo.sqlite").exists()
    check = subprocess.run([HEARTH, "atn-sim", "check", "--db", str(ledger)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    assert check.stdout.count("no gaps") == 3, check.stdout


def stat(pid: int) -> tuple[int, int]:
    """A process's parent pid and nice value, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[1]), int(fields[16])


def test_the_heap_is_frozen_while_sites_start_without_a_full_collection(monkeypatch: pytest.MonkeyPatch) -> None:
    """A full collection over 250 sites' objects stopped a worker for seconds (373 sites to SAFE at once): the
    fleet freezes what survives young collections, often while sites start, and never collects generation 2."""
    import asyncio
    import gc

    from controller.fleet import sim

    generations: list[int] = []
    monkeypatch.setattr(sim.gc, "collect", lambda generation=2: generations.append(generation) or 0)

    async def run() -> None:
        task = asyncio.create_task(sim.keep_heap_frozen(0.05, every_s=60.0, starting_every_s=0.01))
        await asyncio.sleep(0.1)
        task.cancel()

    before = gc.get_freeze_count()
    try:
        asyncio.run(run())
        assert len(generations) >= 3 and set(generations) == {1}  # often, and only the young generations
        assert gc.get_freeze_count() >= before
    finally:
        gc.unfreeze()
