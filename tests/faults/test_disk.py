"""Disk faults under a running farm: the home's databases or an agent's spool on a disk that
fills up or turns read-only in the middle of a run.

After each: the home stayed up, nothing uncommitted was acknowledged, the run
finished (every test COMPLETED), no status packet was lost or doubled, no step
process was left behind, and nothing stayed mounted.
"""

import re
import textwrap
import time

import pytest
from disks import fill, require_mounts, tmpfs, unfill
from farm import TARGET, Farm
from ledger import books, record
from procs import processes_with, wait_for

RUN = "disk"
ITEMS = 16
FAULT = 3.0
"""Seconds each fault lasts."""
STEP_TOKEN = "1.0011"
"""In every step's command line: how the test finds leftover step processes."""
AGENTS = ["d1", "d2"]


def add_ticker(farm: Farm) -> None:
    """A test of ITEMS items that each run for a moment: a run that lasts through a fault."""
    config = farm.area / "tests/ticker/testconfig"
    config.parent.mkdir(parents=True)
    items = " ".join(str(i) for i in range(1, ITEMS + 1))
    config.write_text(
        textwrap.dedent(f"""
            [ezsteps]
            wait sleep {STEP_TOKEN}
            tell echo done $A

            [items]
            A {items}
        """).lstrip()
    )


def states(farm: Farm) -> dict[str, int]:
    counts: dict[str, int] = {}
    for state, _, _ in farm.tests(RUN).values():
        counts[state] = counts.get(state, 0) + 1
    return counts


def completed(farm: Farm) -> int:
    """Items of the run COMPLETED (the toplevel record left out)."""
    return sum(state == "COMPLETED" for (_, item), (state, _, _) in farm.tests(RUN).items() if item)


def start(farm: Farm) -> None:
    """The home and the agents, and a run well under way."""
    farm.start_home()
    for name in AGENTS:
        farm.start_agent(name)
    sent = farm.send("run", "-t", TARGET, "-r", RUN, "--testpatt", "ticker", timeout=30)
    assert sent.returncode == 0, sent.stderr
    assert wait_for(lambda: completed(farm) >= 2, 30), states(farm)


def hold(began: float) -> float:
    """Let the fault last FAULT seconds from ``began``; how long it lasted."""
    wait_for(lambda: time.monotonic() - began >= FAULT, FAULT + 1)
    return time.monotonic() - began


def finish(farm: Farm, fault: str, detail: str) -> None:
    """Wait for the run to finish, stop the farm, check the leftovers and record the books."""
    assert wait_for(lambda: states(farm) == {"COMPLETED": ITEMS + 1}, 60), (
        states(farm),
        farm.log("home"),
    )
    assert farm.processes["home"].poll() is None, farm.log("home")
    farm.stop_all()
    assert not processes_with(STEP_TOKEN)
    record(books(fault, farm.area, AGENTS, detail))


def lines(log: str, pattern: str) -> list[str]:
    return [line for line in log.splitlines() if re.search(pattern, line)]


def no_tracebacks(*logs: str) -> None:
    for log in logs:
        assert "Traceback" not in log, log


@pytest.mark.timeout(90)
def test_home_db_dir_full(farm: Farm) -> None:
    """The home's database directory fills up mid-run, then has room again."""
    require_mounts()
    add_ticker(farm)
    dbdir = farm.area / ".mtpkt/db"
    with tmpfs(dbdir, "4m"):
        try:
            start(farm)
            fill(dbdir)
            began = time.monotonic()
            assert wait_for(lambda: "NOT COMMITTED" in farm.log("home"), 15), farm.log("home")
            refused = farm.send("run", "-t", TARGET, "-r", "second", timeout=30)
            lasted = hold(began)
            unfill(dbdir)
            assert wait_for(lambda: "committing resumed" in farm.log("home"), 15)
            home = farm.log("home")
            finish(farm, "home db dir full", f"full for {lasted:.1f} s")
        finally:
            farm.stop_all()
    assert refused.returncode == 4, refused.stderr
    assert "could not journal" in refused.stderr, refused.stderr
    print(home)
    no_tracebacks(home, *(farm.log(name) for name in AGENTS))


@pytest.mark.timeout(90)
def test_agent_spool_full(farm: Farm) -> None:
    """One agent's state directory (spool.db, seen.db) fills up mid-run, then has room again."""
    require_mounts()
    add_ticker(farm)
    state = farm.area / ".mtpkt/agents" / AGENTS[0]
    with tmpfs(state, "2m"):
        try:
            start(farm)
            fill(state)
            began = time.monotonic()
            assert wait_for(lambda: "cannot be written" in farm.log(AGENTS[0]), 15)
            lasted = hold(began)
            unfill(state)
            assert wait_for(lambda: "can be written again" in farm.log(AGENTS[0]), 15)
            finish(farm, "agent spool full", f"full for {lasted:.1f} s")
        finally:
            farm.stop_all()
    print(farm.log(AGENTS[0]))
    no_tracebacks(farm.log("home"), *(farm.log(name) for name in AGENTS))
