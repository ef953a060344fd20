"""Tests run through the local Slurm: Megatest's launcher config honoured (launch.scm:1391,
1474-1475; common.scm:2322-2353), a kill that cancels the job, a job ended from outside, a
home killed with jobs queued and running, and launchers that fail (docs/batch.md)."""

import os
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.farm import SLEEP, Farm, running_farm
from tests.support.ledger import books, record
from tests.support.procs import processes_with, wait_for
from tests.support.slurm import Slurm

pytestmark = pytest.mark.long

MEGATEST_CONFIG = """
    [fields]
    OS TEXT

    [setup]
    linktree #{getenv MT_RUN_AREA_HOME}/links
    max_concurrent_jobs 200

    [jobtools]
    launcher sbatch
    flexi-launcher yes

    [host-types]
    second sbatch -p second
    missing /nonexistent/bin/sbatch
    badoption sbatch --no-such-option
    rejected sbatch -p nosuchpartition
    flaky sbatch #{getenv MT_RUN_AREA_HOME}/flaky.sh

    [launchers]
    two% second
    miss% missing
    badopt% badoption
    rej% rejected
    flaky% flaky
"""
AREA = {
    "megatest.config": MEGATEST_CONFIG,
    "runconfigs.config": "[default]\n",
    "tests/one/testconfig": f"""
        [ezsteps]
        check echo one $I
        [items]
        I {" ".join(map(str, range(1, 81)))}
    """,
    "tests/two/testconfig": """
        [ezsteps]
        check echo two $K
        [items]
        K 1 2 3 4 5 6 7 8
    """,
    "tests/bad/testconfig": """
        [ezsteps]
        check test $(($J % 3)) -ne 0
        [items]
        J 1 2 3 4 5 6 7 8 9 10
    """,
    "tests/after_bad/testconfig": """
        [ezsteps]
        check echo after
        [requirements]
        waiton bad
    """,
    "tests/last/testconfig": """
        [ezsteps]
        check echo last
        [requirements]
        waiton one
    """,
    "tests/sleepy/testconfig": f"""
        [ezsteps]
        nap sleep {SLEEP}
    """,
    "tests/victim/testconfig": f"""
        [ezsteps]
        nap sleep {SLEEP}
    """,
    "tests/victim_after/testconfig": """
        [ezsteps]
        check echo after
        [requirements]
        waiton victim
    """,
    "tests/nap/testconfig": f"""
        [ezsteps]
        nap sleep 3
        [items]
        N {" ".join(map(str, range(1, 21)))}
    """,
    "tests/plain/testconfig": """
        [ezsteps]
        check echo plain
    """,
    # A wrapper script as the launcher's last word: sbatch runs it with mtpkt's command as
    # its arguments. Its first job ends at once, as one whose node cannot reach the home.
    "flaky.sh": """
        #!/bin/sh
        marker="$MT_RUN_AREA_HOME/flaky.first"
        if [ ! -e "$marker" ]; then touch "$marker"; exit 1; fi
        exec "$@"
    """,
    "tests/flaky/testconfig": "[ezsteps]\ncheck echo flaky\n",
    "tests/missing/testconfig": "[ezsteps]\ncheck echo never\n",
    "tests/badopt/testconfig": "[ezsteps]\ncheck echo never\n",
    "tests/rej/testconfig": "[ezsteps]\ncheck echo never\n",
}
FULL = "one,two,bad,after_bad,last"
"""The 100 test instances of the first acceptance: 80 + 8 + 10 + 1 + 1."""


def _our_jobs(slurm: Slurm) -> list[str]:
    return [job.id for job in slurm.jobs() if job.name.startswith("batch-")]


@pytest.fixture
def farm(tmp_path: Path, slurm: Slurm) -> Iterator[Farm]:
    """A farm of the area above; at the end its jobs are cancelled and Slurm is idle."""
    with running_farm(tmp_path, files=AREA) as farm:
        try:
            yield farm
        finally:
            left = _our_jobs(slurm)
            slurm.scancel(*left)
            assert wait_for(lambda: not _our_jobs(slurm), 30), slurm.jobs()


def _records(farm: Farm, runname: str) -> dict[tuple[str, str], tuple[str, str, str, str]]:
    """(test, item) → (state, status, comment, job) of the instances (no toplevel records)."""
    found = farm.query(
        runname, "SELECT testname, item_path, state, status, comment, job, host FROM tests"
    )
    records = {(str(r[0]), str(r[1])): (str(r[2]), str(r[3]), str(r[4]), str(r[5])) for r in found}
    itemized = {test for test, item in records if item}
    return {key: value for key, value in records.items() if key[0] not in itemized or key[1]}


def _job_id(farm: Farm, runname: str, test: str, item: str = "") -> str:
    job = _records(farm, runname)[(test, item)][3]
    assert job.startswith("slurm:"), job
    return job.partition(":")[2]


