"""A real one-node Slurm cluster for the tests that launch through Slurm (.ci/slurm-local).

A test module takes the session fixture with ``from tests.support.slurm import slurm``. The
fixture starts the cluster unless it already runs, skips the test only when Slurm cannot be
installed here (the script's exit code 3), and stops the cluster at the end of the session
only if it started it: a cluster someone started by hand stays up.

The cluster has 8 slots in two partitions, ``debug`` (the default) and ``second``; ended
jobs stay visible to ``scontrol show job`` for 5 minutes; ``scancel`` sends SIGTERM to the
job's process group and SIGKILL 5 s later.
"""

import re
import subprocess
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from tests.support.procs import wait_for

__all__ = ["CANNOT_INSTALL", "SCRIPT", "Slurm", "SlurmJob", "slurm"]

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "slurm-local"
CANNOT_INSTALL = 3
"""The script's exit code when Slurm is missing and cannot be installed: the test skips."""

_START_TIMEOUT = 110.0  # an install from a slow mirror, then the 60 s the script allows
_COMMAND_TIMEOUT = 20.0
_FIELD = re.compile(r" (?=[A-Za-z][\w/:]*=)")
"""Where ``scontrol show job -o`` starts a field: a space before ``Name=`` (values may hold
``=``, as ``TRES=cpu=1,mem=1M``)."""


class SlurmJob(NamedTuple):
    """One line of ``squeue``."""

    id: str
    name: str
    state: str
    """RUNNING, PENDING, COMPLETING …"""
    reason: str
    """Why it waits (``None`` when it does not)."""


class Slurm:
    """The running cluster, through its commands; every call bounded in time."""

    def __init__(self) -> None:
        self.submitted: list[str] = []
        """Every job id ``sbatch`` returned, in order: what a test's clean-up cancels."""

    def run(self, *argv: str, timeout: float = _COMMAND_TIMEOUT) -> str:
        """Run a Slurm command; its output.

        Raises:
            subprocess.CalledProcessError: it failed (its stderr is in the error).
        """
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr)
        return done.stdout

    def sbatch(self, *options: str, wrap: str) -> str:
        """Submit ``wrap`` as a batch job with ``options`` (``-p second``, ``--chdir`` …);
        its job id."""
        # Its output nowhere unless the options say where (not slurm-N.out in the cwd).
        jobid = self.run("sbatch", "--parsable", "--output", "/dev/null", *options, "--wrap", wrap)
        jobid = jobid.strip()
        jobid = jobid.split(";")[0]  # "id;cluster" on a federation
        self.submitted.append(jobid)
        return jobid

    def scancel(self, *jobids: str) -> None:
        """Cancel jobs (SIGTERM to their process groups, SIGKILL after KillWait)."""
        if jobids:
            self.run("scancel", *jobids)

    def jobs(self) -> list[SlurmJob]:
        """Every job ``squeue`` lists (pending, running, completing), of every partition."""
        out = self.run("squeue", "-h", "-a", "-o", "%i\t%j\t%T\t%r")
        found = []
        for line in out.splitlines():
            parts = line.split("\t")
            name = "\t".join(parts[1:-2])
            found.append(SlurmJob(parts[0], name, parts[-2], parts[-1]))
        return found

    def job(self, jobid: str) -> dict[str, str] | None:
        """The fields of ``scontrol show job`` (``JobState``, ``Reason``, ``ExitCode`` …);
        None for a job Slurm does not know (never submitted, or ended over 5 minutes ago)."""
        done = subprocess.run(
            ["scontrol", "show", "job", "-o", jobid],
            capture_output=True,
            text=True,
            timeout=_COMMAND_TIMEOUT,
            check=False,
        )
        if done.returncode != 0:
            if "Invalid job id" in done.stderr:
                return None
            raise subprocess.CalledProcessError(
                done.returncode, done.args, done.stdout, done.stderr
            )
        fields = {}
        for field in _FIELD.split(done.stdout.strip()):
            key, _, value = field.partition("=")
            fields[key] = value
        return fields

    def state(self, jobid: str) -> str | None:
        """The job's ``JobState`` (PENDING, RUNNING, COMPLETED, CANCELLED …), None if unknown."""
        fields = self.job(jobid)
        return None if fields is None else fields.get("JobState")

    def wait_state(
        self, jobid: str, states: Iterable[str], timeout: float = 30.0
    ) -> dict[str, str]:
        """Poll until the job is in one of ``states``; its fields.

        Raises:
            AssertionError: it was not, ``timeout`` seconds on (its last fields shown).
        """
        wanted = set(states)
        last: list[dict[str, str] | None] = [None]

        def reached() -> bool:
            last[0] = self.job(jobid)
            return last[0] is not None and last[0].get("JobState") in wanted

        if not wait_for(reached, timeout, interval=0.05):
            raise AssertionError(f"job {jobid} not {'/'.join(sorted(wanted))}: {last[0]}")
        assert last[0] is not None
        return last[0]

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Poll until ``squeue`` lists no job.

        Raises:
            AssertionError: jobs were still listed ``timeout`` seconds on (they are shown).
        """
        if not wait_for(lambda: not self.jobs(), timeout, interval=0.1):
            raise AssertionError(f"Slurm still has jobs after {timeout}s: {self.jobs()}")

    def cancel_submitted(self, timeout: float = 30.0) -> None:
        """Cancel the jobs submitted through this object that ``squeue`` still lists, and
        wait until it lists none of them."""
        mine = set(self.submitted)
        left = [job.id for job in self.jobs() if job.id in mine]
        self.scancel(*left)
        if not wait_for(lambda: not mine & {job.id for job in self.jobs()}, timeout, 0.1):
            raise AssertionError(f"cancelled jobs still listed after {timeout}s: {self.jobs()}")


def _script(action: str, timeout: float = _COMMAND_TIMEOUT) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [str(SCRIPT), action], capture_output=True, text=True, timeout=timeout, check=False
    )


def _last_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1] if lines else ""


@pytest.fixture(scope="session")
def slurm() -> Iterator[Slurm]:
    """The local Slurm cluster, started if it does not run (and then stopped at the end).

    Skips only when Slurm cannot be installed here; any other failure to start fails.
    """
    already = _script("status").returncode == 0
    if not already:
        started = _script("start", timeout=_START_TIMEOUT)
        if started.returncode == CANNOT_INSTALL:
            pytest.skip(_last_line(started.stderr))
        if started.returncode != 0:
            pytest.fail(f"{SCRIPT} start: exit {started.returncode}: {started.stderr.strip()}")
    cluster = Slurm()
    yield cluster
    if not already:
        stopped = _script("stop", timeout=60)
        assert stopped.returncode == 0, f"{SCRIPT} stop: {stopped.stderr.strip()}"
