"""Deferred items through a home and its agents, and across a home killed and restarted.

A testconfig's ``[items]`` value ``[system cmd]`` is made when the test comes up to run,
its prerequisites met (configf.scm:384-411, runs.scm:750-778, :1527-1540). The home makes
the items once per launch and notes them (:mod:`mtpkt.agents.itemnotes`); the agents run
those very items, and a home restarted after them neither loses nor doubles a record, nor
makes them again (DESIGN 2 and 3). Each making of the items leaves a line in a file, so
the test counts them.
"""

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mtpkt.pkts.status import StatusChange
from tests.support.farm import FILES, TARGET, Farm, running_farm
from tests.support.procs import wait_for

AREA = {
    "megatest.config": FILES["megatest.config"],
    "runconfigs.config": "[default]\n",
    "tests/writer/testconfig": """
        [ezsteps]
        write echo "x y" > $MT_RUN_AREA_HOME/items.txt
    """,
    "tests/reader/testconfig": """
        [ezsteps]
        check test "$N" = "$MT_ITEMPATH" && sleep 1.5

        [requirements]
        waiton writer

        [items]
        N [system cat $MT_RUN_AREA_HOME/items.txt; echo $MT_TEST_NAME >> $MT_RUN_AREA_HOME/made]
    """,
}
EXPECTED = {
    ("writer", ""): ("COMPLETED", "PASS"),
    ("reader", ""): ("COMPLETED", "PASS"),
    ("reader", "x"): ("COMPLETED", "PASS"),
    ("reader", "y"): ("COMPLETED", "PASS"),
}


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[Farm]:
    with running_farm(tmp_path, files=AREA) as farm:
        yield farm


def _records(farm: Farm, runname: str) -> dict[tuple[str, str], tuple[str, str]]:
    return {key: (state, status) for key, (state, status, _) in farm.tests(runname).items()}


def _not_started(farm: Farm, runname: str) -> dict[str, int]:
    """How often the home recorded each reader item NOT_STARTED."""
    counts: dict[str, int] = {}
    for _, packet in farm.history(runname, "testname = 'reader'"):
        if isinstance(packet, StatusChange) and packet.state == "NOT_STARTED" and packet.item:
            counts[packet.item] = counts.get(packet.item, 0) + 1
    return counts


@pytest.mark.timeout(120)
def test_items_made_once_by_the_home_run_by_the_agents(farm: Farm) -> None:
    """runs.scm:750-778: made after ``writer`` wrote their file (planning could not read it),
    once, with MT_TEST_NAME set (runs.scm:762); the agents run those items, each seeing its
    variable (launch.scm:1527-1540 hands Megatest's test process its item)."""
    farm.start_home()
    farm.start_agent("alpha")
    farm.start_agent("beta")
    sent = farm.send("run", "-t", TARGET, "-r", "r1", "--wait", timeout=90)
    assert sent.returncode == 0, (sent, farm.log("home"))
    assert _records(farm, "r1") == EXPECTED
    assert (farm.area / "made").read_text() == "reader\n"
    assert _not_started(farm, "r1") == {"x": 1, "y": 1}


@pytest.mark.timeout(150)
def test_a_home_killed_after_making_them_neither_loses_nor_doubles_them(farm: Farm) -> None:
    """DESIGN 2-3 (a home restart loses and doubles nothing): the restarted home gives the
    run the items noted (not made again, though the file now says otherwise), and the agents
    run those; each item recorded NOT_STARTED once."""
    farm.start_home()
    farm.start_agent("alpha")
    sent = farm.send("run", "-t", TARGET, "-r", "crash")
    assert sent.returncode == 0, sent
    assert wait_for(lambda: ("reader", "x") in farm.tests("crash"), 60), farm.tests("crash")
    farm.stop("home", signal.SIGKILL)  # nothing flushed, nothing said goodbye
    (farm.area / "items.txt").write_text("p q\n")  # a second making would give other items
    time.sleep(0.5)
    farm.start_home(name="home2")
    assert "picked up again" in farm.log("home2"), farm.log("home2")

    def settled() -> bool:
        records = _records(farm, "crash")
        return records == EXPECTED

    assert wait_for(settled, 90), (_records(farm, "crash"), farm.log("home2"))
    assert (farm.area / "made").read_text() == "reader\n"
    assert _not_started(farm, "crash") == {"x": 1, "y": 1}
    sent = farm.send("run", "-t", TARGET, "-r", "crash", "--wait", timeout=60)
    assert sent.returncode == 0, sent  # all done: left alone, nothing made again
    assert _records(farm, "crash") == EXPECTED
    assert (farm.area / "made").read_text() == "reader\n"
