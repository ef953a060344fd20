"""The local Slurm cluster (.ci/slurm-local) does what the batch tests rely on: two
partitions, 8 slots, jobs that start within a second, and what ``scancel`` kills."""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.procs import wait_for
from tests.support.slurm import Slurm, slurm  # noqa: F401

pytestmark = [pytest.mark.long, pytest.mark.timeout(120)]

ENDED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY"}
STARTED = {"RUNNING", "COMPLETING"} | ENDED


@pytest.fixture
def cluster(slurm: Slurm) -> Iterator[Slurm]:  # noqa: F811
    """The cluster; the jobs a test submitted are cancelled and gone from squeue after it."""
    yield slurm
    slurm.cancel_submitted()


def alive(pid: int) -> bool:
    """Whether the process runs (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def start_job(cluster: Slurm, workdir: Path, script: str, *pidfiles: str) -> tuple[str, list[int]]:
    """Submit ``script`` to run in ``workdir``; its job id and the pids it wrote to
    ``pidfiles`` there, once it has written them all."""
    jobid = cluster.sbatch(f"--chdir={workdir}", "--output=/dev/null", wrap=script)
    paths = [workdir / name for name in pidfiles]
    assert wait_for(lambda: all(p.exists() and p.read_text().strip() for p in paths), 10)
    return jobid, [int(p.read_text()) for p in paths]


def assert_cancelled(cluster: Slurm, jobid: str) -> None:
    assert cluster.wait_state(jobid, ENDED, timeout=10)["JobState"] == "CANCELLED"


def test_both_partitions_are_up_and_debug_is_the_default(cluster: Slurm) -> None:
    lines = cluster.run("sinfo", "-h", "-o", "%R %a %l %D").splitlines()
    assert sorted(lines) == ["debug up infinite 1", "second up infinite 1"]
    assert "Default=YES" in cluster.run("scontrol", "show", "partition", "debug")
    assert "Default=NO" in cluster.run("scontrol", "show", "partition", "second")


@pytest.mark.parametrize(
    ("options", "partition"),
    [((), "debug"), (("-p", "debug"), "debug"), (("-p", "second"), "second")],
)
def test_a_job_runs_in_the_partition_it_was_sent_to(
    cluster: Slurm, tmp_path: Path, options: tuple[str, ...], partition: str
) -> None:
    jobid = cluster.sbatch(
        *options, f"--chdir={tmp_path}", "--output=out", wrap='echo "$SLURM_JOB_PARTITION"'
    )
    fields = cluster.wait_state(jobid, ENDED)
    assert (fields["JobState"], fields["ExitCode"]) == ("COMPLETED", "0:0")
    assert fields["Partition"] == partition
    assert (tmp_path / "out").read_text() == f"{partition}\n"


def test_eight_jobs_of_two_seconds_run_at_once(cluster: Slurm) -> None:
    cluster.wait_idle(60)  # all 8 slots free
    jobids = [
        cluster.sbatch("--chdir=/tmp", "--output=/dev/null", "-J", "eight", wrap="sleep 2")
        for _ in range(8)
    ]

    def all_running() -> bool:
        return {job.id for job in cluster.jobs() if job.state == "RUNNING"} == set(jobids)

    assert wait_for(all_running, 10), cluster.jobs()
    for jobid in jobids:
        assert cluster.wait_state(jobid, ENDED)["JobState"] == "COMPLETED"


def test_scancel_kills_the_job_process_group_and_scontrol_shows_cancelled(
    cluster: Slurm, tmp_path: Path
) -> None:
    script = "echo $$ > script; sleep 300 & echo $! > child; wait"
    jobid, pids = start_job(cluster, tmp_path, script, "script", "child")
    assert all(alive(pid) for pid in pids)
    cluster.scancel(jobid)
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 10), "job processes left"
    assert_cancelled(cluster, jobid)


def test_scancel_sends_sigterm_to_the_script_and_sigkill_killwait_seconds_later(
    cluster: Slurm, tmp_path: Path
) -> None:
    """KillWait=5: a script that ignores SIGTERM lives 5 s more, then is killed."""
    script = "trap 'echo TERM > term' TERM; echo $$ > script; while :; do sleep 0.1; done"
    jobid, (pid,) = start_job(cluster, tmp_path, script, "script")
    cancelled = time.monotonic()
    cluster.scancel(jobid)
    assert wait_for(lambda: (tmp_path / "term").exists(), 3), "no SIGTERM first"
    assert wait_for(lambda: not alive(pid), 15)
    lived = time.monotonic() - cancelled
    print(f"the script ended {lived:.2f} s after scancel")
    assert 3 < lived < 9
    assert_cancelled(cluster, jobid)


def test_a_process_that_left_the_job_process_group_outlives_scancel(
    cluster: Slurm, tmp_path: Path
) -> None:
    """proctrack/pgid knows a job by its process group: whoever kills a job must also kill
    what it started with setsid."""
    script = "setsid sleep 301 & echo $! > escaped; sleep 300 & echo $! > child; wait"
    jobid, (escaped, child) = start_job(cluster, tmp_path, script, "escaped", "child")
    try:
        cluster.scancel(jobid)
        assert wait_for(lambda: not alive(child), 10)
        assert_cancelled(cluster, jobid)
        assert alive(escaped)
    finally:
        if alive(escaped):
            os.kill(escaped, 9)


def test_submit_to_running_latency(cluster: Slurm) -> None:
    submitted = time.monotonic()
    jobid = cluster.sbatch("--chdir=/tmp", "--output=/dev/null", wrap="sleep 3")
    cluster.wait_state(jobid, STARTED, timeout=10)
    latency = time.monotonic() - submitted
    print(f"submit-to-RUNNING: {latency:.3f} s")
    assert latency < 10
