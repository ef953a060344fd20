"""What survives a crash: ``kill -9`` of the home mid-run, and of agents (DESIGN 2, 3 and 5).

Every process is a real subprocess started from the command line, on loopback.
"""

import functools
import json
import os
import signal
import textwrap
import time

import pytest

from mtpkt.pkts import State, Status
from mtpkt.pkts.outcome import settled
from tests.support.farm import TARGET, Farm
from tests.support.procs import wait_for

SLOW = """
    [ezsteps]
    nap   sleep 0.4
    done  echo done

    [items]
    N 1 2 3 4 5 6 7 8 9 10 11 12
"""
EXPECTED = {
    ("build", ""): ("COMPLETED", "PASS"),
    ("unit", ""): ("COMPLETED", "PASS"),
    ("broken", ""): ("COMPLETED", "FAIL"),
    ("after_broken", ""): ("NOT_STARTED", "PREQ_FAIL"),
    ("report", ""): ("COMPLETED", "PASS"),
    ("slow", ""): ("COMPLETED", "PASS"),
    **{("unit", str(n)): ("COMPLETED", "PASS") for n in (1, 2, 3)},
    **{("slow", str(n)): ("COMPLETED", "PASS") for n in range(1, 13)},
}


def _settled(farm: Farm, runname: str, count: int) -> bool:
    records = farm.tests(runname)
    return len(records) == count and all(
        settled(State(state), Status(status)) for state, status, _ in records.values()
    )


@pytest.mark.timeout(180)
def test_the_home_killed_mid_run_and_restarted_finishes_the_run_once(farm: Farm) -> None:
    (farm.area / "tests/slow").mkdir()
    (farm.area / "tests/slow/testconfig").write_text(textwrap.dedent(SLOW).lstrip())
    farm.start_home()
    listen = (farm.area / ".mtpkt/home.json").read_text()
    farm.start_agent("alpha")
    farm.start_agent("beta")
    sent = farm.send("run", "-t", TARGET, "-r", "crash", "--testpatt", "%,~sleeper")
    assert sent.returncode == 0, sent

    def some_done_some_running() -> bool:
        states = [state for state, _, _ in farm.tests("crash").values()]
        return "COMPLETED" in states and "RUNNING" in states

    assert wait_for(some_done_some_running, 30), farm.tests("crash")
    farm.processes["home"].kill()  # kill -9: nothing is flushed, nothing said goodbye
    farm.processes["home"].wait(timeout=10)
    time.sleep(0.5)  # agents keep running tests and spooling what they report
    farm.start_home(name="home2")
    assert _listen(listen) in farm.log("home2"), farm.log("home2")  # where it was before
    assert "picked up again" in farm.log("home2"), farm.log("home2")

    assert wait_for(lambda: _settled(farm, "crash", len(EXPECTED)), 60), farm.tests("crash")
    assert {key: record[:2] for key, record in farm.tests("crash").items()} == EXPECTED
    hosts = {host for _, _, host in farm.tests("crash").values()}
    assert {"alpha", "beta"} <= hosts

    # Each instance ran once: one start row per step, even for those the old home handed out.
    starts = farm.query(
        "crash",
        "SELECT t.testname, t.item_path, s.stepname, count(*) FROM test_steps s"
        " JOIN tests t ON t.id = s.test_id WHERE s.state = 'start'"
        " GROUP BY t.testname, t.item_path, s.stepname",
    )
    assert starts
    assert all(row[3] == 1 for row in starts), starts
    # Nothing an agent reported was lost or doubled: each origin's numbers run 1, 2, 3 …
    for origin in ("alpha", "beta"):
        seqs = [
            int(str(row[0]))
            for row in farm.query(
                "crash", f"SELECT origin_seq FROM history WHERE origin = '{origin}' ORDER BY 1"
            )
        ]
        assert seqs == list(range(1, len(seqs) + 1)), (origin, seqs)


def _listen(home_json: str) -> str:
    return str(json.loads(home_json)["listen"])


@pytest.mark.timeout(120)
def test_tests_of_a_killed_agent_become_dead(farm: Farm) -> None:
    farm.start_home("--agent-grace", "1")
    farm.start_agent("alpha")
    farm.start_agent("beta")
    for runname, host in (("left", "alpha"), ("back", "beta")):
        sent = farm.send("run", "-t", TARGET, "-r", runname, "--testpatt=sleeper", "--host", host)
        assert sent.returncode == 0, sent

    def running(runname: str) -> bool:
        return farm.tests(runname).get(("sleeper", ""), ("",))[0] == "RUNNING"

    for runname in ("left", "back"):
        assert wait_for(functools.partial(running, runname), 30), farm.tests(runname)
    for name in ("alpha", "beta"):
        os.kill(farm.processes[name].pid, signal.SIGKILL)
        farm.processes[name].wait(timeout=10)

    # beta comes back at once: it reports what its predecessor left unfinished.
    began = time.monotonic()
    farm.start_agent("beta")
    assert wait_for(lambda: farm.tests("back")[("sleeper", "")][1] == "DEAD", 15)
    state, status, _ = farm.tests("back")[("sleeper", "")]
    assert (state, status) == ("COMPLETED", "DEAD")
    # alpha stays away: the home gives up on it after twice its heartbeat interval + the grace.
    assert wait_for(lambda: farm.tests("left")[("sleeper", "")][1] == "DEAD", 20)
    assert time.monotonic() - began < 20
    comments = farm.query("left", "SELECT comment FROM tests WHERE testname = 'sleeper'")
    assert "agent alpha lost" in str(comments[0][0]), comments
