"""The control path end to end: ``mtpkt home``, two ``mtpkt agent``s and ``mtpkt send``.

Every process is a real subprocess started from the command line, on loopback.
"""

import time

import pytest

from mtpkt.pkts import State
from mtpkt.pkts.status import StatusChange
from tests.support.farm import SLEEP, TARGET, Farm
from tests.support.procs import processes_with, wait_for


@pytest.mark.timeout(180)
def test_a_run_over_two_agents_then_a_kill_and_bad_requests(farm: Farm) -> None:
    farm.start_home()
    assert (farm.area / ".mtpkt/secret").stat().st_mode & 0o777 == 0o600
    farm.start_agent("alpha")
    farm.start_agent("beta")

    # (1) a run with items, waiton in both modes and a failing step, spread over both agents
    done = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", "%,~sleeper", "--wait")
    assert done.returncode != 0, done  # broken FAILs, so --wait reports failure
    assert len(bytes.fromhex(done.stdout.split()[0])) == 16, done.stdout
    tests = farm.tests("nightly")
    expected = {
        ("build", ""): ("COMPLETED", "PASS"),
        ("unit", "1"): ("COMPLETED", "PASS"),
        ("unit", "2"): ("COMPLETED", "PASS"),
        ("unit", "3"): ("COMPLETED", "PASS"),
        ("unit", ""): ("COMPLETED", "PASS"),
        ("broken", ""): ("COMPLETED", "FAIL"),
        ("after_broken", ""): ("NOT_STARTED", "PREQ_FAIL"),
        ("report", ""): ("COMPLETED", "PASS"),
    }
    assert {key: value[:2] for key, value in tests.items()} == expected
    hosts = {host for key, (_, _, host) in tests.items() if key != ("after_broken", "")}
    assert {"alpha", "beta"} <= hosts, tests
    assert not list((farm.area / "links").glob("**/ran.txt"))  # after_broken never ran
    rundirs = {
        str(instance): str(rundir)
        for instance, rundir in farm.query(
            "nightly", "SELECT testname || '/' || item_path, rundir FROM tests"
        )
    }
    run_root = farm.area / "links" / TARGET / "nightly"
    assert rundirs["unit/2"] == str(run_root / "unit" / "2")
    assert rundirs["unit/"] == str(run_root / "unit")
    assert (run_root / "unit" / "2" / "out.txt").is_file()  # where it ran
    ((duration,),) = farm.query("nightly", "SELECT run_duration FROM tests WHERE item_path = '1'")
    assert isinstance(duration, float)
    assert duration >= 0.2  # unit's step sleeps 0.2 s

    # (2) kill the long sleeper: KILLED within 5 s, no process of it left
    started = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", "sleeper")
    assert started.returncode == 0, started
    assert wait_for(lambda: farm.tests("nightly")[("sleeper", "")][0] == "RUNNING", 30)
    assert wait_for(lambda: len(processes_with(SLEEP)) >= 2, 10)
    began = time.monotonic()
    # One of its processes ignores SIGTERM: it goes at SIGKILL, after the 2 s grace.
    killed = farm.send(
        "kill", "-t", TARGET, "-r", "nightly", "--testpatt", "sleeper", "--grace", "2"
    )
    assert killed.returncode == 0, killed
    assert wait_for(lambda: farm.tests("nightly")[("sleeper", "")][0] == "KILLED", 5), farm.tests(
        "nightly"
    )
    assert time.monotonic() - began < 5
    assert wait_for(lambda: not processes_with(SLEEP), 5), processes_with(SLEEP)

    # (5) bad requests: a clear error, nothing run, the home keeps serving
    unknown = farm.send("run", "-t", TARGET, "-r", "other", "--testpatt", "nosuch")
    assert unknown.returncode != 0, unknown
    assert "nosuch" in unknown.stderr, unknown
    wrong_target = farm.send("run", "-t", "linux", "-r", "other")
    assert wrong_target.returncode != 0, wrong_target
    assert "linux" in wrong_target.stderr, wrong_target
    (farm.area / "other.key").write_bytes(b"k" * 32)
    (farm.area / "other.key").chmod(0o600)
    forged = farm.send("run", "-t", TARGET, "-r", "other", "--key-file", "other.key")
    assert forged.returncode != 0, forged
    assert "other" not in {runname for runname in _runnames(farm)}
    assert farm.processes["home"].poll() is None
    again = farm.send("run", "-t", TARGET, "-r", "nightly", "--testpatt", "build", "--wait")
    assert again.returncode == 0, again  # build is PASS already: nothing to rerun


def _runnames(farm: Farm) -> list[str]:
    return [str(runname) for (runname,) in farm.main_query("SELECT runname FROM runs")]


@pytest.mark.timeout(120)
def test_a_second_run_reruns_a_failed_test_the_first_still_holds(farm: Farm) -> None:
    farm.start_home()
    farm.start_agent("alpha")
    # The first run goes on (the sleeper) after `broken` failed ...
    first = farm.send("run", "-t", TARGET, "-r", "twice", "--testpatt", "broken,sleeper")
    assert first.returncode == 0, first.stderr
    assert wait_for(lambda: farm.tests("twice").get(("broken", ""), ("",))[0] == "COMPLETED", 30)
    # ... when a second one asks for `broken` again: it runs again, once, and ends. (Megatest's
    # second pass keeps `-rerun FAIL`, runs.scm:613-621, but without run-wait it comes at the
    # last launch, when `broken` is LAUNCHED: not run again.)
    second = farm.send(
        "run", "-t", TARGET, "-r", "twice", "--testpatt", "broken", "--rerun", "FAIL",
        "--wait", "--wait-timeout", "30",
    )  # fmt: skip
    assert second.returncode == 3, second.stderr  # FAIL again, not a wait that never ends
    history = farm.history("twice", "kind = 'status_change' AND testname = 'broken'")
    states = [change.state for _, change in history if isinstance(change, StatusChange)]
    assert states.count(State.COMPLETED) == 2
    killed = farm.send("kill", "-t", TARGET, "-r", "twice", "--grace", "1", "--wait")
    assert killed.returncode == 0, killed.stderr


@pytest.mark.timeout(60)
def test_a_second_agent_of_the_same_name_is_refused_in_one_line(farm: Farm) -> None:
    farm.start_home()
    farm.start_agent("alpha")
    assert wait_for(lambda: "agent alpha ready" in farm.log("alpha"), 30), farm.log("alpha")
    second = farm.command("agent", "--name", "alpha", timeout=30)
    assert second.returncode == 1
    assert second.stderr.strip().splitlines()[-1] == (
        f"mtpkt agent: error: agent alpha already runs for this area (it holds"
        f" {farm.area}/.mtpkt/agents/alpha/spool.db): stop it first, or give this one another"
        " --name"
    )