def _wait_record(farm: Farm, runname: str, test: str, states: set[str], timeout: float) -> bool:
    return wait_for(
        lambda: _records(farm, runname).get((test, ""), ("",))[0] in states, timeout, 0.05
    )


@pytest.mark.timeout(420)
def test_a_hundred_tests_through_slurm_end_as_on_agents(farm: Farm, slurm: Slurm) -> None:
    """Acceptance 1: ``[jobtools] launcher sbatch``, with ``[launchers]`` sending ``two%`` to
    ``sbatch -p second``: 100 instances through Slurm end with the state and status they get
    on an agent started by hand (the same run pinned to it); each records its own job;
    squeue is empty at the end."""
    farm.start_home()
    done = farm.send("run", "-t", "linux", "-r", "b1", "--testpatt", FULL, "--wait", timeout=360)
    assert done.returncode == 3, done  # 3: some tests failed, as they must
    batch = _records(farm, "b1")
    assert len(batch) == 100, sorted(batch)
    farm.start_agent("alpha", slots=8)
    # A run pinned to an agent stays with it whatever its launchers (docs/batch.md).
    done = farm.send(
        "run", "-t", "linux", "-r", "l1", "--testpatt", FULL, "--host", "alpha", "--wait",
        timeout=360,
    )  # fmt: skip
    assert done.returncode == 3, done
    local = {key: value[:2] for key, value in _records(farm, "l1").items()}
    assert all(value[3] == "" for value in _records(farm, "l1").values())
    assert {key: value[:2] for key, value in batch.items()} == local
    assert local[("bad", "3")] == ("COMPLETED", "FAIL")
    assert local[("one", "80")] == ("COMPLETED", "PASS")
    # after_bad never runs (its prerequisite failed): every other instance had its own job.
    jobs = {key: value[3] for key, value in batch.items() if key != ("after_bad", "")}
    assert batch[("after_bad", "")][3] == ""
    assert all(job.startswith("slurm:") for job in jobs.values()), jobs
    assert len(set(jobs.values())) == 99
    for key, job in jobs.items():
        partition = slurm.job(job.partition(":")[2])
        assert partition is not None, key
        assert partition["Partition"] == ("second" if key[0] == "two" else "debug"), key
    slurm.wait_idle(30)


@pytest.mark.timeout(120)
def test_kill_cancels_the_job_and_leaves_no_process(farm: Farm, slurm: Slurm) -> None:
    """Acceptance 2: ``send kill`` of a running test whose step sleeps: its job is cancelled,
    the test is KILLED within 5 s, and no process of it is left."""
    farm.start_home()
    assert farm.send("run", "-t", "linux", "-r", "k1", "--testpatt", "sleepy").returncode == 0
    assert _wait_record(farm, "k1", "sleepy", {"RUNNING"}, 60), _records(farm, "k1")
    assert wait_for(lambda: processes_with(SLEEP), 10)
    job = _job_id(farm, "k1", "sleepy")
    assert slurm.state(job) == "RUNNING"
    began = time.monotonic()
    assert farm.send("kill", "-t", "linux", "-r", "k1", "--testpatt", "sleepy").returncode == 0
    assert _wait_record(farm, "k1", "sleepy", {"KILLED"}, 5), _records(farm, "k1")
    took = time.monotonic() - began
    print(f"kill to KILLED: {took:.2f}s")
    state, status, comment, _ = _records(farm, "k1")[("sleepy", "")]
    assert (state, status) == ("KILLED", "KILLED"), comment
    assert slurm.wait_state(job, {"CANCELLED"}, 10)["JobState"] == "CANCELLED"
    assert wait_for(lambda: not processes_with(SLEEP), 5), processes_with(SLEEP)


@pytest.mark.timeout(120)
def test_a_job_cancelled_from_outside_ends_its_test_dead(farm: Farm, slurm: Slurm) -> None:
    """Acceptance 3: ``scancel`` of a running test's job by someone else: the test ends
    COMPLETED/DEAD within 10 s with Slurm's state in its comment (Megatest's end for a test
    that stopped reporting, db.scm:1661), and its dependent is not run, as for any failed
    prerequisite (runs.scm:853: mtpkt records it NOT_STARTED/PREQ_FAIL)."""
    farm.start_home()
    sent = farm.send("run", "-t", "linux", "-r", "c1", "--testpatt", "victim,victim_after")
    assert sent.returncode == 0, sent
    assert _wait_record(farm, "c1", "victim", {"RUNNING"}, 60), _records(farm, "c1")
    job = _job_id(farm, "c1", "victim")
    began = time.monotonic()
    slurm.scancel(job)
    assert _wait_record(farm, "c1", "victim", {"COMPLETED"}, 10), _records(farm, "c1")
    print(f"scancel to DEAD: {time.monotonic() - began:.2f}s")
    state, status, comment, _ = _records(farm, "c1")[("victim", "")]
    assert (state, status) == ("COMPLETED", "DEAD")
    assert f"slurm job {job} ended CANCELLED" in comment
    assert wait_for(
        lambda: _records(farm, "c1")[("victim_after", "")][:2] == ("NOT_STARTED", "PREQ_FAIL"),
        10,
    ), _records(farm, "c1")
    assert wait_for(lambda: not processes_with(SLEEP), 10), processes_with(SLEEP)


@pytest.mark.timeout(300)
def test_a_home_killed_with_jobs_queued_and_running_loses_and_doubles_nothing(
    farm: Farm, slurm: Slurm
) -> None:
    """Acceptance 4: ``kill -9`` of the home while 20 tests are queued or running in Slurm,
    then a restart: the run completes, no test runs twice, no status is lost or doubled."""
    farm.start_home()
    assert farm.send("run", "-t", "linux", "-r", "h1", "--testpatt", "nap").returncode == 0
    assert wait_for(lambda: len(_our_jobs(slurm)) >= 12, 60), slurm.jobs()
    queued = [job for job in slurm.jobs() if job.name.startswith("batch-")]
    farm.stop("home", signal.SIGKILL)
    time.sleep(2)  # the agents in the jobs find no home; queued jobs start meanwhile
    farm.start_home(name="home2")
    done = farm.send("run", "-t", "linux", "-r", "h1", "--testpatt", "nap", "--wait", timeout=240)
    assert done.returncode == 0, done
    records = _records(farm, "h1")
    assert len(records) == 20
    assert {value[:2] for value in records.values()} == {("COMPLETED", "PASS")}, records
    starts = farm.query(
        "h1", "SELECT t.item_path, count(*) FROM test_steps s JOIN tests t ON t.id = s.test_id"
        " WHERE s.state = 'start' GROUP BY t.item_path",
    )  # fmt: skip
    assert sorted(int(count) for _, count in starts) == [1] * 20, starts  # type: ignore[call-overload]
    slurm.wait_idle(60)
    agents = sorted(path.name for path in (farm.area / ".mtpkt/agents").iterdir())
    result = record(
        books(
            "home kill -9 with 20 tests in Slurm",
            farm.area,
            agents,
            f"{len(queued)} jobs listed at the kill",
        )
    )
    assert result.pending == 0


@pytest.mark.timeout(120)
def test_a_launcher_that_fails_ends_its_test_with_its_error(farm: Farm, slurm: Slurm) -> None:
    """Acceptance 5: a submitter not installed, a bad option, a rejected submission: each
    test ends COMPLETED/DEAD with the launcher's error line in its comment, nothing hangs,
    and the home goes on running tests."""
    farm.start_home()
    sent = farm.send(
        "run", "-t", "linux", "-r", "f1", "--testpatt", "missing,badopt,rej", "--wait", timeout=60
    )
    assert sent.returncode == 3, sent  # tests failed
    records = _records(farm, "f1")
    assert {value[:2] for value in records.values()} == {("COMPLETED", "DEAD")}, records
    comments = {key[0]: value[2] for key, value in records.items()}
    assert comments["missing"] == "launch failed: /nonexistent/bin/sbatch: command not found"
    assert comments["badopt"].startswith("launch failed: sbatch: unrecognized option")
    assert "no-such-option" in comments["badopt"]
    assert comments["rej"] == (
        "launch failed: sbatch: error: invalid partition specified: nosuchpartition"
    )
    again = farm.send("run", "-t", "linux", "-r", "f2", "--testpatt", "plain", "--wait")
    assert again.returncode == 0, again
    assert _records(farm, "f2")[("plain", "")][:2] == ("COMPLETED", "PASS")
    assert farm.processes["home"].poll() is None
    assert os.path.exists(farm.area / ".mtpkt" / "home.json")


@pytest.mark.timeout(120)
def test_a_job_that_ends_before_its_agent_took_the_test_is_submitted_again(
    farm: Farm, slurm: Slurm
) -> None:
    """A job over before its agent took the task (it never reached the home) is no DEAD
    test: the home submits it again, under the same agent name, and the test runs once."""
    (farm.area / "flaky.sh").chmod(0o755)
    farm.start_home()
    done = farm.send("run", "-t", "linux", "-r", "s1", "--testpatt", "flaky", "--wait")
    assert done.returncode == 0, done
    state, status, _, job = _records(farm, "s1")[("flaky", "")]
    assert (state, status) == ("COMPLETED", "PASS")
    assert (farm.area / "flaky.first").exists()
    assert "before its agent took the test: submitting it again" in farm.log("home")
    queued = re.findall(r"flaky: queued in slurm job (\d+)", farm.log("home"))
    assert len(queued) == 2, queued
    assert job == f"slurm:{queued[1]}"
    assert (slurm.job(queued[0]) or {}).get("JobState") == "FAILED"
    starts = farm.query("s1", "SELECT count(*) FROM test_steps WHERE state = 'start'")
    assert starts == [(1,)]
